// AVX-512 (F + BW) weak-sum primitives (compiled with -mavx512f -mavx512bw; called only when
// ds::simd_level() allows). Same arithmetic as weak_avx2.cc on 64-byte blocks.
// GCC 12's AVX-512 headers seed results with _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports at every use; the values are fully overwritten.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "weak.h"

namespace ds {
namespace {

// Stored and summed: GCC 12's _mm512_reduce_add_* trip -Wuninitialized inside its own headers.
uint64_t hsum_epi64(__m512i v) {
  alignas(64) uint64_t a[8];
  _mm512_store_si512(a, v);
  return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}
uint32_t hsum_epi32(__m512i v) {
  alignas(64) uint32_t a[16];
  _mm512_store_si512(a, v);
  uint32_t s = 0;
  for (uint32_t x : a) s += x;
  return s;
}

}  // namespace

ByteSums byte_sums_avx512(const uint8_t* p, size_t len) {
  const __m512i zero = _mm512_setzero_si512();
  alignas(64) int8_t wt[64];
  for (int q = 0; q < 64; ++q) wt[q] = static_cast<int8_t>(64 - q);
  const __m512i weights = _mm512_load_si512(wt);
  const __m512i ones = _mm512_set1_epi16(1);
  __m512i sums = zero, before = zero, weighted = zero;
  size_t i = 0;
  for (; i + 128 <= len; i += 128) {
    const __m512i x0 = _mm512_loadu_si512(p + i);
    const __m512i x1 = _mm512_loadu_si512(p + i + 64);
    const __m512i s0 = _mm512_sad_epu8(x0, zero);
    // Pair sums reach 255·(64 + 63) < 2^15, but two of them would not: widen each separately.
    const __m512i w = _mm512_add_epi32(_mm512_madd_epi16(_mm512_maddubs_epi16(x0, weights), ones),
                                       _mm512_madd_epi16(_mm512_maddubs_epi16(x1, weights), ones));
    before = _mm512_add_epi64(before, _mm512_add_epi64(_mm512_add_epi64(sums, sums), s0));
    sums = _mm512_add_epi64(sums, _mm512_add_epi64(s0, _mm512_sad_epu8(x1, zero)));
    weighted = _mm512_add_epi32(weighted, w);
  }
  for (; i + 64 <= len; i += 64) {
    const __m512i x = _mm512_loadu_si512(p + i);
    before = _mm512_add_epi64(before, sums);
    sums = _mm512_add_epi64(sums, _mm512_sad_epu8(x, zero));
    weighted = _mm512_add_epi32(weighted, _mm512_madd_epi16(_mm512_maddubs_epi16(x, weights), ones));
  }
  uint32_t sum = static_cast<uint32_t>(hsum_epi64(sums));
  uint32_t wsum = 64 * static_cast<uint32_t>(hsum_epi64(before)) + hsum_epi32(weighted);
  for (; i < len; ++i) {
    sum += p[i];
    wsum += sum;
  }
  return {sum, wsum};
}

uint32_t rk_poly_avx512(const uint8_t* p, size_t len) {
  // Horner over 128-byte blocks, sixteen lanes per vector (see rk_poly_avx2).
  constexpr uint32_t M = RabinKarp::kMult;
  alignas(64) uint32_t pw[128];
  uint32_t m = 1;
  for (int q = 127; q >= 0; --q) {
    pw[q] = m;
    m *= M;
  }
  const __m512i step = _mm512_set1_epi32(static_cast<int>(m));  // M^128
  __m512i pv[8];
  for (int r = 0; r < 8; ++r) pv[r] = _mm512_load_si512(pw + 16 * r);
  __m512i acc = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 128 <= len; i += 128) {
    __m512i t[8];
    for (int r = 0; r < 8; ++r) {
      const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 16 * r)));
      t[r] = _mm512_mullo_epi32(x, pv[r]);
    }
    const __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(t[0], t[1]), _mm512_add_epi32(t[2], t[3])),
                                       _mm512_add_epi32(_mm512_add_epi32(t[4], t[5]), _mm512_add_epi32(t[6], t[7])));
    acc = _mm512_add_epi32(_mm512_mullo_epi32(acc, step), s);
  }
  uint32_t h = hsum_epi32(acc);
  for (; i < len; ++i) h = h * M + p[i];
  return h;
}

}  // namespace ds
