#!/usr/bin/env node
// Micro benchmark of the native core through the addon, per operation and per SIMD level:
// signature (weak + XXH3 strong, all cores), delta on unrelated data (the batched search) and on
// similar data (100 scattered 1 KiB overwrites), for each rolling checksum. In memory, 8 MiB
// chunks as the streaming API feeds them; best of --runs. Each cell shows wall-clock GB/s and,
// after the slash, GB per CPU-second of the whole process (user + system, all threads): on a
// shared machine the second is the steadier figure, and for the single-threaded delta it is the
// per-core speed.
//
//   node bench/native-micro.mjs [--size MiB] [--block BYTES] [--runs N] [--levels scalar,avx2,...]
//                               [--kinds ds64,rollsum,rabinkarp]
//   node bench/native-micro.mjs --bandwidth [--size MiB] [--runs N]
//
// --bandwidth: memory-bandwidth probe instead: each of 1, then 2 threads copies its own
// buffers (larger than the caches) back and forth; the GB/s of bytes copied, and the ratio.
// A 2-core signature (page-cache copy + hashing) cannot scale past that ratio.
//
// Prints a markdown table of GB/s (10^9 bytes per second). Not a test: numbers only.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const native = createRequire(import.meta.url)('node-gyp-build')(root);

function parseArgs(argv) {
  const opts = { size: 256, block: 16384, runs: 3, levels: null, kinds: ['ds64', 'rollsum', 'rabinkarp'], bandwidth: false };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--size': opts.size = Number(value()); break;
      case '--block': opts.block = Number(value()); break;
      case '--runs': opts.runs = Number(value()); break;
      case '--levels': opts.levels = value().split(','); break;
      case '--kinds': opts.kinds = value().split(','); break;
      case '--bandwidth': opts.bandwidth = true; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (!(opts.size > 0 && opts.block > 0 && opts.runs > 0)) throw new Error('--size, --block and --runs must be positive');
  return opts;
}

/** xorshift32 bytes: fast, deterministic. */
function randomBytes(len, seed) {
  const out = Buffer.allocUnsafe(len);
  const words = new Uint32Array(out.buffer, out.byteOffset, len >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  for (let i = words.length * 4; i < len; i++) out[i] = i & 0xff;
  return out;
}

const CHUNK = 8 << 20;

async function signature(params, data) {
  const sb = new native.SignatureBuilder(params);
  const parts = [];
  for (let o = 0; o < data.length; o += CHUNK) parts.push(await sb.update(data.subarray(o, o + CHUNK)));
  parts.push(sb.final());
  return Buffer.concat(parts);
}

async function delta(params, entries, basisLen, data) {
  const entry = native.weakWidth(params.rolling) + params.strongLen;
  const blockCount = entries.length / entry;
  const lastBlockLen = basisLen - (blockCount - 1) * params.blockLen;
  const m = new native.Matcher({ ...params, blocks: entries, blockCount, lastBlockLen });
  for (let o = 0; o < data.length; o += CHUNK) await m.update(data.subarray(o, o + CHUNK));
  await m.final();
}

async function best(runs, bytes, fn) {
  let wall = Infinity;
  let cpu = Infinity;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    const c = process.cpuUsage();
    await fn();
    const used = process.cpuUsage(c);
    wall = Math.min(wall, (performance.now() - t) / 1000);
    cpu = Math.min(cpu, (used.user + used.system) / 1e6);
  }
  return `${(bytes / wall / 1e9).toFixed(2)} / ${(bytes / cpu / 1e9).toFixed(2)}`;
}

/** Copy rate of `threads` workers, each moving `bytes` per pass between two private buffers. */
function copyRate(threads, bytes, passes) {
  const body = `
    const { parentPort, workerData } = require('node:worker_threads');
    const a = Buffer.alloc(workerData.bytes, 1), b = Buffer.alloc(workerData.bytes, 2);
    a.copy(b); b.copy(a); // touch every page before timing
    parentPort.postMessage('ready');
    parentPort.once('message', () => {
      for (let i = 0; i < workerData.passes; i++) (i & 1 ? b : a).copy(i & 1 ? a : b);
      parentPort.postMessage('done');
    });`;
  const workers = Array.from({ length: threads }, () => new Worker(body, { eval: true, workerData: { bytes, passes } }));
  const when = (w, msg) => new Promise((res, rej) => { w.once('message', (m) => (m === msg ? res() : rej(new Error(String(m))))); w.once('error', rej); });
  return (async () => {
    await Promise.all(workers.map((w) => when(w, 'ready')));
    const t = performance.now();
    const done = Promise.all(workers.map((w) => when(w, 'done')));
    for (const w of workers) w.postMessage('go');
    await done;
    const seconds = (performance.now() - t) / 1000;
    await Promise.all(workers.map((w) => w.terminate()));
    return (threads * bytes * passes) / seconds / 1e9;
  })();
}

const opts = parseArgs(process.argv.slice(2));
if (opts.bandwidth) {
  const bytes = Math.max(64, opts.size) << 20;
  const rates = {};
  for (const threads of [1, 2]) {
    let bestRate = 0;
    for (let r = 0; r < opts.runs; r++) bestRate = Math.max(bestRate, await copyRate(threads, bytes, 8));
    rates[threads] = bestRate;
  }
  console.log(`memory copy, ${bytes >> 20} MiB per thread, best of ${opts.runs} (bytes copied; DRAM traffic is 2-3x that):`);
  console.log(`| threads | GB/s copied |\n|---:|---:|\n| 1 | ${rates[1].toFixed(2)} |\n| 2 | ${rates[2].toFixed(2)} (${(rates[2] / rates[1]).toFixed(2)}x) |`);
  process.exit(0);
}
const size = opts.size << 20;
const basis = randomBytes(size, 1);
const unrelated = randomBytes(size, 2);
const similar = Buffer.from(basis);
let x = 12345;
for (let e = 0; e < 100; e++) {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  const at = x % (size - 1024);
  randomBytes(1024, x).copy(similar, at);
}

const detected = native.simdLevel();
const levels = (opts.levels ?? ['scalar', 'sse41', 'avx2', 'avx512', 'neon']).filter((l) => native.setSimdLevel(l));
native.setSimdLevel(detected);
console.log(`native-micro: ${opts.size} MiB, block ${opts.block}, best of ${opts.runs}; detected ${native.simdDetected()}\n`);
console.log(`| operation (GB/s wall / per CPU-second) | ${levels.join(' | ')} |`);
console.log(`|---|${levels.map(() => '---:').join('|')}|`);
for (const kind of opts.kinds) {
  const params = { blockLen: opts.block, rolling: kind, strong: 'xxh3', strongLen: 16 };
  const rows = { signature: [], unrelated: [], similar: [] };
  for (const level of levels) {
    native.setSimdLevel(level);
    const entries = await signature(params, basis);
    rows.signature.push(await best(opts.runs, size, () => signature(params, basis)));
    rows.unrelated.push(await best(opts.runs, size, () => delta(params, entries, size, unrelated)));
    rows.similar.push(await best(opts.runs, size, () => delta(params, entries, size, similar)));
  }
  for (const [op, values] of Object.entries(rows)) {
    const name = op === 'signature' ? `signature ${kind}` : `delta ${kind}, ${op} data`;
    console.log(`| ${name} | ${values.join(' | ')} |`);
  }
}
native.setSimdLevel(detected);
