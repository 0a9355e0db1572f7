#include "protocol/messages.h"

#include "protocol/wire.h"

namespace ds::protocol {

namespace {

const char* message_name(uint8_t type) {
  switch (type) {
    case kMsgRequest: return "REQUEST";
    case kMsgFileBegin: return "FILE_BEGIN";
    case kMsgFileEnd: return "FILE_END";
    case kMsgFileError: return "FILE_ERROR";
    case kMsgLog: return "LOG";
    case kMsgProgress: return "PROGRESS";
    default: return nullptr;
  }
}

class Fields {
 public:
  explicit Fields(MessageFields* out) : out_(out) { out_->count = 0; }
  void add(uint64_t v) { out_->value[out_->count++] = v; }
  void add_range(size_t offset, size_t length) {
    add(offset);
    add(length);
  }

 private:
  MessageFields* out_;
};

}  // namespace

bool decode_message(uint8_t type, const uint8_t* payload, size_t size, MessageFields* out, std::string* error) {
  const char* name = message_name(type);
  if (name == nullptr) {
    *error = "no binary decoder for message type " + std::to_string(type);
    return false;
  }
  WireReader r(payload, size);
  Fields f(out);
  size_t offset = 0, length = 0;
  switch (type) {
    case kMsgRequest:
    case kMsgFileBegin: {
      f.add(r.uint());
      const uint8_t mode = r.u8();
      f.add(mode);
      if (r.ok() && mode > 3) {
        *error = std::string(name) + " has unknown mode " + std::to_string(mode);
        return false;
      }
      if (type == kMsgRequest) f.add(r.uint());
      break;
    }
    case kMsgFileEnd:
      for (int i = 0; i < 4; ++i) f.add(r.uint());
      if (r.bytes(kMaxHashBytes, &offset, &length)) f.add_range(offset, length);
      break;
    case kMsgFileError:
      f.add(r.uint());
      f.add(r.u8());
      if (r.bytes(kMaxMessageText, &offset, &length)) f.add_range(offset, length);
      break;
    case kMsgProgress:
      f.add(r.uint());
      f.add(r.uint());
      f.add(r.u8());
      break;
    case kMsgLog: {
      const uint8_t level = r.u8();
      if (r.ok() && level > 3) {
        *error = "LOG has unknown level " + std::to_string(level);
        return false;
      }
      f.add(level);
      if (r.bytes(kMaxMessageText, &offset, &length)) f.add_range(offset, length);
      if (r.ok() && r.remaining() > 0 && r.bytes(kMaxLogPath, &offset, &length)) f.add_range(offset, length);
      break;
    }
  }
  if (!r.ok()) {
    *error = "malformed " + std::string(name) + " message (" + r.error() + ")";
    return false;
  }
  if (r.remaining() != 0) {
    *error = "malformed " + std::string(name) + " message (" + std::to_string(r.remaining()) + " unexpected trailing bytes)";
    return false;
  }
  return true;
}

}  // namespace ds::protocol
