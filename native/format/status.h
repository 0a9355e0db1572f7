// Outcome of decoding untrusted bytes: an error kind with the meaning of lib/errors.ts's code of
// the same name, and a one-line message (the same text the TypeScript layer shows). Nothing in
// native/format throws: every entry point returns a Status, so it is safe on any thread and the
// fuzz harnesses see every refusal as a value.
#pragma once
#include <cstdint>
#include <string>

namespace ds::format {

enum class ErrorKind : uint8_t {
  None = 0,
  BadMagic = 1,      // ERR_BAD_MAGIC
  BadParams = 2,     // ERR_BAD_PARAMS
  Truncated = 3,     // ERR_TRUNCATED
  Corrupt = 4,       // ERR_CORRUPT
  HashMismatch = 5,  // ERR_HASH_MISMATCH
};

// "ERR_BAD_MAGIC", ...; "" for None.
const char* error_code_name(ErrorKind kind);

struct Status {
  ErrorKind kind = ErrorKind::None;
  std::string message;

  bool ok() const { return kind == ErrorKind::None; }
  static Status fail(ErrorKind kind, std::string message) { return Status{kind, std::move(message)}; }
};

// Largest size, offset or length anywhere: 2^53 - 1, exact in a JS number.
constexpr uint64_t kMaxFileSize = (uint64_t{1} << 53) - 1;
// Largest serialized signature: 1 GiB.
constexpr uint64_t kMaxSignatureBytes = uint64_t{1} << 30;

// Message pieces printed the way JavaScript prints them, so native and TS messages agree.
std::string decimal(uint64_t v);
// A sum computed by JS in doubles is rounded to 53 bits: print it the same way.
std::string js_number(uint64_t v);
std::string hex_padded(uint64_t v, int digits);  // "0x" + lowercase, zero-padded
std::string hex_plain(uint64_t v);               // "0x" + lowercase, no padding

}  // namespace ds::format
