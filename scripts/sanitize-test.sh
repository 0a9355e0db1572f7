#!/usr/bin/env bash
# Runs the test suite once more against an addon built with AddressSanitizer and
# UndefinedBehaviorSanitizer (issue 6: no out-of-bounds access, no use after free, no UB in
# the native code, under every test of the suite that loads it).
#
#   bash scripts/sanitize-test.sh [LOG]      (exit status: vitest's)
#
# Node is not instrumented, so ASan's runtime is preloaded into every node process the tests
# start (LD_PRELOAD is inherited by the CLI children); DELTASYNC_PREBUILD makes lib/native.ts
# load the sanitized addon. Leak checking is off: node keeps allocations alive until exit by
# design, which LeakSanitizer would report on every process.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log="${1:-/dev/null}"

npx cmake-js compile --out build-asan/build --CDDELTASYNC_SANITIZE=address,undefined </dev/null >/dev/null

LD_PRELOAD="$(g++ -print-file-name=libasan.so)"
if [[ ! -f "$LD_PRELOAD" ]]; then
  echo "sanitize-test: g++ has no libasan.so (install g++)" >&2
  exit 1
fi
export LD_PRELOAD
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export DELTASYNC_PREBUILD="$PWD/build-asan"

# Two files are left out, because they do not run our addon in this node: the libFuzzer
# harnesses are clang ASan programs of their own (gcc's preloaded runtime clashes with theirs;
# the main run runs them), and the package check loads the tarball's prebuilds, including the
# arm64 one under qemu, where an x86-64 libasan cannot be preloaded.
set +e
npx vitest run --exclude test/fuzz.test.ts --exclude test/package.test.ts </dev/null 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# A sanitizer report aborts the process; make sure one that slipped past a test still fails.
if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$log" 2>/dev/null; then
  echo "sanitize-test: sanitizer reports in the log" >&2
  [[ "$status" -eq 0 ]] && status=1
fi
exit "$status"
