// Shared between the XXH3 translation units: the default secret, the layout constants and the
// per-ISA "consume stripes" kernels. Each kernel lives in a TU compiled with its own -m flags, so
// this header holds only declarations and constants: an inline function defined here and used
// in an AVX TU could be picked by the linker for the scalar TU and fault on older CPUs.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../cpu.h"
#include "xxh3.h"

namespace ds {
namespace xxh3 {

constexpr size_t kSecretSize = 192;
constexpr size_t kStripeLen = 64;
// Stripes per block: (secret size - stripe length) / 8.
constexpr size_t kStripesPerBlock = (kSecretSize - kStripeLen) / 8;
constexpr size_t kBlockLen = kStripeLen * kStripesPerBlock;
// The scramble step reads the last 64 bytes of the secret.
constexpr size_t kScrambleOffset = kSecretSize - kStripeLen;
// Secret offset for the final (possibly overlapping) stripe: secret size - 64 - 7.
constexpr size_t kLastStripeOffset = kSecretSize - kStripeLen - 7;
constexpr uint32_t kPrime32_1 = 0x9E3779B1U;
// Kernels prefetch this far ahead of the stripe being accumulated (a hint only: it never faults,
// even past the end of the input).
constexpr size_t kPrefetchAhead = 384;

// The default 192-byte secret from the xxHash specification, 64-byte aligned for vector loads.
extern const uint8_t kDefaultSecret[kSecretSize];

// Accumulates `stripes` consecutive 64-byte stripes of `input` into acc[8]. `stripe_in_block` is
// the index (0..15) of the first stripe within its block; after a block's last stripe the
// accumulators are scrambled. Returns the index within the block of the next stripe.
using ConsumeFn = size_t (*)(uint64_t* acc, const uint8_t* input, size_t stripes,
                             size_t stripe_in_block);

size_t consume_scalar(uint64_t* acc, const uint8_t* input, size_t stripes, size_t stripe_in_block);
#if defined(__x86_64__) || defined(_M_X64)
size_t consume_sse2(uint64_t* acc, const uint8_t* input, size_t stripes, size_t stripe_in_block);
size_t consume_avx2(uint64_t* acc, const uint8_t* input, size_t stripes, size_t stripe_in_block);
size_t consume_avx512(uint64_t* acc, const uint8_t* input, size_t stripes,
                      size_t stripe_in_block);
#endif
#if defined(__aarch64__)
size_t consume_neon(uint64_t* acc, const uint8_t* input, size_t stripes, size_t stripe_in_block);
#endif

// The kernel used for a SIMD level (falls back to the best one compiled in below it).
ConsumeFn consume_for(SimdLevel level);

}  // namespace xxh3

// Same as xxh3_128 / xxh3_128_update but with an explicit SIMD level, so tests can run every
// variant side by side without touching the process-wide level. The level must be supported.
void xxh3_128_at(SimdLevel level, const uint8_t* data, size_t len, uint8_t out[16]);
void xxh3_128_update_at(SimdLevel level, Xxh3State* s, const uint8_t* data, size_t len);

}  // namespace ds
