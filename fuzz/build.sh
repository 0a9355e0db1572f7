#!/bin/sh
# Builds the libFuzzer harnesses with clang, AddressSanitizer and UndefinedBehaviorSanitizer
# (UBSan findings abort, so libFuzzer counts them as crashes).
#
#   fuzz/build.sh [OUTDIR]        (default: $FUZZ_OUT, else build/fuzz)
#
# Harnesses: fuzz_delta_deltasync, fuzz_delta_rdiff, fuzz_signature, fuzz_protocol. The first
# three link the native format code (native/format, no N-API), the hashes and the CPU dispatch;
# fuzz_protocol (protocol_fuzz.cc) links the protocol decoders (native/protocol, no N-API); fuzz_signature also
# links the matcher (native/*.cc but the N-API files) to drive it with hostile signatures. If
# those sources do not build, fuzz_signature is built without that stage and a WARNING says so.
# SIMD translation units get their -m flags and nothing else does, as in binding.gyp.
# Needs clang++ with the libFuzzer runtime (Debian: clang, libclang-rt-14-dev); exits 3 without
# it. Objects are rebuilt only when their source or any header changed.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out=${1:-${FUZZ_OUT:-$root/build/fuzz}}
cxx=${FUZZ_CXX:-clang++}
mkdir -p "$out/obj"

probe="$out/obj/probe"
if ! printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' |
  "$cxx" -fsanitize=fuzzer,address,undefined -x c++ - -o "$probe" 2>"$probe.log"; then
  echo "fuzz/build.sh: $cxx cannot build libFuzzer programs (install clang and libclang-rt-14-dev):" >&2
  sed -n 1,3p "$probe.log" >&2
  exit 3
fi

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all"
cflags="-std=c++17 -g -O1 -Wall -Wextra -Wno-unused-parameter -I$root/native -I$here $sanitize"
arch=$(uname -m)

# Newest header: an object older than it is rebuilt (headers are few; no dependency files).
newest_header=$(ls -t "$root"/native/*.h "$root"/native/*/*.h "$here"/*.h 2>/dev/null | head -n 1)

simd_flags() {
  case "$1" in
    *_avx2.cc) echo "-mavx2 -msse4.1" ;;
    *_avx512.cc) echo "-mavx512f -mavx512bw -mavx2" ;;
    *) echo "" ;;
  esac
}

# Compiles one source for linking into a fuzzer; prints the object path. Fails on error.
compile() {
  src=$1
  obj="$out/obj/$(echo "${src#"$root"/}" | tr '/' '_').o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]; then
    # shellcheck disable=SC2046 # the flags are meant to split
    "$cxx" $cflags $(simd_flags "$src") -fsanitize=fuzzer-no-link -c "$src" -o "$obj" >&2 || return 1
  fi
  echo "$obj"
}

# Sources of a set, skipping SIMD files for other architectures.
for_arch() {
  for src in "$@"; do
    case "$src" in
      *_avx2.cc | *_avx512.cc) case "$arch" in x86_64 | amd64 | i?86) echo "$src" ;; esac ;;
      *) echo "$src" ;;
    esac
  done
}

core_sources=$(for_arch "$root"/native/format/status.cc "$root"/native/format/magic.cc \
  "$root"/native/format/delta_decoder.cc "$root"/native/format/signature_format.cc \
  "$root"/native/format/apply.cc "$root"/native/cpu.cc "$root"/native/hash/*.cc)
core_objs=""
for src in $core_sources; do
  core_objs="$core_objs $(compile "$src")"
done

protocol_objs=""
for src in "$root"/native/protocol/*.cc; do
  case "$src" in */binding.cc) continue ;; esac
  protocol_objs="$protocol_objs $(compile "$src")"
done

# The matcher and everything it may call: every native/*.cc but the N-API bindings.
matcher_objs=""
matcher_ok=1
for src in $(for_arch "$root"/native/*.cc); do
  case "$src" in
    */addon.cc | */fileops.cc | */cpu.cc) continue ;;
  esac
  if obj=$(compile "$src"); then
    matcher_objs="$matcher_objs $obj"
  else
    matcher_ok=0
  fi
done

# Links a harness unless it is newer than its source, the objects and the headers.
link() {
  name=$1
  shift
  stale=0
  [ -f "$out/$name" ] || stale=1
  for f in "$@" "$newest_header"; do
    case "$f" in -*) continue ;; esac
    [ "$f" -nt "$out/$name" ] && stale=1
  done
  if [ "$stale" -eq 1 ]; then
    # shellcheck disable=SC2086
    "$cxx" $cflags -fsanitize=fuzzer "$@" -o "$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name" || return 1
  fi
  echo "$out/$name"
}

# shellcheck disable=SC2086
link fuzz_delta_deltasync "$here/fuzz_delta_deltasync.cc" $core_objs
# shellcheck disable=SC2086
link fuzz_delta_rdiff "$here/fuzz_delta_rdiff.cc" $core_objs
# shellcheck disable=SC2086
link fuzz_protocol "$here/protocol_fuzz.cc" $protocol_objs
# A fuzz_signature built without the matcher stage is marked, so it is relinked with it later.
without="$out/obj/fuzz_signature.without-matcher"
[ "$matcher_ok" -eq 1 ] && [ -f "$without" ] && rm -f "$out/fuzz_signature" "$without"
if [ "$matcher_ok" -eq 1 ] &&
  # shellcheck disable=SC2086
  link fuzz_signature "$here/fuzz_signature.cc" -DFUZZ_MATCHER $core_objs $matcher_objs 2>"$out/obj/matcher-link.log"; then
  :
else
  echo "fuzz/build.sh: WARNING: the matcher sources did not build or link; fuzz_signature is built without its matcher stage" >&2
  sed -n 1,5p "$out/obj/matcher-link.log" >&2 2>/dev/null || true
  rm -f "$out/fuzz_signature"
  # shellcheck disable=SC2086
  link fuzz_signature "$here/fuzz_signature.cc" $core_objs
  touch "$without"
fi
