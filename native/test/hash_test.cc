// Standalone checks for the native strong hashes (no Node needed).
//
//   hash_test hash KIND [--simd LEVEL]  hash stdin, print hex (KIND: xxh3, md4, blake2b,
//                                        blake2b-N for an N-byte digest, N in 1..64)
//   hash_test rfc                        MD4 against the RFC 1320 test suite
//   hash_test tools                      lengths 0..300 and several multi-MiB inputs against
//                                        `xxhsum -H2` and `b2sum -l 256` / `-l 512`, one-shot and
//                                        streamed with random splits
//   hash_test simd                       every XXH3 kernel this CPU supports against the scalar
//                                        one: lengths 0..2000, random multi-MiB buffers, odd splits
//   hash_test all                        rfc + tools + simd
//   hash_test bench [MiB]                throughput on an in-memory buffer (default 64 MiB)
//
// Exit status 0 when every check passed, 1 otherwise; failures are printed with their inputs.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cpu.h"
#include "hash/blake2b.h"
#include "hash/md4.h"
#include "hash/strong.h"
#include "hash/xxh3.h"
#include "hash/xxh3_internal.h"

namespace {

using ds::SimdLevel;
using Bytes = std::vector<uint8_t>;

int g_failures = 0;
int g_checks = 0;

void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    if (g_failures <= 50) std::fprintf(stderr, "FAIL %s\n", what.c_str());
  }
}

// splitmix64: deterministic, seedable test data.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
};

Bytes random_bytes(size_t len, uint64_t seed) {
  Bytes out(len);
  Rng rng(seed);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = rng.next();
    std::memcpy(out.data() + i, &v, 8);
  }
  for (; i < len; ++i) out[i] = static_cast<uint8_t>(rng.next());
  return out;
}

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

// ---- Hash kinds as the tests see them ----

struct Kind {
  std::string name;  // xxh3, md4, blake2b-32, blake2b-64, ...
  size_t out_len;
};

Bytes one_shot(const Kind& k, const uint8_t* data, size_t len) {
  Bytes out(k.out_len);
  if (k.name == "xxh3") {
    ds::xxh3_128(data, len, out.data());
  } else if (k.name == "md4") {
    ds::md4(data, len, out.data());
  } else {
    ds::blake2b(data, len, out.data(), k.out_len);
  }
  return out;
}

// Streams `data` in pieces whose sizes come from `rng` (biased towards the awkward sizes around
// stripe, block and buffer boundaries).
Bytes streamed(const Kind& k, const uint8_t* data, size_t len, Rng& rng) {
  static const size_t kAwkward[] = {0, 1, 2, 3, 15, 16, 17, 63, 64, 65, 127, 128, 129,
                                    239, 240, 241, 255, 256, 257, 1023, 1024, 1025};
  auto next_piece = [&](size_t left) {
    size_t n;
    switch (rng.below(4)) {
      case 0: n = kAwkward[rng.below(sizeof kAwkward / sizeof kAwkward[0])]; break;
      case 1: n = rng.below(300); break;
      case 2: n = rng.below(5000); break;
      default: n = rng.below(200000); break;
    }
    return n < left ? n : left;
  };
  Bytes out(k.out_len);
  size_t pos = 0;
  if (k.name == "xxh3") {
    ds::Xxh3State s;
    ds::xxh3_128_init(&s);
    while (pos < len) {
      size_t n = next_piece(len - pos);
      ds::xxh3_128_update(&s, data + pos, n);
      pos += n;
    }
    ds::xxh3_128_digest(&s, out.data());
    // digest() works on a const state: a second call must give the same answer.
    Bytes again(16);
    ds::xxh3_128_digest(&s, again.data());
    check(again == out, "xxh3 digest twice differs, len " + std::to_string(len));
  } else if (k.name == "md4") {
    ds::Md4State s;
    ds::md4_init(&s);
    while (pos < len) {
      size_t n = next_piece(len - pos);
      ds::md4_update(&s, data + pos, n);
      pos += n;
    }
    ds::md4_final(&s, out.data());
  } else {
    ds::Blake2bState s;
    ds::blake2b_init(&s, k.out_len);
    while (pos < len) {
      size_t n = next_piece(len - pos);
      ds::blake2b_update(&s, data + pos, n);
      pos += n;
    }
    ds::blake2b_final(&s, out.data());
  }
  return out;
}

bool parse_kind(const std::string& name, Kind* out) {
  if (name == "xxh3") *out = {"xxh3", 16};
  else if (name == "md4") *out = {"md4", 16};
  else if (name == "blake2b") *out = {"blake2b-32", 32};
  else if (name.rfind("blake2b-", 0) == 0) {
    int n = std::atoi(name.c_str() + 8);
    if (n < 1 || n > 64) return false;
    *out = {"blake2b-" + std::to_string(n), static_cast<size_t>(n)};
  } else {
    return false;
  }
  return true;
}

// ---- rfc: MD4 against RFC 1320 appendix A.5 ----

void test_rfc() {
  static const char* const kSuite[][2] = {
      {"", "31d6cfe0d16ae931b73c59d7e0c089c0"},
      {"a", "bde52cb31de33e46245e05fbdbd6fb24"},
      {"abc", "a448017aaf21d8525fc10ae87aa6729d"},
      {"message digest", "d9130a8164549fe818874806e1c7014b"},
      {"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"},
      {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
       "043f8582f241db351ce627e153e7f0e4"},
      {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
       "e33b4ddc9c38f2199c3e7b164fcc0536"},
  };
  Kind md4{"md4", 16};
  Rng rng(1320);
  for (auto& v : kSuite) {
    const auto* p = reinterpret_cast<const uint8_t*>(v[0]);
    size_t n = std::strlen(v[0]);
    Bytes got = one_shot(md4, p, n);
    check(hex(got.data(), 16) == v[1], std::string("MD4(\"") + v[0] + "\") = " + hex(got.data(), 16));
    for (int i = 0; i < 8; ++i) {
      Bytes s = streamed(md4, p, n, rng);
      check(hex(s.data(), 16) == v[1], std::string("MD4 streamed (\"") + v[0] + "\")");
    }
    // Byte at a time: every buffer state.
    ds::Md4State st;
    ds::md4_init(&st);
    for (size_t i = 0; i < n; ++i) ds::md4_update(&st, p + i, 1);
    uint8_t out[16];
    ds::md4_final(&st, out);
    check(hex(out, 16) == v[1], std::string("MD4 bytewise (\"") + v[0] + "\")");
  }
  std::printf("rfc: MD4 compared with the RFC 1320 suite (one-shot, streamed, bytewise)\n");
}

// ---- tools: against xxhsum / b2sum ----

struct TempDir {
  std::string path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/hash_test.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) {
      std::perror("mkdtemp");
      std::exit(2);
    }
    path = buf.data();
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "warning: could not remove %s\n", path.c_str());
  }
};

void write_file(const std::string& path, const Bytes& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (data.size() && std::fwrite(data.data(), 1, data.size(), f) != data.size()) ||
      std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(2);
  }
}

// Runs `tool` on many files in one process and maps file path -> printed hex digest.
std::map<std::string, std::string> run_tool(const std::string& tool,
                                            const std::vector<std::string>& files) {
  std::map<std::string, std::string> result;
  std::string cmd = tool;
  for (auto& f : files) cmd += " '" + f + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    check(false, "cannot run " + tool);
    return result;
  }
  char line[4096];
  while (std::fgets(line, sizeof line, p)) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    // "<hex>  <path>" (xxhsum, b2sum) or "<hex> *<path>" (openssl dgst -r).
    size_t sep = s.find(' ');
    if (sep == std::string::npos || sep + 2 > s.size()) continue;
    result[s.substr(sep + 2)] = s.substr(0, sep);
  }
  int status = pclose(p);
  check(status == 0, "`" + tool + "` exited with status " + std::to_string(status) +
                          " (is it installed?)");
  return result;
}

void test_tools() {
  TempDir dir;
  struct Input {
    std::string path;
    Bytes data;
  };
  std::vector<Input> inputs;
  for (size_t len = 0; len <= 300; ++len) {
    inputs.push_back({dir.path + "/len" + std::to_string(len), random_bytes(len, 1000 + len)});
  }
  // Multi-MiB: odd sizes, an exact multiple of the XXH3 block, and a size just past one.
  const size_t kBig[] = {(1u << 20) + 17, (3u << 20) + 1000, 4u << 20, (5u << 20) - 1,
                         (7u << 20) + 1025};
  for (size_t n : kBig) inputs.push_back({dir.path + "/big" + std::to_string(n), random_bytes(n, n)});
  // Runs of a single byte value catch lane mix-ups that random data can average out.
  inputs.push_back({dir.path + "/zeros", Bytes((2u << 20) + 333, 0)});
  inputs.push_back({dir.path + "/ones", Bytes(4099, 0xff)});

  std::vector<std::string> files;
  for (auto& in : inputs) {
    write_file(in.path, in.data);
    files.push_back(in.path);
  }

  struct ToolKind {
    const char* tool;
    Kind kind;
  };
  const ToolKind kTools[] = {
      {"xxhsum -H2", {"xxh3", 16}},
      {"b2sum -l 256", {"blake2b-32", 32}},
      {"b2sum -l 512", {"blake2b-64", 64}},
      {"b2sum -l 8", {"blake2b-1", 1}},
      {"b2sum -l 160", {"blake2b-20", 20}},
  };
  Rng rng(42);
  for (auto& t : kTools) {
    auto expected = run_tool(t.tool, files);
    int compared = 0;
    for (auto& in : inputs) {
      auto it = expected.find(in.path);
      if (it == expected.end()) {
        check(false, std::string(t.tool) + " printed nothing for " + in.path);
        continue;
      }
      Bytes got = one_shot(t.kind, in.data.data(), in.data.size());
      check(hex(got.data(), got.size()) == it->second,
            t.kind.name + " one-shot len " + std::to_string(in.data.size()) + ": got " +
                hex(got.data(), got.size()) + ", " + t.tool + " says " + it->second);
      // Several random splittings per input (fewer for the big ones: they are slow to re-hash).
      int splits = in.data.size() > 100000 ? 2 : 4;
      for (int i = 0; i < splits; ++i) {
        Bytes s = streamed(t.kind, in.data.data(), in.data.size(), rng);
        check(hex(s.data(), s.size()) == it->second,
              t.kind.name + " streamed len " + std::to_string(in.data.size()));
      }
      // strong_sum / StrongHasher as the rest of the addon uses them.
      if (t.kind.name == "xxh3" || t.kind.name == "blake2b-32") {
        ds::StrongKind sk = t.kind.name == "xxh3" ? ds::StrongKind::Xxh3 : ds::StrongKind::Blake2b;
        uint8_t out[ds::kMaxStrongLen];
        ds::strong_sum(sk, in.data.data(), in.data.size(), out);
        check(ds::strong_full_len(sk) == t.kind.out_len && hex(out, t.kind.out_len) == it->second,
              "strong_sum " + t.kind.name + " len " + std::to_string(in.data.size()));
        ds::StrongHasher h(sk);
        size_t half = in.data.size() / 3;
        h.update(in.data.data(), half);
        h.update(in.data.data() + half, in.data.size() - half);
        h.digest(out);
        check(hex(out, t.kind.out_len) == it->second,
              "StrongHasher " + t.kind.name + " len " + std::to_string(in.data.size()));
      }
      ++compared;
    }
    std::printf("tools: %d inputs compared with `%s`\n", compared, t.tool);
  }
  // MD4: OpenSSL 3 keeps it in the legacy provider, which a system may not ship; the RFC suite
  // pins the values either way, and one-shot, streamed and strong_sum must always agree.
  const char* kOpensslMd4 = "openssl dgst -md4 -provider legacy -provider default -r";
  bool have_openssl_md4 =
      std::system("openssl dgst -md4 -provider legacy -provider default </dev/null >/dev/null 2>&1") == 0;
  std::map<std::string, std::string> md4_expected;
  if (have_openssl_md4) md4_expected = run_tool(kOpensslMd4, files);
  Kind md4{"md4", 16};
  for (auto& in : inputs) {
    Bytes a = one_shot(md4, in.data.data(), in.data.size());
    Bytes b = streamed(md4, in.data.data(), in.data.size(), rng);
    uint8_t c[16];
    ds::strong_sum(ds::StrongKind::Md4, in.data.data(), in.data.size(), c);
    check(a == b && std::memcmp(a.data(), c, 16) == 0,
          "md4 one-shot/streamed/strong_sum disagree, len " + std::to_string(in.data.size()));
    if (have_openssl_md4) {
      check(md4_expected[in.path] == hex(a.data(), 16),
            "md4 len " + std::to_string(in.data.size()) + ": got " + hex(a.data(), 16) +
                ", openssl says " + md4_expected[in.path]);
    }
  }
  if (have_openssl_md4) {
    std::printf("tools: %zu inputs compared with `%s`\n", inputs.size(), kOpensslMd4);
  } else {
    std::printf("tools: openssl's legacy MD4 unavailable; MD4 pinned by the RFC 1320 suite only\n");
  }
}

// ---- simd: every kernel against the scalar one ----

std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> out;
  const SimdLevel all[] = {SimdLevel::Scalar, SimdLevel::SSE41, SimdLevel::AVX2, SimdLevel::AVX512,
                           SimdLevel::NEON};
  for (SimdLevel l : all) {
    if (ds::simd_supported(l)) out.push_back(l);
  }
  return out;
}

void xxh3_stream_at(SimdLevel level, const uint8_t* data, size_t len, Rng& rng, uint8_t out[16]) {
  ds::Xxh3State s;
  ds::xxh3_128_init(&s);
  size_t pos = 0;
  while (pos < len) {
    size_t n;
    switch (rng.below(3)) {
      case 0: n = rng.below(70); break;        // sub-stripe pieces
      case 1: n = 1 + 64 * rng.below(40); break;  // just past stripe multiples
      default: n = rng.below(300000); break;
    }
    if (n > len - pos) n = len - pos;
    ds::xxh3_128_update_at(level, &s, data + pos, n);
    pos += n;
  }
  ds::xxh3_128_digest(&s, out);
}

void test_simd() {
  const SimdLevel level_before = ds::simd_level();
  auto levels = supported_levels();
  std::string names;
  for (auto l : levels) names += std::string(" ") + ds::simd_name(l);
  std::printf("simd: variants on this CPU:%s\n", names.c_str());
  if (levels.size() < 2) std::printf("simd: only the scalar kernel is available here\n");

  // Every length 0..2000 at every misalignment class of the input pointer.
  Bytes base = random_bytes(2000 + 64, 7);
  for (size_t len = 0; len <= 2000; ++len) {
    const uint8_t* p = base.data() + (len % 64);
    uint8_t ref[16];
    ds::xxh3_128_at(SimdLevel::Scalar, p, len, ref);
    for (auto l : levels) {
      uint8_t got[16];
      ds::xxh3_128_at(l, p, len, got);
      check(std::memcmp(ref, got, 16) == 0,
            std::string("xxh3 ") + ds::simd_name(l) + " != scalar, len " + std::to_string(len));
    }
  }
  // Streaming with fixed piece sizes walks every buffer state (sub-stripe, exact stripe, exact
  // buffer, just past it) against the scalar one-shot.
  const size_t kPieces[] = {1, 3, 63, 64, 65, 255, 256, 257, 1000};
  for (size_t len = 0; len <= 2000; len += (len < 300 ? 1 : 7)) {
    const uint8_t* p = base.data();
    uint8_t ref[16];
    ds::xxh3_128_at(SimdLevel::Scalar, p, len, ref);
    for (auto l : levels) {
      for (size_t piece : kPieces) {
        ds::Xxh3State s;
        ds::xxh3_128_init(&s);
        for (size_t pos = 0; pos < len; pos += piece) {
          ds::xxh3_128_update_at(l, &s, p + pos, piece < len - pos ? piece : len - pos);
        }
        uint8_t got[16];
        ds::xxh3_128_digest(&s, got);
        check(std::memcmp(ref, got, 16) == 0, std::string("xxh3 ") + ds::simd_name(l) +
                                                  " streamed in pieces of " + std::to_string(piece) +
                                                  " != scalar one-shot, len " + std::to_string(len));
      }
    }
  }
  // Random multi-MiB buffers, one-shot and streamed with odd splits, per variant.
  Rng rng(2024);
  for (int round = 0; round < 4; ++round) {
    size_t len = (1u << 20) + rng.below(5u << 20);
    Bytes buf = random_bytes(len + 1, rng.next());
    const uint8_t* p = buf.data() + (round & 1);  // odd address every other round
    uint8_t ref[16];
    ds::xxh3_128_at(SimdLevel::Scalar, p, len, ref);
    for (auto l : levels) {
      uint8_t got[16];
      ds::xxh3_128_at(l, p, len, got);
      check(std::memcmp(ref, got, 16) == 0,
            std::string("xxh3 ") + ds::simd_name(l) + " one-shot != scalar, len " + std::to_string(len));
      xxh3_stream_at(l, p, len, rng, got);
      check(std::memcmp(ref, got, 16) == 0,
            std::string("xxh3 ") + ds::simd_name(l) + " streamed != scalar, len " + std::to_string(len));
      // The public entry points through the process-wide dispatch (cpu.h).
      if (ds::set_simd_level(l)) {
        ds::xxh3_128(p, len, got);
        check(std::memcmp(ref, got, 16) == 0,
              std::string("xxh3_128 dispatched to ") + ds::simd_name(l) + " != scalar");
      }
    }
  }
  ds::set_simd_level(level_before);
  std::printf("simd: %zu variant(s) compared with scalar on lengths 0..2000 and 4 multi-MiB buffers\n",
              levels.size());
}

// ---- bench ----

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <typename Fn>
double best_rate(size_t bytes, int reps, Fn fn) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    double s = seconds_since(t0);
    if (s < best) best = s;
  }
  return static_cast<double>(bytes) / best / 1e6;  // MB/s
}

volatile uint8_t g_sink;

void bench(size_t len) {
  Bytes buf = random_bytes(len, 99);
  // Small buffers are hashed many times per timed run so the clock resolution does not matter.
  const int inner = len >= (16u << 20) ? 1 : static_cast<int>((64u << 20) / len);
  std::printf("bench: %zu KiB in-memory buffer, best of several runs, MB/s = 10^6 bytes/s\n",
              len >> 10);
  std::printf("| hash | variant | MB/s |\n|---|---|---|\n");
  for (auto l : supported_levels()) {
    uint8_t out[16];
    double r = best_rate(len * inner, 7, [&] {
      for (int i = 0; i < inner; ++i) ds::xxh3_128_at(l, buf.data(), len, out);
    });
    g_sink = out[0];
    std::printf("| XXH3-128 | %s | %.0f |\n", ds::simd_name(l), r);
  }
  {
    uint8_t out[16];
    double r = best_rate(len * inner, 3, [&] {
      for (int i = 0; i < inner; ++i) ds::md4(buf.data(), len, out);
    });
    g_sink = out[0];
    std::printf("| MD4 | scalar | %.0f |\n", r);
  }
  {
    uint8_t out[32];
    double r = best_rate(len * inner, 3, [&] {
      for (int i = 0; i < inner; ++i) ds::blake2b(buf.data(), len, out, 32);
    });
    g_sink = out[0];
    std::printf("| BLAKE2b-256 | scalar | %.0f |\n", r);
  }
  // Per-block use as the signature builder and matcher call it (dispatched level).
  const size_t kBlocks[] = {256, 2048, 16384, 131072};
  for (size_t b : kBlocks) {
    if (b > len) break;
    for (auto kind : {ds::StrongKind::Xxh3, ds::StrongKind::Md4, ds::StrongKind::Blake2b}) {
      uint8_t out[ds::kMaxStrongLen];
      size_t blocks = len / b;
      double r = best_rate(blocks * b, 7, [&] {
        for (size_t i = 0; i < blocks; ++i) ds::strong_sum(kind, buf.data() + i * b, b, out);
      });
      g_sink = out[0];
      const char* name = kind == ds::StrongKind::Xxh3 ? "XXH3-128" : kind == ds::StrongKind::Md4 ? "MD4" : "BLAKE2b-256";
      std::printf("| strong_sum %s per %zu B block | %s | %.0f |\n", name, b,
                  kind == ds::StrongKind::Xxh3 ? ds::simd_name(ds::simd_level()) : "scalar", r);
    }
  }
}

// ---- hash: stdin to hex ----

int hash_stdin(const Kind& k, SimdLevel level) {
  Bytes data;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, stdin)) > 0) data.insert(data.end(), chunk, chunk + n);
  if (std::ferror(stdin)) {
    std::perror("stdin");
    return 2;
  }
  Bytes out;
  if (k.name == "xxh3") {
    out.resize(16);
    ds::xxh3_128_at(level, data.data(), data.size(), out.data());
  } else {
    out = one_shot(k, data.data(), data.size());
  }
  std::printf("%s\n", hex(out.data(), out.size()).c_str());
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: hash_test hash KIND [--simd LEVEL] | rfc | tools | simd | all | bench [MiB]\n");
  return 2;
}

void run_section(const char* name, void (*fn)()) {
  int failures_before = g_failures, checks_before = g_checks;
  fn();
  std::printf("%s: %d checks, %d failed\n", name, g_checks - checks_before,
              g_failures - failures_before);
}

int finish(const char* what) {
  if (g_failures) {
    std::printf("%s: %d of %d checks FAILED\n", what, g_failures, g_checks);
    return 1;
  }
  std::printf("%s: all %d checks passed\n", what, g_checks);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string mode = argv[1];
  if (mode == "hash") {
    if (argc < 3) return usage();
    Kind k;
    if (!parse_kind(argv[2], &k)) return usage();
    SimdLevel level = ds::simd_level();
    if (argc >= 5 && std::string(argv[3]) == "--simd") {
      if (!ds::simd_parse(argv[4], &level) || !ds::simd_supported(level)) {
        std::fprintf(stderr, "hash_test: SIMD level %s unknown or not supported here\n", argv[4]);
        return 3;
      }
    }
    return hash_stdin(k, level);
  }
  if (mode == "rfc") {
    run_section("rfc", test_rfc);
  } else if (mode == "tools") {
    run_section("tools", test_tools);
  } else if (mode == "simd") {
    run_section("simd", test_simd);
  } else if (mode == "all") {
    run_section("rfc", test_rfc);
    run_section("tools", test_tools);
    run_section("simd", test_simd);
  } else if (mode == "bench") {
    // Size in MiB, or in KiB with a trailing 'k' (in-cache measurements).
    size_t bytes = 64u << 20;
    if (argc >= 3) {
      std::string arg = argv[2];
      bytes = static_cast<size_t>(std::atol(arg.c_str())) << (arg.back() == 'k' ? 10 : 20);
    }
    if (bytes == 0) return usage();
    bench(bytes);
    return 0;
  } else {
    return usage();
  }
  return finish(mode.c_str());
}
