// Unsigned LEB128 varints limited to 2^53 - 1 (exact in a JS number), at most 8 bytes.
import { DeltaSyncError } from '../errors.js';

/** Longest varint accepted: 8 bytes carry 56 bits, of which values up to 2^53 - 1 are allowed. */
export const MAX_VARINT_BYTES = 8;

/** Encoded length of `value` (0 <= value <= 2^53 - 1). */
export function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/** Writes `value` at `pos`; returns the position after it. The caller guarantees room (≤ 8 bytes). */
export function writeVarint(buf: Uint8Array, pos: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint value out of range: ${value}`);
  while (value >= 0x80) {
    buf[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/** Result of {@link readVarint}: the value and the position after it. */
export interface VarintRead {
  value: number;
  next: number;
}

/**
 * Reads a varint from buf[pos..end). Returns null when the bytes end before the varint does
 * (the caller waits for more data). Throws ERR_CORRUPT for a varint longer than 8 bytes, above
 * 2^53 - 1, or not in its shortest form (so every value has exactly one encoding).
 */
export function readVarint(buf: Uint8Array, pos: number, end: number, what = 'varint'): VarintRead | null {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (pos + i >= end) return null;
    const byte = buf[pos + i]!;
    const bits = byte & 0x7f;
    // The 8th byte sits at bit 49; more than 4 bits there would exceed 2^53 - 1.
    if (i === MAX_VARINT_BYTES - 1 && bits > 0x0f) {
      throw new DeltaSyncError('ERR_CORRUPT', `${what} exceeds 2^53 - 1`);
    }
    value += bits * scale;
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > 0) throw new DeltaSyncError('ERR_CORRUPT', `${what} is not minimally encoded`);
      return { value, next: pos + i + 1 };
    }
    scale *= 128;
  }
  throw new DeltaSyncError('ERR_CORRUPT', `${what} longer than ${MAX_VARINT_BYTES} bytes`);
}
