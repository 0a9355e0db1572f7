// XXH3 stripe/block kernel for AVX2 (compiled with -mavx2 on its own; selected at run time).
// Same arithmetic as consume_scalar in xxh3.cc, four 64-bit lanes per register.
#include <immintrin.h>

#include "xxh3_internal.h"

#if defined(__x86_64__) || defined(_M_X64)

namespace ds {
namespace xxh3 {
namespace {

inline __m256i load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

inline void accumulate(__m256i& acc0, __m256i& acc1, const uint8_t* stripe,
                       const uint8_t* secret) {
  __m256i data0 = load256(stripe);
  __m256i data1 = load256(stripe + 32);
  __m256i keyed0 = _mm256_xor_si256(data0, load256(secret));
  __m256i keyed1 = _mm256_xor_si256(data1, load256(secret + 32));
  // low 32 bits times high 32 bits of each keyed lane
  __m256i product0 = _mm256_mul_epu32(keyed0, _mm256_srli_epi64(keyed0, 32));
  __m256i product1 = _mm256_mul_epu32(keyed1, _mm256_srli_epi64(keyed1, 32));
  // lane i's data goes to lane i^1: swap the two 64-bit halves of each 128-bit pair
  __m256i swapped0 = _mm256_shuffle_epi32(data0, _MM_SHUFFLE(1, 0, 3, 2));
  __m256i swapped1 = _mm256_shuffle_epi32(data1, _MM_SHUFFLE(1, 0, 3, 2));
  acc0 = _mm256_add_epi64(acc0, _mm256_add_epi64(product0, swapped0));
  acc1 = _mm256_add_epi64(acc1, _mm256_add_epi64(product1, swapped1));
}

inline __m256i scramble_one(__m256i acc, __m256i key) {
  const __m256i prime = _mm256_set1_epi32(static_cast<int>(kPrime32_1));
  acc = _mm256_xor_si256(acc, _mm256_srli_epi64(acc, 47));
  acc = _mm256_xor_si256(acc, key);
  __m256i lo = _mm256_mul_epu32(acc, prime);
  __m256i hi = _mm256_mul_epu32(_mm256_srli_epi64(acc, 32), prime);
  return _mm256_add_epi64(lo, _mm256_slli_epi64(hi, 32));
}

}  // namespace

size_t consume_avx2(uint64_t* acc_mem, const uint8_t* in, size_t stripes, size_t stripe_in_block) {
  __m256i acc0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc_mem));
  __m256i acc1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc_mem + 4));
  const __m256i scramble_key0 = load256(kDefaultSecret + kScrambleOffset);
  const __m256i scramble_key1 = load256(kDefaultSecret + kScrambleOffset + 32);
  while (stripes > 0) {
    size_t n = kStripesPerBlock - stripe_in_block;
    if (n > stripes) n = stripes;
    const uint8_t* secret = kDefaultSecret + stripe_in_block * 8;
    for (size_t i = 0; i < n; ++i) {
      // Hardware prefetchers lag on multi-MiB inputs; asking six stripes ahead measurably helps.
      _mm_prefetch(reinterpret_cast<const char*>(in + i * kStripeLen + kPrefetchAhead), _MM_HINT_T0);
      accumulate(acc0, acc1, in + i * kStripeLen, secret + i * 8);
    }
    in += n * kStripeLen;
    stripes -= n;
    stripe_in_block += n;
    if (stripe_in_block == kStripesPerBlock) {
      acc0 = scramble_one(acc0, scramble_key0);
      acc1 = scramble_one(acc1, scramble_key1);
      stripe_in_block = 0;
    }
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_mem), acc0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_mem + 4), acc1);
  return stripe_in_block;
}

}  // namespace xxh3
}  // namespace ds

#endif
