// libFuzzer harness: the sync protocol's decoders of untrusted bytes (native/protocol).
//
// Input: a control byte, then bytes that are read three ways:
//  1. as a received byte stream: split into frames in one piece, and again the way
//     lib/protocol/framing.ts's reader does (split each received chunk; gather a frame that
//     straddles chunks, then split it), with chunk sizes drawn from the control byte. Both must
//     find the same frames and stop at the same bad header; the frames must tile the bytes.
//     Every FLIST frame goes to the file-list decoder (the previous path threaded through), every
//     REQUEST/FILE_*/PROGRESS/LOG frame to the message decoder;
//  2. as one FLIST payload (starting from a previous path taken from the control byte);
//  3. as the payload of each small message type.
// Beyond the sanitizers: accepted file lists hold only safe paths and in-range values, and
// survive a re-encode (canonical varints, longest shared prefix) + decode unchanged, with the
// canonical form never longer; accepted messages likewise; refusals are one non-empty line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "protocol/file_list.h"
#include "protocol/frames.h"
#include "protocol/messages.h"

namespace {

using namespace ds::protocol;

// Largest value of a protocol uint.
constexpr uint64_t kMax53 = (uint64_t{1} << 53) - 1;

[[noreturn]] void fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz check failed: %s %s\n", what, detail.c_str());
  std::abort();
}

void check_message(const std::string& m) {
  if (m.empty() || m.find('\n') != std::string::npos) fail("bad refusal message", m);
}

// ---- frames -------------------------------------------------------------------------------

struct Frame {
  uint8_t type;
  std::vector<uint8_t> payload;
  bool operator==(const Frame& o) const { return type == o.type && payload == o.payload; }
};

struct StreamResult {
  std::vector<Frame> frames;
  bool failed = false;
  std::string error;
};

uint32_t be32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }

// One split, checked against the header bytes themselves.
void checked_split(const uint8_t* data, size_t size, uint32_t max, std::vector<FrameRef>* refs, SplitResult* r) {
  split_frames(data, size, max, refs, r);
  size_t pos = 0;
  for (const FrameRef& f : *refs) {
    if (f.offset != pos + kFrameHeaderBytes || f.type != data[pos] || f.length != be32(data + pos + 1)) {
      fail("frame does not match its header");
    }
    if (f.length > max) fail("frame above the limit");
    pos = f.offset + f.length;
    if (pos > size) fail("frame outside the buffer");
  }
  if (r->consumed != pos) fail("consumed is not the end of the frames");
  const size_t left = size - pos;
  if (r->failed) {
    check_message(r->error);
    if (left < kFrameHeaderBytes || be32(data + pos + 1) <= max) fail("refused a valid header");
  } else if (left >= kFrameHeaderBytes) {
    if (r->need != kFrameHeaderBytes + be32(data + pos + 1) || r->need <= left) fail("need after a whole header");
  } else if (r->need != kFrameHeaderBytes) {
    fail("need before a whole header");
  }
}

StreamResult split_whole(const uint8_t* data, size_t size, uint32_t max) {
  StreamResult out;
  std::vector<FrameRef> refs;
  SplitResult r;
  checked_split(data, size, max, &refs, &r);
  for (const FrameRef& f : refs) out.frames.push_back(Frame{f.type, {data + f.offset, data + f.offset + f.length}});
  out.failed = r.failed;
  out.error = r.error;
  return out;
}

// The TS reader's algorithm over a queue of chunks (see FrameReader.next).
StreamResult split_chunked(const uint8_t* data, size_t size, uint32_t max, uint32_t seed) {
  std::vector<std::vector<uint8_t>> queue;
  for (size_t pos = 0; pos < size;) {
    seed = seed * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(size - pos, 1 + (seed >> 16) % 97);
    queue.emplace_back(data + pos, data + pos + n);
    pos += n;
  }
  size_t queued = size;
  StreamResult out;
  std::vector<FrameRef> refs;
  SplitResult r;
  while (!queue.empty()) {
    std::vector<uint8_t>& head = queue.front();
    checked_split(head.data(), head.size(), max, &refs, &r);
    if (!refs.empty() || r.failed) {
      for (const FrameRef& f : refs) {
        out.frames.push_back(Frame{f.type, {head.data() + f.offset, head.data() + f.offset + f.length}});
      }
      if (r.failed) {
        out.failed = true;
        out.error = r.error;
        return out;
      }
      queued -= r.consumed;
      head.erase(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(r.consumed));
      if (head.empty()) queue.erase(queue.begin());
      continue;
    }
    if (queued < r.need) break;  // end of stream inside a frame
    // Gather exactly `need` bytes from the front chunks into one.
    std::vector<uint8_t> joined;
    while (joined.size() < r.need) {
      std::vector<uint8_t>& c = queue.front();
      const size_t use = std::min(c.size(), r.need - joined.size());
      joined.insert(joined.end(), c.begin(), c.begin() + static_cast<std::ptrdiff_t>(use));
      if (use == c.size()) queue.erase(queue.begin());
      else c.erase(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(use));
    }
    queue.insert(queue.begin(), std::move(joined));
  }
  return out;
}

// ---- encoding (the harness's own, canonical) ------------------------------------------------

void put_uint(std::vector<uint8_t>* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<uint8_t>(v));
}

void put_bytes(std::vector<uint8_t>* out, const uint8_t* p, size_t n) {
  put_uint(out, n);
  out->insert(out->end(), p, p + n);
}

// ---- file lists -----------------------------------------------------------------------------

// Written independently of file_list.cc: split on '/', compare components as strings.
bool safe_path(const std::string& path) {
  if (path == ".") return true;
  if (path.empty() || path[0] == '/' || path.find('\0') != std::string::npos) return false;
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

struct DecodedEntry {
  FileListEntry fields;
  std::string path, link, checksum;
};

bool decode_list(const uint8_t* payload, size_t size, const std::string& prev, std::vector<DecodedEntry>* out,
                 std::string* error) {
  std::vector<FileListEntry> entries;
  std::vector<uint8_t> paths;
  FileListError e;
  out->clear();
  if (!decode_file_list(payload, size, reinterpret_cast<const uint8_t*>(prev.data()), prev.size(), &entries, &paths,
                        &e)) {
    check_message(e.message);
    if ((e.message.find("{path}") != std::string::npos) != e.has_path) fail("{path} and has_path disagree", e.message);
    if (!e.has_path && !e.path.empty()) fail("a path without has_path", e.message);
    *error = e.message;
    return false;
  }
  size_t table = 0;
  for (const FileListEntry& f : entries) {
    if (f.path_offset != table || f.path_offset + f.path_length > paths.size()) fail("path outside the table");
    table += f.path_length;
    if (f.link_offset + f.link_length > size || f.checksum_offset + f.checksum_length > size) {
      fail("field outside the payload");
    }
    DecodedEntry d;
    d.fields = f;
    d.path.assign(reinterpret_cast<const char*>(paths.data() + f.path_offset), f.path_length);
    if (f.flags & kFlagLink) d.link.assign(reinterpret_cast<const char*>(payload + f.link_offset), f.link_length);
    if (f.flags & kFlagChecksum) {
      d.checksum.assign(reinterpret_cast<const char*>(payload + f.checksum_offset), f.checksum_length);
    }
    if (!safe_path(d.path)) fail("unsafe path accepted", d.path);
    if (d.path.size() > kMaxPathBytes || d.link.size() > kMaxPathBytes || d.checksum.size() > kMaxChecksumBytes) {
      fail("length bound");
    }
    if (f.type < 1 || f.type > 5 || f.mode > 0xffffffffu || f.mtime_nsec >= 1000000000u) fail("value bound");
    if (f.size > kMax53 || f.uid > kMax53 || f.gid > kMax53 || f.rdev > kMax53) fail("uint bound");
    if (f.mtime_sec > static_cast<int64_t>(kMax53 / 2 + 1) || f.mtime_sec < -static_cast<int64_t>(kMax53 / 2 + 1)) {
      fail("sint bound");
    }
    if (f.type == 3 && !(f.flags & kFlagLink)) fail("symlink without a target");
    out->push_back(std::move(d));
  }
  if (table != paths.size() || table > kMaxBatchPathBytes) fail("path table size");
  return true;
}

std::vector<uint8_t> encode_list(const std::vector<DecodedEntry>& entries, std::string prev) {
  std::vector<uint8_t> out;
  put_uint(&out, entries.size());
  for (const DecodedEntry& d : entries) {
    const FileListEntry& f = d.fields;
    size_t shared = 0;
    while (shared < prev.size() && shared < d.path.size() && prev[shared] == d.path[shared]) ++shared;
    const uint8_t flags = f.flags & (kFlagLink | kFlagRdev | kFlagChecksum | kFlagListed);
    out.push_back(f.type);
    out.push_back(flags);
    put_uint(&out, shared);
    put_bytes(&out, reinterpret_cast<const uint8_t*>(d.path.data()) + shared, d.path.size() - shared);
    put_uint(&out, f.mode);
    put_uint(&out, f.size);
    put_uint(&out, f.mtime_sec >= 0 ? static_cast<uint64_t>(f.mtime_sec) * 2 : static_cast<uint64_t>(-f.mtime_sec) * 2 - 1);
    put_uint(&out, f.mtime_nsec);
    put_uint(&out, f.uid);
    put_uint(&out, f.gid);
    if (flags & kFlagLink) put_bytes(&out, reinterpret_cast<const uint8_t*>(d.link.data()), d.link.size());
    if (flags & kFlagRdev) put_uint(&out, f.rdev);
    if (flags & kFlagChecksum) put_bytes(&out, reinterpret_cast<const uint8_t*>(d.checksum.data()), d.checksum.size());
    prev = d.path;
  }
  return out;
}

bool same_entry(const DecodedEntry& a, const DecodedEntry& b) {
  const FileListEntry &x = a.fields, &y = b.fields;
  const uint8_t known = kFlagLink | kFlagRdev | kFlagChecksum | kFlagListed;
  return a.path == b.path && a.link == b.link && a.checksum == b.checksum && x.type == y.type &&
         (x.flags & known) == (y.flags & known) && x.mode == y.mode && x.size == y.size && x.mtime_sec == y.mtime_sec &&
         x.mtime_nsec == y.mtime_nsec && x.uid == y.uid && x.gid == y.gid &&
         ((x.flags & kFlagRdev) == 0 || x.rdev == y.rdev);
}

// Decodes one FLIST payload and checks it; returns the new previous path.
std::string flist_round(const uint8_t* payload, size_t size, const std::string& prev) {
  std::vector<DecodedEntry> entries;
  std::string error;
  if (!decode_list(payload, size, prev, &entries, &error)) return prev;
  const std::vector<uint8_t> again = encode_list(entries, prev);
  if (again.size() > size) fail("canonical file list longer than the input");
  std::vector<DecodedEntry> twice;
  if (!decode_list(again.data(), again.size(), prev, &twice, &error)) fail("re-encoded file list refused", error);
  if (twice.size() != entries.size()) fail("re-encoded file list count");
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!same_entry(entries[i], twice[i])) fail("re-encoded file list differs", entries[i].path);
  }
  return entries.empty() ? prev : entries.back().path;
}

// ---- small messages -------------------------------------------------------------------------

const uint8_t kMessageTypes[] = {kMsgRequest, kMsgFileBegin, kMsgFileEnd, kMsgFileError, kMsgProgress, kMsgLog};

std::vector<uint8_t> encode_message(uint8_t type, const MessageFields& f, const uint8_t* payload) {
  std::vector<uint8_t> out;
  auto range = [&](size_t i) { put_bytes(&out, payload + f.value[i], static_cast<size_t>(f.value[i + 1])); };
  switch (type) {
    case kMsgRequest:
      put_uint(&out, f.value[0]);
      out.push_back(static_cast<uint8_t>(f.value[1]));
      put_uint(&out, f.value[2]);
      break;
    case kMsgFileBegin:
      put_uint(&out, f.value[0]);
      out.push_back(static_cast<uint8_t>(f.value[1]));
      break;
    case kMsgFileEnd:
      for (int i = 0; i < 4; ++i) put_uint(&out, f.value[i]);
      range(4);
      break;
    case kMsgFileError:
      put_uint(&out, f.value[0]);
      out.push_back(static_cast<uint8_t>(f.value[1]));
      range(2);
      break;
    case kMsgProgress:
      put_uint(&out, f.value[0]);
      put_uint(&out, f.value[1]);
      out.push_back(static_cast<uint8_t>(f.value[2]));
      break;
    case kMsgLog:
      out.push_back(static_cast<uint8_t>(f.value[0]));
      range(1);
      if (f.count > 3) range(3);
      break;
  }
  return out;
}

size_t expected_fields(uint8_t type, size_t count) {
  switch (type) {
    case kMsgRequest: return 3;
    case kMsgFileBegin: return 2;
    case kMsgFileEnd: return 6;
    case kMsgFileError: return 4;
    case kMsgProgress: return 3;
    default: return count == 5 ? 5 : 3;  // LOG: with or without a path
  }
}

void message_round(uint8_t type, const uint8_t* payload, size_t size) {
  MessageFields f;
  std::string error;
  if (!decode_message(type, payload, size, &f, &error)) {
    check_message(error);
    return;
  }
  if (f.count != expected_fields(type, f.count)) fail("message field count");
  for (size_t i = 0; i < f.count; ++i) {
    if (f.value[i] > kMax53) fail("message value above 2^53");
  }
  if ((type == kMsgRequest || type == kMsgFileBegin) && f.value[1] > 3) fail("mode above 3");
  if (type == kMsgLog && f.value[0] > 3) fail("level above 3");
  // Ranges: FILE_END 4, FILE_ERROR 2, LOG 1 and 3.
  const size_t first_range = type == kMsgFileEnd ? 4 : type == kMsgFileError ? 2 : type == kMsgLog ? 1 : f.count;
  for (size_t i = first_range; i + 1 < f.count; i += 2) {
    if (f.value[i] + f.value[i + 1] > size) fail("message range outside the payload");
  }
  const std::vector<uint8_t> again = encode_message(type, f, payload);
  if (again.size() > size) fail("canonical message longer than the input");
  MessageFields g;
  if (!decode_message(type, again.data(), again.size(), &g, &error)) fail("re-encoded message refused", error);
  if (g.count != f.count) fail("re-encoded message field count");
  for (size_t i = 0; i < f.count; ++i) {
    const bool is_offset = i >= first_range && (i - first_range) % 2 == 0;
    if (!is_offset && g.value[i] != f.value[i]) fail("re-encoded message differs");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t input_size) {
  if (input_size == 0) return 0;
  const uint8_t control = input[0];
  const uint8_t* data = input + 1;
  const size_t size = input_size - 1;

  // 1. A byte stream. A small limit now and then reaches the oversized-frame path cheaply.
  const uint32_t max = (control & 0x80) ? (control & 0x7f) * 64u : kMaxFramePayload;
  const StreamResult whole = split_whole(data, size, max);
  const StreamResult chunked = split_chunked(data, size, max, control);
  if (whole.failed != chunked.failed || whole.error != chunked.error) fail("chunked split stops elsewhere");
  if (!(whole.frames == chunked.frames)) fail("chunked split finds other frames");
  std::string prev;
  for (const Frame& f : whole.frames) {
    if (f.type == 0x10) prev = flist_round(f.payload.data(), f.payload.size(), prev);
    for (uint8_t t : kMessageTypes) {
      if (f.type == t) message_round(t, f.payload.data(), f.payload.size());
    }
  }

  // 2. One FLIST payload after a previous path of (control & 15) bytes of "dir/".
  std::string start;
  for (int i = 0; i < (control & 15); ++i) start.push_back("dir/"[i % 4]);
  flist_round(data, size, start);

  // 3. Each small message.
  for (uint8_t t : kMessageTypes) message_round(t, data, size);
  return 0;
}
