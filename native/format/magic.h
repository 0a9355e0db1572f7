// Magic numbers of the four file kinds (docs/FORMAT.md) and detection from the first 4 bytes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "format/status.h"

namespace ds::format {

constexpr uint32_t kDsSigMagic = 0x64735347;    // "dsSG"
constexpr uint32_t kDsDeltaMagic = 0x6473444c;  // "dsDL"
constexpr uint32_t kRsMd4SigMagic = 0x72730136;     // rollsum + MD4
constexpr uint32_t kRsBlake2SigMagic = 0x72730137;  // rollsum + BLAKE2b
constexpr uint32_t kRsRkMd4SigMagic = 0x72730146;   // RabinKarp + MD4
constexpr uint32_t kRsRkBlake2SigMagic = 0x72730147;  // RabinKarp + BLAKE2b (rdiff's default)
constexpr uint32_t kRsDeltaMagic = 0x72730236;

enum class Family : uint8_t { Deltasync, Rdiff };
enum class FileKind : uint8_t { Signature, Delta };

const char* family_name(Family f);  // "deltasync" | "rdiff"
const char* kind_name(FileKind k);  // "signature" | "delta"

// What a magic number stands for; false for an unknown magic.
bool identify_magic(uint32_t magic, Family* family, FileKind* kind);

// Checks that data starts with the magic of a `want` file; sets *family. Errors as
// lib/format/detect.ts's expectMagic: ERR_TRUNCATED under 4 bytes, ERR_BAD_MAGIC otherwise.
Status expect_magic(const uint8_t* data, size_t len, FileKind want, Family* family);

inline uint64_t read_be(const uint8_t* p, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace ds::format
