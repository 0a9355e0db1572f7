// XXH3 stripe/block kernel for AVX-512F/BW (compiled with -mavx512f -mavx512bw on its own;
// selected at run time). Same arithmetic as consume_scalar in xxh3.cc: one stripe per register.
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own AVX-512 headers: _mm512_undefined_epi32 initialises a variable
// from itself on purpose (GCC bug 105593), which -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "xxh3_internal.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace ds {
namespace xxh3 {
namespace {

inline __m512i load512(const uint8_t* p) { return _mm512_loadu_si512(p); }

inline __m512i accumulate(__m512i acc, const uint8_t* stripe, const uint8_t* secret) {
  __m512i data = load512(stripe);
  __m512i keyed = _mm512_xor_si512(data, load512(secret));
  __m512i product = _mm512_mul_epu32(keyed, _mm512_srli_epi64(keyed, 32));
  // lane i's data goes to lane i^1
  __m512i swapped = _mm512_shuffle_epi32(data, static_cast<_MM_PERM_ENUM>(_MM_SHUFFLE(1, 0, 3, 2)));
  return _mm512_add_epi64(acc, _mm512_add_epi64(product, swapped));
}

inline __m512i scramble(__m512i acc, __m512i key) {
  const __m512i prime = _mm512_set1_epi32(static_cast<int>(kPrime32_1));
  // acc ^ (acc >> 47) ^ key in one ternary-logic op (0x96 = three-way xor)
  acc = _mm512_ternarylogic_epi64(acc, _mm512_srli_epi64(acc, 47), key, 0x96);
  __m512i lo = _mm512_mul_epu32(acc, prime);
  __m512i hi = _mm512_mul_epu32(_mm512_srli_epi64(acc, 32), prime);
  return _mm512_add_epi64(lo, _mm512_slli_epi64(hi, 32));
}

}  // namespace

size_t consume_avx512(uint64_t* acc_mem, const uint8_t* in, size_t stripes,
                      size_t stripe_in_block) {
  __m512i acc = _mm512_loadu_si512(acc_mem);
  const __m512i scramble_key = load512(kDefaultSecret + kScrambleOffset);
  while (stripes > 0) {
    size_t n = kStripesPerBlock - stripe_in_block;
    if (n > stripes) n = stripes;
    const uint8_t* secret = kDefaultSecret + stripe_in_block * 8;
    for (size_t i = 0; i < n; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(in + i * kStripeLen + kPrefetchAhead), _MM_HINT_T0);
      acc = accumulate(acc, in + i * kStripeLen, secret + i * 8);
    }
    in += n * kStripeLen;
    stripes -= n;
    stripe_in_block += n;
    if (stripe_in_block == kStripesPerBlock) {
      acc = scramble(acc, scramble_key);
      stripe_in_block = 0;
    }
  }
  _mm512_storeu_si512(acc_mem, acc);
  return stripe_in_block;
}

}  // namespace xxh3
}  // namespace ds

#endif
