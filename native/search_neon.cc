// NEON lane kernel of the batched search (AArch64). NEON has no gather: each lane's next four
// bytes and its filter word are loaded one by one, and the arithmetic runs four lanes per vector,
// two vectors at a time. Same contract and results as search_avx2.cc.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstring>

#include "search.h"

namespace ds {
namespace {

enum Flavor { kDs64, kRollsum, kRabinKarp };

constexpr int W = 4;  // lanes per vector
constexpr int G = 2;  // vectors in flight

inline uint32x4_t load_dwords(const uint8_t* base, const uint32_t* off) {
  uint32_t v[W];
  for (int l = 0; l < W; ++l) std::memcpy(&v[l], base + off[l], 4);
  return vld1q_u32(v);
}

template <Flavor F>
size_t run(const LaneTask& t, LaneHit* hits, size_t cap) {
  const size_t S = t.steps;
  const uint32_t* words = t.filter.words;
  const int32x4_t neg_shift = vdupq_n_s32(-static_cast<int32_t>(t.filter.shift));
  const uint32x4_t one = vdupq_n_u32(1), m31 = vdupq_n_u32(31), low16 = vdupq_n_u32(0xffff);
  const uint32_t n = static_cast<uint32_t>(t.n);
  const uint32_t cn = F == kRabinKarp ? t.rk_mult_n : n;
  // Ds64 / Rollsum lanes carry v = s1 - 31·n (see search_avx512.cc).
  const uint32_t bias = F == kRabinKarp ? 0u : kCharOffset * n;
  const uint32x4_t vc = vdupq_n_u32(t.rk_mult_n * RabinKarp::kAdj);
  // Byte k of each little-endian dword, zero-extended.
  uint8x16_t sel[4];
  for (int k = 0; k < 4; ++k) {
    uint8_t s[16];
    for (int i = 0; i < 16; ++i) s[i] = (i & 3) == 0 ? static_cast<uint8_t>(i + k) : 0xff;
    sel[k] = vld1q_u8(s);
  }
  uint32_t off[G][W];
  uint32x4_t a[G], b[G];
  for (int g = 0; g < G; ++g) {
    uint32_t sa[W], sb[W];
    for (int l = 0; l < W; ++l) {
      off[g][l] = static_cast<uint32_t>((g * W + l) * S);
      sa[l] = t.starts[g * W + l].a - bias;
      sb[l] = t.starts[g * W + l].b;
    }
    a[g] = vld1q_u32(sa);
    b[g] = vld1q_u32(sb);
  }
  const uint8_t* outp = t.p;
  const uint8_t* inp = t.p + t.n;
  size_t found = 0;
  for (size_t s = 0; s < S; s += 4) {
    uint32x4_t go[G], gi[G];
    for (int g = 0; g < G; ++g) {
      go[g] = load_dwords(outp + s, off[g]);
      gi[g] = load_dwords(inp + s, off[g]);
    }
    for (int k = 0; k < 4; ++k) {
      for (int g = 0; g < G; ++g) {
        const uint32x4_t out = vreinterpretq_u32_u8(vqtbl1q_u8(vreinterpretq_u8_u32(go[g]), sel[k]));
        const uint32x4_t in = vreinterpretq_u32_u8(vqtbl1q_u8(vreinterpretq_u8_u32(gi[g]), sel[k]));
        uint32x4_t x;
        if (F == kRabinKarp) {
          const uint32x4_t y = vsubq_u32(in, vmlaq_n_u32(vc, out, cn));
          a[g] = vmlaq_n_u32(y, a[g], RabinKarp::kMult);
          x = a[g];
        } else {
          a[g] = vaddq_u32(a[g], vsubq_u32(in, out));
          b[g] = vaddq_u32(b[g], vsubq_u32(a[g], vmulq_n_u32(out, cn)));
          x = F == kDs64 ? veorq_u32(b[g], vshlq_n_u32(a[g], 16)) : vorrq_u32(vshlq_n_u32(b[g], 16), vandq_u32(a[g], low16));
        }
        const uint32x4_t key = vmulq_n_u32(x, kKeyMult);
        uint32_t widx[W];
        vst1q_u32(widx, vshlq_u32(key, neg_shift));
        const uint32_t wv[W] = {words[widx[0]], words[widx[1]], words[widx[2]], words[widx[3]]};
        const uint32x4_t word = vld1q_u32(wv);
        const uint32x4_t m = vorrq_u32(vshlq_u32(one, vreinterpretq_s32_u32(vandq_u32(key, m31))),
                                       vshlq_u32(one, vreinterpretq_s32_u32(vandq_u32(vshrq_n_u32(key, 5), m31))));
        const uint32x4_t hit = vceqq_u32(vandq_u32(word, m), m);
        if (__builtin_expect(vmaxvq_u32(hit) != 0, 0)) {
          uint32_t ha[W], hb[W], hm[W];
          vst1q_u32(ha, a[g]);
          vst1q_u32(hb, b[g]);
          vst1q_u32(hm, hit);
          for (int l = 0; l < W; ++l) {
            if (!hm[l]) continue;
            if (found == cap) return kSearchOverflow;
            hits[found++] = LaneHit{static_cast<uint32_t>(s + k), static_cast<uint32_t>(g * W + l), WindowState{ha[l] + bias, hb[l]}};
          }
        }
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    uint32_t sa[W], sb[W];
    vst1q_u32(sa, a[g]);
    vst1q_u32(sb, b[g]);
    for (int l = 0; l < W; ++l) t.ends[g * W + l] = WindowState{sa[l] + bias, F == kRabinKarp ? 0u : sb[l]};
  }
  return found;
}

}  // namespace

size_t lanes_neon(RollingKind) { return W * G; }

size_t lane_kernel_neon(const LaneTask& t, LaneHit* hits, size_t cap) {
  switch (t.kind) {
    case RollingKind::Ds64: return run<kDs64>(t, hits, cap);
    case RollingKind::Rollsum: return run<kRollsum>(t, hits, cap);
    case RollingKind::RabinKarp: return run<kRabinKarp>(t, hits, cap);
  }
  return kSearchOverflow;
}

}  // namespace ds
#endif
