#!/usr/bin/env bash
# An arm64 Node.js, run through qemu-user, to load and test the linux-arm64 prebuild on an x86
# machine without touching the host's own node or its dpkg database:
#
#   scripts/arm64-node.sh setup              fetch Debian 12's nodejs:arm64 and the libraries it
#                                            needs into the cache, unpacked (not installed)
#   scripts/arm64-node.sh [NODE ARGS...]     run that node under qemu-aarch64
#   scripts/arm64-node.sh --root             print the unpacked root
#
# Debian 12's nodejs is 18.x; its N-API (9) covers the addon's version 8. The package lists live
# in a private apt state directory, so `dpkg --add-architecture` is not needed.
# Cache: $DELTASYNC_ARM64_ROOT, default ~/.cache/deltasync/arm64-node.
set -euo pipefail

cache=${DELTASYNC_ARM64_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/deltasync/arm64-node}
sysroot="$cache/root"
suite=bookworm

die() { echo "arm64-node: $*" >&2; exit 1; }

apt_opts() {
  printf '%s\n' \
    -o "Dir::State=$cache/apt-state" \
    -o "Dir::State::Status=$cache/apt-state/status" \
    -o "Dir::Cache=$cache/apt-cache" \
    -o "Dir::Etc::SourceList=$cache/sources.list" \
    -o "Dir::Etc::SourceParts=$cache/sources.d" \
    -o "Dir::Etc::Preferences=/dev/null" \
    -o "Dir::Etc::PreferencesParts=$cache/sources.d" \
    -o "APT::Architecture=arm64" \
    -o "APT::Architectures::=arm64" \
    -o "APT::Sandbox::User=root" \
    -o "Debug::NoLocking=1"
}

setup() {
  command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 is missing (Debian package qemu-user)"
  [[ -x "$sysroot/usr/bin/node" ]] && return 0
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [[ -f $keyring ]] || die "no $keyring (Debian package debian-archive-keyring)"
  mkdir -p "$cache/apt-state/lists/partial" "$cache/apt-cache/archives/partial" \
    "$cache/sources.d" "$cache/debs"
  : >"$cache/apt-state/status"
  cat >"$cache/sources.list" <<EOF
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian $suite main
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian $suite-updates main
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian-security $suite-security main
EOF
  local -a opts
  mapfile -t opts < <(apt_opts)
  echo "arm64-node: fetching Debian's arm64 package lists" >&2
  apt-get "${opts[@]}" -qq update

  # Everything nodejs needs at run time, libc included: the unpacked root is self-sufficient.
  local -a pkgs
  mapfile -t pkgs < <(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends nodejs |
    grep -E '^[a-z0-9]' | sed 's/:arm64$//' | sort -u)
  # Virtual packages have no file to download; keep the real ones.
  local -a real=()
  for p in "${pkgs[@]}"; do
    if apt-cache "${opts[@]}" show "$p" >/dev/null 2>&1; then real+=("$p"); fi
  done
  [[ " ${real[*]} " == *" nodejs "* ]] || die "Debian's lists have no arm64 nodejs"
  echo "arm64-node: downloading ${#real[@]} packages" >&2
  (cd "$cache/debs" && apt-get "${opts[@]}" -qq download "${real[@]/%/:arm64}")
  rm -rf "$sysroot.tmp" && mkdir -p "$sysroot.tmp"
  for deb in "$cache/debs"/*.deb; do dpkg-deb -x "$deb" "$sysroot.tmp"; done
  [[ -x "$sysroot.tmp/usr/bin/node" ]] || die "nodejs:arm64 unpacked without usr/bin/node"
  rm -rf "$sysroot" && mv "$sysroot.tmp" "$sysroot"
}

run() {
  [[ -x "$sysroot/usr/bin/node" ]] || setup
  # Debian 12 keeps some libraries under lib/ and some under usr/lib/ (no merged /usr in a .deb).
  QEMU_LD_PREFIX="$sysroot" \
    LD_LIBRARY_PATH="$sysroot/lib/aarch64-linux-gnu:$sysroot/usr/lib/aarch64-linux-gnu" \
    exec qemu-aarch64 -L "$sysroot" "$sysroot/usr/bin/node" "$@"
}

case "${1:-}" in
  setup) setup; echo "$sysroot" ;;
  --root) echo "$sysroot" ;;
  *) run "$@" ;;
esac
