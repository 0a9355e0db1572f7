// The receiver role. Two tasks share one connection:
// - the generator walks the incoming file list, compares each entry with the destination
//   (quick check), makes directories and symlinks, fixes attributes, and for files that need
//   data sends a REQUEST with the basis signature — running ahead of the transfers, bounded by
//   a window of outstanding requests;
// - the reader applies the sender's answers in order: each file is written to a temp file
//   beside its destination from the basis and the delta, verified against the whole-file
//   hash, fsynced, given its attributes and renamed into place.
// After the last file: deletions (--delete), then directory attributes deepest first.
import { randomBytes } from 'node:crypto';
import { constants, type BigIntStats } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { stat as statBig } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { DeltaSyncError, ioError } from '../errors.js';
import { native, type NativeHasher, type StrongKind } from '../native.js';
import { STRONG_FULL_LEN, defaultBlockLen } from '../params.js';
import { PatchEngine, type BasisReader } from '../patch.js';
import { DATA_CHUNK_BYTES } from '../protocol/framing.js';
import type { Connection } from '../protocol/handshake.js';
import {
  EntryType,
  LogLevel,
  Msg,
  RequestMode,
  decodeFileBegin,
  decodeFileEnd,
  decodeFileEntries,
  decodeFileError,
  decodeJson,
  decodeLog,
  encodeJson,
  encodeRequest,
  msgName,
  type FileBegin,
  type FileEnd,
  type FileEntry,
  type FileError,
} from '../protocol/messages.js';
import { SignatureCache, SignatureRecorder } from '../sigcache.js';
import { Signature, signature } from '../signature.js';
import type { SyncEventSink } from './events.js';
import { fileChecksum } from './filelist.js';
import { FilterList, type FilterRule } from './filter.js';
import type { ItemType, SyncItem } from './itemize.js';
import {
  applyToHandle,
  applyToPath,
  createdAttrs,
  diffAttrs,
  sameMtime,
  targetPerms,
  wantGroup,
  wantOwner,
  type KnownAttrs,
} from './metadata.js';
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
import { MAX_OUTSTANDING_SIG_BYTES } from './sender.js';

const execFileAsync = promisify(execFile);

/** Inputs of the receiver role. */
export interface ReceiverContext {
  conn: Connection;
  /** The DEST argument as given (a trailing '/' matters). */
  dest: string;
  opts: TransferOptions;
  sink: SyncEventSink;
  signal?: AbortSignal | undefined;
}

export interface ReceiverResult {
  sender: SenderSummary;
  receiver: ReceiverSummary;
}

/** Most files requested but not finished at once (pipelining depth). */
const MAX_OUTSTANDING_FILES = 1024;
/**
 * Smallest file whose signature goes through the signature cache: below it, reading the file
 * costs less than a cache entry.
 */
export const SIG_CACHE_MIN_BYTES = 1024 * 1024;
/** A basis up to this size is read once into memory for both its signature and the patch. */
const SMALL_BASIS_BYTES = 256 * 1024;
/** Requests whose signatures are computed at once. */
const PREPARE_AHEAD = 8;
/** Destination lookups started ahead of the generator. */
const STAT_AHEAD = 32;
/** Files being written at once (open, write, fsync, rename overlap across them). */
const MAX_JOBS = 16;
/** DATA bytes queued to jobs but not yet written. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/** Our temp files: `.NAME.deltasync-XXXXXX` beside the destination (shared with the core's). */
const TEMP_RE = /^\.(.+)\.deltasync-[0-9a-f]{6}$/s;

function tempPathFor(target: string): string {
  let base = basename(target);
  // Keep the temp name within NAME_MAX; a shortened name is never mistaken for a real one.
  if (Buffer.byteLength(base) > 200) base = Buffer.from(base).subarray(0, 200).toString('utf8').replace(/\uFFFD+$/, '');
  return join(dirname(target), `.${base}.deltasync-${randomBytes(3).toString('hex')}`);
}

/**
 * Strong-sum length for sync signatures: rsync's rule (10 + 2·log2(size) − log2(blockLen)
 * bits in all, of which the rolling sum is counted as 32 even though ds64 has 64), at least 2
 * bytes. Shorter than the core's standalone default because a false block match here is
 * caught by the whole-file hash and the file is redone with full-length sums.
 */
export function syncStrongLen(size: number, blockLen: number, strong: StrongKind): number {
  const bits = 10 + 2 * Math.floor(Math.log2(Math.max(1, size))) - Math.floor(Math.log2(Math.max(1, blockLen)));
  const bytes = Math.ceil((bits + 1 - 32) / 8);
  return Math.min(STRONG_FULL_LEN[strong], Math.max(2, bytes));
}

function protocolError(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${message}`);
}

function itemType(t: EntryType): ItemType {
  switch (t) {
    case EntryType.FILE:
      return 'f';
    case EntryType.DIR:
      return 'd';
    case EntryType.SYMLINK:
      return 'L';
    case EntryType.DEVICE:
      return 'D';
    default:
      return 'S';
  }
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '.' : path.slice(0, slash);
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function isType(st: BigIntStats, fmt: number): boolean {
  return (Number(st.mode) & constants.S_IFMT) === fmt;
}

async function writeAt(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

async function readAt(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await fh.read(buf, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
}

interface Outstanding {
  index: number;
  mode: RequestMode;
  target: string;
  /** File the signature was made from (DELTA, not in place). */
  basis?: string;
  /** A small basis read whole for its signature, kept for the patch (saves reading it twice). */
  basisData?: Buffer;
  basisSize: number;
  /** Mode of the destination file being replaced. */
  existingMode?: number;
  existed: boolean;
  item: SyncItem;
  redo: boolean;
  sigBytes: number;
  /** --partial-dir file of this target. */
  partialPath?: string;
}

interface Job {
  out: Outstanding;
  entry: FileEntry;
  fh?: FileHandle;
  /** Temp file (undefined when writing in place). */
  tempPath?: string;
  /** Attributes of the temp file as created. */
  known?: KnownAttrs;
  engine?: PatchEngine;
  hasher?: NativeHasher;
  /** Builds the new file's signature from what is written, for the signature cache. */
  recorder?: SignatureRecorder;
  position: number;
  written: number;
  /** Why the job failed (already reported unless it is a hash mismatch). */
  failed?: unknown;
  /** The sender gave up on the file (FILE_ERROR). */
  discarded?: boolean;
  /** Renamed into place. */
  done?: boolean;
  size?: number;
  chain: Promise<void>;
  settled: boolean;
}

interface Redo {
  index: number;
  mode: RequestMode;
}

export class Receiver {
  private readonly entries: FileEntry[] = [];
  /** Names listed in each directory (by relative path), for --delete. */
  private readonly children = new Map<string, Set<string>>();
  /** Directory entries of the list so far. */
  private readonly dirPaths = new Set<string>();
  private readonly wake = new Notifier();
  private singleFile: boolean | undefined;
  private flistDone = false;
  private flistIoErrors = 0;
  /** Requests sent whose FILE_BEGIN has not arrived yet, in order. */
  private readonly requested: Outstanding[] = [];
  /** Requests sent and not settled (the pipelining window). */
  private pending = 0;
  private pendingSigBytes = 0;
  private readonly redo: Redo[] = [];
  /** Requests being prepared (signatures), in list order. */
  private readonly sendQueue: Array<Promise<{ out: Outstanding; sig?: Buffer }>> = [];
  private sending = false;
  /** The job receiving DATA. */
  private current: Job | undefined;
  /** Jobs in begin order, until reported. */
  private readonly jobs: Job[] = [];
  private activeJobs = 0;
  private bufferedBytes = 0;
  private senderSummary: SenderSummary | undefined;
  private failed: unknown;
  readonly summary: ReceiverSummary = emptyReceiverSummary();
  /** Destination root directory, or the file itself for a single-file transfer. */
  private root = '';
  private singleTarget: string | undefined;
  private rootCreated = false;
  /**
   * Directories created by this run (dry run: that would be): empty, so their entries need no
   * lookup and they have nothing to delete.
   */
  private readonly newDirs = new Set<string>();
  /** Directories with the setgid bit: new files there take the directory's group. */
  private readonly setgidDirs = new Set<string>();
  /** lstat results fetched ahead of the generator, by entry index. */
  private readonly statAhead = new Map<number, Promise<BigIntStats | undefined | Error>>();
  /** Directory entries, in list order, for the final attribute pass. */
  private readonly dirIndexes: number[] = [];
  /** Permissions to give directories we created with extra owner bits. */
  private readonly createdDirPerms = new Map<number, number>();
  private readonly receiverFilter: FilterList;
  private readonly cache: SignatureCache | undefined;

  constructor(private readonly ctx: ReceiverContext) {
    const dir = ctx.opts.sigCache;
    // Cache trouble never fails a sync: a lookup that cannot read misses, a store that cannot write is skipped.
    this.cache = dir === null || ctx.opts.dryRun ? undefined : new SignatureCache({ ...(dir ? { dir } : {}), onError: () => undefined });
    const rules: FilterRule[] = ctx.opts.deleteExcluded
      ? ctx.opts.filters.map((r) => (r.sender && r.receiver ? { ...r, receiver: false } : r))
      : ctx.opts.filters;
    this.receiverFilter = new FilterList(rules, 'receiver');
  }

  async run(): Promise<ReceiverResult> {
    const { conn } = this.ctx;
    await runLoops(conn, this.ctx.signal, [() => this.readLoop(), () => this.generate()], {
      firstError: () => this.failed,
      fail: (err) => {
        this.failed ??= err;
        this.wake.notify();
      },
      finish: () => conn.writer.close(),
      cleanup: () => this.abandonJobs(this.ctx.opts.partial),
    });
    return { sender: this.senderSummary ?? emptySenderSummary(), receiver: this.summary };
  }

  private checkFailed(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  private error(message: string, path?: string): void {
    this.summary.errors++;
    this.ctx.sink.log(LogLevel.ERROR, message, path);
  }

  // ------------------------------------------------------------------------------------------
  // Reader: file list and file data

  private async readLoop(): Promise<void> {
    const { conn, sink } = this.ctx;
    const prev = { path: Buffer.alloc(0) };
    for (;;) {
      const frame = await conn.reader.next();
      this.checkFailed();
      if (frame === null) throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${conn.peerName} closed the connection early`);
      switch (frame.type) {
        case Msg.FLIST_BEGIN: {
          const j = decodeJson(frame.payload, 'FLIST_BEGIN');
          this.singleFile = j.singleFile === true;
          this.wake.notify();
          break;
        }
        case Msg.FLIST: {
          if (this.singleFile === undefined || this.flistDone) throw protocolError('FLIST outside the file list');
          for (const e of decodeFileEntries(frame.payload, prev)) this.addEntry(e);
          this.wake.notify();
          break;
        }
        case Msg.FLIST_END: {
          const j = decodeJson(frame.payload, 'FLIST_END');
          this.flistIoErrors = typeof j.ioErrors === 'number' ? j.ioErrors : 0;
          if (j.count !== this.entries.length) throw protocolError(`file list has ${this.entries.length} entries, FLIST_END says ${String(j.count)}`);
          this.flistDone = true;
          this.wake.notify();
          break;
        }
        case Msg.FILE_BEGIN:
          await this.beginFile(decodeFileBegin(frame.payload));
          break;
        case Msg.DATA:
          await this.fileData(frame.payload);
          break;
        case Msg.FILE_END:
          await this.endFile(decodeFileEnd(frame.payload));
          break;
        case Msg.FILE_ERROR:
          await this.fileError(decodeFileError(frame.payload));
          break;
        case Msg.LOG: {
          const m = decodeLog(frame.payload);
          sink.log(m.level, m.message, m.path);
          break;
        }
        case Msg.STATS:
          this.senderSummary = parseSummary(emptySenderSummary(), decodeJson(frame.payload, 'STATS'));
          return;
        case Msg.FATAL:
          throw peerFatal(conn, frame.payload);
        default:
          throw protocolError(`unexpected ${msgName(frame.type)} message from the sender`);
      }
    }
  }

  private addEntry(e: FileEntry): void {
    if (this.entries.length === 0 && this.singleFile && e.type === EntryType.DIR) {
      throw protocolError('single-file transfer announced, but the list starts with a directory');
    }
    if (e.path !== '.') {
      const parent = parentOf(e.path);
      // Everything below the root must sit in a directory listed before it: the receiver has
      // made that a real directory, so no entry can be written through a symlink (a hostile
      // sender could otherwise send "x -> /etc" and then "x/passwd").
      if (parent !== '.' && !this.dirPaths.has(parent)) {
        throw protocolError(`file list entry ${JSON.stringify(e.path)} is not inside a directory of the list`);
      }
      let set = this.children.get(parent);
      if (!set) {
        set = new Set();
        this.children.set(parent, set);
      }
      set.add(nameOf(e.path));
    }
    if (e.type === EntryType.DIR) this.dirPaths.add(e.path);
    this.entries.push(e);
  }

  // Applier. Each file is a job whose steps (open, writes, verify + finalize) run in order on
  // its own promise chain; the reader only appends steps, so up to MAX_JOBS files are written,
  // fsynced and renamed at once while the next files' data keeps arriving. Changes are still
  // reported in list order.

  private async beginFile(fb: FileBegin): Promise<void> {
    const out = this.requested[0];
    if (this.current) throw protocolError('FILE_BEGIN inside another file');
    if (!out || out.index !== fb.index || out.mode !== fb.mode) {
      throw protocolError(`FILE_BEGIN for index ${fb.index}, but index ${out?.index ?? 'none'} was requested next`);
    }
    this.requested.shift();
    const job: Job = { out, entry: this.entries[fb.index]!, position: 0, written: 0, chain: Promise.resolve(), settled: false };
    this.current = job;
    this.jobs.push(job);
    this.activeJobs++;
    job.chain = this.step(job, () => this.openJob(job));
    await this.waitFor(() => this.activeJobs <= MAX_JOBS);
  }

  /** Appends a step to a job; a failing step marks the job failed (reported once). */
  private step(job: Job, fn: () => Promise<void>): Promise<void> {
    return job.chain.then(async () => {
      if (job.failed !== undefined || this.failed !== undefined) return;
      try {
        await fn();
      } catch (err) {
        job.failed = err;
        if (err instanceof DeltaSyncError && (err.code === 'ERR_CORRUPT' || err.code === 'ERR_TRUNCATED' || err.code === 'ERR_BAD_MAGIC')) {
          // A delta that does not decode is the sender's fault, not the file's.
          this.stopWith(protocolError(`bad delta for ${job.entry.path}: ${err.message}`));
          return;
        }
        if (err instanceof DeltaSyncError && err.code === 'ERR_HASH_MISMATCH') return;
        this.error(ioError(err, job.out.target, 'write').message, job.entry.path);
      }
    });
  }

  private stopWith(err: unknown): void {
    this.failed ??= err;
    this.wake.notify();
  }

  private async openJob(job: Job): Promise<void> {
    const { out } = job;
    const inPlace = this.ctx.opts.inplace;
    if (inPlace) {
      job.fh = await open(out.target, constants.O_RDWR | constants.O_CREAT, 0o600);
      if (out.mode === RequestMode.APPEND || out.mode === RequestMode.APPEND_VERIFY) job.position = out.basisSize;
    } else {
      const temp = tempPathFor(out.target);
      // Created with its final permission bits where the umask allows, saving a chmod.
      const mode = targetPerms(job.entry, this.ctx.opts, out.existingMode) & 0o777;
      job.fh = await open(temp, 'wx', mode);
      job.tempPath = temp;
      const dir = parentOf(job.entry.path);
      job.known = createdAttrs(mode, this.singleTarget === undefined && this.setgidDirs.has(dir));
    }
    const fh = job.fh;
    if (this.cache && job.entry.size >= SIG_CACHE_MIN_BYTES && (out.mode === RequestMode.DELTA || out.mode === RequestMode.WHOLE)) {
      try {
        const params = SignatureRecorder.paramsFor(job.entry.size, undefined, { format: 'deltasync', strong: this.ctx.opts.checksumChoice });
        job.recorder = new SignatureRecorder(params, job.entry.size);
      } catch {
        job.recorder = undefined;
      }
    }
    if (out.mode === RequestMode.DELTA) {
      const basis: string | Buffer | BasisReader = inPlace
        ? { read: (offset, length) => readAt(fh, offset, length), size: out.basisSize }
        : (out.basisData ?? out.basis!);
      job.engine = new PatchEngine(basis, async (data) => {
        await Promise.all([writeAt(fh, data, job.position), this.record(job, data)]);
        job.position += data.length;
        this.advance(job, data.length);
      });
      await job.engine.open();
    } else {
      job.hasher = new native.Hasher('xxh3');
      if (out.mode === RequestMode.APPEND_VERIFY) {
        for (let pos = 0; pos < out.basisSize; ) {
          const chunk = await readAt(fh, pos, Math.min(4 * 1024 * 1024, out.basisSize - pos));
          if (chunk.length === 0) break;
          await job.hasher.update(chunk);
          pos += chunk.length;
        }
      }
    }
  }

  /** Feeds written bytes to the job's signature recorder; a recorder problem only drops it. */
  private async record(job: Job, data: Buffer): Promise<void> {
    const rec = job.recorder;
    if (!rec) return;
    try {
      await rec.data(data);
    } catch {
      job.recorder = undefined;
    }
  }

  /** Stores the signature recorded while writing the file that is now in place. */
  private async storeSignature(job: Job): Promise<void> {
    const rec = job.recorder;
    job.recorder = undefined;
    if (!rec || !this.cache) return;
    try {
      const sig = await rec.finish();
      // After the rename and the attributes: the cache keys on ctime, which both change.
      const st = await statBig(job.out.target, { bigint: true });
      if (await this.cache.store(job.out.target, st, sig)) this.summary.sigCacheStores++;
    } catch {
      // The file changed size under us, or the cache cannot be written: no entry.
    }
  }

  private advance(job: Job, n: number): void {
    job.written += n;
    this.ctx.sink.progress(job.out.index, job.entry, job.written, false);
  }

  private async fileData(payload: Buffer): Promise<void> {
    const job = this.current;
    if (!job) throw protocolError('DATA outside a file');
    this.bufferedBytes += payload.length;
    job.chain = this.step(job, async () => {
      if (job.engine) {
        await job.engine.write(payload);
      } else {
        job.hasher!.updateSync(payload);
        await Promise.all([writeAt(job.fh!, payload, job.position), this.record(job, payload)]);
        job.position += payload.length;
        this.advance(job, payload.length);
      }
    }).finally(() => {
      this.bufferedBytes -= payload.length;
      if (this.bufferedBytes <= MAX_BUFFERED_BYTES / 2) this.wake.notify();
    });
    if (this.bufferedBytes > MAX_BUFFERED_BYTES) await this.waitFor(() => this.bufferedBytes <= MAX_BUFFERED_BYTES / 2);
  }

  private async endFile(fe: FileEnd): Promise<void> {
    const job = this.current;
    if (!job || job.out.index !== fe.index) throw protocolError(`FILE_END for index ${fe.index} outside that file`);
    this.current = undefined;
    job.chain = this.step(job, () => this.finishJob(job, fe)).then(() => this.settle(job));
  }

  private async fileError(fe: FileError): Promise<void> {
    const job = this.current;
    if (job && job.out.index === fe.index) {
      this.current = undefined;
      // The sender already reported the error to the user.
      job.discarded = true;
      job.chain = job.chain.then(() => this.settle(job));
      return;
    }
    const out = this.requested[0];
    if (job || !out || out.index !== fe.index) throw protocolError(`FILE_ERROR for index ${fe.index}, which is not the file in transfer`);
    this.requested.shift();
    this.release(out);
  }

  /** Verifies the data, then truncates (in place), fsyncs, sets attributes and renames. */
  private async finishJob(job: Job, fe: FileEnd): Promise<void> {
    const { out, entry } = job;
    const opts = this.ctx.opts;
    let size: number;
    if (job.engine) {
      await job.engine.finish();
      size = job.engine.stats.outBytes;
    } else {
      size = job.position;
      if (!job.hasher!.digest().equals(fe.hash)) throw new DeltaSyncError('ERR_HASH_MISMATCH', 'whole-file hash mismatch');
    }
    const fh = job.fh!;
    if (opts.inplace && out.mode !== RequestMode.APPEND && out.mode !== RequestMode.APPEND_VERIFY) await fh.truncate(size);
    if (opts.fsync) await fh.sync();
    await applyToHandle(fh, entry, opts, targetPerms(entry, opts, out.existingMode), job.known);
    job.fh = undefined;
    await fh.close();
    if (job.tempPath) await rename(job.tempPath, out.target);
    job.tempPath = undefined;
    if (out.partialPath && out.basis === out.partialPath) await unlink(out.partialPath).catch(() => undefined);
    job.size = size;
    job.done = true;
    await this.storeSignature(job);
  }

  /** A job is over: clean up after failures, queue a redo on a hash mismatch, report in order. */
  private async settle(job: Job): Promise<void> {
    if (!job.done) {
      await this.discard(job);
      const err = job.failed;
      if (!job.discarded && err instanceof DeltaSyncError && err.code === 'ERR_HASH_MISMATCH' && this.failed === undefined) {
        if (!job.out.redo) {
          // Redo with full-length strong sums; in place the file is already partly rewritten,
          // so the redo sends it whole.
          this.summary.redone++;
          this.redo.push({ index: job.out.index, mode: this.ctx.opts.inplace ? RequestMode.WHOLE : job.out.mode });
        } else {
          this.error(`${job.out.target}: failed verification -- update discarded`, job.entry.path);
        }
      }
    }
    job.settled = true;
    this.activeJobs--;
    this.release(job.out);
    while (this.jobs.length > 0 && this.jobs[0]!.settled) {
      const j = this.jobs.shift()!;
      if (!j.done) continue;
      this.summary.filesTransferred++;
      this.summary.totalTransferredFileSize += j.size ?? 0;
      if (!j.out.existed) this.summary.createdFiles++;
      this.ctx.sink.progress(j.out.index, j.entry, j.written, true);
      this.ctx.sink.item(j.out.item);
    }
  }

  private release(out: Outstanding): void {
    this.pending--;
    this.pendingSigBytes -= out.sigBytes;
    this.wake.notify();
  }

  /** Closes and removes the temp file of a failed file (in place: the file stays as written). */
  private async discard(job: Job): Promise<void> {
    await job.engine?.close().catch(() => undefined);
    const fh = job.fh;
    job.fh = undefined;
    await fh?.close().catch(() => undefined);
    if (job.tempPath) await unlink(job.tempPath).catch(() => undefined);
    job.tempPath = undefined;
  }

  /**
   * On abort or a lost connection: every unfinished job stops; with `keepPartial` the data
   * received so far is kept as the destination (--partial) or in the partial directory, to be
   * the basis of the next run; otherwise temp files go. No destination is left torn.
   */
  private async abandonJobs(keepPartial: boolean): Promise<void> {
    this.current = undefined;
    const jobs = [...this.jobs];
    await Promise.all(jobs.map((j) => j.chain.catch(() => undefined)));
    for (const job of jobs) {
      if (job.done || job.settled) continue;
      await job.engine?.close().catch(() => undefined);
      const fh = job.fh;
      job.fh = undefined;
      await fh?.close().catch(() => undefined);
      const temp = job.tempPath;
      if (!temp) continue;
      if (keepPartial && job.written > 0) {
        try {
          const dest = job.out.partialPath ?? job.out.target;
          if (job.out.partialPath) await mkdir(dirname(dest), { recursive: true });
          await rename(temp, dest);
          continue;
        } catch {
          // fall through: remove it
        }
      }
      await unlink(temp).catch(() => undefined);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Generator

  private async waitFor(cond: () => boolean): Promise<void> {
    while (!cond()) {
      this.checkFailed();
      await this.wake.wait();
    }
    this.checkFailed();
  }

  private async generate(): Promise<void> {
    await this.waitFor(() => this.singleFile !== undefined);
    await this.resolveRoot();
    let i = 0;
    for (;;) {
      this.checkFailed();
      if (i < this.entries.length) {
        await this.processEntry(i++);
        continue;
      }
      const r = this.redo.shift();
      if (r) {
        await this.requestRedo(r);
        continue;
      }
      if (this.flistDone && this.pending === 0 && this.activeJobs === 0 && this.sendQueue.length === 0 && !this.sending) break;
      await this.wake.wait();
    }
    if (this.ctx.opts.delete) await this.deleteExtraneous();
    await this.finishDirectories();
    await this.ctx.conn.writer.send(Msg.DONE, encodeJson(this.summary));
  }

  /** Decides where the list goes: DEST itself (single file) or a directory, created if needed. */
  private async resolveRoot(): Promise<void> {
    const arg = this.ctx.dest;
    const slash = arg.endsWith('/');
    const dest = arg.length > 1 ? arg.replace(/\/+$/, '') || '/' : arg;
    let st: import('node:fs').Stats | undefined;
    try {
      st = await stat(dest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw ioError(err, dest, 'stat');
    }
    if (this.singleFile && !(st?.isDirectory() ?? false) && !slash) {
      this.singleTarget = dest;
      this.root = dirname(dest);
      return;
    }
    this.root = dest;
    if (st?.isDirectory()) return;
    if (st) {
      throw new DeltaSyncError('ERR_USAGE', `destination must be a directory when copying more than one file: ${dest}`);
    }
    this.newDirs.add('.');
    if (!this.ctx.opts.dryRun) {
      try {
        await mkdir(dest);
      } catch (err) {
        throw ioError(err, dest, 'create directory');
      }
    }
    this.rootCreated = true;
    this.ctx.sink.log(LogLevel.INFO, `created directory ${dest}`);
  }

  private targetOf(e: FileEntry): string {
    if (this.singleTarget !== undefined) return this.singleTarget;
    return e.path === '.' ? this.root : join(this.root, e.path);
  }

  /** Needs a lookup: not in (and not itself) a directory this run created. */
  private needsLookup(e: FileEntry): boolean {
    if (e.path === '.') return !this.rootCreated;
    return this.singleTarget !== undefined || !this.newDirs.has(parentOf(e.path));
  }

  /**
   * The destination's lstat for an entry. Lookups run up to STAT_AHEAD entries ahead, so
   * their latency overlaps; a result is only used when the entry's directory was not created
   * (or replaced) since, which is the only way an earlier entry changes a later one's path.
   */
  private async lookup(index: number): Promise<BigIntStats | undefined> {
    const end = Math.min(this.entries.length, index + STAT_AHEAD);
    for (let j = index; j < end; j++) {
      if (this.statAhead.has(j)) continue;
      const e = this.entries[j]!;
      if (!this.needsLookup(e)) continue;
      this.statAhead.set(j, lstatOrUndefined(this.targetOf(e)).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
    }
    const pending = this.statAhead.get(index);
    this.statAhead.delete(index);
    const e = this.entries[index]!;
    if (!this.needsLookup(e)) return undefined;
    const r = await (pending ?? lstatOrUndefined(this.targetOf(e)));
    if (r instanceof Error) throw r;
    return r;
  }

  private async processEntry(index: number): Promise<void> {
    const e = this.entries[index]!;
    const target = this.targetOf(e);
    let st: BigIntStats | undefined;
    try {
      st = await this.lookup(index);
    } catch (err) {
      this.error(ioError(err, target, 'stat').message, e.path);
      return;
    }
    try {
      switch (e.type) {
        case EntryType.DIR:
          await this.doDir(index, e, target, st);
          break;
        case EntryType.SYMLINK:
          await this.doSymlink(e, target, st);
          break;
        case EntryType.FILE:
          await this.doFile(index, e, target, st);
          break;
        default:
          await this.doSpecial(e, target, st);
      }
    } catch (err) {
      if (err === this.failed || (err instanceof DeltaSyncError && (err.code === 'ERR_PROTOCOL' || err.code === 'ERR_ABORTED' || err.code === 'ERR_REMOTE'))) throw err;
      if (this.failed !== undefined) throw this.failed;
      this.error(ioError(err, target, 'update').message, e.path);
    }
  }

  /** Removes what is in the way of a new item. Directories only go with --delete. */
  private async clearWay(e: FileEntry, target: string, st: BigIntStats): Promise<boolean> {
    if (this.ctx.opts.dryRun) return true;
    if (isType(st, constants.S_IFDIR)) {
      if (!this.ctx.opts.delete) {
        try {
          await rmdir(target);
          return true;
        } catch {
          this.error(`cannot delete non-empty directory: ${target} (could not make way for ${e.path}; use --delete)`, e.path);
          return false;
        }
      }
      await rm(target, { recursive: true, force: true });
      return true;
    }
    await unlink(target);
    return true;
  }

  private async doDir(index: number, e: FileEntry, target: string, st: BigIntStats | undefined): Promise<void> {
    const opts = this.ctx.opts;
    this.dirIndexes.push(index);
    if (st && !isType(st, constants.S_IFDIR)) {
      if (!(await this.clearWay(e, target, st))) return;
      st = undefined;
    }
    const created = !st;
    if (!st) {
      this.newDirs.add(e.path);
      if ((targetPerms(e, opts, undefined) & 0o2000) !== 0) this.setgidDirs.add(e.path);
      if (opts.dryRun) {
        // nothing to make
      } else if (!(e.path === '.' && this.rootCreated)) {
        const perms = targetPerms(e, opts, undefined);
        // We must be able to fill it: owner rwx until the final attribute pass.
        await mkdir(target, { mode: perms | 0o700 });
        this.createdDirPerms.set(index, perms);
        if (wantOwner(opts) || wantGroup(opts, e.gid)) {
          await applyToPath(target, e, { time: false, perms: false, owner: wantOwner(opts), group: wantGroup(opts, e.gid) });
        }
      } else {
        this.createdDirPerms.set(index, targetPerms(e, opts, undefined));
        if (wantOwner(opts) || wantGroup(opts, e.gid)) {
          await applyToPath(target, e, { time: false, perms: false, owner: wantOwner(opts), group: wantGroup(opts, e.gid) });
        }
      }
      this.summary.createdDirs++;
      this.ctx.sink.item({ path: e.path, type: 'd', update: 'create', created: true });
      return;
    }
    if ((Number(st.mode) & 0o2000) !== 0) this.setgidDirs.add(e.path);
    const diff = diffAttrs(e, st, opts);
    if (created || diff.time || diff.perms || diff.owner || diff.group) {
      // Owner and group now; perms and times after the contents (finishDirectories).
      if (!opts.dryRun && (diff.owner || diff.group)) {
        await applyToPath(target, e, { time: false, perms: false, owner: diff.owner, group: diff.group });
      }
      this.ctx.sink.item({
        path: e.path,
        type: 'd',
        update: 'attrs',
        created: false,
        time: diff.time ? 't' : undefined,
        perms: diff.perms,
        owner: diff.owner,
        group: diff.group,
      });
    }
    if (!opts.dryRun) await this.cleanStaleTemps(target, e.path);
  }

  /**
   * Removes temp files an interrupted earlier run left in `dir`. With --partial, one larger
   * than its destination is kept as that destination (or partial-dir file): the next
   * transfer then only needs what is missing.
   */
  private async cleanStaleTemps(dir: string, rel: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    const listed = this.children.get(rel);
    for (const name of names) {
      const m = TEMP_RE.exec(name);
      if (!m) continue;
      const temp = join(dir, name);
      const original = m[1]!;
      try {
        const opts = this.ctx.opts;
        if (opts.partial && listed?.has(original)) {
          const target = join(dir, original);
          const keepAs = opts.partialDir ? this.partialPathOf(target) : target;
          const tst = await lstat(temp);
          const kst = await lstatOrUndefined(keepAs);
          if (tst.isFile() && tst.size > 0 && (!kst || (kst.isFile() && Number(kst.size) < tst.size))) {
            if (opts.partialDir) await mkdir(dirname(keepAs), { recursive: true });
            await rename(temp, keepAs);
            // Lookups made ahead of this rename are stale now.
            this.statAhead.clear();
            continue;
          }
        }
        await unlink(temp);
      } catch {
        // Not ours to fight over: leave it.
      }
    }
  }

  private partialPathOf(target: string): string {
    const dir = this.ctx.opts.partialDir!;
    return isAbsolute(dir) ? join(dir, basename(target)) : join(dirname(target), dir, basename(target));
  }

  private async doSymlink(e: FileEntry, target: string, st: BigIntStats | undefined): Promise<void> {
    const opts = this.ctx.opts;
    const linkTarget = e.linkTarget!;
    if (st && isType(st, constants.S_IFLNK)) {
      const current = await readlink(target);
      if (current === linkTarget) {
        const diff = diffAttrs(e, st, opts);
        if (diff.time || diff.owner || diff.group) {
          if (!opts.dryRun) await applyToPath(target, e, diff);
          this.ctx.sink.item({
            path: e.path,
            type: 'L',
            update: 'attrs',
            created: false,
            time: diff.time ? 't' : undefined,
            owner: diff.owner,
            group: diff.group,
            linkTarget,
          });
        }
        return;
      }
    }
    const existed = st !== undefined && isType(st, constants.S_IFLNK);
    if (st && isType(st, constants.S_IFDIR) && !opts.dryRun) {
      if (!(await this.clearWay(e, target, st))) return;
    }
    if (!opts.dryRun) {
      const temp = tempPathFor(target);
      await symlink(linkTarget, temp);
      try {
        await applyToPath(temp, e, { time: opts.times, perms: false, owner: wantOwner(opts), group: wantGroup(opts, e.gid) });
        await rename(temp, target);
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw err;
      }
    }
    if (!existed) this.summary.createdLinks++;
    const diff = existed && st ? diffAttrs(e, st, opts) : undefined;
    this.ctx.sink.item({
      path: e.path,
      type: 'L',
      update: 'create',
      created: !existed,
      checksum: existed,
      time: diff?.time ? 't' : undefined,
      owner: diff?.owner ?? false,
      group: diff?.group ?? false,
      linkTarget,
    });
  }

  private async doSpecial(e: FileEntry, target: string, st: BigIntStats | undefined): Promise<void> {
    const opts = this.ctx.opts;
    const fmt = e.mode & constants.S_IFMT;
    const type = itemType(e.type);
    if (st && (Number(st.mode) & constants.S_IFMT) === fmt && (e.type !== EntryType.DEVICE || Number(st.rdev) === e.rdev)) {
      const diff = diffAttrs(e, st, opts);
      if (diff.time || diff.perms || diff.owner || diff.group) {
        if (!opts.dryRun) await applyToPath(target, e, diff);
        this.ctx.sink.item({ path: e.path, type, update: 'attrs', created: false, time: diff.time ? 't' : undefined, perms: diff.perms, owner: diff.owner, group: diff.group });
      }
      return;
    }
    if (!opts.dryRun) {
      const temp = tempPathFor(target);
      const mode = (targetPerms(e, opts, undefined) & 0o777).toString(8);
      if (fmt === constants.S_IFIFO) {
        await execFileAsync('mkfifo', ['-m', mode, '--', temp]);
      } else {
        const rdev = e.rdev ?? 0;
        const major = Math.floor(rdev / 256) & 0xfff;
        const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
        const kind = fmt === constants.S_IFBLK ? 'b' : 'c';
        await execFileAsync('mknod', ['-m', mode, '--', temp, kind, String(major), String(minor)]);
      }
      try {
        await applyToPath(temp, e, { time: opts.times, perms: opts.perms, owner: wantOwner(opts), group: wantGroup(opts, e.gid) });
        if (st && isType(st, constants.S_IFDIR)) {
          if (!(await this.clearWay(e, target, st))) {
            await unlink(temp);
            return;
          }
        }
        await rename(temp, target);
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw err;
      }
    }
    this.ctx.sink.item({ path: e.path, type, update: 'create', created: !st, checksum: !!st });
  }

  private async doFile(index: number, e: FileEntry, target: string, st: BigIntStats | undefined): Promise<void> {
    const opts = this.ctx.opts;
    if (st && isType(st, constants.S_IFDIR)) {
      if (!(await this.clearWay(e, target, st))) return;
      st = undefined;
    }
    const isFile = st !== undefined && isType(st, constants.S_IFREG);
    if (st && !isFile) {
      // A symlink, FIFO ... where the file goes: the rename replaces it (in place: remove it).
      if (opts.inplace && !opts.dryRun) await unlink(target);
      st = undefined;
    }
    if (st && opts.ignoreExisting) return;
    if (st && opts.update && st.mtimeNs > BigInt(e.mtimeSec) * 1_000_000_000n + BigInt(e.mtimeNsec)) return;
    const sizeSame = st !== undefined && Number(st.size) === e.size;
    let upToDate = false;
    if (st && !opts.ignoreTimes) {
      if (opts.sizeOnly) upToDate = sizeSame;
      else if (opts.checksum) upToDate = sizeSame && (await this.sameChecksum(target, e));
      else upToDate = sizeSame && sameMtime(e, st, opts.modifyWindow);
    }
    if (upToDate && st) {
      const diff = diffAttrs(e, st, opts);
      if (diff.time || diff.perms || diff.owner || diff.group) {
        if (!opts.dryRun) await applyToPath(target, e, diff);
        this.ctx.sink.item({ path: e.path, type: 'f', update: 'attrs', created: false, time: diff.time ? 't' : undefined, perms: diff.perms, owner: diff.owner, group: diff.group });
      }
      return;
    }
    if (st && opts.append !== 'no' && Number(st.size) >= e.size) return; // rsync: --append skips these
    const diff = st ? diffAttrs(e, st, opts) : undefined;
    const item: SyncItem = {
      path: e.path,
      type: 'f',
      update: 'transfer',
      created: !st,
      checksum: opts.checksum && !!st,
      size: !!st && !sizeSame,
      time: opts.times ? (diff?.time ? 't' : undefined) : 'T',
      perms: diff?.perms ?? false,
      owner: diff?.owner ?? false,
      group: diff?.group ?? false,
    };
    if (opts.dryRun) {
      this.summary.filesTransferred++;
      this.summary.totalTransferredFileSize += e.size;
      if (!st) this.summary.createdFiles++;
      this.ctx.sink.item(item);
      return;
    }
    const out: Outstanding = {
      index,
      mode: RequestMode.WHOLE,
      target,
      basisSize: 0,
      existed: !!st,
      item,
      redo: false,
      sigBytes: 0,
    };
    if (st) out.existingMode = Number(st.mode);
    if (opts.partialDir) out.partialPath = this.partialPathOf(target);
    await this.request(out, st);
  }

  private async sameChecksum(target: string, e: FileEntry): Promise<boolean> {
    if (!e.checksum) return false;
    try {
      return (await fileChecksum(target, this.ctx.opts.checksumChoice)).equals(e.checksum);
    } catch {
      return false;
    }
  }

  /** Picks the transfer mode and basis, builds the signature, waits for window, sends REQUEST. */
  /**
   * Queues a request. Its basis signature is computed in the background (up to PREPARE_AHEAD
   * at once, so their file reads overlap) and the requests go out in list order.
   */
  private async request(out: Outstanding, st: BigIntStats | undefined, fullStrong = false): Promise<void> {
    const prepared = this.prepare(out, st, fullStrong);
    prepared.catch(() => undefined);
    this.sendQueue.push(prepared);
    this.startSending();
    await this.waitFor(() => this.sendQueue.length < PREPARE_AHEAD);
  }

  private startSending(): void {
    if (this.sending) return;
    this.sending = true;
    this.sendRequests()
      .catch((err: unknown) => this.stopWith(err))
      .finally(() => {
        this.sending = false;
        // A request queued after the loop saw an empty queue, before this ran.
        if (this.sendQueue.length > 0 && this.failed === undefined) this.startSending();
        this.wake.notify();
      });
  }

  /** Picks the transfer mode and basis and builds the signature. */
  private async prepare(out: Outstanding, st: BigIntStats | undefined, fullStrong: boolean): Promise<{ out: Outstanding; sig?: Buffer }> {
    const opts = this.ctx.opts;
    let basis: string | undefined;
    let basisSize = 0;
    if (out.partialPath && !opts.inplace) {
      const pst = await lstatOrUndefined(out.partialPath).catch(() => undefined);
      if (pst && isType(pst, constants.S_IFREG)) {
        basis = out.partialPath;
        basisSize = Number(pst.size);
      }
    }
    if (basis === undefined && st && isType(st, constants.S_IFREG)) {
      basis = out.target;
      basisSize = Number(st.size);
    }
    let sig: Buffer | undefined;
    if (opts.append !== 'no' && basis === out.target && !fullStrong) {
      out.mode = opts.append === 'verify' ? RequestMode.APPEND_VERIFY : RequestMode.APPEND;
    } else if (out.mode === RequestMode.WHOLE && fullStrong) {
      // A redo asked for the whole file.
    } else if (!opts.wholeFile && basis !== undefined && basisSize > 0) {
      try {
        let s: Signature | undefined;
        if (basisSize <= SMALL_BASIS_BYTES && !opts.inplace) {
          // One read serves both the signature and, later, the patch.
          out.basisData = await readFile(basis);
          s = await this.computeSignature(out.basisData, out.basisData.length, fullStrong);
        } else {
          s = (await this.cachedSignature(basis, basisSize, fullStrong)) ?? (await this.computeSignature(basis, basisSize, fullStrong));
        }
        sig = s.toBuffer();
        basisSize = s.fileSize ?? basisSize;
        out.mode = RequestMode.DELTA;
      } catch {
        // An unreadable basis just means a whole-file transfer.
        out.mode = RequestMode.WHOLE;
        delete out.basisData;
      }
    } else {
      out.mode = RequestMode.WHOLE;
    }
    if (out.mode === RequestMode.DELTA) out.basis = basis;
    out.basisSize = out.mode === RequestMode.WHOLE ? 0 : basisSize;
    // The window counts a kept basis too: it stays in memory until its file is done.
    out.sigBytes = (sig?.length ?? 0) + (out.basisData?.length ?? 0);
    return sig ? { out, sig } : { out };
  }

  private computeSignature(basis: string | Buffer, size: number, fullStrong: boolean): Promise<Signature> {
    const opts = this.ctx.opts;
    const blockLen = opts.blockSize || defaultBlockLen('deltasync', size);
    return signature(basis, {
      blockLen,
      strong: opts.checksumChoice,
      strongLen: fullStrong ? STRONG_FULL_LEN[opts.checksumChoice] : syncStrongLen(size, blockLen, opts.checksumChoice),
    });
  }

  /**
   * The basis signature from the signature cache (no read of the basis), its strong sums cut
   * to the sync length: strong sums are prefixes of the block hash, so a shorter one is exactly
   * what computing it would give.
   */
  private async cachedSignature(basis: string, size: number, fullStrong: boolean): Promise<Signature | undefined> {
    const opts = this.ctx.opts;
    // A redo (fullStrong) follows a failed verification: read the basis itself.
    if (!this.cache || fullStrong || size < SIG_CACHE_MIN_BYTES || opts.blockSize) return undefined;
    const cached = await this.cache
      .lookup(basis, { format: 'deltasync', strong: opts.checksumChoice, rolling: 'ds64' }, { similar: true })
      .catch(() => undefined);
    if (!cached || cached.fileSize !== size) return undefined;
    const want = fullStrong ? STRONG_FULL_LEN[opts.checksumChoice] : syncStrongLen(size, cached.blockLen, opts.checksumChoice);
    if (cached.strongLen < want) return undefined;
    this.summary.sigCacheHits++;
    if (cached.strongLen === want) return cached;
    const weak = cached.entrySize - cached.strongLen;
    const blocks = Buffer.allocUnsafe(cached.blockCount * (weak + want));
    for (let k = 0; k < cached.blockCount; k++) {
      cached.blocks.copy(blocks, k * (weak + want), k * cached.entrySize, k * cached.entrySize + weak + want);
    }
    return new Signature({ ...cached.params, strongLen: want, fileSize: size, blocks });
  }

  /** Sends prepared requests in order, within the window of outstanding files and signature bytes. */
  private async sendRequests(): Promise<void> {
    const { writer } = this.ctx.conn;
    while (this.sendQueue.length > 0) {
      const { out, sig } = await this.sendQueue[0]!;
      await this.waitFor(
        () =>
          this.pending < MAX_OUTSTANDING_FILES &&
          (this.pending === 0 || this.pendingSigBytes + out.sigBytes <= MAX_OUTSTANDING_SIG_BYTES),
      );
      this.sendQueue.shift();
      this.requested.push(out);
      this.pending++;
      this.pendingSigBytes += out.sigBytes;
      this.wake.notify();
      this.ctx.sink.requested(out.index, this.entries[out.index]!);
      const length = out.mode === RequestMode.DELTA ? sig!.length : out.mode === RequestMode.WHOLE ? 0 : out.basisSize;
      await writer.send(Msg.REQUEST, encodeRequest({ index: out.index, mode: out.mode, length }));
      if (sig) {
        for (let pos = 0; pos < sig.length; pos += DATA_CHUNK_BYTES) await writer.send(Msg.SIG, sig.subarray(pos, pos + DATA_CHUNK_BYTES));
      }
    }
  }

  private async requestRedo(r: Redo): Promise<void> {
    const e = this.entries[r.index]!;
    const target = this.targetOf(e);
    const st = await lstatOrUndefined(target);
    const out: Outstanding = {
      index: r.index,
      mode: r.mode === RequestMode.DELTA ? RequestMode.DELTA : RequestMode.WHOLE,
      target,
      basisSize: 0,
      existed: !!st,
      item: { path: e.path, type: 'f', update: 'transfer', created: !st, time: this.ctx.opts.times ? 't' : 'T' },
      redo: true,
      sigBytes: 0,
    };
    if (st) out.existingMode = Number(st.mode);
    if (this.ctx.opts.partialDir) out.partialPath = this.partialPathOf(target);
    if (out.mode === RequestMode.WHOLE) {
      await this.request(out, undefined, true);
    } else {
      await this.request(out, st, true);
    }
  }

  // ------------------------------------------------------------------------------------------
  // After the transfers

  private async deleteExtraneous(): Promise<void> {
    if (this.singleTarget !== undefined) return;
    if (this.flistIoErrors > 0) {
      this.ctx.sink.log(LogLevel.WARNING, 'IO error encountered -- skipping file deletion');
      return;
    }
    const partialName = this.ctx.opts.partialDir && !isAbsolute(this.ctx.opts.partialDir) ? this.ctx.opts.partialDir.split('/')[0] : undefined;
    for (const index of this.dirIndexes) {
      this.checkFailed();
      const e = this.entries[index]!;
      if (!e.listed || this.newDirs.has(e.path)) continue;
      const dir = this.targetOf(e);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        this.error(ioError(err, dir, 'read directory').message, e.path);
        continue;
      }
      names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const listed = this.children.get(e.path);
      for (const name of names) {
        if (listed?.has(name) || name === partialName) continue;
        const rel = e.path === '.' ? name : `${e.path}/${name}`;
        await this.deleteTree(join(dir, name), rel);
      }
    }
  }

  /** Deletes a path (contents first), reporting each item; protected names stay. */
  private async deleteTree(path: string, rel: string): Promise<boolean> {
    let st: BigIntStats | undefined;
    try {
      st = await lstatOrUndefined(path);
    } catch (err) {
      this.error(ioError(err, path, 'stat').message, rel);
      return false;
    }
    if (!st) return true;
    const isDir = isType(st, constants.S_IFDIR);
    if (this.receiverFilter.excluded(rel, isDir)) return false;
    const type: ItemType = isDir ? 'd' : isType(st, constants.S_IFLNK) ? 'L' : isType(st, constants.S_IFREG) ? 'f' : 'S';
    let emptied = true;
    if (isDir) {
      let names: string[] = [];
      try {
        names = await readdir(path);
      } catch (err) {
        this.error(ioError(err, path, 'read directory').message, rel);
        return false;
      }
      names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const name of names) emptied = (await this.deleteTree(join(path, name), `${rel}/${name}`)) && emptied;
      if (!emptied) return false;
    }
    if (!this.ctx.opts.dryRun) {
      try {
        if (isDir) await rmdir(path);
        else await unlink(path);
      } catch (err) {
        this.error(ioError(err, path, 'delete').message, rel);
        return false;
      }
    }
    this.summary.deletedFiles++;
    this.ctx.sink.item({ path: rel, type, update: 'delete', created: false });
    return true;
  }

  /** Directory permissions and times, deepest first, now that their contents are final. */
  private async finishDirectories(): Promise<void> {
    const opts = this.ctx.opts;
    if (opts.dryRun) return;
    for (let k = this.dirIndexes.length - 1; k >= 0; k--) {
      const index = this.dirIndexes[k]!;
      const e = this.entries[index]!;
      const target = this.targetOf(e);
      try {
        const st = await lstatOrUndefined(target);
        if (!st || !isType(st, constants.S_IFDIR)) continue;
        const createdPerms = this.createdDirPerms.get(index);
        const diff = diffAttrs(e, st, opts);
        if (createdPerms !== undefined && (Number(st.mode) & 0o7777) !== createdPerms) {
          await chmod(target, createdPerms);
          diff.perms = false;
        }
        diff.owner = false;
        diff.group = false;
        if (diff.perms || diff.time) await applyToPath(target, e, diff);
      } catch (err) {
        this.error(ioError(err, target, 'set attributes of').message, e.path);
      }
    }
  }
}
