// Batched candidate search: the matcher's no-match path, where every offset of the new data rolls
// the weak sum and probes the index.
//
// A batch computes the weak sum of `count` consecutive windows and keeps only those that pass the
// prefilter (a blocked bloom filter of the signature's weak sums). The work splits into lanes:
// lane l rolls windows from + l·S + 1 ... from + (l + 1)·S, all lanes in lockstep in the SIMD
// registers (so no byte waits on the previous one, unlike a single rolling sum), each lane
// started from a state computed by window_jump(). What the batch reports depends only on the
// data, the filter and the batch bounds — never on the lane layout — so every SIMD variant
// reports exactly what the scalar one does, and the tests compare them bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu.h"
#include "rolling.h"
#include "weak.h"

namespace ds {

constexpr uint32_t kKeyMult = 0x9E3779B1u;  // 2^32 / golden ratio, odd

// Blocked bloom filter over 32-bit keys of weak digests: a key selects one 32-bit word (its top
// bits) and two bits in it (its low ten bits, which the multiply leaves well mixed for any
// varied input). One load and a mask test per probe; with two to four words per indexed block
// about 0.27% of foreign windows pass (docs/ROLLING.md).
constexpr unsigned kFilterMaxBits = 22;
struct Prefilter {
  const uint32_t* words;
  unsigned shift;     // 32 - log2(word count), in [32 - kFilterMaxBits, 28]
  uint32_t s1_bias;   // 31·n: keys use s1 - 31·n, the form the SIMD lanes carry

  // For ds64 the entropy sits in s2 and in the low bits of s1, so those are folded before the
  // multiply spreads them over the high bits (measured in docs/ROLLING.md). Rollsum's digest
  // keeps the low 16 bits of s1, enough to apply the same bias.
  uint32_t key(RollingKind kind, uint64_t digest) const {
    const uint32_t lo = static_cast<uint32_t>(digest);
    switch (kind) {
      case RollingKind::Ds64: return (static_cast<uint32_t>(digest >> 32) ^ ((lo - s1_bias) << 16)) * kKeyMult;
      case RollingKind::Rollsum: return ((lo & 0xffff0000u) | ((lo - s1_bias) & 0xffffu)) * kKeyMult;
      case RollingKind::RabinKarp: break;
    }
    return lo * kKeyMult;
  }
  static uint32_t mask_of(uint32_t key) { return (1u << (key & 31)) | (1u << ((key >> 5) & 31)); }
  uint32_t word_of(uint32_t key) const { return key >> shift; }
  bool maybe_key(uint32_t key) const {
    const uint32_t m = mask_of(key);
    return (words[word_of(key)] & m) == m;
  }
  bool maybe(RollingKind kind, uint64_t digest) const { return maybe_key(key(kind, digest)); }
};

struct Candidate {
  size_t offset;    // window start, in the batch's coordinates
  uint64_t digest;  // its weak digest, as the rolling struct's digest() gives it
  bool operator==(const Candidate& o) const { return offset == o.offset && digest == o.digest; }
};

struct SearchTask {
  RollingKind kind;
  const uint8_t* p;     // the window at offset o is p[o, o + n)
  size_t n;
  size_t from;          // window whose state is `state`; not itself reported
  size_t count;         // windows from + 1 ... from + count are searched: p[from + count + n - 1] is read
  WindowState state;
  uint32_t rk_mult_n;   // M^n, RabinKarp only
  Prefilter filter;
};

// Most windows one batch may hold (lane offsets are 32-bit).
constexpr size_t kMaxBatch = size_t{1} << 22;
constexpr size_t kSearchOverflow = ~size_t{0};

// Writes the windows that pass the filter in ascending offset order, at most cap of them, and
// returns their number, or kSearchOverflow when there are more than cap (out then holds garbage).
// *end receives the state of the window at from + count either way.
using SearchFn = size_t (*)(const SearchTask& task, Candidate* out, size_t cap, WindowState* end);

size_t search_scalar(const SearchTask& task, Candidate* out, size_t cap, WindowState* end);
#if defined(__x86_64__) || defined(__i386__)
size_t search_avx2(const SearchTask& task, Candidate* out, size_t cap, WindowState* end);
size_t search_avx512(const SearchTask& task, Candidate* out, size_t cap, WindowState* end);
#endif
#if defined(__aarch64__)
size_t search_neon(const SearchTask& task, Candidate* out, size_t cap, WindowState* end);
#endif

// Runs `fn` over up to `slices` contiguous parts of the batch at once, one thread each, and joins
// their candidates. Same result as fn on the whole batch, bit for bit: each part starts from its
// first window computed afresh, and what a batch reports depends only on the data. Batches of
// fewer than 2 * kMinSliceWindows windows run whole on the calling thread.
constexpr size_t kMinSliceWindows = size_t{1} << 18;
// Parts search_sliced cuts a batch of `count` windows into, given up to `slices` (1: not cut).
inline size_t slice_parts(size_t count, size_t slices) {
  const size_t most = count / kMinSliceWindows;
  return slices < most ? slices : most < 1 ? 1 : most;
}
size_t search_sliced(SearchFn fn, const SearchTask& task, Candidate* out, size_t cap, WindowState* end, size_t slices);

// The batched variant of a level, or nullptr when the level has none (the matcher then rolls
// byte by byte, which is faster than batching without SIMD).
SearchFn search_for(SimdLevel level);

// --- Lane kernels (one per SIMD level), used by the search_* drivers. ---

// A lane's window that passed the filter: lane `lane` after step `step` (its window from +
// lane·S + step + 1), with the lane's state there.
struct LaneHit {
  uint32_t step, lane;
  WindowState state;
};

struct LaneTask {
  RollingKind kind;
  const uint8_t* p;           // as SearchTask::p, already advanced to the batch's `from`
  size_t n;
  size_t steps;               // S, a multiple of 4
  const WindowState* starts;  // per lane: state of its first window (offset lane·S)
  WindowState* ends;          // per lane: state after its last step
  uint32_t rk_mult_n;
  Prefilter filter;
};

// Runs every lane; returns the hits (in any order) or kSearchOverflow past cap.
using LaneFn = size_t (*)(const LaneTask& task, LaneHit* hits, size_t cap);

// Lanes a kernel runs for a kind (RabinKarp runs two vectors at once: its multiply latency would
// otherwise stall the chain).
#if defined(__x86_64__) || defined(__i386__)
size_t lanes_avx2(RollingKind kind);
size_t lane_kernel_avx2(const LaneTask& task, LaneHit* hits, size_t cap);
size_t lanes_avx512(RollingKind kind);
size_t lane_kernel_avx512(const LaneTask& task, LaneHit* hits, size_t cap);
#endif
#if defined(__aarch64__)
size_t lanes_neon(RollingKind kind);
size_t lane_kernel_neon(const LaneTask& task, LaneHit* hits, size_t cap);
#endif

}  // namespace ds
