// The sync protocol on its own: framing, backpressure, compression, handshake, message codecs
// against hostile input, and the sender/receiver roles' pipelining seen on the wire.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeltaSyncError } from '../lib/errors.js';
import { PayloadReader } from '../lib/protocol/codec.js';
import { FrameReader, FrameWriter, MAX_FRAME_PAYLOAD, type WireCounters } from '../lib/protocol/framing.js';
import { CAPABILITIES, Connection } from '../lib/protocol/handshake.js';
import { seededBytes } from './helpers/bytes.js';
import {
  EntryType,
  Msg,
  decodeFileEntries,
  decodeFileEnd,
  decodeLog,
  decodeRequest,
  encodeFileEntries,
  encodeJson,
  type FileEntry,
} from '../lib/protocol/messages.js';
import { ClientSink } from '../lib/sync/client-sink.js';
import { resolveTransferOptions } from '../lib/sync/options.js';
import { Receiver } from '../lib/sync/receiver.js';
import { Sender } from '../lib/sync/sender.js';
import { serveSession } from '../lib/sync/server.js';
import { tempDir, treeDiff } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
beforeAll(() => {
  tmp = tempDir('proto');
});
afterAll(() => tmp.cleanup());

function counters(): WireCounters {
  return { bytesSent: 0, bytesReceived: 0 };
}

/** A connected pair of byte pipes: a writes → b reads and b writes → a reads. */
function pipePair(): { aIn: PassThrough; aOut: PassThrough; bIn: PassThrough; bOut: PassThrough } {
  const ab = new PassThrough();
  const ba = new PassThrough();
  return { aIn: ba, aOut: ab, bIn: ab, bOut: ba };
}

describe('framing', () => {
  it('delivers frames of any size in order, and a clean end as null', async () => {
    const pipe = new PassThrough();
    const w = new FrameWriter(pipe, counters());
    const r = new FrameReader(pipe, counters());
    const sizes = [0, 1, 5, 4096, 4097, 65_536, 300_000, MAX_FRAME_PAYLOAD];
    const sent = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    const writing = (async () => {
      for (const [i, p] of sent.entries()) await w.send(0x30 + i, p);
      await w.close();
    })();
    for (const [i, p] of sent.entries()) {
      const f = await r.next();
      expect(f?.type).toBe(0x30 + i);
      expect(f?.payload.equals(p)).toBe(true);
    }
    expect(await r.next()).toBeNull();
    await writing;
  });

  it('passes a big payload through an in-process stream by reference, small frames around it intact', async () => {
    // A local sync's two ends share one process: a payload the writer sent by reference must
    // come out as a view of the same memory, neither cut into the sink's 256 KiB writes nor
    // gathered into a copy by the reader (1 GiB sent whole cost two copies before).
    const pipe = new PassThrough({ highWaterMark: 1024 * 1024 });
    const chunks: number[] = [];
    pipe.on('data', (c: Buffer) => chunks.push(c.length));
    const reader = new PassThrough({ highWaterMark: 1024 * 1024 });
    pipe.pipe(reader);
    const w = new FrameWriter(pipe, counters());
    const r = new FrameReader(reader, counters());
    const big = [seededBytes(MAX_FRAME_PAYLOAD, 1), seededBytes(256 * 1024, 2), seededBytes(64 * 1024, 3)];
    const small = [Buffer.from('a'), Buffer.alloc(0), seededBytes(5000, 4)];
    const order = [small[0]!, big[0]!, small[1]!, small[2]!, big[1]!, big[2]!, small[0]!];
    const writing = (async () => {
      for (const [i, p] of order.entries()) await w.send(0x30 + i, p);
      await w.close();
    })();
    for (const [i, p] of order.entries()) {
      const f = await r.next();
      expect(f?.type).toBe(0x30 + i);
      expect(f?.payload.equals(p)).toBe(true);
      if (big.includes(p)) {
        expect(f!.payload.buffer).toBe(p.buffer);
        expect(f!.payload.byteOffset).toBe(p.byteOffset);
      }
    }
    expect(await r.next()).toBeNull();
    await writing;
    // Each big payload was one write of its own.
    for (const p of big) expect(chunks).toContain(p.length);
  });

  it('keeps cutting big payloads into small paced writes under a rate limit', async () => {
    const pipe = new PassThrough();
    const chunks: number[] = [];
    const w = new FrameWriter(pipe, counters(), { bytesPerSecond: 8 * 1024 * 1024 });
    const r = new FrameReader(pipe, counters());
    pipe.on('data', (c: Buffer) => chunks.push(c.length));
    const payload = seededBytes(200 * 1024, 5);
    const writing = (async () => {
      await w.send(0x31, payload);
      await w.close();
    })();
    const f = await r.next();
    expect(f?.payload.equals(payload)).toBe(true);
    await writing;
    expect(Math.max(...chunks)).toBeLessThanOrEqual(16 * 1024);
  });

  it('refuses oversized frames and a connection cut mid-frame', async () => {
    const big = new PassThrough();
    big.end(Buffer.from([0x31, 0xff, 0xff, 0xff, 0xff]));
    await expect(new FrameReader(big, counters()).next()).rejects.toMatchObject({ code: 'ERR_PROTOCOL' });
    const cut = new PassThrough();
    cut.end(Buffer.from([0x31, 0, 0, 0, 10, 1, 2, 3]));
    await expect(new FrameReader(cut, counters()).next()).rejects.toThrow(/in the middle of a frame/);
    const header = new PassThrough();
    header.end(Buffer.from([0x31, 0]));
    await expect(new FrameReader(header, counters()).next()).rejects.toThrow(/frame header/);
  });

  it('stops a producer when the peer does not read (backpressure)', async () => {
    const pipe = new PassThrough();
    const w = new FrameWriter(pipe, counters());
    let queued = 0;
    let stop = false;
    const producer = (async () => {
      while (!stop && queued < 64 * 1024 * 1024) {
        await w.send(Msg.DATA, Buffer.alloc(64 * 1024));
        queued += 64 * 1024;
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    // Nobody reads: the producer is held at about the sink's high-water mark plus the pipe's.
    expect(queued).toBeLessThan(4 * 1024 * 1024);
    stop = true;
    const r = new FrameReader(pipe, counters());
    let got = 0;
    const drain = (async () => {
      for (;;) {
        const f = await r.next();
        if (f === null) break;
        got += f.payload.length;
      }
    })();
    await producer;
    await w.close();
    await drain;
    expect(got).toBe(queued);
  });

  it('switches to compression at a frame boundary in both directions', async () => {
    const { aIn, aOut, bIn, bOut } = pipePair();
    const ca = counters();
    const aw = new FrameWriter(aOut, ca);
    const br = new FrameReader(bIn, counters());
    const text = Buffer.from('the same line again and again\n'.repeat(10_000));
    aw.sendNow(Msg.ACCEPT, encodeJson({ compress: 'zlib' }));
    aw.enableDeflate(6);
    for (let i = 0; i < 20; i++) await aw.send(Msg.DATA, text);
    await aw.close();
    expect((await br.next())?.type).toBe(Msg.ACCEPT);
    br.enableInflate();
    for (let i = 0; i < 20; i++) {
      const f = await br.next();
      expect(f?.payload.equals(text)).toBe(true);
    }
    expect(await br.next()).toBeNull();
    expect(ca.bytesSent).toBeLessThan(text.length);
    aIn.destroy();
    bOut.destroy();
  });
});

describe('handshake', () => {
  it('agrees on the version and the shared capabilities', async () => {
    const { aIn, aOut, bIn, bOut } = pipePair();
    const [a, b] = await Promise.all([
      Connection.open(aIn, aOut, { software: 'a' }),
      Connection.open(bIn, bOut, { software: 'b', capabilities: ['strong:xxh3'] }),
    ]);
    expect(a.version).toBe(1);
    expect(a.peer?.software).toBe('b');
    expect(a.shared('strong:xxh3')).toBe(true);
    expect(a.shared('compress:zlib')).toBe(false);
    expect(b.shared('compress:zlib')).toBe(true);
  });

  it('names foreign bytes and incompatible versions', async () => {
    const foreign = new PassThrough();
    foreign.end('bash: deltasync: command not found\n');
    await expect(Connection.open(foreign, new PassThrough(), { software: 'x', peerName: 'remote' })).rejects.toThrow(
      /remote does not speak the deltasync protocol; it sent: bash: deltasync: command not found/,
    );
    const { aIn, aOut, bIn, bOut } = pipePair();
    const results = await Promise.allSettled([
      Connection.open(aIn, aOut, { software: 'old' }),
      Connection.open(bIn, bOut, { software: 'new', minProtocol: 2, maxProtocol: 3 }),
    ]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_PROTOCOL', exitCode: 2 });
    }
  });
});

describe('message codecs', () => {
  const entries: FileEntry[] = [
    { path: '.', type: EntryType.DIR, mode: 0o40755, size: 0, mtimeSec: 1, mtimeNsec: 0, uid: 0, gid: 0, listed: true },
    { path: 'dir', type: EntryType.DIR, mode: 0o40700, size: 0, mtimeSec: -5, mtimeNsec: 999_999_999, uid: 1000, gid: 1000, listed: true },
    { path: 'dir/file with ü', type: EntryType.FILE, mode: 0o100644, size: 2 ** 40, mtimeSec: 1_700_000_000, mtimeNsec: 5, uid: 1, gid: 2, checksum: Buffer.alloc(16, 9) },
    { path: 'dir/link', type: EntryType.SYMLINK, mode: 0o120777, size: 0, mtimeSec: 3, mtimeNsec: 0, uid: 0, gid: 0, linkTarget: '../x\ny' },
    { path: 'dev', type: EntryType.DEVICE, mode: 0o20600, size: 0, mtimeSec: 3, mtimeNsec: 0, uid: 0, gid: 0, rdev: 0x0801 },
  ];

  it('round-trips file list entries with prefix-compressed paths', () => {
    const payload = encodeFileEntries(entries, { path: Buffer.alloc(0) });
    expect(decodeFileEntries(payload, { path: Buffer.alloc(0) })).toEqual(entries);
  });

  it('refuses paths that would escape the destination', () => {
    for (const path of ['../etc/passwd', '/abs', 'a//b', 'a/./b', 'a/..', '', 'a\0b']) {
      const payload = encodeFileEntries([{ ...entries[2]!, path }], { path: Buffer.alloc(0) });
      expect(() => decodeFileEntries(payload, { path: Buffer.alloc(0) })).toThrow(DeltaSyncError);
    }
  });

  it('never throws anything but a protocol error on garbage', () => {
    const decoders = [
      (b: Buffer) => decodeFileEntries(b, { path: Buffer.from('some/previous/path') }),
      decodeRequest,
      decodeFileEnd,
      decodeLog,
      (b: Buffer) => new PayloadReader(b, 'X').bytes(),
    ];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: decoders.length - 1 }), (bytes, k) => {
        try {
          decoders[k]!(Buffer.from(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(DeltaSyncError);
          expect((err as DeltaSyncError).code).toBe('ERR_PROTOCOL');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** Copies the stream while noting the type of every frame that passes (before compression). */
class FrameTap extends Transform {
  private buf = Buffer.alloc(0);
  constructor(private readonly log: (type: number, payload: Buffer) => void) {
    super();
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    // Skip the 8-byte preamble once.
    if (!(this as { started?: boolean }).started) {
      if (this.buf.length < 8) return cb(null, chunk);
      this.buf = this.buf.subarray(8);
      (this as { started?: boolean }).started = true;
    }
    while (this.buf.length >= 5 && this.buf.length >= 5 + this.buf.readUInt32BE(1)) {
      this.log(this.buf[0]!, this.buf.subarray(5, 5 + this.buf.readUInt32BE(1)));
      this.buf = this.buf.subarray(5 + this.buf.readUInt32BE(1));
    }
    cb(null, chunk);
  }
}

describe('roles over an in-process connection', () => {
  it('sends a sparse signature only to a sender that announced sig:sparse, and both rebuild the file', async () => {
    for (const sparse of [true, false]) {
      const src = join(tmp.path, `sparse-${sparse}-src`);
      const dst = join(tmp.path, `sparse-${sparse}-dst`);
      mkdirSync(src);
      mkdirSync(dst);
      const old = seededBytes(2 * 1024 * 1024, 3);
      const next = Buffer.from(old);
      next[1_000_000]! ^= 1;
      writeFileSync(join(src, 'f'), next);
      writeFileSync(join(dst, 'f'), old);
      const magics: string[] = [];
      const toServer = new PassThrough();
      const toClient = new PassThrough();
      let sigFrames = 0;
      const clientIn = toClient.pipe(
        new FrameTap((type, payload) => {
          if (type === Msg.SIG && sigFrames++ === 0) magics.push(payload.subarray(0, 4).toString('latin1'));
        }),
      );
      const server = serveSession(toServer, toClient, {});
      const capabilities = CAPABILITIES.filter((c) => sparse || c !== 'sig:sparse');
      const conn = await Connection.open(clientIn, toServer, { software: 'test', peerName: 'receiver', capabilities });
      const opts = resolveTransferOptions({ archive: true, wholeFile: false, ignoreTimes: true }, true);
      conn.writer.sendNow(Msg.SESSION, encodeJson({ role: 'receiver', paths: [dst], options: opts, compress: null }));
      expect((await conn.reader.next())?.type).toBe(Msg.ACCEPT);
      const result = await new Sender({ conn, sources: [`${src}/`], opts, sink: new ClientSink({}) }).run();
      expect(await server).toBe(0);
      expect(result.receiver.filesTransferred).toBe(1);
      expect(treeDiff(dst, src)).toEqual([]);
      expect(magics).toEqual([sparse ? 'dsSP' : 'dsSG']);
    }
  });

  it('pipelines: requests for later files go out before earlier files are done', async () => {
    const src = join(tmp.path, 'pipe-src');
    const dst = join(tmp.path, 'pipe-dst');
    mkdirSync(src);
    mkdirSync(dst);
    for (let i = 0; i < 40; i++) {
      writeFileSync(join(src, `f${String(i).padStart(3, '0')}`), `content ${i}\n`.repeat(2000));
      // Different bytes: each file's delta is ~24 KB of literals, ~47 ms at the rate below.
      writeFileSync(join(dst, `f${String(i).padStart(3, '0')}`), `other ${i}\n`.repeat(1999));
    }
    const events: string[] = [];
    const toServer = new PassThrough();
    const toClient = new PassThrough();
    const tapUp = new FrameTap((t) => events.push(`S>${t}`));
    const tapDown = new FrameTap((t) => events.push(`R>${t}`));
    const serverIn = toServer.pipe(tapUp);
    const clientIn = toClient.pipe(tapDown);
    const server = serveSession(serverIn, toClient, {});
    const conn = await Connection.open(clientIn, toServer, { software: 'test', peerName: 'receiver' });
    const opts = resolveTransferOptions({ archive: true, wholeFile: false }, true);
    conn.writer.sendNow(Msg.SESSION, encodeJson({ role: 'receiver', paths: [dst], options: opts, compress: null }));
    expect((await conn.reader.next())?.type).toBe(Msg.ACCEPT);
    // A sender slower than the receiver's signatures (its data throttled): the requests must run
    // ahead of the data.
    conn.writer.setRate(512 * 1024);
    const result = await new Sender({ conn, sources: [`${src}/`], opts, sink: new ClientSink({}) }).run();
    expect(await server).toBe(0);
    expect(result.receiver.filesTransferred).toBe(40);
    expect(treeDiff(dst, src)).toEqual([]);
    // When the sender finished its fifth file, the receiver had asked for many more.
    let fileEnds = 0;
    let requests = 0;
    for (const e of events) {
      if (e === `R>${Msg.REQUEST}`) requests++;
      if (e === `S>${Msg.FILE_END}` && ++fileEnds === 5) break;
    }
    expect(requests).toBeGreaterThan(15);
  });

  it('a receiver refuses an entry that is not inside a listed directory (no writing through symlinks)', async () => {
    const { aIn, aOut, bIn, bOut } = pipePair();
    const [rconn, sconn] = await Promise.all([
      Connection.open(aIn, aOut, { software: 'r' }),
      Connection.open(bIn, bOut, { software: 's' }),
    ]);
    const dst = join(tmp.path, 'symlink-attack');
    const outside = join(tmp.path, 'outside');
    mkdirSync(outside);
    const opts = resolveTransferOptions({ archive: true }, true);
    const run = new Receiver({ conn: rconn, dest: dst, opts, sink: new ClientSink({}) }).run();
    const base = { mode: 0o100644, size: 3, mtimeSec: 0, mtimeNsec: 0, uid: 0, gid: 0 };
    sconn.writer.sendNow(Msg.FLIST_BEGIN, encodeJson({ singleFile: false }));
    sconn.writer.sendNow(
      Msg.FLIST,
      encodeFileEntries(
        [
          { ...base, path: 'x', type: EntryType.SYMLINK, mode: 0o120777, size: 0, linkTarget: outside },
          { ...base, path: 'x/owned', type: EntryType.FILE },
        ],
        { path: Buffer.alloc(0) },
      ),
    );
    await expect(run).rejects.toThrow(/not inside a directory of the list/);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(outside)).toEqual([]);
  });

  it('a failed receiver creates nothing after run() has settled', async () => {
    // The root is made on the thread pool while the reader already fails on a bad frame: run()
    // must wait for that mkdir, so the destination looks the same right after and later.
    const late: string[] = [];
    for (let i = 0; i < 40; i++) {
      const { aIn, aOut, bIn, bOut } = pipePair();
      const [rconn, sconn] = await Promise.all([
        Connection.open(aIn, aOut, { software: 'r' }),
        Connection.open(bIn, bOut, { software: 's' }),
      ]);
      const dst = join(tmp.path, `late-${i}`, 'dst');
      mkdirSync(join(tmp.path, `late-${i}`));
      const opts = resolveTransferOptions({ archive: true }, true);
      const run = new Receiver({ conn: rconn, dest: dst, opts, sink: new ClientSink({}) }).run();
      sconn.writer.sendNow(Msg.FLIST_BEGIN, encodeJson({ singleFile: false }));
      sconn.writer.sendNow(Msg.FILE_BEGIN, Buffer.from([7, 1]));
      await run.catch(() => undefined);
      const right = existsSync(dst);
      await new Promise((r) => setTimeout(r, 20));
      if (existsSync(dst) !== right) late.push(dst);
    }
    expect(late).toEqual([]);
  });

  it('a receiver refuses data it did not ask for', async () => {
    const { aIn, aOut, bIn, bOut } = pipePair();
    const [rconn, sconn] = await Promise.all([
      Connection.open(aIn, aOut, { software: 'r' }),
      Connection.open(bIn, bOut, { software: 's' }),
    ]);
    const dst = join(tmp.path, 'hostile-dst');
    const opts = resolveTransferOptions({ archive: true }, true);
    const run = new Receiver({ conn: rconn, dest: dst, opts, sink: new ClientSink({}) }).run();
    sconn.writer.sendNow(Msg.FLIST_BEGIN, encodeJson({ singleFile: false }));
    sconn.writer.sendNow(
      Msg.FLIST,
      encodeFileEntries([{ path: 'x', type: EntryType.FILE, mode: 0o100644, size: 3, mtimeSec: 0, mtimeNsec: 0, uid: 0, gid: 0 }], { path: Buffer.alloc(0) }),
    );
    sconn.writer.sendNow(Msg.FILE_BEGIN, Buffer.from([7, 1]));
    await expect(run).rejects.toMatchObject({ code: 'ERR_PROTOCOL' });
    // The receiver tells the sender why it stopped.
    for (;;) {
      const f = await sconn.reader.next();
      if (f === null || f.type === Msg.FATAL) {
        expect(f?.type).toBe(Msg.FATAL);
        break;
      }
    }
  });
});
