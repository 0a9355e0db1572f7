// Binary payload encoding for protocol messages: unsigned LEB128 varints (≤ 2^53 - 1),
// zigzag varints for signed values, length-prefixed byte strings. Every read is bounded by the
// payload it reads from; a short or malformed payload is a protocol error, never a crash.
// Received messages are decoded natively (native/protocol, via messages.ts); PayloadReader is the
// same encoding read in TypeScript, for tests and tools.
import { DeltaSyncError } from '../errors.js';

const MAX_VARINT_BYTES = 8;

/** Builds a payload from parts; grows as needed. */
export class PayloadWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  get length(): number {
    return this.pos;
  }

  u8(value: number): this {
    this.reserve(1);
    this.buf[this.pos++] = value & 0xff;
    return this;
  }

  /** Unsigned varint, 0..2^53-1. */
  uint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`protocol varint out of range: ${value}`);
    this.reserve(MAX_VARINT_BYTES);
    while (value >= 0x80) {
      this.buf[this.pos++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[this.pos++] = value;
    return this;
  }

  /** Signed varint (zigzag), |value| < 2^52. */
  int(value: number): this {
    if (!Number.isSafeInteger(value) || Math.abs(value) >= 2 ** 52) throw new RangeError(`protocol int out of range: ${value}`);
    return this.uint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  /** Raw bytes without a length. */
  raw(data: Uint8Array): this {
    this.reserve(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(data: Uint8Array): this {
    return this.uint(data.length).raw(data);
  }

  /** Length-prefixed UTF-8 string. */
  string(value: string): this {
    return this.bytes(Buffer.from(value, 'utf8'));
  }

  /** The bytes written so far (a view, valid until the next write). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Reads a payload written by {@link PayloadWriter}. `what` names the message in errors. */
export class PayloadReader {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  private fail(detail: string): never {
    throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: malformed ${this.what} message (${detail})`);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail('truncated');
    return this.buf[this.pos++]!;
  }

  uint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.pos >= this.buf.length) this.fail('truncated varint');
      const byte = this.buf[this.pos++]!;
      const bits = byte & 0x7f;
      if (i === MAX_VARINT_BYTES - 1 && bits > 0x0f) this.fail('varint above 2^53');
      value += bits * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
    }
    return this.fail('varint too long');
  }

  int(): number {
    const z = this.uint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  raw(length: number): Buffer {
    if (length > this.remaining) this.fail(`field of ${length} bytes, ${this.remaining} left`);
    const out = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, length);
    this.pos += length;
    return out;
  }

  bytes(max = Number.MAX_SAFE_INTEGER): Buffer {
    const length = this.uint();
    if (length > max) this.fail(`field of ${length} bytes exceeds ${max}`);
    return this.raw(length);
  }

  string(max = 1 << 20): string {
    return this.bytes(max).toString('utf8');
  }

  /** Asserts that the whole payload was consumed. */
  end(): void {
    if (!this.done) this.fail(`${this.remaining} unexpected trailing bytes`);
  }
}
