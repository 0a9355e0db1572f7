#!/usr/bin/env bash
# Builds the prebuilt addons that the npm tarball carries, with prebuildify (N-API, stripped):
#
#   scripts/prebuild.sh [x64] [arm64]        (default: both)
#
#   prebuilds/linux-x64/deltasync.glibc.node     native build
#   prebuilds/linux-arm64/deltasync.glibc.node   cross-compiled with Debian's g++-aarch64-linux-gnu
#
# Each prebuild is N-API version 8, so one binary serves every Node release from 18 on. The libc
# tag keeps node-gyp-build from handing a glibc binary to a musl system (Alpine), which then
# builds from source instead.
#
# The builds run in a private copy of binding.gyp and native/, so the work tree's build/
# (someone's incremental node-gyp build) is left alone.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

die() { echo "prebuild: $*" >&2; exit 1; }

arches=("$@")
[[ ${#arches[@]} -eq 0 ]] && arches=(x64 arm64)

[[ -x node_modules/.bin/prebuildify ]] || die "prebuildify is not installed; run \`npm install\` first"
# Node's headers: a distribution or NodeSource install ships them (keeps the build offline);
# otherwise node-gyp downloads them for the running Node version.
if [[ -z "${npm_config_nodedir:-}" && -f /usr/include/node/node_api.h ]]; then
  export npm_config_nodedir=/usr
fi
export JOBS="${JOBS:-2}"
node_version=$(node -p 'process.versions.node')

stage=$(mktemp -d "${TMPDIR:-/tmp}/deltasync-prebuild.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp package.json binding.gyp "$stage/"
cp -R native "$stage/native"
ln -s "$root/node_modules" "$stage/node_modules"

build_one() {
  local arch=$1
  local -a args=(--napi --strip --tag-libc --target "$node_version" --arch "$arch"
    --cwd "$stage" --out "$root")
  case "$arch" in
    x64)
      [[ $(node -p 'process.arch') == x64 ]] || die "x64 prebuilds are built on an x64 host"
      "$root/node_modules/.bin/prebuildify" "${args[@]}"
      ;;
    arm64)
      local cross=aarch64-linux-gnu
      command -v "$cross-g++" >/dev/null ||
        die "no $cross-g++: install Debian's g++-aarch64-linux-gnu to cross-compile the arm64 prebuild (or run: scripts/prebuild.sh x64)"
      CC="$cross-gcc" CXX="$cross-g++" LINK="$cross-g++" AR="$cross-ar" \
        "$root/node_modules/.bin/prebuildify" "${args[@]}" --strip-bin "$cross-strip"
      ;;
    *) die "unknown architecture '$arch' (x64 or arm64)" ;;
  esac
  rm -rf "$stage/build"
  local out="$root/prebuilds/linux-$arch/deltasync.glibc.node"
  [[ -f "$out" ]] || die "prebuildify finished but $out is missing"
  file -b "$out" | sed "s|^|prebuild: linux-$arch: |"
}

for arch in "${arches[@]}"; do
  echo "prebuild: building linux-$arch"
  build_one "$arch"
done
