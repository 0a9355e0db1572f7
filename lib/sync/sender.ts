// The sender role: streams the file list, then answers the receiver's requests in order with
// deltas (against the receiver's signature) or raw data. Its reader never blocks on anything
// (requests are queued; the receiver bounds how many are outstanding), which is what keeps the
// two roles free of deadlock when both directions are full. See docs/PROTOCOL.md.
import { open, type FileHandle } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { DeltaEngine } from '../delta.js';
import { DeltaSyncError, ioError } from '../errors.js';
import { native } from '../native.js';
import { DATA_CHUNK_BYTES } from '../protocol/framing.js';
import type { Connection } from '../protocol/handshake.js';
import {
  EntryType,
  LogLevel,
  Msg,
  RequestMode,
  decodeJson,
  decodeLog,
  decodeProgress,
  decodeRequest,
  encodeFileBegin,
  encodeFileEnd,
  encodeFileEntries,
  encodeFileError,
  encodeJson,
  msgName,
  type FileEntry,
  type Request,
} from '../protocol/messages.js';
import { Signature } from '../signature.js';
import type { SyncEventSink } from './events.js';
import { FileListWalker, isSingleFileTransfer } from './filelist.js';
import { FilterList } from './filter.js';
import type { SyncItem } from './itemize.js';
import type { TransferOptions } from './options.js';
import {
  Notifier,
  emptyReceiverSummary,
  emptySenderSummary,
  parseSummary,
  peerFatal,
  runLoops,
  type ReceiverSummary,
  type SenderSummary,
} from './role.js';

/** Inputs of the sender role. */
export interface SenderContext {
  conn: Connection;
  sources: readonly string[];
  opts: TransferOptions;
  sink: SyncEventSink;
  signal?: AbortSignal | undefined;
}

/** Result of the sender role: both ends' summaries. */
export interface SenderResult {
  sender: SenderSummary;
  receiver: ReceiverSummary;
}

const FLIST_BATCH_ENTRIES = 512;
const FLIST_BATCH_MS = 40;
const READ_CHUNK = 4 * 1024 * 1024;
/** The receiver keeps at most this many signature bytes outstanding (docs/PROTOCOL.md). */
export const MAX_OUTSTANDING_SIG_BYTES = 16 * 1024 * 1024;

interface QueuedRequest {
  req: Request;
  sig?: Buffer;
  /** Small whole files are read ahead while earlier files are being sent. */
  preload?: Promise<{ data: Buffer } | { error: unknown }>;
}

/** Whole files up to this size are read ahead. */
const PRELOAD_MAX_BYTES = 256 * 1024;
/** How many requests ahead are read. */
const PRELOAD_AHEAD = 16;

async function readSmallFile(path: string, size: number): Promise<{ data: Buffer } | { error: unknown }> {
  try {
    const fh = await open(path, 'r');
    try {
      // One byte more than the listed size: a short read proves the end without another call.
      const buf = Buffer.allocUnsafe(size + 1);
      let filled = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, filled, buf.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
        if (filled === buf.length) return { error: new Error('grew while being read') };
      }
      return { data: buf.subarray(0, filled) };
    } finally {
      await fh.close();
    }
  } catch (error) {
    return { error };
  }
}

function protocolError(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${message}`);
}

export class Sender {
  private readonly entries: FileEntry[] = [];
  private readonly locals: string[] = [];
  private readonly queue: QueuedRequest[] = [];
  private readonly wake = new Notifier();
  private incoming: { req: Request; parts: Buffer[]; got: number } | undefined;
  private queuedSigBytes = 0;
  private receiverDone: ReceiverSummary | undefined;
  private flistDone = false;
  private failed: unknown;
  readonly summary: SenderSummary = emptySenderSummary();

  constructor(private readonly ctx: SenderContext) {}

  async run(): Promise<SenderResult> {
    const { conn } = this.ctx;
    await runLoops(conn, this.ctx.signal, [() => this.readLoop(), () => this.sendFileList(), () => this.serveRequests()], {
      firstError: () => this.failed,
      fail: (err) => {
        this.failed ??= err;
        this.wake.notify();
      },
      finish: async () => {
        await conn.writer.send(Msg.STATS, encodeJson(this.summary));
        await conn.writer.close();
      },
    });
    return { sender: this.summary, receiver: this.receiverDone ?? emptyReceiverSummary() };
  }

  private checkFailed(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  /** Walks the sources and streams FLIST_BEGIN, FLIST batches and FLIST_END. */
  private async sendFileList(): Promise<void> {
    const { conn, opts, sink } = this.ctx;
    const started = performance.now();
    const singleFile = await isSingleFileTransfer(this.ctx.sources, opts);
    await conn.writer.send(Msg.FLIST_BEGIN, encodeJson({ singleFile }));
    const filter = new FilterList(opts.filters, 'sender');
    const walker = new FileListWalker(opts, filter, (issue) => {
      const level = issue.kind === 'vanished' ? LogLevel.VANISHED : issue.kind === 'error' ? LogLevel.ERROR : LogLevel.WARNING;
      sink.log(level, issue.message, issue.path);
    });
    const prev = { path: Buffer.alloc(0) };
    let batch: FileEntry[] = [];
    let batchStart = performance.now();
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const payload = encodeFileEntries(batch, prev);
      this.summary.fileListSize += payload.length;
      batch = [];
      await conn.writer.send(Msg.FLIST, payload);
      batchStart = performance.now();
    };
    for await (const item of walker.walk(this.ctx.sources)) {
      this.checkFailed();
      const e = item.entry;
      this.entries.push(e);
      this.locals.push(item.local);
      this.count(e);
      if (batch.length === 0) batchStart = performance.now();
      batch.push(e);
      // Small batches early and on a timer keep the receiver busy while the walk goes on.
      if (batch.length >= FLIST_BATCH_ENTRIES || performance.now() - batchStart > FLIST_BATCH_MS) await flush();
    }
    await flush();
    this.summary.ioErrors = walker.ioErrors;
    this.summary.fileListMs = performance.now() - started;
    await conn.writer.send(Msg.FLIST_END, encodeJson({ count: this.entries.length, ioErrors: walker.ioErrors }));
    this.flistDone = true;
  }

  private count(e: FileEntry): void {
    const s = this.summary;
    s.numFiles++;
    if (e.type === EntryType.FILE) {
      s.regularFiles++;
      s.totalFileSize += e.size;
    } else if (e.type === EntryType.DIR) s.dirs++;
    else if (e.type === EntryType.SYMLINK) s.symlinks++;
    else if (e.type === EntryType.DEVICE) s.devices++;
    else s.specials++;
  }

  /** Reads the receiver's frames until DONE. Never waits on anything but the connection. */
  private async readLoop(): Promise<void> {
    const { conn, sink } = this.ctx;
    for (;;) {
      const frame = await conn.reader.next();
      if (frame === null) throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${conn.peerName} closed the connection early`);
      switch (frame.type) {
        case Msg.REQUEST: {
          if (this.incoming) throw protocolError('REQUEST while a signature was still arriving');
          const req = decodeRequest(frame.payload);
          const entry = this.entries[req.index];
          if (entry === undefined || entry.type !== EntryType.FILE) throw protocolError(`REQUEST for index ${req.index}, which is not a file in the list`);
          sink.requested(req.index, entry);
          if (req.mode === RequestMode.DELTA) {
            if (req.length === 0) throw protocolError('DELTA request without a signature');
            this.queuedSigBytes += req.length;
            // A single signature may exceed the window on its own; several may not.
            if (this.queuedSigBytes > MAX_OUTSTANDING_SIG_BYTES && this.queuedSigBytes !== req.length) {
              throw protocolError('the receiver exceeded the outstanding signature limit');
            }
            this.incoming = { req, parts: [], got: 0 };
          } else {
            this.queue.push({ req });
            this.wake.notify();
          }
          break;
        }
        case Msg.SIG: {
          const inc = this.incoming;
          if (!inc) throw protocolError('SIG without a REQUEST');
          inc.parts.push(frame.payload);
          inc.got += frame.payload.length;
          if (inc.got > inc.req.length) throw protocolError('SIG data longer than announced');
          if (inc.got === inc.req.length) {
            this.queue.push({ req: inc.req, sig: Buffer.concat(inc.parts, inc.got) });
            this.incoming = undefined;
            this.wake.notify();
          }
          break;
        }
        case Msg.ITEM:
          sink.item(decodeJson(frame.payload, 'ITEM') as unknown as SyncItem);
          break;
        case Msg.LOG: {
          const m = decodeLog(frame.payload);
          sink.log(m.level, m.message, m.path);
          break;
        }
        case Msg.PROGRESS: {
          const p = decodeProgress(frame.payload);
          const entry = this.entries[p.index];
          if (entry) sink.progress(p.index, entry, p.bytes, p.done);
          break;
        }
        case Msg.DONE:
          this.receiverDone = parseSummary(emptyReceiverSummary(), decodeJson(frame.payload, 'DONE'));
          if (!this.flistDone) throw protocolError('DONE before the file list was complete');
          this.wake.notify();
          return;
        case Msg.FATAL:
          throw peerFatal(conn, frame.payload);
        default:
          throw protocolError(`unexpected ${msgName(frame.type)} message from the receiver`);
      }
    }
  }

  /** Answers requests in arrival order until the receiver says DONE. */
  private async serveRequests(): Promise<void> {
    for (;;) {
      this.checkFailed();
      const next = this.queue.shift();
      if (next) {
        this.preloadAhead();
        await this.serve(next);
        continue;
      }
      if (this.receiverDone) return;
      await this.wake.wait();
    }
  }

  private preloadAhead(): void {
    const n = Math.min(this.queue.length, PRELOAD_AHEAD);
    for (let k = 0; k < n; k++) {
      const q = this.queue[k]!;
      if (q.preload || q.req.mode !== RequestMode.WHOLE) continue;
      if (this.entries[q.req.index]!.size > PRELOAD_MAX_BYTES) continue;
      q.preload = readSmallFile(this.locals[q.req.index]!, this.entries[q.req.index]!.size);
    }
  }

  /** Sends a small whole file that was read ahead. Returns false to fall back to reading it. */
  private async servePreloaded(q: QueuedRequest): Promise<boolean> {
    const { conn, sink } = this.ctx;
    const r = await q.preload!;
    const index = q.req.index;
    if ('error' in r) {
      const code = (r.error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EACCES' && code !== 'EPERM') return false;
      const local = this.locals[index]!;
      const vanished = code === 'ENOENT';
      const message = vanished ? `file has vanished: ${local}` : ioError(r.error, local, 'open').message;
      sink.log(vanished ? LogLevel.VANISHED : LogLevel.ERROR, message, this.entries[index]!.path);
      await conn.writer.send(Msg.FILE_ERROR, encodeFileError({ index, kind: vanished ? 'vanished' : 'io', message }));
      return true;
    }
    const data = r.data;
    await conn.writer.send(Msg.FILE_BEGIN, encodeFileBegin({ index, mode: RequestMode.WHOLE }));
    if (data.length > 0) await this.sendChunks([data]);
    this.summary.literalBytes += data.length;
    this.summary.filesSent++;
    await conn.writer.send(
      Msg.FILE_END,
      encodeFileEnd({ index, size: data.length, literalBytes: data.length, matchedBytes: 0, hash: native.hash('xxh3', data) }),
    );
    return true;
  }

  private async serve(q: QueuedRequest): Promise<void> {
    if (q.preload && (await this.servePreloaded(q))) return;
    const { conn, sink } = this.ctx;
    const { req } = q;
    const entry = this.entries[req.index]!;
    const local = this.locals[req.index]!;
    let sig: Signature | undefined;
    if (q.sig) {
      this.queuedSigBytes -= q.sig.length;
      try {
        sig = Signature.parse(q.sig);
      } catch (err) {
        throw protocolError(`bad signature for ${entry.path}: ${(err as Error).message}`);
      }
    }
    let fh: FileHandle;
    try {
      fh = await open(local, 'r');
    } catch (err) {
      const vanished = (err as NodeJS.ErrnoException).code === 'ENOENT';
      const message = vanished ? `file has vanished: ${local}` : ioError(err, local, 'open').message;
      sink.log(vanished ? LogLevel.VANISHED : LogLevel.ERROR, message, entry.path);
      await conn.writer.send(Msg.FILE_ERROR, encodeFileError({ index: req.index, kind: vanished ? 'vanished' : 'io', message }));
      return;
    }
    try {
      await conn.writer.send(Msg.FILE_BEGIN, encodeFileBegin({ index: req.index, mode: req.mode }));
      try {
        if (req.mode === RequestMode.DELTA) await this.sendDelta(fh, req.index, sig!);
        else await this.sendRaw(fh, req);
        this.summary.filesSent++;
      } catch (err) {
        if (err instanceof DeltaSyncError && err.code === 'ERR_PROTOCOL') throw err;
        if (this.failed !== undefined) throw err;
        const message = ioError(err, local, 'read').message;
        sink.log(LogLevel.ERROR, message, entry.path);
        await conn.writer.send(Msg.FILE_ERROR, encodeFileError({ index: req.index, kind: 'io', message }));
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private async sendChunks(parts: Buffer[]): Promise<void> {
    for (const part of parts) {
      for (let pos = 0; pos < part.length; pos += DATA_CHUNK_BYTES) {
        await this.ctx.conn.writer.send(Msg.DATA, part.subarray(pos, pos + DATA_CHUNK_BYTES));
      }
    }
  }

  private async sendDelta(fh: FileHandle, index: number, sig: Signature): Promise<void> {
    const engine = new DeltaEngine(sig);
    const size = this.entries[index]!.size;
    let pos = 0;
    for (;;) {
      this.checkFailed();
      // A fresh buffer per chunk (the engine keeps literal slices of it), sized to what the
      // file list says is left (+1 to see the end); a file that grew is read on to its end.
      const want = pos < size ? Math.min(READ_CHUNK, size - pos + 1) : READ_CHUNK;
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      await this.sendChunks(await engine.update(buf.subarray(0, bytesRead)));
      // A short read of a regular file is its end: no extra read (and no big buffer) for it.
      if (bytesRead < want) break;
    }
    await this.sendChunks(await engine.finish());
    const s = engine.stats;
    this.summary.literalBytes += s.literalBytes;
    this.summary.matchedBytes += s.matchedBytes;
    await this.ctx.conn.writer.send(
      Msg.FILE_END,
      encodeFileEnd({ index, size: s.newBytes, literalBytes: s.literalBytes, matchedBytes: s.matchedBytes, hash: Buffer.alloc(0) }),
    );
  }

  private async sendRaw(fh: FileHandle, req: Request): Promise<void> {
    const hasher = new native.Hasher('xxh3');
    const offset = req.mode === RequestMode.WHOLE ? 0 : req.length;
    const size = this.entries[req.index]!.size;
    if (req.mode === RequestMode.APPEND_VERIFY) {
      // The whole-file hash covers the receiver's existing prefix too.
      let pos = 0;
      while (pos < offset) {
        const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, offset - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        await hasher.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    }
    let pos = offset;
    let sent = 0;
    for (;;) {
      this.checkFailed();
      // Sized to what is left (+1 to see the end): small files do not cost a big buffer.
      const want = pos < size ? Math.min(1024 * 1024, size - pos + 1) : 1024 * 1024;
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) break;
      const data = buf.subarray(0, bytesRead);
      hasher.updateSync(data);
      pos += bytesRead;
      sent += bytesRead;
      await this.sendChunks([data]);
      if (bytesRead < want) break;
    }
    this.summary.literalBytes += sent;
    this.summary.matchedBytes += offset;
    await this.ctx.conn.writer.send(
      Msg.FILE_END,
      encodeFileEnd({ index: req.index, size: pos, literalBytes: sent, matchedBytes: offset, hash: hasher.digest() }),
    );
  }
}
