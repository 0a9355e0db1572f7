#!/bin/sh
# Builds the standalone hash test program (native/test/hash_test.cc) without Node.
#
#   native/test/build.sh [x86_64|aarch64] [OUTDIR]
#
# The target defaults to this machine's. aarch64 cross-compiles with aarch64-linux-gnu-g++ and
# links statically so `qemu-aarch64 OUTDIR/hash_test-aarch64 ...` runs without a sysroot (it
# also runs with `qemu-aarch64 -L /usr/aarch64-linux-gnu` if static linking is unavailable).
# As in binding.gyp, each SIMD translation unit gets its own -m flags and nothing else does.
# Prints the path of the built program on stdout.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
arch=${1:-$(uname -m)}
out=${2:-$root/build/native-test}
mkdir -p "$out"

flags="-std=c++17 -O2 -Wall -Wextra -I$root/native"
common="$root/native/cpu.cc $root/native/hash/xxh3.cc $root/native/hash/md4.cc \
  $root/native/hash/blake2b.cc $root/native/hash/strong.cc $here/hash_test.cc"

case "$arch" in
  x86_64|amd64|x64)
    cxx=${CXX:-g++}
    obj="$out/obj-x86_64"
    mkdir -p "$obj"
    $cxx $flags -mavx2 -msse4.1 -c "$root/native/hash/xxh3_avx2.cc" -o "$obj/xxh3_avx2.o"
    $cxx $flags -mavx512f -mavx512bw -mavx2 -c "$root/native/hash/xxh3_avx512.cc" -o "$obj/xxh3_avx512.o"
    # shellcheck disable=SC2086
    $cxx $flags $common "$obj/xxh3_avx2.o" "$obj/xxh3_avx512.o" -o "$out/hash_test"
    echo "$out/hash_test"
    ;;
  aarch64|arm64)
    cxx=${CXX:-aarch64-linux-gnu-g++}
    # shellcheck disable=SC2086
    $cxx $flags -static $common -o "$out/hash_test-aarch64"
    echo "$out/hash_test-aarch64"
    ;;
  *)
    echo "build.sh: unknown target '$arch' (x86_64 or aarch64)" >&2
    exit 2
    ;;
esac
