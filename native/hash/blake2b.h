// BLAKE2b (RFC 7693), unkeyed, variable digest length 1..64. librsync uses out_len 32.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ds {

struct Blake2bState {
  uint64_t h[8];
  uint64_t t[2];
  uint8_t buffer[128];
  size_t buffered;
  size_t out_len;
};

void blake2b_init(Blake2bState* s, size_t out_len);
void blake2b_update(Blake2bState* s, const uint8_t* data, size_t len);
void blake2b_final(Blake2bState* s, uint8_t* out);
void blake2b(const uint8_t* data, size_t len, uint8_t* out, size_t out_len);

}  // namespace ds
