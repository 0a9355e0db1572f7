// Frame splitter of the sync protocol (docs/PROTOCOL.md §4): [type u8][length u32 BE][payload].
// Called once per received chunk: it reports every whole frame in the buffer as (type, payload
// offset, length) — the caller slices payloads out of its own buffer, so nothing is copied —
// and how many bytes the next, incomplete frame needs, so a frame that straddles chunks is
// assembled exactly once. No I/O, no allocation beyond the output vector, never throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ds::protocol {

constexpr size_t kFrameHeaderBytes = 5;
// Largest payload a peer may send (1 MiB + 1 KiB); lib/protocol/framing.ts's MAX_FRAME_PAYLOAD.
constexpr uint32_t kMaxFramePayload = 1024 * 1024 + 1024;

struct FrameRef {
  uint8_t type;
  size_t offset;  // of the payload in the buffer
  uint32_t length;
};

struct SplitResult {
  // Bytes covered by the frames reported (a prefix of the buffer).
  size_t consumed = 0;
  // Bytes the first frame after `consumed` needs in all (header included): kFrameHeaderBytes
  // while its header is incomplete. 0 when the splitter stopped at a bad header.
  size_t need = kFrameHeaderBytes;
  // Set when the header at `consumed` is invalid; frames before it are still reported (the
  // caller raises the error only when it reaches that point: bytes after a compression switch
  // are not frames of this stream at all).
  bool failed = false;
  std::string error;
};

// Splits `data` into whole frames. `max_payload` ≤ kMaxFramePayload bounds the length field.
// Appends to *frames (which it clears first) and fills *result.
void split_frames(const uint8_t* data, size_t size, uint32_t max_payload, std::vector<FrameRef>* frames,
                  SplitResult* result);

}  // namespace ds::protocol
