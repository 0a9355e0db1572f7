// N-API surface of native/format: the streaming DeltaDecoder (an ObjectWrap) and the signature
// validators. Typed on the JS side in lib/format/native-decoder.ts. Refusals of bad input are
// returned as { code, message } values (the TS layer turns them into DeltaSyncErrors); only
// misuse of the API itself (wrong argument types) throws.
#include <napi.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "format/apply.h"
#include "format/delta_decoder.h"
#include "format/signature_format.h"
#include "hash/strong.h"

namespace {

using ds::format::DeltaDecoder;
using ds::format::DeltaFormat;
using ds::format::DeltaOp;
using ds::format::Family;
using ds::format::Status;

// Op kinds in the Float64Array push() returns: triples [kind, a, b].
constexpr double kOpCopy = 0;     // a = basis offset, b = length
constexpr double kOpLiteral = 1;  // a = offset in the pushed chunk, b = length
constexpr double kOpError = 2;    // always last; details from error()
constexpr size_t kKeptOps = 4096;

Napi::Uint8Array bytes_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), "Buffer or Uint8Array expected");
  }
  return info[i].As<Napi::Uint8Array>();
}

std::string string_arg(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsString() ? info[i].As<Napi::String>().Utf8Value() : "";
}

// A non-negative integer ≤ max from a JS number, or false.
bool to_count(const Napi::Value& v, uint64_t max, uint64_t* out) {
  if (!v.IsNumber()) return false;
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > static_cast<double>(max) || d != static_cast<double>(static_cast<uint64_t>(d))) return false;
  *out = static_cast<uint64_t>(d);
  return true;
}

Napi::Object error_value(Napi::Env env, const Status& s) {
  Napi::Object e = Napi::Object::New(env);
  e.Set("code", ds::format::error_code_name(s.kind));
  e.Set("message", s.message);
  return e;
}

// { error: { code, message } }: what every validator returns on refusal.
Napi::Object refusal(Napi::Env env, const Status& s) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("error", error_value(env, s));
  return r;
}

Napi::Buffer<uint8_t> copy_buffer(Napi::Env env, const uint8_t* p, size_t n) {
  return Napi::Buffer<uint8_t>::Copy(env, n ? p : reinterpret_cast<const uint8_t*>(""), n);
}

void set_header(Napi::Object o, const ds::format::SignatureHeader& h) {
  o.Set("format", ds::format::family_name(h.family));
  o.Set("magic", static_cast<double>(h.magic));
  o.Set("rolling", ds::format::rolling_name(h.rolling));
  o.Set("strong", ds::format::strong_name(h.strong));
  o.Set("blockLen", static_cast<double>(h.block_len));
  o.Set("strongLen", static_cast<double>(h.strong_len));
  o.Set("entrySize", static_cast<double>(h.entry_size));
  o.Set("headerLen", static_cast<double>(h.header_len));
  if (h.family == Family::Deltasync) {
    o.Set("fileSize", static_cast<double>(h.file_size));
    o.Set("blockCount", static_cast<double>(h.block_count));
    o.Set("totalLen", static_cast<double>(h.total_len));
  }
}

class DeltaDecoderWrap : public Napi::ObjectWrap<DeltaDecoderWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "DeltaDecoder",
                       {InstanceMethod("push", &DeltaDecoderWrap::Push),
                        InstanceMethod("finish", &DeltaDecoderWrap::Finish),
                        InstanceMethod("error", &DeltaDecoderWrap::LastError),
                        InstanceAccessor("format", &DeltaDecoderWrap::Format, nullptr),
                        InstanceAccessor("resultSize", &DeltaDecoderWrap::ResultSize, nullptr),
                        InstanceAccessor("resultHash", &DeltaDecoderWrap::ResultHash, nullptr),
                        InstanceAccessor("grid", &DeltaDecoderWrap::Grid, nullptr),
                        InstanceAccessor("outputBytes", &DeltaDecoderWrap::OutputBytes, nullptr),
                        InstanceAccessor("inputBytes", &DeltaDecoderWrap::InputBytes, nullptr),
                        InstanceAccessor("done", &DeltaDecoderWrap::Done, nullptr)});
  }

  // new DeltaDecoder(format: 'auto' | 'deltasync' | 'rdiff', basisSize?: number)
  explicit DeltaDecoderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeltaDecoderWrap>(info) {
    Napi::Env env = info.Env();
    const std::string f = string_arg(info, 0);
    DeltaFormat format;
    if (f == "auto") format = DeltaFormat::Auto;
    else if (f == "deltasync") format = DeltaFormat::Deltasync;
    else if (f == "rdiff") format = DeltaFormat::Rdiff;
    else throw Napi::TypeError::New(env, "unknown delta format '" + f + "' (auto, deltasync, rdiff)");
    uint64_t basis_size = DeltaDecoder::kUnknownSize;
    if (info.Length() > 1 && !info[1].IsUndefined() && !to_count(info[1], ds::format::kMaxFileSize, &basis_size)) {
      throw Napi::RangeError::New(env, "basisSize must be an integer in 0..2^53 - 1");
    }
    decoder_ = std::make_unique<DeltaDecoder>(format, basis_size);
  }

 private:
  Napi::Value Push(const Napi::CallbackInfo& info) {
    Napi::Uint8Array chunk = bytes_arg(info, 0);
    ops_.clear();
    const Status s = decoder_->push(chunk.Data(), chunk.ByteLength(), &ops_);
    const size_t n = ops_.size() + (s.ok() ? 0 : 1);
    Napi::Float64Array out = Napi::Float64Array::New(info.Env(), 3 * n);
    double* d = out.Data();
    for (const DeltaOp& op : ops_) {
      *d++ = op.kind == DeltaOp::Copy ? kOpCopy : kOpLiteral;
      *d++ = static_cast<double>(op.offset);
      *d++ = static_cast<double>(op.length);
    }
    if (!s.ok()) {
      *d++ = kOpError;
      *d++ = static_cast<double>(s.kind);
      *d++ = 0;
    }
    // Keep a small buffer between pushes, not the peak of one op-dense chunk.
    if (ops_.capacity() > kKeptOps) std::vector<DeltaOp>().swap(ops_);
    return out;
  }
  Napi::Value Finish(const Napi::CallbackInfo& info) {
    const Status s = decoder_->finish();
    return s.ok() ? info.Env().Null() : Napi::Value(error_value(info.Env(), s));
  }
  Napi::Value LastError(const Napi::CallbackInfo& info) {
    const Status& s = decoder_->status();
    return s.ok() ? info.Env().Null() : Napi::Value(error_value(info.Env(), s));
  }
  Napi::Value Format(const Napi::CallbackInfo& info) {
    switch (decoder_->format()) {
      case DeltaFormat::Deltasync:
        return Napi::String::New(info.Env(), "deltasync");
      case DeltaFormat::Rdiff:
        return Napi::String::New(info.Env(), "rdiff");
      default:
        return info.Env().Undefined();
    }
  }
  Napi::Value ResultSize(const Napi::CallbackInfo& info) {
    if (!decoder_->has_result_size()) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), static_cast<double>(decoder_->result_size()));
  }
  Napi::Value ResultHash(const Napi::CallbackInfo& info) {
    const uint8_t* h = decoder_->result_hash();
    if (!h) return info.Env().Undefined();
    return copy_buffer(info.Env(), h, DeltaDecoder::kResultHashLen);
  }
  // deltasync v2 grid of the result digest: { strong, blockLen }, undefined before the header.
  Napi::Value Grid(const Napi::CallbackInfo& info) {
    static const char* const kStrongNames[] = {"", "xxh3", "md4", "blake2b"};
    const uint8_t code = decoder_->strong_code();
    if (code < 1 || code > 3) return info.Env().Undefined();
    Napi::Object g = Napi::Object::New(info.Env());
    g.Set("strong", kStrongNames[code]);
    g.Set("blockLen", static_cast<double>(decoder_->block_len()));
    return g;
  }
  Napi::Value OutputBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(decoder_->output_bytes()));
  }
  Napi::Value InputBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(decoder_->input_bytes()));
  }
  Napi::Value Done(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), decoder_->done()); }

  std::unique_ptr<DeltaDecoder> decoder_;
  std::vector<DeltaOp> ops_;  // reused between pushes
};

// expectMagic(data, 'signature' | 'delta') -> { format } | { error }
Napi::Value ExpectMagic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array data = bytes_arg(info, 0);
  const std::string kind = string_arg(info, 1);
  if (kind != "signature" && kind != "delta") throw Napi::TypeError::New(env, "kind must be 'signature' or 'delta'");
  Family family;
  const Status s = ds::format::expect_magic(data.Data(), data.ByteLength(),
                                            kind == "delta" ? ds::format::FileKind::Delta
                                                            : ds::format::FileKind::Signature,
                                            &family);
  if (!s.ok()) return refusal(env, s);
  Napi::Object r = Napi::Object::New(env);
  r.Set("format", ds::format::family_name(family));
  return r;
}

// parseSignatureHeader(data, 'deltasync' | 'rdiff') -> header | { error }
Napi::Value ParseSignatureHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array data = bytes_arg(info, 0);
  const std::string family = string_arg(info, 1);
  ds::format::SignatureHeader h;
  Status s;
  if (family == "deltasync") s = ds::format::parse_ds_signature_header(data.Data(), data.ByteLength(), &h);
  else if (family == "rdiff") s = ds::format::parse_rdiff_signature_header(data.Data(), data.ByteLength(), &h);
  else throw Napi::TypeError::New(env, "format must be 'deltasync' or 'rdiff'");
  if (!s.ok()) return refusal(env, s);
  Napi::Object r = Napi::Object::New(env);
  set_header(r, h);
  return r;
}

// rdiffSignatureBlockCount(magic, blockLen, strongLen, totalLen) -> { blockCount } | { error }.
// The header fields are validated again here: they come from a JS object.
Napi::Value RdiffSignatureBlockCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t field[3];
  uint64_t total_len;
  for (size_t i = 0; i < 3; ++i) {
    if (!to_count(info[i], 0xffffffffu, &field[i])) {
      throw Napi::RangeError::New(env, "rdiff signature header fields must be integers in 0..2^32 - 1");
    }
  }
  if (!to_count(info[3], ds::format::kMaxFileSize, &total_len)) {
    throw Napi::RangeError::New(env, "totalLen must be an integer in 0..2^53 - 1");
  }
  uint8_t header[ds::format::kRsSigHeaderLen];
  for (size_t i = 0; i < 3; ++i) {
    for (size_t b = 0; b < 4; ++b) header[4 * i + b] = static_cast<uint8_t>(field[i] >> (8 * (3 - b)));
  }
  ds::format::SignatureHeader h;
  Status s = ds::format::parse_rdiff_signature_header(header, sizeof header, &h);
  uint64_t count = 0;
  if (s.ok()) s = ds::format::rdiff_block_count(h, total_len, &count);
  if (!s.ok()) return refusal(env, s);
  Napi::Object r = Napi::Object::New(env);
  r.Set("blockCount", static_cast<double>(count));
  return r;
}

// parseSignature(data) -> header + { blockCount, entriesOffset, entriesLength } | { error }
Napi::Value ParseSignature(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array data = bytes_arg(info, 0);
  ds::format::ParsedSignature sig;
  const Status s = ds::format::parse_signature(data.Data(), data.ByteLength(), &sig);
  if (!s.ok()) return refusal(env, s);
  Napi::Object r = Napi::Object::New(env);
  set_header(r, sig.header);
  r.Set("blockCount", static_cast<double>(sig.block_count));
  r.Set("entriesOffset", static_cast<double>(sig.entries_offset));
  r.Set("entriesLength", static_cast<double>(sig.entries_len));
  return r;
}

// applyDelta(basis, delta, maxOutput, chunkSizes?) -> { output, verified, copiedBytes, literalBytes } | { error }
// Synchronous and in memory: for tests (the product patches through lib/patch.ts).
Napi::Value ApplyDelta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array basis = bytes_arg(info, 0);
  Napi::Uint8Array delta = bytes_arg(info, 1);
  uint64_t max_output;
  if (!to_count(info[2], ds::format::kMaxFileSize, &max_output)) {
    throw Napi::RangeError::New(env, "maxOutput must be an integer in 0..2^53 - 1");
  }
  std::vector<size_t> chunks;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsArray()) throw Napi::TypeError::New(env, "chunkSizes must be an array of integers");
    const Napi::Array a = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      uint64_t n;
      if (!to_count(a.Get(i), ds::format::kMaxFileSize, &n)) {
        throw Napi::RangeError::New(env, "chunkSizes must be an array of integers");
      }
      chunks.push_back(static_cast<size_t>(n));
    }
  }
  std::vector<uint8_t> out;
  ds::format::ApplyResult result;
  const Status s = ds::format::apply_delta(basis.Data(), basis.ByteLength(), delta.Data(), delta.ByteLength(),
                                           chunks.data(), chunks.size(), max_output, &out, &result);
  if (!s.ok()) return refusal(env, s);
  Napi::Object r = Napi::Object::New(env);
  r.Set("output", copy_buffer(env, out.data(), out.size()));
  r.Set("verified", result.verified);
  r.Set("copiedBytes", static_cast<double>(result.copied_bytes));
  r.Set("literalBytes", static_cast<double>(result.literal_bytes));
  return r;
}

// Full-length strong hashes of consecutive cells of one buffer, on the thread pool: the
// patcher's check of COPYed basis bytes when no trusted grid has them (strong only: no weak
// sums, unlike a signature builder). Keeps the buffer alive until it settles.
class HashCellsWorker : public Napi::AsyncWorker {
 public:
  HashCellsWorker(Napi::Env env, Napi::Uint8Array data, ds::StrongKind kind, uint64_t cell_len)
      : Napi::AsyncWorker(env, "deltasync:hashCells"),
        deferred_(Napi::Promise::Deferred::New(env)),
        data_ref_(Napi::Persistent(data)),
        bytes_(data.Data()),
        len_(data.ByteLength()),
        kind_(kind),
        cell_len_(cell_len) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    const size_t w = ds::strong_full_len(kind_);
    const size_t cells = len_ == 0 ? 0 : static_cast<size_t>((len_ - 1) / cell_len_ + 1);
    out_.resize(cells * w);
    for (size_t i = 0; i < cells; ++i) {
      const uint64_t at = i * cell_len_;
      ds::strong_sum(kind_, bytes_ + at, static_cast<size_t>(std::min<uint64_t>(cell_len_, len_ - at)), out_.data() + i * w);
    }
  }
  void OnOK() override {
    data_ref_.Reset();
    deferred_.Resolve(copy_buffer(Env(), out_.data(), out_.size()));
  }
  void OnError(const Napi::Error& e) override {
    data_ref_.Reset();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Uint8Array> data_ref_;
  const uint8_t* bytes_;
  size_t len_;
  ds::StrongKind kind_;
  uint64_t cell_len_;
  std::vector<uint8_t> out_;
};

// hashCells(strong, data, cellLen) -> Promise<Buffer>: the hash of every cellLen-byte cell of
// data (the last may be shorter), back to back. At most 2^20 cells per call.
Napi::Value HashCells(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = string_arg(info, 0);
  ds::StrongKind kind;
  if (name == "xxh3") kind = ds::StrongKind::Xxh3;
  else if (name == "md4") kind = ds::StrongKind::Md4;
  else if (name == "blake2b") kind = ds::StrongKind::Blake2b;
  else throw Napi::TypeError::New(env, "strong must be 'xxh3', 'md4' or 'blake2b'");
  Napi::Uint8Array data = bytes_arg(info, 1);
  uint64_t cell_len;
  if (!to_count(info[2], uint64_t{1} << 26, &cell_len) || cell_len == 0) {
    throw Napi::RangeError::New(env, "cellLen must be an integer in 1..2^26");
  }
  if (data.ByteLength() / cell_len > (uint64_t{1} << 20)) throw Napi::RangeError::New(env, "more than 2^20 cells: split the data");
  auto* worker = new HashCellsWorker(env, data, kind, cell_len);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void register_format(Napi::Env env, Napi::Object exports) {
  exports.Set("DeltaDecoder", DeltaDecoderWrap::Init(env));
  exports.Set("expectMagic", Napi::Function::New(env, ExpectMagic));
  exports.Set("parseSignatureHeader", Napi::Function::New(env, ParseSignatureHeader));
  exports.Set("rdiffSignatureBlockCount", Napi::Function::New(env, RdiffSignatureBlockCount));
  exports.Set("parseSignature", Napi::Function::New(env, ParseSignature));
  exports.Set("applyDelta", Napi::Function::New(env, ApplyDelta));
  exports.Set("hashCells", Napi::Function::New(env, HashCells));
}
