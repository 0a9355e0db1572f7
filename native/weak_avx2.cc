// AVX2 weak-sum primitives (compiled with -mavx2; called only when ds::simd_level() allows).
#include <immintrin.h>

#include "weak.h"

namespace ds {
namespace {

uint64_t hsum_epi64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(s)) + static_cast<uint64_t>(_mm_extract_epi64(s, 1));
}

uint32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(s));
}

}  // namespace

ByteSums byte_sums_avx2(const uint8_t* p, size_t len) {
  // Per 32-byte block b: sum via vpsadbw, Σ (32 - q)·x_q via vpmaddubsw/vpmaddwd. Then
  // wsum = 32·Σ_b (sum of the bytes before b) + Σ_b block weighted sum.
  const __m256i zero = _mm256_setzero_si256();
  const __m256i weights = _mm256_setr_epi8(32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
                                           15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i sums = zero, before = zero, weighted = zero;
  size_t i = 0;
  for (; i + 64 <= len; i += 64) {
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32));
    const __m256i s0 = _mm256_sad_epu8(x0, zero);
    // Two 16-bit weighted pair sums add up to at most 2·(255·32 + 255·31) < 2^15: no saturation.
    const __m256i w = _mm256_add_epi16(_mm256_maddubs_epi16(x0, weights), _mm256_maddubs_epi16(x1, weights));
    before = _mm256_add_epi64(before, _mm256_add_epi64(_mm256_add_epi64(sums, sums), s0));
    sums = _mm256_add_epi64(sums, _mm256_add_epi64(s0, _mm256_sad_epu8(x1, zero)));
    weighted = _mm256_add_epi32(weighted, _mm256_madd_epi16(w, ones));
  }
  for (; i + 32 <= len; i += 32) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    before = _mm256_add_epi64(before, sums);
    sums = _mm256_add_epi64(sums, _mm256_sad_epu8(x, zero));
    weighted = _mm256_add_epi32(weighted, _mm256_madd_epi16(_mm256_maddubs_epi16(x, weights), ones));
  }
  uint32_t sum = static_cast<uint32_t>(hsum_epi64(sums));
  uint32_t wsum = 32 * static_cast<uint32_t>(hsum_epi64(before)) + hsum_epi32(weighted);
  for (; i < len; ++i) {
    sum += p[i];
    wsum += sum;
  }
  return {sum, wsum};
}

uint32_t rk_poly_avx2(const uint8_t* p, size_t len) {
  // Horner over 64-byte blocks with eight lanes per vector: lane l of vector r holds byte 8r + l
  // times M^(63 - 8r - l); the lanes are summed once at the end.
  constexpr uint32_t M = RabinKarp::kMult;
  alignas(32) uint32_t pw[64];
  uint32_t m = 1;
  for (int q = 63; q >= 0; --q) {
    pw[q] = m;
    m *= M;
  }
  const __m256i step = _mm256_set1_epi32(static_cast<int>(m));  // M^64
  __m256i pv[8];
  for (int r = 0; r < 8; ++r) pv[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(pw + 8 * r));
  __m256i acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 64 <= len; i += 64) {
    __m256i t[8];
    for (int r = 0; r < 8; ++r) {
      const __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + i + 8 * r)));
      t[r] = _mm256_mullo_epi32(x, pv[r]);
    }
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(t[0], t[1]), _mm256_add_epi32(t[2], t[3])),
                                       _mm256_add_epi32(_mm256_add_epi32(t[4], t[5]), _mm256_add_epi32(t[6], t[7])));
    acc = _mm256_add_epi32(_mm256_mullo_epi32(acc, step), s);
  }
  uint32_t h = hsum_epi32(acc);
  for (; i < len; ++i) h = h * M + p[i];
  return h;
}

}  // namespace ds
