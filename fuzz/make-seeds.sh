#!/bin/sh
# Regenerates the committed seed corpus (fuzz/corpus/*) from real files made by our CLI and by
# librsync's `rdiff`: small valid signatures and deltas of both formats, over the 4 KiB basis
# the delta harnesses use (fuzz/delta_harness.h, basis()). Needs `rdiff` and a built CLI
# (`npm run build:ts`). Delta seeds start with the harness's control byte (the chunking).
#
#   fuzz/make-seeds.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
ds="node $root/bin/deltasync.js"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The harness basis: byte i = (7 i^2 + 13 i + 5) mod 251, 4096 bytes.
node -e '
const b = Buffer.alloc(4096);
for (let i = 0; i < b.length; i++) b[i] = Number((7n * BigInt(i) ** 2n + 13n * BigInt(i) + 5n) % 251n);
const fs = require("fs");
const dir = process.argv[1];
fs.writeFileSync(dir + "/basis", b);
const text = Buffer.from("new bytes that are not in the basis, ".repeat(3));
fs.writeFileSync(dir + "/insert", Buffer.concat([b.subarray(0, 1500), text, b.subarray(1500)]));
fs.writeFileSync(dir + "/edits", Buffer.concat([text.subarray(0, 20), b.subarray(300, 2000), b.subarray(2600), b.subarray(0, 700)]));
fs.writeFileSync(dir + "/twice", Buffer.concat([b.subarray(2048), b, b.subarray(100, 1100)]));
fs.writeFileSync(dir + "/short", b.subarray(1000, 1130));
fs.writeFileSync(dir + "/empty", Buffer.alloc(0));
' "$tmp"

dd_seed() { # control-byte FILE -> corpus file
  printf "\\$(printf '%03o' "$1")" > "$3"
  cat "$2" >> "$3"
}

for name in fuzz_delta_deltasync fuzz_delta_rdiff fuzz_signature; do
  rm -rf "${here:?}/corpus/$name"
  mkdir -p "$here/corpus/$name"
done
sig_dir="$here/corpus/fuzz_signature"
dsd_dir="$here/corpus/fuzz_delta_deltasync"
rdd_dir="$here/corpus/fuzz_delta_rdiff"

# Signatures: ours in both formats and several settings, and rdiff's own.
$ds signature "$tmp/basis" "$sig_dir/ds-default"
$ds signature -b 256 -S 8 "$tmp/basis" "$sig_dir/ds-b256-s8"
$ds signature -b 512 -H md4 -R rollsum "$tmp/basis" "$sig_dir/ds-md4-rollsum"
$ds signature -b 200 -H blake2 -R rabinkarp -S 5 "$tmp/basis" "$sig_dir/ds-blake2-rk"
$ds signature "$tmp/empty" "$sig_dir/ds-empty"
$ds signature -b 64 "$tmp/short" "$sig_dir/ds-short"
$ds signature --format rdiff -b 256 "$tmp/basis" "$sig_dir/rs-ours-b256"
rdiff signature "$tmp/basis" "$sig_dir/rs-default"
rdiff signature -b 512 -S 8 -H md4 -R rollsum "$tmp/basis" "$sig_dir/rs-md4-rollsum"
rdiff signature -b 300 -S 12 -H blake2 -R rollsum "$tmp/basis" "$sig_dir/rs-blake2-rollsum"
rdiff signature -b 128 -H md4 -R rabinkarp "$tmp/short" "$sig_dir/rs-md4-rk-short"
rdiff signature "$tmp/empty" "$sig_dir/rs-empty"

# deltasync deltas (a file input records the result size; stdin does not).
$ds signature -b 256 "$tmp/basis" "$tmp/ds.sig"
n=0
for new in insert edits twice short empty; do
  $ds delta "$tmp/ds.sig" "$tmp/$new" "$tmp/ds-$new.delta"
  dd_seed 0 "$tmp/ds-$new.delta" "$dsd_dir/$new"
  n=$((n + 1))
  dd_seed $((n * 37)) "$tmp/ds-$new.delta" "$dsd_dir/$new-chunked"
done
$ds delta "$tmp/ds.sig" - "$tmp/ds-stdin.delta" < "$tmp/edits"
dd_seed 3 "$tmp/ds-stdin.delta" "$dsd_dir/edits-unknown-size"

# rdiff deltas: rdiff's own and ours.
rdiff signature -b 256 "$tmp/basis" "$tmp/rs.sig"
n=0
for new in insert edits twice short empty; do
  rdiff delta "$tmp/rs.sig" "$tmp/$new" "$tmp/rs-$new.delta"
  dd_seed 0 "$tmp/rs-$new.delta" "$rdd_dir/rdiff-$new"
  $ds delta "$tmp/rs.sig" "$tmp/$new" "$tmp/our-$new.delta"
  n=$((n + 1))
  dd_seed $((n * 41)) "$tmp/our-$new.delta" "$rdd_dir/ours-$new-chunked"
done

ls -l "$here"/corpus/* | awk 'NF > 2 { print }' | wc -l | xargs echo "seed files:"
