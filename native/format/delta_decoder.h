// Streaming decoder for both delta formats (docs/FORMAT.md): push chunks of any size, get
// validated ops. Literal payloads are not copied: an op names a range of the chunk just pushed,
// so no per-byte work crosses into JS. Between chunks at most one incomplete command header
// (< kMaxUnit bytes) is kept. Every length and offset is bounded before use (2^53 - 1, the
// declared result size, the basis size when known); errors are returned, never thrown.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "format/magic.h"
#include "format/status.h"

namespace ds::format {

struct DeltaOp {
  enum Kind : uint8_t { Copy = 0, Literal = 1 };
  Kind kind;
  // Copy: basis offset. Literal: offset of the payload in the chunk passed to push().
  uint64_t offset;
  // ≥ 1 (zero-length rdiff commands are validated but produce no op).
  uint64_t length;
};

// Which format to expect; Auto picks it from the magic (a signature or unknown magic is refused).
enum class DeltaFormat : uint8_t { Auto, Deltasync, Rdiff };

class DeltaDecoder {
 public:
  static constexpr uint64_t kUnknownSize = ~uint64_t{0};
  // Longest unit parsed at once (magic + header, a command header, the result hash). Literal
  // payloads are not units: they stream through.
  static constexpr size_t kMaxUnit = 40;
  static constexpr size_t kResultHashLen = 16;

  // basis_size: when known, every COPY is checked against it here (ERR_CORRUPT).
  explicit DeltaDecoder(DeltaFormat format, uint64_t basis_size = kUnknownSize);

  // Decodes a chunk, appending ops (literal ranges index `data`). After an error every call
  // returns that error again; ops before it in the chunk are still appended.
  Status push(const uint8_t* data, size_t len, std::vector<DeltaOp>* out);
  // Declares the end of the delta: an error if it stopped before END (and the hash).
  Status finish();

  // Auto until the magic has been seen.
  DeltaFormat format() const { return format_; }
  bool has_result_size() const { return has_result_size_; }
  uint64_t result_size() const { return result_size_; }
  // The deltasync result hash, once read; nullptr before (and always for rdiff).
  const uint8_t* result_hash() const { return has_hash_ ? result_hash_ : nullptr; }
  // deltasync v2: the basis block grid the result digest is defined on (strong code 1 xxh3,
  // 2 md4, 3 blake2b; 0 until the header is read, and always for rdiff).
  uint8_t strong_code() const { return strong_code_; }
  uint64_t block_len() const { return block_len_; }
  uint64_t output_bytes() const { return output_bytes_; }
  uint64_t input_bytes() const { return input_bytes_; }
  bool done() const { return done_; }
  const Status& status() const { return status_; }

 private:
  enum class State : uint8_t { Magic, DsHeader, RdMagic, Ops, Trailer };

  // Parses one unit at p[0..n): bytes consumed, or 0 when the unit is incomplete or on error
  // (status_ then says which). Never consumes literal payload: sets literal_left_ instead.
  size_t step(const uint8_t* p, size_t n, std::vector<DeltaOp>* out);
  size_t step_magic(const uint8_t* p, size_t n, std::vector<DeltaOp>* out);
  size_t step_ds_header(const uint8_t* p, size_t n);
  size_t step_ds_command(const uint8_t* p, size_t n, std::vector<DeltaOp>* out);
  size_t step_rd_command(const uint8_t* p, size_t n, std::vector<DeltaOp>* out);
  // Reads an LEB128 varint (docs/FORMAT.md): 1 = done, 0 = incomplete, -1 = error (status_ set).
  int read_varint(const uint8_t* p, size_t n, const char* what, uint64_t* value, size_t* used);
  bool add_output(uint64_t length);
  bool emit_copy(uint64_t offset, uint64_t length, std::vector<DeltaOp>* out);
  size_t fail(ErrorKind kind, std::string message);
  const char* what() const;
  const char* expecting() const;

  DeltaFormat format_;
  State state_;
  uint64_t basis_size_;
  Status status_;

  uint8_t pending_[kMaxUnit];
  size_t pending_len_ = 0;
  uint64_t literal_left_ = 0;
  uint64_t prev_end_ = 0;  // deltasync: end of the previous COPY

  bool has_result_size_ = false;
  uint64_t result_size_ = 0;
  bool has_hash_ = false;
  uint8_t result_hash_[kResultHashLen] = {};
  uint8_t strong_code_ = 0;
  uint64_t block_len_ = 0;
  uint64_t output_bytes_ = 0;
  uint64_t input_bytes_ = 0;
  bool done_ = false;
};

}  // namespace ds::format
