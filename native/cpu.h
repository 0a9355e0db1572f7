// The one place that decides which SIMD variant runs. Every variant has a scalar twin;
// DELTASYNC_SIMD=scalar|sse41|avx2|avx512|neon caps the choice (tests and benchmarks).
#pragma once
#include <cstdint>

namespace ds {

enum class SimdLevel : int { Scalar = 0, SSE41 = 1, AVX2 = 2, AVX512 = 3, NEON = 4 };

// Highest level this CPU supports (detected once).
SimdLevel simd_detected();
// Level in force: detected, capped by DELTASYNC_SIMD, or set by set_simd_level().
SimdLevel simd_level();
bool simd_supported(SimdLevel level);
// For tests: force a level. Returns false (and changes nothing) if the CPU lacks it.
bool set_simd_level(SimdLevel level);
const char* simd_name(SimdLevel level);
// Parses "scalar", "sse41", "avx2", "avx512", "neon"; returns false on anything else.
bool simd_parse(const char* name, SimdLevel* out);

}  // namespace ds
