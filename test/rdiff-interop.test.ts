// Interop with the real `rdiff` (librsync 2.3.2), both ways: byte-identical signatures, rdiff
// applies our deltas, we apply rdiff's, and our deltas are at most 1% larger than rdiff's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Signature, deltaFile, patchFile, signature, signatureFile } from '../lib/index.js';
import type { RollingKind, SignatureOptions, StrongKind } from '../lib/index.js';
import { seededBytes } from './helpers/bytes.js';

const run = promisify(execFile);
let dir: string;
let n = 0;
const ratios: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deltasync-rdiff-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  if (ratios.length) console.log(`delta size ours/rdiff:\n  ${ratios.join('\n  ')}`);
});

async function rdiff(...args: string[]): Promise<void> {
  await run('rdiff', ['-f', ...args], { maxBuffer: 1 << 20 });
}

/** `rdiff signature` reading the basis from a pipe (size unknown). */
async function rdiffSignatureFromStdin(basis: string, sig: string): Promise<void> {
  const child = spawn('rdiff', ['-f', 'signature', '-', sig], { stdio: ['pipe', 'ignore', 'inherit'] });
  createReadStream(basis).pipe(child.stdin);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code).toBe(0);
}

function path(name: string): string {
  return join(dir, `${n++}-${name}`);
}

/** Deterministic bytes; `alphabet` < 256 gives low-entropy, repetitive text. */
function bytes(size: number, seed: number, alphabet = 256): Buffer {
  return seededBytes(size, seed, alphabet, 97);
}

/** A typical revision: a few inserts, a delete, an overwrite, a moved range, an append. */
function edit(basis: Buffer, seed: number): Buffer {
  const len = basis.length;
  const at = (f: number) => Math.floor(len * f);
  const moved = basis.subarray(at(0.6), at(0.6) + Math.min(50_000, at(0.05)));
  const out = Buffer.concat([
    bytes(17, seed),
    basis.subarray(0, at(0.2)),
    bytes(1000, seed + 1),
    basis.subarray(at(0.2), at(0.4)),
    basis.subarray(at(0.4) + 3000, at(0.6)),
    basis.subarray(at(0.6) + moved.length),
    moved,
    bytes(333, seed + 2),
  ]);
  out.fill(0x55, Math.floor(out.length * 0.3), Math.floor(out.length * 0.3) + 64);
  return out;
}

/** Our rdiff-format signature file for `basisPath`; returns its path. */
async function ourSignature(basisPath: string, opts: SignatureOptions = {}): Promise<string> {
  const sigPath = path('ours.sig');
  await signatureFile(basisPath, sigPath, { format: 'rdiff', ...opts });
  return sigPath;
}

async function expectSameFile(a: string, b: string): Promise<void> {
  const [x, y] = await Promise.all([readFile(a), readFile(b)]);
  expect(x.length).toBe(y.length);
  expect(x.equals(y)).toBe(true);
}

/**
 * Full two-way check for one basis/new pair: identical signatures, both deltas applied by the
 * other side, size ratio within 1%.
 */
async function twoWay(name: string, basis: Buffer, next: Buffer, rdiffArgs: string[] = [], opts: SignatureOptions = {}): Promise<void> {
  const basisPath = path('basis');
  const nextPath = path('next');
  await writeFile(basisPath, basis);
  await writeFile(nextPath, next);
  const theirSig = path('rdiff.sig');
  await rdiff('signature', ...rdiffArgs, basisPath, theirSig);
  const ourSig = await ourSignature(basisPath, opts);
  await expectSameFile(ourSig, theirSig);

  const theirDelta = path('rdiff.delta');
  const ourDelta = path('ours.delta');
  await rdiff('delta', theirSig, nextPath, theirDelta);
  await deltaFile(theirSig, nextPath, ourDelta); // our delta from rdiff's signature file

  const byRdiff = path('patched-by-rdiff');
  await rdiff('patch', basisPath, ourDelta, byRdiff);
  await expectSameFile(byRdiff, nextPath);
  const byUs = path('patched-by-us');
  await patchFile(basisPath, theirDelta, byUs);
  await expectSameFile(byUs, nextPath);

  const ours = (await stat(ourDelta)).size;
  const theirs = (await stat(theirDelta)).size;
  ratios.push(`${name}: ${ours} / ${theirs} = ${(ours / theirs).toFixed(4)}`);
  expect(ours).toBeLessThanOrEqual(Math.floor(theirs * 1.01));
  await Promise.all([basisPath, nextPath, theirSig, ourSig, theirDelta, ourDelta, byRdiff, byUs].map((p) => rm(p, { force: true })));
}

const MiB = 1024 * 1024;

describe('rdiff signatures are byte-identical', () => {
  it('with the defaults (recommended block length, max strong length, blake2 + rabinkarp)', async () => {
    const sizes = [0, 1, 2, 255, 256, 257, 4095, 65535, 65536, 65537, 65600, 147455, 147456, 262143, 262144, MiB + 3, 4_000_000, 10 * MiB + 1];
    for (const size of sizes) {
      const basisPath = path(`basis-${size}`);
      await writeFile(basisPath, bytes(size, size + 7));
      const theirSig = path('rdiff.sig');
      await rdiff('signature', basisPath, theirSig);
      await expectSameFile(await ourSignature(basisPath), theirSig);
      // The Buffer form gives the same bytes.
      expect((await signature(await readFile(basisPath), { format: 'rdiff' })).toBuffer().equals(await readFile(theirSig))).toBe(true);
    }
  });

  it('on stdin (size unknown) like a stream without a size hint', async () => {
    for (const size of [0, 1000, 300_000, 3 * MiB]) {
      const basisPath = path('basis');
      await writeFile(basisPath, bytes(size, 3));
      const theirSig = path('rdiff-stdin.sig');
      await rdiffSignatureFromStdin(basisPath, theirSig);
      const ours = await signature(createReadStream(basisPath), { format: 'rdiff' });
      expect(ours.toBuffer().equals(await readFile(theirSig))).toBe(true);
    }
  });

  it('with -b / -S / -H / -R settings', async () => {
    const settings: { b: number; S: number; H: 'blake2' | 'md4'; R: 'rabinkarp' | 'rollsum' }[] = [
      { b: 1, S: 1, H: 'md4', R: 'rollsum' },
      { b: 7, S: 8, H: 'blake2', R: 'rabinkarp' },
      { b: 100, S: 16, H: 'md4', R: 'rabinkarp' },
      { b: 128, S: 32, H: 'blake2', R: 'rollsum' },
      { b: 1000, S: 5, H: 'blake2', R: 'rollsum' },
      { b: 4096, S: 16, H: 'md4', R: 'rollsum' },
      { b: 65536, S: 20, H: 'blake2', R: 'rabinkarp' },
      { b: 3000, S: 12, H: 'md4', R: 'rabinkarp' },
    ];
    for (const size of [0, 1, 999, 100_000, 1_000_003]) {
      const data = bytes(size, size + 1);
      const basisPath = path('basis');
      await writeFile(basisPath, data);
      for (const s of settings) {
        if (s.b < 16 && size > 100_000) continue; // keep signatures of tiny blocks small
        const strong: StrongKind = s.H === 'blake2' ? 'blake2b' : 'md4';
        const rolling: RollingKind = s.R;
        const theirSig = path('rdiff.sig');
        await rdiff('signature', '-b', String(s.b), '-S', String(s.S), '-H', s.H, '-R', s.R, basisPath, theirSig);
        const ourSig = await ourSignature(basisPath, { blockLen: s.b, strongLen: s.S, strong, rolling });
        await expectSameFile(ourSig, theirSig);
        // And ours parses theirs back with the same parameters.
        const parsed = await Signature.read(theirSig);
        expect(parsed).toMatchObject({ format: 'rdiff', blockLen: s.b, strongLen: s.S, strong, rolling, blockCount: Math.ceil(size / s.b) });
      }
    }
  });
});

describe('rdiff deltas both ways', () => {
  it('typical edits at several sizes (default parameters)', async () => {
    for (const size of [0, 1, 100, 5000, 65537, 300_000, 2 * MiB + 5]) {
      const basis = bytes(size, size);
      await twoWay(`edits ${size} B`, basis, edit(basis, size + 1));
    }
  });

  it('special shapes: identical, empty new, empty basis, unrelated, prepend, append, truncate', async () => {
    const basis = bytes(500_000, 42);
    await twoWay('identical', basis, basis);
    await twoWay('empty new', basis, Buffer.alloc(0));
    await twoWay('empty basis', Buffer.alloc(0), basis);
    await twoWay('unrelated 500 KB', basis, bytes(500_000, 43));
    await twoWay('prepend 1 byte', basis, Buffer.concat([Buffer.from([1]), basis]));
    await twoWay('append 10 KB', basis, Buffer.concat([basis, bytes(10_000, 44)]));
    await twoWay('truncated by 1000', basis, basis.subarray(0, basis.length - 1000));
    await twoWay('short last block edited', basis, Buffer.concat([basis.subarray(0, basis.length - 10), Buffer.from('0123456789')]));
  });

  it('low-entropy (repetitive) data, where many blocks share sums', async () => {
    const basis = bytes(400_000, 5, 3);
    await twoWay('low-entropy edits', basis, edit(basis, 6));
    const periodic = Buffer.alloc(300_000);
    for (let i = 0; i < periodic.length; i++) periodic[i] = 97 + (i % 26);
    await twoWay('periodic text, inserts', periodic, Buffer.concat([periodic.subarray(0, 150_000), Buffer.from('XYZ'), periodic.subarray(150_000)]));
  });

  it('non-default signature settings', async () => {
    const basis = bytes(700_000, 9);
    const next = edit(basis, 10);
    await twoWay('-b 100 -H md4 -R rollsum', basis, next, ['-b', '100', '-H', 'md4', '-R', 'rollsum'], { blockLen: 100, strong: 'md4', rolling: 'rollsum' });
    await twoWay('-b 4096 -S 8', basis, next, ['-b', '4096', '-S', '8'], { blockLen: 4096, strongLen: 8 });
    await twoWay('-b 333 -S 20 -R rollsum', basis, next, ['-b', '333', '-S', '20', '-R', 'rollsum'], { blockLen: 333, strongLen: 20, rolling: 'rollsum' });
  });

  it('64 MiB with edits', async () => {
    const basis = bytes(64 * MiB, 64);
    await twoWay('64 MiB edits', basis, edit(basis, 65));
  }, 300_000);
});
