// deltasync's own signature and delta formats (layouts in docs/FORMAT.md).
import type { RollingKind, StrongKind } from '../params.js';
import { ByteWriter } from './bytes.js';
import { nativeFormat, unwrap } from './native-decoder.js';
import { DeltaDecoder } from './ops.js';
import type { DeltaEncoder } from './ops.js';

/** "dsSG": deltasync signature. */
export const DS_SIG_MAGIC = 0x64735347;
/** "dsDL": deltasync delta. */
export const DS_DELTA_MAGIC = 0x6473444c;
export const DS_VERSION = 1;
/** magic 4, version 1, rolling 1, strong 1, strongLen 1, blockLen 4, fileSize 8. */
export const DS_SIG_HEADER_LEN = 20;
/** XXH3-128 of everything before it. */
export const DS_SIG_TRAILER_LEN = 16;
/** XXH3-128 of the result, after END. */
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

  header(resultSize?: number): void {
    this.w.uintBE(DS_DELTA_MAGIC, 4);
    this.w.u8(DS_VERSION);
    if (resultSize === undefined) {
      this.w.u8(0);
    } else {
      this.w.u8(DS_FLAG_SIZE);
      this.w.varint(resultSize);
    }
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
