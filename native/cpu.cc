#include "cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#endif

namespace ds {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t read_xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
#endif

// Bit mask of supported levels, computed once. The OS must also save the wide registers
// (XCR0), or an instruction the CPU has would still fault.
unsigned detect_mask() {
  unsigned mask = 1u << static_cast<int>(SimdLevel::Scalar);
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return mask;
  const bool sse41 = c & (1u << 19);
  const bool osxsave = c & (1u << 27);
  const bool avx = c & (1u << 28);
  if (sse41) mask |= 1u << static_cast<int>(SimdLevel::SSE41);
  if (!osxsave || !avx) return mask;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_saved = (xcr0 & 0x6) == 0x6;
  const bool zmm_saved = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return mask;
  const bool avx2 = b & (1u << 5);
  const bool avx512f = b & (1u << 16);
  const bool avx512bw = b & (1u << 30);
  if (avx2 && ymm_saved && sse41) mask |= 1u << static_cast<int>(SimdLevel::AVX2);
  if (avx2 && avx512f && avx512bw && zmm_saved) mask |= 1u << static_cast<int>(SimdLevel::AVX512);
#elif defined(__aarch64__)
#if defined(__linux__)
  if (getauxval(AT_HWCAP) & HWCAP_ASIMD) mask |= 1u << static_cast<int>(SimdLevel::NEON);
#else
  mask |= 1u << static_cast<int>(SimdLevel::NEON);
#endif
#endif
  return mask;
}

unsigned supported_mask() {
  static const unsigned mask = detect_mask();
  return mask;
}

SimdLevel highest_supported_at_most(SimdLevel cap) {
  if (cap == SimdLevel::NEON) return simd_supported(cap) ? cap : SimdLevel::Scalar;
  for (int l = static_cast<int>(cap); l > 0; --l) {
    if (simd_supported(static_cast<SimdLevel>(l))) return static_cast<SimdLevel>(l);
  }
  return SimdLevel::Scalar;
}

SimdLevel initial_level() {
  const char* env = std::getenv("DELTASYNC_SIMD");
  SimdLevel requested;
  if (env && *env && simd_parse(env, &requested)) return highest_supported_at_most(requested);
  return simd_detected();
}

std::atomic<int>& active_level() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

}  // namespace

SimdLevel simd_detected() {
  const unsigned mask = supported_mask();
  if (mask & (1u << static_cast<int>(SimdLevel::NEON))) return SimdLevel::NEON;
  for (int l = static_cast<int>(SimdLevel::AVX512); l > 0; --l) {
    if (mask & (1u << l)) return static_cast<SimdLevel>(l);
  }
  return SimdLevel::Scalar;
}

SimdLevel simd_level() { return static_cast<SimdLevel>(active_level().load(std::memory_order_relaxed)); }

bool simd_supported(SimdLevel level) { return supported_mask() & (1u << static_cast<int>(level)); }

bool set_simd_level(SimdLevel level) {
  if (!simd_supported(level)) return false;
  active_level().store(static_cast<int>(level), std::memory_order_relaxed);
  return true;
}

const char* simd_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::Scalar: return "scalar";
    case SimdLevel::SSE41: return "sse41";
    case SimdLevel::AVX2: return "avx2";
    case SimdLevel::AVX512: return "avx512";
    case SimdLevel::NEON: return "neon";
  }
  return "scalar";
}

bool simd_parse(const char* name, SimdLevel* out) {
  static const SimdLevel all[] = {SimdLevel::Scalar, SimdLevel::SSE41, SimdLevel::AVX2,
                                  SimdLevel::AVX512, SimdLevel::NEON};
  for (SimdLevel l : all) {
    if (std::strcmp(name, simd_name(l)) == 0) {
      *out = l;
      return true;
    }
  }
  return false;
}

}  // namespace ds
