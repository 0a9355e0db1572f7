// Decoder of FLIST payloads (docs/PROTOCOL.md §6): a uint count, then entries whose paths are
// prefix-compressed against the previous entry of the whole list. Every count, length and
// value is bounded before use and every path is checked to be a safe relative path (no
// absolute path, no empty, "." or ".." component, no NUL), so a hostile sender cannot name
// anything outside the destination. No I/O, never throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ds::protocol {

// Entry kinds (wire values).
enum class EntryKind : uint8_t { File = 1, Dir = 2, Symlink = 3, Device = 4, Special = 5 };

constexpr uint8_t kFlagLink = 1;
constexpr uint8_t kFlagRdev = 2;
constexpr uint8_t kFlagChecksum = 4;
constexpr uint8_t kFlagListed = 8;

// Longest path or link target (bytes); lib/protocol/messages.ts's MAX_PATH_BYTES.
constexpr size_t kMaxPathBytes = 64 * 1024;
// Most path bytes one FLIST payload may expand to. Prefix compression lets a small payload name
// long paths many times over; our sender's batches (≤ 512 entries of ≤ 64 KiB) stay below it.
constexpr size_t kMaxBatchPathBytes = 32 * 1024 * 1024;
// Longest whole-file checksum.
constexpr size_t kMaxChecksumBytes = 64;

struct FileListEntry {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint64_t mode = 0;  // ≤ 2^32 − 1
  uint64_t size = 0;
  int64_t mtime_sec = 0;
  uint64_t mtime_nsec = 0;  // < 1e9
  uint64_t uid = 0;
  uint64_t gid = 0;
  uint64_t rdev = 0;       // with kFlagRdev
  size_t path_offset = 0;  // in the path table
  size_t path_length = 0;
  size_t link_offset = 0;  // in the payload, with kFlagLink
  size_t link_length = 0;
  size_t checksum_offset = 0;  // in the payload, with kFlagChecksum
  size_t checksum_length = 0;
};

struct FileListError {
  // One line; "{path}" stands where the caller shows `path` (quoted, decoded), when has_path.
  std::string message;
  bool has_path = false;
  std::string path;
};

// Decodes one FLIST payload. `prev` is the path of the previous entry of the list (empty at the
// start). Full paths go to *paths back to back (entries point into it); the last one is the
// `prev` of the next batch. On failure returns false with *error set; *entries is then partial.
bool decode_file_list(const uint8_t* payload, size_t size, const uint8_t* prev, size_t prev_length,
                      std::vector<FileListEntry>* entries, std::vector<uint8_t>* paths, FileListError* error);

// Whether `path` is acceptable as a received relative path (see above). "." is the root.
bool is_safe_relative_path(const uint8_t* path, size_t length);

}  // namespace ds::protocol
