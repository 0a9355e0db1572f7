// MD4 (RFC 1320), as librsync's MD4 signatures use it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ds {

struct Md4State {
  uint32_t a, b, c, d;
  uint64_t total_len;
  uint8_t buffer[64];
  size_t buffered;
};

void md4_init(Md4State* s);
void md4_update(Md4State* s, const uint8_t* data, size_t len);
void md4_final(Md4State* s, uint8_t out[16]);
void md4(const uint8_t* data, size_t len, uint8_t out[16]);

}  // namespace ds
