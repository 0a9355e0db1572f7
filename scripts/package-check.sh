#!/usr/bin/env bash
# Proves the npm tarball installs and works on a machine with no compiler:
#
#   scripts/package-check.sh [--no-prebuild] [--no-arm64] [--no-tsc] [--keep]
#       1. builds the prebuilds (scripts/prebuild.sh) unless --no-prebuild
#       2. runs the addon round trip (signature -> delta -> patch) on each prebuild; the arm64
#          one under qemu with Debian's arm64 node (scripts/arm64-node.sh) unless --no-arm64
#       3. `npm pack` (whose prepare script runs tsc and the CLI bundle; --no-tsc packs the dist/ already built,
#          for runs beside tests that read dist/), then checks the tarball carries prebuilds,
#          compiled JS + .d.ts, bin/, native sources and binding.gyp
#       4. installs the tarball into an empty project with CC=/bin/false CXX=/bin/false, and
#          checks `npx deltasync --version`, a CLI signature/delta/patch round trip and
#          `import { signature } from 'deltasync'`
#       5. removes the prebuilds from that installed copy and checks the import then fails
#          with the plain "no usable native addon ... Fix: ..." message (code ERR_NO_ADDON)
#
#   scripts/package-check.sh --addon FILE [--node CMD]
#       only the addon round trip, against one .node file (e.g. the cmake-js build:
#       build-cmake/build/Release/deltasync.node); CMD runs it (default: node; for an arm64
#       file: --node "scripts/arm64-node.sh")
#
# Exits non-zero with a "package-check: FAIL: ..." line on the first failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

fail() { echo "package-check: FAIL: $*" >&2; exit 1; }
step() { echo "package-check: $*"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/deltasync-package-check.XXXXXX")
keep=0
cleanup() { if [[ $keep -eq 0 ]]; then rm -rf "$work"; else echo "package-check: kept $work"; fi; }
trap cleanup EXIT

# The addon round trip, in CommonJS with nothing but the addon, so that it also runs under the
# arm64 node (Debian 12's 18.x). Expected hashes are published vectors: MD4 from RFC 1320;
# XXH3-128 and BLAKE2b-256 as printed by Debian's `xxhsum -H2` and `b2sum -l 256`.
write_smoke() {
  cat >"$work/addon-smoke.cjs" <<'EOF'
'use strict';
const path = require('path');
const file = process.argv[2];
const addon = require(path.resolve(file));

function check(ok, what) {
  if (!ok) { console.error(`addon-smoke: FAIL: ${what} (${file}, ${process.arch})`); process.exit(1); }
}

// Deterministic pseudo-random bytes (xorshift32): the data only has to be incompressible.
function bytes(n, seed) {
  let x = seed >>> 0 || 1;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

const vectors = [
  ['md4', Buffer.from('abc'), 'a448017aaf21d8525fc10ae87aa6729d'],
  ['blake2b', Buffer.from('abc'), 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319'],
  ['xxh3', Buffer.from('abc'), '06b05ab6733a618578af5f94892f3950'],
  ['xxh3', Buffer.alloc(1000), '3fb94aea6d09b97224c1ea6074dd588c'],
];
const levels = ['scalar', 'sse41', 'avx2', 'avx512', 'neon'].filter((l) => addon.setSimdLevel(l));
check(levels.includes('scalar'), 'scalar level unavailable');
for (const level of levels) {
  addon.setSimdLevel(level);
  for (const [kind, data, hex] of vectors) {
    check(addon.hash(kind, data).toString('hex') === hex, `${kind} of ${data.length} bytes at ${level}`);
  }
}
addon.setSimdLevel(addon.simdDetected());

const blockLen = 2048;
const basis = bytes(256 * 1024 + 123, 1);
const target = Buffer.concat([
  basis.subarray(0, 50000), bytes(3000, 2), basis.subarray(60000, 200000),
  basis.subarray(0, 10000), bytes(777, 3), basis.subarray(200000),
]);
const fromBasis = 50000 + 140000 + 10000 + (basis.length - 200000);

async function roundTrip(rolling, strong, strongLen) {
  const params = { blockLen, rolling, strong, strongLen };
  const builder = new addon.SignatureBuilder(params);
  const entries = [];
  for (let off = 0, i = 0; off < basis.length; off += 65543, i++) {
    const chunk = basis.subarray(off, off + 65543);
    entries.push(i % 2 ? builder.updateSync(chunk) : await builder.update(chunk));
  }
  entries.push(builder.final());
  const blocks = Buffer.concat(entries);
  const blockCount = Math.ceil(basis.length / blockLen);
  const lastBlockLen = basis.length - (blockCount - 1) * blockLen;
  check(blocks.length === blockCount * (addon.weakWidth(rolling) + strongLen), `${rolling}/${strong} signature size`);

  const matcher = new addon.Matcher({ ...params, blocks, blockCount, lastBlockLen });
  const results = [];
  for (let off = 0; off < target.length; off += 50021) {
    const chunk = target.subarray(off, off + 50021);
    results.push({ ...(await matcher.update(chunk)), chunk });
  }
  results.push(await matcher.final());

  const out = [];
  let copied = 0;
  for (const { ops, literals, chunk } of results) {
    let lit = 0;
    for (let i = 0; i < ops.length; i += 3) {
      if (ops[i] === 0) {
        check(ops[i + 1] + ops[i + 2] <= basis.length, 'copy beyond the basis');
        out.push(basis.subarray(ops[i + 1], ops[i + 1] + ops[i + 2]));
        copied += ops[i + 2];
      } else if (ops[i] === 2) {
        // Literal bytes still in the chunk given to update().
        check(chunk !== undefined && ops[i + 1] + ops[i + 2] <= chunk.length, 'input literal outside its chunk');
        out.push(chunk.subarray(ops[i + 1], ops[i + 1] + ops[i + 2]));
      } else {
        check(ops[i] === 1, `unknown op kind ${ops[i]}`);
        out.push(literals.subarray(lit, lit + ops[i + 1]));
        lit += ops[i + 1];
      }
    }
    check(lit === literals.length, 'literal bytes left over');
  }
  check(Buffer.concat(out).equals(target), `${rolling}/${strong} patched output differs from the new data`);
  // Each of the 3 edits may cost the blocks it touches; everything else must be copied.
  check(copied >= fromBasis - 6 * blockLen, `${rolling}/${strong} copied only ${copied} of ${fromBasis} bytes`);
  return copied;
}

(async () => {
  const runs = [['ds64', 'xxh3', 16], ['rollsum', 'md4', 8], ['rabinkarp', 'blake2b', 32]];
  const copied = [];
  for (const [rolling, strong, len] of runs) copied.push(await roundTrip(rolling, strong, len));
  console.log(`addon-smoke: ok ${process.arch} node ${process.version} simd ${levels.join(',')} ` +
    `copied ${copied.join('/')} of ${target.length} bytes`);
})().catch((err) => check(false, err && err.stack ? err.stack : String(err)));
EOF
}

# --- mode: one addon file -----------------------------------------------------------------
if [[ "${1:-}" == "--addon" ]]; then
  addon_file=${2:?usage: package-check.sh --addon FILE [--node CMD]}
  node_cmd=node
  [[ "${3:-}" == "--node" ]] && node_cmd=${4:?--node needs a command}
  [[ -f "$addon_file" ]] || fail "no addon at $addon_file"
  write_smoke
  # shellcheck disable=SC2086 # CMD may carry arguments
  $node_cmd "$work/addon-smoke.cjs" "$addon_file" || fail "addon round trip failed for $addon_file"
  exit 0
fi

do_prebuild=1
do_arm64=1
pack_scripts=()
for arg in "$@"; do
  case "$arg" in
    --no-prebuild) do_prebuild=0 ;;
    --no-arm64) do_arm64=0 ;;
    --keep) keep=1 ;;
    --no-tsc) pack_scripts=(--ignore-scripts) ;;
    *) fail "unknown option $arg (see the header of scripts/package-check.sh)" ;;
  esac
done

# --- 1. prebuilds ---------------------------------------------------------------------------
arches=(x64)
[[ $do_arm64 -eq 1 ]] && arches+=(arm64)
if [[ $do_prebuild -eq 1 ]]; then
  step "building prebuilds: ${arches[*]}"
  bash scripts/prebuild.sh "${arches[@]}" >"$work/prebuild.log" 2>&1 ||
    { tail -n 30 "$work/prebuild.log" >&2; fail "scripts/prebuild.sh failed (log above)"; }
fi
for arch in "${arches[@]}"; do
  [[ -f prebuilds/linux-$arch/deltasync.glibc.node ]] ||
    fail "prebuilds/linux-$arch/deltasync.glibc.node is missing (run scripts/prebuild.sh)"
done

# --- 2. the prebuilds themselves ------------------------------------------------------------
write_smoke
step "x64 prebuild: $(file -b prebuilds/linux-x64/deltasync.glibc.node | cut -d, -f1-2)"
node "$work/addon-smoke.cjs" prebuilds/linux-x64/deltasync.glibc.node || fail "x64 prebuild round trip"
if [[ $do_arm64 -eq 1 ]]; then
  arm64_file=prebuilds/linux-arm64/deltasync.glibc.node
  file -b "$arm64_file" | grep -q 'ARM aarch64' || fail "$arm64_file is not an aarch64 binary: $(file -b "$arm64_file")"
  step "arm64 prebuild: $(file -b "$arm64_file" | cut -d, -f1-2)"
  bash scripts/arm64-node.sh setup >"$work/arm64-node.log" 2>&1 ||
    { tail -n 20 "$work/arm64-node.log" >&2; fail "could not set up an arm64 node (scripts/arm64-node.sh setup)"; }
  bash scripts/arm64-node.sh "$work/addon-smoke.cjs" "$arm64_file" || fail "arm64 prebuild round trip under qemu"
  # node-gyp-build, as the installed package uses it, must pick the arm64 prebuild there.
  picked=$(PREBUILDS_ONLY=1 bash scripts/arm64-node.sh -p "require('./node_modules/node-gyp-build').path('.')") ||
    fail "node-gyp-build found no prebuild under arm64"
  [[ "$picked" == "$root/$arm64_file" ]] || fail "node-gyp-build picked $picked under arm64"
fi

# --- 3. the tarball -------------------------------------------------------------------------
if [[ ${#pack_scripts[@]} -gt 0 ]]; then
  [[ -f dist/lib/index.js && -f dist/bundle/main.cjs ]] || fail "--no-tsc: dist/ is not built (npm run build:ts)"
  step "npm pack (dist/ as built)"
else
  step "npm pack (runs prepare: tsc and the CLI bundle)"
fi
npm pack "${pack_scripts[@]}" --pack-destination "$work" --json >"$work/pack.json" 2>"$work/pack.log" ||
  { tail -n 30 "$work/pack.log" >&2; fail "npm pack failed (log above)"; }
tarball=$(node -p "require('path').join(process.argv[1], require(process.argv[2])[0].filename)" "$work" "$work/pack.json")
[[ -f "$tarball" ]] || fail "npm pack wrote no tarball"
tar -tzf "$tarball" | sed 's|^package/||' | sort >"$work/contents.txt"
required=(package.json bin/deltasync.js binding.gyp dist/lib/index.js dist/lib/index.d.ts
  dist/lib/native.js dist/lib/cli/main.js dist/bundle/main.cjs native/addon.cc native/cpu.h
  prebuilds/linux-x64/deltasync.glibc.node)
[[ $do_arm64 -eq 1 ]] && required+=(prebuilds/linux-arm64/deltasync.glibc.node)
for f in "${required[@]}"; do
  grep -qxF "$f" "$work/contents.txt" || fail "the tarball lacks $f"
done
# Every native source binding.gyp may compile must ship, or a fallback build breaks.
while IFS= read -r src; do
  grep -qxF "$src" "$work/contents.txt" || fail "the tarball lacks $src (needed by source builds)"
done < <(find native -name '*.cc' -o -name '*.h' | grep -v '^native/test/' | sort)
for js in $(grep -E '^dist/lib/.*\.js$' "$work/contents.txt"); do
  grep -qxF "${js%.js}.d.ts" "$work/contents.txt" || fail "the tarball has $js without ${js%.js}.d.ts"
done
# The V8 code cache (bin/deltasync.js) is made for one file's inode and mtime: useless elsewhere.
if grep -E '^(lib/.*\.ts|test/|node_modules/|build/|\.ci/|dist/bundle/.*\.v8cache)' "$work/contents.txt" | grep -v '\.d\.ts$' >"$work/stray.txt"; then
  fail "the tarball carries files a user does not need: $(head -n 5 "$work/stray.txt" | tr '\n' ' ')"
fi
size=$(stat -c %s "$tarball")
unpacked=$(node -p "require(process.argv[1])[0].unpackedSize" "$work/pack.json")
step "tarball $(basename "$tarball"): $size bytes packed, $unpacked unpacked, $(wc -l <"$work/contents.txt") files"

# --- 4. fresh install with no compiler ------------------------------------------------------
app="$work/app"
mkdir -p "$app"
(cd "$app" && npm init -y >/dev/null 2>&1) || fail "npm init in $app"
step "installing the tarball into an empty project with CC=/bin/false CXX=/bin/false"
# A fresh cache directory would also do, but the dependencies come from the registry either way;
# what matters is that nothing can be compiled.
(cd "$app" && CC=/bin/false CXX=/bin/false LINK=/bin/false npm install --no-audit --no-fund \
  --prefer-offline --foreground-scripts "$tarball" >"$work/install.log" 2>&1) ||
  { tail -n 40 "$work/install.log" >&2; fail "installing the tarball without a compiler failed (log above)"; }
installed="$app/node_modules/deltasync"
[[ -d "$installed/build" ]] && fail "the install compiled the addon ($installed/build exists) instead of using the prebuild"

version=$(node -p "require(process.argv[1]).version" "$root/package.json")
got=$(cd "$app" && npx --no-install deltasync --version 2>"$work/version.err") ||
  fail "npx deltasync --version failed: $got $(cat "$work/version.err")"
[[ "$got" == *"$version"* ]] || fail "npx deltasync --version printed '$got', expected version $version"
step "npx deltasync --version: $got"

# The installed CLI end to end (this loads the addon; --version alone does not).
head -c 300000 /dev/urandom >"$app/old.bin"
{ head -c 100000 "$app/old.bin"; head -c 5000 /dev/urandom; tail -c +100001 "$app/old.bin"; } >"$app/new.bin"
(cd "$app" && npx --no-install deltasync signature old.bin old.sig &&
  npx --no-install deltasync delta old.sig new.bin new.delta &&
  npx --no-install deltasync patch old.bin new.delta out.bin) >"$work/cli.log" 2>&1 ||
  { cat "$work/cli.log" >&2; fail "the installed CLI's signature/delta/patch failed"; }
cmp -s "$app/new.bin" "$app/out.bin" || fail "the installed CLI's patch output differs from the new file"
delta_size=$(stat -c %s "$app/new.delta")
[[ $delta_size -lt 60000 ]] || fail "the installed CLI's delta is $delta_size bytes for a 5000-byte change"
step "installed CLI: signature/delta/patch round trip ok (delta $delta_size bytes)"

api_script="
import { signature, delta, patch } from 'deltasync';
const basis = Buffer.alloc(100000, 7);
for (let i = 0; i < basis.length; i++) basis[i] = (i * 2654435761) >>> 24;
const sig = await signature(basis);
if (!(sig.blockCount > 0) || sig.blocks.length !== sig.blockCount * sig.entrySize) throw new Error('bad signature');
const changed = Buffer.concat([basis.subarray(0, 40000), Buffer.from('inserted'), basis.subarray(40000)]);
const { delta: d } = await delta(sig, changed);
const { output } = await patch(basis, d);
if (!output.equals(changed)) throw new Error('patch(delta(signature)) differs');
console.log('api ok: ' + sig.blockCount + ' blocks of ' + sig.blockLen + ', delta ' + d.length + ' bytes');
"
got=$(cd "$app" && node --input-type=module -e "$api_script" 2>&1) || fail "import { signature } from 'deltasync' failed: $got"
step "installed API: $got"

# --- 5. no prebuild, no compiler: the error must say so ----------------------------------------
rm -rf "$installed/prebuilds"
set +e
got=$(cd "$app" && node --input-type=module -e "import { signature } from 'deltasync'; await signature(Buffer.alloc(10));" 2>&1)
status=$?
set -e
[[ $status -ne 0 ]] || fail "importing deltasync without any addon succeeded?"
for want in "ERR_NO_ADDON" "no usable native addon for linux-$(node -p process.arch)" "no prebuilt binary loaded" "Fix: install a C++17 compiler"; do
  [[ "$got" == *"$want"* ]] || fail "the no-addon error lacks '$want'; it was: $got"
done
step "no prebuild, import: $(printf '%s\n' "$got" | grep -m1 'no usable native addon')"

# --- 6. the same at install time: a tarball without prebuilds, and no compiler ---------------
# npm shows an install script's output only when it fails; the last line must be ours, not
# node-gyp's alone. (An install script that succeeds anyway defers to the import error above.)
mkdir -p "$work/bare"
tar -xzf "$tarball" -C "$work/bare"
rm -rf "$work/bare/package/prebuilds"
tar -czf "$work/deltasync-no-prebuilds.tgz" -C "$work/bare" package
app2="$work/app-no-prebuilds"
mkdir -p "$app2"
(cd "$app2" && npm init -y >/dev/null 2>&1) || fail "npm init in $app2"
set +e
(cd "$app2" && CC=/bin/false CXX=/bin/false LINK=/bin/false npm install --no-audit --no-fund \
  --prefer-offline "$work/deltasync-no-prebuilds.tgz" >"$work/install-no-prebuilds.log" 2>&1)
status=$?
set -e
if [[ $status -ne 0 ]]; then
  if ! grep -q 'Fix: install a C++17 compiler' "$work/install-no-prebuilds.log"; then
    tail -n 12 "$work/install-no-prebuilds.log" >&2
    fail "npm install with no prebuild and no compiler ends in node-gyp's output (above) without a plain 'deltasync: ... Fix: install a C++17 compiler ...' line (docs/BUILDING.md has the install script that prints one)"
  fi
  step "no prebuild, install: $(grep -m1 -o 'deltasync: no prebuilt.*' "$work/install-no-prebuilds.log" || grep -m1 'Fix: install' "$work/install-no-prebuilds.log")"
else
  got=$(cd "$app2" && node --input-type=module -e "import 'deltasync';" 2>&1) &&
    fail "install without prebuild or compiler succeeded and deltasync imports: nothing to load?"
  [[ "$got" == *"Fix: install a C++17 compiler"* ]] || fail "install without prebuild or compiler: the import error lacks the fix: $got"
  step "no prebuild, install succeeded; import fails with the plain message"
fi

step "OK"
