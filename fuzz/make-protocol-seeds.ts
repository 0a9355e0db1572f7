// Regenerates fuzz/corpus/fuzz_protocol from real sync sessions: two in-process sessions (-a,
// and -a -c for whole-file checksums) over a small tree with files, a changed file (DELTA with
// SIG frames), directories, a symlink, a FIFO, a device node (as root) and odd names. The bytes
// each end writes are captured after the preamble and cut into seeds (control byte first, see
// fuzz/protocol_fuzz.cc): streams of the frames each end sent (bulk frames over 4 KiB left out
// so a seed stays small), each session's file list as one FLIST payload, and one payload of each
// small message type (those the sessions do not send are made by our encoders).
//
//   npx vite-node fuzz/make-protocol-seeds.ts
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { Connection } from '../lib/protocol/handshake.js';
import {
  LogLevel,
  Msg,
  decodeFileEntries,
  encodeFileEntries,
  encodeFileError,
  encodeJson,
  encodeLog,
  encodeProgress,
  type FileEntry,
} from '../lib/protocol/messages.js';
import { ClientSink } from '../lib/sync/client-sink.js';
import { resolveTransferOptions } from '../lib/sync/options.js';
import { Sender } from '../lib/sync/sender.js';
import { serveSession } from '../lib/sync/server.js';

const PREAMBLE_BYTES = 8;
const corpus = join(import.meta.dirname, 'corpus', 'fuzz_protocol');

/** Passes bytes through and keeps a copy. */
class Recorder extends Transform {
  readonly chunks: Buffer[] = [];
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.chunks.push(Buffer.from(chunk));
    cb(null, chunk);
  }
  frames(): Array<{ type: number; payload: Buffer; raw: Buffer }> {
    const all = Buffer.concat(this.chunks).subarray(PREAMBLE_BYTES);
    const out = [];
    for (let pos = 0; pos + 5 <= all.length; ) {
      const length = all.readUInt32BE(pos + 1);
      out.push({ type: all[pos]!, payload: all.subarray(pos + 5, pos + 5 + length), raw: all.subarray(pos, pos + 5 + length) });
      pos += 5 + length;
    }
    return out;
  }
}

function makeTrees(root: string): { src: string; dst: string } {
  const src = join(root, 'src');
  const dst = join(root, 'dst');
  for (const d of [src, dst, join(src, 'sub dir'), join(src, 'sub dir', 'nested'), join(src, 'empty')]) mkdirSync(d, { recursive: true });
  const text = (n: number, salt: string): string => Array.from({ length: n }, (_, i) => `${salt} line ${i}\n`).join('');
  writeFileSync(join(src, 'changed.txt'), text(3000, 'new'));
  writeFileSync(join(dst, 'changed.txt'), text(2990, 'new') + 'old tail\n');
  writeFileSync(join(src, 'zero'), '');
  writeFileSync(join(src, 'sub dir', 'naïve ünïcode.txt'), 'ü\n');
  writeFileSync(join(src, 'sub dir', 'nested', 'a'), 'a');
  writeFileSync(join(src, 'sub dir', 'nested', 'b'), 'bb');
  symlinkSync('../changed.txt', join(src, 'sub dir', 'link'));
  symlinkSync('/nonexistent/target', join(src, 'dangling'));
  try {
    execFileSync('mkfifo', [join(src, 'fifo')]);
    execFileSync('mknod', [join(src, 'null-device'), 'c', '1', '3']);
  } catch {
    // Not root: no device node (the FIFO usually still exists).
  }
  return { src, dst };
}

async function session(extra: { checksum?: boolean }): Promise<{ up: Recorder; down: Recorder }> {
  const tmp = mkdtempSync(join(tmpdir(), 'ds-protocol-seeds-'));
  try {
    const { src, dst } = makeTrees(tmp);
    const toServer = new PassThrough();
    const toClient = new PassThrough();
    const up = new Recorder();
    const down = new Recorder();
    const server = serveSession(toServer.pipe(up), toClient, {});
    const conn = await Connection.open(toClient.pipe(down), toServer, { software: 'seeds', peerName: 'receiver' });
    const opts = resolveTransferOptions({ archive: true, devices: true, specials: true, ...extra }, true);
    conn.writer.sendNow(Msg.SESSION, encodeJson({ role: 'receiver', paths: [dst], options: opts, compress: null }));
    const accept = await conn.reader.next();
    if (accept?.type !== Msg.ACCEPT) throw new Error('no ACCEPT');
    await new Sender({ conn, sources: [`${src}/`], opts, sink: new ClientSink({}) }).run();
    if ((await server) !== 0) throw new Error('the receiving server failed');
    return { up, down };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const seeds = new Map<string, Buffer>();
function seed(name: string, control: number, body: Buffer): void {
  const data = Buffer.concat([Buffer.from([control]), body]);
  const key = createHash('sha1').update(data).digest('hex');
  if (![...seeds.values()].some((b) => createHash('sha1').update(b).digest('hex') === key)) seeds.set(name, data);
}

const SMALL = new Set<number>([Msg.REQUEST, Msg.FILE_BEGIN, Msg.FILE_END, Msg.FILE_ERROR, Msg.PROGRESS, Msg.LOG]);
for (const [label, extra] of [['archive', {}], ['checksum', { checksum: true }]] as const) {
  const { up, down } = await session(extra);
  for (const [dir, rec] of [['client-to-server', up], ['server-to-client', down]] as const) {
    const frames = rec.frames();
    // The stream as sent, bulk frames left out.
    seed(`stream-${label}-${dir}`, 0, Buffer.concat(frames.filter((f) => f.payload.length <= 4096).map((f) => f.raw)));
    // The whole file list as one batch (the sender sends several small ones).
    const prev = { path: Buffer.alloc(0) };
    const entries: FileEntry[] = frames.filter((f) => f.type === Msg.FLIST).flatMap((f) => decodeFileEntries(f.payload, prev));
    if (entries.length > 0) seed(`flist-${label}`, 0, encodeFileEntries(entries, { path: Buffer.alloc(0) }));
    const seen = new Set<number>();
    for (const f of frames) {
      if (!SMALL.has(f.type) || seen.has(f.type)) continue;
      seen.add(f.type);
      seed(`msg-0x${f.type.toString(16)}-${label}`, 0, f.payload);
    }
  }
}
// Messages these sessions do not send, made by our encoders.
seed('msg-0x33-encoded', 0, encodeFileError({ index: 3, kind: 'vanished', message: 'file has vanished: "x"' }));
seed('msg-0x41-encoded', 0, encodeLog({ level: LogLevel.WARNING, message: 'cannot delete', path: 'sub dir/x' }));
seed('msg-0x42-encoded', 0, encodeProgress({ index: 7, bytes: 123_456_789, done: true }));
// The refusal paths: a frame over a 64-byte limit (control bit 7: limit (control & 0x7f) × 64).
seed('oversized-frame', 0x81, Buffer.concat([Buffer.from([Msg.DATA, 0, 0, 0, 100]), Buffer.alloc(100, 7)]));

rmSync(corpus, { recursive: true, force: true });
mkdirSync(corpus, { recursive: true });
for (const [name, data] of seeds) writeFileSync(join(corpus, name), data);
console.log(`${seeds.size} seeds in ${corpus}: ${[...seeds.keys()].join(', ')}`);
