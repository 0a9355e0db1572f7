#include "protocol/file_list.h"

#include <algorithm>
#include <cstring>

#include "protocol/wire.h"

namespace ds::protocol {

bool is_safe_relative_path(const uint8_t* path, size_t length) {
  if (length == 1 && path[0] == '.') return true;
  if (length == 0 || path[0] == '/') return false;
  if (std::memchr(path, 0, length) != nullptr) return false;
  size_t start = 0;
  for (size_t i = 0; i <= length; ++i) {
    if (i < length && path[i] != '/') continue;
    const size_t n = i - start;
    if (n == 0) return false;
    if (path[start] == '.' && (n == 1 || (n == 2 && path[start + 1] == '.'))) return false;
    start = i + 1;
  }
  return true;
}

namespace {

bool fail(FileListError* error, std::string message) {
  error->message = std::move(message);
  error->has_path = false;
  error->path.clear();
  return false;
}

// A refusal naming the entry's path (which may be empty or not UTF-8).
bool fail_at(FileListError* error, std::string message, const uint8_t* path, size_t length) {
  fail(error, std::move(message));
  error->has_path = true;
  error->path.assign(reinterpret_cast<const char*>(path), length);
  return false;
}

// A failed field read: the TS PayloadReader's "malformed FLIST message (...)" wording.
bool malformed(FileListError* error, const WireReader& r) {
  return fail(error, "malformed FLIST message (" + r.error() + ")");
}

}  // namespace

bool decode_file_list(const uint8_t* payload, size_t size, const uint8_t* prev, size_t prev_length,
                      std::vector<FileListEntry>* entries, std::vector<uint8_t>* paths, FileListError* error) {
  entries->clear();
  paths->clear();
  WireReader r(payload, size);
  const uint64_t count = r.uint();
  if (!r.ok()) return malformed(error, r);
  // Every entry takes at least 10 bytes, so this bounds the reservation below.
  if (count > size) {
    return fail(error, "FLIST claims " + std::to_string(count) + " entries in " + std::to_string(size) + " bytes");
  }
  entries->reserve(static_cast<size_t>(count));
  paths->reserve(std::min(size + prev_length, kMaxBatchPathBytes));
  // The previous path: the caller's for the first entry, then the last one in *paths.
  size_t prev_offset = 0;
  bool prev_in_table = false;
  for (uint64_t i = 0; i < count; ++i) {
    FileListEntry e;
    e.type = r.u8();
    if (!r.ok()) return malformed(error, r);
    if (e.type < 1 || e.type > 5) return fail(error, "FLIST entry has unknown type " + std::to_string(e.type));
    e.flags = r.u8();
    const uint64_t shared = r.uint();
    if (!r.ok()) return malformed(error, r);
    const size_t prev_len = prev_in_table ? entries->back().path_length : prev_length;
    if (shared > prev_len) return fail(error, "FLIST entry shares more bytes than the previous path has");
    size_t suffix_offset = 0, suffix_length = 0;
    if (!r.bytes(kMaxPathBytes, &suffix_offset, &suffix_length)) return malformed(error, r);
    if (shared + suffix_length > kMaxPathBytes) return fail(error, "FLIST entry path too long");
    if (paths->size() + shared + suffix_length > kMaxBatchPathBytes) {
      return fail(error, "FLIST message expands to more than " + std::to_string(kMaxBatchPathBytes) + " bytes of paths");
    }
    // Append the shared prefix (copied from the table itself or from the caller's prev) and
    // the suffix. The table was reserved for the worst case only approximately: insert may
    // reallocate, so the prefix is copied by offset, never through a pointer held across it.
    e.path_offset = paths->size();
    e.path_length = static_cast<size_t>(shared) + suffix_length;
    if (prev_in_table) {
      paths->resize(e.path_offset + static_cast<size_t>(shared));
      std::memmove(paths->data() + e.path_offset, paths->data() + prev_offset, static_cast<size_t>(shared));
    } else {
      paths->insert(paths->end(), prev, prev + shared);
    }
    paths->insert(paths->end(), payload + suffix_offset, payload + suffix_offset + suffix_length);
    const uint8_t* path = paths->data() + e.path_offset;
    if (!is_safe_relative_path(path, e.path_length)) {
      return fail_at(error, "FLIST entry has an unsafe path {path}", path, e.path_length);
    }
    prev_offset = e.path_offset;
    prev_in_table = true;
    e.mode = r.uint();
    e.size = r.uint();
    e.mtime_sec = r.sint();
    e.mtime_nsec = r.uint();
    e.uid = r.uint();
    e.gid = r.uint();
    if (!r.ok()) return malformed(error, r);
    if (e.mtime_nsec >= 1000000000) return fail(error, "FLIST entry has nanoseconds ≥ 1e9");
    if (e.mode > 0xffffffffu) return fail(error, "FLIST entry mode out of range");
    if (e.flags & kFlagLink) {
      if (!r.bytes(kMaxPathBytes, &e.link_offset, &e.link_length)) return malformed(error, r);
    }
    if (e.flags & kFlagRdev) {
      e.rdev = r.uint();
      if (!r.ok()) return malformed(error, r);
    }
    if (e.flags & kFlagChecksum) {
      if (!r.bytes(kMaxChecksumBytes, &e.checksum_offset, &e.checksum_length)) return malformed(error, r);
    }
    if (e.type == static_cast<uint8_t>(EntryKind::Symlink) && !(e.flags & kFlagLink)) {
      return fail_at(error, "FLIST symlink {path} has no target", path, e.path_length);
    }
    entries->push_back(e);
  }
  if (r.remaining() != 0) {
    return fail(error, "malformed FLIST message (" + std::to_string(r.remaining()) + " unexpected trailing bytes)");
  }
  return true;
}

}  // namespace ds::protocol
