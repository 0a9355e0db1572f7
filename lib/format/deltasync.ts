// deltasync's own signature and delta formats (layouts in docs/FORMAT.md).
import { native } from '../native.js';
import type { NativeHasher } from '../native.js';
import type { RollingKind, StrongKind } from '../params.js';
import { ByteWriter } from './bytes.js';
import { nativeFormat, unwrap } from './native-decoder.js';
import { DeltaDecoder } from './ops.js';
import type { DeltaEncoder } from './ops.js';

/** "dsSG": deltasync signature. */
export const DS_SIG_MAGIC = 0x64735347;
/** "dsDL": deltasync delta. */
export const DS_DELTA_MAGIC = 0x6473444c;
/** Signature format version. */
export const DS_VERSION = 1;
/** Delta format version: 2 = block digest trailer and its grid in the header (docs/FORMAT.md). */
export const DS_DELTA_VERSION = 2;
/** magic 4, version 1, rolling 1, strong 1, strongLen 1, blockLen 4, fileSize 8. */
export const DS_SIG_HEADER_LEN = 20;
/** XXH3-128 of everything before it. */
export const DS_SIG_TRAILER_LEN = 16;
/** Block digest of the result (XXH3-128), after END. */
export const DS_RESULT_HASH_LEN = 16;

/** Wire codes of the kinds (0 is never valid, so a zeroed header is refused; the reader is native). */
const ROLLING_CODE: Record<RollingKind, number> = { ds64: 1, rollsum: 2, rabinkarp: 3 };
const STRONG_CODE: Record<StrongKind, number> = { xxh3: 1, md4: 2, blake2b: 3 };

/** Delta command bytes. */
export const DS_OP = {
  END: 0x00,
  LITERAL: 0x01, // varint length, then the bytes
  COPY_NEXT: 0x02, // varint length; offset = end of the previous copy
  COPY_FWD: 0x03, // varint d, varint length; offset = end of the previous copy + d
  COPY_BACK: 0x04, // varint d, varint length; offset = end of the previous copy - d
} as const;

/** Delta header flag: a varint result size follows. */
export const DS_FLAG_SIZE = 0x01;

/** Parsed deltasync signature header. */
export interface DsSignatureHeader {
  blockLen: number;
  strongLen: number;
  strong: StrongKind;
  rolling: RollingKind;
  fileSize: number;
  blockCount: number;
  /** Bytes per block entry: weak width + strong length. */
  entrySize: number;
  /** Whole serialized length: header + entries + trailer. */
  totalLen: number;
}

/** Serializes the signature header (the caller appends entries and the trailer hash). */
export function encodeDsSignatureHeader(h: {
  blockLen: number;
  strongLen: number;
  strong: StrongKind;
  rolling: RollingKind;
  fileSize: number;
}): Buffer {
  const w = new ByteWriter();
  w.uintBE(DS_SIG_MAGIC, 4);
  w.u8(DS_VERSION);
  w.u8(ROLLING_CODE[h.rolling]);
  w.u8(STRONG_CODE[h.strong]);
  w.u8(h.strongLen);
  w.uintBE(h.blockLen, 4);
  w.uintBE(h.fileSize, 8);
  return w.takeBuffer();
}

/**
 * Parses and validates a signature header from the first DS_SIG_HEADER_LEN bytes of `buf`
 * (natively: bounds are checked before any count is used). Throws ERR_TRUNCATED, ERR_BAD_MAGIC
 * or ERR_BAD_PARAMS.
 */
export function parseDsSignatureHeader(buf: Uint8Array): DsSignatureHeader {
  const h = unwrap(nativeFormat.parseSignatureHeader(buf, 'deltasync'));
  return {
    blockLen: h.blockLen,
    strongLen: h.strongLen,
    strong: h.strong,
    rolling: h.rolling,
    fileSize: h.fileSize!,
    blockCount: h.blockCount!,
    entrySize: h.entrySize,
    totalLen: h.totalLen!,
  };
}

/** Writes a deltasync delta. */
export class DsDeltaEncoder implements DeltaEncoder {
  readonly format = 'deltasync' as const;
  private readonly w = new ByteWriter();
  private prevEnd = 0;

  header(resultSize?: number, grid?: { strong: StrongKind; blockLen: number }): void {
    if (!grid) throw new Error('deltasync delta: the header needs the signature grid (strong kind, block length)');
    this.w.uintBE(DS_DELTA_MAGIC, 4);
    this.w.u8(DS_DELTA_VERSION);
    this.w.u8(resultSize === undefined ? 0 : DS_FLAG_SIZE);
    this.w.u8(STRONG_CODE[grid.strong]);
    this.w.varint(grid.blockLen);
    if (resultSize !== undefined) this.w.varint(resultSize);
  }

  copy(offset: number, length: number): void {
    if (offset === this.prevEnd) {
      this.w.u8(DS_OP.COPY_NEXT);
    } else if (offset > this.prevEnd) {
      this.w.u8(DS_OP.COPY_FWD);
      this.w.varint(offset - this.prevEnd);
    } else {
      this.w.u8(DS_OP.COPY_BACK);
      this.w.varint(this.prevEnd - offset);
    }
    this.w.varint(length);
    this.prevEnd = offset + length;
  }

  literal(parts: readonly Uint8Array[], length: number): void {
    this.w.u8(DS_OP.LITERAL);
    this.w.varint(length);
    for (const p of parts) this.w.bytes(p);
  }

  end(resultHash?: Uint8Array): void {
    if (!resultHash || resultHash.length !== DS_RESULT_HASH_LEN) {
      throw new Error('deltasync delta: END needs the 16-byte result hash');
    }
    this.w.u8(DS_OP.END);
    this.w.bytes(resultHash);
  }

  take(): Buffer[] {
    return this.w.take();
  }

  get bytesWritten(): number {
    return this.w.total;
  }
}

/** Incremental deltasync delta decoder (parsing in native/format/delta_decoder.cc). */
export class DsDeltaDecoder extends DeltaDecoder {
  readonly format = 'deltasync' as const;

  /** `basisSize`, when given, makes every COPY beyond it an ERR_CORRUPT at decode time. */
  constructor(basisSize?: number) {
    super('deltasync', basisSize);
  }
}

/** Literal runs at least this long are hashed on the thread pool. */
const ASYNC_HASH_BYTES = 256 * 1024;

/**
 * The result digest of a deltasync v2 delta (docs/FORMAT.md, "Block digest"): XXH3-128 over, for
 * every piece of a COPY in output order, the literal bytes since the previous piece, u64le of
 * their count and the piece's full-length strong hash; then the trailing literal bytes, u64le of
 * their count, u64le(result size) and u64le(piece count). A piece is the part of a COPY inside one
 * cell of the basis block grid, so splitting or merging COPYs and LITERALs does not change the
 * digest, and the hash of a whole cell can come from the basis signature instead of its bytes.
 * Feed calls must be awaited in order.
 */
export class BlockDigest {
  private readonly hasher: NativeHasher = new native.Hasher('xxh3');
  private readonly frame = Buffer.alloc(24);
  private runLength = 0;
  private pieceCount = 0;
  private resultBytes = 0;
  /** Full length of one piece hash. */
  readonly pieceHashLen: number;

  constructor(
    readonly strong: StrongKind,
    readonly blockLen: number,
  ) {
    this.pieceHashLen = native.strongFullLen(strong);
  }

  /** Literal bytes of the result. */
  async literal(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    this.runLength += bytes.length;
    this.resultBytes += bytes.length;
    if (bytes.length >= ASYNC_HASH_BYTES) await this.hasher.update(bytes);
    else this.hasher.updateSync(bytes);
  }

  /** One COPY piece of `length` bytes, given its full-length strong hash. */
  piece(hash: Uint8Array, length: number): void {
    if (hash.length !== this.pieceHashLen) throw new Error(`deltasync: piece hash of ${hash.length} bytes, expected ${this.pieceHashLen}`);
    this.frame.writeBigUInt64LE(BigInt(this.runLength), 0);
    this.hasher.updateSync(this.frame.subarray(0, 8));
    this.hasher.updateSync(hash);
    this.runLength = 0;
    this.pieceCount++;
    this.resultBytes += length;
  }

  /**
   * `count` consecutive pieces of `length` bytes in all, their hashes at `hashOffset` of each
   * `stride`-byte record of `records` (a grid: stride = hash length; signature entries: the
   * strong part after the weak sum). One hasher call for the lot.
   */
  async pieces(records: Buffer, stride: number, hashOffset: number, count: number, length: number): Promise<void> {
    if (count === 0) return;
    const w = this.pieceHashLen;
    if (records.length < (count - 1) * stride + hashOffset + w) throw new Error('deltasync: piece hashes missing');
    const framed = Buffer.alloc(count * (8 + w));
    framed.writeBigUInt64LE(BigInt(this.runLength), 0);
    native.copyRows(records, hashOffset, stride, framed, 8, 8 + w, w, count);
    if (framed.length >= ASYNC_HASH_BYTES) await this.hasher.update(framed);
    else this.hasher.updateSync(framed);
    this.runLength = 0;
    this.pieceCount += count;
    this.resultBytes += length;
  }

  /** Bytes of result described so far. */
  get size(): number {
    return this.resultBytes;
  }

  /** The 16-byte digest; no more feeding afterwards. */
  digest(): Buffer {
    this.frame.writeBigUInt64LE(BigInt(this.runLength), 0);
    this.frame.writeBigUInt64LE(BigInt(this.resultBytes), 8);
    this.frame.writeBigUInt64LE(BigInt(this.pieceCount), 16);
    this.hasher.updateSync(this.frame);
    return this.hasher.digest();
  }
}

/**
 * Splits the basis range [offset, offset + length) on the grid of `blockLen`-byte cells: calls
 * `each(pieceOffset, pieceLength, cell)` in order.
 */
export function forEachPiece(offset: number, length: number, blockLen: number, each: (at: number, len: number, cell: number) => void): void {
  const end = offset + length;
  for (let at = offset; at < end; ) {
    const cell = Math.floor(at / blockLen);
    const next = Math.min(end, (cell + 1) * blockLen);
    each(at, next - at, cell);
    at = next;
  }
}
