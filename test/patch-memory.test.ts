// patchFile with a basis file: COPYs go from file to file in the addon (copyHashRange: read,
// hash, write) and are verified from the hashes it returns; memory stays flat however big the
// file. Checked against independently computed piece hashes, damaged and short bases, both
// formats, and the peak RSS of the CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, truncateSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { DeltaSyncError, delta, patchFile, signature } from '../lib/index.js';
import { COPY_HASH_MAX_PIECES, copyHashRange, nativeCopyHash } from '../lib/fileops.js';
import { native } from '../lib/native.js';
import type { StrongKind } from '../lib/native.js';
import { seededBytes } from './helpers/bytes.js';
import { run } from './helpers/run.js';
import { BIN, tempDir, writeRandomFile } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
beforeAll(() => {
  tmp = tempDir('deltasync-patch-memory-');
});
afterAll(() => tmp.cleanup());

/** The pieces of [offset, offset + length) on a grid of `cell`-byte cells, hashed one by one. */
function expectedPieceHashes(data: Buffer, offset: number, length: number, cell: number, strong: StrongKind): Buffer {
  const out: Buffer[] = [];
  for (let at = offset; at < offset + length; ) {
    const next = Math.min(offset + length, (Math.floor(at / cell) + 1) * cell);
    out.push(native.hash(strong, data.subarray(at, next)));
    at = next;
  }
  return Buffer.concat(out);
}

describe('copyHashRange', () => {
  it.runIf(nativeCopyHash())('copies a range and returns the hash of each piece on the basis grid, for every strong kind', async () => {
    const data = seededBytes(3 * 1024 * 1024 + 77, 11);
    const src = join(tmp.path, 'chr-src');
    writeFileSync(src, data);
    // Ranges that start and end inside cells, span read buffers, and cells longer than a read.
    const cases: [number, number, number][] = [
      [5, 2_500_000, 1000],
      [0, data.length, 4096],
      [123_457, 1_900_001, 700_001],
      [999, 1, 1000],
      [1000, 3000, 1000],
      [17, 65_536, 1],
    ];
    for (const strong of ['xxh3', 'md4', 'blake2b'] as const) {
      for (const [offset, length, cell] of cases) {
        const dst = join(tmp.path, `chr-dst-${strong}`);
        writeFileSync(dst, Buffer.alloc(0));
        const fin = await open(src, 'r');
        const fout = await open(dst, 'r+');
        try {
          const r = await copyHashRange(fin, offset, fout, 3, length, strong, cell);
          expect(r.bytes).toBe(length);
          expect(r.hashes.equals(expectedPieceHashes(data, offset, length, cell, strong))).toBe(true);
        } finally {
          await fin.close();
          await fout.close();
        }
        const written = readFileSync(dst);
        expect(written.length).toBe(3 + length);
        expect(written.subarray(3).equals(data.subarray(offset, offset + length))).toBe(true);
      }
    }
  });

  it.runIf(nativeCopyHash())('stops at the end of the source with the pieces read whole, and refuses bad calls', async () => {
    const data = seededBytes(10_000, 12);
    const src = join(tmp.path, 'chr-short');
    writeFileSync(src, data);
    const fin = await open(src, 'r');
    const fout = await open(join(tmp.path, 'chr-short-out'), 'w');
    try {
      const r = await copyHashRange(fin, 8000, fout, 0, 5000, 'xxh3', 1000);
      expect(r.bytes).toBe(2000);
      expect(r.hashes.equals(expectedPieceHashes(data, 8000, 2000, 1000, 'xxh3'))).toBe(true);
      // Overlapping ranges of one file, too many cells for one call, a bad kind, a bad grid.
      await expect(copyHashRange(fin, 0, fin, 10, 100, 'xxh3', 10)).rejects.toMatchObject({ code: 'EINVAL' });
      await expect(copyHashRange(fin, 0, fout, 0, COPY_HASH_MAX_PIECES + 1, 'xxh3', 1)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
      await expect(copyHashRange(fin, 0, fout, 0, 10, 'sha1' as StrongKind, 1)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      await expect(copyHashRange(fin, 0, fout, 0, 10, 'xxh3', 0)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    } finally {
      await fin.close();
      await fout.close();
    }
  });
});

describe('patchFile from a basis file', () => {
  // 20 MiB: COPYs longer than the 8 MiB copy segments, a one-byte shift (unaligned writes),
  // edits inside cells, a moved range and a short last cell.
  const size = 20 * 1024 * 1024 + 333;
  const basis = seededBytes(size, 21);
  const next = Buffer.concat([
    Buffer.from('x'),
    basis.subarray(0, 9_000_000),
    seededBytes(5000, 22),
    basis.subarray(9_003_000, 15_000_000),
    basis.subarray(100_000, 2_200_000),
    seededBytes(10, 23),
    basis.subarray(15_000_000),
  ]);
  let basisPath: string;
  beforeAll(() => {
    basisPath = join(tmp.path, 'basis');
    writeFileSync(basisPath, basis);
  });

  function leftovers(dir: string): string[] {
    return readdirSync(dir).filter((n) => n.includes('.deltasync-'));
  }

  for (const format of ['deltasync', 'rdiff'] as const) {
    for (const blockLen of [undefined, 4099]) {
      it(`rebuilds the file exactly (${format}, block length ${blockLen ?? 'default'})`, async () => {
        const sig = await signature(basis, { format, ...(blockLen ? { blockLen } : {}) });
        const d = (await delta(sig, next)).delta;
        const out = join(tmp.path, `out-${format}-${blockLen ?? 'default'}`);
        const stats = await patchFile(basisPath, d, out, { fsync: false });
        expect(readFileSync(out).equals(next)).toBe(true);
        expect(stats.outBytes).toBe(next.length);
        expect(stats.verified).toBe(format === 'deltasync');
      });
    }
  }

  it('refuses a basis changed inside a copied range (ERR_HASH_MISMATCH), leaving nothing behind', async () => {
    const d = (await delta(await signature(basis), next)).delta;
    const damaged = join(tmp.path, 'damaged-basis');
    const copy = Buffer.from(basis);
    copy[12_345_678] ^= 0x01; // inside basis[9_003_000, 15_000_000), which the result copies
    writeFileSync(damaged, copy);
    const out = join(tmp.path, 'damaged-out');
    const err = await patchFile(damaged, d, out, { fsync: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeltaSyncError);
    expect((err as DeltaSyncError).code).toBe('ERR_HASH_MISMATCH');
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp.path)).toEqual([]);
  });

  it('refuses a basis shorter than the delta copies from (ERR_CORRUPT), leaving nothing behind', async () => {
    const d = (await delta(await signature(basis), next)).delta;
    const short = join(tmp.path, 'short-basis');
    writeFileSync(short, basis.subarray(0, 16_000_000));
    const out = join(tmp.path, 'short-out');
    const err = await patchFile(short, d, out, { fsync: false }).catch((e: unknown) => e);
    expect((err as DeltaSyncError).code).toBe('ERR_CORRUPT');
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp.path)).toEqual([]);
  });

  it('refuses a basis that shrinks after it was opened (checked where it is read), leaving nothing behind', async () => {
    const d = (await delta(await signature(basis), next)).delta;
    const shrinking = join(tmp.path, 'shrinking-basis');
    writeFileSync(shrinking, basis);
    const out = join(tmp.path, 'shrinking-out');
    // The delta stream truncates the basis once the patch has opened it and started.
    async function* slowDelta(): AsyncGenerator<Buffer> {
      yield d.subarray(0, 40);
      truncateSync(shrinking, 10_000_000);
      yield d.subarray(40);
    }
    const err = await patchFile(shrinking, slowDelta(), out, { fsync: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeltaSyncError);
    expect(['ERR_CORRUPT', 'ERR_HASH_MISMATCH']).toContain((err as DeltaSyncError).code);
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp.path)).toEqual([]);
  });

  it('verifies on a tiny grid (7-byte cells: many pieces per call) and catches a one-byte change there', async () => {
    const small = basis.subarray(0, 300_000);
    const smallNext = Buffer.concat([small.subarray(3), Buffer.from('tail')]);
    const sig = await signature(small, { blockLen: 7 });
    const d = (await delta(sig, smallNext)).delta;
    const p = join(tmp.path, 'small-basis');
    writeFileSync(p, small);
    const out = join(tmp.path, 'small-out');
    expect((await patchFile(p, d, out, { fsync: false })).verified).toBe(true);
    expect(readFileSync(out).equals(smallNext)).toBe(true);
    const bad = Buffer.from(small);
    bad[150_001] ^= 0x80;
    writeFileSync(p, bad);
    await expect(patchFile(p, d, join(tmp.path, 'small-out2'), { fsync: false })).rejects.toMatchObject({ code: 'ERR_HASH_MISMATCH' });
  });
});

// Peak RSS of `deltasync patch` over a 192 MiB file, against the same CLI doing nothing
// (`--version`: node, its binary's pages and the CLI's modules). Before range copies, COPYs and
// literals went through fresh 4-8 MiB JavaScript buffers and queued writes: 44 MiB (identical)
// and 110 MiB (unrelated) above the idle CLI, measured; now about 14.
const TIME = '/usr/bin/time';
describe.runIf(existsSync(TIME))('patch memory (CLI)', () => {
  // Spawned without blocking the test worker (spawnSync starves vitest's RPC).
  async function cli(args: string[]): Promise<void> {
    const r = await run(process.execPath, [BIN, ...args]);
    expect(r.status, r.stderr).toBe(0);
  }
  async function peakKiB(args: string[]): Promise<number> {
    const out = join(tmp.path, 'time.out');
    const r = await run(TIME, ['-f', '%M', '-o', out, process.execPath, BIN, ...args]);
    expect(r.status, r.stderr).toBe(0);
    return Number(readFileSync(out, 'utf8').trim().split('\n').pop());
  }

  // Under AddressSanitizer (the CI's second run) freed memory sits in ASan's quarantine and every
  // allocation carries redzones: peak RSS says nothing about the code there.
  const underAsan = (process.env.LD_PRELOAD ?? '').includes('libasan');
  it.skipIf(underAsan)('stays within 24 MiB of an idle CLI for COPYs and for literals', { timeout: 120_000 }, async () => {
    const size = 192 * 1024 * 1024;
    const base = join(tmp.path, 'big-basis');
    const unrelated = join(tmp.path, 'big-unrelated');
    writeRandomFile(base, size);
    writeRandomFile(unrelated, size);
    // The identical file's delta is one COPY; the unrelated one's is all literal.
    const sig = join(tmp.path, 'big.sig');
    await cli(['signature', base, sig]);
    const idle = await peakKiB(['--version']);
    for (const [name, newFile] of [['identical', base], ['unrelated', unrelated]] as const) {
      const d = join(tmp.path, `big-${name}.delta`);
      await cli(['delta', sig, newFile, d]);
      const out = join(tmp.path, `big-${name}.out`);
      const peak = await peakKiB(['patch', base, d, out]);
      expect(peak - idle, `${name}: peak ${peak} KiB, idle CLI ${idle} KiB`).toBeLessThan(24 * 1024);
      expectSameFile(out, newFile, size);
    }
  });

  // The file commands run without V8's optimizing compiler (lib/cli/main.ts): its zones and code
  // were 20.8-22.3 MiB above the idle CLI for these deltas, 14.6-18.7 MiB without it, measured.
  it.skipIf(underAsan)('delta stays within 21 MiB of an idle CLI, for matches and for literals', { timeout: 120_000 }, async () => {
    const size = 192 * 1024 * 1024;
    const base = join(tmp.path, 'delta-basis');
    const unrelated = join(tmp.path, 'delta-unrelated');
    writeRandomFile(base, size);
    writeRandomFile(unrelated, size);
    const sig = join(tmp.path, 'delta.sig');
    await cli(['signature', base, sig]);
    const idle = await peakKiB(['--version']);
    for (const [name, newFile] of [['identical', base], ['unrelated', unrelated]] as const) {
      const d = join(tmp.path, `delta-${name}.delta`);
      const peak = await peakKiB(['delta', sig, newFile, d]);
      expect(peak - idle, `${name}: peak ${peak} KiB, idle CLI ${idle} KiB`).toBeLessThan(21 * 1024);
      // And it is the delta it should be: the patch rebuilds the new file.
      const out = join(tmp.path, `delta-${name}.out`);
      await cli(['patch', base, d, out]);
      expectSameFile(out, newFile, size);
    }
  });
});

/** Same bytes, compared in pieces: no 192 MiB buffers in the test either. */
function expectSameFile(actual: string, expected: string, size: number): void {
  const a = openSync(actual, 'r');
  const b = openSync(expected, 'r');
  try {
    const x = Buffer.alloc(1 << 20);
    const y = Buffer.alloc(1 << 20);
    for (let pos = 0; pos < size; pos += x.length) {
      const n = readSyncAt(a, x, pos);
      expect(n).toBe(readSyncAt(b, y, pos));
      expect(x.subarray(0, n).equals(y.subarray(0, n))).toBe(true);
    }
  } finally {
    closeSync(a);
    closeSync(b);
  }
}

function readSyncAt(fd: number, buf: Buffer, position: number): number {
  let filled = 0;
  for (;;) {
    const n = readSync(fd, buf, filled, buf.length - filled, position + filled);
    if (n === 0 || filled + n === buf.length) return filled + n;
    filled += n;
  }
}
