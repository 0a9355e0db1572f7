// Shared body of the delta harnesses (fuzz_delta_deltasync, fuzz_delta_rdiff).
//
// Input: one control byte, then the delta bytes. The control byte picks how the delta is cut
// into chunks (0 = one chunk), so the fuzzer explores chunkings and contents independently.
// Checks, beyond the sanitizers:
//  - decoding in one chunk and in the chosen chunking gives the same ops (literal bytes
//    compared, not ranges), the same status and the same header facts;
//  - the auto-detecting decoder agrees with the format's own decoder;
//  - every op respects the bounds the decoder promises (2^53 - 1, the declared result size,
//    the basis size, literal ranges inside the chunk);
//  - the applier (apply_delta) agrees with the decoder and never writes past its cap.
// A violated check calls abort(), which libFuzzer reports as a crash with the input saved.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

#include "format/apply.h"
#include "format/delta_decoder.h"

namespace fuzz {

using ds::format::DeltaDecoder;
using ds::format::DeltaFormat;
using ds::format::DeltaOp;
using ds::format::Status;

[[noreturn]] inline void fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz check failed: %s %s\n", what, detail.c_str());
  std::abort();
}

// The basis the committed seeds were made against (fuzz/make-seeds.sh writes the same bytes).
inline const std::vector<uint8_t>& basis() {
  static const std::vector<uint8_t> b = [] {
    std::vector<uint8_t> v(4096);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * i * 7 + i * 13 + 5) % 251);
    return v;
  }();
  return b;
}

// Chunk sizes for a control byte: 0 = one chunk; otherwise a xorshift sequence whose range
// depends on the low bits (tiny pieces, around the 40-byte unit, medium, or mixed with empty).
inline std::vector<size_t> chunk_plan(uint8_t control) {
  std::vector<size_t> plan;
  if (control == 0) return plan;
  uint32_t x = 0x9e3779b9u ^ (control * 0x01000193u);
  static const size_t kRange[4] = {4, 46, 300, 90};
  const size_t range = kRange[control & 3];
  for (int i = 0; i < 64; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    size_t n = x % range;
    if ((control & 3) != 3 && n == 0) n = 1;  // empty pushes only in the mixed plan
    plan.push_back(n);
  }
  return plan;
}

// Everything observable about one decode.
struct Decoded {
  Status status;
  std::vector<std::pair<uint64_t, uint64_t>> copies;  // (offset, length) in order
  std::vector<uint8_t> literal_bytes;                 // all literal payload, in order
  std::vector<uint64_t> literal_runs;                 // length of each run of literal pieces
  std::string order;  // 'c' per copy, 'l' per run of literal pieces: how the two interleave
  bool has_result_size = false;
  uint64_t result_size = 0;
  bool has_hash = false;
  uint8_t hash[16] = {};
  uint64_t output_bytes = 0;
  bool done = false;
  DeltaFormat format = DeltaFormat::Auto;
};

inline Decoded decode(DeltaFormat format, uint64_t basis_size, const uint8_t* data, size_t len,
                      const std::vector<size_t>& plan) {
  Decoded d;
  DeltaDecoder dec(format, basis_size);
  std::vector<DeltaOp> ops;
  uint64_t sum = 0;  // output the ops describe, recomputed here
  size_t pos = 0;
  size_t step = 0;
  Status s;
  auto take = [&](const uint8_t* chunk, size_t n) {
    ops.clear();
    s = dec.push(chunk, n, &ops);
    for (const DeltaOp& op : ops) {
      if (op.length == 0) fail("zero-length op");
      if (op.kind == DeltaOp::Copy) {
        if (op.offset > ds::format::kMaxFileSize || op.length > ds::format::kMaxFileSize - op.offset) {
          fail("copy beyond 2^53 - 1");
        }
        if (basis_size != DeltaDecoder::kUnknownSize && op.offset + op.length > basis_size) fail("copy beyond basis");
        d.copies.emplace_back(op.offset, op.length);
        d.order += 'c';
      } else {
        if (op.offset > n || op.length > n - op.offset) fail("literal range outside the chunk");
        d.literal_bytes.insert(d.literal_bytes.end(), chunk + op.offset, chunk + op.offset + op.length);
        if (d.order.empty() || d.order.back() != 'l') {
          d.order += 'l';
          d.literal_runs.push_back(0);
        }
        d.literal_runs.back() += op.length;
      }
      sum += op.length;
    }
  };
  size_t empty_in_a_row = 0;
  while (pos < len && s.ok()) {
    size_t n = len - pos;
    if (!plan.empty()) n = std::min(n, plan[step++ % plan.size()]);
    empty_in_a_row = n == 0 ? empty_in_a_row + 1 : 0;
    if (empty_in_a_row > plan.size()) n = len - pos;
    take(data + pos, n);
    pos += n;
  }
  if (s.ok()) s = dec.finish();
  if (!s.ok()) {
    if (s.message.empty()) fail("error without a message");
    if (s.message.find("internal error") != std::string::npos) fail("internal error", s.message);
    if (s.message.find('\n') != std::string::npos) fail("multi-line message", s.message);
    // A stopped decoder stays stopped.
    std::vector<DeltaOp> more;
    const uint8_t zero = 0;
    if (dec.push(&zero, 1, &more).kind != s.kind || !more.empty()) fail("decoder resumed after an error");
  }
  // Zero-length rdiff commands count towards nothing, so the sum must match exactly.
  if (sum != dec.output_bytes() && s.ok()) fail("output_bytes disagrees with the ops");
  if (s.ok()) {
    if (!dec.done()) fail("finished without END");
    if (dec.has_result_size() && dec.output_bytes() != dec.result_size()) fail("declared size not met");
    if (dec.format() == DeltaFormat::Deltasync && !dec.result_hash()) fail("deltasync delta without a hash");
  }
  d.status = s;
  d.has_result_size = dec.has_result_size();
  d.result_size = dec.result_size();
  d.has_hash = dec.result_hash() != nullptr;
  if (d.has_hash) std::copy(dec.result_hash(), dec.result_hash() + 16, d.hash);
  d.output_bytes = dec.output_bytes();
  d.done = dec.done();
  d.format = dec.format();
  return d;
}

inline void expect_same(const Decoded& a, const Decoded& b, const char* what) {
  const bool same_status = a.status.kind == b.status.kind && a.status.message == b.status.message;
  if (!same_status) fail(what, "status: '" + a.status.message + "' vs '" + b.status.message + "'");
  // Ops before an error are delivered too, whatever the chunking: compare them in every case.
  if (a.copies != b.copies || a.literal_bytes != b.literal_bytes || a.order != b.order ||
      a.literal_runs != b.literal_runs) {
    fail(what, "ops differ");
  }
  if (a.status.ok()) {
    if (a.has_result_size != b.has_result_size || a.result_size != b.result_size) fail(what, "result size differs");
    if (a.has_hash != b.has_hash || std::memcmp(a.hash, b.hash, 16) != 0) fail(what, "hash differs");
    if (a.output_bytes != b.output_bytes || a.done != b.done) fail(what, "counters differ");
  }
}

// The output the ops describe, rebuilt independently of the applier (up to `cap` bytes).
inline std::vector<uint8_t> rebuild(const Decoded& d, const std::vector<uint8_t>& basis, size_t cap) {
  std::vector<uint8_t> out;
  size_t copy = 0, run = 0, lit = 0;
  for (char c : d.order) {
    if (out.size() >= cap) break;
    if (c == 'c') {
      const auto& [offset, length] = d.copies[copy++];
      out.insert(out.end(), basis.begin() + offset, basis.begin() + offset + length);
    } else {
      const uint64_t n = d.literal_runs[run++];
      out.insert(out.end(), d.literal_bytes.begin() + lit, d.literal_bytes.begin() + lit + n);
      lit += n;
    }
  }
  if (out.size() > cap) out.resize(cap);
  return out;
}

inline int run_delta(DeltaFormat format, const uint8_t* input, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = input[0];
  const uint8_t* data = input + 1;
  const size_t len = size - 1;
  const std::vector<size_t> plan = chunk_plan(control);
  const std::vector<uint8_t>& b = basis();

  const Decoded whole = decode(format, DeltaDecoder::kUnknownSize, data, len, {});
  const Decoded chunked = decode(format, DeltaDecoder::kUnknownSize, data, len, plan);
  expect_same(whole, chunked, "one chunk vs chunked");

  // Auto detection must land on the same result when the magic is this format's.
  const Decoded autod = decode(DeltaFormat::Auto, DeltaDecoder::kUnknownSize, data, len, plan);
  if (autod.format == format) expect_same(chunked, autod, "format decoder vs auto");

  // With the basis size known, the decoder refuses out-of-basis copies itself.
  const Decoded bounded = decode(format, b.size(), data, len, plan);
  if (bounded.status.ok()) {
    if (!chunked.status.ok()) fail("basis bound accepted what the unbounded decoder refused");
    expect_same(chunked, bounded, "unbounded vs bounded");
  }

  // The applier, with a cap well below what a 64 KiB delta can describe.
  constexpr uint64_t kCap = uint64_t{1} << 20;
  std::vector<uint8_t> out;
  ds::format::ApplyResult result;
  const Status applied = ds::format::apply_delta(b.data(), b.size(), data, len, plan.data(), plan.size(), kCap,
                                                 &out, &result);
  if (out.size() > kCap) fail("applier wrote past its cap");
  if (applied.ok()) {
    if (!bounded.status.ok() && autod.format == format) fail("applier accepted what the decoder refused");
    if (out.size() != result.copied_bytes + result.literal_bytes) fail("applier counters");
    if (autod.format == format && out != rebuild(bounded, b, kCap)) fail("applier output differs from the ops");
    if (result.verified != (autod.format == DeltaFormat::Deltasync)) fail("verification flag");
  } else if (applied.message.empty() || applied.message.find("internal error") != std::string::npos) {
    fail("applier error", applied.message);
  }
  return 0;
}

}  // namespace fuzz
