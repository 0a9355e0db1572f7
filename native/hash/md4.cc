// MD4, written from RFC 1320 section 3 (steps 1-5). Words are little-endian; the digest is
// A, B, C, D each written little-endian.
#include "md4.h"

#include <cstring>

namespace ds {
namespace {

inline uint32_t rotl(uint32_t x, int s) { return (x << s) | (x >> (32 - s)); }

inline uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

inline void store_le32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// The three auxiliary functions of RFC 1320 section 3.4.
inline uint32_t f(uint32_t x, uint32_t y, uint32_t z) { return z ^ (x & (y ^ z)); }  // x ? y : z
inline uint32_t g(uint32_t x, uint32_t y, uint32_t z) { return (x & y) | (z & (x | y)); }  // majority
inline uint32_t h(uint32_t x, uint32_t y, uint32_t z) { return x ^ y ^ z; }

constexpr uint32_t kRound2 = 0x5A827999;  // sqrt(2) * 2^30
constexpr uint32_t kRound3 = 0x6ED9EBA1;  // sqrt(3) * 2^30

void process_blocks(Md4State* s, const uint8_t* p, size_t blocks) {
  uint32_t a = s->a, b = s->b, c = s->c, d = s->d;
  for (; blocks > 0; --blocks, p += 64) {
    uint32_t x[16];
    for (int i = 0; i < 16; ++i) x[i] = load_le32(p + 4 * i);
    const uint32_t aa = a, bb = b, cc = c, dd = d;

    // Round 1: [abcd k s] a = (a + F(b,c,d) + X[k]) <<< s, k in order, s cycling 3 7 11 19.
    for (int k = 0; k < 16; k += 4) {
      a = rotl(a + f(b, c, d) + x[k], 3);
      d = rotl(d + f(a, b, c) + x[k + 1], 7);
      c = rotl(c + f(d, a, b) + x[k + 2], 11);
      b = rotl(b + f(c, d, a) + x[k + 3], 19);
    }
    // Round 2: k column-wise (0 4 8 12, 1 5 9 13, ...), s cycling 3 5 9 13.
    for (int k = 0; k < 4; ++k) {
      a = rotl(a + g(b, c, d) + x[k] + kRound2, 3);
      d = rotl(d + g(a, b, c) + x[k + 4] + kRound2, 5);
      c = rotl(c + g(d, a, b) + x[k + 8] + kRound2, 9);
      b = rotl(b + g(c, d, a) + x[k + 12] + kRound2, 13);
    }
    // Round 3: k in bit-reversed order (0 8 4 12, 2 10 6 14, 1 9 5 13, 3 11 7 15), s 3 9 11 15.
    static constexpr int kOrder3[4] = {0, 2, 1, 3};
    for (int i = 0; i < 4; ++i) {
      const int k = kOrder3[i];
      a = rotl(a + h(b, c, d) + x[k] + kRound3, 3);
      d = rotl(d + h(a, b, c) + x[k + 8] + kRound3, 9);
      c = rotl(c + h(d, a, b) + x[k + 4] + kRound3, 11);
      b = rotl(b + h(c, d, a) + x[k + 12] + kRound3, 15);
    }
    a += aa;
    b += bb;
    c += cc;
    d += dd;
  }
  s->a = a;
  s->b = b;
  s->c = c;
  s->d = d;
}

}  // namespace

void md4_init(Md4State* s) {
  s->a = 0x67452301;
  s->b = 0xefcdab89;
  s->c = 0x98badcfe;
  s->d = 0x10325476;
  s->total_len = 0;
  s->buffered = 0;
}

void md4_update(Md4State* s, const uint8_t* data, size_t len) {
  if (len == 0) return;  // data may be null for an empty chunk
  s->total_len += len;
  if (s->buffered > 0) {
    size_t take = 64 - s->buffered;
    if (take > len) take = len;
    std::memcpy(s->buffer + s->buffered, data, take);
    s->buffered += take;
    data += take;
    len -= take;
    if (s->buffered < 64) return;
    process_blocks(s, s->buffer, 1);
    s->buffered = 0;
  }
  size_t blocks = len / 64;
  if (blocks > 0) process_blocks(s, data, blocks);
  data += blocks * 64;
  len -= blocks * 64;
  if (len > 0) std::memcpy(s->buffer, data, len);
  s->buffered = len;
}

void md4_final(Md4State* s, uint8_t out[16]) {
  // Step 1-2: a 1 bit, zeros up to 56 mod 64, then the bit length as a little-endian u64.
  const uint64_t bit_len = s->total_len * 8;
  uint8_t tail[128] = {0};
  std::memcpy(tail, s->buffer, s->buffered);
  tail[s->buffered] = 0x80;
  const size_t tail_len = s->buffered < 56 ? 64 : 128;
  for (int i = 0; i < 8; ++i) tail[tail_len - 8 + i] = static_cast<uint8_t>(bit_len >> (8 * i));
  process_blocks(s, tail, tail_len / 64);
  store_le32(out, s->a);
  store_le32(out + 4, s->b);
  store_le32(out + 8, s->c);
  store_le32(out + 12, s->d);
}

void md4(const uint8_t* data, size_t len, uint8_t out[16]) {
  Md4State s;
  md4_init(&s);
  md4_update(&s, data, len);
  md4_final(&s, out);
}

}  // namespace ds
