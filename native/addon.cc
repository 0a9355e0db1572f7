// N-API bindings. Stateful objects (signature builder, matcher, hasher) are ObjectWraps; work on
// large buffers runs on the libuv thread pool and returns a promise. Inputs are whole chunks
// (MiBs): nothing here is called per block.
#include <napi.h>
#if defined(__linux__)
#include <sys/random.h>
#else
#include <stdlib.h>  // arc4random_buf
#endif

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "block_params.h"
#include "cpu.h"
#include "hash/strong.h"
#include "matcher.h"
#include "parallel.h"
#include "rolling.h"
#include "signature_builder.h"

void register_fileops(Napi::Env env, Napi::Object exports);  // native/fileops.cc
void register_format(Napi::Env env, Napi::Object exports);   // native/format/binding.cc
void register_protocol(Napi::Env env, Napi::Object exports);  // native/protocol/binding.cc

namespace {

using ds::BlockParams;
using ds::RollingKind;
using ds::StrongKind;

// Below this, doing the work inline costs less than a trip through the thread pool.
constexpr size_t kInlineBytes = 256 * 1024;

RollingKind parse_rolling(Napi::Env env, const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "ds64") return RollingKind::Ds64;
  if (s == "rollsum") return RollingKind::Rollsum;
  if (s == "rabinkarp") return RollingKind::RabinKarp;
  throw Napi::TypeError::New(env, "unknown rolling checksum '" + s + "' (ds64, rollsum, rabinkarp)");
}

StrongKind parse_strong(Napi::Env env, const Napi::Value& v) {
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (s == "xxh3") return StrongKind::Xxh3;
  if (s == "md4") return StrongKind::Md4;
  if (s == "blake2b") return StrongKind::Blake2b;
  throw Napi::TypeError::New(env, "unknown strong hash '" + s + "' (xxh3, md4, blake2b)");
}

// A non-negative integer no larger than max, or a RangeError naming the field.
uint64_t parse_count(Napi::Env env, const Napi::Object& o, const char* field, uint64_t max) {
  const Napi::Value v = o.Get(field);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string(field) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > static_cast<double>(max) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    throw Napi::RangeError::New(env, std::string(field) + " out of range");
  }
  return static_cast<uint64_t>(d);
}

BlockParams parse_params(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, "parameters object expected");
  const Napi::Object o = v.As<Napi::Object>();
  BlockParams p;
  p.block_len = parse_count(env, o, "blockLen", ds::kMaxBlockLen);
  p.rolling = parse_rolling(env, o.Get("rolling"));
  p.strong = parse_strong(env, o.Get("strong"));
  p.strong_len = parse_count(env, o, "strongLen", ds::kMaxStrongLen);
  const std::string problem = p.check();
  if (!problem.empty()) throw Napi::RangeError::New(env, problem);
  return p;
}

Napi::Uint8Array bytes_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), "Buffer or Uint8Array expected");
  }
  return info[i].As<Napi::Uint8Array>();
}

Napi::Buffer<uint8_t> to_buffer(Napi::Env env, std::vector<uint8_t>&& bytes) {
  if (bytes.empty()) return Napi::Buffer<uint8_t>::New(env, 0);
  auto* owned = new std::vector<uint8_t>(std::move(bytes));
  return Napi::Buffer<uint8_t>::New(env, owned->data(), owned->size(),
                                    [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, owned);
}

// Runs work off the JS thread and settles a promise with result(env). Holds references to
// the owning object and the input buffer so neither is collected while the work runs.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, Napi::Object owner, Napi::Value input, std::function<void()> work,
                std::function<Napi::Value(Napi::Env)> result, std::function<void()> done)
      : Napi::AsyncWorker(env, "deltasync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        result_(std::move(result)),
        done_(std::move(done)) {
    owner_ = Napi::Persistent(owner);
    if (input.IsObject()) input_ = Napi::Persistent(input.As<Napi::Object>());
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    done_();
    deferred_.Resolve(result_(Env()));
  }
  void OnError(const Napi::Error& e) override {
    done_();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  Napi::ObjectReference input_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
  std::function<void()> done_;
};

// Runs inline for small inputs, on the pool otherwise; either way returns a promise.
Napi::Value run_async(const Napi::CallbackInfo& info, Napi::Value input, size_t bytes, bool* busy,
                      std::function<void()> work, std::function<Napi::Value(Napi::Env)> result) {
  Napi::Env env = info.Env();
  if (*busy) throw Napi::Error::New(env, "previous call still running: await it first");
  if (bytes < kInlineBytes) {
    auto deferred = Napi::Promise::Deferred::New(env);
    try {
      work();
    } catch (const std::exception& e) {
      deferred.Reject(Napi::Error::New(env, e.what()).Value());
      return deferred.Promise();
    }
    deferred.Resolve(result(env));
    return deferred.Promise();
  }
  *busy = true;
  auto* worker = new PromiseWorker(env, info.This().As<Napi::Object>(), input, std::move(work),
                                   std::move(result), [busy] { *busy = false; });
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

class SignatureBuilderWrap : public Napi::ObjectWrap<SignatureBuilderWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "SignatureBuilder",
                       {InstanceMethod("update", &SignatureBuilderWrap::Update),
                        InstanceMethod("updateSync", &SignatureBuilderWrap::UpdateSync),
                        InstanceMethod("updateParts", &SignatureBuilderWrap::UpdateParts),
                        InstanceMethod("updateFromFile", &SignatureBuilderWrap::UpdateFromFile),
                        InstanceMethod("final", &SignatureBuilderWrap::Final)});
  }
  explicit SignatureBuilderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SignatureBuilderWrap>(info) {
    builder_ = std::make_unique<ds::SignatureBuilder>(parse_params(info.Env(), info[0]));
  }

 private:
  void check_usable(Napi::Env env) {
    if (busy_) throw Napi::Error::New(env, "previous update still running: await it first");
    if (finished_) throw Napi::Error::New(env, "signature builder already finished");
  }
  Napi::Value Update(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    Napi::Uint8Array data = bytes_arg(info, 0);
    auto out = std::make_shared<std::vector<uint8_t>>();
    const uint8_t* p = data.Data();
    const size_t len = data.ByteLength();
    return run_async(
        info, data, len, &busy_, [this, out, p, len] { builder_->update(p, len, out.get()); },
        [out](Napi::Env env) { return to_buffer(env, std::move(*out)); });
  }
  Napi::Value UpdateSync(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    Napi::Uint8Array data = bytes_arg(info, 0);
    std::vector<uint8_t> out;
    builder_->update(data.Data(), data.ByteLength(), &out);
    return to_buffer(info.Env(), std::move(out));
  }
  // updateParts(parts): the parts one after another, as update() of their concatenation, in one
  // trip to the thread pool (a receiver's batch is many frame payloads). The parts are held in
  // an array of the addon's own while the work runs, so the caller cannot drop one meanwhile.
  Napi::Value UpdateParts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_usable(env);
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "updateParts(parts) expects an array of Buffers");
    const Napi::Array given = info[0].As<Napi::Array>();
    const uint32_t count = given.Length();
    Napi::Array held = Napi::Array::New(env, count);
    auto parts = std::make_shared<std::vector<std::pair<const uint8_t*, size_t>>>();
    parts->reserve(count);
    size_t total = 0;
    for (uint32_t i = 0; i < count; ++i) {
      const Napi::Value v = given.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        throw Napi::TypeError::New(env, "updateParts: every part must be a Buffer or Uint8Array");
      }
      const Napi::Uint8Array part = v.As<Napi::Uint8Array>();
      held.Set(i, part);
      parts->emplace_back(part.Data(), part.ByteLength());
      total += part.ByteLength();
    }
    auto out = std::make_shared<std::vector<uint8_t>>();
    return run_async(
        info, held, total, &busy_,
        [this, out, parts] {
          for (const auto& [p, len] : *parts) builder_->update(p, len, out.get());
        },
        [out](Napi::Env e) { return to_buffer(e, std::move(*out)); });
  }
  // updateFromFile(fd, position, length): reads and hashes on the thread pool (and on all
  // cores); resolves to { entries, bytesRead }. The caller keeps fd open until it settles.
  Napi::Value UpdateFromFile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_usable(env);
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
      throw Napi::TypeError::New(env, "updateFromFile(fd, position, length) expects three numbers");
    }
    const double fd = info[0].As<Napi::Number>().DoubleValue();
    const double position = info[1].As<Napi::Number>().DoubleValue();
    const double length = info[2].As<Napi::Number>().DoubleValue();
    const auto whole = [](double d, double max) { return d >= 0 && d <= max && d == static_cast<double>(static_cast<uint64_t>(d)); };
    if (!whole(fd, 2147483647.0) || !whole(position, 9007199254740991.0) || !whole(length, 1073741824.0)) {
      throw Napi::RangeError::New(env, "updateFromFile: fd, position or length out of range");
    }
    auto out = std::make_shared<std::vector<uint8_t>>();
    auto read = std::make_shared<size_t>(0);
    const int f = static_cast<int>(fd);
    const uint64_t pos = static_cast<uint64_t>(position);
    const size_t len = static_cast<size_t>(length);
    // Always on the pool (the size to read says nothing about the work when it is small).
    return run_async(
        info, env.Undefined(), std::max(len, kInlineBytes), &busy_,
        [this, out, read, f, pos, len] { *read = builder_->update_from_fd(f, pos, len, out.get()); },
        [out, read](Napi::Env e) {
          Napi::Object result = Napi::Object::New(e);
          result.Set("entries", to_buffer(e, std::move(*out)));
          result.Set("bytesRead", Napi::Number::New(e, static_cast<double>(*read)));
          return result;
        });
  }
  Napi::Value Final(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    finished_ = true;
    std::vector<uint8_t> out;
    builder_->finish(&out);
    return to_buffer(info.Env(), std::move(out));
  }
  std::unique_ptr<ds::SignatureBuilder> builder_;
  bool busy_ = false;
  bool finished_ = false;
};

class MatcherWrap : public Napi::ObjectWrap<MatcherWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Matcher",
                       {InstanceMethod("update", &MatcherWrap::Update), InstanceMethod("final", &MatcherWrap::Final),
                        InstanceMethod("stats", &MatcherWrap::Stats)});
  }
  explicit MatcherWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MatcherWrap>(info) {
    Napi::Env env = info.Env();
    const BlockParams params = parse_params(env, info[0]);
    const Napi::Object o = info[0].As<Napi::Object>();
    const Napi::Value blocks_value = o.Get("blocks");
    if (!blocks_value.IsTypedArray() || blocks_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "blocks must be a Buffer or Uint8Array");
    }
    const Napi::Uint8Array blocks = blocks_value.As<Napi::Uint8Array>();
    const uint64_t count = parse_count(env, o, "blockCount", uint64_t{1} << 31);
    const uint64_t last_len = parse_count(env, o, "lastBlockLen", params.block_len);
    // Sparse signatures: anchor entries only in `blocks`, a check of checkLen bytes per block.
    ds::SparseLayout sparse;
    const bool is_sparse = !o.Get("anchorStride").IsUndefined();
    if (is_sparse) {
      sparse.stride = parse_count(env, o, "anchorStride", 1u << 16);
      sparse.check_len = parse_count(env, o, "checkLen", params.strong_len);
      if (sparse.stride < 2 || sparse.check_len < 1 || count == 0) {
        throw Napi::RangeError::New(env, "a sparse matcher needs anchorStride >= 2, checkLen >= 1 and blocks");
      }
      const Napi::Value checks_value = o.Get("checks");
      if (!checks_value.IsTypedArray() || checks_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        throw Napi::TypeError::New(env, "checks must be a Buffer or Uint8Array");
      }
      const Napi::Uint8Array checks = checks_value.As<Napi::Uint8Array>();
      if (checks.ByteLength() != count * sparse.check_len) {
        throw Napi::RangeError::New(env, "checks length does not match blockCount checks");
      }
      sparse.checks = checks.Data();  // copied by the matcher
    }
    const uint64_t entries = is_sparse ? ds::sparse_anchor_count(count, sparse.stride) : count;
    if (blocks.ByteLength() != entries * params.entry_size()) {
      throw Napi::RangeError::New(env, "blocks length does not match blockCount entries");
    }
    const Napi::Value in_place = o.Get("inPlace");
    if (!in_place.IsUndefined() && !in_place.IsBoolean()) throw Napi::TypeError::New(env, "inPlace must be a boolean");
    matcher_ = std::make_unique<ds::Matcher>(params, blocks.Data(), count, last_len,
                                             in_place.IsBoolean() && in_place.As<Napi::Boolean>().Value(), sparse);
  }

 private:
  static Napi::Value result_object(Napi::Env env, ds::MatchOutput& out) {
    Napi::Object r = Napi::Object::New(env);
    Napi::Float64Array ops = Napi::Float64Array::New(env, out.ops.size());
    std::copy(out.ops.begin(), out.ops.end(), ops.Data());
    r.Set("ops", ops);
    r.Set("literals", to_buffer(env, std::move(out.literals)));
    r.Set("digests", to_buffer(env, std::move(out.digests)));
    return r;
  }
  void check_usable(Napi::Env env) {
    if (busy_) throw Napi::Error::New(env, "previous update still running: await it first");
    if (finished_) throw Napi::Error::New(env, "matcher already finished");
  }
  Napi::Value Update(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    Napi::Uint8Array data = bytes_arg(info, 0);
    auto out = std::make_shared<ds::MatchOutput>();
    const uint8_t* p = data.Data();
    const size_t len = data.ByteLength();
    return run_async(
        info, data, len, &busy_, [this, out, p, len] { matcher_->update(p, len, out.get()); },
        [out](Napi::Env env) { return result_object(env, *out); });
  }
  Napi::Value Final(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    finished_ = true;
    auto out = std::make_shared<ds::MatchOutput>();
    return run_async(
        info, info.Env().Undefined(), 0, &busy_, [this, out] { matcher_->finish(out.get()); },
        [out](Napi::Env env) { return result_object(env, *out); });
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    const ds::MatchStats& s = matcher_->stats();
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("weakHits", static_cast<double>(s.weak_hits));
    r.Set("strongCalcs", static_cast<double>(s.strong_calcs));
    r.Set("strongHits", static_cast<double>(s.strong_hits));
    r.Set("chainCapped", static_cast<double>(s.chain_capped));
    r.Set("distrusted", static_cast<double>(s.distrusted));
    r.Set("slicedBatches", static_cast<double>(s.sliced_batches));
    return r;
  }
  std::unique_ptr<ds::Matcher> matcher_;
  bool busy_ = false;
  bool finished_ = false;
};

class HasherWrap : public Napi::ObjectWrap<HasherWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Hasher",
                       {InstanceMethod("update", &HasherWrap::Update), InstanceMethod("updateSync", &HasherWrap::UpdateSync),
                        InstanceMethod("digest", &HasherWrap::Digest)});
  }
  explicit HasherWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HasherWrap>(info) {
    hasher_ = std::make_unique<ds::StrongHasher>(parse_strong(info.Env(), info[0]));
  }

 private:
  void check_usable(Napi::Env env) {
    if (busy_) throw Napi::Error::New(env, "previous update still running: await it first");
    if (finished_) throw Napi::Error::New(env, "hasher already digested");
  }
  Napi::Value Update(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    Napi::Uint8Array data = bytes_arg(info, 0);
    const uint8_t* p = data.Data();
    const size_t len = data.ByteLength();
    return run_async(
        info, data, len, &busy_, [this, p, len] { hasher_->update(p, len); },
        [](Napi::Env env) { return env.Undefined(); });
  }
  Napi::Value UpdateSync(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    Napi::Uint8Array data = bytes_arg(info, 0);
    hasher_->update(data.Data(), data.ByteLength());
    return info.Env().Undefined();
  }
  Napi::Value Digest(const Napi::CallbackInfo& info) {
    check_usable(info.Env());
    finished_ = true;
    std::vector<uint8_t> out(ds::strong_full_len(hasher_->kind()));
    hasher_->digest(out.data());
    return to_buffer(info.Env(), std::move(out));
  }
  std::unique_ptr<ds::StrongHasher> hasher_;
  bool busy_ = false;
  bool finished_ = false;
};

Napi::Value WeakWidth(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ds::weak_width(parse_rolling(info.Env(), info[0]))));
}

Napi::Value StrongFullLen(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ds::strong_full_len(parse_strong(info.Env(), info[0]))));
}

Napi::Value Hash(const Napi::CallbackInfo& info) {
  const StrongKind kind = parse_strong(info.Env(), info[0]);
  Napi::Uint8Array data = bytes_arg(info, 1);
  std::vector<uint8_t> out(ds::strong_full_len(kind));
  ds::strong_sum(kind, data.Data(), data.ByteLength(), out.data());
  return to_buffer(info.Env(), std::move(out));
}

// Copies `count` rows of `rowLen` bytes, row r from src[srcStart + r*srcStride] to
// dst[dstStart + r*dstStride], in row order: signature tables (weak+strong entries, strong-only
// grids, check columns) are repacked a whole table per call. From JavaScript a Buffer.copy per
// row cost 0.3-0.6 us while still cold, 10-20 ms per table of a 1 GiB file's 32768 blocks.
Napi::Value CopyRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array src = bytes_arg(info, 0);
  Napi::Uint8Array dst = bytes_arg(info, 3);
  const char* names[] = {"", "srcStart", "srcStride", "", "dstStart", "dstStride", "rowLen", "count"};
  uint64_t v[8] = {};
  for (size_t i : {1, 2, 4, 5, 6, 7}) {
    const double d = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
      throw Napi::RangeError::New(env, std::string("copyRows: ") + names[i] + " must be a non-negative integer");
    }
    v[i] = static_cast<uint64_t>(d);
  }
  const uint64_t src_start = v[1], src_stride = v[2], dst_start = v[4], dst_stride = v[5], row_len = v[6], count = v[7];
  if (count == 0 || row_len == 0) return env.Undefined();
  // The last row must end inside each buffer (in 64-bit arithmetic that cannot wrap: every
  // operand is below 2^53 and the products are checked).
  auto fits = [&](uint64_t start, uint64_t stride, uint64_t length) {
    uint64_t span;
    if (__builtin_mul_overflow(count - 1, stride, &span)) return false;
    if (__builtin_add_overflow(span, start, &span) || __builtin_add_overflow(span, row_len, &span)) return false;
    return span <= length;
  };
  if (!fits(src_start, src_stride, src.ByteLength())) throw Napi::RangeError::New(env, "copyRows: rows run past the end of the source");
  if (!fits(dst_start, dst_stride, dst.ByteLength())) throw Napi::RangeError::New(env, "copyRows: rows run past the end of the destination");
  const uint8_t* from = src.Data() + src_start;
  uint8_t* to = dst.Data() + dst_start;
  if (src_stride == row_len && dst_stride == row_len) {
    std::memmove(to, from, count * row_len);
    return env.Undefined();
  }
  for (uint64_t r = 0; r < count; ++r) std::memmove(to + r * dst_stride, from + r * src_stride, row_len);
  return env.Undefined();
}

// Fills a buffer from the kernel's random source (temp-file names): loading Node's crypto
// module for it cost every sync several milliseconds of start-up.
Napi::Value RandomFill(const Napi::CallbackInfo& info) {
  Napi::Uint8Array buf = bytes_arg(info, 0);
  uint8_t* p = buf.Data();
  size_t left = buf.ByteLength();
#if defined(__linux__)
  while (left > 0) {
    const ssize_t n = getrandom(p, left, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Napi::Error::New(info.Env(), std::string("getrandom: ") + std::strerror(errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
#else
  arc4random_buf(p, left);
#endif
  return buf;
}

Napi::Value RollingDigest(const Napi::CallbackInfo& info) {
  const RollingKind kind = parse_rolling(info.Env(), info[0]);
  Napi::Uint8Array data = bytes_arg(info, 1);
  return Napi::BigInt::New(info.Env(), ds::rolling_digest(kind, data.Data(), data.ByteLength()));
}

Napi::Value SimdLevel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ds::simd_name(ds::simd_level()));
}

Napi::Value WorkerThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ds::worker_threads());
}

Napi::Value SimdDetected(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ds::simd_name(ds::simd_detected()));
}

Napi::Value SetSimdLevel(const Napi::CallbackInfo& info) {
  ds::SimdLevel level;
  const std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (!ds::simd_parse(name.c_str(), &level)) {
    throw Napi::TypeError::New(info.Env(), "unknown SIMD level '" + name + "'");
  }
  return Napi::Boolean::New(info.Env(), ds::set_simd_level(level));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SignatureBuilder", SignatureBuilderWrap::Init(env));
  exports.Set("Matcher", MatcherWrap::Init(env));
  exports.Set("Hasher", HasherWrap::Init(env));
  exports.Set("weakWidth", Napi::Function::New(env, WeakWidth));
  exports.Set("strongFullLen", Napi::Function::New(env, StrongFullLen));
  exports.Set("hash", Napi::Function::New(env, Hash));
  exports.Set("rollingDigest", Napi::Function::New(env, RollingDigest));
  exports.Set("copyRows", Napi::Function::New(env, CopyRows));
  exports.Set("randomFill", Napi::Function::New(env, RandomFill));
  exports.Set("simdLevel", Napi::Function::New(env, SimdLevel));
  exports.Set("simdDetected", Napi::Function::New(env, SimdDetected));
  exports.Set("workerThreads", Napi::Function::New(env, WorkerThreads));
  exports.Set("setSimdLevel", Napi::Function::New(env, SetSimdLevel));
  register_fileops(env, exports);
  register_format(env, exports);
  register_protocol(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(deltasync, Init)
