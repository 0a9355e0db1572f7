#include "format/signature_format.h"

#include <cstring>

#include "hash/xxh3.h"

namespace ds::format {

namespace {

constexpr uint8_t kDsVersion = 1;

Status bad_params(std::string message) { return Status::fail(ErrorKind::BadParams, std::move(message)); }

// Same checks and words as lib/params.ts's checkBlockLen / checkStrongLen.
Status check_block_len(uint64_t block_len, const char* where) {
  if (block_len < 1 || block_len > kMaxSigBlockLen) {
    return bad_params(std::string(where) + " " + decimal(block_len) + " out of range (1.." +
                      decimal(kMaxSigBlockLen) + ")");
  }
  return {};
}

Status check_strong_len(uint64_t strong_len, StrongKind strong, const char* where) {
  const size_t full = strong_full_len(strong);
  if (strong_len < 1 || strong_len > full) {
    return bad_params(std::string(where) + " " + decimal(strong_len) + " out of range for " + strong_name(strong) +
                      " (1.." + decimal(full) + ")");
  }
  return {};
}

// deltasync wire codes; 0 is never valid so a zeroed header is refused.
bool ds_rolling(uint8_t code, RollingKind* kind) {
  switch (code) {
    case 1: *kind = RollingKind::Ds64; return true;
    case 2: *kind = RollingKind::Rollsum; return true;
    case 3: *kind = RollingKind::RabinKarp; return true;
    default: return false;
  }
}

bool ds_strong(uint8_t code, StrongKind* kind) {
  switch (code) {
    case 1: *kind = StrongKind::Xxh3; return true;
    case 2: *kind = StrongKind::Md4; return true;
    case 3: *kind = StrongKind::Blake2b; return true;
    default: return false;
  }
}

bool rdiff_kinds(uint32_t magic, RollingKind* rolling, StrongKind* strong) {
  switch (magic) {
    case kRsMd4SigMagic: *rolling = RollingKind::Rollsum; *strong = StrongKind::Md4; return true;
    case kRsBlake2SigMagic: *rolling = RollingKind::Rollsum; *strong = StrongKind::Blake2b; return true;
    case kRsRkMd4SigMagic: *rolling = RollingKind::RabinKarp; *strong = StrongKind::Md4; return true;
    case kRsRkBlake2SigMagic: *rolling = RollingKind::RabinKarp; *strong = StrongKind::Blake2b; return true;
    default: return false;
  }
}

}  // namespace

const char* rolling_name(RollingKind kind) {
  switch (kind) {
    case RollingKind::Ds64: return "ds64";
    case RollingKind::Rollsum: return "rollsum";
    case RollingKind::RabinKarp: return "rabinkarp";
  }
  return "?";
}

const char* strong_name(StrongKind kind) {
  switch (kind) {
    case StrongKind::Xxh3: return "xxh3";
    case StrongKind::Md4: return "md4";
    case StrongKind::Blake2b: return "blake2b";
  }
  return "?";
}

Status parse_ds_signature_header(const uint8_t* data, size_t len, SignatureHeader* h) {
  if (len < kDsSigHeaderLen) {
    return Status::fail(ErrorKind::Truncated, "deltasync signature: header truncated (" + decimal(len) + " of " +
                                                  decimal(kDsSigHeaderLen) + " bytes)");
  }
  *h = SignatureHeader{};
  h->family = Family::Deltasync;
  h->header_len = kDsSigHeaderLen;
  h->magic = static_cast<uint32_t>(read_be(data, 4));
  if (h->magic != kDsSigMagic) {
    return Status::fail(ErrorKind::BadMagic, "not a deltasync signature (magic " + hex_padded(h->magic, 8) + ")");
  }
  if (data[4] != kDsVersion) {
    return Status::fail(ErrorKind::BadMagic, "deltasync signature version " + decimal(data[4]) +
                                                 " is not supported (expected " + decimal(kDsVersion) + ")");
  }
  if (!ds_rolling(data[5], &h->rolling)) {
    return bad_params("deltasync signature: unknown rolling checksum code " + decimal(data[5]));
  }
  if (!ds_strong(data[6], &h->strong)) {
    return bad_params("deltasync signature: unknown strong hash code " + decimal(data[6]));
  }
  h->strong_len = data[7];
  Status s = check_strong_len(h->strong_len, h->strong, "deltasync signature: strong sum length");
  if (!s.ok()) return s;
  h->block_len = static_cast<uint32_t>(read_be(data + 8, 4));
  s = check_block_len(h->block_len, "deltasync signature: block length");
  if (!s.ok()) return s;
  h->file_size = read_be(data + 12, 8);
  if (h->file_size > kMaxFileSize) return bad_params("deltasync signature: file size exceeds 2^53 - 1");
  // file_size < 2^53 and entry_size ≤ 40: no step below can wrap.
  h->block_count = (h->file_size + h->block_len - 1) / h->block_len;
  h->entry_size = static_cast<uint32_t>(weak_width(h->rolling) + h->strong_len);
  h->total_len = kDsSigHeaderLen + h->block_count * h->entry_size + kDsSigTrailerLen;
  if (h->total_len > kMaxSignatureBytes) {
    return bad_params("deltasync signature: " + decimal(h->block_count) + " blocks of " + decimal(h->entry_size) +
                      " bytes exceed the " + decimal(kMaxSignatureBytes) + "-byte signature limit");
  }
  return {};
}

Status parse_rdiff_signature_header(const uint8_t* data, size_t len, SignatureHeader* h) {
  if (len < kRsSigHeaderLen) {
    return Status::fail(ErrorKind::Truncated, "rdiff signature: header truncated (" + decimal(len) + " of " +
                                                  decimal(kRsSigHeaderLen) + " bytes)");
  }
  *h = SignatureHeader{};
  h->family = Family::Rdiff;
  h->header_len = kRsSigHeaderLen;
  h->magic = static_cast<uint32_t>(read_be(data, 4));
  if (!rdiff_kinds(h->magic, &h->rolling, &h->strong)) {
    return Status::fail(ErrorKind::BadMagic, "not an rdiff signature (magic " + hex_padded(h->magic, 8) + ")");
  }
  const uint64_t block_len = read_be(data + 4, 4);
  Status s = check_block_len(block_len, "rdiff signature: block length");
  if (!s.ok()) return s;
  const uint64_t strong_len = read_be(data + 8, 4);
  s = check_strong_len(strong_len, h->strong, "rdiff signature: strong sum length");
  if (!s.ok()) return s;
  h->block_len = static_cast<uint32_t>(block_len);
  h->strong_len = static_cast<uint32_t>(strong_len);
  h->entry_size = static_cast<uint32_t>(weak_width(h->rolling) + h->strong_len);
  return {};
}

Status rdiff_block_count(const SignatureHeader& h, uint64_t total_len, uint64_t* count) {
  if (total_len > kMaxSignatureBytes) {
    return bad_params("rdiff signature: " + decimal(total_len) + " bytes exceed the " + decimal(kMaxSignatureBytes) +
                      "-byte signature limit");
  }
  if (total_len < kRsSigHeaderLen) {
    return Status::fail(ErrorKind::Truncated, "rdiff signature: header truncated (" + decimal(total_len) + " of " +
                                                  decimal(kRsSigHeaderLen) + " bytes)");
  }
  if (h.entry_size == 0) return bad_params("rdiff signature: entry size 0");
  const uint64_t body = total_len - kRsSigHeaderLen;
  const uint64_t n = body / h.entry_size;
  if (n * h.entry_size != body) {
    return Status::fail(ErrorKind::Truncated, "rdiff signature: truncated inside block entry " + decimal(n) +
                                                  " (entries are " + decimal(h.entry_size) + " bytes)");
  }
  // n < 2^30 and block_len ≤ 2^26: the product fits in 64 bits.
  if (n * h.block_len > kMaxFileSize) {
    return bad_params("rdiff signature: " + decimal(n) + " blocks of " + decimal(h.block_len) +
                      " bytes exceed 2^53 - 1 bytes");
  }
  *count = n;
  return {};
}

Status parse_signature(const uint8_t* data, size_t len, ParsedSignature* out) {
  Family family;
  Status s = expect_magic(data, len, FileKind::Signature, &family);
  if (!s.ok()) return s;
  *out = ParsedSignature{};
  SignatureHeader& h = out->header;
  if (family == Family::Rdiff) {
    s = parse_rdiff_signature_header(data, len, &h);
    if (!s.ok()) return s;
    s = rdiff_block_count(h, len, &out->block_count);
    if (!s.ok()) return s;
    out->entries_offset = kRsSigHeaderLen;
    out->entries_len = len - kRsSigHeaderLen;
    return {};
  }
  s = parse_ds_signature_header(data, len, &h);
  if (!s.ok()) return s;
  if (len < h.total_len) {
    return Status::fail(ErrorKind::Truncated, "deltasync signature: truncated (" + decimal(len) + " of " +
                                                  decimal(h.total_len) + " bytes)");
  }
  if (len > h.total_len) {
    return Status::fail(ErrorKind::Corrupt, "deltasync signature: " + decimal(len - h.total_len) +
                                                " unexpected bytes after the end");
  }
  const size_t body_end = static_cast<size_t>(h.total_len - kDsSigTrailerLen);
  uint8_t digest[16];
  xxh3_128(data, body_end, digest);
  if (std::memcmp(digest, data + body_end, sizeof digest) != 0) {
    return Status::fail(ErrorKind::Corrupt, "deltasync signature: checksum mismatch (the signature is damaged)");
  }
  out->block_count = h.block_count;
  out->entries_offset = kDsSigHeaderLen;
  out->entries_len = body_end - kDsSigHeaderLen;
  return {};
}

}  // namespace ds::format
