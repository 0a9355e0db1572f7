#include "format/delta_decoder.h"

#include <algorithm>
#include <cstring>

namespace ds::format {

namespace {

// deltasync delta (dsDL) command bytes and header flag.
constexpr uint8_t kDsVersion = 2;  // 2: block digest trailer, grid (strong kind, blockLen) in the header
constexpr uint8_t kDsEnd = 0x00;
constexpr uint8_t kDsLiteral = 0x01;    // varint length, then the bytes
constexpr uint8_t kDsCopyNext = 0x02;   // varint length; offset = end of the previous copy
constexpr uint8_t kDsCopyFwd = 0x03;    // varint d, varint length; offset = previous end + d
constexpr uint8_t kDsCopyBack = 0x04;   // varint d, varint length; offset = previous end - d
constexpr uint8_t kDsFlagSize = 0x01;   // a varint result size follows the flags
constexpr size_t kMaxVarintBytes = 8;
constexpr uint64_t kMaxDeltaBlockLen = uint64_t{64} << 20;  // the signatures' bound

// librsync's command table (its prototab), computed once at compile time: what each command
// byte means and how wide its arguments are.
struct RdCommand {
  enum Kind : uint8_t { End, Literal, Copy, Reserved };
  Kind kind;
  uint8_t immediate;  // literal length carried by the byte itself (0x01..0x40)
  uint8_t arg1;       // width of the first argument (literal length, or copy offset)
  uint8_t arg2;       // width of the second argument (copy length)
};

struct RdCommandTable {
  RdCommand at[256];
  constexpr RdCommandTable() : at() {
    constexpr uint8_t widths[4] = {1, 2, 4, 8};
    for (unsigned b = 0; b < 256; ++b) {
      if (b == 0x00) {
        at[b] = {RdCommand::End, 0, 0, 0};
      } else if (b <= 0x40) {
        at[b] = {RdCommand::Literal, static_cast<uint8_t>(b), 0, 0};
      } else if (b <= 0x44) {
        at[b] = {RdCommand::Literal, 0, widths[b - 0x41], 0};
      } else if (b <= 0x54) {
        at[b] = {RdCommand::Copy, 0, widths[(b - 0x45) >> 2], widths[(b - 0x45) & 3]};
      } else {
        at[b] = {RdCommand::Reserved, 0, 0, 0};
      }
    }
  }
};

constexpr RdCommandTable kRdCommands;

// An 8-byte field may hold values JS cannot represent exactly.
bool fits_js(uint64_t v) { return v <= kMaxFileSize; }

}  // namespace

DeltaDecoder::DeltaDecoder(DeltaFormat format, uint64_t basis_size)
    : format_(format),
      state_(format == DeltaFormat::Auto ? State::Magic
                                         : format == DeltaFormat::Deltasync ? State::DsHeader : State::RdMagic),
      basis_size_(basis_size) {}

const char* DeltaDecoder::what() const { return format_ == DeltaFormat::Rdiff ? "rdiff delta" : "deltasync delta"; }

const char* DeltaDecoder::expecting() const {
  switch (state_) {
    case State::Magic:
    case State::RdMagic:
      return "inside the magic";
    case State::DsHeader:
      return "inside the header";
    case State::Ops:
      return "no END command";
    case State::Trailer:
      return "inside the result hash";
  }
  return "";
}

size_t DeltaDecoder::fail(ErrorKind kind, std::string message) {
  status_ = Status::fail(kind, std::move(message));
  return 0;
}

Status DeltaDecoder::push(const uint8_t* data, size_t len, std::vector<DeltaOp>* out) {
  if (!status_.ok()) return status_;
  input_bytes_ += len;
  size_t pos = 0;
  if (pending_len_ > 0) {
    // Finish the incomplete unit from the kept bytes plus the head of this chunk.
    uint8_t head[2 * kMaxUnit];
    const size_t take = std::min(len, kMaxUnit);
    std::memcpy(head, pending_, pending_len_);
    if (take > 0) std::memcpy(head + pending_len_, data, take);
    const size_t used = step(head, pending_len_ + take, out);
    if (!status_.ok()) return status_;
    if (used == 0) {
      // Still incomplete: only possible when this chunk is shorter than a unit.
      if (pending_len_ + take >= kMaxUnit) {
        fail(ErrorKind::Corrupt, std::string(what()) + ": internal error: decoder unit longer than 40 bytes");
        return status_;
      }
      std::memcpy(pending_ + pending_len_, data, take);
      pending_len_ += take;
      return status_;
    }
    if (used <= pending_len_) {
      // step() is a function of the bytes: a unit the kept bytes could not complete is longer.
      fail(ErrorKind::Corrupt, std::string(what()) + ": internal error: unit shorter than the kept bytes");
      return status_;
    }
    pos = used - pending_len_;
    pending_len_ = 0;
  }
  while (pos < len) {
    if (literal_left_ > 0) {
      const uint64_t n = std::min<uint64_t>(literal_left_, len - pos);
      out->push_back({DeltaOp::Literal, pos, n});
      literal_left_ -= n;
      pos += static_cast<size_t>(n);
      continue;
    }
    if (done_) {
      fail(ErrorKind::Corrupt, std::string(what()) + ": unexpected data after the END command");
      return status_;
    }
    const size_t used = step(data + pos, len - pos, out);
    if (!status_.ok()) return status_;
    if (used == 0) {
      if (len - pos >= kMaxUnit) {
        fail(ErrorKind::Corrupt, std::string(what()) + ": internal error: decoder unit longer than 40 bytes");
        return status_;
      }
      std::memcpy(pending_, data + pos, len - pos);
      pending_len_ = len - pos;
      return status_;
    }
    pos += used;
  }
  return status_;
}

Status DeltaDecoder::finish() {
  if (!status_.ok()) return status_;
  if (done_ && pending_len_ == 0 && literal_left_ == 0) return status_;
  if (format_ == DeltaFormat::Auto) {
    fail(ErrorKind::Truncated, input_bytes_ == 0 ? "empty delta" : "delta truncated inside the magic number");
  } else if (literal_left_ > 0) {
    fail(ErrorKind::Corrupt,
         std::string(what()) + ": literal runs " + decimal(literal_left_) + " bytes past the end of the delta");
  } else if (input_bytes_ == 0) {
    fail(ErrorKind::Truncated, std::string(what()) + ": empty input");
  } else {
    fail(ErrorKind::Truncated, std::string(what()) + ": truncated after " + decimal(input_bytes_) + " bytes (" +
                                   expecting() + ")");
  }
  return status_;
}

size_t DeltaDecoder::step(const uint8_t* p, size_t n, std::vector<DeltaOp>* out) {
  switch (state_) {
    case State::Magic:
      return step_magic(p, n, out);
    case State::DsHeader:
      return step_ds_header(p, n);
    case State::RdMagic: {
      if (n < 4) return 0;
      const uint32_t magic = static_cast<uint32_t>(read_be(p, 4));
      if (magic != kRsDeltaMagic) {
        return fail(ErrorKind::BadMagic, "not an rdiff delta (magic " + hex_padded(magic, 8) + ")");
      }
      state_ = State::Ops;
      return 4;
    }
    case State::Ops:
      return format_ == DeltaFormat::Rdiff ? step_rd_command(p, n, out) : step_ds_command(p, n, out);
    case State::Trailer:
      if (n < kResultHashLen) return 0;
      std::memcpy(result_hash_, p, kResultHashLen);
      has_hash_ = true;
      done_ = true;
      return kResultHashLen;
  }
  return 0;
}

size_t DeltaDecoder::step_magic(const uint8_t* p, size_t n, std::vector<DeltaOp>* out) {
  if (n < 4) return 0;
  Family family;
  Status s = expect_magic(p, n, FileKind::Delta, &family);
  if (!s.ok()) return fail(s.kind, std::move(s.message));
  // The magic is part of each format's first unit: hand the same bytes to that format.
  format_ = family == Family::Rdiff ? DeltaFormat::Rdiff : DeltaFormat::Deltasync;
  state_ = family == Family::Rdiff ? State::RdMagic : State::DsHeader;
  return step(p, n, out);
}

size_t DeltaDecoder::step_ds_header(const uint8_t* p, size_t n) {
  if (n < 4) return 0;
  const uint32_t magic = static_cast<uint32_t>(read_be(p, 4));
  if (magic != kDsDeltaMagic) {
    return fail(ErrorKind::BadMagic, "not a deltasync delta (magic " + hex_padded(magic, 8) + ")");
  }
  if (n < 6) return 0;
  const uint8_t version = p[4];
  if (version != kDsVersion) {
    return fail(ErrorKind::BadMagic, "deltasync delta version " + decimal(version) + " is not supported (expected " +
                                         decimal(kDsVersion) + ")");
  }
  const uint8_t flags = p[5];
  if ((flags & ~kDsFlagSize) != 0) {
    return fail(ErrorKind::Corrupt, "deltasync delta: unknown header flags " + hex_plain(flags));
  }
  if (n < 7) return 0;
  const uint8_t strong = p[6];
  if (strong < 1 || strong > 3) {
    return fail(ErrorKind::Corrupt, "deltasync delta: unknown strong hash code " + decimal(strong));
  }
  size_t next = 7;
  uint64_t block_len;
  size_t block_len_used;
  const int rb = read_varint(p + next, n - next, "deltasync delta: block length", &block_len, &block_len_used);
  if (rb <= 0) return 0;
  if (block_len < 1 || block_len > kMaxDeltaBlockLen) {
    return fail(ErrorKind::Corrupt, "deltasync delta: block length " + decimal(block_len) + " out of range 1..67108864");
  }
  next += block_len_used;
  if (flags & kDsFlagSize) {
    uint64_t size;
    size_t used;
    const int r = read_varint(p + next, n - next, "deltasync delta: result size", &size, &used);
    if (r <= 0) return 0;
    has_result_size_ = true;
    result_size_ = size;
    next += used;
  }
  strong_code_ = strong;
  block_len_ = block_len;
  state_ = State::Ops;
  return next;
}

int DeltaDecoder::read_varint(const uint8_t* p, size_t n, const char* what, uint64_t* value, size_t* used) {
  uint64_t v = 0;
  for (size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (i >= n) return 0;
    const uint8_t byte = p[i];
    const uint64_t bits = byte & 0x7f;
    // The 8th byte sits at bit 49: more than 4 bits there would exceed 2^53 - 1.
    if (i == kMaxVarintBytes - 1 && bits > 0x0f) {
      fail(ErrorKind::Corrupt, std::string(what) + " exceeds 2^53 - 1");
      return -1;
    }
    v |= bits << (7 * i);
    if ((byte & 0x80) == 0) {
      if (byte == 0 && i > 0) {
        fail(ErrorKind::Corrupt, std::string(what) + " is not minimally encoded");
        return -1;
      }
      *value = v;
      *used = i + 1;
      return 1;
    }
  }
  fail(ErrorKind::Corrupt, std::string(what) + " longer than " + decimal(kMaxVarintBytes) + " bytes");
  return -1;
}

bool DeltaDecoder::add_output(uint64_t length) {
  // Both terms are ≤ 2^53 - 1, so the sum cannot wrap.
  output_bytes_ += length;
  if (output_bytes_ > kMaxFileSize) {
    fail(ErrorKind::Corrupt, std::string(what()) + ": ops describe more than 2^53 - 1 bytes of output");
    return false;
  }
  if (has_result_size_ && output_bytes_ > result_size_) {
    fail(ErrorKind::Corrupt, std::string(what()) + ": ops describe more than the declared " + decimal(result_size_) +
                                 " bytes of output");
    return false;
  }
  return true;
}

bool DeltaDecoder::emit_copy(uint64_t offset, uint64_t length, std::vector<DeltaOp>* out) {
  if (basis_size_ != kUnknownSize && (offset > basis_size_ || length > basis_size_ - offset)) {
    // Same words as lib/patch.ts, which checks the same thing when it reads the basis.
    fail(ErrorKind::Corrupt, "delta COPY of " + decimal(length) + " bytes at offset " + decimal(offset) +
                                 " runs past the end of the " + decimal(basis_size_) + "-byte basis");
    return false;
  }
  out->push_back({DeltaOp::Copy, offset, length});
  return true;
}

size_t DeltaDecoder::step_ds_command(const uint8_t* p, size_t n, std::vector<DeltaOp>* out) {
  const uint8_t tag = p[0];
  switch (tag) {
    case kDsEnd:
      if (has_result_size_ && output_bytes_ != result_size_) {
        return fail(ErrorKind::Corrupt, "deltasync delta: ops describe " + decimal(output_bytes_) +
                                            " bytes but the header declares " + decimal(result_size_));
      }
      state_ = State::Trailer;
      return 1;
    case kDsLiteral: {
      uint64_t len;
      size_t used;
      if (read_varint(p + 1, n - 1, "deltasync delta: literal length", &len, &used) <= 0) return 0;
      if (len == 0) return fail(ErrorKind::Corrupt, "deltasync delta: zero-length literal");
      if (!add_output(len)) return 0;
      literal_left_ = len;
      return 1 + used;
    }
    case kDsCopyNext:
    case kDsCopyFwd:
    case kDsCopyBack: {
      size_t next = 1;
      // offset = prev_end_ (+|-) d, kept exact: prev_end_ and d are both ≤ 2^53 - 1.
      uint64_t offset = prev_end_;
      bool negative = false;
      uint64_t below_zero = 0;  // |offset| when negative
      if (tag != kDsCopyNext) {
        uint64_t d;
        size_t used;
        if (read_varint(p + next, n - next, "deltasync delta: copy offset", &d, &used) <= 0) return 0;
        next += used;
        if (tag == kDsCopyFwd) {
          offset += d;
        } else if (d > prev_end_) {
          negative = true;
          below_zero = d - prev_end_;
        } else {
          offset -= d;
        }
      }
      uint64_t len;
      size_t used;
      if (read_varint(p + next, n - next, "deltasync delta: copy length", &len, &used) <= 0) return 0;
      next += used;
      if (len == 0) return fail(ErrorKind::Corrupt, "deltasync delta: zero-length copy");
      if (negative || offset > kMaxFileSize || len > kMaxFileSize - offset) {
        return fail(ErrorKind::Corrupt, "deltasync delta: copy offset " +
                                            (negative ? "-" + decimal(below_zero) : js_number(offset)) +
                                            " out of range");
      }
      if (!add_output(len)) return 0;
      prev_end_ = offset + len;
      if (!emit_copy(offset, len, out)) return 0;
      return next;
    }
    default:
      return fail(ErrorKind::Corrupt, "deltasync delta: unknown command byte " + hex_padded(tag, 2));
  }
}

size_t DeltaDecoder::step_rd_command(const uint8_t* p, size_t n, std::vector<DeltaOp>* out) {
  const uint8_t byte = p[0];
  const RdCommand& c = kRdCommands.at[byte];
  if (c.kind == RdCommand::Reserved) {
    return fail(ErrorKind::Corrupt, "rdiff delta: reserved command byte " + hex_padded(byte, 2));
  }
  const size_t need = 1 + size_t{c.arg1} + c.arg2;
  if (n < need) return 0;
  switch (c.kind) {
    case RdCommand::End:
      done_ = true;
      return 1;
    case RdCommand::Literal: {
      const uint64_t len = c.arg1 ? read_be(p + 1, c.arg1) : c.immediate;
      if (!fits_js(len)) return fail(ErrorKind::Corrupt, "rdiff delta: literal length exceeds 2^53 - 1");
      if (!add_output(len)) return 0;
      literal_left_ = len;
      return need;
    }
    default: {
      const uint64_t offset = read_be(p + 1, c.arg1);
      const uint64_t len = read_be(p + 1 + c.arg1, c.arg2);
      if (!fits_js(offset) || !fits_js(len) || len > kMaxFileSize - offset) {
        return fail(ErrorKind::Corrupt, "rdiff delta: copy offset or length exceeds 2^53 - 1");
      }
      if (!add_output(len)) return 0;
      // Zero-length copies are legal in librsync's format: checked, then dropped.
      if (len > 0 && !emit_copy(offset, len, out)) return 0;
      return need;
    }
  }
}

}  // namespace ds::format
