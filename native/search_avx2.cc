// AVX2 lane kernel of the batched search (see search.h and search_avx512.cc, which this mirrors
// with eight lanes per vector). Compiled with -mavx2; called only when ds::simd_level() allows.
// Uses no inline function from the shared headers: a copy compiled here could be picked by the
// linker for the scalar code too.
#include <immintrin.h>

#include "search.h"

namespace ds {
namespace {

enum Flavor { kDs64, kRollsum, kRabinKarp };
constexpr int W = 8;        // lanes per vector
constexpr int kBlock = 32;  // steps per transposed block (one 32-byte load per lane and stream)
constexpr int kPrefetch = 1024;  // bytes ahead

struct Ctx {
  LaneHit* hits;
  size_t cap;
  size_t found = 0;
};

// Writes the lanes set in `hit`; false when the cap is exceeded.
inline bool record(Ctx& c, size_t step, unsigned lane0, uint32_t bias, __m256i hit, __m256i a, __m256i b) {
  alignas(32) uint32_t va[W], vb[W];
  _mm256_store_si256(reinterpret_cast<__m256i*>(va), a);
  _mm256_store_si256(reinterpret_cast<__m256i*>(vb), b);
  unsigned mask = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(hit)));
  while (mask) {
    const unsigned l = static_cast<unsigned>(__builtin_ctz(mask));
    mask &= mask - 1;
    if (c.found == c.cap) return false;
    c.hits[c.found++] = LaneHit{static_cast<uint32_t>(step), lane0 + l, WindowState{va[l] + bias, vb[l]}};
  }
  return true;
}

inline __m256i byte_selector(int k) {
  // Byte k of each dword, zero-extended.
  return _mm256_setr_epi8(k, -1, -1, -1, 4 + k, -1, -1, -1, 8 + k, -1, -1, -1, 12 + k, -1, -1, -1,  //
                          k, -1, -1, -1, 4 + k, -1, -1, -1, 8 + k, -1, -1, -1, 12 + k, -1, -1, -1);
}

// out[q] = dword q (bytes 4q..4q+3) of each of the 8 rows, lane l from row l.
__attribute__((always_inline)) inline void transpose8(const uint8_t* base, const uint32_t* row_offset, __m256i* out) {
  __m256i r[8], t[8];
  for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + row_offset[l]));
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int g = 0; g < 8; g += 4) {
    r[g] = _mm256_unpacklo_epi64(t[g], t[g + 2]);
    r[g + 1] = _mm256_unpackhi_epi64(t[g], t[g + 2]);
    r[g + 2] = _mm256_unpacklo_epi64(t[g + 1], t[g + 3]);
    r[g + 3] = _mm256_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  // r[4g + j] holds, in 128-bit lane c, dword 4c + j of rows 4g..4g+3.
  for (int j = 0; j < 4; ++j) {
    out[j] = _mm256_permute2x128_si256(r[j], r[4 + j], 0x20);
    out[4 + j] = _mm256_permute2x128_si256(r[j], r[4 + j], 0x31);
  }
}

template <Flavor F, int G, bool kSmallN>
size_t run(const LaneTask& t, LaneHit* hits, size_t cap) {
  Ctx c{hits, cap};
  const size_t S = t.steps;
  const int* words = reinterpret_cast<const int*>(t.filter.words);
  const __m256i shift = _mm256_set1_epi32(static_cast<int>(t.filter.shift));
  const __m256i one = _mm256_set1_epi32(1), m31 = _mm256_set1_epi32(31), low16 = _mm256_set1_epi32(0xffff);
  const __m256i kmul = _mm256_set1_epi32(static_cast<int>(kKeyMult));
  const __m256i sel[4] = {byte_selector(0), byte_selector(1), byte_selector(2), byte_selector(3)};
  const uint32_t n = static_cast<uint32_t>(t.n);
  // Ds64 / Rollsum: s2 += s1 - n·out - 31·n.   RabinKarp: h = h·M + in - M^n·out - M^n·kAdj.
  const __m256i vn = _mm256_set1_epi32(static_cast<int>(F == kRabinKarp ? t.rk_mult_n : n));
  // Ds64 / Rollsum lanes carry v = s1 - 31·n (see search_avx512.cc).
  const uint32_t bias = F == kRabinKarp ? 0u : kCharOffset * n;
  const __m256i vc = _mm256_set1_epi32(static_cast<int>(t.rk_mult_n * RabinKarp::kAdj));
  const __m256i vmult = _mm256_set1_epi32(static_cast<int>(RabinKarp::kMult));

  alignas(32) uint32_t row[G][W];
  __m256i off[G], a[G], b[G];
  for (int g = 0; g < G; ++g) {
    alignas(32) uint32_t sa[W], sb[W];
    for (int l = 0; l < W; ++l) {
      row[g][l] = static_cast<uint32_t>((g * W + l) * S);
      sa[l] = t.starts[g * W + l].a - bias;
      sb[l] = t.starts[g * W + l].b;
    }
    off[g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(row[g]));
    a[g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sa));
    b[g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sb));
  }
  const uint8_t* outp = t.p;
  const uint8_t* inp = t.p + t.n;

  auto step = [&](int g, __m256i out, __m256i in, size_t s) -> bool {
    __m256i x;
    if (F == kRabinKarp) {
      const __m256i y = _mm256_sub_epi32(in, _mm256_add_epi32(_mm256_mullo_epi32(out, vn), vc));
      a[g] = _mm256_add_epi32(_mm256_mullo_epi32(a[g], vmult), y);
      x = a[g];
    } else {
      const __m256i nout = kSmallN ? _mm256_madd_epi16(out, vn) : _mm256_mullo_epi32(out, vn);
      a[g] = _mm256_add_epi32(a[g], _mm256_sub_epi32(in, out));
      b[g] = _mm256_add_epi32(b[g], _mm256_sub_epi32(a[g], nout));
      x = F == kDs64 ? _mm256_xor_si256(b[g], _mm256_slli_epi32(a[g], 16))
                     : _mm256_or_si256(_mm256_slli_epi32(b[g], 16), _mm256_and_si256(a[g], low16));
    }
    const __m256i key = _mm256_mullo_epi32(x, kmul);
    const __m256i word = _mm256_i32gather_epi32(words, _mm256_srlv_epi32(key, shift), 4);
    // Both bits set: shift each down to bit 0.
    const __m256i both = _mm256_and_si256(_mm256_srlv_epi32(word, _mm256_and_si256(key, m31)),
                                          _mm256_srlv_epi32(word, _mm256_and_si256(_mm256_srli_epi32(key, 5), m31)));
    if (__builtin_expect(!_mm256_testz_si256(both, one), 0)) {
      const __m256i hit = _mm256_cmpeq_epi32(_mm256_and_si256(both, one), one);
      return record(c, s, static_cast<unsigned>(g * W), bias, hit, a[g], b[g]);
    }
    return true;
  };

  size_t s = 0;
  alignas(32) __m256i qo[G][8], qi[G][8];
  for (; s + kBlock <= S; s += kBlock) {
    for (int g = 0; g < G; ++g) {
      // Entering bytes come from memory; more streams than the hardware prefetcher follows.
      for (int l = 0; l < W; ++l) _mm_prefetch(reinterpret_cast<const char*>(inp + s + row[g][l]) + kPrefetch, _MM_HINT_T0);
      transpose8(outp + s, row[g], qo[g]);
      transpose8(inp + s, row[g], qi[g]);
    }
    for (int q = 0; q < 8; ++q) {
      for (int k = 0; k < 4; ++k) {
        for (int g = 0; g < G; ++g) {
          if (!step(g, _mm256_shuffle_epi8(qo[g][q], sel[k]), _mm256_shuffle_epi8(qi[g][q], sel[k]), s + 4 * q + k)) {
            return kSearchOverflow;
          }
        }
      }
    }
  }
  // The last S mod 32 steps: dword gathers, four steps each.
  for (; s < S; s += 4) {
    __m256i go[G], gi[G];
    for (int g = 0; g < G; ++g) {
      go[g] = _mm256_i32gather_epi32(reinterpret_cast<const int*>(outp + s), off[g], 1);
      gi[g] = _mm256_i32gather_epi32(reinterpret_cast<const int*>(inp + s), off[g], 1);
    }
    for (int k = 0; k < 4; ++k) {
      for (int g = 0; g < G; ++g) {
        if (!step(g, _mm256_shuffle_epi8(go[g], sel[k]), _mm256_shuffle_epi8(gi[g], sel[k]), s + k)) return kSearchOverflow;
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    alignas(32) uint32_t sa[W], sb[W];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sa), a[g]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(sb), b[g]);
    for (int l = 0; l < W; ++l) t.ends[g * W + l] = WindowState{sa[l] + bias, F == kRabinKarp ? 0u : sb[l]};
  }
  return c.found;
}

}  // namespace

size_t lanes_avx2(RollingKind kind) { return kind == RollingKind::RabinKarp ? 2 * W : W; }

size_t lane_kernel_avx2(const LaneTask& t, LaneHit* hits, size_t cap) {
  const bool small_n = t.n < 32768;
  switch (t.kind) {
    case RollingKind::Ds64: return small_n ? run<kDs64, 1, true>(t, hits, cap) : run<kDs64, 1, false>(t, hits, cap);
    case RollingKind::Rollsum:
      return small_n ? run<kRollsum, 1, true>(t, hits, cap) : run<kRollsum, 1, false>(t, hits, cap);
    case RollingKind::RabinKarp: return run<kRabinKarp, 2, false>(t, hits, cap);
  }
  return kSearchOverflow;
}

}  // namespace ds
