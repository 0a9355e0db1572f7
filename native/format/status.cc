#include "format/status.h"

#include <cstdio>

namespace ds::format {

const char* error_code_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::None:
      return "";
    case ErrorKind::BadMagic:
      return "ERR_BAD_MAGIC";
    case ErrorKind::BadParams:
      return "ERR_BAD_PARAMS";
    case ErrorKind::Truncated:
      return "ERR_TRUNCATED";
    case ErrorKind::Corrupt:
      return "ERR_CORRUPT";
    case ErrorKind::HashMismatch:
      return "ERR_HASH_MISMATCH";
  }
  return "ERR_CORRUPT";
}

std::string decimal(uint64_t v) { return std::to_string(v); }

std::string js_number(uint64_t v) {
  if (v <= kMaxFileSize) return decimal(v);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", static_cast<double>(v));
  return buf;
}

std::string hex_padded(uint64_t v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

std::string hex_plain(uint64_t v) { return hex_padded(v, 1); }

}  // namespace ds::format
