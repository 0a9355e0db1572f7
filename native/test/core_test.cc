// Standalone checks and micro benchmarks of the native core: rolling sums, the batched search,
// the matcher (no Node needed; also cross-compiled for aarch64 and run under qemu).
//
//   core_test all [--quick]   every check below; exit 0 when all passed (--quick: fewer rounds)
//   core_test sums            weak-sum primitives of every SIMD level against the byte-at-a-time
//                             rolling structs (lengths 0..2100, large random lengths, 0x00/0xff runs)
//   core_test search          batched search of every level against the scalar one and against a
//                             direct per-window reference: candidates, end state, overflow
//   core_test match           matcher round trips on random edits for every rolling kind, with
//                             random chunk splits, known/unknown last block; ops and stats
//                             identical for the byte-at-a-time loop, batches with the scalar
//                             kernel and every SIMD level, and equal to an independent reference
//   core_test flood           a signature whose blocks all share one weak sum: the candidate cap
//                             holds, results still agree
//   core_test bench [MiB [sums|search|delta]]
//                             GB/s per operation and SIMD level (default 64 MiB, all parts)
//
// Failures print their inputs (seed, sizes) so they can be replayed.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cpu.h"
#include "matcher.h"
#include "rolling.h"
#include "search.h"
#include "signature_builder.h"
#include "weak.h"

namespace {

using ds::RollingKind;
using ds::SimdLevel;
using Bytes = std::vector<uint8_t>;

int g_failures = 0;
long g_checks = 0;
bool g_quick = false;

bool check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    if (g_failures <= 40) std::fprintf(stderr, "FAIL %s\n", what.c_str());
  }
  return ok;
}

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
  size_t between(size_t lo, size_t hi) { return lo + below(hi - lo + 1); }
};

// Test data of several textures: uniform random, a small alphabet (text-like, weak sums collide
// more), long runs (windows repeat exactly), and all-0xff (largest partial sums).
enum class Texture { Random, Alphabet, Runs, Ones };
Bytes make_data(size_t len, Rng& rng, Texture tex) {
  Bytes out(len);
  switch (tex) {
    case Texture::Random:
      for (auto& b : out) b = static_cast<uint8_t>(rng.next());
      break;
    case Texture::Alphabet:
      for (auto& b : out) b = static_cast<uint8_t>("etaoin shrdlu\n"[rng.below(14)]);
      break;
    case Texture::Runs:
      for (size_t i = 0; i < len;) {
        const size_t run = 1 + rng.below(3000);
        const uint8_t v = static_cast<uint8_t>(rng.below(3));
        for (size_t j = 0; j < run && i < len; ++j) out[i++] = v;
      }
      break;
    case Texture::Ones:
      for (auto& b : out) b = 0xff;
      break;
  }
  return out;
}
const char* texture_name(Texture t) {
  switch (t) {
    case Texture::Random: return "random";
    case Texture::Alphabet: return "alphabet";
    case Texture::Runs: return "runs";
    case Texture::Ones: return "ones";
  }
  return "?";
}

const RollingKind kKinds[] = {RollingKind::Ds64, RollingKind::Rollsum, RollingKind::RabinKarp};
const char* kind_name(RollingKind k) {
  switch (k) {
    case RollingKind::Ds64: return "ds64";
    case RollingKind::Rollsum: return "rollsum";
    case RollingKind::RabinKarp: return "rabinkarp";
  }
  return "?";
}

std::vector<SimdLevel> supported_levels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::Scalar, SimdLevel::SSE41, SimdLevel::AVX2, SimdLevel::AVX512, SimdLevel::NEON}) {
    if (ds::simd_supported(l)) out.push_back(l);
  }
  return out;
}

// Restores the level in force when a test forced another.
struct LevelGuard {
  SimdLevel saved = ds::simd_level();
  ~LevelGuard() { ds::set_simd_level(saved); }
};

// ---------------------------------------------------------------------------------------------
// sums

ds::ByteSums naive_sums(const uint8_t* p, size_t len) {
  uint32_t a = 0, b = 0;
  for (size_t i = 0; i < len; ++i) {
    a += p[i];
    b += a;
  }
  return {a, b};
}
uint32_t naive_poly(const uint8_t* p, size_t len) {
  uint32_t h = 0;
  for (size_t i = 0; i < len; ++i) h = h * ds::RabinKarp::kMult + p[i];
  return h;
}

void test_sums() {
  Rng rng(1);
  const auto levels = supported_levels();
  for (Texture tex : {Texture::Random, Texture::Ones, Texture::Alphabet}) {
    const Bytes data = make_data(size_t{1} << 20, rng, tex);
    std::vector<size_t> lens;
    for (size_t len = 0; len <= 2100; ++len) lens.push_back(len);
    for (int i = 0; i < (g_quick ? 10 : 60); ++i) lens.push_back(rng.below(data.size()));
    lens.push_back(data.size());
    for (size_t len : lens) {
      const size_t start = rng.below(data.size() - len + 1);
      const uint8_t* p = data.data() + start;
      const ds::ByteSums ref = naive_sums(p, len);
      const uint32_t ref_poly = naive_poly(p, len);
      for (SimdLevel l : levels) {
        const std::string what = std::string(texture_name(tex)) + " len " + std::to_string(len) + " level " + ds::simd_name(l);
        const ds::ByteSums s = ds::byte_sums_at(l, p, len);
        check(s.sum == ref.sum && s.wsum == ref.wsum, "byte_sums " + what);
        check(ds::rk_poly_at(l, p, len) == ref_poly, "rk_poly " + what);
      }
      if (len <= 2100 && len % 7 != 0) continue;  // the digests below are slower per length
      LevelGuard guard;
      for (SimdLevel l : levels) {
        ds::set_simd_level(l);
        for (RollingKind k : kKinds) {
          check(ds::weak_digest(k, p, len) == ds::rolling_digest(k, p, len),
                std::string("weak_digest ") + kind_name(k) + " len " + std::to_string(len) + " level " + ds::simd_name(l));
        }
      }
    }
  }
  // M^e and the geometric sum against repeated multiplication.
  uint32_t pow = 1, geom = 0;
  for (uint64_t e = 0; e < 3000; ++e) {
    const ds::PowGeom pg = ds::rk_pow_geom(e);
    check(pg.pow == pow && pg.geom == geom, "rk_pow_geom " + std::to_string(e));
    geom += pow;
    pow *= ds::RabinKarp::kMult;
  }
  // Jumps against rolling byte by byte, and against computing the later window from scratch.
  const Bytes data = make_data(600000, rng, Texture::Random);
  LevelGuard guard;
  for (int i = 0; i < (g_quick ? 60 : 300); ++i) {
    const size_t n = rng.below(4) == 0 ? rng.between(1, 40) : rng.between(1, 70000);
    const size_t d = rng.below(3) == 0 ? rng.below(50) : rng.below(data.size() - n);
    if (n + d > data.size()) continue;
    const uint8_t* p = data.data();
    ds::set_simd_level(levels[rng.below(levels.size())]);
    for (RollingKind k : kKinds) {
      const uint32_t mult = ds::rk_pow_geom(n).pow;
      const ds::WindowState start = ds::window_state(k, p, n);
      const ds::WindowState jumped = ds::window_jump(k, p, n, start, d, mult);
      const std::string what = std::string(kind_name(k)) + " n " + std::to_string(n) + " d " + std::to_string(d);
      check(jumped == ds::window_state(k, p + d, n), "window_jump vs fresh window " + what);
      if (d <= 5000) {
        ds::WindowState rolled = start;
        ds::with_rolling(k, [&](auto r) {
          ds::set_state(&r, start, n, mult);
          for (size_t j = 0; j < d; ++j) r.rotate(p[j], p[j + n]);
          rolled = ds::state_of(r);
          return 0;
        });
        check(jumped == rolled, "window_jump vs rotate " + what);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// search

// A filter holding the weak sums of `blocks` windows (block starts of `basis`), built as
// MatchIndex builds it.
struct TestFilter {
  std::vector<uint32_t> words;
  ds::Prefilter filter;
  TestFilter(RollingKind kind, const std::vector<uint64_t>& weaks, size_t n) {
    unsigned bits = 4;
    while ((size_t{1} << bits) < weaks.size() * 2 && bits < ds::kFilterMaxBits) ++bits;
    words.assign(size_t{1} << bits, 0);
    filter = ds::Prefilter{words.data(), 32 - bits, ds::kCharOffset * static_cast<uint32_t>(n)};
    for (uint64_t w : weaks) {
      const uint32_t key = filter.key(kind, w);
      words[filter.word_of(key)] |= ds::Prefilter::mask_of(key);
    }
  }
};

std::vector<uint64_t> block_weaks(RollingKind kind, const Bytes& basis, size_t n) {
  std::vector<uint64_t> out;
  for (size_t o = 0; o + n <= basis.size(); o += n) out.push_back(ds::rolling_digest(kind, basis.data() + o, n));
  return out;
}

std::vector<std::pair<std::string, ds::SearchFn>> search_variants() {
  std::vector<std::pair<std::string, ds::SearchFn>> out;
  for (SimdLevel l : supported_levels()) {
    if (ds::SearchFn fn = ds::search_for(l)) out.push_back({ds::simd_name(l), fn});
  }
  return out;
}

void test_search() {
  Rng rng(2);
  const auto variants = search_variants();
  if (variants.empty()) std::printf("  (no SIMD search variant on this CPU: scalar only)\n");
  for (int round = 0; round < (g_quick ? 40 : 400); ++round) {
    const Texture tex = static_cast<Texture>(rng.below(3));
    const size_t n = rng.below(5) == 0 ? rng.between(1, 64) : rng.between(65, 20000);
    const RollingKind kind = kKinds[rng.below(3)];
    // The new data reuses pieces of the basis, so some windows really match.
    const Bytes basis = make_data(rng.between(n, 400000), rng, tex);
    Bytes data = make_data(rng.between(n + 1, 600000), rng, tex);
    for (int c = 0; c < 5; ++c) {
      const size_t len = std::min({rng.between(1, 3 * n), basis.size(), data.size()});
      const size_t from = rng.below(basis.size() - len + 1), to = rng.below(data.size() - len + 1);
      std::memcpy(data.data() + to, basis.data() + from, len);
    }
    const TestFilter tf(kind, block_weaks(kind, basis, n), n);
    const size_t from = rng.below(data.size() - n);
    const size_t count = std::min(data.size() - n - from, rng.below(3) == 0 ? rng.below(300) : rng.below(300000));
    const uint32_t mult = ds::rk_pow_geom(n).pow;
    const ds::SearchTask task{kind, data.data(), n, from, count, ds::window_state(kind, data.data() + from, n), mult, tf.filter};
    const std::string what = std::string(kind_name(kind)) + " " + texture_name(tex) + " round " + std::to_string(round) +
                             " n " + std::to_string(n) + " from " + std::to_string(from) + " count " + std::to_string(count);

    std::vector<ds::Candidate> ref(count + 1);
    ds::WindowState ref_end;
    const size_t ref_found = ds::search_scalar(task, ref.data(), ref.size(), &ref_end);
    if (!check(ref_found != ds::kSearchOverflow, "scalar overflow with cap = count " + what)) continue;
    ref.resize(ref_found);
    check(ref_end == ds::window_state(kind, data.data() + from + count, n), "scalar end state " + what);
    if (count <= 3000 && n <= 3000) {
      // Direct: every window's digest from scratch, through the filter.
      std::vector<ds::Candidate> direct;
      for (size_t o = from + 1; o <= from + count; ++o) {
        const uint64_t d = ds::rolling_digest(kind, data.data() + o, n);
        if (tf.filter.maybe(kind, d)) direct.push_back({o, d});
      }
      check(direct == ref, "scalar candidates vs direct " + what);
    }
    for (const auto& [name, fn] : variants) {
      std::vector<ds::Candidate> got(count + 1);
      ds::WindowState end;
      const size_t found = fn(task, got.data(), got.size(), &end);
      got.resize(found == ds::kSearchOverflow ? 0 : found);
      check(found == ref_found && got == ref, name + " candidates " + what + " (found " + std::to_string(found) +
                                                  " vs " + std::to_string(ref_found) + ")");
      check(end == ref_end, name + " end state " + what);
      if (ref_found > 0) {
        // One fewer than needed must overflow; exactly enough must not.
        std::vector<ds::Candidate> small(ref_found);
        check(fn(task, small.data(), ref_found - 1, &end) == ds::kSearchOverflow, name + " overflow at cap-1 " + what);
        check(fn(task, small.data(), ref_found, &end) == ref_found && small == ref, name + " exact cap " + what);
      }
    }
  }
}

// search_sliced: a long batch cut into parts searched on threads reports what the whole batch
// does — candidates, their order, the end state, and overflow at exactly the same cap.
void test_search_sliced() {
  Rng rng(12);
  std::vector<std::pair<std::string, ds::SearchFn>> fns{{"scalar", ds::search_scalar}};
  for (auto& v : search_variants()) fns.push_back(v);
  for (int round = 0; round < (g_quick ? 3 : 12); ++round) {
    const Texture tex = static_cast<Texture>(rng.below(3));
    const size_t n = rng.below(4) == 0 ? rng.between(1, 64) : rng.between(65, 20000);
    const RollingKind kind = kKinds[round % 3];
    const Bytes basis = make_data(rng.between(n, 1 << 20), rng, tex);
    Bytes data = make_data(2 * ds::kMinSliceWindows + n + rng.below(3 << 20), rng, tex);
    for (int c = 0; c < 20; ++c) {
      const size_t len = std::min({rng.between(1, 3 * n), basis.size(), data.size()});
      const size_t from = rng.below(basis.size() - len + 1), to = rng.below(data.size() - len + 1);
      std::memcpy(data.data() + to, basis.data() + from, len);
    }
    const TestFilter tf(kind, block_weaks(kind, basis, n), n);
    const size_t from = rng.below(data.size() - n - 2 * ds::kMinSliceWindows);
    const size_t count = rng.between(2 * ds::kMinSliceWindows, data.size() - n - from);
    const uint32_t mult = ds::rk_pow_geom(n).pow;
    const ds::SearchTask task{kind, data.data(), n, from, count, ds::window_state(kind, data.data() + from, n), mult, tf.filter};
    for (const auto& [name, fn] : fns) {
      const std::string what = name + " " + kind_name(kind) + " " + texture_name(tex) + " round " +
                               std::to_string(round) + " n " + std::to_string(n) + " count " + std::to_string(count);
      std::vector<ds::Candidate> ref(count + 1);
      ds::WindowState ref_end;
      const size_t ref_found = fn(task, ref.data(), ref.size(), &ref_end);
      if (!check(ref_found != ds::kSearchOverflow, "whole batch overflow " + what)) continue;
      ref.resize(ref_found);
      for (size_t slices : {2, 3, 4}) {
        const std::string how = what + " slices " + std::to_string(slices);
        std::vector<ds::Candidate> got(count + 1);
        ds::WindowState end;
        const size_t found = ds::search_sliced(fn, task, got.data(), got.size(), &end, slices);
        got.resize(found == ds::kSearchOverflow ? 0 : found);
        check(found == ref_found && got == ref, "sliced candidates " + how);
        check(end == ref_end, "sliced end state " + how);
        if (ref_found > 0) {
          std::vector<ds::Candidate> small(ref_found);
          check(ds::search_sliced(fn, task, small.data(), ref_found - 1, &end, slices) == ds::kSearchOverflow,
                "sliced overflow at cap-1 " + how);
          check(ds::search_sliced(fn, task, small.data(), ref_found, &end, slices) == ref_found && small == ref,
                "sliced exact cap " + how);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// match

struct Op {
  int kind;  // 0 copy, 1 literal
  uint64_t a, b;
  bool operator==(const Op& o) const { return kind == o.kind && a == o.a && b == o.b; }
};

// Ops in canonical form (adjacent literals and contiguous copies merged) plus all literal bytes:
// independent of how the input was split into update() calls.
struct Delta {
  std::vector<Op> ops;
  Bytes literals;
  Bytes digests;  // full strong hash of every block copied, in order (the block digest's input)
  void add(int kind, uint64_t a, uint64_t b, const uint8_t* lit) {
    if (kind == 1) {
      if (a == 0) return;
      literals.insert(literals.end(), lit, lit + a);
      if (!ops.empty() && ops.back().kind == 1) {
        ops.back().a += a;
        return;
      }
      ops.push_back({1, a, 0});
      return;
    }
    if (b == 0) return;
    if (!ops.empty() && ops.back().kind == 0 && ops.back().a + ops.back().b == a) {
      ops.back().b += b;
      return;
    }
    ops.push_back({0, a, b});
  }
  void add(const ds::MatchOutput& out) {
    digests.insert(digests.end(), out.digests.begin(), out.digests.end());
    size_t lit = 0;
    for (size_t i = 0; i + 2 < out.ops.size(); i += 3) {
      const int kind = static_cast<int>(out.ops[i]);
      const uint64_t a = static_cast<uint64_t>(out.ops[i + 1]), b = static_cast<uint64_t>(out.ops[i + 2]);
      if (kind == 2) {  // literal referenced in the input chunk: canonically a plain literal
        add(1, b, 0, out.input + a);
        continue;
      }
      add(kind, a, b, out.literals.data() + lit);
      if (kind == 1) lit += a;
    }
  }
  bool operator==(const Delta& o) const { return same_ops(o) && digests == o.digests; }
  // The reference model has no hashes: compare what it describes.
  bool same_ops(const Delta& o) const { return ops == o.ops && literals == o.literals; }
  // Copies equal their digests: one full-length hash of the basis bytes per grid cell covered.
  bool digests_match(const Bytes& basis, const ds::BlockParams& params) const {
    const size_t w = ds::strong_full_len(params.strong);
    size_t at = 0;
    for (const Op& op : ops) {
      if (op.kind != 0) continue;
      for (uint64_t p = op.a; p < op.a + op.b;) {
        const uint64_t next = std::min<uint64_t>(op.a + op.b, (p / params.block_len + 1) * params.block_len);
        uint8_t h[ds::kMaxStrongLen];
        ds::strong_sum(params.strong, basis.data() + p, next - p, h);
        if (at + w > digests.size() || std::memcmp(h, digests.data() + at, w) != 0) return false;
        at += w;
        p = next;
      }
    }
    return at == digests.size();
  }
};

bool apply(const Bytes& basis, const Delta& d, Bytes* out) {
  out->clear();
  size_t lit = 0;
  for (const Op& op : d.ops) {
    if (op.kind == 0) {
      if (op.a + op.b > basis.size()) return false;
      out->insert(out->end(), basis.begin() + static_cast<ptrdiff_t>(op.a), basis.begin() + static_cast<ptrdiff_t>(op.a + op.b));
    } else {
      if (lit + op.a > d.literals.size()) return false;
      out->insert(out->end(), d.literals.begin() + static_cast<ptrdiff_t>(lit), d.literals.begin() + static_cast<ptrdiff_t>(lit + op.a));
      lit += op.a;
    }
  }
  return lit == d.literals.size();
}

Bytes signature_entries(const ds::BlockParams& params, const Bytes& basis, Rng& rng) {
  ds::SignatureBuilder sb(params);
  Bytes entries;
  size_t pos = 0;
  while (pos < basis.size()) {
    const size_t len = std::min(basis.size() - pos, rng.below(3) == 0 ? rng.below(100) : rng.below(1 << 20));
    sb.update(basis.data() + pos, len, &entries);
    pos += len;
  }
  sb.finish(&entries);
  return entries;
}

struct MatchRun {
  Delta delta;
  ds::MatchStats stats;
};

MatchRun run_matcher(const ds::BlockParams& params, const Bytes& entries, size_t count, size_t last_len,
                     const Bytes& data, const std::vector<size_t>& splits, bool set_fn, ds::SearchFn fn,
                     bool in_place = false, size_t slices = 0) {
  ds::Matcher m(params, entries.data(), count, last_len, in_place);
  if (set_fn) m.set_search(fn);
  if (slices > 0) m.set_search_slices(slices);
  MatchRun run;
  ds::MatchOutput out;
  size_t pos = 0;
  for (size_t len : splits) {
    out.clear();
    m.update(data.data() + pos, len, &out);
    run.delta.add(out);
    pos += len;
  }
  out.clear();
  m.finish(&out);
  run.delta.add(out);
  run.stats = m.stats();
  return run;
}

// The matching rules written plainly, without prefilter, batches or chunks: roll over every
// offset; at each window try the preferred next block, then every block with an equal weak sum
// in block order (at most the candidate cap); after the last full window, the tail rules.
Delta reference_delta(const ds::BlockParams& params, const Bytes& entries, size_t count, size_t last_len,
                      const Bytes& data) {
  const size_t n = params.block_len, width = ds::weak_width(params.rolling), entry = params.entry_size();
  std::vector<uint64_t> weaks(count);
  std::multimap<uint64_t, size_t> by_weak;
  const bool short_last = count > 0 && last_len > 0 && last_len < n;
  for (size_t i = 0; i < count; ++i) {
    weaks[i] = ds::load_be(entries.data() + i * entry, width);
    if (!(short_last && i + 1 == count)) by_weak.insert({weaks[i], i});
  }
  auto strong_eq = [&](size_t block, const uint8_t* p, size_t len) {
    uint8_t digest[ds::kMaxStrongLen];
    ds::strong_sum(params.strong, p, len, digest);
    return std::memcmp(digest, entries.data() + block * entry + width, params.strong_len) == 0;
  };
  Delta d;
  if (count == 0) {
    d.add(1, data.size(), 0, data.data());
    return d;
  }
  bool has_next = false;
  size_t next = 0;
  auto set_next = [&](size_t block) {
    has_next = block < count && !(short_last && block + 1 == count);
    next = block;
  };
  size_t pos = 0, lit = 0;
  ds::with_rolling(params.rolling, [&](auto roll) {
    bool fresh = true;
    while (pos + n <= data.size()) {
      if (fresh) {
        roll.reset();
        roll.update(data.data() + pos, n);
        fresh = false;
      }
      const uint64_t w = roll.digest();
      int64_t found = -1;
      if (has_next && weaks[next] == w && strong_eq(next, data.data() + pos, n)) found = static_cast<int64_t>(next);
      if (found < 0) {
        size_t tried = 0;
        for (auto it = by_weak.lower_bound(w); it != by_weak.end() && it->first == w; ++it) {
          if (++tried > ds::Matcher::kCandidateCap) break;
          if (strong_eq(it->second, data.data() + pos, n)) {
            found = static_cast<int64_t>(it->second);
            break;
          }
        }
      }
      if (found >= 0) {
        d.add(1, pos - lit, 0, data.data() + lit);
        d.add(0, static_cast<uint64_t>(found) * n, n, nullptr);
        set_next(static_cast<size_t>(found) + 1);
        pos += n;
        lit = pos;
        fresh = true;
      } else {
        if (pos + n == data.size()) break;  // the tail search starts at the last full window
        roll.rotate(data[pos], data[pos + n]);
        ++pos;
      }
    }
    return 0;
  });
  // Tail: only the basis's last block can be shorter than n.
  const size_t last = count - 1;
  auto try_tail = [&](size_t s, size_t len) {
    if (ds::rolling_digest(params.rolling, data.data() + s, len) != weaks[last]) return false;
    if (!strong_eq(last, data.data() + s, len)) return false;
    d.add(1, s - lit, 0, data.data() + lit);
    d.add(0, static_cast<uint64_t>(last) * n, len, nullptr);
    d.add(1, data.size() - s - len, 0, data.data() + s + len);
    return true;
  };
  if (last_len > 0) {
    if (last_len < n) {
      for (size_t s = pos; s + last_len <= data.size(); ++s) {
        if (try_tail(s, last_len)) return d;
      }
    }
  } else {
    for (size_t s = pos; s < data.size(); ++s) {
      if (data.size() - s < n && try_tail(s, data.size() - s)) return d;
    }
  }
  d.add(1, data.size() - lit, 0, data.data() + lit);
  return d;
}

// A random edit script over the basis: inserts (some long, so batches run), deletes,
// overwrites, block moves, duplicates, prepends and appends.
Bytes edit(const Bytes& basis, Rng& rng, Texture tex, size_t n) {
  Bytes out = basis;
  const int edits = static_cast<int>(rng.below(8));
  for (int e = 0; e < edits; ++e) {
    const size_t at = rng.below(out.size() + 1);
    switch (rng.below(7)) {
      case 0: {  // insert
        const size_t len = rng.below(3) == 0 ? rng.between(2000, 60000) : rng.below(2 * n + 10);
        const Bytes ins = make_data(len, rng, tex);
        out.insert(out.begin() + static_cast<ptrdiff_t>(at), ins.begin(), ins.end());
        break;
      }
      case 1: {  // delete
        const size_t len = std::min(out.size() - at, rng.below(3 * n + 10));
        out.erase(out.begin() + static_cast<ptrdiff_t>(at), out.begin() + static_cast<ptrdiff_t>(at + len));
        break;
      }
      case 2: {  // overwrite
        const size_t len = std::min(out.size() - at, rng.below(2 * n + 10));
        const Bytes w = make_data(len, rng, tex);
        std::copy(w.begin(), w.end(), out.begin() + static_cast<ptrdiff_t>(at));
        break;
      }
      case 3: {  // move a range elsewhere
        const size_t len = std::min(out.size() - at, rng.below(4 * n + 10));
        Bytes piece(out.begin() + static_cast<ptrdiff_t>(at), out.begin() + static_cast<ptrdiff_t>(at + len));
        out.erase(out.begin() + static_cast<ptrdiff_t>(at), out.begin() + static_cast<ptrdiff_t>(at + len));
        const size_t to = rng.below(out.size() + 1);
        out.insert(out.begin() + static_cast<ptrdiff_t>(to), piece.begin(), piece.end());
        break;
      }
      case 4: {  // duplicate a range
        const size_t len = std::min(out.size() - at, rng.below(3 * n + 10));
        Bytes piece(out.begin() + static_cast<ptrdiff_t>(at), out.begin() + static_cast<ptrdiff_t>(at + len));
        const size_t to = rng.below(out.size() + 1);
        out.insert(out.begin() + static_cast<ptrdiff_t>(to), piece.begin(), piece.end());
        break;
      }
      case 5: out.insert(out.begin(), static_cast<uint8_t>(rng.next())); break;
      default: out.push_back(static_cast<uint8_t>(rng.next())); break;
    }
  }
  return out;
}

std::vector<size_t> random_splits(size_t total, Rng& rng, size_t n) {
  std::vector<size_t> out;
  size_t left = total;
  const int style = static_cast<int>(rng.below(4));
  while (left > 0) {
    size_t len;
    switch (style) {
      case 0: len = left; break;                                  // one call
      case 1: len = rng.below(2 * n + 2); break;                  // around the block length
      case 2: len = rng.below(5) == 0 ? 0 : rng.below(70000); break;
      default: len = rng.between(1, 3); break;                    // tiny pieces
    }
    if (style == 3 && total > 20000) len = rng.below(40000);
    len = std::min(len, left);
    out.push_back(len);
    left -= len;
  }
  return out;
}

void test_match() {
  Rng rng(3);
  const auto levels = supported_levels();
  LevelGuard guard;
  const int rounds = g_quick ? 60 : 600;
  for (int round = 0; round < rounds; ++round) {
    const Texture tex = static_cast<Texture>(rng.below(3));
    ds::BlockParams params;
    const int size_class = static_cast<int>(rng.below(10));
    params.block_len = size_class == 0 ? rng.between(1, 16) : size_class < 4 ? rng.between(17, 700) : rng.between(701, 9000);
    params.rolling = kKinds[rng.below(3)];
    params.strong = ds::StrongKind::Xxh3;
    params.strong_len = rng.between(8, 16);
    const size_t max_basis = params.block_len < 64 ? 40000 : 500000;
    size_t basis_len = rng.below(max_basis);
    if (rng.below(6) == 0) basis_len = params.block_len * rng.below(40);  // exact multiple
    if (rng.below(10) == 0) basis_len = rng.below(params.block_len);      // shorter than a block
    const Bytes basis = make_data(basis_len, rng, tex);
    const Bytes data = rng.below(10) == 0 ? make_data(rng.below(300000), rng, tex) : edit(basis, rng, tex, params.block_len);
    const Bytes entries = signature_entries(params, basis, rng);
    const size_t count = entries.size() / params.entry_size();
    const bool known = rng.below(3) != 0;
    const size_t last_len = known && count ? basis.size() - (count - 1) * params.block_len : 0;
    const std::string what = std::string(kind_name(params.rolling)) + " " + texture_name(tex) + " round " +
                             std::to_string(round) + " n " + std::to_string(params.block_len) + " basis " +
                             std::to_string(basis.size()) + " new " + std::to_string(data.size()) +
                             (known ? " known-last" : " unknown-last");

    const std::vector<size_t> whole{data.size()};
    const MatchRun ref = run_matcher(params, entries, count, last_len, data, whole, true, nullptr);
    Bytes rebuilt;
    check(apply(basis, ref.delta, &rebuilt) && rebuilt == data, "round trip " + what);
    check(ref.delta.digests_match(basis, params), "block digests " + what);
    {
      // --inplace rule: no block copied to an offset past its basis offset; still a round trip.
      const MatchRun ip = run_matcher(params, entries, count, last_len, data,
                                      random_splits(data.size(), rng, params.block_len), false, nullptr, true);
      uint64_t out_pos = 0;
      bool forward = true;
      for (const Op& op : ip.delta.ops) {
        if (op.kind == 0 && op.a < out_pos) forward = false;
        out_pos += op.kind == 0 ? op.b : op.a;
      }
      check(forward, "in-place copies never go backwards " + what);
      check(apply(basis, ip.delta, &rebuilt) && rebuilt == data && ip.delta.digests_match(basis, params),
            "in-place round trip " + what);
    }
    {
      check(reference_delta(params, entries, count, last_len, data).same_ops(ref.delta), "ops vs reference " + what);
    }
    auto same = [&](const MatchRun& got, const std::string& how) {
      check(got.delta == ref.delta, "ops differ: " + how + " " + what);
      check(got.stats.weak_hits == ref.stats.weak_hits && got.stats.strong_calcs == ref.stats.strong_calcs &&
                got.stats.strong_hits == ref.stats.strong_hits && got.stats.chain_capped == ref.stats.chain_capped,
            "stats differ: " + how + " " + what);
    };
    same(run_matcher(params, entries, count, last_len, data, random_splits(data.size(), rng, params.block_len), true, nullptr),
         "byte loop, split");
    same(run_matcher(params, entries, count, last_len, data, random_splits(data.size(), rng, params.block_len), true,
                     ds::search_scalar),
         "scalar batches, split");
    for (SimdLevel l : levels) {
      ds::set_simd_level(l);
      same(run_matcher(params, entries, count, last_len, data, random_splits(data.size(), rng, params.block_len), false, nullptr),
           std::string("level ") + ds::simd_name(l) + ", split");
    }
    ds::set_simd_level(guard.saved);
  }
}

// Long stretches without a match (batches long enough to be sliced across threads), then copies
// of basis blocks: the ops, digests and counters do not depend on the number of slices.
void test_match_sliced() {
  Rng rng(13);
  const auto levels = supported_levels();
  LevelGuard guard;
  for (int round = 0; round < (g_quick ? 3 : 9); ++round) {
    ds::BlockParams params;
    params.block_len = rng.between(700, 9000);
    params.rolling = kKinds[round % 3];
    params.strong = ds::StrongKind::Xxh3;
    params.strong_len = 16;
    const Bytes basis = make_data(rng.between(1 << 20, 2 << 20), rng, Texture::Random);
    // 3-5 MiB of foreign data before the first copy: the matcher's batches grow past
    // 2 * kMinSliceWindows; then copies of basis runs between more foreign stretches.
    Bytes data = make_data(rng.between(3 << 20, 5 << 20), rng, Texture::Random);
    for (int c = 0; c < 8; ++c) {
      const Bytes foreign = make_data(rng.below(1 << 20), rng, Texture::Random);
      const size_t from = rng.below(basis.size() / 2), len = rng.between(params.block_len, basis.size() - from);
      data.insert(data.end(), basis.begin() + static_cast<ptrdiff_t>(from), basis.begin() + static_cast<ptrdiff_t>(from + len));
      data.insert(data.end(), foreign.begin(), foreign.end());
    }
    const Bytes entries = signature_entries(params, basis, rng);
    const size_t count = entries.size() / params.entry_size();
    const size_t last_len = basis.size() - (count - 1) * params.block_len;
    const std::vector<size_t> whole{data.size()};
    for (SimdLevel l : levels) {
      ds::set_simd_level(l);
      if (ds::search_for(l) == nullptr) continue;  // byte-by-byte rolling: no batches to slice
      const std::string what = std::string(kind_name(params.rolling)) + " level " + ds::simd_name(l) + " round " +
                               std::to_string(round) + " n " + std::to_string(params.block_len) + " new " +
                               std::to_string(data.size());
      const MatchRun ref = run_matcher(params, entries, count, last_len, data, whole, false, nullptr, false, 1);
      check(ref.stats.sliced_batches == 0, "one slice never slices " + what);
      Bytes rebuilt;
      check(apply(basis, ref.delta, &rebuilt) && rebuilt == data, "round trip " + what);
      for (size_t slices : {2, 3}) {
        for (bool split : {false, true}) {
          const std::string how = what + " slices " + std::to_string(slices) + (split ? " split" : " whole");
          const MatchRun got = run_matcher(params, entries, count, last_len, data,
                                           split ? random_splits(data.size(), rng, 4 << 20) : whole, false, nullptr,
                                           false, slices);
          check(got.stats.sliced_batches > 0 || split, "batches were sliced " + how);
          check(got.delta == ref.delta, "ops differ " + how);
          check(got.stats.weak_hits == ref.stats.weak_hits && got.stats.strong_calcs == ref.stats.strong_calcs &&
                    got.stats.strong_hits == ref.stats.strong_hits,
                "stats differ " + how);
        }
      }
    }
    ds::set_simd_level(guard.saved);
  }
}

// A signature full of blocks with one weak sum but different contents (the hash-flood case):
// lookups stop at the candidate cap, and every path still agrees with the reference.
void test_flood() {
  Rng rng(4);
  const auto levels = supported_levels();
  LevelGuard guard;
  for (RollingKind kind : {RollingKind::Ds64, RollingKind::Rollsum}) {
    const size_t n = 600;
    const Bytes base = make_data(n, rng, Texture::Random);
    // +1 at i, -1 at i+1, -1 at j, +1 at j+1 keeps both sum and weighted sum (s1 and s2).
    auto variant = [&](size_t i, size_t j) {
      Bytes v = base;
      v[i] = static_cast<uint8_t>(v[i] + 1);
      v[i + 1] = static_cast<uint8_t>(v[i + 1] - 1);
      v[j] = static_cast<uint8_t>(v[j] - 1);
      v[j + 1] = static_cast<uint8_t>(v[j + 1] + 1);
      return v;
    };
    Bytes basis;
    for (size_t k = 0; k < 48; ++k) {
      const Bytes v = variant(10 + 2 * k, 300 + 2 * k);
      basis.insert(basis.end(), v.begin(), v.end());
    }
    Bytes data = make_data(5000, rng, Texture::Random);
    for (int r = 0; r < 3; ++r) {
      const Bytes v = variant(200, 500);  // same weak sum, in no block
      data.insert(data.end(), v.begin(), v.end());
      const Bytes gap = make_data(3000, rng, Texture::Random);
      data.insert(data.end(), gap.begin(), gap.end());
    }
    const Bytes copy(basis.begin() + 7 * n, basis.begin() + 9 * n);  // and two real blocks
    data.insert(data.end(), copy.begin(), copy.end());
    ds::BlockParams params{n, kind, ds::StrongKind::Xxh3, 16};
    const Bytes entries = signature_entries(params, basis, rng);
    const size_t count = entries.size() / params.entry_size();
    const std::string what = std::string("flood ") + kind_name(kind);
    check(ds::rolling_digest(kind, basis.data(), n) == ds::rolling_digest(kind, basis.data() + 5 * n, n),
          what + ": variants share a weak sum");
    const std::vector<size_t> whole{data.size()};
    const MatchRun ref = run_matcher(params, entries, count, n, data, whole, true, nullptr);
    check(ref.stats.chain_capped >= 3, what + ": candidate cap reached (" + std::to_string(ref.stats.chain_capped) + ")");
    Bytes rebuilt;
    check(apply(basis, ref.delta, &rebuilt) && rebuilt == data, what + ": round trip");
    check(reference_delta(params, entries, count, n, data).same_ops(ref.delta), what + ": ops vs reference");
    for (SimdLevel l : levels) {
      ds::set_simd_level(l);
      const MatchRun got = run_matcher(params, entries, count, n, data, random_splits(data.size(), rng, n), false, nullptr);
      check(got.delta == ref.delta && got.stats.chain_capped == ref.stats.chain_capped,
            what + ": level " + ds::simd_name(l));
    }
    ds::set_simd_level(guard.saved);
  }
}

// ---------------------------------------------------------------------------------------------
// bench

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <typename F>
double best_gbps(size_t bytes, int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return bytes / best / 1e9;
}

volatile uint64_t g_sink;

// what: "all", or one of "sums", "search", "delta" to time only that part.
void bench(size_t bytes, const std::string& what) {
  Rng rng(7);
  const Bytes a = make_data(bytes, rng, Texture::Random);
  const Bytes b = make_data(bytes, rng, Texture::Random);
  const auto levels = supported_levels();
  LevelGuard guard;
  std::printf("| operation | level | GB/s |\n|---|---|---|\n");
  for (SimdLevel l : levels) {
    if (what != "all" && what != "sums") break;
    const double g1 = best_gbps(bytes, 3, [&] { g_sink = ds::byte_sums_at(l, a.data(), a.size()).wsum; });
    std::printf("| byte_sums (ds64/rollsum block sums) | %s | %.2f |\n", ds::simd_name(l), g1);
    const double g2 = best_gbps(bytes, 3, [&] { g_sink = ds::rk_poly_at(l, a.data(), a.size()); });
    std::printf("| rk_poly (rabinkarp block sums) | %s | %.2f |\n", ds::simd_name(l), g2);
  }
  const size_t n = 16384;
  for (RollingKind kind : kKinds) {
    if (what != "all" && what != "search") break;
    const TestFilter tf(kind, block_weaks(kind, a, n), n);
    const uint32_t mult = ds::rk_pow_geom(n).pow;
    std::vector<ds::Candidate> cands(1 << 16);
    std::vector<std::pair<std::string, ds::SearchFn>> fns{{"scalar", ds::search_scalar}};
    for (auto& v : search_variants()) fns.push_back(v);
    for (const auto& named : fns) {
      const ds::SearchFn fn = named.second;  // (lambdas may not capture structured bindings)
      size_t total = 0;
      const double g = best_gbps(bytes - n, 2, [&] {
        ds::WindowState st = ds::window_state(kind, b.data(), n);
        total = 0;
        for (size_t from = 0; from + n < b.size();) {
          const size_t count = std::min(ds::Matcher::kMaxBatchWindows, b.size() - n - from);
          ds::SearchTask task{kind, b.data(), n, from, count, st, mult, tf.filter};
          const size_t f = fn(task, cands.data(), cands.size(), &st);
          total += f;
          from += count;
        }
      });
      std::printf("| search %s n=16K unrelated (%.3f%% pass) | %s | %.2f |\n", kind_name(kind),
                  100.0 * total / (bytes - n), named.first.c_str(), g);
    }
  }
  // Whole matcher on unrelated and on similar data (100 scattered 1 KiB overwrites).
  Bytes similar = a;
  for (int e = 0; e < 100; ++e) {
    const size_t at = rng.below(similar.size() - 1024);
    for (size_t j = 0; j < 1024; ++j) similar[at + j] = static_cast<uint8_t>(rng.next());
  }
  for (RollingKind kind : kKinds) {
    if (what != "all" && what != "delta") break;
    ds::BlockParams params{n, kind, ds::StrongKind::Xxh3, 16};
    ds::SignatureBuilder sb(params);
    Bytes entries;
    ds::set_simd_level(levels.back());
    const double gs = best_gbps(bytes, 2, [&] {
      entries.clear();
      ds::SignatureBuilder s(params);
      for (size_t o = 0; o < a.size(); o += 8 << 20) s.update(a.data() + o, std::min<size_t>(8 << 20, a.size() - o), &entries);
      s.finish(&entries);
    });
    std::printf("| signature %s n=16K (all threads) | %s | %.2f |\n", kind_name(kind), ds::simd_name(levels.back()), gs);
    const size_t count = entries.size() / params.entry_size();
    for (SimdLevel l : levels) {
      ds::set_simd_level(l);
      for (const auto& labelled : {std::pair<const char*, const Bytes*>{"unrelated", &b}, {"similar", &similar}}) {
        const char* label = labelled.first;
        const Bytes* input = labelled.second;
        const double g = best_gbps(bytes, 2, [&] {
          ds::Matcher m(params, entries.data(), count, n);
          ds::MatchOutput out;
          for (size_t o = 0; o < input->size(); o += 8 << 20) {
            out.clear();
            m.update(input->data() + o, std::min<size_t>(8 << 20, input->size() - o), &out);
          }
          m.finish(&out);
        });
        std::printf("| delta %s %s n=16K | %s | %.2f |\n", kind_name(kind), label, ds::simd_name(l), g);
      }
    }
  }
}

int usage() {
  std::fprintf(stderr, "usage: core_test all|sums|search|match|flood [--quick] | bench [MiB [sums|search|delta]]\n");
  return 2;
}

void run_section(const char* name, void (*fn)()) {
  const int before = g_failures;
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  std::printf("%-7s %s (%.1f s)\n", name, g_failures == before ? "ok" : "FAILED", seconds_since(t0));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") g_quick = true;
  }
  if (mode == "bench") {
    const size_t mib = argc >= 3 ? static_cast<size_t>(std::atol(argv[2])) : 64;
    const std::string what = argc >= 4 ? argv[3] : "all";
    if (mib == 0) return usage();
    bench(mib << 20, what);
    return 0;
  }
  std::printf("core_test: SIMD levels here:");
  for (SimdLevel l : supported_levels()) std::printf(" %s", ds::simd_name(l));
  std::printf("\n");
  if (mode == "sums" || mode == "all") run_section("sums", test_sums);
  if (mode == "search" || mode == "all") run_section("search", test_search);
  if (mode == "search" || mode == "all") run_section("search sliced", test_search_sliced);
  if (mode == "match" || mode == "all") run_section("match", test_match);
  if (mode == "match" || mode == "all") run_section("match sliced", test_match_sliced);
  if (mode == "flood" || mode == "all") run_section("flood", test_flood);
  if (mode != "sums" && mode != "search" && mode != "match" && mode != "flood" && mode != "all") return usage();
  std::printf("%ld checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
