// N-API surface of native/protocol: the frame splitter and the FLIST decoder, typed on the JS
// side in lib/native.ts and used by lib/protocol/framing.ts and messages.ts. Refusals of bad
// input are returned as values (the TS layer raises ERR_PROTOCOL); only misuse of the API
// (wrong argument types) throws.
#include <napi.h>

#include <vector>

#include "protocol/file_list.h"
#include "protocol/frames.h"
#include "protocol/messages.h"

namespace {

using ds::protocol::FileListEntry;
using ds::protocol::FrameRef;

// Values per entry in decodeFileList's `fields`; lib/protocol/messages.ts reads them by index.
constexpr size_t kEntryStride = 15;

Napi::Uint8Array bytes_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), "Buffer or Uint8Array expected");
  }
  return info[i].As<Napi::Uint8Array>();
}

// splitFrames(buffer, maxPayload) -> { frames: Float64Array [type, offset, length]*, consumed,
// need, error? }
Napi::Value SplitFrames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array data = bytes_arg(info, 0);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "maxPayload must be a number");
  const double max = info[1].As<Napi::Number>().DoubleValue();
  if (!(max >= 0) || max > ds::protocol::kMaxFramePayload) {
    throw Napi::RangeError::New(env, "maxPayload must be in 0.." + std::to_string(ds::protocol::kMaxFramePayload));
  }
  thread_local std::vector<FrameRef> frames;
  ds::protocol::SplitResult result;
  ds::protocol::split_frames(data.Data(), data.ByteLength(), static_cast<uint32_t>(max), &frames, &result);
  Napi::Float64Array out = Napi::Float64Array::New(env, 3 * frames.size());
  double* d = out.Data();
  for (const FrameRef& f : frames) {
    *d++ = f.type;
    *d++ = static_cast<double>(f.offset);
    *d++ = f.length;
  }
  if (frames.capacity() > 4096) std::vector<FrameRef>().swap(frames);
  Napi::Object r = Napi::Object::New(env);
  r.Set("frames", out);
  r.Set("consumed", static_cast<double>(result.consumed));
  r.Set("need", static_cast<double>(result.need));
  if (result.failed) r.Set("error", result.error);
  return r;
}

// decodeFileList(payload, prevPath) -> { fields: Float64Array (kEntryStride per entry), paths:
// Buffer } | { error, path? }
Napi::Value DecodeFileList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array payload = bytes_arg(info, 0);
  Napi::Uint8Array prev = bytes_arg(info, 1);
  std::vector<FileListEntry> entries;
  std::vector<uint8_t> paths;
  ds::protocol::FileListError error;
  if (!ds::protocol::decode_file_list(payload.Data(), payload.ByteLength(), prev.Data(), prev.ByteLength(), &entries,
                                      &paths, &error)) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("error", error.message);
    if (error.has_path) {
      r.Set("path", Napi::Buffer<char>::Copy(env, error.path.data(), error.path.size()));
    }
    return r;
  }
  Napi::Float64Array fields = Napi::Float64Array::New(env, kEntryStride * entries.size());
  double* d = fields.Data();
  for (const FileListEntry& e : entries) {
    d[0] = e.type;
    d[1] = e.flags;
    d[2] = static_cast<double>(e.mode);
    d[3] = static_cast<double>(e.size);
    d[4] = static_cast<double>(e.mtime_sec);
    d[5] = static_cast<double>(e.mtime_nsec);
    d[6] = static_cast<double>(e.uid);
    d[7] = static_cast<double>(e.gid);
    d[8] = static_cast<double>(e.rdev);
    d[9] = static_cast<double>(e.path_offset);
    d[10] = static_cast<double>(e.path_length);
    d[11] = static_cast<double>(e.link_offset);
    d[12] = static_cast<double>(e.link_length);
    d[13] = static_cast<double>(e.checksum_offset);
    d[14] = static_cast<double>(e.checksum_length);
    d += kEntryStride;
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("fields", fields);
  r.Set("paths", Napi::Buffer<uint8_t>::Copy(env, paths.empty() ? reinterpret_cast<const uint8_t*>("") : paths.data(),
                                             paths.size()));
  return r;
}

// decodeMessage(type, payload) -> Float64Array of the fields (native/protocol/messages.h) | error string
Napi::Value DecodeMessage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "type must be a number");
  const double type = info[0].As<Napi::Number>().DoubleValue();
  if (!(type >= 0 && type <= 255) || type != static_cast<double>(static_cast<uint8_t>(type))) {
    throw Napi::RangeError::New(env, "type must be an integer in 0..255");
  }
  Napi::Uint8Array payload = bytes_arg(info, 1);
  ds::protocol::MessageFields fields;
  std::string error;
  if (!ds::protocol::decode_message(static_cast<uint8_t>(type), payload.Data(), payload.ByteLength(), &fields, &error)) {
    return Napi::String::New(env, error);
  }
  Napi::Float64Array out = Napi::Float64Array::New(env, fields.count);
  for (size_t i = 0; i < fields.count; ++i) out.Data()[i] = static_cast<double>(fields.value[i]);
  return out;
}

}  // namespace

void register_protocol(Napi::Env env, Napi::Object exports) {
  exports.Set("splitFrames", Napi::Function::New(env, SplitFrames));
  exports.Set("decodeFileList", Napi::Function::New(env, DecodeFileList));
  exports.Set("decodeMessage", Napi::Function::New(env, DecodeMessage));
}
