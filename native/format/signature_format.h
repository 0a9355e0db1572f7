// Validation of serialized signatures, both formats (docs/FORMAT.md): header fields, the block
// count implied by the length, and the deltasync trailer checksum (XXH3-128). Every count and
// length is bounded from the header before anything is sized from it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "format/magic.h"
#include "format/status.h"
#include "hash/strong.h"
#include "rolling.h"

namespace ds::format {

constexpr size_t kDsSigHeaderLen = 20;   // magic 4, version 1, rolling 1, strong 1, strongLen 1, blockLen 4, fileSize 8
constexpr size_t kDsSigTrailerLen = 16;  // XXH3-128 of everything before it
constexpr size_t kRsSigHeaderLen = 12;   // magic, block_len, strong_sum_len: three u32
constexpr uint64_t kMaxSigBlockLen = uint64_t{64} << 20;

struct SignatureHeader {
  Family family = Family::Deltasync;
  uint32_t magic = 0;
  RollingKind rolling = RollingKind::Ds64;
  StrongKind strong = StrongKind::Xxh3;
  uint32_t block_len = 0;
  uint32_t strong_len = 0;
  uint32_t entry_size = 0;  // weak width + strong_len
  size_t header_len = 0;
  // deltasync only: the header fixes the basis size, the block count and the whole length.
  uint64_t file_size = 0;
  uint64_t block_count = 0;
  uint64_t total_len = 0;
};

const char* rolling_name(RollingKind kind);  // "ds64" | "rollsum" | "rabinkarp"
const char* strong_name(StrongKind kind);    // "xxh3" | "md4" | "blake2b"

// The header at the start of data (a longer buffer is fine: only the header is read).
Status parse_ds_signature_header(const uint8_t* data, size_t len, SignatureHeader* h);
Status parse_rdiff_signature_header(const uint8_t* data, size_t len, SignatureHeader* h);

// Block count of a whole rdiff signature of total_len bytes whose header is h.
Status rdiff_block_count(const SignatureHeader& h, uint64_t total_len, uint64_t* count);

// A whole serialized signature, validated: magic, header, exact length (deltasync) or whole
// entries (rdiff), the 2^53 - 1 and 1 GiB bounds, and the deltasync checksum.
struct ParsedSignature {
  SignatureHeader header;
  uint64_t block_count = 0;
  size_t entries_offset = 0;  // entries are data[entries_offset, entries_offset + entries_len)
  size_t entries_len = 0;
};
Status parse_signature(const uint8_t* data, size_t len, ParsedSignature* out);

}  // namespace ds::format
