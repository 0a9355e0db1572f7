// Sparse signatures (lib/sparse-signature.ts, docs/PROTOCOL.md): the format refuses every damaged
// or hostile input, and deltas made from one rebuild the new data exactly with the literal bytes
// a full signature would give on the edits a sync meets (appends, prepends, overwrites,
// inserts, deletes).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeltaSyncError, patch, signature } from '../lib/index.js';
import type { Signature } from '../lib/index.js';
import { DeltaEngine } from '../lib/delta.js';
import { truncateStrong } from '../lib/sigcache.js';
import { SPARSE_HEADER_LEN, SparseSignature } from '../lib/sparse-signature.js';
import { seededBytes } from './helpers/bytes.js';

const BLOCK = 4096;
const basis = seededBytes(3 * 1024 * 1024 + 1234, 41);

async function fullSig(data: Buffer, strongLen = 3): Promise<Signature> {
  return truncateStrong(await signature(data, { blockLen: BLOCK, strong: 'xxh3', strongLen: 16 }), strongLen);
}

async function deltaOf(sig: Signature | SparseSignature, data: Buffer, chunk = 1 << 20): Promise<{ delta: Buffer; literal: number }> {
  const engine = new DeltaEngine(sig, data.length);
  const parts: Buffer[] = [];
  for (let o = 0; o < data.length; o += chunk) parts.push(...(await engine.update(data.subarray(o, o + chunk))));
  parts.push(...(await engine.finish()));
  return { delta: Buffer.concat(parts), literal: engine.stats.literalBytes };
}

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof DeltaSyncError) return err.code;
    throw err;
  }
}

describe('sparse signature format', () => {
  it('keeps full entries for every stride-th block and the last, a check for every block', async () => {
    const sig = await fullSig(basis);
    const sparse = SparseSignature.from(sig, 8, 3);
    const count = sig.blockCount; // 770 blocks: anchors 0, 8, …, 768 and 769
    expect(count).toBe(Math.ceil(basis.length / BLOCK));
    const anchors = [...Array(count).keys()].filter((b) => b % 8 === 0 || b === count - 1);
    expect(sparse.blocks.length).toBe(anchors.length * sig.entrySize);
    anchors.forEach((b, a) => {
      expect(sparse.blocks.subarray(a * sig.entrySize, (a + 1) * sig.entrySize).equals(sig.blocks.subarray(b * sig.entrySize, (b + 1) * sig.entrySize))).toBe(true);
    });
    for (let b = 0; b < count; b++) {
      // A check is the strong sum's prefix.
      expect(sparse.checks.subarray(b * 3, b * 3 + 3).equals(sig.blocks.subarray(b * sig.entrySize + 8, b * sig.entrySize + 11))).toBe(true);
    }
    const wire = sparse.toBuffer();
    expect(wire.length).toBe(SPARSE_HEADER_LEN + anchors.length * 11 + (count - anchors.length) * 3);
    expect(wire.length).toBe(SparseSignature.encodedLength(sig, 8, 3));
    // About a third of the full signature's entries.
    expect(wire.length).toBeLessThan(0.4 * sig.blocks.length);
    const back = SparseSignature.parse(wire);
    for (const k of ['rolling', 'strong', 'strongLen', 'checkLen', 'stride', 'blockLen', 'fileSize', 'blockCount', 'lastBlockLen'] as const) {
      expect(back[k]).toEqual(sparse[k]);
    }
    expect(back.blocks.equals(sparse.blocks)).toBe(true);
    expect(back.checks.equals(sparse.checks)).toBe(true);
  });

  it('lays out anchors and checks as the per-block definition says, for every count around a stride', async () => {
    // The tables are repacked run by run: block counts from 1 to a few strides, on both sides of
    // each multiple, against the layout written out block by block.
    const data = seededBytes(40 * 64 + 17, 7);
    for (const stride of [2, 3, 8]) {
      for (let size = 1; size <= data.length; size += size < 200 ? 13 : 61) {
        const sig = truncateStrong(await signature(data.subarray(0, size), { blockLen: 64, strong: 'xxh3', strongLen: 16 }), 5);
        const sparse = SparseSignature.from(sig, stride, 2);
        const count = sig.blockCount;
        const isAnchor = (b: number): boolean => b % stride === 0 || b === count - 1;
        const entry = sig.entrySize;
        const anchors: Buffer[] = [];
        const checks: Buffer[] = [];
        const rest: Buffer[] = [];
        for (let b = 0; b < count; b++) {
          const e = sig.blocks.subarray(b * entry, (b + 1) * entry);
          checks.push(e.subarray(8, 10));
          if (isAnchor(b)) anchors.push(e);
          else rest.push(e.subarray(8, 10));
        }
        expect(sparse.blocks.equals(Buffer.concat(anchors)), `stride ${stride}, ${count} blocks`).toBe(true);
        expect(sparse.checks.equals(Buffer.concat(checks)), `stride ${stride}, ${count} blocks`).toBe(true);
        const wire = sparse.toBuffer();
        expect(wire.subarray(SPARSE_HEADER_LEN).equals(Buffer.concat([...anchors, ...rest])), `stride ${stride}, ${count} blocks`).toBe(true);
        const back = SparseSignature.parse(wire);
        expect(back.blocks.equals(sparse.blocks)).toBe(true);
        expect(back.checks.equals(sparse.checks), `stride ${stride}, ${count} blocks`).toBe(true);
      }
    }
  });

  it('refuses every truncation and extension, and each bad header field, with ERR_BAD_PARAMS', async () => {
    const wire = SparseSignature.from(await fullSig(basis)).toBuffer();
    for (const cut of [0, 3, 4, SPARSE_HEADER_LEN - 1, SPARSE_HEADER_LEN, ...fc.sample(fc.nat(wire.length - 1), 200)]) {
      expect(code(() => SparseSignature.parse(wire.subarray(0, cut))), `cut ${cut}`).toBe('ERR_BAD_PARAMS');
    }
    expect(code(() => SparseSignature.parse(Buffer.concat([wire, Buffer.alloc(1)])))).toBe('ERR_BAD_PARAMS');
    const field = (at: number, value: number, width = 1): Buffer => {
      const b = Buffer.from(wire);
      b.writeUIntBE(value, at, width);
      return b;
    };
    const bad: [string, Buffer][] = [
      ['magic', field(0, 0x64735347, 4)],
      ['version', field(4, 2)],
      ['rolling code', field(5, 9)],
      ['strong code', field(6, 0)],
      ['strong length 0', field(7, 0)],
      ['strong length > 16', field(7, 17)],
      ['check length 0', field(8, 0)],
      ['check length > strong length', field(8, 4)],
      ['reserved', field(9, 1)],
      ['stride 0', field(10, 0, 2)],
      ['stride 1', field(10, 1, 2)],
      ['block length 0', field(12, 0, 4)],
      ['block length changed', field(12, BLOCK * 2, 4)],
      ['size 0', Buffer.concat([wire.subarray(0, 16), Buffer.alloc(8), wire.subarray(24)])],
      ['size off by one block', field(20, basis.length + BLOCK, 4)],
    ];
    const huge = Buffer.from(wire);
    huge.writeBigUInt64BE(1n << 60n, 16);
    bad.push(['size above 2^53', huge]);
    for (const [what, data] of bad) {
      let message = '';
      try {
        SparseSignature.parse(data);
      } catch (err) {
        message = (err as Error).message;
        expect(err, what).toBeInstanceOf(DeltaSyncError);
        expect((err as DeltaSyncError).code, what).toBe('ERR_BAD_PARAMS');
      }
      expect(message, what).toMatch(/^sparse signature: /);
    }
  });

  it('any bytes, and any header over random entries: a SparseSignature the matcher accepts, or ERR_BAD_PARAMS', async () => {
    const header = fc.record({
      // Mostly valid values, so that many inputs get past the header.
      version: fc.constantFrom(1, 1, 1, 2),
      rolling: fc.constantFrom(1, 1, 2, 3, 0, 4),
      strong: fc.constantFrom(1, 1, 2, 3, 0),
      strongLen: fc.integer({ min: 0, max: 20 }),
      checkLen: fc.integer({ min: 0, max: 5 }),
      stride: fc.constantFrom(0, 1, 2, 3, 8, 8, 8, 20),
      blockLen: fc.constantFrom(0, 1, 7, 64, 4096, 4096, 2 ** 31),
      size: fc.integer({ min: 0, max: 300_000 }),
      extra: fc.constantFrom(0, 0, 0, -1, 1),
    });
    const inputs: Buffer[] = fc.sample(fc.uint8Array({ maxLength: 200 }), 200).map((b) => Buffer.from(b));
    for (const h of fc.sample(header, 800)) {
      const head = Buffer.alloc(SPARSE_HEADER_LEN);
      head.write('dsSP', 'latin1');
      [head[4], head[5], head[6], head[7], head[8]] = [h.version, h.rolling, h.strong, h.strongLen, h.checkLen];
      head.writeUInt16BE(h.stride, 10);
      head.writeUInt32BE(h.blockLen, 12);
      head.writeBigUInt64BE(BigInt(h.size), 16);
      // Aim at the exact length the header implies (give or take a byte) so parsing gets deep.
      const count = h.blockLen > 0 ? Math.ceil(h.size / h.blockLen) : 0;
      const stride = Math.max(h.stride, 1);
      const anchors = count === 0 ? 0 : Math.floor((count - 1) / stride) + 1 + ((count - 1) % stride === 0 ? 0 : 1);
      const weak = h.rolling === 1 ? 8 : 4;
      const body = anchors * (weak + h.strongLen) + (count - anchors) * h.checkLen + h.extra;
      if (body < 0 || body > 4 << 20) continue;
      inputs.push(Buffer.concat([head, seededBytes(body, h.size + h.stride)]));
    }
    let parsed = 0;
    for (const input of inputs) {
      await new Promise((resolve) => setImmediate(resolve));
      let sig: SparseSignature;
      try {
        sig = SparseSignature.parse(input);
      } catch (err) {
        expect(err, input.subarray(0, SPARSE_HEADER_LEN).toString('hex')).toBeInstanceOf(DeltaSyncError);
        expect((err as DeltaSyncError).code).toBe('ERR_BAD_PARAMS');
        continue;
      }
      parsed++;
      // Whatever the entries hold, the native matcher takes it and the delta is well formed.
      const next = seededBytes(Math.min(sig.fileSize + 1000, 200_000), 5);
      const { delta } = await deltaOf(sig, next, 65_536);
      expect(delta.length).toBeGreaterThan(0);
    }
    expect(parsed).toBeGreaterThan(10);
  });

  it('a damaged sparse signature that still parses never yields a wrong file: patch refuses or rebuilds it exactly', async () => {
    const small = basis.subarray(0, 400_000);
    const next = Buffer.concat([small.subarray(0, 100_000), seededBytes(5000, 42), small.subarray(100_000)]);
    const wire = SparseSignature.from(await fullSig(small)).toBuffer();
    const outcomes = new Map<string, number>();
    for (const [pos, mask] of fc.sample(fc.tuple(fc.nat(wire.length - 1), fc.integer({ min: 1, max: 255 })), 150)) {
      // A macrotask per run: small native calls resolve inline, and a long microtask chain
      // starves vitest's worker RPC under a sanitizer build.
      await new Promise((resolve) => setImmediate(resolve));
      const bad = Buffer.from(wire);
      bad[pos] ^= mask;
      let parsed: SparseSignature;
      try {
        parsed = SparseSignature.parse(bad);
      } catch (err) {
        expect((err as DeltaSyncError).code).toBe('ERR_BAD_PARAMS');
        outcomes.set('refused', (outcomes.get('refused') ?? 0) + 1);
        continue;
      }
      const { delta } = await deltaOf(parsed, next);
      try {
        const { output } = await patch(small, delta);
        expect(output.equals(next)).toBe(true);
        outcomes.set('exact', (outcomes.get('exact') ?? 0) + 1);
      } catch (err) {
        expect(err).toBeInstanceOf(DeltaSyncError);
        expect(['ERR_HASH_MISMATCH', 'ERR_CORRUPT']).toContain((err as DeltaSyncError).code);
        outcomes.set('refused by patch', (outcomes.get('refused by patch') ?? 0) + 1);
      }
    }
    expect(outcomes.get('exact') ?? 0).toBeGreaterThan(0);
  });

  it('a check that lets a changed block through is caught by the whole-file hash, not written', async () => {
    const sig = await fullSig(basis, 16);
    const next = Buffer.from(basis);
    next.fill(7, 5 * BLOCK + 10, 5 * BLOCK + 20); // block 5 changes
    const sparse = SparseSignature.from(sig, 8, 3);
    // Forge block 5's check to the changed block's: the sender confirms it as a copy.
    const changed = await signature(next.subarray(5 * BLOCK, 6 * BLOCK), { blockLen: BLOCK, strong: 'xxh3', strongLen: 16 });
    const forged = Buffer.from(sparse.toBuffer());
    const anchors = Math.ceil(sig.blockCount / 8) + ((sig.blockCount - 1) % 8 === 0 ? 0 : 1);
    // Checks of non-anchor blocks follow the anchors in block order; block 5 is the 5th of them (1..7).
    changed.blocks.copy(forged, SPARSE_HEADER_LEN + anchors * sig.entrySize + 4 * 3, 8, 11);
    const { delta, literal } = await deltaOf(SparseSignature.parse(forged), next);
    expect(literal).toBe(0);
    await expect(patch(basis, delta)).rejects.toMatchObject({ code: 'ERR_HASH_MISMATCH' });
    // The honest signature sends the changed block.
    const honest = await deltaOf(sparse, next);
    expect(honest.literal).toBe(BLOCK);
    expect((await patch(basis, honest.delta)).output.equals(next)).toBe(true);
  });
});

describe('deltas from a sparse signature', () => {
  const edits: Record<string, () => Buffer> = {
    'identical': () => basis,
    '1 byte appended': () => Buffer.concat([basis, Buffer.from([1])]),
    '1 byte prepended': () => Buffer.concat([Buffer.from([1]), basis]),
    '1 byte changed in the middle': () => {
      const b = Buffer.from(basis);
      b[b.length >> 1]! ^= 0xff;
      return b;
    },
    '30 scattered 1 KiB overwrites': () => {
      const b = Buffer.from(basis);
      for (let i = 0; i < 30; i++) seededBytes(1024, 100 + i).copy(b, Math.floor(((i + 0.5) * b.length) / 31));
      return b;
    },
    '5000 bytes inserted': () => Buffer.concat([basis.subarray(0, 1_000_003), seededBytes(5000, 7), basis.subarray(1_000_003)]),
    '7777 bytes deleted': () => Buffer.concat([basis.subarray(0, 2_000_001), basis.subarray(2_007_778)]),
    'unrelated data': () => seededBytes(basis.length, 99),
    'truncated to half': () => basis.subarray(0, basis.length >> 1),
  };
  for (const [name, make] of Object.entries(edits)) {
    it(`${name}: exact result, literal bytes of the full signature's delta`, async () => {
      const next = make();
      const sig = await fullSig(basis);
      const dense = await deltaOf(sig, next);
      for (const chunk of [1 << 20, 65_537]) {
        const sparse = await deltaOf(SparseSignature.parse(SparseSignature.from(sig).toBuffer()), next, chunk);
        expect((await patch(basis, sparse.delta)).output.equals(next), `chunk ${chunk}`).toBe(true);
        expect(sparse.literal, `chunk ${chunk}`).toBeLessThanOrEqual(dense.literal);
      }
    });
  }

  it('blocks moved apart by less than the anchor stride are found around their anchors only', async () => {
    // Reordered 64 KiB pieces: each piece holds 16 blocks, so two anchors, and the blocks
    // between are confirmed from them: nothing is sent as literal but the tail block.
    const pieces: Buffer[] = [];
    for (let o = 0; o + 65_536 <= basis.length; o += 65_536) pieces.push(basis.subarray(o, o + 65_536));
    const next = Buffer.concat(pieces.reverse());
    const sig = await fullSig(basis);
    const sparse = await deltaOf(SparseSignature.from(sig), next);
    expect((await patch(basis, sparse.delta)).output.equals(next)).toBe(true);
    expect(sparse.literal).toBe(0);
  });
});
