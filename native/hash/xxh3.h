// XXH3-128 (seed 0, default secret), written from the xxHash specification and checked
// against Debian's `xxhsum -H2`.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ds {

// Streaming state. Opaque fields; sized for the 64-byte-aligned accumulators and buffer.
struct Xxh3State {
  alignas(64) uint64_t acc[8];
  alignas(64) uint8_t buffer[256];
  size_t buffered;
  uint64_t total_len;
  size_t stripes_in_block;
  uint8_t last_stripe[64];
};

void xxh3_128_init(Xxh3State* s);
void xxh3_128_update(Xxh3State* s, const uint8_t* data, size_t len);
// Writes 16 bytes, canonical (big-endian high64 then low64), as xxhsum prints them.
void xxh3_128_digest(const Xxh3State* s, uint8_t out[16]);
void xxh3_128(const uint8_t* data, size_t len, uint8_t out[16]);

}  // namespace ds
