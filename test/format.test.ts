// Unit tests of the encoders/decoders, bounds checks and parameter defaults.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DeltaSyncError } from '../lib/errors.js';
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
  encoder.header(resultSize);
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
    const ops = bytes.subarray(6, bytes.length - 17);
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
    const header = be(0x64, 0x73, 0x44, 0x4c, 1, 0);
    const tail = Buffer.concat([be(0), Buffer.alloc(16)]);
    const run = (b: Buffer) => codeOf(() => decodeAll(new DsDeltaDecoder(), b));
    expect(run(Buffer.concat([header, tail]))).toBe('no error');
    expect(run(be(0x64, 0x73, 0x44, 0x4d, 1, 0, 0))).toBe('ERR_BAD_MAGIC');
    expect(run(be(0x64, 0x73, 0x44, 0x4c, 2, 0, 0))).toBe('ERR_BAD_MAGIC');
    expect(run(be(0x64, 0x73, 0x44, 0x4c, 1, 0x80, 0))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([header, be(0x09), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([header, be(DS_OP.LITERAL, 0), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([header, be(DS_OP.COPY_NEXT, 0), tail]))).toBe('ERR_CORRUPT');
    expect(run(Buffer.concat([header, be(DS_OP.COPY_BACK, 1, 1), tail]))).toBe('ERR_CORRUPT');
    // Huge varint as a literal length.
    expect(run(Buffer.concat([header, be(DS_OP.LITERAL, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), tail]))).toBe('ERR_CORRUPT');
    // A literal longer than the rest of the stream.
    expect(run(Buffer.concat([header, be(DS_OP.LITERAL, 100, 1, 2, 3)]))).toBe('ERR_CORRUPT');
    // Ops describing more than the declared size.
    expect(run(Buffer.concat([be(0x64, 0x73, 0x44, 0x4c, 1, 1, 2), be(DS_OP.COPY_NEXT, 3), tail]))).toBe('ERR_CORRUPT');
    // ... or less.
    expect(run(Buffer.concat([be(0x64, 0x73, 0x44, 0x4c, 1, 1, 5), be(DS_OP.COPY_NEXT, 3), tail]))).toBe('ERR_CORRUPT');
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
