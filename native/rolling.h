// Rolling (weak) checksums. Each is a small state struct with the same verbs as librsync's:
// reset, update (a whole window), rollin, rollout, rotate, digest.
//
//  - Ds64: deltasync's default. rsync's two running sums (s1 = sum of bytes, s2 = sum of s1)
//    kept at full 32-bit width each instead of rsync's 16, packed as s2 << 32 | s1. Only adds
//    on the critical path (rotate is ~1 cycle of latency), and both sums are prefix-sum
//    computable for many offsets at once, which is what the SIMD search needs. See
//    docs/ROLLING.md for the measurement behind the choice.
//  - Rollsum: librsync's original (Adler-style, CHAR_OFFSET 31, 16-bit halves).
//  - RabinKarp: librsync's default polynomial hash mod 2^32 (seed 1, multiplier 0x08104225).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ds {

enum class RollingKind : uint8_t { Ds64 = 0, Rollsum = 1, RabinKarp = 2 };

inline size_t weak_width(RollingKind kind) { return kind == RollingKind::Ds64 ? 8 : 4; }

constexpr uint32_t kCharOffset = 31;

// rsync's two running sums: s1 = sum of (byte + kCharOffset), s2 = sum of the s1 values.
// Ds64 and Rollsum differ only in how much of them the digest keeps.
struct AdlerSums {
  uint32_t count = 0, s1 = 0, s2 = 0;
  void reset() { count = s1 = s2 = 0; }
  void update(const uint8_t* p, size_t n) {
    uint32_t a = s1, b = s2;
    for (size_t i = 0; i < n; ++i) {
      a += p[i] + kCharOffset;
      b += a;
    }
    s1 = a;
    s2 = b;
    count += static_cast<uint32_t>(n);
  }
  void rollin(uint8_t in) {
    s1 += in + kCharOffset;
    s2 += s1;
    ++count;
  }
  void rollout(uint8_t out) {
    s1 -= out + kCharOffset;
    s2 -= count * (out + kCharOffset);
    --count;
  }
  void rotate(uint8_t out, uint8_t in) {
    s1 += static_cast<uint32_t>(in) - out;
    s2 += s1 - count * (out + kCharOffset);
  }
};

struct Ds64 : AdlerSums {
  static constexpr RollingKind kind = RollingKind::Ds64;
  uint64_t digest() const { return (static_cast<uint64_t>(s2) << 32) | s1; }
};

struct Rollsum : AdlerSums {
  static constexpr RollingKind kind = RollingKind::Rollsum;
  // Only the low 16 bits of each sum survive, as in librsync.
  uint64_t digest() const { return ((s2 & 0xffffu) << 16) | (s1 & 0xffffu); }
};

struct RabinKarp {
  static constexpr RollingKind kind = RollingKind::RabinKarp;
  static constexpr uint32_t kSeed = 1;
  static constexpr uint32_t kMult = 0x08104225u;
  static constexpr uint32_t kInvMult = 0x98f009adu;  // kMult * kInvMult == 1 (mod 2^32)
  static constexpr uint32_t kAdj = kMult - 1;         // (kMult - 1) * kSeed
  uint32_t count = 0, hash = kSeed, mult = 1;         // mult == kMult^count
  void reset() {
    count = 0;
    hash = kSeed;
    mult = 1;
  }
  void update(const uint8_t* p, size_t n) {
    uint32_t h = hash, m = mult;
    for (size_t i = 0; i < n; ++i) {
      h = h * kMult + p[i];
      m *= kMult;
    }
    hash = h;
    mult = m;
    count += static_cast<uint32_t>(n);
  }
  void rollin(uint8_t in) {
    hash = hash * kMult + in;
    mult *= kMult;
    ++count;
  }
  void rollout(uint8_t out) {
    mult *= kInvMult;
    hash -= mult * (out + kAdj);
    --count;
  }
  void rotate(uint8_t out, uint8_t in) { hash = hash * kMult + in - mult * (out + kAdj); }
  uint64_t digest() const { return hash; }
};

static_assert(RabinKarp::kMult * RabinKarp::kInvMult == 1u, "inverse multiplier");

// Weak checksum of one whole window, by kind: the byte-at-a-time reference (weak.h has the
// vectorised equivalent the signature builder and matcher use).
inline uint64_t rolling_digest(RollingKind kind, const uint8_t* p, size_t n) {
  switch (kind) {
    case RollingKind::Ds64: { Ds64 s; s.update(p, n); return s.digest(); }
    case RollingKind::Rollsum: { Rollsum s; s.update(p, n); return s.digest(); }
    case RollingKind::RabinKarp: { RabinKarp s; s.update(p, n); return s.digest(); }
  }
  return 0;
}

// Calls f with a default-constructed state of the kind, so hot loops are instantiated per kind.
template <typename F>
auto with_rolling(RollingKind kind, F&& f) {
  switch (kind) {
    case RollingKind::Rollsum: return f(Rollsum{});
    case RollingKind::RabinKarp: return f(RabinKarp{});
    case RollingKind::Ds64: break;
  }
  return f(Ds64{});
}

}  // namespace ds
