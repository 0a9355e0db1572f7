// Sparse signatures: what a sync receiver sends instead of a full signature (docs/PROTOCOL.md,
// "Sparse signatures"). Full entries (weak + strong sum) only for anchor blocks — every
// `stride`-th block and the last one — and a short check (a prefix of the block's strong hash)
// for every other block. The sender searches for anchors and confirms the blocks around an
// anchor match by their checks at the grid offsets the anchor implies (native/matcher.h), so a
// similar file costs about a third of the signature bytes. A changed block passes its check with
// probability 2^-(8 * checkLen); the whole-file hash catches that and the receiver redoes the
// file with a full signature.
import { DeltaSyncError } from './errors.js';
import { native } from './native.js';
import { MAX_FILE_SIZE, MAX_SIGNATURE_BYTES, WEAK_WIDTH, blockCountFor, checkBlockLen, checkStrongLen } from './params.js';
import type { RollingKind, StrongKind } from './params.js';
import type { Signature } from './signature.js';

export const SPARSE_MAGIC = Buffer.from('dsSP', 'latin1');
const VERSION = 1;
/** magic, version, rolling, strong, strongLen, checkLen, reserved, stride u16, blockLen u32, fileSize u64. */
export const SPARSE_HEADER_LEN = 4 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 4 + 8;
const ROLLING_CODE: Record<RollingKind, number> = { ds64: 1, rollsum: 2, rabinkarp: 3 };
const STRONG_CODE: Record<StrongKind, number> = { xxh3: 1, md4: 2, blake2b: 3 };
const MAX_STRIDE = 0xffff;

/** Default anchor spacing: one full entry in 8 blocks. */
export const DEFAULT_ANCHOR_STRIDE = 8;
/** Default check length: 3 bytes (a changed block slips through with probability 2^-24). */
export const DEFAULT_CHECK_LEN = 3;

/** Anchors at every stride-th block: 0, stride, 2 * stride, ... */
function strideAnchorCount(count: number, stride: number): number {
  return count === 0 ? 0 : Math.floor((count - 1) / stride) + 1;
}

/** All anchors: the stride-th blocks, and the last block when it is not one of them. */
function anchorCount(count: number, stride: number): number {
  const every = strideAnchorCount(count, stride);
  return count === 0 || (count - 1) % stride === 0 ? every : every + 1;
}

/**
 * Where the blocks that are not anchors lie: `groups` runs of stride - 1 blocks (run g starts at
 * block g * stride + 1), then `tailLen` blocks from `tailStart` (before the last block, an anchor
 * of its own). Tables are repacked run by run, not block by block.
 */
function nonAnchorRuns(count: number, stride: number): { groups: number; tailStart: number; tailLen: number } {
  if (count === 0) return { groups: 0, tailStart: 0, tailLen: 0 };
  const groups = Math.floor((count - 1) / stride);
  const tailStart = groups * stride + 1;
  return { groups, tailStart, tailLen: Math.max(0, count - 1 - tailStart) };
}

function bad(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_BAD_PARAMS', `sparse signature: ${message}`);
}

/** A parsed or derived sparse signature (always of the deltasync format: it records the size). */
export class SparseSignature {
  readonly format = 'deltasync' as const;
  readonly blockCount: number;

  private constructor(
    readonly rolling: RollingKind,
    readonly strong: StrongKind,
    /** Strong sum bytes of the anchor entries. */
    readonly strongLen: number,
    readonly checkLen: number,
    readonly stride: number,
    readonly blockLen: number,
    readonly fileSize: number,
    /** Packed anchor entries (weak big-endian + strongLen strong bytes), in block order. */
    readonly blocks: Buffer,
    /** checkLen bytes for every block, anchors included (their strong sum's prefix). */
    readonly checks: Buffer,
  ) {
    this.blockCount = blockCountFor(fileSize, blockLen);
  }

  /** Length of the basis's last block. */
  get lastBlockLen(): number {
    return this.blockCount === 0 ? 0 : this.fileSize - (this.blockCount - 1) * this.blockLen;
  }

  /**
   * The sparse form of a deltasync signature: anchor entries keep `sig`'s strong length, every
   * block gets a check of `checkLen` bytes (at most the strong length).
   */
  static from(sig: Signature, stride = DEFAULT_ANCHOR_STRIDE, checkLen = Math.min(DEFAULT_CHECK_LEN, sig.strongLen)): SparseSignature {
    if (sig.format !== 'deltasync' || sig.fileSize === undefined) throw new DeltaSyncError('ERR_USAGE', 'a sparse signature is made from a deltasync signature');
    if (!Number.isInteger(stride) || stride < 2 || stride > MAX_STRIDE) throw new DeltaSyncError('ERR_USAGE', `anchor stride must be 2..${MAX_STRIDE}`);
    if (!Number.isInteger(checkLen) || checkLen < 1 || checkLen > sig.strongLen) throw new DeltaSyncError('ERR_USAGE', `check length must be 1..${sig.strongLen}`);
    const count = sig.blockCount;
    const entry = sig.entrySize;
    const weak = WEAK_WIDTH[sig.rolling];
    const anchors = anchorCount(count, stride);
    const blocks = Buffer.allocUnsafe(anchors * entry);
    const checks = Buffer.allocUnsafe(count * checkLen);
    native.copyRows(sig.blocks, weak, entry, checks, 0, checkLen, checkLen, count);
    // Every stride-th block, then the last when it is not one of those.
    const regular = strideAnchorCount(count, stride);
    native.copyRows(sig.blocks, 0, stride * entry, blocks, 0, entry, entry, regular);
    if (anchors > regular) sig.blocks.copy(blocks, regular * entry, (count - 1) * entry, count * entry);
    return new SparseSignature(sig.rolling, sig.strong, sig.strongLen, checkLen, stride, sig.blockLen, sig.fileSize, blocks, checks);
  }

  /** Serialized size in bytes, without building it. */
  static encodedLength(sig: Signature, stride = DEFAULT_ANCHOR_STRIDE, checkLen = Math.min(DEFAULT_CHECK_LEN, sig.strongLen)): number {
    const anchors = anchorCount(sig.blockCount, stride);
    return SPARSE_HEADER_LEN + anchors * sig.entrySize + (sig.blockCount - anchors) * checkLen;
  }

  /** Header, anchor entries, then the checks of the blocks that are not anchors. */
  toBuffer(): Buffer {
    const count = this.blockCount;
    const anchors = anchorCount(count, this.stride);
    const out = Buffer.alloc(SPARSE_HEADER_LEN + this.blocks.length + (count - anchors) * this.checkLen);
    SPARSE_MAGIC.copy(out, 0);
    out[4] = VERSION;
    out[5] = ROLLING_CODE[this.rolling];
    out[6] = STRONG_CODE[this.strong];
    out[7] = this.strongLen;
    out[8] = this.checkLen;
    out[9] = 0;
    out.writeUInt16BE(this.stride, 10);
    out.writeUInt32BE(this.blockLen, 12);
    out.writeBigUInt64BE(BigInt(this.fileSize), 16);
    this.blocks.copy(out, SPARSE_HEADER_LEN);
    const at = SPARSE_HEADER_LEN + this.blocks.length;
    const c = this.checkLen;
    const s = this.stride;
    const { groups, tailStart, tailLen } = nonAnchorRuns(count, s);
    native.copyRows(this.checks, c, s * c, out, at, (s - 1) * c, (s - 1) * c, groups);
    this.checks.copy(out, at + groups * (s - 1) * c, tailStart * c, (tailStart + tailLen) * c);
    return out;
  }

  /** True if `data` starts with the sparse signature magic. */
  static is(data: Uint8Array): boolean {
    return data.length >= 4 && Buffer.from(data.buffer, data.byteOffset, 4).equals(SPARSE_MAGIC);
  }

  /** Parses a sparse signature from an untrusted peer: every field and the exact length checked. */
  static parse(data: Uint8Array): SparseSignature {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.length < SPARSE_HEADER_LEN) throw bad(`${buf.length} bytes, shorter than its ${SPARSE_HEADER_LEN}-byte header`);
    if (!buf.subarray(0, 4).equals(SPARSE_MAGIC)) throw bad('bad magic');
    if (buf[4] !== VERSION) throw bad(`unsupported version ${buf[4]}`);
    if (buf.length > MAX_SIGNATURE_BYTES) throw bad(`larger than the ${MAX_SIGNATURE_BYTES}-byte signature limit`);
    const rolling = (Object.keys(ROLLING_CODE) as RollingKind[]).find((k) => ROLLING_CODE[k] === buf[5]);
    const strong = (Object.keys(STRONG_CODE) as StrongKind[]).find((k) => STRONG_CODE[k] === buf[6]);
    if (!rolling) throw bad(`unknown rolling checksum code ${buf[5]}`);
    if (!strong) throw bad(`unknown strong hash code ${buf[6]}`);
    const strongLen = buf[7]!;
    const checkLen = buf[8]!;
    const stride = buf.readUInt16BE(10);
    const blockLen = buf.readUInt32BE(12);
    const size = buf.readBigUInt64BE(16);
    try {
      checkBlockLen(blockLen);
      checkStrongLen(strongLen, strong);
    } catch (err) {
      throw bad((err as Error).message);
    }
    if (checkLen < 1 || checkLen > strongLen) throw bad(`check length ${checkLen} outside 1..${strongLen}`);
    if (stride < 2) throw bad(`anchor stride ${stride} below 2`);
    if (buf[9] !== 0) throw bad('reserved byte set');
    if (size > BigInt(MAX_FILE_SIZE)) throw bad('file size above 2^53 - 1');
    const fileSize = Number(size);
    if (fileSize === 0) throw bad('an empty basis has no signature');
    const count = blockCountFor(fileSize, blockLen);
    const anchors = anchorCount(count, stride);
    const entry = WEAK_WIDTH[rolling] + strongLen;
    // Computed in doubles: every term is far below 2^53 for any header (count < 2^53).
    const expected = SPARSE_HEADER_LEN + anchors * entry + (count - anchors) * checkLen;
    if (buf.length !== expected) throw bad(`${buf.length} bytes where its header implies ${expected}`);
    const weak = WEAK_WIDTH[rolling];
    const blocks = Buffer.from(buf.subarray(SPARSE_HEADER_LEN, SPARSE_HEADER_LEN + anchors * entry));
    const checks = Buffer.allocUnsafe(count * checkLen);
    // Anchors' checks from their entries; the rest from the runs that follow them.
    const c = checkLen;
    const regular = strideAnchorCount(count, stride);
    native.copyRows(blocks, weak, entry, checks, 0, stride * c, c, regular);
    if (anchors > regular) blocks.copy(checks, (count - 1) * c, regular * entry + weak, regular * entry + weak + c);
    const at = SPARSE_HEADER_LEN + blocks.length;
    const { groups, tailStart, tailLen } = nonAnchorRuns(count, stride);
    native.copyRows(buf, at, (stride - 1) * c, checks, c, stride * c, (stride - 1) * c, groups);
    const tailAt = at + groups * (stride - 1) * c;
    buf.copy(checks, tailStart * c, tailAt, tailAt + tailLen * c);
    return new SparseSignature(rolling, strong, strongLen, checkLen, stride, blockLen, fileSize, blocks, checks);
  }
}
