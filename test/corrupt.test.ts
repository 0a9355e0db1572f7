// Damaged and hostile signatures and deltas: refused with a DeltaSyncError (or, where the
// format cannot tell, handled without a crash, a hang or a wrong verified result).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DeltaSyncError, Signature, createPatchStream, delta, patch, patchFile, signature } from '../lib/index.js';
import type { BasisReader, ErrorCode, Format } from '../lib/index.js';
import { seededBytes } from './helpers/bytes.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltasync-corrupt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function bytes(n: number, seed: number): Buffer {
  return seededBytes(n, seed);
}

const basis = bytes(20_000, 1);
// Copies (sequential, moved, repeated) and literals of several lengths.
const next = Buffer.concat([
  basis.subarray(0, 5000),
  bytes(10, 2),
  basis.subarray(6000, 12_000),
  bytes(300, 3),
  basis.subarray(15_000),
  basis.subarray(1000, 3000),
  bytes(70_000, 4),
]);

async function outcome(p: Promise<unknown> | (() => unknown)): Promise<ErrorCode | 'ok'> {
  try {
    await (typeof p === 'function' ? p() : p);
    return 'ok';
  } catch (err) {
    if (err instanceof DeltaSyncError) return err.code;
    throw err; // anything else is a bug: the test fails with it
  }
}

async function patchResult(b: Uint8Array | string | BasisReader, d: Buffer): Promise<{ code: ErrorCode | 'ok'; output?: Buffer }> {
  try {
    const { output } = await patch(b, d);
    return { code: 'ok', output };
  } catch (err) {
    if (err instanceof DeltaSyncError) return { code: err.code };
    throw err;
  }
}

const artifacts: Record<Format, { sig: Buffer; delta: Buffer }> = {} as never;
beforeAll(async () => {
  for (const format of ['deltasync', 'rdiff'] as const) {
    const sig = await signature(basis, { format, blockLen: 256 });
    const { delta: d } = await delta(sig, next);
    artifacts[format] = { sig: sig.toBuffer(), delta: d };
    expect((await patch(basis, d)).output.equals(next)).toBe(true);
  }
});

function flip(data: Buffer, pos: number, mask: number): Buffer {
  const copy = Buffer.from(data);
  copy[pos] ^= mask;
  return copy;
}

describe('random truncations', () => {
  for (const format of ['deltasync', 'rdiff'] as const) {
    it(`${format} signature: every truncation refused, or (rdiff, at an entry boundary) a valid shorter signature`, async () => {
      const { sig } = artifacts[format];
      const cuts = fc.sample(fc.nat(sig.length - 1), 300).concat([0, 1, 3, 4, 11, 12, 19, 20, sig.length - 1]);
      for (const cut of cuts) {
        const truncated = sig.subarray(0, cut);
        const code = await outcome(() => Signature.parse(truncated));
        const read = await outcome(Signature.read(Readable.from([truncated])));
        expect(read).toBe(code);
        if (code === 'ok') {
          // rdiff signatures carry no count: a prefix ending on an entry is a smaller valid
          // signature. Deltas made from it must still rebuild the new file exactly.
          expect(format).toBe('rdiff');
          const short = Signature.parse(truncated);
          const { delta: d } = await delta(short, next);
          expect((await patch(basis, d)).output.equals(next)).toBe(true);
        }
      }
    });

    it(`${format} delta: every truncation refused (patch, stream and file forms)`, async () => {
      const { delta: d } = artifacts[format];
      const cuts = fc.sample(fc.nat(d.length - 1), 300).concat([0, 1, 3, 4, 5, 6, d.length - 17, d.length - 1]);
      for (const [i, cut] of cuts.entries()) {
        const truncated = d.subarray(0, cut);
        const code = await outcome(patch(basis, truncated));
        expect(['ERR_TRUNCATED', 'ERR_CORRUPT']).toContain(code);
        if (i % 20 === 0) {
          const stream = Readable.from([truncated]).pipe(createPatchStream(basis));
          expect(await outcome(async () => { for await (const _ of stream) void _; })).toBe(code);
          const out = join(dir, `trunc-${format}-${i}`);
          expect(await outcome(patchFile(basis, truncated, out))).toBe(code);
          expect(existsSync(out)).toBe(false);
        }
      }
    });
  }
});

describe('random byte flips', () => {
  for (const format of ['deltasync', 'rdiff'] as const) {
    it(`${format} signature: refused, or still yields an exact round trip`, async () => {
      const { sig } = artifacts[format];
      const flips = fc.sample(fc.tuple(fc.nat(sig.length - 1), fc.integer({ min: 1, max: 255 })), 300);
      let parsed = 0;
      for (const [pos, mask] of flips) {
        const bad = flip(sig, pos, mask);
        const code = await outcome(() => Signature.parse(bad));
        if (format === 'deltasync') {
          // The trailer checksum catches every change the header checks don't.
          expect(code).not.toBe('ok');
          continue;
        }
        if (code !== 'ok') continue;
        parsed++;
        // An rdiff signature has no checksum, so a flip that still parses either only loses
        // matches (the result is exact) or re-strides the entries (a changed strong length),
        // and then the delta names blocks the basis does not have: patch must refuse that.
        const { delta: d } = await delta(Signature.parse(bad), next);
        const { code: patched, output } = await patchResult(basis, d);
        if (patched === 'ok') expect(output!.equals(next)).toBe(true);
        else expect(patched).toBe('ERR_CORRUPT');
      }
      if (format === 'rdiff') expect(parsed).toBeGreaterThan(0);
    });

    it(`${format} delta: refused (deltasync: always, unless the result is still exact) or handled without a crash (rdiff)`, async () => {
      const { delta: d } = artifacts[format];
      const flips = fc.sample(fc.tuple(fc.nat(d.length - 1), fc.integer({ min: 1, max: 255 })), 400);
      // Bias towards the command bytes: the literal payloads dominate the length.
      const headerFlips = fc.sample(fc.tuple(fc.nat(Math.min(d.length - 1, 60)), fc.integer({ min: 1, max: 255 })), 100);
      const codes = new Map<string, number>();
      for (const [i, [pos, mask]] of [...flips, ...headerFlips].entries()) {
        const bad = flip(d, pos, mask);
        const { code, output } = await patchResult(basis, bad);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (format === 'deltasync') {
          if (code === 'ok') expect(output!.equals(next)).toBe(true);
          else expect(['ERR_HASH_MISMATCH', 'ERR_CORRUPT', 'ERR_TRUNCATED', 'ERR_BAD_MAGIC']).toContain(code);
        } else if (code === 'ok') {
          expect(output).toBeInstanceOf(Buffer);
        }
        if (i % 25 === 0 && code !== 'ok') {
          const out = join(dir, `flip-${format}-${i}`);
          expect(await outcome(patchFile(basis, bad, out))).toBe(code);
          expect(existsSync(out)).toBe(false);
        }
      }
      if (format === 'deltasync') {
        // Literal flips are caught by the whole-file hash.
        expect(codes.get('ERR_HASH_MISMATCH') ?? 0).toBeGreaterThan(100);
      }
    });
  }

  it('an rdiff signature whose strong length was damaged gives a delta patch refuses, never a wrong file', async () => {
    const { sig } = artifacts.rdiff;
    // 79 entries of 4 + 32 bytes; 2844 bytes also split into entries of 4 + 8: entry 3j then
    // carries block j's weak sum and strong prefix, so block 26 matches as "block 78" (past the end).
    const bad = flip(sig, 11, 32 ^ 8);
    const parsed = Signature.parse(bad);
    expect(parsed.strongLen).toBe(8);
    const { delta: d } = await delta(parsed, next);
    const { code } = await patchResult(basis, d);
    expect(code).toBe('ERR_CORRUPT');
    const out = join(dir, 'restrided');
    expect(await outcome(patchFile(basis, d, out))).toBe('ERR_CORRUPT');
    expect(existsSync(out)).toBe(false);
  });

  it('a corrupted literal in a deltasync delta is detected, not written', async () => {
    const { delta: d } = artifacts.deltasync;
    // The last literal (70 000 random bytes) sits just before END + hash.
    const bad = flip(d, d.length - 17 - 1000, 0x01);
    expect(await outcome(patch(basis, bad))).toBe('ERR_HASH_MISMATCH');
    const out = join(dir, 'literal-flip');
    expect(await outcome(patchFile(basis, bad, out))).toBe('ERR_HASH_MISMATCH');
    expect(existsSync(out)).toBe(false);
  });
});

/** Handcrafted inputs. */
function rdiffSig(magic: number, blockLen: number, strongLen: number, body = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt32BE(magic, 0);
  h.writeUInt32BE(blockLen, 4);
  h.writeUInt32BE(strongLen, 8);
  return Buffer.concat([h, body]);
}

function dsSigHeader(fields: { version?: number; rolling?: number; strong?: number; strongLen?: number; blockLen?: number; fileSize?: bigint }): Buffer {
  const h = Buffer.alloc(20);
  h.write('dsSG', 0, 'latin1');
  h[4] = fields.version ?? 1;
  h[5] = fields.rolling ?? 1;
  h[6] = fields.strong ?? 1;
  h[7] = fields.strongLen ?? 8;
  h.writeUInt32BE(fields.blockLen ?? 1024, 8);
  h.writeBigUInt64BE(fields.fileSize ?? 0n, 12);
  return h;
}

const RD = Buffer.from([0x72, 0x73, 0x02, 0x36]);
// deltasync v2 header: version, flags, strong kind (xxh3), block length 64.
const DS = (size?: number) => Buffer.concat([Buffer.from('dsDL', 'latin1'), Buffer.from(size === undefined ? [2, 0, 1, 0x40] : [2, 1, 1, 0x40, ...varint(size)])]);
function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

describe('hostile signatures', () => {
  it('wrong magic, absurd block and strong lengths', async () => {
    const cases: [Buffer, ErrorCode][] = [
      [Buffer.from('definitely not a signature'), 'ERR_BAD_MAGIC'],
      [Buffer.concat([RD, Buffer.alloc(8)]), 'ERR_BAD_MAGIC'], // a delta
      [rdiffSig(0x72730148, 256, 8), 'ERR_BAD_MAGIC'],
      [rdiffSig(0x72730147, 0, 8), 'ERR_BAD_PARAMS'],
      [rdiffSig(0x72730147, 2 ** 31, 8), 'ERR_BAD_PARAMS'],
      [rdiffSig(0x72730147, 0xffffffff, 8), 'ERR_BAD_PARAMS'],
      [rdiffSig(0x72730147, 256, 0), 'ERR_BAD_PARAMS'],
      [rdiffSig(0x72730147, 256, 33), 'ERR_BAD_PARAMS'],
      [rdiffSig(0x72730136, 256, 17), 'ERR_BAD_PARAMS'],
      [rdiffSig(0x72730147, 256, 0xffffffff), 'ERR_BAD_PARAMS'],
      [rdiffSig(0x72730147, 256, 8, Buffer.alloc(13)), 'ERR_TRUNCATED'],
      [dsSigHeader({ blockLen: 0 }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ blockLen: 2 ** 31 }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ strongLen: 0 }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ strongLen: 33, strong: 3 }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ rolling: 0 }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ strong: 9 }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ version: 2 }), 'ERR_BAD_MAGIC'],
      // Counts that overflow / forged sizes: refused from the header, before any allocation.
      [dsSigHeader({ fileSize: 2n ** 64n - 1n }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ fileSize: 2n ** 53n - 1n, blockLen: 1 }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ fileSize: 2n ** 40n, blockLen: 1024 }), 'ERR_BAD_PARAMS'],
      [dsSigHeader({ fileSize: 10n ** 6n, blockLen: 1024 }), 'ERR_TRUNCATED'], // claims 977 entries, has none
      [Buffer.concat([dsSigHeader({ fileSize: 0n }), Buffer.alloc(16)]), 'ERR_CORRUPT'], // wrong checksum
    ];
    for (const [data, code] of cases) {
      expect(await outcome(() => Signature.parse(data))).toBe(code);
      expect(await outcome(Signature.read(Readable.from([data])))).toBe(code);
      expect(await outcome(delta(data, Buffer.alloc(10)))).toBe(code);
    }
  });

  it('a stream longer than its deltasync header says is refused', async () => {
    const sig = (await signature(Buffer.alloc(5000))).toBuffer();
    expect(await outcome(Signature.read(Readable.from([sig, Buffer.alloc(1)])))).toBe('ERR_CORRUPT');
  });

  it('a signature of 100 000 identical blocks cannot make delta slow (candidate chains are capped)', async () => {
    const zeros = Buffer.alloc(1_600_000);
    const sig = await signature(zeros, { blockLen: 16, format: 'rdiff', strong: 'md4', strongLen: 8 });
    const other = Buffer.concat([bytes(500_000, 7), zeros.subarray(0, 500_000)]);
    const started = Date.now();
    const { delta: d } = await delta(sig, other);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect((await patch(zeros, d)).output.equals(other)).toBe(true);
  });
});

describe('hostile deltas', () => {
  const small = Buffer.from('0123456789');
  const hash = Buffer.alloc(16);

  it('COPY beyond the basis, for every kind of basis', async () => {
    const rdCopy = Buffer.concat([RD, Buffer.from([0x45, 5, 10, 0])]); // offset 5, length 10 on a 10-byte basis
    const dsCopy = Buffer.concat([DS(), Buffer.from([0x03, 5, 10, 0]), hash]);
    const rdFar = Buffer.concat([RD, Buffer.from([0x54, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0, 0, 0, 0, 1, 0])]);
    const path = join(dir, 'small-basis');
    await (await import('node:fs/promises')).writeFile(path, small);
    const bases: (Uint8Array | string | BasisReader)[] = [
      small,
      path,
      { read: async (o, l) => small.subarray(o, o + l), size: small.length },
      { read: async (o, l) => small.subarray(o, o + l) },
    ];
    for (const b of bases) {
      for (const d of [rdCopy, dsCopy, rdFar]) {
        expect(await outcome(patch(b, d))).toBe('ERR_CORRUPT');
        const out = join(dir, 'copy-beyond');
        expect(await outcome(patchFile(b, d, out))).toBe('ERR_CORRUPT');
        expect(existsSync(out)).toBe(false);
      }
    }
  });

  it('literal longer than the stream, huge varints and lengths, bad commands, missing END', async () => {
    const cases: [Buffer, ErrorCode][] = [
      [Buffer.concat([RD, Buffer.from([0x43, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3])]), 'ERR_CORRUPT'],
      [Buffer.concat([RD, Buffer.from([0x44, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1])]), 'ERR_CORRUPT'],
      [Buffer.concat([RD, Buffer.from([0x20, 1, 2])]), 'ERR_CORRUPT'],
      [Buffer.concat([RD, Buffer.from([0x60])]), 'ERR_CORRUPT'],
      [Buffer.concat([RD, Buffer.from([0x02, 1, 2])]), 'ERR_TRUNCATED'],
      [Buffer.concat([RD, Buffer.from([0x00, 0x00])]), 'ERR_CORRUPT'],
      [Buffer.concat([DS(), Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])]), 'ERR_CORRUPT'],
      [Buffer.concat([DS(), Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]), 'ERR_CORRUPT'],
      [Buffer.concat([DS(), Buffer.from([0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0]), hash]), 'ERR_CORRUPT'],
      [Buffer.concat([DS(), Buffer.from([0x04, 1, 1, 0]), hash]), 'ERR_CORRUPT'],
      [Buffer.concat([DS(), Buffer.from([0x77, 0]), hash]), 'ERR_CORRUPT'],
      [Buffer.concat([DS(), Buffer.from([0x02, 4])]), 'ERR_TRUNCATED'],
      [Buffer.concat([DS(), Buffer.from([0x00]), hash.subarray(0, 5)]), 'ERR_TRUNCATED'],
      [Buffer.concat([DS(), Buffer.from([0x00]), hash]), 'ERR_HASH_MISMATCH'], // empty result, hash of zeros
      [Buffer.concat([Buffer.from('dsDL', 'latin1'), Buffer.from([2, 0xfe, 0x00]), hash]), 'ERR_CORRUPT'],
      [Buffer.from('hello'), 'ERR_BAD_MAGIC'],
      [Buffer.from([0x72, 0x73, 0x01, 0x47, 0, 0, 1, 0, 0, 0, 0, 8]), 'ERR_BAD_MAGIC'], // a signature
      [Buffer.alloc(0), 'ERR_TRUNCATED'],
    ];
    for (const [d, code] of cases) {
      expect(await outcome(patch(small, d))).toBe(code);
    }
  });

  it('a forged result size allocates nothing up front and is refused', async () => {
    const started = Date.now();
    // Declares 2^53 - 1 bytes of output, then describes 10.
    const d = Buffer.concat([DS(Number.MAX_SAFE_INTEGER), Buffer.from([0x02, 10, 0]), hash]);
    expect(await outcome(patch(small, d))).toBe('ERR_CORRUPT');
    // Declares 3, describes 10: refused at the op that overflows it.
    const d2 = Buffer.concat([DS(3), Buffer.from([0x02, 10, 0]), hash]);
    expect(await outcome(patch(small, d2))).toBe('ERR_CORRUPT');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('leaves no temp files behind', async () => {
    expect((await readdir(dir)).filter((f) => f.includes('.deltasync-'))).toEqual([]);
  });
});
