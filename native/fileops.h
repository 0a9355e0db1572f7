// Range copies between open file descriptors, for the sync receiver: the unchanged ranges of
// the basis go into the new file without passing through JavaScript (copy_file_range(2)), or
// without being copied at all where the filesystem shares extents (FICLONERANGE).
//
// This is the one place where the addon does file I/O (issue 5 asks for it "in the addon");
// it never opens, closes or names files: the caller owns the descriptors.
#pragma once
#include <cstdint>
#include <string>

namespace ds {

enum class CopyMethod {
  Auto,           // copy_file_range, falling back to pread/pwrite when the kernel refuses the pair
  CopyFileRange,  // copy_file_range only: the refusal is reported (tests, diagnostics)
  ReadWrite,      // pread/pwrite only
};

struct RangeResult {
  uint64_t bytes = 0;         // bytes copied before the end (or the error)
  int error = 0;              // errno, 0 on success
  const char* syscall = "";   // the call that failed
};

// Copies up to `length` bytes from fd_in at off_in to fd_out at off_out; stops early at the end
// of fd_in. File offsets of both descriptors are left alone. Overlapping ranges of one file are
// refused (EINVAL), as is an O_APPEND destination (EBADF: pwrite would ignore the offset).
RangeResult copy_range(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t length,
                       CopyMethod method);

enum class CloneStatus { Cloned, Unsupported, Failed };

struct CloneResult {
  CloneStatus status = CloneStatus::Unsupported;
  int error = 0;              // errno when Failed (and when Unsupported, for diagnostics)
};

// Shares the extents of [off_in, off_in + length) of fd_in into fd_out at off_out (reflink).
// Unsupported: no reflinks on this filesystem/pair, or offsets/length not block aligned; the
// caller copies instead. length 0 clones nothing (FICLONERANGE would read it as "to EOF").
CloneResult clone_range(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t length);

// "ENOSPC" for ENOSPC, ...; "E<number>" for errnos outside the table.
std::string errno_name(int err);

}  // namespace ds
