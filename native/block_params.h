// Parameters shared by the signature builder and the matcher, validated once.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "hash/strong.h"
#include "rolling.h"

namespace ds {

// Hard bounds on anything that arrives from outside; the TS layer applies the same ones.
constexpr size_t kMinBlockLen = 1;
constexpr size_t kMaxBlockLen = size_t{64} << 20;

struct BlockParams {
  size_t block_len = 0;
  RollingKind rolling = RollingKind::Ds64;
  StrongKind strong = StrongKind::Xxh3;
  size_t strong_len = 0;

  size_t entry_size() const { return weak_width(rolling) + strong_len; }
  // Empty string when valid, else what is wrong.
  std::string check() const {
    if (block_len < kMinBlockLen || block_len > kMaxBlockLen) return "block length out of range";
    if (strong_len < 1 || strong_len > strong_full_len(strong)) return "strong sum length out of range";
    return {};
  }
};

inline void store_be(uint8_t* out, uint64_t v, size_t width) {
  for (size_t i = 0; i < width; ++i) out[i] = static_cast<uint8_t>(v >> (8 * (width - 1 - i)));
}
inline uint64_t load_be(const uint8_t* in, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v = (v << 8) | in[i];
  return v;
}

}  // namespace ds
