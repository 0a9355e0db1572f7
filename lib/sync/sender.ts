// The sender role: streams the file list, then answers the receiver's requests in order with
// deltas (against the receiver's signature) or raw data. Its reader never blocks on anything
// (requests are queued; the receiver bounds how many are outstanding), which is what keeps the
// two roles free of deadlock when both directions are full. See docs/PROTOCOL.md.
import { type FdHandle, openRegularFile } from '../fd-handle.js';
import { nowMs } from '../builtins.js';
import { DeltaEngine } from '../delta.js';
import { DeltaSyncError, ioError } from '../errors.js';
import { native } from '../native.js';
import { MAX_SIGNATURE_BYTES } from '../params.js';
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
  type FileEnd,
  type FileEntry,
  type Request,
} from '../protocol/messages.js';
import { Signature } from '../signature.js';
import { SparseSignature } from '../sparse-signature.js';
import type { SyncEventSink } from './events.js';
import { FileListWalker, isSingleFileTransfer, type FollowGuard } from './filelist.js';
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
  /** Which symlinks -L may follow (a restricted server's root); all when absent. */
  followGuard?: FollowGuard | undefined;
  /**
   * Checks each file after it is opened (a restricted server: the opened file must lie within
   * the root, whatever was swapped into its path since it was listed); a refusal message skips
   * the file.
   */
  openGuard?: OpenGuard | undefined;
}

/** Resolves to a refusal message when the file open on `fd` (listed as `local`) must not be sent. */
export type OpenGuard = (fd: number, local: string) => Promise<string | undefined>;

/** A file the open guard refused: reported, skipped, the run goes on. */
class RefusedFile extends Error {}

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

/** A whole file read at once, the file's content stamp unchanged across the read. */
type WholeRead = { data: Buffer } | { error: unknown } | { changed: true } | { tooBig: true };

interface QueuedRequest {
  req: Request;
  sig?: Buffer;
  /** Small whole files are read ahead while earlier files are being sent. */
  preload?: Promise<WholeRead>;
}

/** Whole files up to this size are read ahead. */
const PRELOAD_MAX_BYTES = 256 * 1024;
/** How many requests ahead are read. */
const PRELOAD_AHEAD = 16;
/**
 * Files up to this size are read into memory before anything is sent, so a read that saw the
 * file change can be repeated; larger ones are streamed and, if they changed, abandoned.
 */
const IN_MEMORY_MAX_BYTES = 8 * 1024 * 1024;
/** Reads of a changing file before it is reported as changed. */
const READ_ATTEMPTS = 2;

/**
 * What fstat says about a file's content. A write during a read changes the size, the mtime
 * or at least the ctime, so equal stamps around a read mean the bytes come from one version.
 */
interface ContentStamp {
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
}

/** The parts of a FdHandle the stable reads use. */
type ReadableHandle = Pick<FdHandle, 'stat' | 'read'>;

async function stampOf(fh: ReadableHandle): Promise<ContentStamp> {
  const st = await fh.stat({ bigint: true });
  return { size: st.size, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino };
}

function sameStamp(a: ContentStamp, b: ContentStamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

/**
 * File systems stamp writes with a coarse clock (one kernel tick, up to 10 ms): a write in the
 * same tick as our fstat leaves the stamp as it was. A stamp is trusted only once the file has
 * been quiet for longer than this; a write after that gets a later ctime, which shows.
 */
const QUIET_NS = 25_000_000n;
/** Waits for quiet at most this many times before calling the file changing. */
const QUIET_TRIES = 3;

/**
 * The file's stamp once its last change is older than {@link QUIET_NS} (waiting for that if
 * needed, as git does with "racily clean" files); undefined if it keeps changing.
 */
async function quietStamp(fh: ReadableHandle): Promise<ContentStamp | undefined> {
  for (let i = 0; i < QUIET_TRIES; i++) {
    const st = await stampOf(fh);
    const age = BigInt(Date.now()) * 1_000_000n - st.ctimeNs;
    // A ctime far in the future (the clock was set back) says nothing: accept it.
    if (age > QUIET_NS || age < -1_000_000_000n) return st;
    await new Promise((r) => setTimeout(r, Number((QUIET_NS - age) / 1_000_000n) + 1));
  }
  return undefined;
}

/**
 * Reads the whole of an open file: fstat (once the file is quiet), read to the end (one byte
 * past the size, so a short read proves the end), fstat again. `changed` when the file changed
 * meanwhile; `tooBig` when it is over `limit` bytes (nothing read).
 */
async function readStable(fh: ReadableHandle, limit: number): Promise<Exclude<WholeRead, { error: unknown }>> {
  const before = await quietStamp(fh);
  if (!before) return { changed: true };
  const size = Number(before.size);
  if (size > limit) return { tooBig: true };
  const buf = Buffer.allocUnsafe(size + 1);
  let filled = 0;
  for (;;) {
    const want = buf.length - filled;
    const { bytesRead } = await fh.read(buf, filled, want, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
    if (filled === buf.length) return { changed: true }; // grew
    // The size fstat gave, reached by a short read: the end (a FdHandle reads short only there),
    // without one more read (and fstat) to see 0. The stamp after the read confirms it.
    if (filled === size && bytesRead < want) break;
  }
  if (filled !== size || !sameStamp(before, await stampOf(fh))) return { changed: true };
  return { data: buf.subarray(0, filled) };
}

/**
 * {@link readStable}, read again once if the file changed during the first read. Exported for
 * the tests; not part of the package API.
 */
export async function readWhole(fh: ReadableHandle, limit: number): Promise<Exclude<WholeRead, { error: unknown }>> {
  let r = await readStable(fh, limit);
  for (let attempt = 1; attempt < READ_ATTEMPTS && 'changed' in r; attempt++) r = await readStable(fh, limit);
  return r;
}

async function readSmallFile(path: string, guard: OpenGuard | undefined): Promise<WholeRead> {
  try {
    const fh = await openRegularFile(path);
    try {
      const refusal = await guard?.(fh.fd, path);
      if (refusal !== undefined) return { error: new RefusedFile(refusal) };
      return await readWhole(fh, PRELOAD_MAX_BYTES * 4);
    } finally {
      await fh.close();
    }
  } catch (error) {
    return { error };
  }
}

/** Bytes per read of a file sent whole. */
const RAW_CHUNK = 1024 * 1024;

/** Where sendDelta/sendRaw take the file's bytes from: memory or a streamed handle. */
interface ByteSource {
  read(position: number, want: number): Promise<Buffer>;
  /** A file's bytes read into `buf` (from its start); absent for memory, which is not copied. */
  readInto?(buf: Buffer, position: number, want: number): Promise<Buffer>;
}

function memorySource(data: Buffer): ByteSource {
  return { read: async (position, want) => data.subarray(Math.min(position, data.length), Math.min(position + want, data.length)) };
}

/** A failed read of the source file: the file's problem, not the connection's. */
class SourceReadError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

function handleSource(fh: FdHandle): ByteSource {
  const readInto = async (buf: Buffer, position: number, want: number): Promise<Buffer> => {
    try {
      const { bytesRead } = await fh.read(buf, 0, want, position);
      return buf.subarray(0, bytesRead);
    } catch (err) {
      throw new SourceReadError(err);
    }
  };
  // read(): a fresh buffer each time, for callers that hand the bytes on as they are.
  return { read: (position, want) => readInto(Buffer.allocUnsafe(want), position, want), readInto };
}

/**
 * `pieces` of a delta with none pointing into `chunk`'s memory, or undefined when that would
 * copy more than an eighth of it. Frames hold their payloads by reference until the connection
 * has taken them, so a read buffer may only be read into again once no piece points into it:
 * the few literal bytes of similar data are copied, a mostly-literal chunk goes out as it is.
 */
export function detachPieces(pieces: Buffer[], chunk: Buffer): Buffer[] | undefined {
  let inside = 0;
  for (const p of pieces) if (p.buffer === chunk.buffer) inside += p.length;
  if (inside === 0) return pieces;
  if (inside > chunk.length / 8) return undefined;
  return pieces.map((p) => (p.buffer === chunk.buffer ? Buffer.from(p) : p));
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
    const started = nowMs();
    const singleFile = await isSingleFileTransfer(this.ctx.sources, opts);
    await conn.writer.send(Msg.FLIST_BEGIN, encodeJson({ singleFile }));
    const filter = new FilterList(opts.filters, 'sender');
    const walker = new FileListWalker(opts, filter, (issue) => {
      const level = issue.kind === 'vanished' ? LogLevel.VANISHED : issue.kind === 'error' ? LogLevel.ERROR : LogLevel.WARNING;
      sink.log(level, issue.message, issue.path);
    }, this.ctx.followGuard);
    const prev = { path: Buffer.alloc(0) };
    let batch: FileEntry[] = [];
    let batchStart = nowMs();
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const payload = encodeFileEntries(batch, prev);
      this.summary.fileListSize += payload.length;
      batch = [];
      await conn.writer.send(Msg.FLIST, payload);
      batchStart = nowMs();
    };
    for await (const items of walker.walkBatches(this.ctx.sources)) {
      for (const item of items) {
        this.checkFailed();
        const e = item.entry;
        this.entries.push(e);
        this.locals.push(item.local);
        this.count(e);
        if (batch.length === 0) batchStart = nowMs();
        batch.push(e);
        // Small batches early and on a timer keep the receiver busy while the walk goes on.
        if (batch.length >= FLIST_BATCH_ENTRIES || nowMs() - batchStart > FLIST_BATCH_MS) await flush();
      }
    }
    await flush();
    this.summary.ioErrors = walker.ioErrors;
    this.summary.fileListMs = nowMs() - started;
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
            // Bounded before anything is buffered: the signature format's own limit.
            if (req.length > MAX_SIGNATURE_BYTES) {
              throw protocolError(`the receiver announced a ${req.length}-byte signature, above the ${MAX_SIGNATURE_BYTES}-byte signature limit`);
            }
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
      q.preload = readSmallFile(this.locals[q.req.index]!, this.ctx.openGuard);
    }
  }

  /** Tells the receiver to drop the file and the user why. */
  private async fileFailed(index: number, kind: 'vanished' | 'io' | 'changed', message: string): Promise<void> {
    const { conn, sink } = this.ctx;
    // A changed file is in rsync's "vanished" class (exit 24): the source moved under us,
    // nothing failed; the next run copies it. docs/SYNC.md "Files that change while read".
    sink.log(kind === 'io' ? LogLevel.ERROR : LogLevel.VANISHED, message, this.entries[index]!.path);
    await conn.writer.send(Msg.FILE_ERROR, encodeFileError({ index, kind: kind === 'io' ? 'io' : 'vanished', message }));
  }

  private sent(end: FileEnd): void {
    this.summary.literalBytes += end.literalBytes;
    this.summary.matchedBytes += end.matchedBytes;
    this.summary.filesSent++;
  }

  private changedMessage(local: string): string {
    return `file has changed during transfer: ${local} (not updated; the next run copies it)`;
  }

  /** Sends a small whole file that was read ahead. Returns false to fall back to reading it. */
  private async servePreloaded(q: QueuedRequest): Promise<boolean> {
    const r = await q.preload!;
    const index = q.req.index;
    const local = this.locals[index]!;
    if ('tooBig' in r) return false;
    if ('changed' in r) {
      await this.fileFailed(index, 'changed', this.changedMessage(local));
      return true;
    }
    if ('error' in r) {
      if (r.error instanceof RefusedFile) {
        await this.fileFailed(index, 'io', r.error.message);
        return true;
      }
      const code = (r.error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EACCES' && code !== 'EPERM') return false;
      const vanished = code === 'ENOENT';
      await this.fileFailed(index, vanished ? 'vanished' : 'io', vanished ? `file has vanished: ${local}` : ioError(r.error, local, 'open').message);
      return true;
    }
    await this.ctx.conn.writer.send(Msg.FILE_BEGIN, encodeFileBegin({ index, mode: RequestMode.WHOLE }));
    const end = await this.sendRaw(memorySource(r.data), q.req);
    await this.ctx.conn.writer.send(Msg.FILE_END, encodeFileEnd(end));
    this.sent(end);
    return true;
  }

  private async serve(q: QueuedRequest): Promise<void> {
    if (q.preload && (await this.servePreloaded(q))) return;
    const { conn, sink } = this.ctx;
    const { req } = q;
    const entry = this.entries[req.index]!;
    const local = this.locals[req.index]!;
    let sig: Signature | SparseSignature | undefined;
    if (q.sig) {
      this.queuedSigBytes -= q.sig.length;
      try {
        // A sparse signature only from a peer that negotiated it (docs/PROTOCOL.md).
        if (SparseSignature.is(q.sig) && conn.shared('sig:sparse')) sig = SparseSignature.parse(q.sig);
        else sig = Signature.parse(q.sig);
      } catch (err) {
        throw protocolError(`bad signature for ${entry.path}: ${(err as Error).message}`);
      }
    }
    let fh: FdHandle;
    try {
      fh = await openRegularFile(local);
    } catch (err) {
      const vanished = (err as NodeJS.ErrnoException).code === 'ENOENT';
      await this.fileFailed(req.index, vanished ? 'vanished' : 'io', vanished ? `file has vanished: ${local}` : ioError(err, local, 'open').message);
      return;
    }
    try {
      const refusal = await this.ctx.openGuard?.(fh.fd, local);
      if (refusal !== undefined) {
        await this.fileFailed(req.index, 'io', refusal);
        return;
      }
      // Small files are read whole first (and reread if they change meanwhile); large ones are
      // streamed between two fstats and dropped by the receiver if the stamps differ.
      let source: ByteSource;
      let streamedFrom: ContentStamp | undefined;
      try {
        const whole = await readWhole(fh, IN_MEMORY_MAX_BYTES);
        if ('changed' in whole) {
          await this.fileFailed(req.index, 'changed', this.changedMessage(local));
          return;
        }
        if ('data' in whole) source = memorySource(whole.data);
        else {
          streamedFrom = await quietStamp(fh);
          if (!streamedFrom) {
            await this.fileFailed(req.index, 'changed', this.changedMessage(local));
            return;
          }
          source = handleSource(fh);
        }
      } catch (err) {
        await this.fileFailed(req.index, 'io', ioError(err, local, 'read').message);
        return;
      }
      await conn.writer.send(Msg.FILE_BEGIN, encodeFileBegin({ index: req.index, mode: req.mode }));
      let end: FileEnd;
      try {
        end = req.mode === RequestMode.DELTA ? await this.sendDelta(source, req.index, sig!) : await this.sendRaw(source, req);
      } catch (err) {
        // Only a failed read is this file's problem; anything else (the connection) ends the run.
        if (!(err instanceof SourceReadError) || this.failed !== undefined) throw err;
        const message = ioError(err.original, local, 'read').message;
        sink.log(LogLevel.ERROR, message, entry.path);
        await conn.writer.send(Msg.FILE_ERROR, encodeFileError({ index: req.index, kind: 'io', message }));
        return;
      }
      if (streamedFrom) {
        // Read to the end, exactly the size fstat gave, with the stamp unchanged: one version.
        const after = await stampOf(fh).catch(() => undefined);
        if (end.size !== Number(streamedFrom.size) || !after || !sameStamp(streamedFrom, after)) {
          await this.fileFailed(req.index, 'changed', this.changedMessage(local));
          return;
        }
      }
      await conn.writer.send(Msg.FILE_END, encodeFileEnd(end));
      this.sent(end);
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

  /** Streams the delta of the file against `sig`; returns the FILE_END to send. */
  private async sendDelta(source: ByteSource, index: number, sig: Signature | SparseSignature): Promise<FileEnd> {
    // With --inplace the receiver rewrites its basis as it goes: only matches that never read
    // bytes it already overwrote are usable (the options travel to a server sender too).
    const engine = new DeltaEngine(sig, undefined, { inPlace: this.ctx.opts.inplace });
    const size = this.entries[index]!.size;
    // Sized to what the file list says is left (+1 to see the end); a file that grew is read
    // on to its end.
    const wantAt = (at: number) => (at < size ? Math.min(READ_CHUNK, size - at + 1) : READ_CHUNK);
    // Read buffers no delta piece points into any more, for the reads to come: a fresh 4 MiB
    // buffer per read cost 0.15-0.2 s of page faults per GiB here (1 GiB read: 0.41-0.48 s with
    // fresh buffers, 0.25-0.30 s reusing one).
    const spare: Buffer[] = [];
    const readAt = (at: number): { want: number; data: Promise<Buffer> } => {
      const want = wantAt(at);
      // A spare when there is one; else only as much as is left (a file under 4 MiB).
      const data = source.readInto ? source.readInto(spare.pop() ?? Buffer.allocUnsafe(want), at, want) : source.read(at, want);
      data.catch(() => undefined); // awaited below; not unhandled if matching fails first
      return { want, data };
    };
    let pos = 0;
    let next: { want: number; data: Promise<Buffer> } | undefined = readAt(0);
    /** The chunk the matcher has; the next updateAhead() returns its delta pieces. */
    let matching: Buffer | undefined;
    /** Memory of chunks whose pieces went out by reference. */
    const sentFrom = new WeakSet<ArrayBufferLike>();
    while (next) {
      this.checkFailed();
      const want: number = next.want;
      const data: Buffer = await next.data;
      if (data.length === 0) break;
      pos += data.length;
      // A short read of a regular file is its end: no extra read (and no big buffer) for it.
      // Otherwise the next chunk is read while this one is matched (both on the thread pool).
      next = data.length < want ? undefined : readAt(pos);
      // One chunk behind the matcher: the previous chunk's delta is encoded and sent while this
      // one is matched. Once the engine has returned that chunk's pieces it keeps nothing of it.
      let pieces = await engine.updateAhead(data);
      const done = matching;
      matching = data;
      // Only whole 4 MiB buffers of their own come back (a small one may share Node's pool).
      if (done && source.readInto && done.byteOffset === 0 && done.buffer.byteLength === READ_CHUNK && !sentFrom.has(done.buffer)) {
        const detached = detachPieces(pieces, done);
        if (detached) {
          pieces = detached;
          spare.push(Buffer.from(done.buffer, done.byteOffset, READ_CHUNK));
        }
      }
      // Without a basis to match, update() is not one chunk behind: its pieces point into the
      // chunk just read, which then never comes back as a spare.
      if (pieces.some((p) => p.buffer === data.buffer)) sentFrom.add(data.buffer);
      await this.sendChunks(pieces);
    }
    await this.sendChunks(await engine.finish());
    const s = engine.stats;
    return { index, size: s.newBytes, literalBytes: s.literalBytes, matchedBytes: s.matchedBytes, hash: Buffer.alloc(0) };
  }

  /** Streams raw bytes (whole file or a tail); returns the FILE_END to send. */
  private async sendRaw(source: ByteSource, req: Request): Promise<FileEnd> {
    const hasher = new native.Hasher('xxh3');
    const offset = req.mode === RequestMode.WHOLE ? 0 : req.length;
    const size = this.entries[req.index]!.size;
    if (req.mode === RequestMode.APPEND_VERIFY) {
      // The whole-file hash covers the receiver's existing prefix too.
      let pos = 0;
      while (pos < offset) {
        const data = await source.read(pos, Math.min(READ_CHUNK, offset - pos));
        if (data.length === 0) break;
        await hasher.update(data);
        pos += data.length;
      }
    }
    let pos = offset;
    let sent = 0;
    // Sized to what is left (+1 to see the end): small files do not cost a big buffer.
    const wantAt = (at: number): number => (at < size ? Math.min(RAW_CHUNK, size - at + 1) : RAW_CHUNK);
    // One read ahead: the next chunk comes from the page cache while this one is sent.
    let want = wantAt(pos);
    let next: Promise<Buffer> | undefined = source.read(pos, want);
    try {
      for (;;) {
        this.checkFailed();
        const data: Buffer = await next!;
        next = undefined;
        if (data.length === 0) break;
        hasher.updateSync(data);
        pos += data.length;
        sent += data.length;
        const last = data.length < want;
        if (!last) {
          want = wantAt(pos);
          next = source.read(pos, want);
        }
        await this.sendChunks([data]);
        if (last) break;
      }
    } finally {
      // The caller closes the file next: no read of it may still be on the pool then.
      await next?.catch(() => undefined);
    }
    return { index: req.index, size: pos, literalBytes: sent, matchedBytes: offset, hash: hasher.digest() };
  }
}
