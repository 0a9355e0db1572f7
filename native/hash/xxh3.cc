// XXH3-128, seed 0, default secret. Written from the xxHash specification (doc/xxhash_spec.md,
// "XXH3 Algorithm Description"); section names below follow it. Large inputs (> 240 bytes) run
// the stripe/block accumulate loop through a per-ISA kernel chosen once per call; the scalar,
// SSE2 and NEON kernels live here, AVX2 and AVX-512 in their own translation units.
#include <cstring>

#include "xxh3.h"
#include "xxh3_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace ds {
namespace xxh3 {

alignas(64) const uint8_t kDefaultSecret[kSecretSize] = {
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
};

namespace {

constexpr uint64_t kPrime32_2 = 0x85EBCA77U;
constexpr uint64_t kPrime32_3 = 0xC2B2AE3DU;
constexpr uint64_t kPrime64_1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime64_2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kPrime64_3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kPrime64_4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kPrime64_5 = 0x27D4EB2F165667C5ULL;
constexpr uint64_t kPrimeMx1 = 0x165667919E3779F9ULL;
constexpr uint64_t kPrimeMx2 = 0x9FB21C651E98DF25ULL;

const uint8_t* const kSecret = kDefaultSecret;

inline uint32_t bswap32(uint32_t x) { return __builtin_bswap32(x); }
inline uint64_t bswap64(uint64_t x) { return __builtin_bswap64(x); }

// The specification reads all data and secret words little-endian.
inline uint32_t read32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = bswap32(v);
#endif
  return v;
}

inline uint64_t read64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = bswap64(v);
#endif
  return v;
}

inline void write64_be(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

struct U128 {
  uint64_t lo, hi;
};

inline U128 mul128(uint64_t a, uint64_t b) {
#if defined(__SIZEOF_INT128__)
  unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  return {static_cast<uint64_t>(p), static_cast<uint64_t>(p >> 64)};
#else
  // Schoolbook 32x32 partial products for targets without a 128-bit integer type.
  uint64_t lo_lo = (a & 0xFFFFFFFF) * (b & 0xFFFFFFFF);
  uint64_t hi_lo = (a >> 32) * (b & 0xFFFFFFFF);
  uint64_t lo_hi = (a & 0xFFFFFFFF) * (b >> 32);
  uint64_t hi_hi = (a >> 32) * (b >> 32);
  uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFF) + lo_hi;
  uint64_t upper = (hi_lo >> 32) + (cross >> 32) + hi_hi;
  uint64_t lower = (cross << 32) | (lo_lo & 0xFFFFFFFF);
  return {lower, upper};
#endif
}

inline uint64_t mul_fold64(uint64_t a, uint64_t b) {
  U128 p = mul128(a, b);
  return p.lo ^ p.hi;
}

inline uint64_t avalanche(uint64_t x) {
  x ^= x >> 37;
  x *= kPrimeMx1;
  x ^= x >> 32;
  return x;
}

inline uint64_t avalanche_xxh64(uint64_t x) {
  x ^= x >> 33;
  x *= kPrime64_2;
  x ^= x >> 29;
  x *= kPrime64_3;
  x ^= x >> 32;
  return x;
}

void emit(U128 h, uint8_t out[16]) {
  // Canonical form: the 128-bit value big-endian, i.e. high64 first, as xxhsum prints it.
  write64_be(out, h.hi);
  write64_be(out + 8, h.lo);
}

// ---- Small inputs (0..16 bytes) ----

U128 hash_0() {
  return {avalanche_xxh64(read64(kSecret + 64) ^ read64(kSecret + 72)),
          avalanche_xxh64(read64(kSecret + 80) ^ read64(kSecret + 88))};
}

U128 hash_1to3(const uint8_t* in, size_t len) {
  uint32_t combined = static_cast<uint32_t>(in[len - 1]) | (static_cast<uint32_t>(len) << 8) |
                      (static_cast<uint32_t>(in[0]) << 16) |
                      (static_cast<uint32_t>(in[len >> 1]) << 24);
  uint64_t low = static_cast<uint64_t>(read32(kSecret) ^ read32(kSecret + 4)) ^ combined;
  uint64_t high = static_cast<uint64_t>(read32(kSecret + 8) ^ read32(kSecret + 12)) ^
                  static_cast<uint64_t>(rotl32(bswap32(combined), 13));
  return {avalanche_xxh64(low), avalanche_xxh64(high)};
}

U128 hash_4to8(const uint8_t* in, size_t len) {
  uint64_t first = read32(in);
  uint64_t last = read32(in + len - 4);
  uint64_t combined = first | (last << 32);
  uint64_t value = (read64(kSecret + 16) ^ read64(kSecret + 24)) ^ combined;
  U128 m = mul128(value, kPrime64_1 + (static_cast<uint64_t>(len) << 2));
  uint64_t high = m.hi + (m.lo << 1);
  uint64_t low = m.lo ^ (high >> 3);
  low ^= low >> 35;
  low *= kPrimeMx2;
  low ^= low >> 28;
  return {low, avalanche(high)};
}

U128 hash_9to16(const uint8_t* in, size_t len) {
  uint64_t first = read64(in);
  uint64_t last = read64(in + len - 8);
  uint64_t val1 = (read64(kSecret + 32) ^ read64(kSecret + 40)) ^ first ^ last;
  uint64_t val2 = (read64(kSecret + 48) ^ read64(kSecret + 56)) ^ last;
  U128 m = mul128(val1, kPrime64_1);
  uint64_t low = m.lo + (static_cast<uint64_t>(len - 1) << 54);
  // high += val2 * PRIME32_2 restricted to the low 32 bits of val2, as the spec writes it.
  uint64_t high = m.hi + val2 + (val2 & 0xFFFFFFFF) * (kPrime32_2 - 1);
  low ^= bswap64(high);
  U128 m2 = mul128(low, kPrime64_2);
  return {avalanche(m2.lo), avalanche(m2.hi + high * kPrime64_2)};
}

// ---- Medium inputs (17..240 bytes) ----

inline uint64_t mix_step(const uint8_t* data, const uint8_t* secret) {
  return mul_fold64(read64(data) ^ read64(secret), read64(data + 8) ^ read64(secret + 8));
}

inline void mix_two_chunks(uint64_t acc[2], const uint8_t* a, const uint8_t* b,
                           const uint8_t* secret) {
  acc[0] += mix_step(a, secret);
  acc[1] += mix_step(b, secret + 16);
  acc[0] ^= read64(b) + read64(b + 8);
  acc[1] ^= read64(a) + read64(a + 8);
}

U128 finish_medium(const uint64_t acc[2], size_t len) {
  uint64_t low = acc[0] + acc[1];
  uint64_t high = acc[0] * kPrime64_1 + acc[1] * kPrime64_4 + static_cast<uint64_t>(len) * kPrime64_2;
  return {avalanche(low), 0 - avalanche(high)};
}

U128 hash_17to128(const uint8_t* in, size_t len) {
  uint64_t acc[2] = {static_cast<uint64_t>(len) * kPrime64_1, 0};
  // Pairs of 16-byte chunks from both ends, innermost pair first.
  size_t rounds = ((len - 1) >> 5) + 1;
  for (size_t r = rounds; r-- > 0;) {
    mix_two_chunks(acc, in + r * 16, in + len - r * 16 - 16, kSecret + r * 32);
  }
  return finish_medium(acc, len);
}

U128 hash_129to240(const uint8_t* in, size_t len) {
  uint64_t acc[2] = {static_cast<uint64_t>(len) * kPrime64_1, 0};
  size_t chunks = len >> 5;
  for (size_t i = 0; i < 4; ++i) mix_two_chunks(acc, in + i * 32, in + i * 32 + 16, kSecret + i * 32);
  acc[0] = avalanche(acc[0]);
  acc[1] = avalanche(acc[1]);
  for (size_t i = 4; i < chunks; ++i) {
    mix_two_chunks(acc, in + i * 32, in + i * 32 + 16, kSecret + (i - 4) * 32 + 3);
  }
  // Last 32 bytes with the halves swapped (the negated seed is 0 here).
  mix_two_chunks(acc, in + len - 16, in + len - 32, kSecret + 103);
  return finish_medium(acc, len);
}

// ---- Large inputs (> 240 bytes) ----

void init_acc(uint64_t acc[8]) {
  acc[0] = kPrime32_3;
  acc[1] = kPrime64_1;
  acc[2] = kPrime64_2;
  acc[3] = kPrime64_3;
  acc[4] = kPrime64_4;
  acc[5] = kPrime32_2;
  acc[6] = kPrime64_5;
  acc[7] = kPrime32_1;
}

inline void accumulate_scalar(uint64_t acc[8], const uint8_t* stripe, const uint8_t* secret) {
  for (size_t i = 0; i < 8; ++i) {
    uint64_t data = read64(stripe + 8 * i);
    uint64_t keyed = data ^ read64(secret + 8 * i);
    acc[i ^ 1] += data;
    acc[i] += (keyed & 0xFFFFFFFF) * (keyed >> 32);
  }
}

inline void scramble_scalar(uint64_t acc[8], const uint8_t* secret) {
  for (size_t i = 0; i < 8; ++i) {
    uint64_t a = acc[i];
    a ^= a >> 47;
    a ^= read64(secret + 8 * i);
    acc[i] = a * kPrime32_1;
  }
}

uint64_t final_merge(const uint64_t acc[8], uint64_t init, const uint8_t* secret) {
  uint64_t result = init;
  for (size_t i = 0; i < 4; ++i) {
    result += mul_fold64(acc[2 * i] ^ read64(secret + 16 * i),
                         acc[2 * i + 1] ^ read64(secret + 16 * i + 8));
  }
  return avalanche(result);
}

// The stripes before the last are consumed by the kernel; the last 64 bytes of the input (which
// may overlap stripes already consumed) are accumulated once more with their own secret offset.
U128 finish_large(uint64_t acc[8], const uint8_t* last_stripe, uint64_t total_len) {
  accumulate_scalar(acc, last_stripe, kSecret + kLastStripeOffset);
  return {final_merge(acc, total_len * kPrime64_1, kSecret + 11),
          final_merge(acc, ~(total_len * kPrime64_2), kSecret + kSecretSize - 64 - 11)};
}

U128 hash_large(const uint8_t* in, size_t len, ConsumeFn consume) {
  alignas(64) uint64_t acc[8];
  init_acc(acc);
  consume(acc, in, (len - 1) / kStripeLen, 0);
  return finish_large(acc, in + len - kStripeLen, len);
}

U128 hash_oneshot(const uint8_t* in, size_t len, ConsumeFn consume) {
  if (len <= 16) {
    if (len > 8) return hash_9to16(in, len);
    if (len >= 4) return hash_4to8(in, len);
    if (len > 0) return hash_1to3(in, len);
    return hash_0();
  }
  if (len <= 128) return hash_17to128(in, len);
  if (len <= 240) return hash_129to240(in, len);
  return hash_large(in, len, consume);
}

#if defined(__SSE2__)
// SSE2 twin of accumulate/scramble: two lanes per register, four registers per stripe.
inline void accumulate_sse2(__m128i acc[4], const uint8_t* stripe, const uint8_t* secret) {
  for (int i = 0; i < 4; ++i) {
    __m128i data = _mm_loadu_si128(reinterpret_cast<const __m128i*>(stripe) + i);
    __m128i key = _mm_loadu_si128(reinterpret_cast<const __m128i*>(secret) + i);
    __m128i keyed = _mm_xor_si128(data, key);
    __m128i product = _mm_mul_epu32(keyed, _mm_srli_epi64(keyed, 32));
    __m128i swapped = _mm_shuffle_epi32(data, _MM_SHUFFLE(1, 0, 3, 2));
    acc[i] = _mm_add_epi64(acc[i], _mm_add_epi64(product, swapped));
  }
}

inline void scramble_sse2(__m128i acc[4], const uint8_t* secret) {
  const __m128i prime = _mm_set1_epi32(static_cast<int>(kPrime32_1));
  for (int i = 0; i < 4; ++i) {
    __m128i a = _mm_xor_si128(acc[i], _mm_srli_epi64(acc[i], 47));
    a = _mm_xor_si128(a, _mm_loadu_si128(reinterpret_cast<const __m128i*>(secret) + i));
    // 64x32 multiply from two 32x32->64 products.
    __m128i lo = _mm_mul_epu32(a, prime);
    __m128i hi = _mm_mul_epu32(_mm_srli_epi64(a, 32), prime);
    acc[i] = _mm_add_epi64(lo, _mm_slli_epi64(hi, 32));
  }
}
#endif

#if defined(__aarch64__)
inline void accumulate_neon(uint64x2_t acc[4], const uint8_t* stripe, const uint8_t* secret) {
  for (int i = 0; i < 4; ++i) {
    uint64x2_t data = vreinterpretq_u64_u8(vld1q_u8(stripe + 16 * i));
    uint64x2_t key = vreinterpretq_u64_u8(vld1q_u8(secret + 16 * i));
    uint64x2_t keyed = veorq_u64(data, key);
    uint64x2_t sum = vaddq_u64(acc[i], vextq_u64(data, data, 1));
    acc[i] = vmlal_u32(sum, vmovn_u64(keyed), vshrn_n_u64(keyed, 32));
  }
}

inline void scramble_neon(uint64x2_t acc[4], const uint8_t* secret) {
  const uint32x2_t prime = vdup_n_u32(kPrime32_1);
  for (int i = 0; i < 4; ++i) {
    uint64x2_t a = veorq_u64(acc[i], vshrq_n_u64(acc[i], 47));
    a = veorq_u64(a, vreinterpretq_u64_u8(vld1q_u8(secret + 16 * i)));
    uint64x2_t hi = vshlq_n_u64(vmull_u32(vshrn_n_u64(a, 32), prime), 32);
    acc[i] = vmlal_u32(hi, vmovn_u64(a), prime);
  }
}
#endif

// The block loop shared by the kernels in this file: Vec is the accumulator register type.
template <typename Vec, int kRegs, void (*Load)(Vec*, const uint64_t*),
          void (*Store)(uint64_t*, const Vec*), void (*Accumulate)(Vec*, const uint8_t*, const uint8_t*),
          void (*Scramble)(Vec*, const uint8_t*)>
size_t consume_loop(uint64_t* acc_mem, const uint8_t* in, size_t stripes, size_t stripe_in_block) {
  Vec acc[kRegs];
  Load(acc, acc_mem);
  while (stripes > 0) {
    size_t n = kStripesPerBlock - stripe_in_block;
    if (n > stripes) n = stripes;
    const uint8_t* secret = kSecret + stripe_in_block * 8;
    for (size_t i = 0; i < n; ++i) {
      __builtin_prefetch(in + i * kStripeLen + kPrefetchAhead);
      Accumulate(acc, in + i * kStripeLen, secret + i * 8);
    }
    in += n * kStripeLen;
    stripes -= n;
    stripe_in_block += n;
    if (stripe_in_block == kStripesPerBlock) {
      Scramble(acc, kSecret + kScrambleOffset);
      stripe_in_block = 0;
    }
  }
  Store(acc_mem, acc);
  return stripe_in_block;
}

void load_u64(uint64_t* dst, const uint64_t* src) { std::memcpy(dst, src, 64); }
void store_u64(uint64_t* dst, const uint64_t* src) { std::memcpy(dst, src, 64); }

#if defined(__SSE2__)
void load_sse2(__m128i* dst, const uint64_t* src) {
  for (int i = 0; i < 4; ++i) dst[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src) + i);
}
void store_sse2(uint64_t* dst, const __m128i* src) {
  for (int i = 0; i < 4; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst) + i, src[i]);
}
#endif

#if defined(__aarch64__)
void load_neon(uint64x2_t* dst, const uint64_t* src) {
  for (int i = 0; i < 4; ++i) dst[i] = vld1q_u64(src + 2 * i);
}
void store_neon(uint64_t* dst, const uint64x2_t* src) {
  for (int i = 0; i < 4; ++i) vst1q_u64(dst + 2 * i, src[i]);
}
#endif

}  // namespace

size_t consume_scalar(uint64_t* acc, const uint8_t* input, size_t stripes, size_t stripe_in_block) {
  return consume_loop<uint64_t, 8, load_u64, store_u64, accumulate_scalar, scramble_scalar>(
      acc, input, stripes, stripe_in_block);
}

#if defined(__SSE2__)
size_t consume_sse2(uint64_t* acc, const uint8_t* input, size_t stripes, size_t stripe_in_block) {
  return consume_loop<__m128i, 4, load_sse2, store_sse2, accumulate_sse2, scramble_sse2>(
      acc, input, stripes, stripe_in_block);
}
#endif

#if defined(__aarch64__)
size_t consume_neon(uint64_t* acc, const uint8_t* input, size_t stripes, size_t stripe_in_block) {
  return consume_loop<uint64x2_t, 4, load_neon, store_neon, accumulate_neon, scramble_neon>(
      acc, input, stripes, stripe_in_block);
}
#endif

ConsumeFn consume_for(SimdLevel level) {
  switch (level) {
#if defined(__x86_64__) || defined(_M_X64)
    case SimdLevel::AVX512:
      return consume_avx512;
    case SimdLevel::AVX2:
      return consume_avx2;
    case SimdLevel::SSE41:
      return consume_sse2;
#endif
#if defined(__aarch64__)
    case SimdLevel::NEON:
      return consume_neon;
#endif
    default:
      return consume_scalar;
  }
}

}  // namespace xxh3

using namespace xxh3;

void xxh3_128_at(SimdLevel level, const uint8_t* data, size_t len, uint8_t out[16]) {
  emit(hash_oneshot(data, len, consume_for(level)), out);
}

void xxh3_128(const uint8_t* data, size_t len, uint8_t out[16]) {
  // Only large inputs reach the kernel, so only they pay for the dispatch lookup.
  ConsumeFn consume = len > 240 ? consume_for(simd_level()) : consume_scalar;
  emit(hash_oneshot(data, len, consume), out);
}

void xxh3_128_init(Xxh3State* s) {
  init_acc(s->acc);
  s->buffered = 0;
  s->total_len = 0;
  s->stripes_in_block = 0;
  std::memset(s->last_stripe, 0, sizeof s->last_stripe);
}

// Streaming keeps the last byte(s) of input buffered until more arrives, because the final
// stripe(s) are treated differently. The buffer holds 256 bytes, so any input of at most 240
// bytes is still entirely buffered at digest time and hashed with the small/medium algorithms.
// `last_stripe` keeps the 64 input bytes just before the buffer for when fewer than 64 remain.
static void update_with(Xxh3State* s, const uint8_t* data, size_t len, ConsumeFn consume) {
  constexpr size_t kBufSize = sizeof s->buffer;
  static_assert(kBufSize % kStripeLen == 0 && kBufSize > 240, "buffer layout");
  s->total_len += len;
  if (len <= kBufSize - s->buffered) {
    if (len > 0) std::memcpy(s->buffer + s->buffered, data, len);
    s->buffered += len;
    return;
  }
  if (s->buffered > 0) {
    // More data follows the buffer, so none of its stripes is the final one.
    size_t fill = kBufSize - s->buffered;
    std::memcpy(s->buffer + s->buffered, data, fill);
    data += fill;
    len -= fill;
    s->stripes_in_block =
        consume(s->acc, s->buffer, kBufSize / kStripeLen, s->stripes_in_block);
    std::memcpy(s->last_stripe, s->buffer + kBufSize - kStripeLen, kStripeLen);
    s->buffered = 0;
  }
  if (len > kBufSize) {
    // Consume straight from the caller's memory, leaving 1..64 bytes for the buffer.
    size_t stripes = (len - 1) / kStripeLen;
    s->stripes_in_block = consume(s->acc, data, stripes, s->stripes_in_block);
    data += stripes * kStripeLen;
    len -= stripes * kStripeLen;
    std::memcpy(s->last_stripe, data - kStripeLen, kStripeLen);
  }
  std::memcpy(s->buffer, data, len);
  s->buffered = len;
}

void xxh3_128_update_at(SimdLevel level, Xxh3State* s, const uint8_t* data, size_t len) {
  update_with(s, data, len, consume_for(level));
}

void xxh3_128_update(Xxh3State* s, const uint8_t* data, size_t len) {
  // Small updates only fill the buffer; dispatch once per call, never per stripe.
  update_with(s, data, len, consume_for(simd_level()));
}

void xxh3_128_digest(const Xxh3State* s, uint8_t out[16]) {
  if (s->total_len <= 240) {
    // Nothing was consumed yet: the whole input is in the buffer.
    emit(hash_oneshot(s->buffer, static_cast<size_t>(s->total_len), consume_scalar), out);
    return;
  }
  alignas(64) uint64_t acc[8];
  std::memcpy(acc, s->acc, sizeof acc);
  const uint8_t* last;
  uint8_t joined[kStripeLen];
  if (s->buffered >= kStripeLen) {
    // At most three stripes: the scalar kernel is as good as any here.
    consume_scalar(acc, s->buffer, (s->buffered - 1) / kStripeLen, s->stripes_in_block);
    last = s->buffer + s->buffered - kStripeLen;
  } else {
    size_t from_prev = kStripeLen - s->buffered;
    std::memcpy(joined, s->last_stripe + s->buffered, from_prev);
    std::memcpy(joined + from_prev, s->buffer, s->buffered);
    last = joined;
  }
  emit(finish_large(acc, last, s->total_len), out);
}

}  // namespace ds
