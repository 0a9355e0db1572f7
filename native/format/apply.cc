#include "format/apply.h"

#include <algorithm>
#include <cstring>

#include "format/delta_decoder.h"
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

}  // namespace

Status apply_delta(const uint8_t* basis, size_t basis_len, const uint8_t* delta, size_t delta_len,
                   const size_t* chunk_sizes, size_t chunk_count, uint64_t max_output, std::vector<uint8_t>* out,
                   ApplyResult* result) {
  *result = ApplyResult{};
  out->clear();
  DeltaDecoder decoder(DeltaFormat::Auto, basis_len);
  std::vector<DeltaOp> ops;
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
    // Ops decoded before an error are applied, as a streaming patcher would have done.
    for (const DeltaOp& op : ops) {
      if (op.kind == DeltaOp::Copy) {
        // The decoder checked the range against basis_len; check again where it is used.
        if (op.offset > basis_len || op.length > basis_len - op.offset) {
          return Status::fail(ErrorKind::Corrupt, "delta COPY past the end of the basis");
        }
        Status a = append(out, basis + op.offset, op.length, max_output);
        if (!a.ok()) return a;
        result->copied_bytes += op.length;
      } else {
        if (op.offset > n || op.length > n - op.offset) {
          return Status::fail(ErrorKind::Corrupt, "internal error: literal range outside the chunk");
        }
        Status a = append(out, chunk + op.offset, op.length, max_output);
        if (!a.ok()) return a;
        result->literal_bytes += op.length;
      }
    }
    if (!s.ok()) return s;
    pos += n;
  }
  Status s = decoder.finish();
  if (!s.ok()) return s;
  if (decoder.format() == DeltaFormat::Deltasync) {
    uint8_t digest[16];
    xxh3_128(out->data(), out->size(), digest);
    if (std::memcmp(digest, decoder.result_hash(), sizeof digest) != 0) {
      return Status::fail(ErrorKind::HashMismatch,
                          "patched result does not match the hash in the delta (wrong basis, or a damaged delta)");
    }
    result->verified = true;
  }
  return {};
}

}  // namespace ds::format
