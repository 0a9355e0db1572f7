#include "format/apply.h"

#include <algorithm>
#include <cstring>

#include "format/delta_decoder.h"
#include "hash/strong.h"
#include "hash/xxh3.h"

namespace ds::format {

namespace {

Status append(std::vector<uint8_t>* out, const uint8_t* p, uint64_t n, uint64_t max_output) {
  if (n > max_output - out->size()) {
    return Status::fail(ErrorKind::BadParams,
                        "patched result exceeds the " + decimal(max_output) + "-byte output limit");
  }
  out->insert(out->end(), p, p + n);
  return {};
}

// The deltasync v2 block digest (docs/FORMAT.md), computed from the bytes: every COPY piece
// (the part inside one basis grid cell) is hashed in full here, as a patcher without a trusted
// grid does.
class BlockDigest {
 public:
  void start(StrongKind strong, uint64_t block_len) {
    strong_ = strong;
    block_len_ = block_len;
    xxh3_128_init(&state_);
  }
  void literal(const uint8_t* p, uint64_t n) {
    xxh3_128_update(&state_, p, n);
    run_ += n;
    size_ += n;
  }
  void copy(const uint8_t* basis, uint64_t offset, uint64_t length) {
    for (uint64_t at = offset, end = offset + length; at < end;) {
      const uint64_t next = std::min(end, (at / block_len_ + 1) * block_len_);
      uint8_t hash[kMaxStrongLen];
      strong_sum(strong_, basis + at, next - at, hash);
      put_u64(run_);
      xxh3_128_update(&state_, hash, strong_full_len(strong_));
      run_ = 0;
      ++pieces_;
      size_ += next - at;
      at = next;
    }
  }
  void digest(uint8_t out[16]) {
    put_u64(run_);
    put_u64(size_);
    put_u64(pieces_);
    xxh3_128_digest(&state_, out);
  }

 private:
  void put_u64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    xxh3_128_update(&state_, b, 8);
  }
  Xxh3State state_{};
  StrongKind strong_ = StrongKind::Xxh3;
  uint64_t block_len_ = 1;
  uint64_t run_ = 0;
  uint64_t size_ = 0;
  uint64_t pieces_ = 0;
};

}  // namespace

Status apply_delta(const uint8_t* basis, size_t basis_len, const uint8_t* delta, size_t delta_len,
                   const size_t* chunk_sizes, size_t chunk_count, uint64_t max_output, std::vector<uint8_t>* out,
                   ApplyResult* result) {
  *result = ApplyResult{};
  out->clear();
  DeltaDecoder decoder(DeltaFormat::Auto, basis_len);
  std::vector<DeltaOp> ops;
  BlockDigest digest;
  bool digest_started = false;
  size_t pos = 0;
  size_t plan = 0;
  size_t empty_in_a_row = 0;
  while (pos < delta_len) {
    size_t n = delta_len - pos;
    if (chunk_count > 0) {
      n = std::min(n, chunk_sizes[plan++ % chunk_count]);
      // A plan of only zeros would never end: after a whole cycle of them, take the rest.
      empty_in_a_row = n == 0 ? empty_in_a_row + 1 : 0;
      if (empty_in_a_row > chunk_count) n = delta_len - pos;
    }
    const uint8_t* chunk = delta + pos;
    ops.clear();
    const Status s = decoder.push(chunk, n, &ops);
    if (!digest_started && decoder.strong_code() != 0) {
      // Wire codes 1..3 are xxh3, md4, blake2b.
      digest.start(static_cast<StrongKind>(decoder.strong_code() - 1), decoder.block_len());
      digest_started = true;
    }
    // Ops decoded before an error are applied, as a streaming patcher would have done.
    for (const DeltaOp& op : ops) {
      if (op.kind == DeltaOp::Copy) {
        // The decoder checked the range against basis_len; check again where it is used.
        if (op.offset > basis_len || op.length > basis_len - op.offset) {
          return Status::fail(ErrorKind::Corrupt, "delta COPY past the end of the basis");
        }
        Status a = append(out, basis + op.offset, op.length, max_output);
        if (!a.ok()) return a;
        if (digest_started) digest.copy(basis, op.offset, op.length);
        result->copied_bytes += op.length;
      } else {
        if (op.offset > n || op.length > n - op.offset) {
          return Status::fail(ErrorKind::Corrupt, "internal error: literal range outside the chunk");
        }
        Status a = append(out, chunk + op.offset, op.length, max_output);
        if (!a.ok()) return a;
        if (digest_started) digest.literal(chunk + op.offset, op.length);
        result->literal_bytes += op.length;
      }
    }
    if (!s.ok()) return s;
    pos += n;
  }
  Status s = decoder.finish();
  if (!s.ok()) return s;
  if (decoder.format() == DeltaFormat::Deltasync) {
    uint8_t actual[16];
    digest.digest(actual);
    if (std::memcmp(actual, decoder.result_hash(), sizeof actual) != 0) {
      return Status::fail(ErrorKind::HashMismatch,
                          "patched result does not match the hash in the delta (wrong basis, or a damaged delta)");
    }
    result->verified = true;
  }
  return {};
}

}  // namespace ds::format
