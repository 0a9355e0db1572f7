// Scalar weak-sum primitives, the dispatch between SIMD variants, and the window helpers built on
// them (see weak.h).
#include "weak.h"

namespace ds {

ByteSums byte_sums_scalar(const uint8_t* p, size_t len) {
  // Eight bytes per step keep the dependency chain short: wsum grows by 8·sum plus the step's own
  // weighted sum, both independent of the running totals.
  uint32_t sum = 0, wsum = 0;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint32_t x0 = p[i], x1 = p[i + 1], x2 = p[i + 2], x3 = p[i + 3];
    const uint32_t x4 = p[i + 4], x5 = p[i + 5], x6 = p[i + 6], x7 = p[i + 7];
    const uint32_t step_sum = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
    const uint32_t step_w = 8 * x0 + 7 * x1 + 6 * x2 + 5 * x3 + 4 * x4 + 3 * x5 + 2 * x6 + x7;
    wsum += 8 * sum + step_w;
    sum += step_sum;
  }
  for (; i < len; ++i) {
    sum += p[i];
    wsum += sum;
  }
  return {sum, wsum};
}

uint32_t rk_poly_scalar(const uint8_t* p, size_t len) {
  constexpr uint32_t m1 = RabinKarp::kMult, m2 = m1 * m1, m3 = m2 * m1, m4 = m2 * m2;
  uint32_t h = 0;
  size_t i = 0;
  for (; i + 4 <= len; i += 4) h = h * m4 + p[i] * m3 + p[i + 1] * m2 + p[i + 2] * m1 + p[i + 3];
  for (; i < len; ++i) h = h * m1 + p[i];
  return h;
}

ByteSums byte_sums_at(SimdLevel level, const uint8_t* p, size_t len) {
  switch (level) {
#if defined(__x86_64__) || defined(__i386__)
    case SimdLevel::AVX512: return byte_sums_avx512(p, len);
    case SimdLevel::AVX2: return byte_sums_avx2(p, len);
#endif
#if defined(__aarch64__)
    case SimdLevel::NEON: return byte_sums_neon(p, len);
#endif
    default: break;
  }
  return byte_sums_scalar(p, len);
}

uint32_t rk_poly_at(SimdLevel level, const uint8_t* p, size_t len) {
  switch (level) {
#if defined(__x86_64__) || defined(__i386__)
    case SimdLevel::AVX512: return rk_poly_avx512(p, len);
    case SimdLevel::AVX2: return rk_poly_avx2(p, len);
#endif
#if defined(__aarch64__)
    case SimdLevel::NEON: return rk_poly_neon(p, len);
#endif
    default: break;
  }
  return rk_poly_scalar(p, len);
}

ByteSums byte_sums(const uint8_t* p, size_t len) { return byte_sums_at(simd_level(), p, len); }
uint32_t rk_poly(const uint8_t* p, size_t len) { return rk_poly_at(simd_level(), p, len); }

PowGeom rk_pow_geom(uint64_t e) {
  // Square-and-multiply over (M^k, Σ_{j<k} M^j): joining runs of length a and b gives
  // (M^(a+b), G_a·M^b + G_b).
  PowGeom result{1, 0}, run{RabinKarp::kMult, 1};
  while (e) {
    if (e & 1) result = {result.pow * run.pow, result.geom * run.pow + run.geom};
    run = {run.pow * run.pow, run.geom * run.pow + run.geom};
    e >>= 1;
  }
  return result;
}

namespace {
uint32_t triangle(size_t len) {
  const uint64_t n = len;
  return static_cast<uint32_t>(n * (n + 1) / 2);
}
}  // namespace

WindowState window_state(RollingKind kind, const uint8_t* p, size_t n) {
  if (kind == RollingKind::RabinKarp) {
    return {rk_pow_geom(n).pow * RabinKarp::kSeed + rk_poly(p, n), 0};
  }
  const ByteSums s = byte_sums(p, n);
  return {s.sum + kCharOffset * static_cast<uint32_t>(n), s.wsum + kCharOffset * triangle(n)};
}

uint64_t weak_digest(RollingKind kind, const uint8_t* p, size_t len) {
  return state_digest(kind, window_state(kind, p, len));
}

WindowState window_jump(RollingKind kind, const uint8_t* p, size_t n, WindowState s, size_t d,
                        uint32_t rk_mult_n) {
  if (d == 0) return s;
  const uint8_t* in = p + n;  // bytes entering the window, in order
  const uint8_t* out = p;     // bytes leaving it
  if (kind == RollingKind::RabinKarp) {
    // d rotations h' = h·M + in - M^n·(out + kAdj), unrolled.
    const PowGeom pg = rk_pow_geom(d);
    return {pg.pow * s.a + rk_poly(in, d) - rk_mult_n * (rk_poly(out, d) + RabinKarp::kAdj * pg.geom), 0};
  }
  // d rotations s1' = s1 + in - out, s2' = s2 + s1' - n·(out + 31), unrolled.
  const ByteSums si = byte_sums(in, d), so = byte_sums(out, d);
  const uint32_t dd = static_cast<uint32_t>(d), nn = static_cast<uint32_t>(n);
  return {s.a + si.sum - so.sum, s.b + dd * s.a + si.wsum - so.wsum - nn * (so.sum + kCharOffset * dd)};
}

}  // namespace ds
