// Hash flooding (issue 6; the chain blow-up rsync 3.5 fixed): a signature whose blocks all share
// one weak sum must not make delta cost a strong hash at every byte offset. Checked with the
// matcher's own counters, which are deterministic, not with timings; the timing comparison is
// `node bench/hashflood.mjs`.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { native } from '../lib/native.js';
import type { RollingKind, StrongKind } from '../lib/native.js';

const BLOCK = 2048;
const SIZE = 4 << 20;

function entriesOf(params: { blockLen: number; rolling: RollingKind; strong: StrongKind; strongLen: number }, basis: Buffer): Buffer {
  const b = new native.SignatureBuilder(params);
  return Buffer.concat([b.updateSync(basis), b.final()]);
}

/** Every weak sum overwritten with `weakOf`'s (big-endian, the entry layout). */
function flooded(entries: Buffer, rolling: RollingKind, strongLen: number, weakOf: Buffer): Buffer {
  const width = native.weakWidth(rolling);
  let weak = native.rollingDigest(rolling, weakOf);
  const bytes = Buffer.alloc(width);
  for (let i = width - 1; i >= 0; i--) {
    bytes[i] = Number(weak & 0xffn);
    weak >>= 8n;
  }
  const out = Buffer.from(entries);
  for (let pos = 0; pos < out.length; pos += width + strongLen) bytes.copy(out, pos);
  return out;
}

async function run(
  params: { blockLen: number; rolling: RollingKind; strong: StrongKind; strongLen: number },
  blocks: Buffer,
  basis: Buffer,
  data: Buffer,
) {
  const blockCount = blocks.length / (native.weakWidth(params.rolling) + params.strongLen);
  const m = new native.Matcher({ ...params, blocks, blockCount, lastBlockLen: basis.length - (blockCount - 1) * params.blockLen });
  const out: Buffer[] = [];
  const take = (r: { ops: Float64Array; literals: Buffer }, chunk?: Buffer) => {
    let lit = 0;
    for (let i = 0; i < r.ops.length; i += 3) {
      const [kind, a, b] = [r.ops[i]!, r.ops[i + 1]!, r.ops[i + 2]!];
      if (kind === 0) out.push(basis.subarray(a, a + b));
      else if (kind === 2) out.push(chunk!.subarray(a, a + b));
      else out.push(r.literals.subarray(lit, (lit += a)));
    }
  };
  for (let pos = 0; pos < data.length; pos += 1 << 20) {
    const chunk = data.subarray(pos, pos + (1 << 20));
    take(await m.update(chunk), chunk);
  }
  take(await m.final());
  return { result: Buffer.concat(out), stats: m.stats() };
}

describe('hash flood', () => {
  const kinds: [RollingKind, StrongKind][] = [
    ['ds64', 'xxh3'],
    ['rabinkarp', 'blake2b'],
    ['rollsum', 'md4'],
  ];
  for (const [rolling, strong] of kinds) {
    it(`${rolling}/${strong}: all blocks sharing a zero block's weak sum cost a bounded number of strong hashes`, async () => {
      const params = { blockLen: BLOCK, rolling, strong, strongLen: native.strongFullLen(strong) };
      const basis = randomBytes(SIZE);
      const blocks = flooded(entriesOf(params, basis), rolling, params.strongLen, Buffer.alloc(BLOCK));
      const zeros = Buffer.alloc(SIZE);
      const { result, stats } = await run(params, blocks, basis, zeros);
      expect(result.equals(zeros)).toBe(true);
      // Without the defence this is one strong hash per byte offset (about 4 million).
      expect(stats.strongCalcs).toBeLessThanOrEqual(256);
      expect(stats.distrusted).toBeGreaterThanOrEqual(1);
    });
  }

  it('repetitive but honest data still matches: a zero basis and zero new data copy everything', async () => {
    const params = { blockLen: BLOCK, rolling: 'ds64' as const, strong: 'xxh3' as const, strongLen: 16 };
    const basis = Buffer.alloc(SIZE);
    const data = Buffer.concat([Buffer.alloc(SIZE), Buffer.from('tail')]);
    const { result, stats } = await run(params, entriesOf(params, basis), basis, data);
    expect(result.equals(data)).toBe(true);
    expect(stats.distrusted).toBe(0);
    expect(stats.strongHits).toBeGreaterThanOrEqual(SIZE / BLOCK);
  });

  it('a weak collision that keeps failing does not stop other blocks from matching', async () => {
    // Half the blocks flooded onto the zero block's weak sum, the other half left intact.
    const params = { blockLen: BLOCK, rolling: 'ds64' as const, strong: 'xxh3' as const, strongLen: 16 };
    const basis = randomBytes(SIZE);
    const entries = entriesOf(params, basis);
    const entry = 8 + 16;
    const half = flooded(entries, 'ds64', 16, Buffer.alloc(BLOCK));
    entries.copy(half, 0, 0, (entries.length / entry / 2) * entry);
    const data = Buffer.concat([Buffer.alloc(SIZE / 2), basis.subarray(0, SIZE / 2)]);
    const { result, stats } = await run(params, half, basis, data);
    expect(result.equals(data)).toBe(true);
    expect(stats.strongCalcs).toBeLessThanOrEqual(256 + SIZE / 2 / BLOCK);
    expect(stats.strongHits).toBeGreaterThanOrEqual(SIZE / 2 / BLOCK - 1);
  });
});
