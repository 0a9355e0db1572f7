// The scalar candidate search and the lane driver shared by the SIMD variants (see search.h).
#include "search.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "parallel.h"

namespace ds {
namespace {

template <typename R>
size_t roll_scalar(const SearchTask& t, Candidate* out, size_t cap, WindowState* end, R r) {
  set_state(&r, t.state, t.n, t.rk_mult_n);
  const uint8_t* p = t.p;
  const size_t n = t.n;
  const Prefilter filter = t.filter;
  size_t found = 0;
  for (size_t o = t.from + 1, last = t.from + t.count; o <= last; ++o) {
    r.rotate(p[o - 1], p[o - 1 + n]);
    const uint64_t d = r.digest();
    if (filter.maybe(R::kind, d)) {
      if (found == cap) return kSearchOverflow;
      out[found++] = {o, d};
    }
  }
  *end = state_of(r);
  return found;
}

// Fewer steps per lane than this and starting the lanes costs more than it saves.
constexpr size_t kMinLaneSteps = 64;
constexpr size_t kMaxLanes = 64;

// Splits the batch into `lanes` lanes of S steps (S a multiple of 4), runs the kernel, puts the
// hits in offset order, and rolls the few windows past lanes·S with the scalar loop.
size_t search_lanes(const SearchTask& t, Candidate* out, size_t cap, WindowState* end, LaneFn kernel,
                    size_t lanes) {
  size_t steps = (t.count / lanes) & ~size_t{3};
  // Lanes S bytes apart all map to the same L1 sets when S is a multiple of 4 KiB; an odd number
  // of 64-byte lines between lanes spreads them over distinct sets.
  if (steps >= 128 && ((steps >> 6) & 1) == 0) steps -= 64;
  if (steps < kMinLaneSteps || lanes > kMaxLanes || t.count > kMaxBatch) return search_scalar(t, out, cap, end);
  const uint8_t* base = t.p + t.from;
  WindowState starts[kMaxLanes], ends[kMaxLanes];
  starts[0] = t.state;
  for (size_t l = 1; l < lanes; ++l) {
    // Whichever reads fewer bytes: the window from scratch (n) or a jump from the previous lane (2·S).
    starts[l] = t.n <= 2 * steps ? window_state(t.kind, base + l * steps, t.n)
                                 : window_jump(t.kind, base + (l - 1) * steps, t.n, starts[l - 1], steps, t.rk_mult_n);
  }
  thread_local std::vector<LaneHit> hits;
  if (hits.size() < cap) hits.resize(cap);
  const LaneTask lt{t.kind, base, t.n, steps, starts, ends, t.rk_mult_n, t.filter};
  const size_t found = kernel(lt, hits.data(), cap);
  if (found == kSearchOverflow) return kSearchOverflow;

  // Counting sort by lane; the kernel reports each lane's hits in step order, which it keeps.
  size_t next[kMaxLanes + 1] = {};
  for (size_t h = 0; h < found; ++h) ++next[hits[h].lane + 1];
  for (size_t l = 0; l < lanes; ++l) next[l + 1] += next[l];
  for (size_t h = 0; h < found; ++h) {
    const LaneHit& hit = hits[h];
    out[next[hit.lane]++] = {t.from + hit.lane * steps + hit.step + 1, state_digest(t.kind, hit.state)};
  }

  SearchTask rest = t;
  rest.from = t.from + lanes * steps;
  rest.count = t.count - lanes * steps;
  rest.state = ends[lanes - 1];
  const size_t more = search_scalar(rest, out + found, cap - found, end);
  return more == kSearchOverflow ? kSearchOverflow : found + more;
}

}  // namespace

size_t search_scalar(const SearchTask& t, Candidate* out, size_t cap, WindowState* end) {
  switch (t.kind) {
    case RollingKind::Ds64: return roll_scalar(t, out, cap, end, Ds64{});
    case RollingKind::Rollsum: return roll_scalar(t, out, cap, end, Rollsum{});
    case RollingKind::RabinKarp: return roll_scalar(t, out, cap, end, RabinKarp{});
  }
  return kSearchOverflow;
}

#if defined(__x86_64__) || defined(__i386__)
size_t search_avx2(const SearchTask& t, Candidate* out, size_t cap, WindowState* end) {
  return search_lanes(t, out, cap, end, lane_kernel_avx2, lanes_avx2(t.kind));
}
size_t search_avx512(const SearchTask& t, Candidate* out, size_t cap, WindowState* end) {
  return search_lanes(t, out, cap, end, lane_kernel_avx512, lanes_avx512(t.kind));
}
#endif
#if defined(__aarch64__)
size_t search_neon(const SearchTask& t, Candidate* out, size_t cap, WindowState* end) {
  return search_lanes(t, out, cap, end, lane_kernel_neon, lanes_neon(t.kind));
}
#endif

size_t search_sliced(SearchFn fn, const SearchTask& t, Candidate* out, size_t cap, WindowState* end, size_t slices) {
  slices = slice_parts(t.count, slices);
  if (slices <= 1) return fn(t, out, cap, end);
  struct Part {
    SearchTask task;
    std::unique_ptr<Candidate[]> hits;  // part 0 writes straight into `out`
    size_t found;
    WindowState end;
  };
  std::vector<Part> parts(slices);
  const size_t per = t.count / slices;
  for (size_t s = 0; s < slices; ++s) {
    SearchTask& task = parts[s].task;
    task = t;
    task.from = t.from + s * per;
    task.count = s + 1 == slices ? t.count - s * per : per;
    // The window at `from` is the one before the part's first reported window.
    if (s > 0) task.state = window_state(t.kind, t.p + task.from, t.n);
    if (s > 0) parts[s].hits.reset(new Candidate[cap]);  // uninitialised: only written ones are read
  }
  auto run = [&](size_t s) {
    Part& part = parts[s];
    part.found = fn(part.task, s == 0 ? out : part.hits.get(), cap, &part.end);
  };
  parallel_for(slices, 1, [&](size_t first, size_t last) {
    for (size_t s = first; s < last; ++s) run(s);
  });

  size_t total = 0;
  for (const Part& part : parts) {
    if (part.found == kSearchOverflow || part.found > cap - total) return kSearchOverflow;
    if (&part != &parts[0]) std::copy(part.hits.get(), part.hits.get() + part.found, out + total);
    total += part.found;
  }
  *end = parts.back().end;
  return total;
}

SearchFn search_for(SimdLevel level) {
  switch (level) {
#if defined(__x86_64__) || defined(__i386__)
    case SimdLevel::AVX512: return search_avx512;
    case SimdLevel::AVX2: return search_avx2;
#endif
#if defined(__aarch64__)
    case SimdLevel::NEON: return search_neon;
#endif
    default: break;
  }
  return nullptr;
}

}  // namespace ds
