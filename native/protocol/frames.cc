#include "protocol/frames.h"

namespace ds::protocol {

void split_frames(const uint8_t* data, size_t size, uint32_t max_payload, std::vector<FrameRef>* frames,
                  SplitResult* result) {
  frames->clear();
  *result = SplitResult();
  if (max_payload > kMaxFramePayload) max_payload = kMaxFramePayload;
  size_t pos = 0;
  while (size - pos >= kFrameHeaderBytes) {
    const uint8_t* h = data + pos;
    const uint32_t length = (uint32_t{h[1]} << 24) | (uint32_t{h[2]} << 16) | (uint32_t{h[3]} << 8) | h[4];
    if (length > max_payload) {
      result->failed = true;
      result->need = 0;
      result->error = "frame of " + std::to_string(length) + " bytes exceeds the limit of " + std::to_string(max_payload);
      break;
    }
    // length ≤ ~1 MiB, so this sum cannot overflow.
    const size_t total = kFrameHeaderBytes + length;
    if (size - pos < total) {
      result->need = total;
      break;
    }
    frames->push_back(FrameRef{h[0], pos + kFrameHeaderBytes, length});
    pos += total;
  }
  result->consumed = pos;
}

}  // namespace ds::protocol
