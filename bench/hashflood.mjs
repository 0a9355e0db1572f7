// Hash-flood measurement (issue 6): how much slower is delta against a signature whose blocks
// all share one weak sum than against the normal signature of the same basis?
//
//   node bench/hashflood.mjs [SIZE_MIB=8] [REPEATS=3]
//
// The flooded signature is a real one (random basis) with every weak sum overwritten by the
// weak sum of a zero block; the strong sums are left alone, so no block ever matches. New data:
// zeros (every window's weak sum collides) and random bytes. Uses the native signature builder
// and matcher directly (no TypeScript build needed). Prints a table: median time per case and
// the flooded/normal ratio, plus the matcher's own counters (deterministic: weak hits and
// strong hashes computed, i.e. the work done).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomFillSync } from 'node:crypto';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = require('node-gyp-build')(root);

const sizeMiB = Number(process.argv[2] ?? 8);
const repeats = Number(process.argv[3] ?? 3);
const size = sizeMiB * 1024 * 1024;
const CHUNK = 8 * 1024 * 1024;

/** deltasync's default block length (rsync's rule) for this size. */
function defaultBlockLen(n) {
  const root = Math.floor(Math.sqrt(n) / 8) * 8;
  return Math.min(131072, Math.max(700, root));
}

function buildEntries(params, basis) {
  const b = new native.SignatureBuilder(params);
  const parts = [];
  for (let pos = 0; pos < basis.length; pos += CHUNK) parts.push(b.updateSync(basis.subarray(pos, pos + CHUNK)));
  parts.push(b.final());
  return Buffer.concat(parts);
}

/** The same entries with every weak sum set to a zero block's. */
function flood(params, entries) {
  const width = native.weakWidth(params.rolling);
  const entrySize = width + params.strongLen;
  let weak = native.rollingDigest(params.rolling, Buffer.alloc(params.blockLen));
  const bytes = Buffer.alloc(width);
  for (let i = width - 1; i >= 0; i--) {
    bytes[i] = Number(weak & 0xffn);
    weak >>= 8n;
  }
  const out = Buffer.from(entries);
  for (let pos = 0; pos < out.length; pos += entrySize) bytes.copy(out, pos);
  return out;
}

async function match(params, entries, basisSize, data) {
  const count = entries.length / (native.weakWidth(params.rolling) + params.strongLen);
  const last = basisSize - (count - 1) * params.blockLen;
  const m = new native.Matcher({ ...params, blocks: entries, blockCount: count, lastBlockLen: last });
  const started = process.hrtime.bigint();
  for (let pos = 0; pos < data.length; pos += CHUNK) await m.update(data.subarray(pos, pos + CHUNK));
  await m.final();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms, stats: m.stats() };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const basis = randomFillSync(Buffer.alloc(size));
const inputs = { zeros: Buffer.alloc(size), random: randomFillSync(Buffer.alloc(size)) };
const blockLen = defaultBlockLen(size);
console.log(`size ${sizeMiB} MiB, block ${blockLen}, simd ${native.simdLevel()}, median of ${repeats}`);
console.log('| rolling | strong | input | normal ms | flooded ms | ratio | flooded weak hits | flooded strong hashes |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [rolling, strong] of [['ds64', 'xxh3'], ['rabinkarp', 'blake2b'], ['rollsum', 'md4']]) {
  const params = { blockLen, rolling, strong, strongLen: strong === 'xxh3' ? 16 : 8 };
  const normal = buildEntries(params, basis);
  const flooded = flood(params, normal);
  for (const [name, data] of Object.entries(inputs)) {
    const n = [];
    const f = [];
    let fstats;
    for (let r = 0; r < repeats; r++) {
      n.push((await match(params, normal, size, data)).ms);
      const res = await match(params, flooded, size, data);
      f.push(res.ms);
      fstats = res.stats;
    }
    const ratio = median(f) / median(n);
    console.log(`| ${rolling} | ${strong} | ${name} | ${median(n).toFixed(1)} | ${median(f).toFixed(1)} | ${ratio.toFixed(1)}× | ${fstats.weakHits} | ${fstats.strongCalcs} |`);
  }
}
