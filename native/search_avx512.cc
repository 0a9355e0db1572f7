// AVX-512 (F + BW) lane kernel of the batched search (see search.h): sixteen lanes per vector.
// Compiled with -mavx512f -mavx512bw; called only when ds::simd_level() allows. Uses no inline
// function from the shared headers: a copy compiled here could be picked by the linker for the
// scalar code too.
//
// Per step every lane rolls one window. The bytes leaving and entering each lane come from plain
// 64-byte loads of every lane's stream, turned into "dword q of every lane" vectors by a 16x16
// transpose (gathers of the bytes cost ~3x more here); each step then picks its byte with
// vpshufb. The prefilter word comes from one gather (the dominant cost left: ~8 of ~20 cycles a
// step), its two bits are rotated down to bit 0 (rotates take their count mod 32), and a lane
// that passes is written out on a rarely taken branch. The lanes are independent, so a step's
// latency overlaps the next ones; throughput is what counts.

// GCC 12's AVX-512 headers seed results with _mm512_undefined_*(), which -Wmaybe-uninitialized
// reports at every use; the values are fully overwritten.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "search.h"

namespace ds {
namespace {

enum Flavor { kDs64, kRollsum, kRabinKarp };
constexpr int W = 16;      // lanes per vector
constexpr int kBlock = 64;  // steps per transposed block (one 64-byte load per lane and stream)
constexpr int kPrefetch = 1024;  // bytes ahead

struct Ctx {
  LaneHit* hits;
  size_t cap;
  size_t found = 0;
};

inline bool record(Ctx& c, size_t step, unsigned lane0, uint32_t bias, __mmask16 hit, __m512i a, __m512i b) {
  alignas(64) uint32_t va[W], vb[W];
  _mm512_store_si512(va, a);
  _mm512_store_si512(vb, b);
  unsigned mask = hit;
  while (mask) {
    const unsigned l = static_cast<unsigned>(__builtin_ctz(mask));
    mask &= mask - 1;
    if (c.found == c.cap) return false;
    c.hits[c.found++] = LaneHit{static_cast<uint32_t>(step), lane0 + l, WindowState{va[l] + bias, vb[l]}};
  }
  return true;
}

inline __m512i byte_selector(int k) {
  // Byte k of each dword, zero-extended (vpshufb indexes within 128-bit lanes).
  alignas(64) int8_t s[64];
  for (int i = 0; i < 64; ++i) s[i] = (i & 3) == 0 ? static_cast<int8_t>((i & 15) + k) : -1;
  return _mm512_load_si512(s);
}

// out[q] = dword q (bytes 4q..4q+3) of each of the 16 rows, lane l from row l.
__attribute__((always_inline)) inline void transpose16(const uint8_t* base, const uint32_t* row_offset, __m512i* out) {
  __m512i r[16], t[16];
  for (int l = 0; l < 16; ++l) r[l] = _mm512_loadu_si512(base + row_offset[l]);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // r[4g + j]: in each 128-bit lane c, dword j of rows 4g..4g+3 (from dword 4c + j).
  for (int g = 0; g < 16; g += 4) {
    r[g] = _mm512_unpacklo_epi64(t[g], t[g + 2]);
    r[g + 1] = _mm512_unpackhi_epi64(t[g], t[g + 2]);
    r[g + 2] = _mm512_unpacklo_epi64(t[g + 1], t[g + 3]);
    r[g + 3] = _mm512_unpackhi_epi64(t[g + 1], t[g + 3]);
  }
  // Gather 128-bit lane c of r[j], r[4 + j], r[8 + j], r[12 + j] into out[4c + j].
  for (int j = 0; j < 4; ++j) {
    const __m512i v0 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44);
    const __m512i v1 = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xee);
    const __m512i v2 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
    const __m512i v3 = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xee);
    out[j] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    out[4 + j] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
    out[8 + j] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    out[12 + j] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
  }
}

template <Flavor F, int G, bool kSmallN>
size_t run(const LaneTask& t, LaneHit* hits, size_t cap) {
  Ctx c{hits, cap};
  const size_t S = t.steps;
  const int* words = reinterpret_cast<const int*>(t.filter.words);
  const __m512i shift = _mm512_set1_epi32(static_cast<int>(t.filter.shift));
  const __m512i one = _mm512_set1_epi32(1), low16 = _mm512_set1_epi32(0xffff);
  const __m512i kmul = _mm512_set1_epi32(static_cast<int>(kKeyMult));
  const __m512i sel[4] = {byte_selector(0), byte_selector(1), byte_selector(2), byte_selector(3)};
  const uint32_t n = static_cast<uint32_t>(t.n);
  // Ds64 / Rollsum: s2 += s1 - n·out - 31·n.   RabinKarp: h = h·M + in - M^n·out - M^n·kAdj.
  const __m512i vn = _mm512_set1_epi32(static_cast<int>(F == kRabinKarp ? t.rk_mult_n : n));
  // Ds64 / Rollsum lanes carry v = s1 - 31·n, which folds the constant out of the s2 update:
  // s1' = s1 + in - out and s2' = s2 + s1' - n·(out + 31) become v += in - out; s2 += v - n·out.
  const uint32_t bias = F == kRabinKarp ? 0u : kCharOffset * n;
  const __m512i vc = _mm512_set1_epi32(static_cast<int>(t.rk_mult_n * RabinKarp::kAdj));
  const __m512i vmult = _mm512_set1_epi32(static_cast<int>(RabinKarp::kMult));

  alignas(64) uint32_t row[G][W];
  __m512i off[G], a[G], b[G];
  for (int g = 0; g < G; ++g) {
    alignas(64) uint32_t sa[W], sb[W];
    for (int l = 0; l < W; ++l) {
      row[g][l] = static_cast<uint32_t>((g * W + l) * S);
      sa[l] = t.starts[g * W + l].a - bias;
      sb[l] = t.starts[g * W + l].b;
    }
    off[g] = _mm512_load_si512(row[g]);
    a[g] = _mm512_load_si512(sa);
    b[g] = _mm512_load_si512(sb);
  }
  const uint8_t* outp = t.p;
  const uint8_t* inp = t.p + t.n;

  // One step of lane group g: roll every lane by one byte, probe the filter, record hits.
  auto step = [&](int g, __m512i out, __m512i in, size_t s) -> bool {
    __m512i x;
    if (F == kRabinKarp) {
      const __m512i y = _mm512_sub_epi32(in, _mm512_add_epi32(_mm512_mullo_epi32(out, vn), vc));
      a[g] = _mm512_add_epi32(_mm512_mullo_epi32(a[g], vmult), y);
      x = a[g];
    } else {
      // n·out: one vpmaddwd when n fits 15 bits (out < 2^8, both non-negative int16).
      const __m512i nout = kSmallN ? _mm512_madd_epi16(out, vn) : _mm512_mullo_epi32(out, vn);
      a[g] = _mm512_add_epi32(a[g], _mm512_sub_epi32(in, out));
      b[g] = _mm512_add_epi32(b[g], _mm512_sub_epi32(a[g], nout));
      x = F == kDs64 ? _mm512_xor_si512(b[g], _mm512_slli_epi32(a[g], 16))
                     : _mm512_ternarylogic_epi32(_mm512_slli_epi32(b[g], 16), a[g], low16, 0xf8);  // b<<16 | a&0xffff
    }
    const __m512i key = _mm512_mullo_epi32(x, kmul);
    const __m512i word = _mm512_i32gather_epi32(_mm512_srlv_epi32(key, shift), words, 4);
    // Both bits set: rotate each down to bit 0 (rotates take their count mod 32).
    const __m512i both = _mm512_and_si512(_mm512_rorv_epi32(word, key), _mm512_rorv_epi32(word, _mm512_srli_epi32(key, 5)));
    const __mmask16 hit = _mm512_test_epi32_mask(both, one);
    if (__builtin_expect(hit != 0, 0)) return record(c, s, static_cast<unsigned>(g * W), bias, hit, a[g], b[g]);
    return true;
  };

  size_t s = 0;
  alignas(64) __m512i qo[G][16], qi[G][16];
  for (; s + kBlock <= S; s += kBlock) {
    for (int g = 0; g < G; ++g) {
      // The entering bytes come from memory (the leaving ones were read as entering n steps
      // ago and are still cached): sixteen streams are more than the hardware prefetcher follows.
      for (int l = 0; l < W; ++l) _mm_prefetch(reinterpret_cast<const char*>(inp + s + row[g][l]) + kPrefetch, _MM_HINT_T0);
      transpose16(outp + s, row[g], qo[g]);
      transpose16(inp + s, row[g], qi[g]);
    }
    for (int q = 0; q < 16; ++q) {
      for (int k = 0; k < 4; ++k) {
        for (int g = 0; g < G; ++g) {
          if (!step(g, _mm512_shuffle_epi8(qo[g][q], sel[k]), _mm512_shuffle_epi8(qi[g][q], sel[k]), s + 4 * q + k)) {
            return kSearchOverflow;
          }
        }
      }
    }
  }
  // The last S mod 64 steps: dword gathers, four steps each.
  for (; s < S; s += 4) {
    __m512i go[G], gi[G];
    for (int g = 0; g < G; ++g) {
      go[g] = _mm512_i32gather_epi32(off[g], outp + s, 1);
      gi[g] = _mm512_i32gather_epi32(off[g], inp + s, 1);
    }
    for (int k = 0; k < 4; ++k) {
      for (int g = 0; g < G; ++g) {
        if (!step(g, _mm512_shuffle_epi8(go[g], sel[k]), _mm512_shuffle_epi8(gi[g], sel[k]), s + k)) return kSearchOverflow;
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    alignas(64) uint32_t sa[W], sb[W];
    _mm512_store_si512(sa, a[g]);
    _mm512_store_si512(sb, b[g]);
    for (int l = 0; l < W; ++l) t.ends[g * W + l] = WindowState{sa[l] + bias, F == kRabinKarp ? 0u : sb[l]};
  }
  return c.found;
}

}  // namespace

size_t lanes_avx512(RollingKind kind) { return kind == RollingKind::RabinKarp ? 2 * W : W; }

size_t lane_kernel_avx512(const LaneTask& t, LaneHit* hits, size_t cap) {
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
