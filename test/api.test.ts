// The public API: every input form, the streaming and file forms, stats and option validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeltaSyncError,
  Signature,
  createDeltaStream,
  createPatchStream,
  createSignatureStream,
  delta,
  deltaFile,
  exitCodeFor,
  patch,
  patchFile,
  signature,
  signatureFile,
} from '../lib/index.js';
import type { BasisReader, Format, RollingKind, SignatureOptions, StrongKind } from '../lib/index.js';
import { DELTA_FILE_CHUNK, DeltaEngine } from '../lib/delta.js';
import { native } from '../lib/native.js';
import { STRONG_FULL_LEN, WEAK_WIDTH } from '../lib/params.js';
import { seededBytes } from './helpers/bytes.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltasync-api-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function bytes(n: number, seed = 1): Buffer {
  return seededBytes(n, seed);
}

/** Basis and an edited version of it (insert, delete, overwrite). */
function pair(n: number, seed = 3): { basis: Buffer; next: Buffer } {
  const basis = bytes(n, seed);
  const next = Buffer.concat([
    basis.subarray(0, n / 4),
    bytes(333, seed + 1),
    basis.subarray(n / 4, n / 2),
    basis.subarray(n / 2 + 1000),
    bytes(50, seed + 2),
  ]);
  next.fill(7, Math.floor(next.length * 0.8), Math.floor(next.length * 0.8) + 10);
  return { basis, next };
}

async function* pieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield new Uint8Array(data.subarray(i, i + size));
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof DeltaSyncError) return err.code;
    throw err;
  }
  return 'no error';
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

async function leftovers(): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.deltasync-'));
}

const COMBOS: { format: Format; rolling: RollingKind; strong: StrongKind }[] = [
  { format: 'deltasync', rolling: 'ds64', strong: 'xxh3' },
  { format: 'deltasync', rolling: 'rollsum', strong: 'md4' },
  { format: 'deltasync', rolling: 'rabinkarp', strong: 'blake2b' },
  { format: 'rdiff', rolling: 'rabinkarp', strong: 'blake2b' },
  { format: 'rdiff', rolling: 'rollsum', strong: 'md4' },
];

describe('native constants', () => {
  it('TS tables agree with the addon', () => {
    for (const k of ['ds64', 'rollsum', 'rabinkarp'] as const) expect(WEAK_WIDTH[k]).toBe(native.weakWidth(k));
    for (const k of ['xxh3', 'md4', 'blake2b'] as const) expect(STRONG_FULL_LEN[k]).toBe(native.strongFullLen(k));
  });
});

describe('signature', () => {
  it('entries are weak (big-endian) + truncated strong of each block, short last block included', async () => {
    const data = bytes(10_000, 9);
    for (const c of COMBOS) {
      const sig = await signature(data, { ...c, blockLen: 1024, strongLen: 7 });
      expect(sig.blockCount).toBe(10);
      const width = WEAK_WIDTH[c.rolling];
      for (let b = 0; b < sig.blockCount; b++) {
        const block = data.subarray(b * 1024, (b + 1) * 1024);
        const entry = sig.blocks.subarray(b * (width + 7), (b + 1) * (width + 7));
        const weak = native.rollingDigest(c.rolling, block);
        expect(width === 8 ? entry.readBigUInt64BE(0) : BigInt(entry.readUInt32BE(0))).toBe(weak);
        expect(entry.subarray(width)).toEqual(native.hash(c.strong, block).subarray(0, 7));
      }
      expect(sig.fileSize).toBe(c.format === 'deltasync' ? 10_000 : undefined);
      expect(sig.lastBlockLen).toBe(c.format === 'deltasync' ? 10_000 - 9 * 1024 : 0);
    }
  });

  it('Buffer, Uint8Array, path, Readable and AsyncIterable give the same signature', async () => {
    const data = bytes(300_001, 4);
    const path = join(dir, 'sig-forms');
    await writeFile(path, data);
    for (const c of COMBOS) {
      const opts: SignatureOptions = { ...c, fileSize: data.length };
      const ref = (await signature(data, opts)).toBuffer();
      expect((await signature(new Uint8Array(data), c)).toBuffer()).toEqual(ref);
      expect((await signature(path, c)).toBuffer()).toEqual(ref);
      expect((await signature(createReadStream(path, { highWaterMark: 7777 }), opts)).toBuffer()).toEqual(ref);
      expect((await signature(pieces(data, 1000), opts)).toBuffer()).toEqual(ref);
      expect((await signature(Readable.from(pieces(data, 65536)), opts)).toBuffer()).toEqual(ref);
    }
  });

  it('uses the unknown-size defaults for streams without a hint', async () => {
    const data = bytes(5000);
    expect((await signature(pieces(data, 100))).blockLen).toBe(4096);
    expect((await signature(pieces(data, 100), { format: 'rdiff' })).blockLen).toBe(2048);
    expect((await signature(data)).blockLen).toBe(700);
    expect((await signature(data, { format: 'rdiff' })).blockLen).toBe(256);
  });

  it('createSignatureStream matches signature().toBuffer(), across the 8 MiB chunk boundary', async () => {
    const data = bytes(9 * 1024 * 1024 + 17, 5);
    for (const c of [COMBOS[0]!, COMBOS[3]!]) {
      const ref = (await signature(data, { ...c, blockLen: 4096 })).toBuffer();
      const out = await collect(Readable.from(pieces(data, 1 << 20)).pipe(createSignatureStream({ ...c, blockLen: 4096, fileSize: data.length })));
      expect(out).toEqual(ref);
    }
    const small = bytes(1234);
    const hinted = await collect(Readable.from([small]).pipe(createSignatureStream({ fileSize: small.length })));
    expect(hinted).toEqual((await signature(small)).toBuffer());
    expect(await collect(Readable.from([]).pipe(createSignatureStream({ format: 'rdiff' })))).toEqual((await signature(Buffer.alloc(0), { format: 'rdiff', blockLen: 2048 })).toBuffer());
  });

  it('parse/read round-trip every field; read checks the magic early', async () => {
    for (const c of COMBOS) {
      const sig = await signature(bytes(70_000), { ...c, blockLen: 999, strongLen: 5 });
      const buf = sig.toBuffer();
      const path = join(dir, `sig-${c.format}-${c.strong}`);
      await writeFile(path, buf);
      for (const again of [Signature.parse(buf), await Signature.read(path), await Signature.read(pieces(buf, 10)), await Signature.read(buf)]) {
        expect(again).toMatchObject({ format: c.format, blockLen: 999, strongLen: 5, strong: c.strong, rolling: c.rolling, blockCount: 71, fileSize: sig.fileSize });
        expect(again.blocks).toEqual(sig.blocks);
      }
    }
    const notSig = Buffer.concat([Buffer.from('hello'), Buffer.alloc(100)]);
    expect(await codeOf(Signature.read(pieces(notSig, 4)))).toBe('ERR_BAD_MAGIC');
    const { delta: d } = await delta(await signature(Buffer.alloc(10)), Buffer.alloc(10));
    expect(await codeOf(() => Signature.parse(d))).toBe('ERR_BAD_MAGIC');
  });

  it('signatureFile writes the serialized signature atomically', async () => {
    const path = join(dir, 'basis-sf');
    const data = bytes(100_000, 8);
    await writeFile(path, data);
    const sig = await signatureFile(path, join(dir, 'basis-sf.sig'), { format: 'rdiff' });
    expect(await readFile(join(dir, 'basis-sf.sig'))).toEqual(sig.toBuffer());
    expect(await codeOf(signatureFile(join(dir, 'missing'), join(dir, 'x.sig')))).toBe('ERR_IO');
    expect(existsSync(join(dir, 'x.sig'))).toBe(false);
    expect(await leftovers()).toEqual([]);
  });

  it('validates options and inputs up front', async () => {
    expect(await codeOf(signature(Buffer.alloc(1), { format: 'rdiff', strong: 'xxh3' }))).toBe('ERR_USAGE');
    expect(await codeOf(signature(Buffer.alloc(1), { rolling: 'nope' as RollingKind }))).toBe('ERR_USAGE');
    expect(await codeOf(signature(Buffer.alloc(1), { blockLen: 2 ** 31 }))).toBe('ERR_BAD_PARAMS');
    expect(await codeOf(signature(Buffer.alloc(1), { strongLen: 33, strong: 'blake2b' }))).toBe('ERR_BAD_PARAMS');
    // Options are checked before the (missing) file is opened.
    expect(await codeOf(signature(join(dir, 'missing'), { format: 'rdiff', rolling: 'ds64' }))).toBe('ERR_USAGE');
    expect(await codeOf(() => createSignatureStream({ strong: 'sha1' as StrongKind }))).toBe('ERR_USAGE');
    expect(await codeOf(signature(42 as unknown as Buffer))).toBe('ERR_USAGE');
    expect(await codeOf(signature(Readable.from(['text', 'chunks'])))).toBe('ERR_USAGE');
    const missing = await signature(join(dir, 'missing')).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(DeltaSyncError);
    expect((missing as DeltaSyncError).code).toBe('ERR_IO');
    expect((missing as DeltaSyncError).path).toBe(join(dir, 'missing'));
    expect((missing as DeltaSyncError).message).toContain(join(dir, 'missing'));
    expect(exitCodeFor(missing)).toBe(11);
    expect(await codeOf(signature(dir))).toBe('ERR_IO');
  });

  it('the constructor refuses inconsistent parts', () => {
    const ok = { format: 'deltasync' as const, blockLen: 10, strongLen: 4, strong: 'xxh3' as const, rolling: 'ds64' as const, fileSize: 15, blocks: Buffer.alloc(24) };
    expect(new Signature(ok).blockCount).toBe(2);
    expect(() => new Signature({ ...ok, fileSize: 25 })).toThrow(DeltaSyncError);
    expect(() => new Signature({ ...ok, blocks: Buffer.alloc(23) })).toThrow(DeltaSyncError);
    expect(() => new Signature({ ...ok, fileSize: undefined })).toThrow(DeltaSyncError);
    expect(() => new Signature({ ...ok, format: 'rdiff' })).toThrow(DeltaSyncError);
    expect(() => new Signature({ ...ok, blockLen: 0 })).toThrow(DeltaSyncError);
  });
});

describe('delta and patch', () => {
  it('every input form round-trips, in both formats', async () => {
    const { basis, next } = pair(200_000);
    const basisPath = join(dir, 'dp-basis');
    const nextPath = join(dir, 'dp-next');
    await writeFile(basisPath, basis);
    await writeFile(nextPath, next);
    for (const c of COMBOS) {
      const sig = await signature(basis, { ...c, blockLen: 512 });
      const ref = await delta(sig, next);
      expect(ref.stats.newBytes).toBe(next.length);
      expect(ref.stats.literalBytes + ref.stats.matchedBytes).toBe(next.length);
      expect(ref.stats.deltaBytes).toBe(ref.delta.length);
      expect(ref.stats.matchedBytes).toBeGreaterThan(next.length * 0.9);
      expect(ref.delta.length).toBeLessThan(5000);
      // Known-size inputs give the same bytes; unknown-size ones the same result.
      expect((await delta(sig, nextPath)).delta).toEqual(ref.delta);
      expect((await delta(sig.toBuffer(), new Uint8Array(next))).delta).toEqual(ref.delta);
      const deltas = [
        ref.delta,
        (await delta(sig, createReadStream(nextPath, { highWaterMark: 4096 }))).delta,
        (await delta(sig, pieces(next, 3000))).delta,
        await collect(Readable.from(pieces(next, 10_000)).pipe(createDeltaStream(sig))),
      ];
      for (const d of deltas) {
        await writeFile(join(dir, 'dp-delta'), d);
        const reader: BasisReader = { read: async (o, l) => basis.subarray(o, o + l) };
        const sized: BasisReader = { read: async (o, l) => basis.subarray(o, o + l), size: basis.length };
        for (const b of [basis, basisPath, reader, sized]) {
          for (const input of [d, join(dir, 'dp-delta'), pieces(d, 100), Readable.from(pieces(d, 7))]) {
            const { output, stats } = await patch(b, input);
            expect(output.equals(next)).toBe(true);
            expect(stats.outBytes).toBe(next.length);
            expect(stats.copiedBytes + stats.literalBytes).toBe(next.length);
            expect(stats.verified).toBe(c.format === 'deltasync');
          }
        }
        const streamed = await collect(Readable.from(pieces(d, 5)).pipe(createPatchStream(basisPath)));
        expect(streamed.equals(next)).toBe(true);
      }
    }
  });

  it('a long run of matched blocks leaves as COPY commands of at most 32 MiB, before the input ends', async () => {
    // So a sync receiver copies the start of a big unchanged file while the sender still matches the rest.
    const MiB = 1024 * 1024;
    const data = randomBytes(80 * MiB);
    const sig = await signature(data);
    const engine = new DeltaEngine(sig, data.length);
    const parts: Buffer[] = [];
    for (let at = 0; at < 40 * MiB; at += 8 * MiB) parts.push(...(await engine.update(data.subarray(at, at + 8 * MiB))));
    expect(engine.stats.copyOps).toBeGreaterThanOrEqual(1);
    for (let at = 40 * MiB; at < data.length; at += 8 * MiB) parts.push(...(await engine.update(data.subarray(at, at + 8 * MiB))));
    parts.push(...(await engine.finish()));
    expect(engine.stats).toMatchObject({ copyOps: 3, literalOps: 0, matchedBytes: data.length });
    expect((await patch(data, Buffer.concat(parts))).output.equals(data)).toBe(true);
  });

  it('updateAhead (one chunk behind the matcher) gives update()\'s bytes; deltaFile over reused read buffers too', async () => {
    const MiB = 1024 * 1024;
    const { basis, next } = pair(3 * MiB, 21);
    // Several read chunks, unrelated stretches and copies of the basis in between.
    const data = Buffer.concat([bytes(2 * MiB + 12345, 22), next, bytes(MiB, 23), basis.subarray(MiB), bytes(777, 24)]);
    const basisPath = join(dir, 'ahead-basis');
    const dataPath = join(dir, 'ahead-new');
    await writeFile(basisPath, basis);
    await writeFile(dataPath, data);
    // Literal runs end at chunk borders, so the bytes depend on the chunking: compare like with like.
    const byUpdate = async (sig: Signature, size: number): Promise<Buffer> => {
      const engine = new DeltaEngine(sig, data.length);
      const parts: Buffer[] = [];
      for (let at = 0; at < data.length; at += size) parts.push(...(await engine.update(data.subarray(at, at + size))));
      parts.push(...(await engine.finish()));
      return Buffer.concat(parts);
    };
    for (const format of ['deltasync', 'rdiff'] as const) {
      const sig = await signature(basis, { format });
      for (const size of [MiB, 3 * MiB + 17]) {
        const want = await byUpdate(sig, size);
        const engine = new DeltaEngine(sig, data.length);
        const parts: Buffer[] = [];
        // Each chunk a fresh copy, overwritten once the call after next has resolved: bytes
        // handed back may point into the chunk before, never further back.
        const chunks: Buffer[] = [];
        for (let at = 0; at < data.length; at += size) {
          chunks.push(Buffer.from(data.subarray(at, at + size)));
          for (const part of await engine.updateAhead(chunks.at(-1)!)) parts.push(Buffer.from(part));
          if (chunks.length >= 3) chunks.at(-3)!.fill(0xee);
        }
        for (const part of await engine.finish()) parts.push(Buffer.from(part));
        expect(Buffer.concat(parts).equals(want), `${format}, chunks of ${size}`).toBe(true);
        expect((await patch(basis, want)).output.equals(data)).toBe(true);
      }
      await signatureFile(basisPath, join(dir, 'ahead.sig'), { format });
      await deltaFile(join(dir, 'ahead.sig'), dataPath, join(dir, 'ahead.delta'));
      const fromFile = await readFile(join(dir, 'ahead.delta'));
      expect(fromFile.equals(await byUpdate(sig, DELTA_FILE_CHUNK)), `${format} deltaFile`).toBe(true);
    }
  });

  it('an identical file is one COPY; an empty basis is all literal; empty to empty works', async () => {
    const data = bytes(100_000);
    for (const format of ['deltasync', 'rdiff'] as const) {
      const same = await delta(await signature(data, { format }), data);
      expect(same.stats).toMatchObject({ copyOps: 1, literalOps: 0, literalBytes: 0, matchedBytes: data.length });
      const fresh = await delta(await signature(Buffer.alloc(0), { format }), data);
      expect(fresh.stats).toMatchObject({ copyOps: 0, literalOps: 1, literalBytes: data.length });
      expect((await patch(Buffer.alloc(0), fresh.delta)).output.equals(data)).toBe(true);
      const empty = await delta(await signature(Buffer.alloc(0), { format }), Buffer.alloc(0));
      expect((await patch(Buffer.alloc(0), empty.delta)).output.length).toBe(0);
    }
  });

  it('deltaFile and patchFile write whole files atomically; patchFile can replace its basis', async () => {
    const { basis, next } = pair(150_000, 11);
    const basisPath = join(dir, 'ff-basis');
    await writeFile(basisPath, basis);
    await writeFile(join(dir, 'ff-next'), next);
    for (const format of ['deltasync', 'rdiff'] as const) {
      await signatureFile(basisPath, join(dir, 'ff.sig'), { format });
      const stats = await deltaFile(join(dir, 'ff.sig'), join(dir, 'ff-next'), join(dir, 'ff.delta'));
      const d = await readFile(join(dir, 'ff.delta'));
      expect(stats.deltaBytes).toBe(d.length);
      expect(d).toEqual((await delta(await Signature.read(join(dir, 'ff.sig')), next)).delta);
      const ps = await patchFile(basisPath, join(dir, 'ff.delta'), join(dir, 'ff-out'));
      expect(ps.outBytes).toBe(next.length);
      expect((await readFile(join(dir, 'ff-out'))).equals(next)).toBe(true);
    }
    // In place: the basis is read while the temp file is written, then replaced.
    await patchFile(basisPath, join(dir, 'ff.delta'), basisPath);
    expect((await readFile(basisPath)).equals(next)).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  it('a wrong basis is caught by the deltasync hash; no output file is left', async () => {
    const { basis, next } = pair(100_000, 21);
    const wrong = Buffer.from(basis);
    wrong[60_000] ^= 1; // inside a region the new file copies
    const { delta: d } = await delta(await signature(basis), next);
    expect(await codeOf(patch(wrong, d))).toBe('ERR_HASH_MISMATCH');
    const out = join(dir, 'hm-out');
    expect(await codeOf(patchFile(wrong, d, out))).toBe('ERR_HASH_MISMATCH');
    expect(existsSync(out)).toBe(false);
    expect(await leftovers()).toEqual([]);
    const stream = Readable.from([d]).pipe(createPatchStream(wrong));
    expect(await codeOf(collect(stream))).toBe('ERR_HASH_MISMATCH');
    expect(exitCodeFor(await patch(wrong, d).catch((e: unknown) => e))).toBe(2);
  });

  it('patchFile: COPY past a short basis, missing basis, missing delta -> error and no output', async () => {
    const { basis, next } = pair(100_000, 31);
    for (const format of ['deltasync', 'rdiff'] as const) {
      const { delta: d } = await delta(await signature(basis, { format }), next);
      const out = join(dir, `short-${format}`);
      expect(await codeOf(patchFile(basis.subarray(0, 60_000), d, out))).toBe('ERR_CORRUPT');
      const reader: BasisReader = { read: async (o, l) => basis.subarray(0, 60_000).subarray(o, o + l) };
      expect(await codeOf(patchFile(reader, d, out))).toBe('ERR_CORRUPT');
      expect(await codeOf(patchFile(join(dir, 'missing'), d, out))).toBe('ERR_IO');
      expect(await codeOf(patchFile(basis, join(dir, 'missing'), out))).toBe('ERR_IO');
      expect(existsSync(out)).toBe(false);
    }
    expect(await leftovers()).toEqual([]);
  });

  it('validates arguments', async () => {
    const sig = await signature(Buffer.alloc(10));
    expect(await codeOf(delta({} as Signature, Buffer.alloc(1)))).toBe('ERR_USAGE');
    expect(await codeOf(delta(sig, 5 as unknown as Buffer))).toBe('ERR_USAGE');
    expect(await codeOf(() => createDeltaStream(Buffer.alloc(3) as unknown as Signature))).toBe('ERR_USAGE');
    expect(await codeOf(patch(5 as unknown as Buffer, Buffer.alloc(1)))).toBe('ERR_USAGE');
    expect(await codeOf(() => createPatchStream({} as BasisReader))).toBe('ERR_USAGE');
    expect(await codeOf(patch({ read: async () => Buffer.alloc(0), size: -1 }, Buffer.alloc(1)))).toBe('ERR_USAGE');
    expect(await codeOf(patch(Buffer.alloc(0), Buffer.alloc(0)))).toBe('ERR_TRUNCATED');
    expect(await codeOf(deltaFile(join(dir, 'missing.sig'), join(dir, 'x'), join(dir, 'y')))).toBe('ERR_IO');
  });

  it('createPatchStream respects backpressure inside one huge COPY', async () => {
    const big = bytes(48 * 1024 * 1024, 51);
    for (const format of ['deltasync', 'rdiff'] as const) {
      const { delta: d } = await delta(await signature(big, { format }), big);
      expect(d.length).toBeLessThan(64); // a single COPY
      const ps = createPatchStream(big);
      Readable.from([d]).pipe(ps);
      await new Promise((r) => setTimeout(r, 300));
      // Nobody reads: at most about one batch may wait in the buffer, not the whole result.
      expect(ps.readableLength).toBeLessThanOrEqual(9 * 1024 * 1024);
      const out = await collect(ps);
      expect(out.equals(big)).toBe(true);
    }
  });

  it('stream forms work with pipeline() and expose stats', async () => {
    const { basis, next } = pair(80_000, 41);
    const sig = await signature(basis);
    const ds = createDeltaStream(sig);
    const parts: Buffer[] = [];
    await pipeline(Readable.from(pieces(next, 999)), ds, async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) parts.push(c);
    });
    expect(ds.stats.newBytes).toBe(next.length);
    expect(ds.stats.deltaBytes).toBe(Buffer.concat(parts).length);
    const ps = createPatchStream(basis);
    const out = await collect(Readable.from([Buffer.concat(parts)]).pipe(ps));
    expect(out.equals(next)).toBe(true);
    expect(ps.stats).toMatchObject({ outBytes: next.length, verified: true });
  });
});
