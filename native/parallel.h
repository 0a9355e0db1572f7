// Splits independent work (blocks of a signature) across cores. Used only for large inputs:
// starting a thread costs tens of microseconds, a 1 MiB slice of hashing costs far more.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <thread>
#if defined(__linux__)
#include <sched.h>
#endif
#include <vector>

namespace ds {

// Worker count: DELTASYNC_THREADS if set (1 disables threading), else the cores this process may
// run on (its affinity mask: `taskset -c 0` or a container's cpuset means one, whatever the
// machine has; more threads than that would only take turns).
inline unsigned worker_threads() {
  static const unsigned n = [] {
    if (const char* env = std::getenv("DELTASYNC_THREADS")) {
      const long v = std::strtol(env, nullptr, 10);
      if (v >= 1 && v <= 256) return static_cast<unsigned>(v);
    }
#if defined(__linux__)
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
      const int count = CPU_COUNT(&allowed);
      if (count >= 1) return static_cast<unsigned>(count);
    }
#endif
    const unsigned hw = std::thread::hardware_concurrency();
    return hw ? hw : 1u;
  }();
  return n;
}

// Runs f(begin, end) over [0, count) in contiguous slices of at least min_per_slice items.
template <typename F>
void parallel_for(size_t count, size_t min_per_slice, F&& f) {
  const size_t max_slices = min_per_slice ? std::max<size_t>(1, count / min_per_slice) : count;
  const size_t slices = std::min<size_t>(worker_threads(), max_slices);
  if (slices <= 1) {
    f(size_t{0}, count);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(slices - 1);
  const size_t per = (count + slices - 1) / slices;
  for (size_t s = 1; s < slices; ++s) {
    const size_t begin = s * per, end = std::min(count, begin + per);
    if (begin >= end) break;
    threads.emplace_back([&f, begin, end] { f(begin, end); });
  }
  f(size_t{0}, std::min(count, per));
  for (auto& t : threads) t.join();
}

}  // namespace ds
