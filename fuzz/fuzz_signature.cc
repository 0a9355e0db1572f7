// libFuzzer harness: serialized signatures of both formats (the input is the whole signature).
//
// Checks, beyond the sanitizers: parse_signature's verdict agrees with the header parsers and
// the block-count rule; an accepted signature's entries exactly fill its body (and, for
// deltasync, its checksum verifies); refusals carry a one-line message. With FUZZ_MATCHER
// (fuzz/build.sh sets it), an accepted signature then drives the native matcher over a small
// input, the way `delta` would use a hostile peer's signature: the ops must describe exactly
// that input, and every COPY must lie inside the basis the signature describes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "format/signature_format.h"
#include "hash/xxh3.h"

#ifdef FUZZ_MATCHER
#include "block_params.h"
#include "matcher.h"
#endif

namespace {

using namespace ds::format;

[[noreturn]] void fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz check failed: %s %s\n", what, detail.c_str());
  std::abort();
}

void check_refusal(const Status& s) {
  if (s.ok()) return;
  if (s.message.empty() || s.message.find('\n') != std::string::npos) fail("bad message", s.message);
}

#ifdef FUZZ_MATCHER
// The matcher refuses nothing (the signature was validated); it must stay within its bounds.
void drive_matcher(const ParsedSignature& sig, const uint8_t* data, size_t size) {
  const SignatureHeader& h = sig.header;
  // Big blocks only slow the fuzzer down (one window buffer per block length); their parsing is
  // covered above.
  if (h.block_len > (1u << 20) || sig.block_count > (1u << 16)) return;
  ds::BlockParams params;
  params.block_len = h.block_len;
  params.rolling = h.rolling;
  params.strong = h.strong;
  params.strong_len = h.strong_len;
  if (!params.check().empty()) fail("validated signature has invalid parameters");
  uint64_t basis_size = sig.block_count * h.block_len;
  size_t last_len = 0;
  if (h.family == Family::Deltasync) {
    basis_size = h.file_size;
    last_len = sig.block_count ? static_cast<size_t>(h.file_size - (sig.block_count - 1) * h.block_len) : 0;
  }
  ds::Matcher matcher(params, data + sig.entries_offset, static_cast<size_t>(sig.block_count), last_len);
  // New data: the signature's own bytes twice (so weak sums of its entries' neighbourhood
  // recur), in two chunks.
  std::vector<uint8_t> input(data, data + size);
  input.insert(input.end(), data, data + size);
  ds::MatchOutput out;
  uint64_t described = 0;
  uint64_t literal_total = 0;
  // Op triples as lib/native.ts documents them: 0 COPY (offset, length); 1 LITERAL (length,
  // bytes in `literals`); 2 LITERAL referenced in the chunk just passed (offset, length).
  auto account = [&](const ds::MatchOutput& o, size_t chunk_len) {
    if (o.ops.size() % 3 != 0) fail("matcher ops not triples");
    for (size_t i = 0; i < o.ops.size(); i += 3) {
      const double kind = o.ops[i], a = o.ops[i + 1], b = o.ops[i + 2];
      if (kind == 0) {
        if (!(b >= 1) || a < 0 || a + b > static_cast<double>(basis_size)) fail("matcher COPY outside the basis");
        described += static_cast<uint64_t>(b);
      } else if (kind == 1) {
        if (!(a >= 1)) fail("matcher empty literal");
        described += static_cast<uint64_t>(a);
        literal_total += static_cast<uint64_t>(a);
      } else if (kind == 2) {
        if (!(b >= 1) || a < 0 || a + b > static_cast<double>(chunk_len)) fail("matcher literal outside its chunk");
        described += static_cast<uint64_t>(b);
      } else {
        fail("matcher op kind");
      }
    }
  };
  const size_t half = std::min(input.size() / 2 + 1, input.size());
  matcher.update(input.data(), half, &out);
  account(out, half);
  size_t literal_bytes = out.literals.size();
  out.clear();
  if (half < input.size()) matcher.update(input.data() + half, input.size() - half, &out);
  account(out, input.size() - half);
  literal_bytes += out.literals.size();
  out.clear();
  matcher.finish(&out);
  account(out, 0);
  literal_bytes += out.literals.size();
  if (described != input.size()) fail("matcher ops do not describe the input");
  if (literal_bytes != literal_total) fail("matcher literal bytes disagree with the ops");
}
#endif

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ParsedSignature sig;
  const Status s = parse_signature(data, size, &sig);
  check_refusal(s);

  SignatureHeader ds_header, rd_header;
  const Status ds_status = parse_ds_signature_header(data, size, &ds_header);
  const Status rd_status = parse_rdiff_signature_header(data, size, &rd_header);
  check_refusal(ds_status);
  check_refusal(rd_status);
  if (rd_status.ok()) {
    // The block count rule at lengths around this one and at the limits.
    const uint64_t lengths[] = {size, size + 1, size + rd_header.entry_size, 11, 12, kMaxSignatureBytes,
                                kMaxSignatureBytes + 1, kMaxFileSize};
    for (uint64_t total : lengths) {
      uint64_t count = 0;
      const Status c = rdiff_block_count(rd_header, total, &count);
      check_refusal(c);
      if (c.ok() && (total < kRsSigHeaderLen || count * rd_header.entry_size != total - kRsSigHeaderLen ||
                     count * rd_header.block_len > kMaxFileSize)) {
        fail("rdiff block count");
      }
    }
  }

  if (!s.ok()) {
    // A header the parsers accept can only be refused for its length or checksum.
    if (ds_status.ok() && size == ds_header.total_len && s.kind != ErrorKind::Corrupt) fail("ds refusal kind");
    return 0;
  }
  const SignatureHeader& h = sig.header;
  if (h.block_len < 1 || h.block_len > kMaxSigBlockLen) fail("block length bound");
  if (h.strong_len < 1 || h.strong_len > ds::strong_full_len(h.strong)) fail("strong length bound");
  if (h.entry_size != ds::weak_width(h.rolling) + h.strong_len) fail("entry size");
  if (sig.entries_len != sig.block_count * h.entry_size) fail("entries do not fill the body");
  if (sig.entries_offset + sig.entries_len > size) fail("entries outside the input");
  if (sig.block_count * h.block_len > kMaxFileSize + h.block_len) fail("block count bound");
  if (h.family == Family::Deltasync) {
    if (!ds_status.ok() || size != h.total_len) fail("ds length");
    if (sig.entries_offset + sig.entries_len + kDsSigTrailerLen != size) fail("ds layout");
    if (h.block_count != (h.file_size + h.block_len - 1) / h.block_len) fail("ds block count");
    uint8_t digest[16];
    ds::xxh3_128(data, size - kDsSigTrailerLen, digest);
    if (std::memcmp(digest, data + size - kDsSigTrailerLen, 16) != 0) fail("ds checksum accepted but wrong");
  } else {
    if (!rd_status.ok() || sig.entries_offset + sig.entries_len != size) fail("rdiff layout");
  }
#ifdef FUZZ_MATCHER
  drive_matcher(sig, data, size);
#endif
  return 0;
}
