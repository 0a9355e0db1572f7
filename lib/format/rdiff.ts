// librsync (rdiff) signature and delta formats, written from librsync's doc/format.md and its
// command table (layouts in docs/FORMAT.md). All integers are big-endian.
import { DeltaSyncError } from '../errors.js';
import type { RollingKind, StrongKind } from '../params.js';
import { ByteWriter, uintWidth } from './bytes.js';
import { nativeFormat, unwrap } from './native-decoder.js';
import { DeltaDecoder } from './ops.js';
import type { DeltaEncoder } from './ops.js';

/** Signature magics and the kinds each one stands for. */
export const RS_MD4_SIG_MAGIC = 0x72730136; // rollsum + MD4
export const RS_BLAKE2_SIG_MAGIC = 0x72730137; // rollsum + BLAKE2b
export const RS_RK_MD4_SIG_MAGIC = 0x72730146; // RabinKarp + MD4
export const RS_RK_BLAKE2_SIG_MAGIC = 0x72730147; // RabinKarp + BLAKE2b (rdiff 2.3 default)
export const RS_DELTA_MAGIC = 0x72730236;

/** magic, block_len, strong_sum_len: three u32. */
export const RS_SIG_HEADER_LEN = 12;

const SIG_KINDS: ReadonlyMap<number, { rolling: RollingKind; strong: StrongKind }> = new Map([
  [RS_MD4_SIG_MAGIC, { rolling: 'rollsum', strong: 'md4' }],
  [RS_BLAKE2_SIG_MAGIC, { rolling: 'rollsum', strong: 'blake2b' }],
  [RS_RK_MD4_SIG_MAGIC, { rolling: 'rabinkarp', strong: 'md4' }],
  [RS_RK_BLAKE2_SIG_MAGIC, { rolling: 'rabinkarp', strong: 'blake2b' }],
]);

/** True when `magic` is one of librsync's signature magics. */
export function isRdiffSigMagic(magic: number): boolean {
  return SIG_KINDS.has(magic);
}

/** The signature magic for a rolling/strong pair; throws ERR_USAGE for pairs rdiff lacks. */
export function rdiffSigMagic(rolling: RollingKind, strong: StrongKind): number {
  for (const [magic, kinds] of SIG_KINDS) {
    if (kinds.rolling === rolling && kinds.strong === strong) return magic;
  }
  throw new DeltaSyncError('ERR_USAGE', `the rdiff format has no signature for ${rolling} + ${strong}`);
}

/** Parsed rdiff signature header plus what the body length implies. */
export interface RdiffSignatureHeader {
  magic: number;
  rolling: RollingKind;
  strong: StrongKind;
  blockLen: number;
  strongLen: number;
  /** Bytes per block entry: 4 (weak) + strongLen. */
  entrySize: number;
}

export function encodeRdiffSignatureHeader(h: { rolling: RollingKind; strong: StrongKind; blockLen: number; strongLen: number }): Buffer {
  const w = new ByteWriter();
  w.uintBE(rdiffSigMagic(h.rolling, h.strong), 4);
  w.uintBE(h.blockLen, 4);
  w.uintBE(h.strongLen, 4);
  return w.takeBuffer();
}

/**
 * Parses and validates the 12-byte header at the start of `buf` (natively). Throws
 * ERR_TRUNCATED, ERR_BAD_MAGIC or ERR_BAD_PARAMS.
 */
export function parseRdiffSignatureHeader(buf: Uint8Array): RdiffSignatureHeader {
  const h = unwrap(nativeFormat.parseSignatureHeader(buf, 'rdiff'));
  return { magic: h.magic, rolling: h.rolling, strong: h.strong, blockLen: h.blockLen, strongLen: h.strongLen, entrySize: h.entrySize };
}

/** Block count implied by a whole rdiff signature of `totalLen` bytes; checks every bound (natively). */
export function rdiffBlockCount(h: RdiffSignatureHeader, totalLen: number): number {
  return unwrap(nativeFormat.rdiffSignatureBlockCount(h.magic, h.blockLen, h.strongLen, totalLen)).blockCount;
}

// ---- Delta commands -------------------------------------------------------------------------

/** What a delta command byte means: kind, immediate literal length, argument widths. */
interface Command {
  kind: 'end' | 'literal' | 'copy' | 'reserved';
  immediate: number;
  arg1: number;
  arg2: number;
}

const WIDTHS = [1, 2, 4, 8] as const;
const WIDTH_INDEX: Record<number, number> = { 1: 0, 2: 1, 4: 2, 8: 3 };

export const RS_OP_END = 0x00;
/** 0x01..0x40: literal of 1..64 bytes, length implied by the command byte. */
export const RS_OP_LITERAL_1 = 0x01;
export const RS_MAX_IMMEDIATE_LITERAL = 64;
/** 0x41..0x44: literal with a 1, 2, 4 or 8-byte length. */
export const RS_OP_LITERAL_N1 = 0x41;
/** 0x45..0x54: copy with (offset width, length width) = (1,1), (1,2), ... (8,8). */
export const RS_OP_COPY_N1_N1 = 0x45;

/** The 256-entry command table (built once; librsync calls its equivalent the prototab). */
export const RS_COMMANDS: readonly Command[] = (() => {
  const table: Command[] = [];
  for (let byte = 0; byte < 256; byte++) {
    if (byte === RS_OP_END) table.push({ kind: 'end', immediate: 0, arg1: 0, arg2: 0 });
    else if (byte <= RS_MAX_IMMEDIATE_LITERAL) table.push({ kind: 'literal', immediate: byte, arg1: 0, arg2: 0 });
    else if (byte < RS_OP_COPY_N1_N1) table.push({ kind: 'literal', immediate: 0, arg1: WIDTHS[byte - RS_OP_LITERAL_N1]!, arg2: 0 });
    else if (byte < RS_OP_COPY_N1_N1 + 16) {
      const i = byte - RS_OP_COPY_N1_N1;
      table.push({ kind: 'copy', immediate: 0, arg1: WIDTHS[i >> 2]!, arg2: WIDTHS[i & 3]! });
    } else table.push({ kind: 'reserved', immediate: 0, arg1: 0, arg2: 0 });
  }
  return table;
})();

/** Command byte for a literal of `length` bytes (the shortest encoding). */
export function rdiffLiteralCommand(length: number): number {
  return length <= RS_MAX_IMMEDIATE_LITERAL ? length : RS_OP_LITERAL_N1 + WIDTH_INDEX[uintWidth(length)]!;
}

/** Command byte for a copy (the shortest widths for both arguments). */
export function rdiffCopyCommand(offset: number, length: number): number {
  return RS_OP_COPY_N1_N1 + 4 * WIDTH_INDEX[uintWidth(offset)]! + WIDTH_INDEX[uintWidth(length)]!;
}

/** Writes an rdiff delta (librsync's format; `rdiff patch` applies it). */
export class RdiffDeltaEncoder implements DeltaEncoder {
  readonly format = 'rdiff' as const;
  private readonly w = new ByteWriter();

  header(): void {
    this.w.uintBE(RS_DELTA_MAGIC, 4);
  }

  copy(offset: number, length: number): void {
    const cmd = rdiffCopyCommand(offset, length);
    const c = RS_COMMANDS[cmd]!;
    this.w.u8(cmd);
    this.w.uintBE(offset, c.arg1);
    this.w.uintBE(length, c.arg2);
  }

  literal(parts: readonly Uint8Array[], length: number): void {
    const cmd = rdiffLiteralCommand(length);
    this.w.u8(cmd);
    const c = RS_COMMANDS[cmd]!;
    if (c.arg1) this.w.uintBE(length, c.arg1);
    for (const p of parts) this.w.bytes(p);
  }

  end(): void {
    this.w.u8(RS_OP_END);
  }

  take(): Buffer[] {
    return this.w.take();
  }

  get bytesWritten(): number {
    return this.w.total;
  }
}

/**
 * Incremental rdiff delta decoder: accepts every command width librsync defines (parsing in
 * native/format/delta_decoder.cc, from its own copy of this command table).
 */
export class RdiffDeltaDecoder extends DeltaDecoder {
  readonly format = 'rdiff' as const;

  /** `basisSize`, when given, makes every COPY beyond it an ERR_CORRUPT at decode time. */
  constructor(basisSize?: number) {
    super('rdiff', basisSize);
  }
}
