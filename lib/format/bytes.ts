// Byte-level helpers shared by the format modules: big-endian integers and an output writer.
import { writeVarint } from './varint.js';

/** Reads a big-endian unsigned integer of 1, 2, 4 or 8 bytes; null if it exceeds 2^53 - 1. */
export function readUintBE(buf: Uint8Array, pos: number, width: number): number | null {
  switch (width) {
    case 1:
      return buf[pos]!;
    case 2:
      return (buf[pos]! << 8) | buf[pos + 1]!;
    case 4:
      return ((buf[pos]! << 24) >>> 0) + ((buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!);
    case 8: {
      const hi = readUintBE(buf, pos, 4)!;
      const lo = readUintBE(buf, pos + 4, 4)!;
      if (hi >= 0x200000) return null; // ≥ 2^53
      return hi * 0x100000000 + lo;
    }
    default:
      throw new RangeError(`bad integer width ${width}`);
  }
}

/** Writes `value` (0..2^53 - 1, fitting `width`) big-endian at `pos`; returns the next position. */
export function writeUintBE(buf: Uint8Array, pos: number, value: number, width: number): number {
  switch (width) {
    case 1:
      buf[pos] = value;
      return pos + 1;
    case 2:
      buf[pos] = value >>> 8;
      buf[pos + 1] = value & 0xff;
      return pos + 2;
    case 4:
      buf[pos] = (value >>> 24) & 0xff;
      buf[pos + 1] = (value >>> 16) & 0xff;
      buf[pos + 2] = (value >>> 8) & 0xff;
      buf[pos + 3] = value & 0xff;
      return pos + 4;
    case 8: {
      const hi = Math.floor(value / 0x100000000);
      writeUintBE(buf, pos, hi, 4);
      return writeUintBE(buf, pos + 4, value >>> 0, 4);
    }
    default:
      throw new RangeError(`bad integer width ${width}`);
  }
}

/** Smallest of 1, 2, 4, 8 bytes that holds `value` (librsync's rule). */
export function uintWidth(value: number): 1 | 2 | 4 | 8 {
  if (value <= 0xff) return 1;
  if (value <= 0xffff) return 2;
  if (value <= 0xffffffff) return 4;
  return 8;
}

const BLOCK_SIZE = 64 * 1024;
/** Payloads at least this long are referenced, not copied. */
const REFERENCE_THRESHOLD = 4096;

/**
 * Collects encoded output: small fields go into 64 KiB blocks, large payloads (literals) are
 * referenced without copying. `take()` hands out what was written since the last call.
 */
export class ByteWriter {
  private block: Buffer = Buffer.allocUnsafe(BLOCK_SIZE);
  private start = 0;
  private pos = 0;
  private out: Buffer[] = [];
  /** Total bytes written over the writer's life. */
  total = 0;

  private room(n: number): void {
    if (this.pos + n <= this.block.length) return;
    this.flushBlock();
    this.block = Buffer.allocUnsafe(Math.max(BLOCK_SIZE, n));
    this.start = 0;
    this.pos = 0;
  }

  private flushBlock(): void {
    if (this.pos > this.start) this.out.push(this.block.subarray(this.start, this.pos));
    this.start = this.pos;
  }

  u8(value: number): void {
    this.room(1);
    this.block[this.pos++] = value;
    this.total += 1;
  }

  uintBE(value: number, width: number): void {
    this.room(width);
    this.pos = writeUintBE(this.block, this.pos, value, width);
    this.total += width;
  }

  varint(value: number): void {
    this.room(8);
    const before = this.pos;
    this.pos = writeVarint(this.block, this.pos, value);
    this.total += this.pos - before;
  }

  bytes(data: Uint8Array): void {
    if (data.length >= REFERENCE_THRESHOLD) {
      this.flushBlock();
      this.out.push(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length));
    } else {
      this.room(data.length);
      this.block.set(data, this.pos);
      this.pos += data.length;
    }
    this.total += data.length;
  }

  /** Output written since the previous take(), as a list of buffers (views; do not modify). */
  take(): Buffer[] {
    this.flushBlock();
    const out = this.out;
    this.out = [];
    return out;
  }

  /** Output written since the previous take(), as one buffer. */
  takeBuffer(): Buffer {
    const parts = this.take();
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}
