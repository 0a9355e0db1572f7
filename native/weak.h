// Weak sums of whole windows, vectorised: the signature's per-block sums, the matcher's window
// (re)starts and the jumps that start the lanes of the batched search (search.h).
//
// Two primitives cover all three rolling kinds:
//   byte_sums(p, len) = { Σ x_j , Σ (len - j)·x_j }            (x_j raw bytes, mod 2^32)
//   rk_poly(p, len)   = Σ M^(len-1-j)·x_j                       (M = RabinKarp::kMult, mod 2^32)
// Ds64 / Rollsum:  s1 = sum + 31·len,  s2 = wsum + 31·len·(len+1)/2
// RabinKarp:       hash = M^len·seed + poly,  mult = M^len
// Each primitive has a scalar version and one per SIMD level; all compute the same exact integers
// (mod 2^32), and ds::simd_level() picks which one runs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu.h"
#include "rolling.h"

namespace ds {

struct ByteSums {
  uint32_t sum;   // Σ x_j
  uint32_t wsum;  // Σ (len - j)·x_j
};

ByteSums byte_sums_scalar(const uint8_t* p, size_t len);
uint32_t rk_poly_scalar(const uint8_t* p, size_t len);
#if defined(__x86_64__) || defined(__i386__)
ByteSums byte_sums_avx2(const uint8_t* p, size_t len);
uint32_t rk_poly_avx2(const uint8_t* p, size_t len);
ByteSums byte_sums_avx512(const uint8_t* p, size_t len);
uint32_t rk_poly_avx512(const uint8_t* p, size_t len);
#endif
#if defined(__aarch64__)
ByteSums byte_sums_neon(const uint8_t* p, size_t len);
uint32_t rk_poly_neon(const uint8_t* p, size_t len);
#endif

// The variant of the level in force (or of an explicit level, for tests and benchmarks; a level
// without its own variant falls back to the next lower one it has).
ByteSums byte_sums(const uint8_t* p, size_t len);
uint32_t rk_poly(const uint8_t* p, size_t len);
ByteSums byte_sums_at(SimdLevel level, const uint8_t* p, size_t len);
uint32_t rk_poly_at(SimdLevel level, const uint8_t* p, size_t len);

// M^e and Σ_{j<e} M^j (mod 2^32), in O(log e).
struct PowGeom {
  uint32_t pow;
  uint32_t geom;
};
PowGeom rk_pow_geom(uint64_t e);

// Kind-neutral state of a full-length window: Ds64 / Rollsum a = s1, b = s2; RabinKarp a = hash
// (its mult is M^n for every full window).
struct WindowState {
  uint32_t a = 0, b = 0;
  bool operator==(const WindowState& o) const { return a == o.a && b == o.b; }
};

// State of the window p[0, n), through the dispatched primitives.
WindowState window_state(RollingKind kind, const uint8_t* p, size_t n);
// Digest of a window of any length (what rolling_digest computes, but vectorised).
uint64_t weak_digest(RollingKind kind, const uint8_t* p, size_t len);
// Digest of a full window from its state.
inline uint64_t state_digest(RollingKind kind, WindowState s) {
  switch (kind) {
    case RollingKind::Ds64: return (static_cast<uint64_t>(s.b) << 32) | s.a;
    case RollingKind::Rollsum: return ((s.b & 0xffffu) << 16) | (s.a & 0xffffu);
    case RollingKind::RabinKarp: break;
  }
  return s.a;
}
// State of the window d offsets later: the window at p[0, n) has state s; reads p[0, n + d).
// rk_mult_n = M^n (RabinKarp only).
WindowState window_jump(RollingKind kind, const uint8_t* p, size_t n, WindowState s, size_t d, uint32_t rk_mult_n);

// Conversions between the rolling structs (rolling.h) and WindowState, for windows of length n.
inline WindowState state_of(const Ds64& r) { return {r.s1, r.s2}; }
inline WindowState state_of(const Rollsum& r) { return {r.s1, r.s2}; }
inline WindowState state_of(const RabinKarp& r) { return {r.hash, 0}; }
inline void set_state(Ds64* r, WindowState s, size_t n, uint32_t) {
  r->count = static_cast<uint32_t>(n);
  r->s1 = s.a;
  r->s2 = s.b;
}
inline void set_state(Rollsum* r, WindowState s, size_t n, uint32_t) {
  r->count = static_cast<uint32_t>(n);
  r->s1 = s.a;
  r->s2 = s.b;
}
inline void set_state(RabinKarp* r, WindowState s, size_t n, uint32_t rk_mult_n) {
  r->count = static_cast<uint32_t>(n);
  r->hash = s.a;
  r->mult = rk_mult_n;
}

}  // namespace ds
