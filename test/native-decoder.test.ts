// The native decoders (native/format) against the TypeScript decoders they replaced: the
// reference model below is the pre-native TypeScript logic, kept here as an oracle. For valid,
// damaged and hostile inputs in any chunking, both must give the same ops and the same error
// code and message; and the public API must actually run through the native code.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeltaSyncError, Signature, delta, patch, signature } from '../lib/index.js';
import { readUintBE } from '../lib/format/bytes.js';
import { DsDeltaDecoder, DsDeltaEncoder, parseDsSignatureHeader } from '../lib/format/deltasync.js';
import { AutoDeltaDecoder, expectMagic } from '../lib/format/detect.js';
import { nativeFormat } from '../lib/format/native-decoder.js';
import type { DeltaEncoder, DeltaOp } from '../lib/format/ops.js';
import { RdiffDeltaDecoder, RdiffDeltaEncoder, parseRdiffSignatureHeader, rdiffBlockCount } from '../lib/format/rdiff.js';
import { readVarint } from '../lib/format/varint.js';
import { MAX_FILE_SIZE, MAX_SIGNATURE_BYTES, WEAK_WIDTH, blockCountFor, checkBlockLen, checkStrongLen } from '../lib/params.js';
import type { Format, RollingKind, StrongKind } from '../lib/params.js';

// ---- Reference model: the TypeScript decoders as they were before the move to native code ----

const err = (code: DeltaSyncError['code'], message: string) => new DeltaSyncError(code, message);
const hex8 = (v: number) => `0x${v.toString(16).padStart(8, '0')}`;

abstract class RefDecoder {
  abstract what: string;
  resultSize: number | undefined;
  resultHash: Buffer | undefined;
  outputBytes = 0;
  inputBytes = 0;
  done = false;
  private pending = Buffer.alloc(0);
  protected literalLeft = 0;
  protected abstract step(buf: Buffer, pos: number, end: number, out: DeltaOp[]): number;
  protected abstract expecting(): string;

  push(chunk: Buffer, out: DeltaOp[]): void {
    let pos = 0;
    const end = chunk.length;
    this.inputBytes += end;
    if (this.pending.length > 0) {
      const head = Buffer.concat([this.pending, chunk.subarray(0, 40)]);
      const next = this.step(head, 0, head.length, out);
      if (next < 0) {
        if (end >= 40) throw new Error('unit longer than 40 bytes');
        this.pending = head;
        return;
      }
      pos = next - this.pending.length;
      this.pending = Buffer.alloc(0);
    }
    while (pos < end) {
      if (this.literalLeft > 0) {
        const n = Math.min(this.literalLeft, end - pos);
        out.push({ kind: 'literal', data: chunk.subarray(pos, pos + n) });
        this.literalLeft -= n;
        pos += n;
        continue;
      }
      if (this.done) throw err('ERR_CORRUPT', `${this.what}: unexpected data after the END command`);
      const next = this.step(chunk, pos, end, out);
      if (next < 0) {
        this.pending = Buffer.from(chunk.subarray(pos, end));
        return;
      }
      pos = next;
    }
  }

  finish(): void {
    if (this.done && this.pending.length === 0 && this.literalLeft === 0) return;
    if (this.literalLeft > 0) throw err('ERR_CORRUPT', `${this.what}: literal runs ${this.literalLeft} bytes past the end of the delta`);
    if (this.inputBytes === 0) throw err('ERR_TRUNCATED', `${this.what}: empty input`);
    throw err('ERR_TRUNCATED', `${this.what}: truncated after ${this.inputBytes} bytes (${this.expecting()})`);
  }

  protected addOutput(length: number): void {
    this.outputBytes += length;
    if (this.outputBytes > MAX_FILE_SIZE) throw err('ERR_CORRUPT', `${this.what}: ops describe more than 2^53 - 1 bytes of output`);
    if (this.resultSize !== undefined && this.outputBytes > this.resultSize) {
      throw err('ERR_CORRUPT', `${this.what}: ops describe more than the declared ${this.resultSize} bytes of output`);
    }
  }
}

class RefDs extends RefDecoder {
  what = 'deltasync delta';
  private state = 0; // header, ops, trailer
  private prevEnd = 0;
  protected expecting(): string {
    return ['inside the header', 'no END command', 'inside the result hash'][this.state]!;
  }
  protected step(buf: Buffer, pos: number, end: number, out: DeltaOp[]): number {
    if (this.state === 0) {
      if (end - pos < 4) return -1;
      const magic = readUintBE(buf, pos, 4)!;
      if (magic !== 0x6473444c) throw err('ERR_BAD_MAGIC', `not a deltasync delta (magic ${hex8(magic)})`);
      if (end - pos < 6) return -1;
      const version = buf[pos + 4]!;
      if (version !== 2) throw err('ERR_BAD_MAGIC', `deltasync delta version ${version} is not supported (expected 2)`);
      const flags = buf[pos + 5]!;
      if ((flags & ~1) !== 0) throw err('ERR_CORRUPT', `deltasync delta: unknown header flags 0x${flags.toString(16)}`);
      if (end - pos < 7) return -1;
      const strong = buf[pos + 6]!;
      if (strong < 1 || strong > 3) throw err('ERR_CORRUPT', `deltasync delta: unknown strong hash code ${strong}`);
      const blockLen = readVarint(buf, pos + 7, end, 'deltasync delta: block length');
      if (blockLen === null) return -1;
      if (blockLen.value < 1 || blockLen.value > 64 * 1024 * 1024) {
        throw err('ERR_CORRUPT', `deltasync delta: block length ${blockLen.value} out of range 1..67108864`);
      }
      let next = blockLen.next;
      if (flags & 1) {
        const size = readVarint(buf, next, end, 'deltasync delta: result size');
        if (size === null) return -1;
        this.resultSize = size.value;
        next = size.next;
      }
      this.state = 1;
      return next;
    }
    if (this.state === 2) {
      if (end - pos < 16) return -1;
      this.resultHash = Buffer.from(buf.subarray(pos, pos + 16));
      this.done = true;
      return pos + 16;
    }
    const tag = buf[pos]!;
    if (tag === 0) {
      if (this.resultSize !== undefined && this.outputBytes !== this.resultSize) {
        throw err('ERR_CORRUPT', `deltasync delta: ops describe ${this.outputBytes} bytes but the header declares ${this.resultSize}`);
      }
      this.state = 2;
      return pos + 1;
    }
    if (tag === 1) {
      const len = readVarint(buf, pos + 1, end, 'deltasync delta: literal length');
      if (len === null) return -1;
      if (len.value === 0) throw err('ERR_CORRUPT', 'deltasync delta: zero-length literal');
      this.addOutput(len.value);
      this.literalLeft = len.value;
      return len.next;
    }
    if (tag >= 2 && tag <= 4) {
      let next = pos + 1;
      let offset = this.prevEnd;
      if (tag !== 2) {
        const d = readVarint(buf, next, end, 'deltasync delta: copy offset');
        if (d === null) return -1;
        offset = tag === 3 ? offset + d.value : offset - d.value;
        next = d.next;
      }
      const len = readVarint(buf, next, end, 'deltasync delta: copy length');
      if (len === null) return -1;
      if (len.value === 0) throw err('ERR_CORRUPT', 'deltasync delta: zero-length copy');
      if (offset < 0 || offset + len.value > MAX_FILE_SIZE) throw err('ERR_CORRUPT', `deltasync delta: copy offset ${offset} out of range`);
      this.addOutput(len.value);
      this.prevEnd = offset + len.value;
      out.push({ kind: 'copy', offset, length: len.value });
      return len.next;
    }
    throw err('ERR_CORRUPT', `deltasync delta: unknown command byte 0x${tag.toString(16).padStart(2, '0')}`);
  }
}

class RefRdiff extends RefDecoder {
  what = 'rdiff delta';
  private sawMagic = false;
  protected expecting(): string {
    return this.sawMagic ? 'no END command' : 'inside the magic';
  }
  protected step(buf: Buffer, pos: number, end: number, out: DeltaOp[]): number {
    if (!this.sawMagic) {
      if (end - pos < 4) return -1;
      const magic = readUintBE(buf, pos, 4)!;
      if (magic !== 0x72730236) throw err('ERR_BAD_MAGIC', `not an rdiff delta (magic ${hex8(magic)})`);
      this.sawMagic = true;
      return pos + 4;
    }
    const byte = buf[pos]!;
    if (byte >= 0x55) throw err('ERR_CORRUPT', `rdiff delta: reserved command byte 0x${byte.toString(16).padStart(2, '0')}`);
    const widths = [1, 2, 4, 8];
    const arg1 = byte <= 0x40 ? 0 : byte <= 0x44 ? widths[byte - 0x41]! : widths[(byte - 0x45) >> 2]!;
    const arg2 = byte >= 0x45 ? widths[(byte - 0x45) & 3]! : 0;
    const need = 1 + arg1 + arg2;
    if (end - pos < need) return -1;
    if (byte === 0) {
      this.done = true;
      return pos + 1;
    }
    if (byte <= 0x44) {
      const len = arg1 ? readUintBE(buf, pos + 1, arg1) : byte;
      if (len === null) throw err('ERR_CORRUPT', 'rdiff delta: literal length exceeds 2^53 - 1');
      this.addOutput(len);
      this.literalLeft = len;
      return pos + need;
    }
    const offset = readUintBE(buf, pos + 1, arg1);
    const len = readUintBE(buf, pos + 1 + arg1, arg2);
    if (offset === null || len === null || offset + len > MAX_FILE_SIZE) {
      throw err('ERR_CORRUPT', 'rdiff delta: copy offset or length exceeds 2^53 - 1');
    }
    this.addOutput(len);
    if (len > 0) out.push({ kind: 'copy', offset, length: len });
    return pos + need;
  }
}

const MAGICS: Record<number, [Format, 'signature' | 'delta']> = {
  0x64735347: ['deltasync', 'signature'],
  0x6473444c: ['deltasync', 'delta'],
  0x72730136: ['rdiff', 'signature'],
  0x72730137: ['rdiff', 'signature'],
  0x72730146: ['rdiff', 'signature'],
  0x72730147: ['rdiff', 'signature'],
  0x72730236: ['rdiff', 'delta'],
};

function refExpectMagic(buf: Uint8Array, want: 'signature' | 'delta'): Format {
  if (buf.length < 4) throw err('ERR_TRUNCATED', buf.length === 0 ? `empty ${want}` : `${want} truncated inside the magic number`);
  const magic = readUintBE(buf, 0, 4)!;
  const id = MAGICS[magic];
  if (!id) throw err('ERR_BAD_MAGIC', `not a ${want} (unknown magic ${hex8(magic)})`);
  if (id[1] !== want) throw err('ERR_BAD_MAGIC', `expected a ${want} but got a ${id[0]} ${id[1]}`);
  return id[0];
}

class RefAuto {
  private inner: RefDecoder | undefined;
  private head = Buffer.alloc(0);
  get resultSize() {
    return this.inner?.resultSize;
  }
  get resultHash() {
    return this.inner?.resultHash;
  }
  get outputBytes() {
    return this.inner?.outputBytes ?? 0;
  }
  get done() {
    return this.inner?.done ?? false;
  }
  push(chunk: Buffer, out: DeltaOp[]): void {
    if (this.inner) return this.inner.push(chunk, out);
    const all = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
    if (all.length < 4) {
      this.head = Buffer.from(all);
      return;
    }
    this.inner = refExpectMagic(all, 'delta') === 'rdiff' ? new RefRdiff() : new RefDs();
    this.head = Buffer.alloc(0);
    this.inner.push(all, out);
  }
  finish(): void {
    if (!this.inner) refExpectMagic(this.head, 'delta');
    this.inner!.finish();
  }
}

const ROLLING_BY_CODE: (RollingKind | undefined)[] = [undefined, 'ds64', 'rollsum', 'rabinkarp'];
const STRONG_BY_CODE: (StrongKind | undefined)[] = [undefined, 'xxh3', 'md4', 'blake2b'];
const RDIFF_KINDS: Record<number, { rolling: RollingKind; strong: StrongKind }> = {
  0x72730136: { rolling: 'rollsum', strong: 'md4' },
  0x72730137: { rolling: 'rollsum', strong: 'blake2b' },
  0x72730146: { rolling: 'rabinkarp', strong: 'md4' },
  0x72730147: { rolling: 'rabinkarp', strong: 'blake2b' },
};

function refDsHeader(buf: Uint8Array) {
  if (buf.length < 20) throw err('ERR_TRUNCATED', `deltasync signature: header truncated (${buf.length} of 20 bytes)`);
  const magic = readUintBE(buf, 0, 4)!;
  if (magic !== 0x64735347) throw err('ERR_BAD_MAGIC', `not a deltasync signature (magic ${hex8(magic)})`);
  if (buf[4] !== 1) throw err('ERR_BAD_MAGIC', `deltasync signature version ${buf[4]} is not supported (expected 1)`);
  const rolling = ROLLING_BY_CODE[buf[5]!];
  if (rolling === undefined) throw err('ERR_BAD_PARAMS', `deltasync signature: unknown rolling checksum code ${buf[5]}`);
  const strong = STRONG_BY_CODE[buf[6]!];
  if (strong === undefined) throw err('ERR_BAD_PARAMS', `deltasync signature: unknown strong hash code ${buf[6]}`);
  const strongLen = buf[7]!;
  checkStrongLen(strongLen, strong, 'deltasync signature: strong sum length');
  const blockLen = readUintBE(buf, 8, 4)!;
  checkBlockLen(blockLen, 'deltasync signature: block length');
  const fileSize = readUintBE(buf, 12, 8);
  if (fileSize === null) throw err('ERR_BAD_PARAMS', 'deltasync signature: file size exceeds 2^53 - 1');
  const blockCount = blockCountFor(fileSize, blockLen);
  const entrySize = WEAK_WIDTH[rolling] + strongLen;
  const totalLen = 20 + blockCount * entrySize + 16;
  if (totalLen > MAX_SIGNATURE_BYTES) {
    throw err('ERR_BAD_PARAMS', `deltasync signature: ${blockCount} blocks of ${entrySize} bytes exceed the ${MAX_SIGNATURE_BYTES}-byte signature limit`);
  }
  return { blockLen, strongLen, strong, rolling, fileSize, blockCount, entrySize, totalLen };
}

function refRdiffHeader(buf: Uint8Array) {
  if (buf.length < 12) throw err('ERR_TRUNCATED', `rdiff signature: header truncated (${buf.length} of 12 bytes)`);
  const magic = readUintBE(buf, 0, 4)!;
  const kinds = RDIFF_KINDS[magic];
  if (!kinds) throw err('ERR_BAD_MAGIC', `not an rdiff signature (magic ${hex8(magic)})`);
  const blockLen = readUintBE(buf, 4, 4)!;
  checkBlockLen(blockLen, 'rdiff signature: block length');
  const strongLen = readUintBE(buf, 8, 4)!;
  checkStrongLen(strongLen, kinds.strong, 'rdiff signature: strong sum length');
  return { magic, ...kinds, blockLen, strongLen, entrySize: WEAK_WIDTH[kinds.rolling] + strongLen };
}

function refRdiffBlockCount(h: { blockLen: number; entrySize: number }, totalLen: number): number {
  if (totalLen > MAX_SIGNATURE_BYTES) throw err('ERR_BAD_PARAMS', `rdiff signature: ${totalLen} bytes exceed the ${MAX_SIGNATURE_BYTES}-byte signature limit`);
  const body = totalLen - 12;
  const count = Math.floor(body / h.entrySize);
  if (count * h.entrySize !== body) throw err('ERR_TRUNCATED', `rdiff signature: truncated inside block entry ${count} (entries are ${h.entrySize} bytes)`);
  if (count * h.blockLen > MAX_FILE_SIZE) throw err('ERR_BAD_PARAMS', `rdiff signature: ${count} blocks of ${h.blockLen} bytes exceed 2^53 - 1 bytes`);
  return count;
}

// ---- Harness ----------------------------------------------------------------------------------

interface Decoder {
  push(chunk: Buffer, out: DeltaOp[]): void;
  finish(): void;
  readonly resultSize: number | undefined;
  readonly resultHash: Buffer | undefined;
  readonly outputBytes: number;
  readonly done: boolean;
}

/** Everything observable about decoding `bytes` in the given chunking. */
function run(decoder: Decoder, bytes: Buffer, cuts: number[]) {
  const ops: DeltaOp[] = [];
  let error: string | undefined;
  let pos = 0;
  try {
    for (const n of cuts) {
      if (pos > bytes.length) break;
      decoder.push(bytes.subarray(pos, pos + n), ops);
      pos += n;
    }
    if (pos < bytes.length) decoder.push(bytes.subarray(pos), ops);
    decoder.finish();
  } catch (e) {
    if (!(e instanceof DeltaSyncError)) throw e;
    error = `${e.code}: ${e.message}`;
  }
  // Literal pieces can be split differently only where chunks split them: compare joined runs.
  const joined: (DeltaOp | { kind: 'literal'; data: string })[] = [];
  for (const op of ops) {
    const last = joined[joined.length - 1];
    if (op.kind === 'literal') {
      const hex = op.data.toString('hex');
      if (last?.kind === 'literal') last.data += hex;
      else joined.push({ kind: 'literal', data: hex });
    } else joined.push({ ...op });
  }
  return {
    error,
    ops: joined,
    resultSize: decoder.resultSize,
    resultHash: decoder.resultHash?.toString('hex'),
    outputBytes: decoder.outputBytes,
    done: decoder.done,
  };
}

function outcome(fn: () => unknown): string {
  try {
    return JSON.stringify(fn());
  } catch (e) {
    if (e instanceof DeltaSyncError) return `${e.code}: ${e.message}`;
    throw e;
  }
}

function encode(encoder: DeltaEncoder, script: Script, resultSize?: number): Buffer {
  encoder.header(resultSize, { strong: 'xxh3', blockLen: 4096 });
  for (const op of script) {
    if (op.kind === 'copy') encoder.copy(op.offset, op.length);
    else encoder.literal([op.data], op.data.length);
  }
  encoder.end(Buffer.alloc(16, 0x33));
  return Buffer.concat(encoder.take());
}

type Script = ({ kind: 'copy'; offset: number; length: number } | { kind: 'literal'; data: Buffer })[];

const scriptArb: fc.Arbitrary<Script> = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('copy' as const),
      offset: fc.oneof(fc.nat(2000), fc.nat(2 ** 40), fc.constant(MAX_FILE_SIZE - 2 ** 33)),
      length: fc.oneof(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 2 ** 33 })),
    }),
    fc.record({ kind: fc.constant('literal' as const), data: fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => Buffer.from(a)) }),
  ),
  { maxLength: 12 },
);

/** A valid delta of either format, then damaged in one of several ways. */
const deltaArb = fc
  .tuple(
    scriptArb,
    fc.constantFrom<Format>('deltasync', 'rdiff'),
    fc.boolean(),
    fc.array(
      fc.oneof(
        fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
        fc.record({ at: fc.nat(), set: fc.constantFrom(0x00, 0x01, 0x02, 0x03, 0x04, 0x41, 0x44, 0x54, 0x55, 0x7f, 0x80, 0xff) }),
        fc.record({ cut: fc.nat() }),
        fc.record({ at: fc.nat(), insert: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
      ),
      { maxLength: 3 },
    ),
  )
  .map(([script, format, withSize, edits]) => {
    const size = script.reduce((n, op) => n + (op.kind === 'copy' ? op.length : op.data.length), 0);
    let bytes = encode(format === 'rdiff' ? new RdiffDeltaEncoder() : new DsDeltaEncoder(), script, withSize ? size : undefined);
    for (const e of edits) {
      if (bytes.length === 0) break;
      if ('cut' in e) bytes = bytes.subarray(0, e.cut % (bytes.length + 1));
      else if ('insert' in e) {
        const at = e.at % (bytes.length + 1);
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(e.insert), bytes.subarray(at)]);
      } else {
        bytes = Buffer.from(bytes);
        const at = e.at % bytes.length;
        bytes[at] = 'xor' in e ? bytes[at]! ^ e.xor : e.set;
      }
    }
    return { format, bytes };
  });

const cutsArb = fc.oneof(
  fc.constant<number[]>([]),
  fc.array(fc.integer({ min: 0, max: 45 }), { minLength: 1, maxLength: 60 }),
  fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 50, maxLength: 400 }),
);

describe('native delta decoders agree with the TypeScript reference', () => {
  it('property: damaged deltas of both formats, any chunking: same ops, same error code and message', () => {
    let refused = 0;
    let accepted = 0;
    fc.assert(
      fc.property(deltaArb, cutsArb, ({ format, bytes }, cuts) => {
        const ours = run(format === 'rdiff' ? new RdiffDeltaDecoder() : new DsDeltaDecoder(), bytes, cuts);
        const ref = run(format === 'rdiff' ? new RefRdiff() : new RefDs(), bytes, cuts);
        expect(ours).toEqual(ref);
        const auto = run(new AutoDeltaDecoder(), bytes, cuts);
        const refAuto = run(new RefAuto(), bytes, cuts);
        expect(auto).toEqual(refAuto);
        if (ours.error) refused++;
        else accepted++;
      }),
      { numRuns: 1500 },
    );
    // The generator must reach both outcomes, or the comparison proves little.
    expect(refused).toBeGreaterThan(300);
    expect(accepted).toBeGreaterThan(100);
  });

  it('property: random bytes after each magic', () => {
    const magics = [[0x64, 0x73, 0x44, 0x4c, 2, 0, 1, 0x40], [0x64, 0x73, 0x44, 0x4c, 2, 1, 3, 0x80, 0x08], [0x64, 0x73, 0x44, 0x4c, 2, 0], [0x72, 0x73, 0x02, 0x36], [0x72, 0x73, 0x01, 0x47], []];
    fc.assert(
      fc.property(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 80 }), cutsArb, (magic, tail, cuts) => {
        const bytes = Buffer.concat([Buffer.from(magic), Buffer.from(tail)]);
        expect(run(new AutoDeltaDecoder(), bytes, cuts)).toEqual(run(new RefAuto(), bytes, cuts));
        expect(run(new DsDeltaDecoder(), bytes, cuts)).toEqual(run(new RefDs(), bytes, cuts));
        expect(run(new RdiffDeltaDecoder(), bytes, cuts)).toEqual(run(new RefRdiff(), bytes, cuts));
      }),
      { numRuns: 1500 },
    );
  });

  it('the hostile cases of test/corrupt.test.ts, byte by byte and whole', () => {
    const RD = Buffer.from([0x72, 0x73, 0x02, 0x36]);
    const DS = (size?: number[]) => Buffer.concat([Buffer.from('dsDL', 'latin1'), Buffer.from(size === undefined ? [2, 0, 1, 0x40] : [2, 1, 1, 0x40, ...size])]);
    const hash = Buffer.alloc(16);
    const cases = [
      Buffer.concat([RD, Buffer.from([0x43, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3])]),
      Buffer.concat([RD, Buffer.from([0x44, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1])]),
      Buffer.concat([RD, Buffer.from([0x20, 1, 2])]),
      Buffer.concat([RD, Buffer.from([0x60])]),
      Buffer.concat([RD, Buffer.from([0x02, 1, 2])]),
      Buffer.concat([RD, Buffer.from([0x00, 0x00])]),
      Buffer.concat([RD, Buffer.from([0x45, 5, 0, 0x41, 0, 0x46, 7, 0, 0, 0])]), // zero-length copies and literal: legal no-ops
      Buffer.concat([DS(), Buffer.from([0x02, 0x00]), hash]),
      Buffer.concat([DS(), Buffer.from([0x01, 0x00]), hash]),
      Buffer.concat([RD, Buffer.from([0x54, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0, 0, 0, 0, 1, 0])]),
      Buffer.concat([RD, Buffer.from([0x54, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0])]),
      Buffer.concat([RD, Buffer.from([0x54, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])]),
      Buffer.concat([DS(), Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])]),
      Buffer.concat([DS(), Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]),
      Buffer.concat([DS(), Buffer.from([0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])]),
      Buffer.concat([DS(), Buffer.from([0x01, 0x81, 0x00])]),
      Buffer.concat([DS(), Buffer.from([0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0]), hash]),
      // prevEnd + d above 2^53: JavaScript printed the rounded double; so must we.
      Buffer.concat([DS(), Buffer.from([0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0]), hash]),
      Buffer.concat([DS(), Buffer.from([0x02, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x03, 0x05, 1, 0]), hash]),
      Buffer.concat([DS(), Buffer.from([0x04, 1, 1, 0]), hash]),
      Buffer.concat([DS(), Buffer.from([0x02, 5, 0x04, 9, 1, 0]), hash]),
      Buffer.concat([DS(), Buffer.from([0x77, 0]), hash]),
      Buffer.concat([DS(), Buffer.from([0x02, 4])]),
      Buffer.concat([DS(), Buffer.from([0x00]), hash.subarray(0, 5)]),
      Buffer.concat([DS(), Buffer.from([0x00]), hash]),
      Buffer.concat([DS(), Buffer.from([0x00]), hash, Buffer.from([0])]),
      Buffer.concat([Buffer.from('dsDL', 'latin1'), Buffer.from([2, 0xfe, 0x00]), hash]),
      Buffer.concat([Buffer.from('dsDL', 'latin1'), Buffer.from([1, 0, 0x00]), hash]),
      Buffer.concat([Buffer.from('dsDL', 'latin1'), Buffer.from([2, 0, 4, 0x40, 0x00]), hash]),
      Buffer.concat([Buffer.from('dsDL', 'latin1'), Buffer.from([2, 0, 1, 0x00, 0x00]), hash]),
      Buffer.concat([Buffer.from('dsDL', 'latin1'), Buffer.from([2, 0, 1, 0x81, 0x80, 0x80, 0x20, 0x00]), hash]),
      Buffer.concat([DS([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from([0x02, 10, 0]), hash]),
      Buffer.concat([DS([3]), Buffer.from([0x02, 10, 0]), hash]),
      Buffer.concat([DS([5]), Buffer.from([0x02, 3, 0]), hash]),
      Buffer.concat([DS([5]), Buffer.from([0x01, 5, 1, 2])]),
      Buffer.from('hello'),
      Buffer.from([0x72, 0x73, 0x01, 0x47, 0, 0, 1, 0, 0, 0, 0, 8]),
      Buffer.from('dsSG'),
      Buffer.from([0x72, 0x73]),
      Buffer.alloc(0),
    ];
    for (const bytes of cases) {
      for (const cuts of [[], Array<number>(bytes.length).fill(1), [2, 0, 3, 0, 7]]) {
        const ours = run(new AutoDeltaDecoder(), bytes, cuts);
        expect(ours).toEqual(run(new RefAuto(), bytes, cuts));
        expect(run(new DsDeltaDecoder(), bytes, cuts)).toEqual(run(new RefDs(), bytes, cuts));
        expect(run(new RdiffDeltaDecoder(), bytes, cuts)).toEqual(run(new RefRdiff(), bytes, cuts));
      }
    }
  });
});

describe('native signature validation agrees with the TypeScript reference', () => {
  const dsHeader = fc
    .record({
      magic: fc.constantFrom(0x64735347, 0x64735347, 0x64735346),
      version: fc.constantFrom(1, 1, 1, 0, 2),
      rolling: fc.integer({ min: 0, max: 4 }),
      strong: fc.integer({ min: 0, max: 4 }),
      strongLen: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.nat(255)),
      blockLen: fc.oneof(fc.integer({ min: 0, max: 2 ** 27 }), fc.nat(2 ** 32 - 1), fc.constantFrom(1, 2 ** 26, 2 ** 26 + 1)),
      fileSize: fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 34n }), fc.constantFrom(2n ** 53n - 1n, 2n ** 53n)),
      cut: fc.integer({ min: 0, max: 30 }),
    })
    .map((f) => {
      const b = Buffer.alloc(20);
      b.writeUInt32BE(f.magic, 0);
      b[4] = f.version;
      b[5] = f.rolling;
      b[6] = f.strong;
      b[7] = f.strongLen;
      b.writeUInt32BE(f.blockLen, 8);
      b.writeBigUInt64BE(f.fileSize, 12);
      return f.cut < 20 && f.cut > 15 ? b.subarray(0, f.cut) : b;
    });

  const rdHeader = fc
    .record({
      magic: fc.constantFrom(0x72730136, 0x72730137, 0x72730146, 0x72730147, 0x72730148, 0x72730236),
      blockLen: fc.oneof(fc.integer({ min: 0, max: 2 ** 27 }), fc.nat(2 ** 32 - 1)),
      strongLen: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.nat(2 ** 32 - 1)),
      bodyLen: fc.oneof(fc.nat(200), fc.integer({ min: 0, max: 2 ** 31 })),
      cut: fc.integer({ min: 0, max: 30 }),
    });

  it('property: deltasync headers', () => {
    fc.assert(
      fc.property(dsHeader, (h) => {
        expect(outcome(() => parseDsSignatureHeader(h))).toBe(outcome(() => refDsHeader(h)));
      }),
      { numRuns: 3000 },
    );
  });

  it('property: rdiff headers and block counts', () => {
    fc.assert(
      fc.property(rdHeader, (f) => {
        const b = Buffer.alloc(12);
        b.writeUInt32BE(f.magic, 0);
        b.writeUInt32BE(f.blockLen, 4);
        b.writeUInt32BE(f.strongLen, 8);
        const h = f.cut < 12 && f.cut > 8 ? b.subarray(0, f.cut) : b;
        expect(outcome(() => parseRdiffSignatureHeader(h))).toBe(outcome(() => refRdiffHeader(h)));
        let parsed: ReturnType<typeof refRdiffHeader>;
        try {
          parsed = refRdiffHeader(h);
        } catch {
          return;
        }
        const total = 12 + f.bodyLen;
        expect(outcome(() => rdiffBlockCount(parsed, total))).toBe(outcome(() => refRdiffBlockCount(parsed, total)));
      }),
      { numRuns: 3000 },
    );
  });

  it('expectMagic: every kind, truncated and unknown', () => {
    const inputs = [[], [0x72], [0x72, 0x73, 0x02], ...Object.keys(MAGICS).map((m) => [...Buffer.from(Number(m).toString(16).padStart(8, '0'), 'hex')]), [1, 2, 3, 4]];
    for (const bytes of inputs) {
      for (const kind of ['signature', 'delta'] as const) {
        const buf = Buffer.from(bytes);
        expect(outcome(() => expectMagic(buf, kind))).toBe(outcome(() => refExpectMagic(buf, kind)));
      }
    }
  });

  it('parseSignature (whole signatures, natively) refuses exactly what Signature.parse refuses', async () => {
    const base = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251));
    for (const format of ['deltasync', 'rdiff'] as const) {
      const sig = (await signature(base, { format, blockLen: 256 })).toBuffer();
      const parsed = nativeFormat.parseSignature(sig);
      expect(parsed.error).toBeUndefined();
      if (parsed.error === undefined) {
        expect(parsed.blockCount).toBe(Math.ceil(5000 / 256));
        expect(sig.subarray(parsed.entriesOffset, parsed.entriesOffset + parsed.entriesLength)).toEqual(Signature.parse(sig).blocks);
      }
      const variants = fc.sample(
        fc.oneof(
          fc.record({ cut: fc.nat(sig.length) }),
          fc.record({ at: fc.nat(sig.length - 1), xor: fc.integer({ min: 1, max: 255 }) }),
          fc.record({ extra: fc.integer({ min: 1, max: 40 }) }),
        ),
        400,
      );
      for (const v of variants) {
        let bad: Buffer;
        if ('cut' in v) bad = sig.subarray(0, v.cut);
        else if ('extra' in v) bad = Buffer.concat([sig, Buffer.alloc(v.extra)]);
        else {
          bad = Buffer.from(sig);
          bad[v.at] ^= v.xor;
        }
        const ts = outcome(() => {
          Signature.parse(bad);
          return 'ok';
        });
        const r = nativeFormat.parseSignature(bad);
        expect(r.error ? `${r.error.code}: ${r.error.message}` : JSON.stringify('ok')).toBe(ts);
      }
    }
  });
});

describe('the public API runs through the native decoder', () => {
  it('decoder classes wrap native decoders', () => {
    for (const d of [new DsDeltaDecoder(), new RdiffDeltaDecoder(), new AutoDeltaDecoder()]) {
      expect((d as unknown as { decoder: unknown }).decoder).toBeInstanceOf(nativeFormat.DeltaDecoder);
    }
  });

  it('basisSize: a COPY past the basis is refused at decode time, with patch’s message', () => {
    const bytes = Buffer.concat([Buffer.from([0x72, 0x73, 0x02, 0x36]), Buffer.from([0x45, 5, 10, 0])]);
    const ops: DeltaOp[] = [];
    expect(() => new RdiffDeltaDecoder(10).push(bytes, ops)).toThrow('delta COPY of 10 bytes at offset 5 runs past the end of the 10-byte basis');
    expect(ops).toEqual([]);
    const fits = new RdiffDeltaDecoder(15);
    fits.push(bytes, ops);
    fits.finish();
    expect(ops).toEqual([{ kind: 'copy', offset: 5, length: 10 }]);
  });

  it('applyDelta (the fuzzed applier) matches patch() on real and damaged deltas', async () => {
    const base = Buffer.from(Array.from({ length: 30_000 }, (_, i) => (i * 2654435761) >>> 24));
    const next = Buffer.concat([base.subarray(100, 9000), Buffer.from('inserted text'), base.subarray(12_000), base.subarray(0, 700)]);
    for (const format of ['deltasync', 'rdiff'] as const) {
      const { delta: d } = await delta(await signature(base, { format, blockLen: 512 }), next);
      const good = nativeFormat.applyDelta(base, d, 1 << 24, [1, 7, 300]);
      expect(good.error).toBeUndefined();
      if (good.error === undefined) {
        expect(good.output.equals(next)).toBe(true);
        expect(good.verified).toBe(format === 'deltasync');
        expect(good.copiedBytes + good.literalBytes).toBe(next.length);
      }
      const capped = nativeFormat.applyDelta(base, d, next.length - 1);
      expect(capped.error?.code).toBe('ERR_BAD_PARAMS');
      const damaged = fc.sample(fc.tuple(fc.nat(d.length - 1), fc.integer({ min: 1, max: 255 })), 150);
      for (const [at, xor] of damaged) {
        const bad = Buffer.from(d);
        bad[at] ^= xor;
        let expected: string;
        try {
          expected = (await patch(base, bad)).output.toString('hex');
        } catch (e) {
          if (!(e instanceof DeltaSyncError)) throw e;
          expected = e.code;
        }
        const r = nativeFormat.applyDelta(base, bad, 1 << 26, [at % 97 || 1]);
        expect(r.error ? r.error.code : r.output.toString('hex')).toBe(expected);
      }
    }
  });
});
