// NEON weak-sum primitives (AArch64, where Advanced SIMD is always present; the dispatch still
// goes through ds::simd_level() so DELTASYNC_SIMD=scalar can force the scalar twins). Same
// arithmetic as weak_avx2.cc on 16-byte blocks.
#if defined(__aarch64__)
#include <arm_neon.h>

#include "weak.h"

namespace ds {

ByteSums byte_sums_neon(const uint8_t* p, size_t len) {
  static const uint8_t kWeights[16] = {16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  const uint8x8_t w_lo = vld1_u8(kWeights), w_hi = vld1_u8(kWeights + 8);
  uint32x4_t sums = vdupq_n_u32(0), before = vdupq_n_u32(0), weighted = vdupq_n_u32(0);
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const uint8x16_t x = vld1q_u8(p + i);
    before = vaddq_u32(before, sums);
    sums = vpadalq_u16(sums, vpaddlq_u8(x));
    // 255·16 + 255·8 fits 16 bits.
    const uint16x8_t w = vmlal_u8(vmull_u8(vget_low_u8(x), w_lo), vget_high_u8(x), w_hi);
    weighted = vpadalq_u16(weighted, w);
  }
  uint32_t sum = vaddvq_u32(sums);
  uint32_t wsum = 16 * vaddvq_u32(before) + vaddvq_u32(weighted);
  for (; i < len; ++i) {
    sum += p[i];
    wsum += sum;
  }
  return {sum, wsum};
}

uint32_t rk_poly_neon(const uint8_t* p, size_t len) {
  // Horner over 16-byte blocks, four lanes per vector (see rk_poly_avx2).
  constexpr uint32_t M = RabinKarp::kMult;
  uint32_t pw[16];
  uint32_t m = 1;
  for (int q = 15; q >= 0; --q) {
    pw[q] = m;
    m *= M;
  }
  const uint32x4_t p0 = vld1q_u32(pw), p1 = vld1q_u32(pw + 4), p2 = vld1q_u32(pw + 8), p3 = vld1q_u32(pw + 12);
  uint32x4_t acc = vdupq_n_u32(0);
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const uint8x16_t x = vld1q_u8(p + i);
    const uint16x8_t lo = vmovl_u8(vget_low_u8(x)), hi = vmovl_u8(vget_high_u8(x));
    uint32x4_t s = vmulq_u32(vmovl_u16(vget_low_u16(lo)), p0);
    s = vmlaq_u32(s, vmovl_u16(vget_high_u16(lo)), p1);
    s = vmlaq_u32(s, vmovl_u16(vget_low_u16(hi)), p2);
    s = vmlaq_u32(s, vmovl_u16(vget_high_u16(hi)), p3);
    acc = vmlaq_n_u32(s, acc, m);  // acc·M^16 + s
  }
  uint32_t h = vaddvq_u32(acc);
  for (; i < len; ++i) h = h * M + p[i];
  return h;
}

}  // namespace ds
#endif
