// copyFileRange / cloneFileRange: range copies between descriptors the caller opened, run on
// the libuv thread pool. See fileops.h for the contract and lib/fileops.ts for the JS side.
#include "fileops.h"

#include "hash/strong.h"

#include <napi.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/fs.h>  // FICLONERANGE, struct file_clone_range
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>  // preadv2, RWF_NOWAIT
#endif

namespace ds {

namespace {

// The fallback's buffer: large enough that syscalls cost nothing next to the copying.
constexpr size_t kReadWriteBuffer = size_t{1} << 20;

RangeResult failed(RangeResult r, int err, const char* syscall) {
  r.error = err;
  r.syscall = syscall;
  return r;
}

#if defined(__linux__) && defined(SYS_copy_file_range)
// One copy_file_range call at most this much (the kernel caps a call near 2 GiB anyway).
constexpr uint64_t kCopyChunk = uint64_t{1} << 30;

// Errors that mean "this kernel/filesystem pair can't do copy_file_range here", not "the copy
// is impossible": pread/pwrite can still do it.
bool copy_file_range_refused(int err) {
  return err == EXDEV || err == EINVAL || err == ENOSYS || err == EOPNOTSUPP || err == ENOTSUP;
}
#endif

void read_write(int fd_in, uint64_t* off_in, int fd_out, uint64_t* off_out, uint64_t length, RangeResult* r) {
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[kReadWriteBuffer]);
  while (r->bytes < length) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(length - r->bytes, kReadWriteBuffer));
    const ssize_t got = pread(fd_in, buffer.get(), want, static_cast<off_t>(*off_in));
    if (got < 0) {
      if (errno == EINTR) continue;
      *r = failed(*r, errno, "pread");
      return;
    }
    if (got == 0) return;  // end of the input
    size_t put = 0;
    while (put < static_cast<size_t>(got)) {
      const ssize_t n = pwrite(fd_out, buffer.get() + put, static_cast<size_t>(got) - put, static_cast<off_t>(*off_out + put));
      if (n < 0) {
        if (errno == EINTR) continue;
        r->bytes += put;
        *r = failed(*r, errno, "pwrite");
        return;
      }
      put += static_cast<size_t>(n);
    }
    *off_in += static_cast<uint64_t>(got);
    *off_out += static_cast<uint64_t>(got);
    r->bytes += static_cast<uint64_t>(got);
  }
}

// False (with r's error set) when the pair can't take a forward range copy.
bool pair_usable(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t length, RangeResult* r) {
  struct stat in_st {}, out_st {};
  if (fstat(fd_in, &in_st) != 0) return *r = failed(*r, errno, "fstat"), false;
  if (fstat(fd_out, &out_st) != 0) return *r = failed(*r, errno, "fstat"), false;
  // Overlapping ranges of one file would be smeared by a forward chunked copy.
  if (in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino && off_in < off_out + length &&
      off_out < off_in + length) {
    return *r = failed(*r, EINVAL, "copy_file_range"), false;
  }
  const int out_flags = fcntl(fd_out, F_GETFL);
  if (out_flags < 0) return *r = failed(*r, errno, "fcntl"), false;
  // pwrite on an O_APPEND descriptor appends whatever the offset says: refuse, as the kernel
  // does for copy_file_range.
  if (out_flags & O_APPEND) return *r = failed(*r, EBADF, "pwrite"), false;
  return true;
}

}  // namespace

RangeResult copy_range(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t length, CopyMethod method) {
  RangeResult r;
  if (length == 0) return r;
  if (!pair_usable(fd_in, off_in, fd_out, off_out, length, &r)) return r;

#if defined(__linux__) && defined(SYS_copy_file_range)
  if (method != CopyMethod::ReadWrite) {
    while (r.bytes < length) {
      loff_t in_pos = static_cast<loff_t>(off_in);
      loff_t out_pos = static_cast<loff_t>(off_out);
      const size_t want = static_cast<size_t>(std::min<uint64_t>(length - r.bytes, kCopyChunk));
      // The raw syscall: old glibc emulated it in user space, which is the fallback's job here.
      const long n = syscall(SYS_copy_file_range, fd_in, &in_pos, fd_out, &out_pos, want, 0u);
      if (n > 0) {
        off_in += static_cast<uint64_t>(n);
        off_out += static_cast<uint64_t>(n);
        r.bytes += static_cast<uint64_t>(n);
        continue;
      }
      if (n == 0) {
        // Normally the end of the input; some pseudo filesystems answer 0 without copying.
        struct stat now {};
        if (fstat(fd_in, &now) != 0) return failed(r, errno, "fstat");
        if (S_ISREG(now.st_mode) && off_in >= static_cast<uint64_t>(now.st_size)) return r;
        if (method == CopyMethod::CopyFileRange) return failed(r, EOPNOTSUPP, "copy_file_range");
        break;
      }
      if (errno == EINTR) continue;
      if (method == CopyMethod::CopyFileRange || !copy_file_range_refused(errno)) {
        return failed(r, errno, "copy_file_range");
      }
      break;  // refused: the rest goes through pread/pwrite
    }
    if (r.bytes == length) return r;
  }
#else
  if (method == CopyMethod::CopyFileRange) return failed(r, ENOSYS, "copy_file_range");
#endif
  read_write(fd_in, &off_in, fd_out, &off_out, length, &r);
  return r;
}

namespace {

// Pieces of [offset, offset + length) on a grid of cell_len-byte cells (0 for length 0).
uint64_t piece_count(uint64_t offset, uint64_t length, uint64_t cell_len) {
  if (length == 0 || cell_len == 0) return 0;
  return (offset + length - 1) / cell_len - offset / cell_len + 1;
}

// Copies [off_in, off_in + length) of fd_in to fd_out at off_out through one small buffer
// (pread, hash, pwrite: each byte is copied once each way and hashed while in cache) and
// writes to `hashes` the full-length `kind` hash of every piece of the range: the part of it
// inside one cell [k * cell_len, (k + 1) * cell_len) of fd_in (deltasync's block digest,
// docs/FORMAT.md). Stops early at the end of fd_in (r.bytes < length; `hashes` then holds only
// the pieces read whole). Same refusals as copy_range (overlap: EINVAL, O_APPEND: EBADF).
RangeResult copy_hash_range(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t length,
                            StrongKind kind, uint64_t cell_len, std::vector<uint8_t>* hashes) {
  RangeResult r;
  hashes->clear();
  if (length == 0 || cell_len == 0) return r;
  if (!pair_usable(fd_in, off_in, fd_out, off_out, length, &r)) return r;
  const size_t hash_len = strong_full_len(kind);
  hashes->resize(static_cast<size_t>(piece_count(off_in, length, cell_len)) * hash_len);
  // Small enough to stay in the core's L2 between the read, the hash and the write; one per
  // pool thread, kept (a fresh buffer per call would page-fault it in every time).
  constexpr size_t kBuffer = size_t{512} << 10;
  thread_local std::unique_ptr<uint8_t[]> buffer;
  if (!buffer) buffer.reset(new uint8_t[kBuffer]);
  uint8_t* const buf = buffer.get();
  std::unique_ptr<StrongHasher> open;  // a piece longer than what one read holds
  size_t hashed = 0;                   // hash bytes written to *hashes
  const uint64_t end = off_in + length;
  uint64_t pos = off_in;
  while (pos < end) {
    // Reads end where the output's pages do, so writes cover whole pages (a one-byte shift
    // would otherwise make every write start and end inside a page).
    const size_t want = static_cast<size_t>(std::min<uint64_t>(end - pos, kBuffer - off_out % 4096));
    size_t got = 0;
    while (got < want) {
      const ssize_t n = pread(fd_in, buf + got, want - got, static_cast<off_t>(pos + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        hashes->resize(hashed);
        return failed(r, errno, "pread");
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    // Hash the pieces this read covers (whole ones at once, a longer one in parts).
    for (uint64_t p = pos; p < pos + got;) {
      const uint64_t piece_end = std::min(end, (p / cell_len + 1) * cell_len);
      const uint64_t seg_end = std::min(piece_end, pos + got);
      const uint8_t* seg = buf + (p - pos);
      const size_t seg_len = static_cast<size_t>(seg_end - p);
      if (!open && seg_end == piece_end) {
        strong_sum(kind, seg, seg_len, hashes->data() + hashed);
        hashed += hash_len;
      } else {
        if (!open) open = std::make_unique<StrongHasher>(kind);
        open->update(seg, seg_len);
        if (seg_end == piece_end) {
          open->digest(hashes->data() + hashed);
          hashed += hash_len;
          open.reset();
        }
      }
      p = seg_end;
    }
    for (size_t put = 0; put < got;) {
      const ssize_t n = pwrite(fd_out, buf + put, got - put, static_cast<off_t>(off_out + put));
      if (n < 0) {
        if (errno == EINTR) continue;
        r.bytes += put;
        hashes->resize(hashed);
        return failed(r, errno, "pwrite");
      }
      put += static_cast<size_t>(n);
    }
    pos += got;
    off_out += got;
    r.bytes += got;
    if (got < want) break;  // the end of the input
  }
  hashes->resize(hashed);
  return r;
}

}  // namespace

CloneResult clone_range(int fd_in, uint64_t off_in, int fd_out, uint64_t off_out, uint64_t length) {
  CloneResult r;
  if (length == 0) {
    r.status = CloneStatus::Cloned;
    return r;
  }
#if defined(__linux__) && defined(FICLONERANGE)
  struct file_clone_range range {};
  range.src_fd = fd_in;
  range.src_offset = off_in;
  range.src_length = length;
  range.dest_offset = off_out;
  for (;;) {
    if (ioctl(fd_out, FICLONERANGE, &range) == 0) {
      r.status = CloneStatus::Cloned;
      return r;
    }
    if (errno != EINTR) break;
  }
  r.error = errno;
  // No reflinks here (other filesystem, no support, unaligned range): the caller copies.
  const bool unsupported = errno == EOPNOTSUPP || errno == ENOTSUP || errno == ENOTTY || errno == EXDEV ||
                           errno == EINVAL || errno == ENOSYS;
  r.status = unsupported ? CloneStatus::Unsupported : CloneStatus::Failed;
  return r;
#else
  r.error = ENOSYS;
  r.status = CloneStatus::Unsupported;
  return r;
#endif
}

std::string errno_name(int err) {
  switch (err) {
#define DS_ERRNO(name) \
  case name:           \
    return #name;
    DS_ERRNO(EPERM)
    DS_ERRNO(ENOENT)
    DS_ERRNO(EINTR)
    DS_ERRNO(EIO)
    DS_ERRNO(ENXIO)
    DS_ERRNO(EBADF)
    DS_ERRNO(EAGAIN)
    DS_ERRNO(ENOMEM)
    DS_ERRNO(EACCES)
    DS_ERRNO(EFAULT)
    DS_ERRNO(EBUSY)
    DS_ERRNO(EEXIST)
    DS_ERRNO(EXDEV)
    DS_ERRNO(ENODEV)
    DS_ERRNO(ENOTDIR)
    DS_ERRNO(EISDIR)
    DS_ERRNO(EINVAL)
    DS_ERRNO(ENFILE)
    DS_ERRNO(EMFILE)
    DS_ERRNO(ENOTTY)
    DS_ERRNO(ETXTBSY)
    DS_ERRNO(EFBIG)
    DS_ERRNO(ENOSPC)
    DS_ERRNO(ESPIPE)
    DS_ERRNO(EROFS)
    DS_ERRNO(EPIPE)
    DS_ERRNO(ERANGE)
    DS_ERRNO(ENOSYS)
    DS_ERRNO(EOVERFLOW)
    DS_ERRNO(EOPNOTSUPP)
#if ENOTSUP != EOPNOTSUPP
    DS_ERRNO(ENOTSUP)
#endif
#ifdef EDQUOT
    DS_ERRNO(EDQUOT)
#endif
#ifdef ESTALE
    DS_ERRNO(ESTALE)
#endif
#undef DS_ERRNO
    default:
      return "E" + std::to_string(err);
  }
}

}  // namespace ds

namespace {

// Rejections for bad arguments carry Node's codes, like fs does.
Napi::Value rejected(Napi::Env env, Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(env, code));
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(error.Value());
  return deferred.Promise();
}

// A descriptor: an integer 0..INT32_MAX.
bool parse_fd(const Napi::Value& v, int* out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 2147483647.0 || d != static_cast<double>(static_cast<int64_t>(d))) return false;
  *out = static_cast<int>(d);
  return true;
}

// An offset or length: an integer 0..2^53-1 (exact in a JS number; sums stay below 2^63).
bool parse_u53(const Napi::Value& v, uint64_t* out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

// An Error shaped like Node's system errors: code, errno (negative, as libuv's), syscall.
Napi::Value system_error(Napi::Env env, int err, const char* syscall, uint64_t bytes) {
  const std::string code = ds::errno_name(err);
  Napi::Error e = Napi::Error::New(env, code + ": " + std::strerror(err) + ", " + syscall);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.Set("bytesCopied", Napi::Number::New(env, static_cast<double>(bytes)));
  return e.Value();
}

struct RangeArgs {
  int fd_in = -1;
  uint64_t off_in = 0;
  int fd_out = -1;
  uint64_t off_out = 0;
  uint64_t length = 0;
};

// Empty string when the five arguments are valid, else the problem (and its Node code).
std::string parse_range_args(const Napi::CallbackInfo& info, RangeArgs* a, const char** code) {
  *code = "ERR_INVALID_ARG_TYPE";
  if (info.Length() < 5) return "expected (fdIn, offIn, fdOut, offOut, length)";
  for (size_t i = 0; i < 5; ++i) {
    if (!info[i].IsNumber()) return "fdIn, offIn, fdOut, offOut and length must be numbers";
  }
  *code = "ERR_OUT_OF_RANGE";
  if (!parse_fd(info[0], &a->fd_in)) return "fdIn must be an integer file descriptor >= 0";
  if (!parse_fd(info[2], &a->fd_out)) return "fdOut must be an integer file descriptor >= 0";
  if (!parse_u53(info[1], &a->off_in)) return "offIn must be an integer in 0..2^53-1";
  if (!parse_u53(info[3], &a->off_out)) return "offOut must be an integer in 0..2^53-1";
  if (!parse_u53(info[4], &a->length)) return "length must be an integer in 0..2^53-1";
  return {};
}

// Reads the five range arguments into *a; when one is bad, returns the rejected promise the call
// hands back instead (an empty value when all are valid).
Napi::Value read_range_args(const Napi::CallbackInfo& info, RangeArgs* a) {
  const char* code = "";
  const std::string problem = parse_range_args(info, a, &code);
  if (problem.empty()) return Napi::Value();
  Napi::Env env = info.Env();
  Napi::Error e = std::strcmp(code, "ERR_OUT_OF_RANGE") == 0 ? Napi::Error(Napi::RangeError::New(env, problem))
                                                             : Napi::Error(Napi::TypeError::New(env, problem));
  return rejected(env, e, code);
}

class CopyRangeWorker : public Napi::AsyncWorker {
 public:
  CopyRangeWorker(Napi::Env env, const RangeArgs& args, ds::CopyMethod method)
      : Napi::AsyncWorker(env, "deltasync:copyFileRange"),
        deferred_(Napi::Promise::Deferred::New(env)),
        args_(args),
        method_(method) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    result_ = ds::copy_range(args_.fd_in, args_.off_in, args_.fd_out, args_.off_out, args_.length, method_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_.error != 0) {
      deferred_.Reject(system_error(env, result_.error, result_.syscall, result_.bytes));
    } else {
      deferred_.Resolve(Napi::Number::New(env, static_cast<double>(result_.bytes)));
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  RangeArgs args_;
  ds::CopyMethod method_;
  ds::RangeResult result_;
};

class CloneRangeWorker : public Napi::AsyncWorker {
 public:
  CloneRangeWorker(Napi::Env env, const RangeArgs& args)
      : Napi::AsyncWorker(env, "deltasync:cloneFileRange"), deferred_(Napi::Promise::Deferred::New(env)), args_(args) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    result_ = ds::clone_range(args_.fd_in, args_.off_in, args_.fd_out, args_.off_out, args_.length);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_.status == ds::CloneStatus::Failed) {
      deferred_.Reject(system_error(env, result_.error, "ioctl(FICLONERANGE)", 0));
    } else {
      deferred_.Resolve(Napi::Boolean::New(env, result_.status == ds::CloneStatus::Cloned));
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  RangeArgs args_;
  ds::CloneResult result_;
};

// copyFileRange(fdIn, offIn, fdOut, offOut, length, method?) -> Promise<number>
// method: 'auto' (default), 'copy_file_range' (no fallback) or 'readwrite'.
Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RangeArgs args;
  if (Napi::Value bad = read_range_args(info, &args); !bad.IsEmpty()) return bad;
  ds::CopyMethod method = ds::CopyMethod::Auto;
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    const std::string m = info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "";
    if (m == "auto") method = ds::CopyMethod::Auto;
    else if (m == "copy_file_range") method = ds::CopyMethod::CopyFileRange;
    else if (m == "readwrite") method = ds::CopyMethod::ReadWrite;
    else {
      return rejected(env, Napi::TypeError::New(env, "method must be 'auto', 'copy_file_range' or 'readwrite'"),
                      "ERR_INVALID_ARG_VALUE");
    }
  }
  auto* worker = new CopyRangeWorker(env, args, method);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// cloneFileRange(fdIn, offIn, fdOut, offOut, length) -> Promise<boolean>
Napi::Value CloneFileRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RangeArgs args;
  if (Napi::Value bad = read_range_args(info, &args); !bad.IsEmpty()) return bad;
  auto* worker = new CloneRangeWorker(env, args);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// The most pieces one copyHashRange call hashes: bounds its result (the caller splits longer
// ranges; a hostile 1-byte grid costs calls, not memory).
constexpr uint64_t kMaxPiecesPerCall = uint64_t{1} << 20;

class CopyHashWorker : public Napi::AsyncWorker {
 public:
  CopyHashWorker(Napi::Env env, const RangeArgs& args, ds::StrongKind kind, uint64_t cell_len)
      : Napi::AsyncWorker(env, "deltasync:copyHashRange"),
        deferred_(Napi::Promise::Deferred::New(env)),
        args_(args),
        kind_(kind),
        cell_len_(cell_len) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    result_ = ds::copy_hash_range(args_.fd_in, args_.off_in, args_.fd_out, args_.off_out, args_.length, kind_, cell_len_,
                                  &hashes_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_.error != 0) {
      deferred_.Reject(system_error(env, result_.error, result_.syscall, result_.bytes));
      return;
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("bytes", Napi::Number::New(env, static_cast<double>(result_.bytes)));
    r.Set("hashes", hashes_.empty() ? Napi::Buffer<uint8_t>::New(env, 0)
                                    : Napi::Buffer<uint8_t>::Copy(env, hashes_.data(), hashes_.size()));
    deferred_.Resolve(r);
  }

 private:
  Napi::Promise::Deferred deferred_;
  RangeArgs args_;
  ds::StrongKind kind_;
  uint64_t cell_len_;
  ds::RangeResult result_;
  std::vector<uint8_t> hashes_;
};

// copyHashRange(fdIn, offIn, fdOut, offOut, length, strong, cellLen) -> Promise<{ bytes, hashes }>
// strong: 'xxh3', 'md4' or 'blake2b'; cellLen 1..2^26; at most 2^20 pieces per call.
Napi::Value CopyHashRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RangeArgs args;
  if (Napi::Value bad = read_range_args(info, &args); !bad.IsEmpty()) return bad;
  const std::string name = info.Length() > 5 && info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "";
  ds::StrongKind kind;
  if (name == "xxh3") kind = ds::StrongKind::Xxh3;
  else if (name == "md4") kind = ds::StrongKind::Md4;
  else if (name == "blake2b") kind = ds::StrongKind::Blake2b;
  else return rejected(env, Napi::TypeError::New(env, "strong must be 'xxh3', 'md4' or 'blake2b'"), "ERR_INVALID_ARG_VALUE");
  uint64_t cell_len = 0;
  if (info.Length() < 7 || !parse_u53(info[6], &cell_len) || cell_len < 1 || cell_len > (uint64_t{1} << 26)) {
    return rejected(env, Napi::RangeError::New(env, "cellLen must be an integer in 1..2^26"), "ERR_OUT_OF_RANGE");
  }
  if (ds::piece_count(args.off_in, args.length, cell_len) > kMaxPiecesPerCall) {
    return rejected(env, Napi::RangeError::New(env, "range covers more than 2^20 cells: split it"), "ERR_OUT_OF_RANGE");
  }
  auto* worker = new CopyHashWorker(env, args, kind, cell_len);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// readCached(fd, buffer, offset, length, position) -> number
// One pread that only takes bytes already in the page cache (preadv2 with RWF_NOWAIT), made on
// the calling (JS) thread: the bytes read (0 at end of file; fewer than asked when only a part
// is cached), or -1 when nothing could be read without waiting for the disk, or when the kernel
// or file system cannot tell (the caller then reads on the thread pool). Node has no RWF_NOWAIT;
// without it a small read either blocks the JS thread on a cold file or pays a thread-pool round
// trip on a warm one. Other errors throw, with code/errno/syscall like Node's.
Napi::Value ReadCached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t fd = 0, offset = 0, length = 0, position = 0;
  if (info.Length() < 5 || !parse_u53(info[0], &fd) || fd > INT32_MAX || !info[1].IsTypedArray() ||
      !parse_u53(info[2], &offset) || !parse_u53(info[3], &length) || !parse_u53(info[4], &position)) {
    Napi::TypeError::New(env, "readCached(fd, buffer, offset, length, position): integers and a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::TypedArray view = info[1].As<Napi::TypedArray>();
  if (view.TypedArrayType() != napi_uint8_array || offset > view.ByteLength() || length > view.ByteLength() - offset) {
    Napi::RangeError::New(env, "offset and length must lie within the buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint8_t* base = static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
#if defined(__linux__) && defined(RWF_NOWAIT)
  struct iovec iov {
    base + offset, static_cast<size_t>(length)
  };
  for (;;) {
    const ssize_t n = preadv2(static_cast<int>(fd), &iov, 1, static_cast<off_t>(position), RWF_NOWAIT);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) return Napi::Number::New(env, -1);
    const int err = errno;
    Napi::Error(env, system_error(env, err, "preadv2", 0)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
#else
  (void)base;
  return Napi::Number::New(env, -1);
#endif
}

}  // namespace

void register_fileops(Napi::Env env, Napi::Object exports) {
  exports.Set("readCached", Napi::Function::New(env, ReadCached, "readCached"));
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange, "copyFileRange"));
  exports.Set("cloneFileRange", Napi::Function::New(env, CloneFileRange, "cloneFileRange"));
  exports.Set("copyHashRange", Napi::Function::New(env, CopyHashRange, "copyHashRange"));
}
