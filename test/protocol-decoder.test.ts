// The native protocol decoders (native/protocol) behind lib/protocol: the frame splitter as the
// FrameReader uses it (any chunking, zero-copy payloads, errors only when reached, the
// compression switch), and the FLIST and small-message decoders checked against a reference
// decoder written here from docs/PROTOCOL.md (§2, §5, §6) over the TypeScript PayloadReader:
// on valid, random and corrupted payloads both must accept with equal results or refuse with
// the same message.
import { PassThrough } from 'node:stream';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeltaSyncError } from '../lib/errors.js';
import { native } from '../lib/native.js';
import { PayloadReader, PayloadWriter } from '../lib/protocol/codec.js';
import { FrameReader, MAX_FRAME_PAYLOAD, type WireCounters } from '../lib/protocol/framing.js';
import {
  EntryType,
  Msg,
  decodeFileBegin,
  decodeFileEnd,
  decodeFileEntries,
  decodeFileError,
  decodeLog,
  decodeProgress,
  decodeRequest,
  encodeFileEntries,
  encodeFileEnd,
  encodeLog,
  encodeRequest,
  type FileEntry,
} from '../lib/protocol/messages.js';

const counters = (): WireCounters => ({ bytesSent: 0, bytesReceived: 0 });

function frame(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** Reads every frame until the end (or the error) from a stream fed `chunks`. */
async function readAll(chunks: Buffer[]): Promise<{ frames: Array<{ type: number; payload: Buffer }>; error?: unknown }> {
  const input = new PassThrough();
  const reader = new FrameReader(input, counters());
  for (const c of chunks) input.write(c);
  input.end();
  const frames = [];
  try {
    for (;;) {
      const f = await reader.next();
      if (f === null) return { frames };
      frames.push(f);
    }
  } catch (error) {
    return { frames, error };
  }
}

function cut(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  for (let i = 0; pos < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    out.push(data.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

describe('frame splitting (FrameReader over native splitFrames)', () => {
  it('finds the same frames for any chunking of the stream', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ type: fc.integer({ min: 0, max: 255 }), payload: fc.uint8Array({ maxLength: 700 }) }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 900 }), { minLength: 1, maxLength: 8 }),
        async (sent, sizes) => {
          const stream = Buffer.concat(sent.map((f) => frame(f.type, Buffer.from(f.payload))));
          const { frames, error } = await readAll(cut(stream, sizes));
          expect(error).toBeUndefined();
          expect(frames.map((f) => [f.type, [...f.payload]])).toEqual(sent.map((f) => [f.type, [...f.payload]]));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hands out payloads of a chunk as views of that chunk, not copies', async () => {
    const chunk = Buffer.concat([frame(Msg.DATA, Buffer.alloc(3000, 1)), frame(Msg.DATA, Buffer.alloc(2000, 2)), frame(Msg.FILE_END, Buffer.alloc(9, 3))]);
    const { frames } = await readAll([chunk]);
    expect(frames.map((f) => f.payload.length)).toEqual([3000, 2000, 9]);
    for (const f of frames) expect(f.payload.buffer).toBe(chunk.buffer);
    expect(frames[1]!.payload.byteOffset - chunk.byteOffset).toBe(5 + 3000 + 5);
  });

  it('delivers the frames before an oversized header, then refuses it with ERR_PROTOCOL', async () => {
    const bad = Buffer.from([Msg.DATA, 0, 0x10, 0x04, 0x01]); // MAX_FRAME_PAYLOAD + 1
    expect(bad.readUInt32BE(1)).toBe(MAX_FRAME_PAYLOAD + 1);
    const stream = Buffer.concat([frame(Msg.LOG, Buffer.from([0, 1, 65])), frame(Msg.PROGRESS, Buffer.from([1, 2, 0])), bad, Buffer.alloc(50)]);
    for (const sizes of [[stream.length], [1], [7, 3]]) {
      const { frames, error } = await readAll(cut(stream, sizes));
      expect(frames.map((f) => f.type)).toEqual([Msg.LOG, Msg.PROGRESS]);
      expect(error).toBeInstanceOf(DeltaSyncError);
      expect(error).toMatchObject({ code: 'ERR_PROTOCOL' });
      expect((error as Error).message).toBe(`protocol error: frame of ${MAX_FRAME_PAYLOAD + 1} bytes exceeds the limit of ${MAX_FRAME_PAYLOAD}`);
    }
    // A frame of exactly the limit is fine.
    const { frames, error } = await readAll(cut(frame(Msg.DATA, Buffer.alloc(MAX_FRAME_PAYLOAD, 9)), [65536]));
    expect(error).toBeUndefined();
    expect(frames[0]!.payload.length).toBe(MAX_FRAME_PAYLOAD);
  });

  it('says where a stream ended early', async () => {
    expect((await readAll([Buffer.from([Msg.DATA, 0, 0])])).error).toMatchObject({ message: expect.stringMatching(/middle of a frame header/) });
    const r = await readAll([frame(Msg.DATA, Buffer.alloc(10)).subarray(0, 12)]);
    expect((r.error as Error).message).toBe('protocol error: connection closed in the middle of a frame (type 49, 10 bytes)');
  });

  it('switches to compression even when the compressed bytes would be a bad frame header', async () => {
    // Find compressed data whose first bytes, read as a frame header, give an oversized length:
    // the reader must not refuse bytes it will inflate rather than split.
    let compressed: Buffer | undefined;
    let inner: Buffer | undefined;
    for (let i = 0; i < 2000 && !compressed; i++) {
      const payload = Buffer.from(`payload ${i} `.repeat(1 + (i % 13)));
      const frames = Buffer.concat([frame(Msg.LOG, payload), frame(Msg.DONE, Buffer.from('{}'))]);
      const z = zlib.deflateRawSync(frames, { level: 1 + (i % 9) });
      if (z.length >= 5 && z.readUInt32BE(1) > MAX_FRAME_PAYLOAD) {
        compressed = z;
        inner = frames;
      }
    }
    expect(compressed, 'no suitable compressed stream found').toBeDefined();
    const input = new PassThrough();
    const reader = new FrameReader(input, counters());
    input.end(Buffer.concat([frame(Msg.ACCEPT, Buffer.from('{"compress":"zlib"}')), compressed!]));
    expect((await reader.next())?.type).toBe(Msg.ACCEPT);
    reader.enableInflate();
    const a = await reader.next();
    const b = await reader.next();
    expect(Buffer.concat([frame(a!.type, a!.payload), frame(b!.type, b!.payload)]).equals(inner!)).toBe(true);
    expect(await reader.next()).toBeNull();
  });

  it('splitFrames reports frames, what the next frame needs, and a bad header', () => {
    const two = Buffer.concat([frame(1, Buffer.from('ab')), frame(2, Buffer.alloc(0)), Buffer.from([3, 0, 0, 1])]);
    const r = native.splitFrames(two, MAX_FRAME_PAYLOAD);
    expect([...r.frames]).toEqual([1, 5, 2, 2, 12, 0]);
    expect(r.consumed).toBe(12);
    expect(r.need).toBe(5);
    expect(r.error).toBeUndefined();
    const partial = native.splitFrames(Buffer.from([3, 0, 0, 1, 0, 7]), MAX_FRAME_PAYLOAD);
    expect([partial.frames.length, partial.consumed, partial.need]).toEqual([0, 0, 5 + 256]);
    const small = native.splitFrames(frame(4, Buffer.alloc(65)), 64);
    expect([small.frames.length, small.consumed, small.error]).toEqual([0, 0, 'frame of 65 bytes exceeds the limit of 64']);
    expect(() => native.splitFrames(two, MAX_FRAME_PAYLOAD + 1)).toThrow(RangeError);
    expect(() => native.splitFrames('x' as unknown as Buffer, 10)).toThrow(TypeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Reference decoders, from docs/PROTOCOL.md

const MAX_PATH = 64 * 1024;
const MAX_BATCH_PATH_BYTES = 32 * 1024 * 1024;

function refusal(message: string): never {
  throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${message}`);
}

function safePath(p: string): boolean {
  if (p === '.') return true;
  return p.length > 0 && !p.startsWith('/') && !p.includes('\0') && p.split('/').every((c) => c !== '' && c !== '.' && c !== '..');
}

function referenceFileList(payload: Buffer, prev: { path: Buffer }): FileEntry[] {
  const r = new PayloadReader(payload, 'FLIST');
  const count = r.uint();
  if (count > payload.length) refusal(`FLIST claims ${count} entries in ${payload.length} bytes`);
  const out: FileEntry[] = [];
  let expanded = 0;
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    if (type < 1 || type > 5) refusal(`FLIST entry has unknown type ${type}`);
    const flags = r.u8();
    const shared = r.uint();
    if (shared > prev.path.length) refusal('FLIST entry shares more bytes than the previous path has');
    const suffix = r.bytes(MAX_PATH);
    if (shared + suffix.length > MAX_PATH) refusal('FLIST entry path too long');
    expanded += shared + suffix.length;
    if (expanded > MAX_BATCH_PATH_BYTES) refusal(`FLIST message expands to more than ${MAX_BATCH_PATH_BYTES} bytes of paths`);
    const bytes = Buffer.concat([prev.path.subarray(0, shared), suffix]);
    prev.path = bytes;
    const path = bytes.toString('utf8');
    if (!safePath(path)) refusal(`FLIST entry has an unsafe path ${JSON.stringify(path)}`);
    const e: FileEntry = { path, type: type as EntryType, mode: r.uint(), size: r.uint(), mtimeSec: r.int(), mtimeNsec: r.uint(), uid: r.uint(), gid: r.uint() };
    if (e.mtimeNsec >= 1e9) refusal('FLIST entry has nanoseconds ≥ 1e9');
    if (e.mode > 0xffffffff) refusal('FLIST entry mode out of range');
    if (flags & 1) e.linkTarget = r.string(MAX_PATH);
    if (flags & 2) e.rdev = r.uint();
    if (flags & 4) e.checksum = Buffer.from(r.bytes(64));
    if (flags & 8) e.listed = true;
    if (type === 3 && !(flags & 1)) refusal(`FLIST symlink ${JSON.stringify(path)} has no target`);
    out.push(e);
  }
  r.end();
  return out;
}

function outcome<T>(fn: () => T): { ok: T } | { error: string } {
  try {
    return { ok: fn() };
  } catch (err) {
    if (!(err instanceof DeltaSyncError) || err.code !== 'ERR_PROTOCOL') throw err;
    expect(err.message).not.toContain('\n');
    return { error: err.message };
  }
}

/** Both decoders on one payload from the same previous path: same result, same next prev. */
function compareFileList(payload: Buffer, prevPath: Buffer): { ok: FileEntry[] } | { error: string } {
  const pa = { path: prevPath };
  const pb = { path: prevPath };
  const a = outcome(() => decodeFileEntries(payload, pa));
  const b = outcome(() => referenceFileList(payload, pb));
  expect(a).toEqual(b);
  if ('ok' in a) expect(pa.path.equals(pb.path)).toBe(true);
  return a;
}

const entryArb: fc.Arbitrary<FileEntry> = fc
  .record({
    parts: fc.array(fc.constantFrom('a', 'b', 'dir', 'ü', 'sp ace', 'x.y', '..a', '\n'), { minLength: 1, maxLength: 4 }),
    type: fc.constantFrom(1, 2, 3, 4, 5),
    mode: fc.integer({ min: 0, max: 0xffffffff }),
    size: fc.maxSafeNat(),
    mtimeSec: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    mtimeNsec: fc.integer({ min: 0, max: 999_999_999 }),
    uid: fc.nat(),
    gid: fc.nat(),
    link: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
    rdev: fc.option(fc.nat(), { nil: undefined }),
    checksum: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
    listed: fc.boolean(),
  })
  .map((r) => {
    const e: FileEntry = { path: r.parts.join('/'), type: r.type as EntryType, mode: r.mode, size: r.size, mtimeSec: r.mtimeSec, mtimeNsec: r.mtimeNsec, uid: r.uid, gid: r.gid };
    if (r.type === EntryType.SYMLINK || r.link !== undefined) e.linkTarget = r.link ?? 'target';
    if (r.rdev !== undefined) e.rdev = r.rdev;
    if (r.checksum !== undefined) e.checksum = Buffer.from(r.checksum);
    if (r.listed) e.listed = true;
    return e;
  });

describe('FLIST decoding (native decodeFileList)', () => {
  it('decodes what the encoder wrote, batch after batch, as the reference does', () => {
    fc.assert(
      fc.property(fc.array(fc.array(entryArb, { maxLength: 8 }), { maxLength: 4 }), (batches) => {
        const enc = { path: Buffer.alloc(0) };
        const dec = { path: Buffer.alloc(0) };
        for (const batch of batches) {
          const payload = encodeFileEntries(batch, enc);
          const got = compareFileList(payload, dec.path);
          expect(got).toEqual({ ok: batch });
          decodeFileEntries(payload, dec);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('agrees with the reference on corrupted payloads (flips, truncations, splices)', () => {
    fc.assert(
      fc.property(
        fc.array(entryArb, { minLength: 1, maxLength: 6 }),
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
        fc.nat(),
        fc.constantFrom('', 'a', 'a/b', 'dir/ü'),
        (entries, flips, keep, prev) => {
          const payload = Buffer.from(encodeFileEntries(entries, { path: Buffer.alloc(0) }));
          for (const f of flips) payload[f.at % payload.length] = f.value;
          compareFileList(payload, Buffer.from(prev));
          compareFileList(payload.subarray(0, keep % (payload.length + 1)), Buffer.from(prev));
        },
      ),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        compareFileList(Buffer.from(bytes), Buffer.from('a/b'));
      }),
      { numRuns: 2000 },
    );
  });

  function entryBytes(pathBytes: Buffer, opts: { type?: number; flags?: number; shared?: number; nsec?: number; mode?: number; tail?: (w: PayloadWriter) => void } = {}): PayloadWriter {
    const w = new PayloadWriter();
    w.u8(opts.type ?? 1).u8(opts.flags ?? 0).uint(opts.shared ?? 0).bytes(pathBytes);
    w.uint(opts.mode ?? 0o100644).uint(0).int(0).uint(opts.nsec ?? 0).uint(0).uint(0);
    opts.tail?.(w);
    return w;
  }
  const batch = (...entries: PayloadWriter[]): Buffer => {
    const w = new PayloadWriter().uint(entries.length);
    for (const e of entries) w.raw(e.finish());
    return Buffer.from(w.finish());
  };
  const refuse = (payload: Buffer, message: string | RegExp, prev = Buffer.alloc(0)): void => {
    const r = compareFileList(payload, prev);
    expect('error' in r ? r.error : 'accepted').toMatch(message);
  };

  it('refuses hostile entries with a message naming the problem', () => {
    refuse(batch(entryBytes(Buffer.from('/etc/passwd'))), 'protocol error: FLIST entry has an unsafe path "/etc/passwd"');
    refuse(batch(entryBytes(Buffer.from('a/../../x'))), /unsafe path "a\/..\/..\/x"/);
    refuse(batch(entryBytes(Buffer.from('..'))), /unsafe path/);
    refuse(batch(entryBytes(Buffer.from('a//b'))), /unsafe path/);
    refuse(batch(entryBytes(Buffer.from('a/./b'))), /unsafe path/);
    refuse(batch(entryBytes(Buffer.from('a/'))), /unsafe path/);
    refuse(batch(entryBytes(Buffer.from('a\0b'))), /unsafe path "a\\u0000b"/);
    refuse(batch(entryBytes(Buffer.alloc(0))), 'protocol error: FLIST entry has an unsafe path ""');
    // `$$` and `$&` are replacement patterns of String.replace: the path must come out as sent.
    refuse(batch(entryBytes(Buffer.from('/x/$$/$&'))), 'protocol error: FLIST entry has an unsafe path "/x/$$/$&"');
    // "dir/" + ".." through the shared prefix.
    refuse(batch(entryBytes(Buffer.from('..'), { shared: 4 })), /unsafe path "dir\/.."/, Buffer.from('dir/x'));
    refuse(batch(entryBytes(Buffer.from('x'), { shared: 6 })), /shares more bytes than the previous path has/, Buffer.from('dir/x'));
    refuse(batch(entryBytes(Buffer.from('a'), { type: 6 })), 'protocol error: FLIST entry has unknown type 6');
    refuse(batch(entryBytes(Buffer.from('a'), { type: 3 })), 'protocol error: FLIST symlink "a" has no target');
    refuse(batch(entryBytes(Buffer.from('a'), { nsec: 1e9 })), /nanoseconds/);
    refuse(batch(entryBytes(Buffer.from('a'), { mode: 2 ** 32 })), /mode out of range/);
    refuse(batch(entryBytes(Buffer.from('a'), { flags: 4, tail: (w) => w.bytes(Buffer.alloc(65)) })), /field of 65 bytes exceeds 64/);
    refuse(batch(entryBytes(Buffer.alloc(MAX_PATH + 1, 0x61))), /field of 65537 bytes exceeds 65536/);
    refuse(batch(entryBytes(Buffer.from('bc'), { shared: MAX_PATH - 1 })), /path too long/, Buffer.alloc(MAX_PATH, 0x61));
    refuse(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10]), /varint above 2\^53/);
    refuse(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), /varint too long/);
    refuse(Buffer.from([100, 1, 0]), 'protocol error: FLIST claims 100 entries in 3 bytes');
    refuse(Buffer.concat([batch(entryBytes(Buffer.from('a'))), Buffer.from([0])]), /1 unexpected trailing bytes/);
    refuse(batch(entryBytes(Buffer.from('a'))).subarray(0, 8), /malformed FLIST message \(truncated/);
  });

  it('bounds the paths a small payload may expand to (prefix compression amplification)', () => {
    // One 64 KiB path, then entries that repeat it whole: ~2 KB on the wire would name 40 MiB.
    const long = Buffer.alloc(MAX_PATH, 0x61);
    const repeats = Array.from({ length: 640 }, () => entryBytes(Buffer.alloc(0), { shared: MAX_PATH }));
    const payload = batch(entryBytes(long), ...repeats);
    expect(payload.length).toBeLessThan(80 * 1024);
    refuse(payload, `protocol error: FLIST message expands to more than ${MAX_BATCH_PATH_BYTES} bytes of paths`);
    // Our sender's largest batch (512 entries) of maximal paths stays within the bound.
    compareFileList(batch(entryBytes(long), ...repeats.slice(0, 511)), Buffer.alloc(0));
  });

  it('threads the previous path across batches and leaves it alone on an empty batch', () => {
    const prev = { path: Buffer.alloc(0) };
    const enc = { path: Buffer.alloc(0) };
    const base = { type: EntryType.FILE, mode: 0o100644, size: 1, mtimeSec: 1, mtimeNsec: 0, uid: 0, gid: 0 };
    decodeFileEntries(encodeFileEntries([{ ...base, path: 'dir/file-one' }], enc), prev);
    expect(prev.path.toString()).toBe('dir/file-one');
    expect(decodeFileEntries(encodeFileEntries([], enc), prev)).toEqual([]);
    expect(prev.path.toString()).toBe('dir/file-one');
    expect(decodeFileEntries(encodeFileEntries([{ ...base, path: 'dir/file-two' }], enc), prev)[0]!.path).toBe('dir/file-two');
  });
});

// ---------------------------------------------------------------------------------------------

const MODE_MAX = 3;
type Decoded = Record<string, unknown>;
const reference: Record<number, [string, (r: PayloadReader) => Decoded, (p: Buffer) => Decoded]> = {
  [Msg.REQUEST]: [
    'REQUEST',
    (r) => {
      const index = r.uint();
      const mode = r.u8();
      if (mode > MODE_MAX) refusal(`REQUEST has unknown mode ${mode}`);
      return { index, mode, length: r.uint() };
    },
    (p) => ({ ...decodeRequest(p) }),
  ],
  [Msg.FILE_BEGIN]: [
    'FILE_BEGIN',
    (r) => {
      const index = r.uint();
      const mode = r.u8();
      if (mode > MODE_MAX) refusal(`FILE_BEGIN has unknown mode ${mode}`);
      return { index, mode };
    },
    (p) => ({ ...decodeFileBegin(p) }),
  ],
  [Msg.FILE_END]: [
    'FILE_END',
    (r) => ({ index: r.uint(), size: r.uint(), literalBytes: r.uint(), matchedBytes: r.uint(), hash: Buffer.from(r.bytes(64)) }),
    (p) => ({ ...decodeFileEnd(p) }),
  ],
  [Msg.FILE_ERROR]: [
    'FILE_ERROR',
    (r) => ({ index: r.uint(), kind: r.u8() === 1 ? 'vanished' : 'io', message: r.string(64 * 1024) }),
    (p) => ({ ...decodeFileError(p) }),
  ],
  [Msg.PROGRESS]: ['PROGRESS', (r) => ({ index: r.uint(), bytes: r.uint(), done: r.u8() === 1 }), (p) => ({ ...decodeProgress(p) })],
  [Msg.LOG]: [
    'LOG',
    (r) => {
      const level = r.u8();
      if (level > 3) refusal(`LOG has unknown level ${level}`);
      const m: Decoded = { level, message: r.string(64 * 1024) };
      if (!r.done) m.path = r.string(64 * 1024);
      return m;
    },
    (p) => ({ ...decodeLog(p) }),
  ],
};

function compareMessage(type: number, payload: Buffer): { ok: Decoded } | { error: string } {
  const [name, ref, ours] = reference[type]!;
  const a = outcome(() => ours(payload));
  const b = outcome(() => {
    const r = new PayloadReader(payload, name);
    const v = ref(r);
    r.end();
    return v;
  });
  expect(a).toEqual(b);
  return a;
}

describe('small message decoding (native decodeMessage)', () => {
  const types = Object.keys(reference).map(Number);

  it('agrees with the reference on encoded, corrupted and random payloads', () => {
    const samples = [
      encodeRequest({ index: 12, mode: 0, length: 2 ** 53 - 1 }),
      encodeFileEnd({ index: 3, size: 1e12, literalBytes: 5, matchedBytes: 7, hash: Buffer.alloc(16, 0xab) }),
      encodeLog({ level: 2, message: 'cannot open "x"', path: 'sub/x' }),
      encodeLog({ level: 0, message: 'ok' }),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.oneof(fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)), fc.constantFrom(...samples).map((b) => Buffer.from(b))),
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 3 }),
        fc.nat(),
        (type, payload, flips, keep) => {
          for (const f of flips) if (payload.length > 0) payload[f.at % payload.length] = f.value;
          compareMessage(type, payload);
          compareMessage(type, payload.subarray(0, keep % (payload.length + 1)));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('decodes valid messages and refuses out-of-range values and trailing bytes', () => {
    expect(compareMessage(Msg.REQUEST, encodeRequest({ index: 12, mode: 3, length: 2 ** 53 - 1 }))).toEqual({ ok: { index: 12, mode: 3, length: 2 ** 53 - 1 } });
    expect(compareMessage(Msg.LOG, encodeLog({ level: 1, message: 'm', path: 'p/q' }))).toEqual({ ok: { level: 1, message: 'm', path: 'p/q' } });
    expect(compareMessage(Msg.REQUEST, Buffer.from([1, 4, 0]))).toEqual({ error: 'protocol error: REQUEST has unknown mode 4' });
    expect(compareMessage(Msg.FILE_BEGIN, Buffer.from([1, 0, 0]))).toEqual({ error: 'protocol error: malformed FILE_BEGIN message (1 unexpected trailing bytes)' });
    expect(compareMessage(Msg.LOG, Buffer.from([4, 0]))).toEqual({ error: 'protocol error: LOG has unknown level 4' });
    expect(compareMessage(Msg.PROGRESS, Buffer.from([1, 0x80]))).toEqual({ error: 'protocol error: malformed PROGRESS message (truncated varint)' });
    expect(compareMessage(Msg.FILE_END, Buffer.from([1, 1, 1, 1, 65]))).toEqual({ error: 'protocol error: malformed FILE_END message (field of 65 bytes exceeds 64)' });
    expect(() => native.decodeMessage(Msg.DATA, Buffer.alloc(0))).not.toThrow();
    expect(native.decodeMessage(Msg.DATA, Buffer.alloc(0))).toMatch(/no binary decoder/);
    expect(() => native.decodeMessage(256, Buffer.alloc(0))).toThrow(RangeError);
  });
});
