// BLAKE2b, written from RFC 7693 (sections 2 and 3): unkeyed, digest length 1..64 bytes.
// The digest length goes into the parameter block, so out_len 32 is BLAKE2b-256 (what
// `b2sum -l 256` prints and librsync stores), not a truncated BLAKE2b-512.
#include "blake2b.h"

#include <cstring>

namespace ds {
namespace {

constexpr size_t kBlockBytes = 128;

// RFC 7693 section 2.6: the SHA-512 initialisation vector.
constexpr uint64_t kIv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

// RFC 7693 section 2.7: message word permutations; rounds 10 and 11 reuse rows 0 and 1.
constexpr uint8_t kSigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

inline uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The mixing function G (section 3.1) with rotation constants R1..R4 = 32, 24, 16, 63.
#define DS_BLAKE2B_G(a, b, c, d, x, y) \
  do {                                 \
    a = a + b + (x);                   \
    d = rotr(d ^ a, 32);               \
    c = c + d;                         \
    b = rotr(b ^ c, 24);               \
    a = a + b + (y);                   \
    d = rotr(d ^ a, 16);               \
    c = c + d;                         \
    b = rotr(b ^ c, 63);               \
  } while (0)

// Compression function F (section 3.2). t is the byte count up to and including this block.
void compress(uint64_t h[8], const uint8_t* block, uint64_t t_lo, uint64_t t_hi, bool last) {
  uint64_t m[16];
  for (int i = 0; i < 16; ++i) m[i] = load_le64(block + 8 * i);
  uint64_t v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
  uint64_t v8 = kIv[0], v9 = kIv[1], v10 = kIv[2], v11 = kIv[3];
  uint64_t v12 = kIv[4] ^ t_lo, v13 = kIv[5] ^ t_hi;
  uint64_t v14 = last ? ~kIv[6] : kIv[6], v15 = kIv[7];
  for (int r = 0; r < 12; ++r) {
    const uint8_t* s = kSigma[r];
    DS_BLAKE2B_G(v0, v4, v8, v12, m[s[0]], m[s[1]]);
    DS_BLAKE2B_G(v1, v5, v9, v13, m[s[2]], m[s[3]]);
    DS_BLAKE2B_G(v2, v6, v10, v14, m[s[4]], m[s[5]]);
    DS_BLAKE2B_G(v3, v7, v11, v15, m[s[6]], m[s[7]]);
    DS_BLAKE2B_G(v0, v5, v10, v15, m[s[8]], m[s[9]]);
    DS_BLAKE2B_G(v1, v6, v11, v12, m[s[10]], m[s[11]]);
    DS_BLAKE2B_G(v2, v7, v8, v13, m[s[12]], m[s[13]]);
    DS_BLAKE2B_G(v3, v4, v9, v14, m[s[14]], m[s[15]]);
  }
  h[0] ^= v0 ^ v8;
  h[1] ^= v1 ^ v9;
  h[2] ^= v2 ^ v10;
  h[3] ^= v3 ^ v11;
  h[4] ^= v4 ^ v12;
  h[5] ^= v5 ^ v13;
  h[6] ^= v6 ^ v14;
  h[7] ^= v7 ^ v15;
}

#undef DS_BLAKE2B_G

inline void add_to_counter(Blake2bState* s, uint64_t n) {
  s->t[0] += n;
  if (s->t[0] < n) ++s->t[1];
}

}  // namespace

void blake2b_init(Blake2bState* s, size_t out_len) {
  // Out-of-range lengths are a caller bug; clamp rather than write past `out`.
  if (out_len < 1) out_len = 1;
  if (out_len > 64) out_len = 64;
  for (int i = 0; i < 8; ++i) s->h[i] = kIv[i];
  // Parameter block word 0: digest length, key length 0, fanout 1, depth 1.
  s->h[0] ^= 0x01010000ULL ^ static_cast<uint64_t>(out_len);
  s->t[0] = s->t[1] = 0;
  s->buffered = 0;
  s->out_len = out_len;
}

void blake2b_update(Blake2bState* s, const uint8_t* data, size_t len) {
  // The last block must be compressed with the final flag, so a full block is only compressed
  // once at least one more byte is known to follow it.
  if (len == 0) return;
  if (s->buffered > 0 || len <= kBlockBytes) {
    size_t take = kBlockBytes - s->buffered;
    if (take > len) take = len;
    std::memcpy(s->buffer + s->buffered, data, take);
    s->buffered += take;
    data += take;
    len -= take;
    if (len == 0) return;
    add_to_counter(s, kBlockBytes);
    compress(s->h, s->buffer, s->t[0], s->t[1], false);
    s->buffered = 0;
  }
  while (len > kBlockBytes) {
    add_to_counter(s, kBlockBytes);
    compress(s->h, data, s->t[0], s->t[1], false);
    data += kBlockBytes;
    len -= kBlockBytes;
  }
  std::memcpy(s->buffer, data, len);
  s->buffered = len;
}

void blake2b_final(Blake2bState* s, uint8_t* out) {
  add_to_counter(s, s->buffered);
  std::memset(s->buffer + s->buffered, 0, kBlockBytes - s->buffered);
  compress(s->h, s->buffer, s->t[0], s->t[1], true);
  for (size_t i = 0; i < s->out_len; ++i) out[i] = static_cast<uint8_t>(s->h[i / 8] >> (8 * (i % 8)));
}

void blake2b(const uint8_t* data, size_t len, uint8_t* out, size_t out_len) {
  Blake2bState s;
  blake2b_init(&s, out_len);
  blake2b_update(&s, data, len);
  blake2b_final(&s, out);
}

}  // namespace ds
