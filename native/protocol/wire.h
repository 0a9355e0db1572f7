// Bounded reading of protocol payloads (docs/PROTOCOL.md §2): u8, uint (LEB128, at most 8 bytes,
// value ≤ 2^53 − 1), sint (zigzag), bytes (uint length + data). Every read checks the bytes
// left before touching them; a failed read records a one-line reason and leaves the reader
// stopped, so callers check once per field group instead of after every byte.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ds::protocol {

// Largest varint value: 2^53 − 1, exact in a JS number.
constexpr uint64_t kMaxUint = (uint64_t{1} << 53) - 1;
constexpr int kMaxVarintBytes = 8;

class WireReader {
 public:
  WireReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool ok() const { return error_ == nullptr; }
  // Reason of the first failed read ("truncated varint", ...); "" while ok.
  std::string error() const { return error_ ? (detail_.empty() ? std::string(error_) : detail_) : std::string(); }
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  uint8_t u8() {
    if (!ok()) return 0;
    if (pos_ >= size_) return fail("truncated"), 0;
    return data_[pos_++];
  }

  uint64_t uint() {
    if (!ok()) return 0;
    uint64_t value = 0;
    for (int i = 0; i < kMaxVarintBytes; ++i) {
      if (pos_ >= size_) return fail("truncated varint"), 0;
      const uint8_t byte = data_[pos_++];
      const uint64_t bits = byte & 0x7f;
      // 7 × 7 bits + 4 bits = 53 bits: the last byte may carry only 4.
      if (i == kMaxVarintBytes - 1 && bits > 0x0f) return fail("varint above 2^53"), 0;
      value |= bits << (7 * i);
      if ((byte & 0x80) == 0) return value;
    }
    return fail("varint too long"), 0;
  }

  int64_t sint() {
    const uint64_t z = uint();
    return (z & 1) == 0 ? static_cast<int64_t>(z / 2) : -static_cast<int64_t>((z + 1) / 2);
  }

  // A length-prefixed field of at most `max` bytes: sets *offset (into the payload) and
  // *length. False (and the reader stopped) when it is longer than max or than what is left.
  bool bytes(uint64_t max, size_t* offset, size_t* length) {
    const uint64_t n = uint();
    if (!ok()) return false;
    if (n > max) return fail_detail("field of " + std::to_string(n) + " bytes exceeds " + std::to_string(max)), false;
    if (n > remaining()) {
      return fail_detail("field of " + std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left"), false;
    }
    *offset = pos_;
    *length = static_cast<size_t>(n);
    pos_ += static_cast<size_t>(n);
    return true;
  }

 private:
  void fail(const char* why) {
    if (ok()) error_ = why;
  }
  void fail_detail(std::string why) {
    if (!ok()) return;
    error_ = "field";
    detail_ = std::move(why);
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const char* error_ = nullptr;
  std::string detail_;
};

}  // namespace ds::protocol
