#!/usr/bin/env bash
# A scratch XFS with reflinks on a loop device, for measurements that need a filesystem which
# shares extents (bench/seed.js --fs xfs, bench/run.js --fs xfs, test/reflink.test.ts).
#
#   scripts/scratch-fs.sh mount DIR [SIZE]   # DIR/xfs.img (sparse, SIZE, default 8G) formatted
#                                            # with mkfs.xfs -m reflink=1, mounted on DIR/mnt;
#                                            # prints DIR/mnt on stdout
#   scripts/scratch-fs.sh umount DIR         # unmounts DIR/mnt, detaches the loop device, removes
#                                            # the image, DIR/mnt and DIR (if empty); idempotent
#   scripts/scratch-fs.sh check              # can a loop XFS be made here? exit 0, or 3 + why
#
# Exit status: 0 done; 2 usage; 3 not possible on this machine (not root, no loop devices, no
# mkfs.xfs, kernel without XFS: callers skip with the printed reason); 1 any other failure.
# The loop device uses direct I/O when the backing filesystem allows it, so file data is cached
# once (by XFS), not a second time as the image file's pages.
set -uo pipefail

IMAGE_NAME=xfs.img
MOUNT_NAME=mnt

die() { # status message
  echo "scratch-fs: $2" >&2
  exit "$1"
}

usage() {
  echo "usage: scripts/scratch-fs.sh mount DIR [SIZE] | umount DIR | check" >&2
  exit 2
}

# Everything a loop XFS needs, checked before anything is created; exit 3 with the reason.
require_loop_xfs() {
  [[ "$(id -u)" -eq 0 ]] || die 3 "loop devices need root (running as uid $(id -u))"
  command -v losetup >/dev/null 2>&1 || die 3 "losetup not found (util-linux)"
  command -v mkfs.xfs >/dev/null 2>&1 || die 3 "mkfs.xfs not found (Debian package xfsprogs)"
  if [[ ! -e /dev/loop-control ]] && ! compgen -G '/dev/loop[0-9]*' >/dev/null; then
    die 3 "no loop devices: /dev/loop-control is missing (container without loop access?)"
  fi
  if ! grep -qw xfs /proc/filesystems 2>/dev/null; then
    modprobe xfs >/dev/null 2>&1 || true
    grep -qw xfs /proc/filesystems 2>/dev/null || die 3 "the kernel has no XFS support (xfs not in /proc/filesystems, modprobe xfs failed)"
  fi
}

# Loop devices backed by IMAGE (several if an earlier run was interrupted between steps).
loop_devices_of() {
  losetup --noheadings --output NAME --associated "$1" 2>/dev/null || true
}

do_umount() {
  local dir="$1" mnt="$1/$MOUNT_NAME" image="$1/$IMAGE_NAME" tries
  if mountpoint -q "$mnt" 2>/dev/null; then
    # A process that was just killed may still hold a file open for a moment.
    for tries in 1 2 3 4 5 6 7 8 9 10; do
      umount "$mnt" 2>/dev/null && break
      sleep 0.3
    done
    if mountpoint -q "$mnt" 2>/dev/null; then
      echo "scratch-fs: $mnt is busy; detaching it lazily (it goes away when its last user exits)" >&2
      umount --lazy "$mnt" || die 1 "cannot unmount $mnt"
    fi
  fi
  local dev
  for dev in $(loop_devices_of "$image"); do
    # A lazily unmounted device is still in use: -d then only marks it for detaching on release.
    losetup --detach "$dev" 2>/dev/null || echo "scratch-fs: could not detach $dev (still in use?)" >&2
  done
  rm -f "$image"
  [[ -d "$mnt" ]] && rmdir "$mnt" 2>/dev/null
  [[ -d "$dir" ]] && rmdir "$dir" 2>/dev/null
  return 0
}

do_mount() {
  local dir="$1" size="${2:-8G}"
  local mnt="$dir/$MOUNT_NAME" image="$dir/$IMAGE_NAME" dev=""
  require_loop_xfs
  [[ "$size" =~ ^[0-9]+[KMGT]?$ ]] || die 2 "bad size '$size' (e.g. 512M, 8G)"
  mkdir -p "$dir" || die 1 "cannot create $dir"
  if mountpoint -q "$mnt" 2>/dev/null; then die 1 "$mnt is already mounted (run: scripts/scratch-fs.sh umount $dir)"; fi
  # From here on a failure leaves nothing behind.
  trap 'do_umount "$dir" >/dev/null 2>&1' EXIT
  truncate --size "$size" "$image" || die 1 "cannot create the sparse image $image"
  # mkfs.xfs 6.1 refuses filesystems below 300 MiB.
  local out
  out="$(mkfs.xfs -q -f -m reflink=1 "$image" 2>&1)" || die 1 "mkfs.xfs -m reflink=1 failed: ${out%%$'\n'*}"
  dev="$(losetup --find --show --direct-io=on "$image" 2>/dev/null)" || dev=""
  if [[ -z "$dev" ]]; then
    out="$(losetup --find --show "$image" 2>&1)" || die 3 "cannot attach a loop device: ${out##*$'\n'}"
    dev="$out"
  fi
  mkdir -p "$mnt" || die 1 "cannot create $mnt"
  out="$(mount -t xfs "$dev" "$mnt" 2>&1)" || die 3 "cannot mount the XFS image ($dev): ${out##*$'\n'}"
  # Writable by the caller's tests and benchmarks as they are by the temp dir.
  chmod 1777 "$mnt"
  trap - EXIT
  echo "$mnt"
}

case "${1:-}" in
  mount)
    [[ $# -ge 2 && $# -le 3 ]] || usage
    do_mount "$2" "${3:-}"
    ;;
  umount | unmount)
    [[ $# -eq 2 ]] || usage
    do_umount "$2"
    ;;
  check)
    [[ $# -eq 1 ]] || usage
    require_loop_xfs
    probe="$(mktemp -d "${TMPDIR:-/tmp}/scratch-fs-check.XXXXXX")" || die 1 "cannot create a temp dir"
    bash "$0" mount "$probe" 320M >/dev/null
    status=$?
    do_umount "$probe"
    [[ $status -eq 0 ]] || exit "$status"
    echo "scratch-fs: a loop XFS with reflinks can be made here"
    ;;
  *) usage ;;
esac
