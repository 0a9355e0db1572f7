// Property: patch(basis, delta(signature(basis), next)) == next for random bases and edits,
// for every valid format × rolling × strong combination, through the Buffer, stream and file forms.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  Signature,
  createDeltaStream,
  createPatchStream,
  createSignatureStream,
  delta,
  deltaFile,
  patch,
  patchFile,
  signature,
  signatureFile,
} from '../lib/index.js';
import type { Format, RollingKind, SignatureOptions, StrongKind } from '../lib/index.js';
import { STRONG_FULL_LEN } from '../lib/params.js';
import { seededBytes } from './helpers/bytes.js';

let dir: string;
let runId = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltasync-prop-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Combo {
  format: Format;
  rolling: RollingKind;
  strong: StrongKind;
}

const COMBOS: Combo[] = [
  ...(['ds64', 'rollsum', 'rabinkarp'] as const).flatMap((rolling) =>
    (['xxh3', 'md4', 'blake2b'] as const).map((strong) => ({ format: 'deltasync' as const, rolling, strong })),
  ),
  ...(['rollsum', 'rabinkarp'] as const).flatMap((rolling) =>
    (['md4', 'blake2b'] as const).map((strong) => ({ format: 'rdiff' as const, rolling, strong })),
  ),
];

type Form = 'buffer' | 'stream' | 'file';

/** Deterministic bytes from a seed; `alphabet` < 256 makes low-entropy data (many weak-sum ties). */
function bytes(n: number, seed: number, alphabet = 256): Buffer {
  return seededBytes(n, seed, alphabet);
}

type Edit =
  | { op: 'insert'; at: number; len: number; seed: number }
  | { op: 'delete'; at: number; len: number }
  | { op: 'overwrite'; at: number; len: number; seed: number }
  | { op: 'append'; len: number; seed: number }
  | { op: 'prepend'; len: number; seed: number }
  | { op: 'move'; from: number; len: number; to: number }
  | { op: 'duplicate'; from: number; len: number; to: number };

const frac = fc.double({ min: 0, max: 1, noNaN: true });
const editLen = fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 5000 }));
const seed = fc.nat();

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: frac, len: editLen, seed }),
  fc.record({ op: fc.constant('delete' as const), at: frac, len: editLen }),
  fc.record({ op: fc.constant('overwrite' as const), at: frac, len: editLen, seed }),
  fc.record({ op: fc.constant('append' as const), len: editLen, seed }),
  fc.record({ op: fc.constant('prepend' as const), len: editLen, seed }),
  fc.record({ op: fc.constant('move' as const), from: frac, len: editLen, to: frac }),
  fc.record({ op: fc.constant('duplicate' as const), from: frac, len: editLen, to: frac }),
);

function applyEdits(basis: Buffer, edits: readonly Edit[]): Buffer {
  let b = basis;
  const pos = (f: number) => Math.floor(f * b.length);
  for (const e of edits) {
    switch (e.op) {
      case 'insert': {
        const at = pos(e.at);
        b = Buffer.concat([b.subarray(0, at), bytes(e.len, e.seed), b.subarray(at)]);
        break;
      }
      case 'delete': {
        const at = pos(e.at);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.len)]);
        break;
      }
      case 'overwrite': {
        const at = pos(e.at);
        b = Buffer.from(b);
        bytes(e.len, e.seed).copy(b, at);
        break;
      }
      case 'append':
        b = Buffer.concat([b, bytes(e.len, e.seed)]);
        break;
      case 'prepend':
        b = Buffer.concat([bytes(e.len, e.seed), b]);
        break;
      case 'move':
      case 'duplicate': {
        const from = pos(e.from);
        const piece = Buffer.from(b.subarray(from, from + e.len));
        const rest = e.op === 'move' ? Buffer.concat([b.subarray(0, from), b.subarray(from + piece.length)]) : b;
        const to = Math.floor(e.to * rest.length);
        b = Buffer.concat([rest.subarray(0, to), piece, rest.subarray(to)]);
        break;
      }
    }
  }
  return b;
}

async function* pieces(data: Buffer, sizes: readonly number[]): AsyncGenerator<Buffer> {
  let i = 0;
  let k = 0;
  while (i < data.length) {
    const n = sizes[k++ % sizes.length]!;
    yield data.subarray(i, i + n);
    i += n;
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** One round trip through a form; returns the patched result and the delta size. */
async function roundTrip(form: Form, basis: Buffer, next: Buffer, opts: SignatureOptions, chunking: number[]): Promise<{ out: Buffer; deltaLen: number }> {
  if (form === 'buffer') {
    const sig = await signature(basis, opts);
    const { delta: d } = await delta(sig, next);
    const { output } = await patch(basis, d);
    return { out: output, deltaLen: d.length };
  }
  if (form === 'stream') {
    const sigBytes = await collect(Readable.from(pieces(basis, chunking)).pipe(createSignatureStream({ ...opts, fileSize: basis.length })));
    const sig = Signature.parse(sigBytes);
    const d = await collect(Readable.from(pieces(next, chunking)).pipe(createDeltaStream(sig)));
    const out = await collect(Readable.from(pieces(d, chunking)).pipe(createPatchStream(basis)));
    return { out, deltaLen: d.length };
  }
  const id = runId++;
  const [b, n, s, d, o] = ['basis', 'next', 'sig', 'delta', 'out'].map((x) => join(dir, `${x}-${id}`));
  await writeFile(b!, basis);
  await writeFile(n!, next);
  await signatureFile(b!, s!, opts);
  await deltaFile(s!, n!, d!);
  await patchFile(b!, d!, o!);
  const out = await readFile(o!);
  const deltaLen = (await readFile(d!)).length;
  await Promise.all([b, n, s, d, o].map((p) => rm(p!, { force: true })));
  return { out, deltaLen };
}

const caseArb = fc.record({
  combo: fc.constantFrom(...COMBOS),
  form: fc.constantFrom<Form>('buffer', 'stream', 'file'),
  // Block lengths: tiny (many blocks) to default; sizes often at block boundaries.
  blockLen: fc.oneof(fc.constantFrom(1, 2, 3, 8, 64, 100, 128, 700), fc.integer({ min: 1, max: 2048 }), fc.constant(undefined)),
  sizeKind: fc.constantFrom('empty', 'tiny', 'small', 'boundary', 'large'),
  sizeSeed: fc.nat(),
  boundaryDelta: fc.integer({ min: -1, max: 1 }),
  dataSeed: fc.nat(),
  alphabet: fc.constantFrom(256, 256, 4, 1),
  strongPick: fc.nat(),
  edits: fc.array(editArb, { maxLength: 6 }),
  chunking: fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 4 }),
});

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function sizeOf(c: Case, blockLen: number): number {
  switch (c.sizeKind) {
    case 'empty':
      return 0;
    case 'tiny':
      return c.sizeSeed % Math.max(2, blockLen); // shorter than one block
    case 'small':
      return c.sizeSeed % 20_000;
    case 'boundary':
      return Math.max(0, ((c.sizeSeed % 40) + 1) * blockLen + c.boundaryDelta);
    default:
      return 100_000 + (c.sizeSeed % 200_000);
  }
}

describe('round trip (property)', () => {
  it('random bases and edit scripts, every combination and form', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const blockLen = c.blockLen ?? 700;
        // Tiny blocks on large files make huge signatures: keep those to small files.
        const size = Math.min(sizeOf(c, blockLen), blockLen < 16 ? 30_000 : Infinity);
        const basis = bytes(size, c.dataSeed, c.alphabet);
        const next = applyEdits(basis, c.edits);
        // Strong length: default, or from 8 bytes to full (shorter ones may legitimately collide).
        const full = STRONG_FULL_LEN[c.combo.strong];
        const strongLen = c.strongPick % 3 === 0 ? undefined : 8 + (c.strongPick % (full - 7));
        const opts: SignatureOptions = { ...c.combo, blockLen: c.blockLen, strongLen };
        const { out } = await roundTrip(c.form, basis, next, opts, c.chunking);
        expect(out.length).toBe(next.length);
        expect(out.equals(next)).toBe(true);
        // Small inputs are hashed inline (already-resolved promises): without a macrotask turn
        // the 1000 runs never let the worker answer vitest's RPC, which times out under ASan.
        await new Promise((resolve) => setImmediate(resolve));
      }),
      { numRuns: 1000 },
    );
  });

  it('every combination through every form, at block-size boundaries', async () => {
    for (const combo of COMBOS) {
      for (const form of ['buffer', 'stream', 'file'] as const) {
        for (const size of [0, 1, 63, 64, 65, 64 * 37, 64 * 37 + 1]) {
          const basis = bytes(size, size + 1);
          const next = applyEdits(basis, [
            { op: 'insert', at: 0.5, len: 10, seed: 1 },
            { op: 'move', from: 0.1, len: 100, to: 0.9 },
          ]);
          for (const [b, n] of [[basis, next], [next, basis], [basis, basis], [Buffer.alloc(0), next]] as const) {
            const { out } = await roundTrip(form, b, n, { ...combo, blockLen: 64 }, [1000, 1]);
            expect(out.equals(n)).toBe(true);
          }
        }
      }
    }
  });

  it('unedited data is one COPY and tiny deltas; moved blocks are found', async () => {
    const basis = bytes(200_000, 77);
    for (const combo of COMBOS) {
      const sig = await signature(basis, { ...combo, blockLen: 1000 });
      const same = await delta(sig, basis);
      expect(same.stats.copyOps).toBe(1);
      expect(same.delta.length).toBeLessThan(40);
      // Swap the halves: two copies, no literal.
      const swapped = Buffer.concat([basis.subarray(100_000), basis.subarray(0, 100_000)]);
      const moved = await delta(sig, swapped);
      expect(moved.stats.literalBytes).toBe(0);
      expect(moved.stats.copyOps).toBe(2);
      expect((await patch(basis, moved.delta)).output.equals(swapped)).toBe(true);
    }
  });
});

describe('round trip (multi-MiB, deterministic)', () => {
  const MiB = 1024 * 1024;
  const cases: { name: string; size: number; edits: Edit[] }[] = [
    {
      name: '20 MiB with scattered edits across the 8 MiB chunk boundaries',
      size: 20 * MiB,
      edits: [
        { op: 'overwrite', at: 0.1, len: 3000, seed: 5 },
        { op: 'insert', at: 0.4, len: 12345, seed: 6 },
        { op: 'delete', at: 0.7, len: 99999 },
        { op: 'move', from: 0.2, len: 2 * MiB, to: 0.95 },
        { op: 'append', len: 777, seed: 7 },
      ],
    },
    { name: '9 MiB duplicated into 18 MiB', size: 9 * MiB, edits: [{ op: 'duplicate', from: 0, len: 9 * MiB, to: 1 }] },
  ];
  for (const c of cases) {
    for (const format of ['deltasync', 'rdiff'] as const) {
      it(`${c.name} (${format}, default parameters, buffer and file forms)`, async () => {
        const basis = bytes(c.size, 99);
        const next = applyEdits(basis, c.edits);
        for (const form of ['buffer', 'file'] as const) {
          const { out, deltaLen } = await roundTrip(form, basis, next, { format }, [CHUNK_HINT]);
          expect(out.equals(next)).toBe(true);
          // The edits add well under 1 MiB of new data; everything else is copied.
          expect(deltaLen).toBeLessThan(MiB);
        }
      });
    }
  }
});

const CHUNK_HINT = 1 << 20;
