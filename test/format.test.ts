// Unit tests of the encoders/decoders, bounds checks and parameter defaults.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeltaEngine, delta } from '../lib/delta.js';
import { DeltaSyncError } from '../lib/errors.js';
import { native } from '../lib/native.js';
import { PatchEngine, patch } from '../lib/patch.js';
import { Signature, signature } from '../lib/signature.js';
import { seededBytes } from './helpers/bytes.js';
import { ByteWriter, readUintBE, uintWidth, writeUintBE } from '../lib/format/bytes.js';
import {
  DS_DELTA_MAGIC,
  DS_OP,
  DS_SIG_HEADER_LEN,
  DsDeltaDecoder,
  DsDeltaEncoder,
  encodeDsSignatureHeader,
  parseDsSignatureHeader,
} from '../lib/format/deltasync.js';
import { AutoDeltaDecoder, expectMagic, identifyMagic } from '../lib/format/detect.js';
import type { DeltaDecoder, DeltaEncoder, DeltaOp } from '../lib/format/ops.js';
import {
  RS_COMMANDS,
  RS_DELTA_MAGIC,
  RdiffDeltaDecoder,
  RdiffDeltaEncoder,
  encodeRdiffSignatureHeader,
  parseRdiffSignatureHeader,
  rdiffBlockCount,
  rdiffCopyCommand,
  rdiffLiteralCommand,
} from '../lib/format/rdiff.js';
import { readVarint, varintLength, writeVarint } from '../lib/format/varint.js';
import {
  MAX_BLOCK_LEN,
  MAX_SIGNATURE_BYTES,
  defaultBlockLen,
  defaultStrongLen,
  isqrt,
  resolveSignatureParams,
} from '../lib/params.js';
import type { StrongKind } from '../lib/params.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DeltaSyncError) return err.code;
    throw err;
  }
  return 'no error';
}

function be(...bytes: number[]): Buffer {
  return Buffer.from(bytes);
}

describe('varint', () => {
  it('round-trips values up to 2^53 - 1 with the expected length', () => {
    const cases = [0, 1, 127, 128, 255, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 32, 2 ** 49 - 1, 2 ** 49, Number.MAX_SAFE_INTEGER];
    for (const v of cases) {
      const buf = Buffer.alloc(8);
      const end = writeVarint(buf, 0, v);
      // 7 payload bits per byte.
      expect(end).toBe(Math.ceil(v.toString(2).length / 7));
      expect(varintLength(v)).toBe(end);
      expect(readVarint(buf, 0, end)).toEqual({ value: v, next: end });
      // Every strict prefix is "need more data", not an error.
      for (let cut = 0; cut < end; cut++) expect(readVarint(buf, 0, cut)).toBeNull();
    }
  });

  it('property: random safe integers round-trip', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (v) => {
        const buf = Buffer.alloc(8);
        const end = writeVarint(buf, 0, v);
        return readVarint(buf, 0, end)!.value === v;
      }),
    );
  });

  it('uses little-endian 7-bit groups (LEB128)', () => {
    const buf = Buffer.alloc(8);
    expect(buf.subarray(0, writeVarint(buf, 0, 300))).toEqual(be(0xac, 0x02));
  });

  it('refuses values above 2^53 - 1, overlong and non-minimal encodings', () => {
    // 2^53 exactly: eighth byte would carry 0x10.
    expect(codeOf(() => readVarint(be(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10), 0, 8))).toBe('ERR_CORRUPT');
    expect(codeOf(() => readVarint(be(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 0, 9))).toBe('ERR_CORRUPT');
    expect(codeOf(() => readVarint(be(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), 0, 10))).toBe('ERR_CORRUPT');
    expect(codeOf(() => readVarint(be(0x81, 0x00), 0, 2))).toBe('ERR_CORRUPT');
    expect(readVarint(be(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f), 0, 8)!.value).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('big-endian integers', () => {
  it('picks librsync widths 1/2/4/8', () => {
    expect([0, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER].map(uintWidth)).toEqual([1, 1, 2, 2, 4, 4, 8, 8]);
  });
  it('round-trips every width', () => {
    for (const [v, w] of [[0xab, 1], [0xabcd, 2], [0xdeadbeef, 4], [Number.MAX_SAFE_INTEGER, 8], [2 ** 40 + 5, 8]] as const) {
      const buf = Buffer.alloc(8);
      expect(writeUintBE(buf, 0, v, w)).toBe(w);
      expect(readUintBE(buf, 0, w)).toBe(v);
      if (w === 4) expect(buf.readUInt32BE(0)).toBe(v);
      if (w === 8) expect(buf.readBigUInt64BE(0)).toBe(BigInt(v));
    }
  });
  it('reports 8-byte values of 2^53 and above as out of range', () => {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64BE(2n ** 53n);
    expect(readUintBE(buf, 0, 8)).toBeNull();
    buf.writeBigUInt64BE(2n ** 64n - 1n);
    expect(readUintBE(buf, 0, 8)).toBeNull();
  });
});

describe('ByteWriter', () => {
  it('keeps order across small fields and referenced payloads, and take() drains', () => {
    const w = new ByteWriter();
    const big = Buffer.alloc(10000, 7);
    w.u8(1);
    w.bytes(big);
    w.uintBE(0x0102, 2);
    w.bytes(be(9, 9));
    w.varint(300);
    const first = Buffer.concat(w.take());
    expect(first.length).toBe(1 + 10000 + 2 + 2 + 2);
    expect(first[0]).toBe(1);
    expect(first.subarray(1, 10001).equals(big)).toBe(true);
    expect([...first.subarray(10001)]).toEqual([1, 2, 9, 9, 0xac, 0x02]);
    w.u8(5);
    expect(w.takeBuffer()).toEqual(be(5));
    expect(w.total).toBe(first.length + 1);
  });
  it('spans many blocks', () => {
    const w = new ByteWriter();
    for (let i = 0; i < 200_000; i++) w.u8(i & 0xff);
    const out = w.takeBuffer();
    expect(out.length).toBe(200_000);
    expect(out[199_999]).toBe(199_999 & 0xff);
  });
});

/** Feeds `bytes` into a decoder in pieces of `step` bytes; returns ops with literals joined. */
function decodeAll(decoder: DeltaDecoder | AutoDeltaDecoder, bytes: Buffer, step = bytes.length || 1): DeltaOp[] {
  const raw: DeltaOp[] = [];
  for (let pos = 0; pos < bytes.length; pos += step) decoder.push(bytes.subarray(pos, pos + step), raw);
  decoder.finish();
  // Literal pieces of one command may arrive split: join consecutive literal pieces.
  const ops: DeltaOp[] = [];
  for (const op of raw) {
    const last = ops[ops.length - 1];
    if (op.kind === 'literal' && last?.kind === 'literal') last.data = Buffer.concat([last.data, op.data]);
    else ops.push(op.kind === 'literal' ? { kind: 'literal', data: Buffer.from(op.data) } : { ...op });
  }
  return ops;
}

type Script = ({ kind: 'copy'; offset: number; length: number } | { kind: 'literal'; data: Buffer })[];

function encode(encoder: DeltaEncoder, script: Script, resultSize?: number, hash = Buffer.alloc(16, 0x5a)): Buffer {
  encoder.header(resultSize, { strong: 'xxh3', blockLen: 1024 });
  for (const op of script) {
    if (op.kind === 'copy') encoder.copy(op.offset, op.length);
    else encoder.literal([op.data], op.data.length);
  }
  encoder.end(hash);
  return Buffer.concat(encoder.take());
}

const scriptArb: fc.Arbitrary<Script> = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('copy' as const),
      offset: fc.oneof(fc.nat(1000), fc.nat(2 ** 40), fc.constant(Number.MAX_SAFE_INTEGER - 2 ** 33)),
      length: fc.oneof(fc.integer({ min: 1, max: 70000 }), fc.integer({ min: 1, max: 2 ** 33 })),
    }),
    fc.record({ kind: fc.constant('literal' as const), data: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((a) => Buffer.from(a)) }),
  ),
  { maxLength: 20 },
);

/** Merges adjacent literals (two literal commands in a row decode as one joined run in decodeAll). */
function normalize(script: Script): Script {
  const out: Script = [];
  for (const op of script) {
    const last = out[out.length - 1];
    if (op.kind === 'literal' && last?.kind === 'literal') last.data = Buffer.concat([last.data, op.data]);
    else out.push({ ...op });
  }
  return out;
}

describe('deltasync delta', () => {
  it('encodes sequential copies compactly (offset relative to the previous copy end)', () => {
    const e = new DsDeltaEncoder();
    const bytes = encode(e, [
      { kind: 'copy', offset: 0, length: 1000 },
      { kind: 'copy', offset: 1000, length: 5 },
      { kind: 'copy', offset: 2005, length: 1 },
      { kind: 'copy', offset: 6, length: 2 },
    ]);
    const ops = bytes.subarray(9, bytes.length - 17); // magic, version, flags, strong, varint 1024
    expect([...ops]).toEqual([
      DS_OP.COPY_NEXT, 0xe8, 0x07, // 1000
      DS_OP.COPY_NEXT, 5,
      DS_OP.COPY_FWD, 0xe8, 0x07, 1, // 1005 + 1000
      DS_OP.COPY_BACK, 0xd0, 0x0f, 2, // 2006 - 2000 = 6
    ]);
    expect(bytes.readUInt32BE(0)).toBe(DS_DELTA_MAGIC);
    expect(bytes[bytes.length - 17]).toBe(DS_OP.END);
  });

  it('property: decode(encode(script)) == script, for any chunking', () => {
    fc.assert(
      fc.property(scriptArb, fc.boolean(), fc.integer({ min: 1, max: 50 }), (script, withSize, step) => {
        const size = script.reduce((n, op) => n + (op.kind === 'copy' ? op.length : op.data.length), 0);
        const hash = Buffer.from(Array.from({ length: 16 }, (_, i) => i * 7));
        const bytes = encode(new DsDeltaEncoder(), script, withSize ? size : undefined, hash);
        const dec = new DsDeltaDecoder();
        expect(decodeAll(dec, bytes, step)).toEqual(normalize(script));
        expect(dec.resultHash).toEqual(hash);
        expect(dec.resultSize).toBe(withSize ? size : undefined);
        expect(dec.outputBytes).toBe(size);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses garbage: bad magic, version, flags, opcodes, zero lengths, back copies before 0', () => {
    const header = be(0x64, 0x73, 0x44, 0x4c, 2, 0, 1, 0x40);
    const tail = Buffer.concat([be(0), Buffer.alloc(16)]);
    const run = (b: Buffer) => codeOf(() => decodeAll(new DsDeltaDecoder(), b));
    expect(run(Buffer.concat([header, tail]))).toBe('no error');
    expect(run(be(0x64, 0x73, 0x44, 0x4d, 2, 0, 1, 0x40, 0))).toBe('ERR_BAD_MAGIC');
    // Version 1 (whole-file hash) is no longer read; 3 does not exist.
    expect(run(be(0x64, 0x73, 0x44, 0x4c, 1, 0, 0))).toBe('ERR_BAD_MAGIC');
    expect(run(be(0x64, 0x73, 0x44, 0x4c, 3, 0, 1, 0x40, 0))).toBe('ERR_BAD_MAGIC');
    expect(run(be(0x64, 0x73, 0x44, 0x4c, 2, 0x80, 1, 0x40, 0))).toBe('ERR_CORRUPT');
    // Unknown strong kind, block length 0 or above 64 MiB.
    expect(run(Buffer.concat([be(0x64, 0x73, 0x44, 0x4c, 2, 0, 0, 0x40), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([be(0x64, 0x73, 0x44, 0x4c, 2, 0, 4, 0x40), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([be(0x64, 0x73, 0x44, 0x4c, 2, 0, 1, 0), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([be(0x64, 0x73, 0x44, 0x4c, 2, 0, 1, 0x81, 0x80, 0x80, 0x20), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([header, be(0x09), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([header, be(DS_OP.LITERAL, 0), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([header, be(DS_OP.COPY_NEXT, 0), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([header, be(DS_OP.COPY_BACK, 1, 1), tail]))).toBe('ERR_CORRUPT');
    // Huge varint as a literal length.
    expect(run(Buffer.concat([header, be(DS_OP.LITERAL, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), tail]))).toBe('ERR_CORRUPT');
    // A literal longer than the rest of the stream.
    expect(run(Buffer.concat([header, be(DS_OP.LITERAL, 100, 1, 2, 3)]))).toBe('ERR_CORRUPT');
    // Ops describing more than the declared size.
    expect(run(Buffer.concat([be(0x64, 0x73, 0x44, 0x4c, 2, 1, 1, 0x40, 2), be(DS_OP.COPY_NEXT, 3), tail]))).toBe('ERR_CORRUPT');
    // ... or less.
    expect(run(Buffer.concat([be(0x64, 0x73, 0x44, 0x4c, 2, 1, 1, 0x40, 5), be(DS_OP.COPY_NEXT, 3), tail]))).toBe('ERR_CORRUPT');
    // Data after the trailer.
    expect(run(Buffer.concat([header, tail, be(0)]))).toBe('ERR_CORRUPT');
  });

  it('reports every truncation as a DeltaSyncError', () => {
    const bytes = encode(new DsDeltaEncoder(), [
      { kind: 'copy', offset: 5, length: 100 },
      { kind: 'literal', data: Buffer.alloc(40, 1) },
      { kind: 'copy', offset: 0, length: 5 },
    ], 145);
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(['ERR_TRUNCATED', 'ERR_CORRUPT']).toContain(codeOf(() => decodeAll(new DsDeltaDecoder(), bytes.subarray(0, cut), 7)));
    }
  });
});

describe('rdiff delta', () => {
  it('has librsync’s command table', () => {
    expect(RS_COMMANDS[0]!.kind).toBe('end');
    expect(RS_COMMANDS[1]).toMatchObject({ kind: 'literal', immediate: 1, arg1: 0 });
    expect(RS_COMMANDS[0x40]).toMatchObject({ kind: 'literal', immediate: 64, arg1: 0 });
    expect([0x41, 0x42, 0x43, 0x44].map((b) => RS_COMMANDS[b]!.arg1)).toEqual([1, 2, 4, 8]);
    expect(RS_COMMANDS[0x45]).toMatchObject({ kind: 'copy', arg1: 1, arg2: 1 });
    expect(RS_COMMANDS[0x46]).toMatchObject({ kind: 'copy', arg1: 1, arg2: 2 });
    expect(RS_COMMANDS[0x49]).toMatchObject({ kind: 'copy', arg1: 2, arg2: 1 });
    expect(RS_COMMANDS[0x4f]).toMatchObject({ kind: 'copy', arg1: 4, arg2: 4 });
    expect(RS_COMMANDS[0x54]).toMatchObject({ kind: 'copy', arg1: 8, arg2: 8 });
    for (let b = 0x55; b < 256; b++) expect(RS_COMMANDS[b]!.kind).toBe('reserved');
  });

  it('chooses the smallest widths', () => {
    expect(rdiffLiteralCommand(1)).toBe(1);
    expect(rdiffLiteralCommand(64)).toBe(64);
    expect(rdiffLiteralCommand(65)).toBe(0x41);
    expect(rdiffLiteralCommand(256)).toBe(0x42);
    expect(rdiffLiteralCommand(70000)).toBe(0x43);
    expect(rdiffLiteralCommand(2 ** 32)).toBe(0x44);
    expect(rdiffCopyCommand(0, 1)).toBe(0x45);
    expect(rdiffCopyCommand(0x1234, 0x10)).toBe(0x49);
    expect(rdiffCopyCommand(0x12345678, 0x10000)).toBe(0x4f);
    expect(rdiffCopyCommand(2 ** 33, 2 ** 33)).toBe(0x54);
  });

  it('writes the exact bytes librsync’s format describes', () => {
    const e = new RdiffDeltaEncoder();
    const lit = Buffer.alloc(70, 0x61);
    const bytes = encode(e, [
      { kind: 'copy', offset: 0x1234, length: 0x10 },
      { kind: 'literal', data: be(0x41, 0x42) },
      { kind: 'literal', data: lit },
      { kind: 'copy', offset: 2 ** 32, length: 2 },
    ]);
    expect(bytes).toEqual(
      Buffer.concat([
        be(0x72, 0x73, 0x02, 0x36),
        be(0x49, 0x12, 0x34, 0x10),
        be(0x02, 0x41, 0x42),
        be(0x41, 70),
        lit,
        be(0x51, 0, 0, 0, 1, 0, 0, 0, 0, 2),
        be(0x00),
      ]),
    );
  });

  it('decodes every command width, including ones our encoder never picks', () => {
    // COPY_N8_N8 of (3, 4) and LITERAL_N8 of 2 bytes: legal, just not minimal.
    const bytes = Buffer.concat([
      be(0x72, 0x73, 0x02, 0x36),
      be(0x54, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4),
      be(0x44, 0, 0, 0, 0, 0, 0, 0, 2, 0x78, 0x79),
      be(0x4b, 0, 9, 0, 0, 0, 1),
      be(0x00),
    ]);
    expect(decodeAll(new RdiffDeltaDecoder(), bytes, 3)).toEqual([
      { kind: 'copy', offset: 3, length: 4 },
      { kind: 'literal', data: be(0x78, 0x79) },
      { kind: 'copy', offset: 9, length: 1 },
    ]);
  });

  it('property: decode(encode(script)) == script, for any chunking', () => {
    fc.assert(
      fc.property(scriptArb, fc.integer({ min: 1, max: 50 }), (script, step) => {
        const bytes = encode(new RdiffDeltaEncoder(), script);
        expect(decodeAll(new RdiffDeltaDecoder(), bytes, step)).toEqual(normalize(script));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses reserved commands, huge fields, truncation and trailing data', () => {
    const magic = be(0x72, 0x73, 0x02, 0x36);
    const run = (b: Buffer) => codeOf(() => decodeAll(new RdiffDeltaDecoder(), b));
    expect(run(Buffer.concat([magic, be(0)]))).toBe('no error');
    expect(run(Buffer.concat([magic, be(0x55, 0)]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([magic, be(0xff, 0)]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([magic, be(0x44, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), be(0)]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([magic, be(0x54, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1), be(0)]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([magic, be(0x43, 0, 1, 0, 0, 1, 2, 3)]))).toBe('ERR_CORRUPT'); // literal past the end
    expect(run(Buffer.concat([magic, be(0x45, 1)]))).toBe('ERR_TRUNCATED');
    expect(run(magic)).toBe('ERR_TRUNCATED');
    expect(run(Buffer.concat([magic, be(0, 0)]))).toBe('ERR_CORRUPT');
    expect(run(be(0x72, 0x73, 0x02, 0x37, 0))).toBe('ERR_BAD_MAGIC');
  });
});

describe('magic detection', () => {
  it('identifies the four kinds and refuses the rest', () => {
    expect(identifyMagic(0x72730147)).toEqual({ format: 'rdiff', kind: 'signature' });
    expect(identifyMagic(0x72730136)).toEqual({ format: 'rdiff', kind: 'signature' });
    expect(identifyMagic(RS_DELTA_MAGIC)).toEqual({ format: 'rdiff', kind: 'delta' });
    expect(identifyMagic(DS_DELTA_MAGIC)).toEqual({ format: 'deltasync', kind: 'delta' });
    expect(identifyMagic(0x72730138)).toBeNull();
    expect(codeOf(() => expectMagic(be(0x72, 0x73, 0x01, 0x47), 'delta'))).toBe('ERR_BAD_MAGIC');
    expect(codeOf(() => expectMagic(be(0x72, 0x73), 'delta'))).toBe('ERR_TRUNCATED');
    expect(codeOf(() => expectMagic(Buffer.alloc(0), 'signature'))).toBe('ERR_TRUNCATED');
  });
  it('AutoDeltaDecoder follows the magic, even split byte by byte', () => {
    const rd = encode(new RdiffDeltaEncoder(), [{ kind: 'copy', offset: 1, length: 2 }]);
    const ds = encode(new DsDeltaEncoder(), [{ kind: 'copy', offset: 1, length: 2 }], 2);
    for (const bytes of [rd, ds]) {
      const dec = new AutoDeltaDecoder();
      expect(decodeAll(dec, bytes, 1)).toEqual([{ kind: 'copy', offset: 1, length: 2 }]);
    }
    expect(codeOf(() => decodeAll(new AutoDeltaDecoder(), Buffer.from('hello world')))).toBe('ERR_BAD_MAGIC');
  });
});

describe('signature headers', () => {
  it('deltasync header round-trips and records every parameter', () => {
    const h = encodeDsSignatureHeader({ blockLen: 2 ** 20, strongLen: 9, strong: 'blake2b', rolling: 'rabinkarp', fileSize: 2 ** 40 + 1 });
    expect(h.length).toBe(DS_SIG_HEADER_LEN);
    const p = parseDsSignatureHeader(h);
    expect(p).toMatchObject({ blockLen: 2 ** 20, strongLen: 9, strong: 'blake2b', rolling: 'rabinkarp', fileSize: 2 ** 40 + 1 });
    expect(p.entrySize).toBe(4 + 9);
  });

  it('deltasync header bounds', () => {
    const good = encodeDsSignatureHeader({ blockLen: 1024, strongLen: 16, strong: 'xxh3', rolling: 'ds64', fileSize: 10000 });
    const mutate = (at: number, bytes: number[]) => {
      const b = Buffer.from(good);
      b.set(bytes, at);
      return codeOf(() => parseDsSignatureHeader(b));
    };
    expect(mutate(0, [0x72])).toBe('ERR_BAD_MAGIC');
    expect(mutate(4, [9])).toBe('ERR_BAD_MAGIC');
    expect(mutate(5, [0])).toBe('ERR_BAD_PARAMS');
    expect(mutate(6, [7])).toBe('ERR_BAD_PARAMS');
    expect(mutate(7, [0])).toBe('ERR_BAD_PARAMS');
    expect(mutate(7, [17])).toBe('ERR_BAD_PARAMS'); // xxh3 is 16 bytes
    expect(mutate(8, [0, 0, 0, 0])).toBe('ERR_BAD_PARAMS');
    expect(mutate(8, [0x80, 0, 0, 0])).toBe('ERR_BAD_PARAMS');
    expect(mutate(12, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toBe('ERR_BAD_PARAMS');
    // A file size implying a signature far over the limit (forged count).
    expect(mutate(8, [0, 0, 0, 1, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).toBe('ERR_BAD_PARAMS');
    expect(codeOf(() => parseDsSignatureHeader(good.subarray(0, 19)))).toBe('ERR_TRUNCATED');
  });

  it('rdiff header round-trips and maps magics to kinds', () => {
    const cases = [
      ['rollsum', 'md4', 0x72730136],
      ['rollsum', 'blake2b', 0x72730137],
      ['rabinkarp', 'md4', 0x72730146],
      ['rabinkarp', 'blake2b', 0x72730147],
    ] as const;
    for (const [rolling, strong, magic] of cases) {
      const h = encodeRdiffSignatureHeader({ rolling, strong, blockLen: 2048, strongLen: 8 });
      expect(h).toEqual(be(magic >>> 24, (magic >>> 16) & 0xff, (magic >>> 8) & 0xff, magic & 0xff, 0, 0, 8, 0, 0, 0, 0, 8));
      expect(parseRdiffSignatureHeader(h)).toMatchObject({ rolling, strong, blockLen: 2048, strongLen: 8, entrySize: 12 });
    }
  });

  it('rdiff header and body bounds', () => {
    const hdr = (block: number, strong: number, magic = 0x72730147) => {
      const b = Buffer.alloc(12);
      b.writeUInt32BE(magic, 0);
      b.writeUInt32BE(block, 4);
      b.writeUInt32BE(strong, 8);
      return b;
    };
    expect(codeOf(() => parseRdiffSignatureHeader(hdr(0, 8)))).toBe('ERR_BAD_PARAMS');
    expect(codeOf(() => parseRdiffSignatureHeader(hdr(2 ** 31, 8)))).toBe('ERR_BAD_PARAMS');
    expect(codeOf(() => parseRdiffSignatureHeader(hdr(MAX_BLOCK_LEN + 1, 8)))).toBe('ERR_BAD_PARAMS');
    expect(codeOf(() => parseRdiffSignatureHeader(hdr(MAX_BLOCK_LEN, 32)))).toBe('no error');
    expect(codeOf(() => parseRdiffSignatureHeader(hdr(256, 0)))).toBe('ERR_BAD_PARAMS');
    expect(codeOf(() => parseRdiffSignatureHeader(hdr(256, 33)))).toBe('ERR_BAD_PARAMS');
    expect(codeOf(() => parseRdiffSignatureHeader(hdr(256, 17, 0x72730146)))).toBe('ERR_BAD_PARAMS');
    expect(codeOf(() => parseRdiffSignatureHeader(hdr(256, 8, 0x12345678)))).toBe('ERR_BAD_MAGIC');
    const h = parseRdiffSignatureHeader(hdr(256, 8));
    expect(rdiffBlockCount(h, 12 + 3 * 12)).toBe(3);
    expect(codeOf(() => rdiffBlockCount(h, 12 + 3 * 12 + 5))).toBe('ERR_TRUNCATED');
    expect(codeOf(() => rdiffBlockCount(h, MAX_SIGNATURE_BYTES + 12))).toBe('ERR_BAD_PARAMS');
  });
});

describe('parameters', () => {
  it('isqrt is exact', () => {
    for (const n of [0, 1, 2, 3, 4, 15, 16, 17, 65535, 65536, 2 ** 52, 2 ** 53 - 1, (2 ** 26 + 1) ** 2 - 1]) {
      const r = isqrt(n);
      expect(BigInt(r) ** 2n <= BigInt(n)).toBe(true);
      expect(BigInt(r + 1) ** 2n > BigInt(n)).toBe(true);
    }
  });

  it('deltasync block length follows rsync: ~sqrt, multiple of 8, within [700, 128 KiB]', () => {
    expect(defaultBlockLen('deltasync', 0)).toBe(700);
    expect(defaultBlockLen('deltasync', 700 * 700)).toBe(700);
    expect(defaultBlockLen('deltasync', 1_000_000)).toBe(1000);
    expect(defaultBlockLen('deltasync', 1_000_000_000)).toBe(31616); // sqrt = 31622.7
    expect(defaultBlockLen('deltasync', 2 ** 40)).toBe(128 * 1024);
    fc.assert(
      fc.property(fc.maxSafeNat(), (size) => {
        const b = defaultBlockLen('deltasync', size);
        return b >= 700 && b <= 131072 && (b === 700 || b % 8 === 0) && (b === 700 || b === 131072 || Math.abs(b - Math.sqrt(size)) < 8);
      }),
    );
  });

  it('deltasync strong length grows with the size and stays within [8, 16]', () => {
    expect(defaultStrongLen('deltasync', 'xxh3', 0, 700)).toBe(8);
    expect(defaultStrongLen('deltasync', 'xxh3', 1_000_000, 1000)).toBe(12); // 19.9 + 9.97 + 64 bits
    expect(defaultStrongLen('deltasync', 'xxh3', 2 ** 40, 2 ** 17)).toBe(16);
    expect(defaultStrongLen('deltasync', 'xxh3', undefined, 4096)).toBe(16);
    let prev = 0;
    for (let e = 0; e <= 53; e++) {
      const size = 2 ** e - 1;
      const s = defaultStrongLen('deltasync', 'blake2b', size, defaultBlockLen('deltasync', size));
      expect(s).toBeGreaterThanOrEqual(prev);
      expect(s).toBeGreaterThanOrEqual(8);
      expect(s).toBeLessThanOrEqual(16);
      prev = s;
    }
  });

  it('rdiff defaults: blake2b + rabinkarp, max strong length', () => {
    expect(resolveSignatureParams({ format: 'rdiff' }, 1000)).toEqual({ format: 'rdiff', blockLen: 256, strongLen: 32, strong: 'blake2b', rolling: 'rabinkarp' });
    expect(resolveSignatureParams({ format: 'rdiff', strong: 'md4' }, 1000).strongLen).toBe(16);
    expect(resolveSignatureParams({ format: 'rdiff' }).blockLen).toBe(2048);
    expect(resolveSignatureParams({ format: 'rdiff', fileSize: 4_000_000 }).blockLen).toBe(1920);
    expect(resolveSignatureParams({ format: 'rdiff', blockLen: 0, strongLen: 0 }, 1000)).toMatchObject({ blockLen: 256, strongLen: 32 });
  });

  it('validates options: kinds -> ERR_USAGE, ranges -> ERR_BAD_PARAMS', () => {
    const bad = (o: unknown) => codeOf(() => resolveSignatureParams(o as never, 100));
    expect(bad({ format: 'zip' })).toBe('ERR_USAGE');
    expect(bad({ format: 'rdiff', strong: 'xxh3' })).toBe('ERR_USAGE');
    expect(bad({ format: 'rdiff', rolling: 'ds64' })).toBe('ERR_USAGE');
    expect(bad({ strong: 'sha1' })).toBe('ERR_USAGE');
    expect(bad({ rolling: 'adler' })).toBe('ERR_USAGE');
    expect(bad({ blockLen: 'big' })).toBe('ERR_USAGE');
    expect(bad({ fileSize: -1 })).toBe('ERR_USAGE');
    expect(bad('x')).toBe('ERR_USAGE');
    expect(bad({ blockLen: -5 })).toBe('ERR_BAD_PARAMS');
    expect(bad({ blockLen: 1.5 })).toBe('ERR_BAD_PARAMS');
    expect(bad({ blockLen: MAX_BLOCK_LEN + 1 })).toBe('ERR_BAD_PARAMS');
    expect(bad({ strongLen: 17 })).toBe('ERR_BAD_PARAMS');
    expect(bad({ strong: 'blake2b', strongLen: 33 })).toBe('ERR_BAD_PARAMS');
    expect(bad({ strong: 'blake2b', strongLen: 32 })).toBe('no error');
    expect(bad({ blockLen: 1, strongLen: 1 })).toBe('no error');
  });
});

// ---- deltasync v2 result digest (docs/FORMAT.md, "Block digest") ----

/** The block digest written from the spec, one-shot over the whole framed byte string. */
function specDigest(ops: DeltaOp[], basis: Buffer, blockLen: number, strong: StrongKind): Buffer {
  const parts: Buffer[] = [];
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    return b;
  };
  let run = 0;
  let pieces = 0;
  let size = 0;
  for (const op of ops) {
    if (op.kind === 'literal') {
      parts.push(op.data);
      run += op.data.length;
      size += op.data.length;
      continue;
    }
    for (let at = op.offset; at < op.offset + op.length; ) {
      const next = Math.min(op.offset + op.length, (Math.floor(at / blockLen) + 1) * blockLen);
      parts.push(u64(run), native.hash(strong, basis.subarray(at, next)));
      run = 0;
      pieces++;
      size += next - at;
      at = next;
    }
  }
  parts.push(u64(run), u64(size), u64(pieces));
  return native.hash('xxh3', Buffer.concat(parts));
}

function encodeOps(ops: DeltaOp[], grid: { strong: StrongKind; blockLen: number }, hash: Buffer): Buffer {
  const e = new DsDeltaEncoder();
  e.header(ops.reduce((n, op) => n + (op.kind === 'copy' ? op.length : op.data.length), 0), grid);
  for (const op of ops) {
    if (op.kind === 'copy') e.copy(op.offset, op.length);
    else e.literal([op.data], op.data.length);
  }
  e.end(hash);
  return Buffer.concat(e.take());
}

function opsOf(bytes: Buffer): DeltaOp[] {
  const out: DeltaOp[] = [];
  const d = new DsDeltaDecoder();
  d.push(bytes, out);
  d.finish();
  return out.map((op) => (op.kind === 'literal' ? { kind: 'literal', data: Buffer.from(op.data) } : op));
}

function gridOf(sig: Signature, basisSize: number) {
  const w = native.strongFullLen(sig.strong);
  const weak = sig.entrySize - sig.strongLen;
  const hashes = Buffer.concat(Array.from({ length: sig.blockCount }, (_, k) => sig.blocks.subarray(k * sig.entrySize + weak, (k + 1) * sig.entrySize)));
  expect(hashes.length).toBe(sig.blockCount * w);
  return { strong: sig.strong, blockLen: sig.blockLen, basisSize, hashes };
}

async function patchWith(basis: Buffer, deltaBytes: Buffer, options: ConstructorParameters<typeof PatchEngine>[2] = {}): Promise<{ out: Buffer; engine: PatchEngine }> {
  const result = Buffer.alloc(opsOf(deltaBytes).reduce((n, op) => n + (op.kind === 'copy' ? op.length : op.data.length), 0));
  const engine = new PatchEngine(basis, undefined, {
    ...options,
    output: {
      write: async (data, position) => void data.copy(result, position),
      copyFromBasis: async (offset, length, position) => void basis.copy(result, position, offset, offset + length),
    },
  });
  await engine.write(deltaBytes);
  await engine.finish();
  return { out: result, engine };
}

describe('deltasync v2 block digest', () => {
  const basis = seededBytes(70_000, 11);
  const next = Buffer.concat([basis.subarray(0, 30_000), Buffer.from('edit'), basis.subarray(30_001, 64_000), basis.subarray(1_000, 9_000), Buffer.from('tail')]);

  it('the delta trailer is the spec digest, for every strong kind and block length (short last block too)', async () => {
    for (const strong of ['xxh3', 'md4', 'blake2b'] as const) {
      for (const blockLen of [700, 1024, 4096, 69_999]) {
        const sig = await signature(basis, { strong, blockLen });
        const { delta: d, stats } = await delta(sig, next);
        expect(stats.matchedBytes).toBeGreaterThan(0);
        const ops = opsOf(d);
        expect(d.subarray(d.length - 16)).toEqual(specDigest(ops, basis, blockLen, strong));
        expect((await patch(basis, d)).output.equals(next)).toBe(true);
      }
    }
  });

  it('split and merged COPYs and LITERALs give the same digest; non-aligned COPY pieces are hashed from their bytes', async () => {
    const B = 1024;
    const merged: DeltaOp[] = [
      { kind: 'literal', data: Buffer.from('head') },
      { kind: 'copy', offset: 0, length: 5 * B + 10 },
      { kind: 'literal', data: Buffer.from('middle bytes') },
      { kind: 'copy', offset: 3 * B + 7, length: 2 * B },
    ];
    // Same result, COPYs cut on cell borders, literals cut anywhere.
    const split: DeltaOp[] = [
      { kind: 'literal', data: Buffer.from('he') },
      { kind: 'literal', data: Buffer.from('ad') },
      { kind: 'copy', offset: 0, length: B },
      { kind: 'copy', offset: B, length: 2 * B },
      { kind: 'copy', offset: 3 * B, length: 2 * B + 10 },
      { kind: 'literal', data: Buffer.from('middle') },
      { kind: 'literal', data: Buffer.from(' bytes') },
      { kind: 'copy', offset: 3 * B + 7, length: B - 7 },
      { kind: 'copy', offset: 4 * B, length: B + 7 },
    ];
    const grid = { strong: 'xxh3' as const, blockLen: B };
    const hash = specDigest(merged, basis, B, 'xxh3');
    expect(specDigest(split, basis, B, 'xxh3')).toEqual(hash);
    // A COPY cut inside a cell makes two pieces there: a different digest (pieces end at COPY ends).
    const cutInside: DeltaOp[] = [merged[0]!, { kind: 'copy', offset: 0, length: 100 }, { kind: 'copy', offset: 100, length: 5 * B - 90 }, ...merged.slice(2)];
    expect(specDigest(cutInside, basis, B, 'xxh3')).not.toEqual(hash);
    await expect(patch(basis, encodeOps(cutInside, { strong: 'xxh3', blockLen: B }, hash))).rejects.toMatchObject({ code: 'ERR_HASH_MISMATCH' });
    const expected = (await patch(basis, encodeOps(merged, grid, hash))).output;
    const viaSplit = await patch(basis, encodeOps(split, grid, hash));
    expect(viaSplit.stats.verified).toBe(true);
    expect(viaSplit.output.equals(expected)).toBe(true);
    // With a trusted grid and range copies: whole cells are not read, partial ones are hashed.
    const sig = await signature(basis, { blockLen: B, strongLen: 16 });
    const { out, engine } = await patchWith(basis, encodeOps(split, grid, hash), { grid: gridOf(sig, basis.length) });
    expect(out.equals(expected)).toBe(true);
    expect(engine.rangeCopiedBytes).toBeGreaterThanOrEqual(3 * B);
  });

  it('a hostile delta cannot pass a partial piece off as a whole cell', async () => {
    const B = 1024;
    const sig = await signature(basis, { blockLen: B, strongLen: 16 });
    const grid = gridOf(sig, basis.length);
    // COPY [1, B + 1) with a trailer that uses cell 0's and cell 1's grid hashes as if whole.
    const ops: DeltaOp[] = [{ kind: 'copy', offset: 1, length: B }];
    const forged = native.hash('xxh3', Buffer.concat([Buffer.alloc(8), grid.hashes.subarray(0, 16), Buffer.alloc(8), grid.hashes.subarray(16, 32), Buffer.alloc(8), Buffer.from([0, 4, 0, 0, 0, 0, 0, 0]), Buffer.from([2, 0, 0, 0, 0, 0, 0, 0])]));
    await expect(patchWith(basis, encodeOps(ops, { strong: 'xxh3', blockLen: B }, forged), { grid })).rejects.toMatchObject({ code: 'ERR_HASH_MISMATCH' });
    const honest = specDigest(ops, basis, B, 'xxh3');
    const { out } = await patchWith(basis, encodeOps(ops, { strong: 'xxh3', blockLen: B }, honest), { grid });
    expect(out.equals(basis.subarray(1, B + 1))).toBe(true);
  });

  it('the wrong basis is ERR_HASH_MISMATCH, with or without its grid', async () => {
    const sig = await signature(basis, { blockLen: 2048 });
    const { delta: d } = await delta(sig, next);
    const other = Buffer.from(basis);
    other[5000] ^= 1;
    await expect(patch(other, d)).rejects.toMatchObject({ code: 'ERR_HASH_MISMATCH' });
    const otherSig = await signature(other, { blockLen: 2048, strongLen: 16 });
    await expect(patchWith(other, d, { grid: gridOf(otherSig, other.length) })).rejects.toMatchObject({ code: 'ERR_HASH_MISMATCH' });
    // The right basis with its grid: verified, copied ranges not read through the engine.
    const goodSig = await signature(basis, { blockLen: 2048, strongLen: 16 });
    const { out, engine } = await patchWith(basis, d, { grid: gridOf(goodSig, basis.length) });
    expect(out.equals(next)).toBe(true);
    expect(engine.rangeCopiedBytes).toBe(engine.stats.copiedBytes);
  });

  it('a grid for another block length or size is not used (pieces are hashed instead)', async () => {
    const sig = await signature(basis, { blockLen: 2048 });
    const { delta: d } = await delta(sig, next);
    const wrongLen = await signature(basis, { blockLen: 1024, strongLen: 16 });
    const a = await patchWith(basis, d, { grid: gridOf(wrongLen, basis.length) });
    expect(a.out.equals(next)).toBe(true);
    expect(a.engine.rangeCopiedBytes).toBe(0);
  });
});

describe('patching in place', () => {
  const B = 1024;
  const basis = seededBytes(64 * B, 21);

  async function inPlace(file: Buffer, d: Buffer, grid?: ReturnType<typeof gridOf>) {
    const engine = new PatchEngine({ read: async (o, l) => Buffer.from(file.subarray(o, o + l)), size: file.length }, undefined, {
      inPlace: true,
      ...(grid ? { grid } : {}),
      output: {
        write: async (data, position) => {
          if (position + data.length > file.length) file = Buffer.concat([file, Buffer.alloc(position + data.length - file.length)]);
          data.copy(file, position);
        },
      },
    });
    await engine.write(d);
    await engine.finish();
    return { file, engine };
  }

  it('a prepended byte shifts every block back: the hazard is caught, not written wrong', async () => {
    const next = Buffer.concat([Buffer.from('!'), basis]);
    const sig = await signature(basis, { blockLen: B });
    const { delta: d } = await delta(sig, next);
    await expect(inPlace(Buffer.from(basis), d)).rejects.toMatchObject({ code: 'ERR_HASH_MISMATCH' });
  });

  it('with the in-place rule the sender never copies backwards; unchanged blocks are left alone', async () => {
    const sig = await signature(basis, { blockLen: B, strongLen: 16 });
    const grid = gridOf(sig, basis.length);
    const cases = [
      Buffer.concat([Buffer.from('!'), basis]),
      Buffer.concat([basis.subarray(0, 30 * B + 5), Buffer.from('edit'), basis.subarray(30 * B + 9)]),
      Buffer.concat([basis.subarray(0, 10 * B), basis.subarray(10 * B + 1)]),
      Buffer.concat([basis, Buffer.from('appended')]),
    ];
    for (const next of cases) {
      const engine = new DeltaEngine(sig, next.length, { inPlace: true });
      const parts = [...(await engine.update(next)), ...(await engine.finish())];
      const d = Buffer.concat(parts);
      let at = 0;
      for (const op of opsOf(d)) {
        if (op.kind === 'copy') expect(op.offset).toBeGreaterThanOrEqual(at);
        at += op.kind === 'copy' ? op.length : op.data.length;
      }
      const { file, engine: p } = await inPlace(Buffer.from(basis), d, grid);
      expect(file.subarray(0, next.length).equals(next)).toBe(true);
      if (next.length === basis.length) expect(p.unchangedBytes).toBeGreaterThan(basis.length / 2);
    }
  });
});
