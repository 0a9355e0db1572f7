// A hostile peer written in the test, speaking the real framed protocol. As a sender it feeds a
// real Receiver file lists that try to write outside the destination (CVE-2024-12087 class:
// "../", absolute paths, NUL, empty components, unlisted parents, symlink-then-child, duplicate
// names) and data nobody asked for. As a receiver it asks a real server sender for files it was
// never offered (CVE-2024-12086 class) and sends signatures with absurd block counts, block
// lengths and strong-sum lengths (CVE-2024-12084 class). Every case must be refused with a
// protocol error, and nothing may appear outside the destination (a canary directory beside it).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../lib/native.js';
import { PayloadWriter } from '../lib/protocol/codec.js';
import type { Frame } from '../lib/protocol/framing.js';
import { Connection } from '../lib/protocol/handshake.js';
import {
  EntryType,
  Msg,
  RequestMode,
  decodeFatal,
  decodeFileEntries,
  decodeJson,
  decodeRequest,
  encodeFileBegin,
  encodeFileEnd,
  encodeFileEntries,
  encodeJson,
  encodeRequest,
  type FileEntry,
} from '../lib/protocol/messages.js';
import { signature } from '../lib/signature.js';
import { truncateStrong } from '../lib/sigcache.js';
import { SparseSignature } from '../lib/sparse-signature.js';
import { ClientSink } from '../lib/sync/client-sink.js';
import { resolveTransferOptions, type TransferOptions } from '../lib/sync/options.js';
import { Receiver } from '../lib/sync/receiver.js';
import { serveSession } from '../lib/sync/server.js';
import { BIN, TEST_CACHE_HOME, tempDir, writeRandomFile } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
let caseNo = 0;

beforeAll(() => {
  tmp = tempDir('hostile');
});
afterAll(() => tmp.cleanup());

/** A connected pair of byte pipes: a writes → b reads and b writes → a reads. */
function pipePair(): { aIn: PassThrough; aOut: PassThrough; bIn: PassThrough; bOut: PassThrough } {
  const ab = new PassThrough();
  const ba = new PassThrough();
  return { aIn: ba, aOut: ab, bIn: ab, bOut: ba };
}

/** Everything below `dir` (relative paths), for "nothing was written here" checks. */
function listTree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

const FILE = { type: EntryType.FILE, mode: 0o100644, size: 3, mtimeSec: 1_700_000_000, mtimeNsec: 0, uid: 0, gid: 0 } as const;
const DIR = { type: EntryType.DIR, mode: 0o40755, size: 0, mtimeSec: 1_700_000_000, mtimeNsec: 0, uid: 0, gid: 0 } as const;

/** One entry encoded by hand, so fields the encoder would refuse can be sent. */
function rawEntry(path: Buffer, fields: { type?: number; size?: Buffer; count?: number } = {}): Buffer {
  const w = new PayloadWriter();
  w.uint(fields.count ?? 1);
  w.u8(fields.type ?? EntryType.FILE).u8(0).uint(0).bytes(path);
  w.uint(0o100644);
  if (fields.size) w.raw(fields.size);
  else w.uint(3);
  w.int(1_700_000_000).uint(0).uint(0).uint(0);
  return Buffer.from(w.finish());
}

interface HostileSenderCase {
  dst: string;
  canary: string;
  /** Runs the receiver against `script`; resolves with its outcome. */
  outcome: Promise<{ error?: unknown }>;
}

/**
 * A receiver (as the client of a pull, or a server for a push) fed by a hostile sender. The
 * sender sends FLIST_BEGIN, the given FLIST payloads and FLIST_END, then answers every request
 * with `DATA` for the file ("new"), and ends with STATS when the receiver is done.
 */
function hostileSender(build: (ctx: { dst: string; canary: string }) => { flist: Buffer[]; count: number; extra?: (s: Connection) => void }, opts?: Partial<TransferOptions>): HostileSenderCase {
  const base = join(tmp.path, `case-${++caseNo}`);
  const dst = join(base, 'dst');
  const canary = join(base, 'canary');
  mkdirSync(dst, { recursive: true });
  mkdirSync(canary);
  writeFileSync(join(canary, 'keep'), 'canary\n');
  const outcome = (async (): Promise<{ error?: unknown }> => {
    const { aIn, aOut, bIn, bOut } = pipePair();
    const [rconn, sconn] = await Promise.all([
      Connection.open(aIn, aOut, { software: 'victim', peerName: 'sender' }),
      Connection.open(bIn, bOut, { software: 'hostile', peerName: 'receiver' }),
    ]);
    const topts = { ...resolveTransferOptions({ archive: true }, true), sigCache: join(base, 'cache'), ...opts };
    const receiver = new Receiver({ conn: rconn, dest: dst, opts: topts, sink: new ClientSink({}) }).run();
    const script = build({ dst, canary });
    sconn.writer.sendNow(Msg.FLIST_BEGIN, encodeJson({ singleFile: false }));
    for (const p of script.flist) sconn.writer.sendNow(Msg.FLIST, p);
    sconn.writer.sendNow(Msg.FLIST_END, encodeJson({ count: script.count, ioErrors: 0 }));
    script.extra?.(sconn);
    // Serve what the receiver asks for, as a compliant sender would: the attack is in the list.
    const serving = (async () => {
      for (;;) {
        let f: Frame | null;
        try {
          f = await sconn.reader.next();
        } catch {
          return;
        }
        if (f === null || f.type === Msg.FATAL) return;
        if (f.type === Msg.REQUEST) {
          const q = decodeRequest(f.payload);
          // The destinations start empty: every request is for a whole file.
          if (q.mode !== RequestMode.WHOLE) continue;
          const data = Buffer.from('new');
          sconn.writer.sendNow(Msg.FILE_BEGIN, encodeFileBegin({ index: q.index, mode: q.mode }));
          sconn.writer.sendNow(Msg.DATA, data);
          sconn.writer.sendNow(
            Msg.FILE_END,
            encodeFileEnd({ index: q.index, size: 3, literalBytes: 3, matchedBytes: 0, hash: native.hash('xxh3', data) }),
          );
        } else if (f.type === Msg.DONE) {
          sconn.writer.sendNow(Msg.STATS, encodeJson({}));
          await sconn.writer.close().catch(() => undefined);
          return;
        }
      }
    })();
    try {
      await receiver;
      return {};
    } catch (error) {
      return { error };
    } finally {
      await serving;
    }
  })();
  return { dst, canary, outcome };
}

const entries = (list: FileEntry[]): Buffer => encodeFileEntries(list, { path: Buffer.alloc(0) });

/** The receiver must stop with a protocol error matching `why`, and the canary stays alone. */
async function expectRefused(c: HostileSenderCase, why: RegExp): Promise<void> {
  const { error } = await c.outcome;
  // First what matters most: nothing was written outside the destination.
  expect(listTree(c.canary), 'written outside the destination').toEqual(['keep']);
  expect(readFileSync(join(c.canary, 'keep'), 'utf8')).toBe('canary\n');
  expect(error, 'the receiver accepted a hostile file list').toBeDefined();
  expect(error).toMatchObject({ code: 'ERR_PROTOCOL', exitCode: 12 });
  expect((error as Error).message).toMatch(why);
}

describe('a hostile sender cannot write outside the destination (CVE-2024-12087 class)', () => {
  it('refuses "../x" and "a/../../x"', async () => {
    await expectRefused(hostileSender(() => ({ flist: [entries([{ ...FILE, path: '../canary/x' }])], count: 1 })), /unsafe path/);
    await expectRefused(
      hostileSender(() => ({ flist: [entries([{ ...DIR, path: 'a' }, { ...FILE, path: 'a/../../canary/x' }])], count: 2 })),
      /unsafe path/,
    );
  });

  it('refuses absolute paths (/etc/passwd, the canary)', async () => {
    // The canary's own absolute path: a receiver that took it would write there, not in /etc.
    await expectRefused(hostileSender(({ canary }) => ({ flist: [entries([{ ...FILE, path: join(canary, 'x') }])], count: 1 })), /unsafe path/);
    // /etc/passwd is only ever decoded, never given to a receiver that could write it.
    expect(() => decodeFileEntries(entries([{ ...FILE, path: '/etc/passwd' }]), { path: Buffer.alloc(0) })).toThrow(/unsafe path/);
  });

  it('refuses a NUL in a name, empty components ("a//b", "x/") and "." components', async () => {
    await expectRefused(hostileSender(() => ({ flist: [rawEntry(Buffer.from('evil\0/../../x'))], count: 1 })), /unsafe path/);
    for (const bad of ['a//b', 'x/', './x', 'a/./b']) {
      await expectRefused(hostileSender(() => ({ flist: [entries([{ ...DIR, path: 'a' }, { ...FILE, path: bad }])], count: 2 })), /unsafe path/);
    }
  });

  it('refuses an entry whose parent directory was not listed', async () => {
    await expectRefused(hostileSender(() => ({ flist: [entries([{ ...FILE, path: 'nodir/x' }])], count: 1 })), /not inside a directory of the list/);
  });

  it('refuses a symlink to the outside followed by a file "through" it', async () => {
    const c = hostileSender(({ canary }) => ({
      flist: [entries([{ ...FILE, path: 'x', type: EntryType.SYMLINK, mode: 0o120777, size: 0, linkTarget: canary }, { ...FILE, path: 'x/owned' }])],
      count: 2,
    }));
    await expectRefused(c, /not inside a directory of the list/);
  });

  it('refuses duplicate names (a directory that turns into a symlink to the outside, then a file in it)', async () => {
    // Sent in one batch and in separate batches: the second "d" must not replace the directory
    // the receiver made, and "d/owned" must never be written through a symlink.
    const attack = (canary: string): FileEntry[] => [
      { ...DIR, path: 'd' },
      { ...FILE, path: 'd', type: EntryType.SYMLINK, mode: 0o120777, size: 0, linkTarget: canary },
      { ...FILE, path: 'd/owned' },
    ];
    await expectRefused(hostileSender(({ canary }) => ({ flist: [entries(attack(canary))], count: 3 })), /duplicate|twice|more than once/i);
    await expectRefused(
      hostileSender(({ canary }) => {
        const prev = { path: Buffer.alloc(0) };
        return { flist: attack(canary).map((e) => encodeFileEntries([e], prev)), count: 3 };
      }),
      /duplicate|twice|more than once/i,
    );
    // The swap listed after the file: a receiver that took it could replace the directory by
    // the link while the file's data is still on its way, and write the file through it.
    await expectRefused(
      hostileSender(({ canary }) => {
        const [dir, link, file] = attack(canary);
        return { flist: [entries([dir!, file!, link!])], count: 3 };
      }),
      /duplicate|twice|more than once/i,
    );
    // A plain duplicate file name is refused too.
    await expectRefused(hostileSender(() => ({ flist: [entries([{ ...FILE, path: 'f' }, { ...FILE, path: 'f' }])], count: 2 })), /duplicate|twice|more than once/i);
  });

  it('refuses absurd sizes and counts', async () => {
    // A size above 2^53 (nine varint bytes), an entry count far beyond the payload, a list end
    // that disagrees with the list.
    const huge = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    await expectRefused(hostileSender(() => ({ flist: [rawEntry(Buffer.from('x'), { size: huge })], count: 1 })), /varint/);
    await expectRefused(hostileSender(() => ({ flist: [rawEntry(Buffer.from('x'), { count: 2 ** 40 })], count: 1 })), /claims \d+ entries/);
    await expectRefused(hostileSender(() => ({ flist: [entries([{ ...FILE, path: 'x' }])], count: 7 })), /FLIST_END says 7/);
    await expectRefused(hostileSender(() => ({ flist: [rawEntry(Buffer.from('x'), { type: 99 })], count: 1 })), /unknown type 99/);
  });

  it('a listed size of terabytes does not make the receiver allocate or write it', async () => {
    // 4 TiB announced, 3 bytes sent: the receiver must neither preallocate nor keep a signature
    // record sized for the claim (its signature cache records files of 1 MiB and more).
    const before = process.memoryUsage().rss;
    const c = hostileSender(() => ({ flist: [entries([{ ...FILE, path: 'x', size: 4 * 2 ** 40 }])], count: 1 }));
    const { error } = await c.outcome;
    const grown = process.memoryUsage().rss - before;
    expect(grown, `the receiver grew by ${grown} bytes for a 3-byte file`).toBeLessThan(256 * 1024 * 1024);
    if (error !== undefined) expect(error).toMatchObject({ code: 'ERR_PROTOCOL' });
    if (existsSync(join(c.dst, 'x'))) expect(statSync(join(c.dst, 'x')).size).toBeLessThanOrEqual(3);
    expect(listTree(c.canary)).toEqual(['keep']);
  });

  it('refuses data for a file it did not request, and data outside a file', async () => {
    await expectRefused(
      hostileSender(() => ({
        flist: [entries([{ ...FILE, path: 'x' }])],
        count: 1,
        extra: (s) => s.writer.sendNow(Msg.FILE_BEGIN, encodeFileBegin({ index: 5, mode: RequestMode.WHOLE })),
      })),
      /FILE_BEGIN for index 5/,
    );
    await expectRefused(
      hostileSender(() => ({
        flist: [entries([{ ...FILE, path: 'x' }])],
        count: 1,
        extra: (s) => s.writer.sendNow(Msg.DATA, Buffer.from('stray')),
      })),
      /DATA/,
    );
  });
});

/** A hostile receiver: the client of a pull against an in-process server sender. */
async function hostileReceiver(
  sources: string[],
  attack: (conn: Connection, list: FileEntry[]) => void,
): Promise<{ serverCode: number; fatal: string | undefined; sentFiles: number }> {
  const { aIn, aOut, bIn, bOut } = pipePair();
  const server = serveSession(bIn, bOut, { role: 'sender', peerName: 'client' });
  const conn = await Connection.open(aIn, aOut, { software: 'hostile', peerName: 'remote' });
  const opts = { ...resolveTransferOptions({ archive: true }, true), sigCache: null };
  conn.writer.sendNow(Msg.SESSION, encodeJson({ role: 'sender', paths: sources, options: opts, compress: null }));
  const list: FileEntry[] = [];
  const prev = { path: Buffer.alloc(0) };
  let fatal: string | undefined;
  let sentFiles = 0;
  let attacked = false;
  for (;;) {
    let f: Frame | null;
    try {
      f = await conn.reader.next();
    } catch {
      break;
    }
    if (f === null) break;
    if (f.type === Msg.FLIST) list.push(...decodeFileEntries(f.payload, prev));
    else if (f.type === Msg.FLIST_END && !attacked) {
      attacked = true;
      attack(conn, list);
    } else if (f.type === Msg.FILE_BEGIN) sentFiles++;
    else if (f.type === Msg.FATAL) {
      fatal = decodeFatal(f.payload).message;
      break;
    }
  }
  await conn.writer.close().catch(() => undefined);
  return { serverCode: await server, fatal, sentFiles };
}

/** A real deltasync signature for `size` bytes, with header fields then overwritten. */
async function forgedSignature(patch: (sig: Buffer) => void, size = 10_000): Promise<Buffer> {
  const sig = (await signature(Buffer.alloc(size, 7), { format: 'deltasync' })).toBuffer();
  patch(sig);
  // Re-seal the trailer so only the parameter checks can catch the forgery.
  const bodyEnd = sig.length - 16;
  native.hash('xxh3', sig.subarray(0, bodyEnd)).copy(sig, bodyEnd);
  return sig;
}

describe('a hostile receiver cannot read what it was not offered (CVE-2024-12086) or overflow the sender (CVE-2024-12084)', () => {
  let src: string;
  beforeAll(() => {
    src = join(tmp.path, 'served');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'served\n');
    writeRandomFile(join(src, 'sub', 'b.bin'), 100_000);
    writeFileSync(join(tmp.path, 'secret-beside'), 'not offered\n');
  });

  const fileIndex = (list: FileEntry[]): number => list.findIndex((e) => e.type === EntryType.FILE && e.path === 'sub/b.bin');

  it('refuses a request for an index it never offered, or for a directory', async () => {
    for (const pick of [(l: FileEntry[]) => l.length, () => 1_000_000, (l: FileEntry[]) => l.findIndex((e) => e.type === EntryType.DIR)]) {
      const r = await hostileReceiver([`${src}/`], (conn, list) => {
        conn.writer.sendNow(Msg.REQUEST, encodeRequest({ index: pick(list), mode: RequestMode.WHOLE, length: 0 }));
      });
      expect(r.serverCode).toBe(12);
      expect(r.fatal).toMatch(/REQUEST for index \d+, which is not a file in the list/);
      expect(r.sentFiles).toBe(0);
    }
  });

  it('refuses a signature with an absurd announced length before buffering it', async () => {
    const r = await hostileReceiver([`${src}/`], (conn, list) => {
      conn.writer.sendNow(Msg.REQUEST, encodeRequest({ index: fileIndex(list), mode: RequestMode.DELTA, length: 2 ** 50 }));
      conn.writer.sendNow(Msg.SIG, Buffer.alloc(1024));
    });
    expect(r.serverCode).toBe(12);
    expect(r.fatal).toMatch(/signature.*(limit|too large|exceeds)/i);
    expect(r.sentFiles).toBe(0);
  });

  const forgeries: [string, (sig: Buffer) => void, RegExp][] = [
    ['a strong-sum length of 255', (s) => (s[7] = 255), /strong/i],
    ['a strong-sum length of 0', (s) => (s[7] = 0), /strong/i],
    ['a block length of 0', (s) => s.writeUInt32BE(0, 8), /block/i],
    ['a block length of 2^31', (s) => s.writeUInt32BE(2 ** 31, 8), /block/i],
    // A basis of 2^52 bytes in 700-byte blocks: trillions of entries claimed by a tiny signature.
    ['an absurd block count', (s) => s.writeBigUInt64BE(2n ** 52n, 12), /signature|limit|truncated|block/i],
  ];
  for (const [name, patch, why] of forgeries) {
    it(`refuses a signature with ${name}`, async () => {
      const sig = await forgedSignature(patch);
      const r = await hostileReceiver([`${src}/`], (conn, list) => {
        conn.writer.sendNow(Msg.REQUEST, encodeRequest({ index: fileIndex(list), mode: RequestMode.DELTA, length: sig.length }));
        conn.writer.sendNow(Msg.SIG, sig);
      });
      expect(r.serverCode).toBe(12);
      expect(r.fatal).toMatch(/bad signature for sub\/b\.bin/);
      expect(r.fatal).toMatch(why);
      expect(r.sentFiles).toBe(0);
    });
  }

  // Sparse signatures (sig:sparse, which this hostile peer announces by default): the same
  // bounds, plus the layout's own (check length, stride, exact size).
  const sparseForgeries: [string, (sig: Buffer) => void, RegExp][] = [
    ['a check longer than the strong sum', (s) => (s[8] = s[7]! + 1), /check length/],
    ['an anchor stride of 1', (s) => s.writeUInt16BE(1, 10), /stride/],
    ['a block length of 0', (s) => s.writeUInt32BE(0, 12), /block/i],
    ['a size claiming 2^52 bytes', (s) => s.writeBigUInt64BE(2n ** 52n, 16), /bytes where its header implies/],
  ];
  for (const [name, patch, why] of sparseForgeries) {
    it(`refuses a sparse signature with ${name}`, async () => {
      const sig = SparseSignature.from(truncateStrong(await signature(Buffer.alloc(100_000, 7), { format: 'deltasync', blockLen: 1000 }), 3)).toBuffer();
      patch(sig);
      const r = await hostileReceiver([`${src}/`], (conn, list) => {
        conn.writer.sendNow(Msg.REQUEST, encodeRequest({ index: fileIndex(list), mode: RequestMode.DELTA, length: sig.length }));
        conn.writer.sendNow(Msg.SIG, sig);
      });
      expect(r.serverCode).toBe(12);
      expect(r.fatal).toMatch(/bad signature for sub\/b\.bin: sparse signature: /);
      expect(r.fatal).toMatch(why);
      expect(r.sentFiles).toBe(0);
    });
  }

  it('refuses an rdiff signature with a strong-sum length beyond its hash', async () => {
    const sig = (await signature(Buffer.alloc(10_000, 7), { format: 'rdiff' })).toBuffer();
    sig.writeUInt32BE(64, 8);
    const r = await hostileReceiver([`${src}/`], (conn, list) => {
      conn.writer.sendNow(Msg.REQUEST, encodeRequest({ index: fileIndex(list), mode: RequestMode.DELTA, length: sig.length }));
      conn.writer.sendNow(Msg.SIG, sig);
    });
    expect(r.serverCode).toBe(12);
    expect(r.fatal).toMatch(/bad signature/);
    expect(r.sentFiles).toBe(0);
  });

  it('a real `deltasync --server --sender` refuses an unoffered index with exit 12', async () => {
    const child = spawn(process.execPath, [BIN, '--server', '--sender'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, XDG_CACHE_HOME: TEST_CACHE_HOME },
    });
    const code = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    const conn = await Connection.open(child.stdout as Readable, child.stdin as Writable, { software: 'hostile', peerName: 'remote' });
    const opts = { ...resolveTransferOptions({ archive: true }, true), sigCache: null };
    conn.writer.sendNow(Msg.SESSION, encodeJson({ role: 'sender', paths: [`${src}/`], options: opts, compress: null }));
    let fatal: string | undefined;
    let files = 0;
    for (;;) {
      const f = await conn.reader.next().catch(() => null);
      if (f === null) break;
      if (f.type === Msg.FLIST_END) {
        expect(decodeJson(f.payload, 'FLIST_END').count).toBeGreaterThan(0);
        conn.writer.sendNow(Msg.REQUEST, encodeRequest({ index: 4096, mode: RequestMode.WHOLE, length: 0 }));
      }
      if (f.type === Msg.FILE_BEGIN) files++;
      if (f.type === Msg.FATAL) {
        fatal = decodeFatal(f.payload).message;
        break;
      }
    }
    child.stdin.end();
    expect(await code).toBe(12);
    expect(fatal).toMatch(/index 4096, which is not a file in the list/);
    expect(files).toBe(0);
  });

  it('a real `deltasync --server --receiver` refuses "../x" with exit 12 and writes nothing', async () => {
    const base = join(tmp.path, 'real-receiver');
    const dst = join(base, 'dst');
    mkdirSync(dst, { recursive: true });
    const child = spawn(process.execPath, [BIN, '--server', '--receiver'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, XDG_CACHE_HOME: TEST_CACHE_HOME },
    });
    const code = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    const conn = await Connection.open(child.stdout as Readable, child.stdin as Writable, { software: 'hostile', peerName: 'remote' });
    const opts = { ...resolveTransferOptions({ archive: true }, true), sigCache: null };
    conn.writer.sendNow(Msg.SESSION, encodeJson({ role: 'receiver', paths: [dst], options: opts, compress: null }));
    expect((await conn.reader.next())?.type).toBe(Msg.ACCEPT);
    conn.writer.sendNow(Msg.FLIST_BEGIN, encodeJson({ singleFile: false }));
    conn.writer.sendNow(Msg.FLIST, entries([{ ...FILE, path: '../escaped' }]));
    let fatal: string | undefined;
    for (;;) {
      const f = await conn.reader.next().catch(() => null);
      if (f === null) break;
      if (f.type === Msg.FATAL) {
        fatal = decodeFatal(f.payload).message;
        break;
      }
    }
    child.stdin.end();
    expect(await code).toBe(12);
    expect(fatal).toMatch(/unsafe path "\.\.\/escaped"/);
    expect(listTree(base)).toEqual(['dst']);
  });
});
