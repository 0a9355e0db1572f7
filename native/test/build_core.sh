#!/bin/sh
# Builds the standalone core test program (native/test/core_test.cc) without Node.
#
#   native/test/build_core.sh [x86_64|aarch64] [OUTDIR]
#
# The target defaults to this machine's. aarch64 cross-compiles with aarch64-linux-gnu-g++ and
# links statically, so `qemu-aarch64 OUTDIR/core_test-aarch64 all` runs without a sysroot. As in
# binding.gyp, each SIMD translation unit gets its own -m flags and nothing else does.
# Prints the path of the built program on stdout.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
arch=${1:-$(uname -m)}
out=${2:-$root/build/native-test}
mkdir -p "$out"

n="$root/native"
flags="-std=c++17 -O3 -Wall -Wextra -Wno-unused-parameter -I$n"
common="$n/cpu.cc $n/weak.cc $n/weak_neon.cc $n/search.cc $n/search_neon.cc $n/match_index.cc \
  $n/matcher.cc $n/signature_builder.cc $n/hash/strong.cc $n/hash/xxh3.cc $n/hash/md4.cc \
  $n/hash/blake2b.cc $here/core_test.cc"

case "$arch" in
  x86_64|amd64|x64)
    cxx=${CXX:-g++}
    obj="$out/core-obj-x86_64"
    mkdir -p "$obj"
    for f in hash/xxh3_avx2 weak_avx2 search_avx2; do
      $cxx $flags -mavx2 -msse4.1 -c "$n/$f.cc" -o "$obj/$(basename $f).o"
    done
    for f in hash/xxh3_avx512 weak_avx512 search_avx512; do
      $cxx $flags -mavx512f -mavx512bw -mavx2 -c "$n/$f.cc" -o "$obj/$(basename $f).o"
    done
    # shellcheck disable=SC2086
    $cxx $flags $common "$obj"/*.o -pthread -o "$out/core_test"
    echo "$out/core_test"
    ;;
  aarch64|arm64)
    cxx=${CXX:-aarch64-linux-gnu-g++}
    # shellcheck disable=SC2086
    $cxx $flags -static $common -pthread -o "$out/core_test-aarch64"
    echo "$out/core_test-aarch64"
    ;;
  *)
    echo "build_core.sh: unknown target '$arch' (x86_64 or aarch64)" >&2
    exit 2
    ;;
esac
