// deltasync's own signature and delta formats (layouts in docs/FORMAT.md).
import { DeltaSyncError } from '../errors.js';
import {
  MAX_FILE_SIZE,
  MAX_SIGNATURE_BYTES,
  WEAK_WIDTH,
  blockCountFor,
  checkBlockLen,
  checkStrongLen,
} from '../params.js';
import type { RollingKind, StrongKind } from '../params.js';
import { ByteWriter, readUintBE } from './bytes.js';
import { DeltaDecoder } from './ops.js';
import type { DeltaEncoder, DeltaOp } from './ops.js';
import { readVarint } from './varint.js';

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

/** Wire codes of the kinds (0 is never valid, so a zeroed header is refused). */
const ROLLING_CODE: Record<RollingKind, number> = { ds64: 1, rollsum: 2, rabinkarp: 3 };
const STRONG_CODE: Record<StrongKind, number> = { xxh3: 1, md4: 2, blake2b: 3 };
const ROLLING_BY_CODE: (RollingKind | undefined)[] = [undefined, 'ds64', 'rollsum', 'rabinkarp'];
const STRONG_BY_CODE: (StrongKind | undefined)[] = [undefined, 'xxh3', 'md4', 'blake2b'];

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

/** Parses and validates a signature header from the first DS_SIG_HEADER_LEN bytes of `buf`. */
export function parseDsSignatureHeader(buf: Uint8Array): DsSignatureHeader {
  if (buf.length < DS_SIG_HEADER_LEN) {
    throw new DeltaSyncError('ERR_TRUNCATED', `deltasync signature: header truncated (${buf.length} of ${DS_SIG_HEADER_LEN} bytes)`);
  }
  const magic = readUintBE(buf, 0, 4)!;
  if (magic !== DS_SIG_MAGIC) {
    throw new DeltaSyncError('ERR_BAD_MAGIC', `not a deltasync signature (magic 0x${magic.toString(16).padStart(8, '0')})`);
  }
  const version = buf[4]!;
  if (version !== DS_VERSION) {
    throw new DeltaSyncError('ERR_BAD_MAGIC', `deltasync signature version ${version} is not supported (expected ${DS_VERSION})`);
  }
  const rolling = ROLLING_BY_CODE[buf[5]!];
  if (rolling === undefined) throw new DeltaSyncError('ERR_BAD_PARAMS', `deltasync signature: unknown rolling checksum code ${buf[5]}`);
  const strong = STRONG_BY_CODE[buf[6]!];
  if (strong === undefined) throw new DeltaSyncError('ERR_BAD_PARAMS', `deltasync signature: unknown strong hash code ${buf[6]}`);
  const strongLen = buf[7]!;
  checkStrongLen(strongLen, strong, 'deltasync signature: strong sum length');
  const blockLen = readUintBE(buf, 8, 4)!;
  checkBlockLen(blockLen, 'deltasync signature: block length');
  const fileSize = readUintBE(buf, 12, 8);
  if (fileSize === null) throw new DeltaSyncError('ERR_BAD_PARAMS', 'deltasync signature: file size exceeds 2^53 - 1');
  const blockCount = blockCountFor(fileSize, blockLen);
  const entrySize = WEAK_WIDTH[rolling] + strongLen;
  const totalLen = DS_SIG_HEADER_LEN + blockCount * entrySize + DS_SIG_TRAILER_LEN;
  if (totalLen > MAX_SIGNATURE_BYTES) {
    throw new DeltaSyncError(
      'ERR_BAD_PARAMS',
      `deltasync signature: ${blockCount} blocks of ${entrySize} bytes exceed the ${MAX_SIGNATURE_BYTES}-byte signature limit`,
    );
  }
  return { blockLen, strongLen, strong, rolling, fileSize, blockCount, entrySize, totalLen };
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

const enum DsState {
  Header,
  Ops,
  Trailer,
}

/** Incremental deltasync delta decoder. */
export class DsDeltaDecoder extends DeltaDecoder {
  readonly format = 'deltasync' as const;
  protected readonly what = 'deltasync delta';
  private state = DsState.Header;
  private prevEnd = 0;

  protected expecting(): string {
    switch (this.state) {
      case DsState.Header:
        return 'inside the header';
      case DsState.Ops:
        return 'no END command';
      default:
        return 'inside the result hash';
    }
  }

  protected step(buf: Buffer, pos: number, end: number, out: DeltaOp[]): number {
    switch (this.state) {
      case DsState.Header:
        return this.header(buf, pos, end);
      case DsState.Ops:
        return this.command(buf, pos, end, out);
      default: {
        if (end - pos < DS_RESULT_HASH_LEN) return -1;
        this.resultHash = Buffer.from(buf.subarray(pos, pos + DS_RESULT_HASH_LEN));
        this.done = true;
        return pos + DS_RESULT_HASH_LEN;
      }
    }
  }

  private header(buf: Buffer, pos: number, end: number): number {
    if (end - pos < 4) return -1;
    const magic = readUintBE(buf, pos, 4)!;
    if (magic !== DS_DELTA_MAGIC) {
      throw new DeltaSyncError('ERR_BAD_MAGIC', `not a deltasync delta (magic 0x${magic.toString(16).padStart(8, '0')})`);
    }
    if (end - pos < 6) return -1;
    const version = buf[pos + 4]!;
    if (version !== DS_VERSION) {
      throw new DeltaSyncError('ERR_BAD_MAGIC', `deltasync delta version ${version} is not supported (expected ${DS_VERSION})`);
    }
    const flags = buf[pos + 5]!;
    if ((flags & ~DS_FLAG_SIZE) !== 0) {
      throw new DeltaSyncError('ERR_CORRUPT', `deltasync delta: unknown header flags 0x${flags.toString(16)}`);
    }
    let next = pos + 6;
    if (flags & DS_FLAG_SIZE) {
      const size = readVarint(buf, next, end, 'deltasync delta: result size');
      if (size === null) return -1;
      this.resultSize = size.value;
      next = size.next;
    }
    this.state = DsState.Ops;
    return next;
  }

  private command(buf: Buffer, pos: number, end: number, out: DeltaOp[]): number {
    const tag = buf[pos]!;
    switch (tag) {
      case DS_OP.END:
        if (this.resultSize !== undefined && this.outputBytes !== this.resultSize) {
          throw new DeltaSyncError(
            'ERR_CORRUPT',
            `deltasync delta: ops describe ${this.outputBytes} bytes but the header declares ${this.resultSize}`,
          );
        }
        this.state = DsState.Trailer;
        return pos + 1;
      case DS_OP.LITERAL: {
        const len = readVarint(buf, pos + 1, end, 'deltasync delta: literal length');
        if (len === null) return -1;
        if (len.value === 0) throw new DeltaSyncError('ERR_CORRUPT', 'deltasync delta: zero-length literal');
        this.addOutput(len.value);
        this.literalLeft = len.value;
        return len.next;
      }
      case DS_OP.COPY_NEXT:
      case DS_OP.COPY_FWD:
      case DS_OP.COPY_BACK: {
        let next = pos + 1;
        let offset = this.prevEnd;
        if (tag !== DS_OP.COPY_NEXT) {
          const d = readVarint(buf, next, end, 'deltasync delta: copy offset');
          if (d === null) return -1;
          offset = tag === DS_OP.COPY_FWD ? offset + d.value : offset - d.value;
          next = d.next;
        }
        const len = readVarint(buf, next, end, 'deltasync delta: copy length');
        if (len === null) return -1;
        if (len.value === 0) throw new DeltaSyncError('ERR_CORRUPT', 'deltasync delta: zero-length copy');
        if (offset < 0 || offset + len.value > MAX_FILE_SIZE) {
          throw new DeltaSyncError('ERR_CORRUPT', `deltasync delta: copy offset ${offset} out of range`);
        }
        this.addOutput(len.value);
        this.prevEnd = offset + len.value;
        out.push({ kind: 'copy', offset, length: len.value });
        return len.next;
      }
      default:
        throw new DeltaSyncError('ERR_CORRUPT', `deltasync delta: unknown command byte 0x${tag.toString(16).padStart(2, '0')}`);
    }
  }
}

