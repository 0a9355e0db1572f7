// The native core (rolling sums, batched candidate search, matcher) at two levels:
//  - the standalone core test program (native/test/core_test.cc): every SIMD variant against the
//    scalar one and against direct references, matcher round trips on random edits; built and
//    run here, and cross-built for aarch64 and run under qemu when the cross tools are installed;
//  - through the addon: with each SIMD level this CPU has forced by native.setSimdLevel(), the
//    signature entries and the matcher's ops, literals and counters must be bit-for-bit those of
//    the scalar level, the ops must rebuild the new data, and the weak sums must equal an
//    independent TypeScript implementation of the three rolling checksums.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { run } from './helpers/run.js';
import type { RunResult } from './helpers/run.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native, type RollingKind } from '../lib/native.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD_SH = join(ROOT, 'native', 'test', 'build_core.sh');
const KINDS: RollingKind[] = ['ds64', 'rollsum', 'rabinkarp'];
const LEVELS = ['scalar', 'sse41', 'avx2', 'avx512', 'neon'];

/** xorshift32 stream: deterministic data, so a failure names a reproducible seed. */
function rng(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function randomBytes(len: number, next: () => number, alphabet?: string): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) {
    out[i] = alphabet ? alphabet.charCodeAt(next() % alphabet.length) : next() & 0xff;
  }
  return out;
}

// ---- Reference rolling checksums, written from their definitions (no shared code with C++) ----

/** ds64: s1 = Σ (x + 31), s2 = Σ (n - j)(x_j + 31), both mod 2^32, digest s2·2^32 + s1. */
function ds64Ref(data: Uint8Array): bigint {
  let s1 = 0;
  let s2 = 0;
  for (const x of data) {
    s1 = (s1 + x + 31) >>> 0;
    s2 = (s2 + s1) >>> 0;
  }
  return (BigInt(s2) << 32n) | BigInt(s1);
}

/** librsync rollsum: the same sums, 16 bits each, digest (s2 << 16) | s1. */
function rollsumRef(data: Uint8Array): bigint {
  let s1 = 0;
  let s2 = 0;
  for (const x of data) {
    s1 = (s1 + x + 31) & 0xffff;
    s2 = (s2 + s1) & 0xffff;
  }
  return BigInt(((s2 << 16) | s1) >>> 0);
}

/** librsync RabinKarp: h = h·0x08104225 + x mod 2^32, starting from 1. */
function rabinkarpRef(data: Uint8Array): bigint {
  let h = 1;
  for (const x of data) h = (Math.imul(h, 0x08104225) + x) >>> 0;
  return BigInt(h);
}

const REFERENCE: Record<RollingKind, (d: Uint8Array) => bigint> = {
  ds64: ds64Ref,
  rollsum: rollsumRef,
  rabinkarp: rabinkarpRef,
};

// ---- Driving the addon ----

interface Params {
  blockLen: number;
  rolling: RollingKind;
  strong: 'xxh3';
  strongLen: number;
}

async function signatureEntries(p: Params, basis: Buffer, chunk: number): Promise<Buffer> {
  const sb = new native.SignatureBuilder(p);
  const parts: Buffer[] = [];
  for (let o = 0; o < basis.length; o += chunk) parts.push(await sb.update(basis.subarray(o, o + chunk)));
  parts.push(sb.final());
  return Buffer.concat(parts);
}

interface MatchRun {
  ops: number[];
  literals: Buffer;
  stats: ReturnType<ReturnType<typeof makeMatcher>['stats']>;
}

/** Sparse form of a signature (docs/PROTOCOL.md): entries of every stride-th block and the last, a check per block. */
interface Sparse {
  stride: number;
  checkLen: number;
}

function makeMatcher(p: Params, entries: Buffer, lastBlockLen: number, sparse?: Sparse) {
  const entrySize = native.weakWidth(p.rolling) + p.strongLen;
  const blockCount = entries.length / entrySize;
  if (!sparse) return new native.Matcher({ ...p, blocks: entries, blockCount, lastBlockLen });
  const anchors: Buffer[] = [];
  const checks = Buffer.alloc(blockCount * sparse.checkLen);
  const weak = native.weakWidth(p.rolling);
  for (let b = 0; b < blockCount; b++) {
    const entry = entries.subarray(b * entrySize, (b + 1) * entrySize);
    entry.copy(checks, b * sparse.checkLen, weak, weak + sparse.checkLen);
    if (b % sparse.stride === 0 || b === blockCount - 1) anchors.push(entry);
  }
  return new native.Matcher({
    ...p,
    blocks: Buffer.concat(anchors),
    blockCount,
    lastBlockLen,
    anchorStride: sparse.stride,
    checks,
    checkLen: sparse.checkLen,
  });
}

/** Feeds `data` in the given piece sizes; ops come back in canonical form (merged runs). */
async function runMatcher(p: Params, entries: Buffer, lastBlockLen: number, data: Buffer, pieces: number[], sparse?: Sparse): Promise<MatchRun> {
  const m = makeMatcher(p, entries, lastBlockLen, sparse);
  const ops: number[] = [];
  const literals: Buffer[] = [];
  // Kind 2 (literal bytes referenced in the input chunk) is canonically a plain literal.
  const add = (r: { ops: Float64Array; literals: Buffer }, chunk?: Buffer) => {
    let litPos = 0;
    for (let i = 0; i < r.ops.length; i += 3) {
      let [kind, a, b] = [r.ops[i], r.ops[i + 1], r.ops[i + 2]];
      if (kind === 2) {
        if (!chunk) throw new Error('input-referenced literal without an input chunk');
        literals.push(chunk.subarray(a, a + b));
        [kind, a, b] = [1, b, 0];
      } else if (kind === 1) {
        literals.push(r.literals.subarray(litPos, litPos + a));
        litPos += a;
      }
      const n = ops.length;
      if (kind === 1 && n >= 3 && ops[n - 3] === 1) ops[n - 2] += a;
      else if (kind === 0 && n >= 3 && ops[n - 3] === 0 && ops[n - 2] + ops[n - 1] === a) ops[n - 1] += b;
      else ops.push(kind, a, b);
    }
    expect(litPos).toBe(r.literals.length);
  };
  let pos = 0;
  for (const len of pieces) {
    const chunk = data.subarray(pos, pos + len);
    add(await m.update(chunk), chunk);
    pos += len;
  }
  add(await m.final());
  return { ops, literals: Buffer.concat(literals), stats: m.stats() };
}

function apply(basis: Buffer, run: MatchRun): Buffer {
  const out: Buffer[] = [];
  let lit = 0;
  for (let i = 0; i < run.ops.length; i += 3) {
    const [kind, a, b] = [run.ops[i], run.ops[i + 1], run.ops[i + 2]];
    if (kind === 0) {
      out.push(basis.subarray(a, a + b));
    } else {
      out.push(run.literals.subarray(lit, lit + a));
      lit += a;
    }
  }
  expect(lit).toBe(run.literals.length);
  return Buffer.concat(out);
}

/** An edited copy of the basis: long random inserts (so the batched search runs), deletions,
 * overwrites, a moved range, and one-byte prepend/append. */
function edit(basis: Buffer, next: () => number, alphabet?: string): Buffer {
  let out = basis;
  const edits = 6 + (next() % 8);
  for (let e = 0; e < edits; e++) {
    const at = next() % (out.length + 1);
    switch (next() % 8) {
      case 0:
      case 6:
      case 7:
        out = Buffer.concat([out.subarray(0, at), randomBytes(3000 + (next() % 200_000), next, alphabet), out.subarray(at)]);
        break;
      case 1:
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + (next() % 50_000)))]);
        break;
      case 2: {
        const len = Math.min(out.length - at, next() % 20_000);
        out = Buffer.concat([out.subarray(0, at), randomBytes(len, next, alphabet), out.subarray(at + len)]);
        break;
      }
      case 3: {
        const len = Math.min(out.length - at, next() % 100_000);
        const piece = Buffer.from(out.subarray(at, at + len));
        const rest = Buffer.concat([out.subarray(0, at), out.subarray(at + len)]);
        const to = next() % (rest.length + 1);
        out = Buffer.concat([rest.subarray(0, to), piece, rest.subarray(to)]);
        break;
      }
      case 4:
        out = Buffer.concat([Buffer.from([next() & 0xff]), out]);
        break;
      default:
        out = Buffer.concat([out, Buffer.from([next() & 0xff])]);
    }
  }
  return out;
}

function pieces(total: number, next: () => number): number[] {
  const out: number[] = [];
  for (let left = total; left > 0; ) {
    const len = Math.min(left, next() % 4 === 0 ? next() % 5000 : 1 + (next() % (3 << 20)));
    out.push(len);
    left -= len;
  }
  return out;
}

// ---- Tests ----

describe('native core test program', () => {
  let buildDir: string;
  beforeAll(() => {
    buildDir = mkdtempSync(join(tmpdir(), 'deltasync-core-'));
  });
  afterAll(() => {
    rmSync(buildDir, { recursive: true, force: true });
  });

  async function build(arch: string): Promise<string> {
    const r = await run('sh', [BUILD_SH, arch, buildDir]);
    expect(r.status, `build_core.sh ${arch} failed:\n${r.stderr}`).toBe(0);
    return r.stdout.trim().split('\n').pop()!;
  }

  function expectPassed(r: RunResult, what: string): void {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    expect(r.error, `${what}: ${r.error}`).toBeUndefined();
    expect(r.status, `${what} failed:\n${out.slice(-4000)}`).toBe(0);
    expect(out).toMatch(/ 0 failed/);
  }

  test('every SIMD variant agrees with the scalar one; matcher round trips and reference ops', async () => {
    const program = await build(process.arch === 'arm64' ? 'aarch64' : 'x86_64');
    const r = await run(program, ['all'], { timeout: 300_000 });
    expectPassed(r, 'core_test all');
    // The run must have covered a SIMD variant where the CPU has one.
    const levels = /SIMD levels here:(.*)/.exec(String(r.stdout))?.[1] ?? '';
    if (native.simdDetected() !== 'scalar') expect(levels).toContain(native.simdDetected());
  });

  const haveCross =
    process.arch === 'x64' &&
    spawnSync('aarch64-linux-gnu-g++', ['--version']).status === 0 &&
    spawnSync('qemu-aarch64', ['--version']).status === 0;
  test.skipIf(!haveCross)('aarch64 build under qemu: NEON agrees with scalar, round trips hold', async () => {
    const program = await build('aarch64');
    const r = await run('qemu-aarch64', [program, 'all', '--quick'], { timeout: 300_000 });
    expectPassed(r, 'qemu-aarch64 core_test all');
    expect(String(r.stdout)).toMatch(/SIMD levels here: scalar neon/);
  });
});

describe('addon: copyRows', () => {
  test('copies each row as a per-row copy would, and refuses rows past either end', () => {
    const src = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 7 + 3) & 255));
    const cases: Array<[number, number, number, number, number, number]> = [
      // srcStart, srcStride, dstStart, dstStride, rowLen, count
      [0, 24, 0, 16, 16, 8],
      [8, 24, 0, 16, 16, 8],
      [5, 10, 3, 10, 10, 19],
      [1, 7, 2, 3, 3, 28],
      [0, 0, 0, 4, 4, 5], // one row repeated
      [199, 1, 0, 1, 1, 1],
      [0, 24, 0, 16, 0, 8], // empty rows: nothing copied
      [0, 24, 0, 16, 16, 0],
    ];
    for (const [ss, sst, ds, dst, len, count] of cases) {
      const want = Buffer.alloc(300, 0xee);
      for (let r = 0; r < count; r++) src.copy(want, ds + r * dst, ss + r * sst, ss + r * sst + len);
      const got = Buffer.alloc(300, 0xee);
      native.copyRows(src, ss, sst, got, ds, dst, len, count);
      expect(got.equals(want), JSON.stringify([ss, sst, ds, dst, len, count])).toBe(true);
    }
    const dst = Buffer.alloc(64);
    expect(() => native.copyRows(src, 0, 24, dst, 0, 16, 16, 5)).toThrow(/destination/); // 80 > 64
    expect(() => native.copyRows(src, 190, 1, dst, 0, 1, 11, 1)).toThrow(/source/);
    expect(() => native.copyRows(src, 0, 2 ** 52, dst, 0, 1, 1, 3)).toThrow(/source/);
    expect(() => native.copyRows(src, -1, 1, dst, 0, 1, 1, 1)).toThrow(/srcStart/);
    expect(() => native.copyRows(src, 0.5, 1, dst, 0, 1, 1, 1)).toThrow(/srcStart/);
    expect(() => native.copyRows(src, 0, 1, dst, 0, 1, 1, Number.NaN)).toThrow(/count/);
    expect(() => native.copyRows(src, 0, 1, [] as unknown as Uint8Array, 0, 1, 1, 1)).toThrow(/Uint8Array/);
    expect(dst.equals(Buffer.alloc(64))).toBe(true); // a refused call writes nothing
  });
});

describe('addon: rolling sums', () => {
  test('rollingDigest equals the TypeScript definitions (lengths 0..2100 and large)', () => {
    const next = rng(11);
    const data = randomBytes(300_000, next);
    const lengths = [...Array.from({ length: 2101 }, (_, i) => i), 65_535, 65_536, 100_003, 300_000];
    for (const len of lengths) {
      const start = next() % (data.length - len + 1);
      const window = data.subarray(start, start + len);
      for (const kind of KINDS) {
        expect(native.rollingDigest(kind, window), `${kind} len ${len}`).toBe(REFERENCE[kind](window));
      }
    }
    // All-0xff windows: the largest partial sums the vector code sees.
    const ones = Buffer.alloc(70_000, 0xff);
    for (const kind of KINDS) expect(native.rollingDigest(kind, ones)).toBe(REFERENCE[kind](ones));
  });
});

describe('addon: every SIMD level gives the scalar level\'s results bit for bit', () => {
  const detected = native.simdLevel();
  const supported = LEVELS.filter((l) => {
    const ok = native.setSimdLevel(l);
    return ok;
  });
  native.setSimdLevel(detected);
  afterAll(() => {
    native.setSimdLevel(detected);
  });

  test('the levels this CPU reports include scalar and the detected one', () => {
    expect(supported).toContain('scalar');
    expect(supported).toContain(native.simdDetected());
    expect(() => native.setSimdLevel('mmx')).toThrow(/unknown SIMD level/);
    native.setSimdLevel(detected);
  });

  const cases: { kind: RollingKind; blockLen: number; texture: string; known: boolean; seed: number; sparse?: Sparse }[] = [];
  let seed = 100;
  for (const kind of KINDS) {
    for (const blockLen of [700, 2048, 16_384]) {
      for (const texture of ['random', 'text']) cases.push({ kind, blockLen, texture, known: seed % 2 === 0, seed: seed++ });
    }
    // Sparse signatures: anchors found by the search, the blocks between confirmed by checks.
    cases.push({ kind, blockLen: 2048, texture: 'random', known: true, seed: seed++, sparse: { stride: 8, checkLen: 3 } });
    cases.push({ kind, blockLen: 700, texture: 'text', known: true, seed: seed++, sparse: { stride: 3, checkLen: 2 } });
  }

  test.each(cases)('$kind block $blockLen $texture data, last block known: $known, sparse: $sparse', async ({ kind, blockLen, texture, known, seed, sparse }) => {
    const next = rng(seed);
    const alphabet = texture === 'text' ? 'etaoin shrdlu\n' : undefined;
    const basis = randomBytes(600_000 + (next() % 1_000_000), next, alphabet);
    const data = edit(basis, next, alphabet);
    const p: Params = { blockLen, rolling: kind, strong: 'xxh3', strongLen: 12 };
    const split = pieces(data.length, next);
    const lastBlockLen = known ? basis.length - Math.floor((basis.length - 1) / blockLen) * blockLen : 0;

    native.setSimdLevel('scalar');
    const refEntries = await signatureEntries(p, basis, 1 << 20);
    const ref = await runMatcher(p, refEntries, lastBlockLen, data, split, sparse);
    expect(apply(basis, ref).equals(data), 'scalar round trip').toBe(true);
    for (const level of supported) {
      expect(native.setSimdLevel(level)).toBe(true);
      const entries = await signatureEntries(p, basis, 3 << 20);
      expect(entries.equals(refEntries), `${level} signature entries`).toBe(true);
      const got = await runMatcher(p, entries, lastBlockLen, data, pieces(data.length, next), sparse);
      expect(got.ops, `${level} ops`).toEqual(ref.ops);
      expect(got.literals.equals(ref.literals), `${level} literals`).toBe(true);
      expect(got.stats, `${level} counters`).toEqual(ref.stats);
    }
    native.setSimdLevel(detected);
  });

  test('DELTASYNC_SIMD=scalar forces the scalar level in a new process', () => {
    const script = `process.stdout.write(require('node-gyp-build')(${JSON.stringify(ROOT)}).simdLevel())`;
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, DELTASYNC_SIMD: 'scalar' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('scalar');
  });
});

describe('addon: signatures read from a file descriptor', () => {
  // updateFromFile splits the blocks of each range across cores, each reading its own slice;
  // whatever the range length, slicing and end of file, the entries must be update()'s.
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ds-fdsig-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const params = (blockLen: number, rolling: RollingKind) => ({ blockLen, strongLen: 16, strong: 'xxh3' as const, rolling });

  function reference(p: ReturnType<typeof params>, data: Buffer): Buffer {
    const b = new native.SignatureBuilder(p);
    return Buffer.concat([b.updateSync(data), b.final()]);
  }

  async function fromFile(p: ReturnType<typeof params>, file: string, range: number): Promise<{ entries: Buffer; total: number }> {
    const handle = await open(file, 'r');
    try {
      const b = new native.SignatureBuilder(p);
      const parts: Buffer[] = [];
      let position = 0;
      for (;;) {
        const { entries, bytesRead } = await b.updateFromFile(handle.fd, position, range);
        parts.push(entries);
        position += bytesRead;
        if (bytesRead < range) break;
      }
      parts.push(b.final());
      return { entries: Buffer.concat(parts), total: position };
    } finally {
      await handle.close();
    }
  }

  // Sizes put the end of file in the first slice, the second slice, on a block boundary, and
  // at 0; ranges are block-aligned, unaligned (partial blocks carried across calls) and tiny.
  const cases: { size: number; blockLen: number; range: number; kind: RollingKind }[] = [
    { size: 0, blockLen: 1000, range: 32 << 20, kind: 'ds64' },
    { size: 999, blockLen: 1000, range: 32 << 20, kind: 'ds64' },
    { size: 9_500_001, blockLen: 1000, range: 32_000_000, kind: 'ds64' },
    { size: 21_000_000, blockLen: 1000, range: 32_000_000, kind: 'rollsum' },
    { size: 20_000_000, blockLen: 1000, range: 10_000_000, kind: 'rabinkarp' },
    { size: 20_000_123, blockLen: 4096, range: 9_999_999, kind: 'ds64' },
    { size: 3_000_017, blockLen: 700, range: 1_234, kind: 'ds64' },
    { size: 5_000_000, blockLen: 65_536, range: 100, kind: 'rabinkarp' },
  ];
  test.each(cases)('$size bytes, block $blockLen, range $range, $kind', async ({ size, blockLen, range, kind }) => {
    const data = randomBytes(size, rng(size + blockLen));
    const file = join(dir, `f${size}-${blockLen}`);
    writeFileSync(file, data);
    const p = params(blockLen, kind);
    const got = await fromFile(p, file, range);
    expect(got.total).toBe(size);
    expect(got.entries.equals(reference(p, data))).toBe(true);
  });

  test('any thread count gives the same entries (DELTASYNC_THREADS=1 and 3, in new processes)', async () => {
    const size = 24_000_011;
    const data = randomBytes(size, rng(77));
    const file = join(dir, 'threads');
    writeFileSync(file, data);
    const want = reference(params(1024, 'ds64'), data).toString('hex');
    const script = `
      const native = require('node-gyp-build')(${JSON.stringify(ROOT)});
      const fs = require('node:fs');
      (async () => {
        const fd = fs.openSync(${JSON.stringify(file)}, 'r');
        const b = new native.SignatureBuilder({ blockLen: 1024, strongLen: 16, strong: 'xxh3', rolling: 'ds64' });
        const parts = []; let pos = 0;
        for (;;) { const r = await b.updateFromFile(fd, pos, 16 << 20); parts.push(r.entries); pos += r.bytesRead; if (r.bytesRead < (16 << 20)) break; }
        parts.push(b.final());
        process.stdout.write(Buffer.concat(parts).toString('hex'));
      })();`;
    for (const threads of ['1', '3']) {
      const r = spawnSync(process.execPath, ['-e', script], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
        env: { ...process.env, DELTASYNC_THREADS: threads },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout === want, `DELTASYNC_THREADS=${threads}`).toBe(true);
    }
  });

  test('the thread count follows the cores the process may use (taskset), unless DELTASYNC_THREADS says', () => {
    const script = `process.stdout.write(String(require('node-gyp-build')(${JSON.stringify(ROOT)}).workerThreads()))`;
    const threads = (prefix: string[], env: NodeJS.ProcessEnv = {}): string => {
      const { DELTASYNC_THREADS: _ignored, ...base } = process.env;
      const cmd = [...prefix, process.execPath, '-e', script];
      const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', env: { ...base, ...env } });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    expect(threads([])).toBe(String(availableParallelism()));
    expect(threads(['taskset', '-c', '0'])).toBe('1');
    expect(threads(['taskset', '-c', '0'], { DELTASYNC_THREADS: '3' })).toBe('3');
    if (availableParallelism() >= 2) expect(threads(['taskset', '-c', '0,1'])).toBe('2');
  });

  test('updateParts() of a batch equals update() of its concatenation, small or big, and checks its parts', async () => {
    const data = randomBytes(3_000_017, rng(9));
    for (const kind of ['ds64', 'rollsum', 'rabinkarp'] as const) {
      const p = params(1000, kind);
      const expected = reference(p, data);
      // Cuts through blocks, empty parts, a part below and above the inline limit.
      for (const cuts of [[], [0, 0, 1], [999, 1000, 1001, 300_000], [1_500_000, 2_999_999]]) {
        const b = new native.SignatureBuilder(p);
        const bounds = [0, ...cuts, data.length];
        const parts = bounds.slice(1).map((end, i) => data.subarray(bounds[i], end));
        const got = Buffer.concat([await b.updateParts(parts), b.final()]);
        expect(got.equals(expected), `${kind} ${cuts.join(',')}`).toBe(true);
      }
    }
    const b = new native.SignatureBuilder(params(1000, 'ds64'));
    expect((await b.updateParts([])).length).toBe(0);
    expect(() => (b.updateParts as unknown as (x: unknown) => unknown)([Buffer.alloc(1), 'x'])).toThrow(TypeError);
    expect(() => (b.updateParts as unknown as (x: unknown) => unknown)(Buffer.alloc(1))).toThrow(TypeError);
    // A big batch runs on the pool: a second call meanwhile is refused, as for update().
    const pending = b.updateParts([randomBytes(1 << 20, rng(10))]);
    expect(() => b.updateParts([Buffer.alloc(1)])).toThrow(/still running/);
    await pending;
  });

  test('read errors reject; bad arguments throw', async () => {
    const b = new native.SignatureBuilder(params(1000, 'ds64'));
    const handle = await open(dir, 'r'); // a directory: read() fails with EISDIR
    try {
      await expect(b.updateFromFile(handle.fd, 0, 1 << 20)).rejects.toThrow(/directory/i);
    } finally {
      await handle.close();
    }
    const c = new native.SignatureBuilder(params(1000, 'ds64'));
    expect(() => c.updateFromFile(-1, 0, 10)).toThrow(RangeError);
    expect(() => c.updateFromFile(0, 0.5, 10)).toThrow(RangeError);
    expect(() => (c.updateFromFile as unknown as (fd: string) => unknown)('3')).toThrow(TypeError);
  });

  test('signature() of a file path equals signature() of its bytes, in both formats', async () => {
    const { signature } = await import('../lib/signature.js');
    const data = randomBytes(12_345_678, rng(5));
    const file = join(dir, 'api');
    writeFileSync(file, data);
    for (const format of ['deltasync', 'rdiff'] as const) {
      const fromPath = await signature(file, { format, blockLen: 2048 });
      const fromBytes = await signature(data, { format, blockLen: 2048 });
      expect(fromPath.toBuffer().equals(fromBytes.toBuffer()), format).toBe(true);
    }
    await expect(signature(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ERR_IO' });
    await expect(signature(dir)).rejects.toMatchObject({ code: 'ERR_IO' });
  });

  test('a file read in several native calls (small blocks bound each call) gives the same signature', async () => {
    const { signature, fileRangeFor } = await import('../lib/signature.js');
    // 256 MiB of input per call for ordinary blocks; with tiny blocks the entries bound it.
    expect(fileRangeFor({ blockLen: 8192, strongLen: 16, rolling: 'ds64' })).toBe(256 * 1024 * 1024);
    expect(fileRangeFor({ blockLen: 1, strongLen: 32, rolling: 'rollsum' })).toBeLessThanOrEqual(8 * 1024 * 1024);
    const tiny = { blockLen: 16, strongLen: 16 } as const;
    const range = fileRangeFor({ ...tiny, rolling: 'rollsum' });
    expect(range % 16).toBe(0);
    expect((range / 16) * (4 + 16)).toBeLessThanOrEqual(8 * 1024 * 1024);
    // Four calls or more (8-byte weak sums make the deltasync ranges shorter), the last ending
    // inside a block.
    const data = randomBytes(3 * range + range / 2 + 7, rng(6));
    const file = join(dir, 'multi-range');
    writeFileSync(file, data);
    for (const format of ['deltasync', 'rdiff'] as const) {
      const fromPath = await signature(file, { format, ...tiny });
      const fromBytes = await signature(data, { format, ...tiny });
      expect(data.length / fileRangeFor(fromPath), format).toBeGreaterThan(3);
      expect(fromPath.blockCount, format).toBe(Math.ceil(data.length / 16));
      expect(fromPath.toBuffer().equals(fromBytes.toBuffer()), format).toBe(true);
    }
  });
});
