// Decoders of the small binary messages of the sync protocol (docs/PROTOCOL.md §5): REQUEST,
// FILE_BEGIN, FILE_END, FILE_ERROR, PROGRESS and LOG. Each checks that the payload decodes
// exactly (no short read, no trailing byte, values in range). Strings and the hash are reported
// as ranges of the payload. No I/O, never throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ds::protocol {

// Frame types of these messages (wire values).
constexpr uint8_t kMsgRequest = 0x20;
constexpr uint8_t kMsgFileBegin = 0x30;
constexpr uint8_t kMsgFileEnd = 0x32;
constexpr uint8_t kMsgFileError = 0x33;
constexpr uint8_t kMsgLog = 0x41;
constexpr uint8_t kMsgProgress = 0x42;

// Longest FILE_ERROR / LOG message text, LOG path, FILE_END hash (bytes).
constexpr size_t kMaxMessageText = 64 * 1024;
constexpr size_t kMaxLogPath = 64 * 1024;
constexpr size_t kMaxHashBytes = 64;

// Most fields any of these messages has.
constexpr size_t kMaxMessageFields = 6;

// The decoded fields, in wire order, strings and bytes as two fields (offset, length):
//   REQUEST     index, mode (0..3), length
//   FILE_BEGIN  index, mode (0..3)
//   FILE_END    index, size, literalBytes, matchedBytes, hashOffset, hashLength
//   FILE_ERROR  index, kind (raw u8), messageOffset, messageLength
//   PROGRESS    index, bytes, done (raw u8)
//   LOG         level (0..3), messageOffset, messageLength, then pathOffset, pathLength if present
struct MessageFields {
  uint64_t value[kMaxMessageFields] = {};
  size_t count = 0;
};

// Decodes one payload of frame type `type` (one of the kMsg* above). False with *error set (one
// line, e.g. "malformed REQUEST message (truncated varint)") when it does not decode exactly or
// the type is not one of these.
bool decode_message(uint8_t type, const uint8_t* payload, size_t size, MessageFields* out, std::string* error);

}  // namespace ds::protocol
