// The receiver role. Two tasks share one connection:
// - the generator walks the incoming file list, compares each entry with the destination
//   (quick check), makes directories and symlinks, fixes attributes, and for files that need
//   data sends a REQUEST with the basis signature — running ahead of the transfers, bounded by
//   a window of outstanding requests;
// - the reader applies the sender's answers in order: each file is written to a temp file
//   beside its destination from the basis and the delta, verified against the whole-file
//   hash, fsynced, given its attributes and renamed into place.
// After the last file: deletions (--delete), then directory attributes deepest first.
import { constants, type BigIntStats } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import type { FdHandle } from '../fd-handle.js';
import { basename, dirname, isAbsolute, join, posix } from 'node:path';
import { randomBytes } from '../builtins.js';
import { DeltaSyncError, ioError } from '../errors.js';
import { native, type NativeHasher, type StrongKind } from '../native.js';
import { STRONG_FULL_LEN, defaultBlockLen } from '../params.js';
import { copyRange, statOpen } from '../fileops.js';
import { PatchEngine, type BasisReader, type PatchOutput } from '../patch.js';
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
import { SignatureCache, SignatureRecorder, blockHashGrid, truncateStrong } from '../sigcache.js';
import {
  CREATE_EXCL_RW,
  DestTree,
  chmodNoFollow,
  descriptorPath,
  lstatAt,
  mkdirAt,
  mknodAt,
  openNoFollow,
  openRegularForRead,
  openRegularForUpdate,
  readdirAt,
  readlinkAt,
  renameAt,
  rmdirAt,
  splitRel,
  symlinkAt,
  unlinkAt,
  type DirHandle,
} from './dest-tree.js';
import { Signature, signature } from '../signature.js';
import { DEFAULT_ANCHOR_STRIDE, SparseSignature } from '../sparse-signature.js';
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
import { WriteBehind } from './write-behind.js';

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

/** Random bytes for temp names, drawn 3 at a time: one getrandom per 1365 files, not one per file. */
let tempRandom: Buffer = Buffer.alloc(0);
let tempRandomAt = 0;

function tempSuffix(): string {
  if (tempRandomAt + 3 > tempRandom.length) {
    tempRandom = randomBytes(4095);
    tempRandomAt = 0;
  }
  tempRandomAt += 3;
  return tempRandom.toString('hex', tempRandomAt - 3, tempRandomAt);
}

function tempPathFor(target: string): string {
  let base = basename(target);
  // Keep the temp name within NAME_MAX; a shortened name is never mistaken for a real one.
  if (Buffer.byteLength(base) > 200) base = Buffer.from(base).subarray(0, 200).toString('utf8').replace(/\uFFFD+$/, '');
  return join(dirname(target), `.${base}.deltasync-${tempSuffix()}`);
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

/** The errno code (ENOSPC ...) of a file system error, also when wrapped as a DeltaSyncError's cause. */
function errnoOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 3; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
  }
  return undefined;
}

function missingAsUndefined(err: unknown): undefined {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw err;
}

function isType(st: BigIntStats, fmt: number): boolean {
  return (Number(st.mode) & constants.S_IFMT) === fmt;
}

async function writeAt(fh: FdHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

async function readAt(fh: FdHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await fh.read(buf, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
}

/** Unchanged basis bytes that must pass through user space go in pieces this large. */
const COPY_THROUGH_BYTES = 1024 * 1024;

/**
 * The basis block hashes verify copies without reading them, so the basis must still be the file
 * they describe: same (device, inode, size, mtime ns, ctime ns) as when they were taken (the
 * signature cache's own test). A change is treated like a failed verification: a redo.
 */
async function checkBasisIdentity(fh: FdHandle, out: { basisStat?: BigIntStats }): Promise<void> {
  const was = out.basisStat;
  if (!was) return;
  const now = statOpen(fh);
  if (now.dev !== was.dev || now.ino !== was.ino || now.size !== was.size || now.mtimeNs !== was.mtimeNs || now.ctimeNs !== was.ctimeNs) {
    throw new DeltaSyncError('ERR_HASH_MISMATCH', 'basis file changed since its signature was taken');
  }
}

/**
 * The --partial-dir file of a target: inside the destination (a relative --partial-dir), reached
 * through directory handles like everything there; or at the user's own path (absolute, or
 * relative but leading out of the destination).
 */
type PartialSpot = { dir: string; name: string } | { path: string };

interface Outstanding {
  index: number;
  mode: RequestMode;
  /** Handle path of the destination file (`/proc/self/fd/N/name`). */
  target: string;
  /** What the signature was made from (DELTA): the target or its partial file. */
  basisFrom?: 'target' | 'partial';
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
  partial?: PartialSpot;
  /**
   * The basis signature with full-length strong sums (from the cache or computed for this
   * request): its block hashes verify copied blocks without reading them, and its entries seed
   * the new file's signature.
   */
  fullSig?: Signature;
  /** Identity of the basis file when fullSig was taken; the patch checks it still holds. */
  basisStat?: BigIntStats;
}

interface Job {
  out: Outstanding;
  entry: FileEntry;
  fh?: FdHandle;
  /** Temp file (undefined when writing in place). */
  tempPath?: string;
  /** Attributes of the temp file as created. */
  known?: KnownAttrs;
  engine?: PatchEngine;
  /** The basis file (DELTA, not in place), open for range copies. */
  basisFh?: FdHandle;
  hasher?: NativeHasher;
  /** Writes the bytes of a file sent whole (or a tail) behind the stream. */
  writer?: WriteBehind;
  /** The previous file's bytes are all written: this file's first write waits for it. */
  after?: Promise<void>;
  /** Resolves once this file writes nothing more (all its bytes landed, or it failed). */
  dataDone: Promise<void>;
  markDataDone: () => void;
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

/** Where an entry lives in the destination: its directory's handle (leased) and its name. */
interface Place {
  dir: DirHandle;
  name: string;
  /** Path relative to the destination tree's root. */
  rel: string;
  /** Handle path (`/proc/self/fd/N/name`): use it for every file system call. */
  target: string;
  /** The path the user knows, for messages. */
  shown: string;
}

/** Stands in for a directory a dry run would have created: nothing is ever written there. */
const NO_DIR: DirHandle = {
  rel: '',
  fd: -1,
  path: '',
  at: (name) => name,
  shown: (name) => name ?? '',
  release: () => undefined,
};

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
  private rootListed = false;
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
  /** dataDone of the last file begun (see Job.after). */
  private lastDataDone: Promise<void> = Promise.resolve();
  /** lstat results fetched ahead of the generator, by entry index. */
  private readonly statAhead = new Map<number, Promise<BigIntStats | undefined | Error>>();
  /** Directory entries, in list order, for the final attribute pass. */
  private readonly dirIndexes: number[] = [];
  /** Permissions to give directories we created with extra owner bits. */
  private readonly createdDirPerms = new Map<number, number>();
  private readonly receiverFilter: FilterList;
  private readonly cache: SignatureCache | undefined;
  /** The destination through directory handles (undefined in a dry run into a new root). */
  private tree: DestTree | undefined;
  /** A lease on the directory of each requested file, held until the file is settled. */
  private readonly filePins = new Map<number, DirHandle>();

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
    let generating: Promise<void> | undefined;
    try {
      await runLoops(conn, this.ctx.signal, [() => this.readLoop(), () => (generating = this.generate())], {
        firstError: () => this.failed,
        fail: (err) => {
          this.failed ??= err;
          this.wake.notify();
        },
        finish: () => conn.writer.close(),
        cleanup: () => this.abandonJobs(this.ctx.opts.partial),
      });
    } finally {
      // After a failure the generator may still be inside a file system call on the thread pool
      // (making the root or a directory): it stops at its next step, and nothing may be created
      // after run() has settled. (The reader is not waited for: it may wait on the peer forever.)
      await generating?.catch(() => undefined);
      for (const pin of this.filePins.values()) pin.release();
      this.filePins.clear();
      await this.tree?.close();
    }
    return { sender: this.senderSummary ?? emptySenderSummary(), receiver: this.summary };
  }

  private checkFailed(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  private error(message: string, path?: string): void {
    this.summary.errors++;
    // Handle paths (/proc/self/fd/N/...) never reach the user.
    this.ctx.sink.log(LogLevel.ERROR, this.tree ? this.tree.shown(message) : message, path);
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
    if (e.path === '.') {
      if (this.rootListed) throw protocolError('file list names "." twice');
      this.rootListed = true;
    } else {
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
      // One entry per name: a second one could turn a directory already made into a symlink
      // (or a file) under entries still to come; the sender never lists a name twice.
      const name = nameOf(e.path);
      if (set.has(name)) throw protocolError(`file list names ${JSON.stringify(e.path)} twice`);
      set.add(name);
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
    let markDataDone!: () => void;
    const dataDone = new Promise<void>((resolve) => (markDataDone = resolve));
    const job: Job = {
      out,
      entry: this.entries[fb.index]!,
      position: 0,
      written: 0,
      chain: Promise.resolve(),
      settled: false,
      // Files are written in the order they arrive, as rsync does: with writes behind the stream
      // a small file's one write could otherwise land before the big file ahead of it, and a
      // full disk would name the wrong file.
      after: this.lastDataDone,
      dataDone,
      markDataDone,
    };
    this.lastDataDone = dataDone;
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
        const errno = errnoOf(err);
        if (errno === 'ENOSPC' || errno === 'EDQUOT') {
          // No room: every later file would fail the same way. Stop, as rsync does (code 11).
          this.stopWith(ioError(err, this.shownOf(job.entry), 'write'));
          return;
        }
        this.error(ioError(err, this.shownOf(job.entry), 'write').message, job.entry.path);
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
      // Only the regular file at the name, never what a symlink swapped in since points to.
      job.fh = await openRegularForUpdate(out.target, 0o600);
      if (out.mode === RequestMode.APPEND || out.mode === RequestMode.APPEND_VERIFY) job.position = out.basisSize;
    } else {
      const temp = tempPathFor(out.target);
      // Created with its final permission bits where the umask allows, saving a chmod.
      const mode = targetPerms(job.entry, this.ctx.opts, out.existingMode) & 0o777;
      // Readable too: blocks the signature recorder did not see whole are read back from it.
      job.fh = await openNoFollow(temp, CREATE_EXCL_RW, mode);
      job.tempPath = temp;
      const dir = parentOf(job.entry.path);
      job.known = createdAttrs(mode, this.singleTarget === undefined && this.setgidDirs.has(dir));
    }
    const fh = job.fh;
    const appendOnCached = out.mode === RequestMode.APPEND && out.fullSig !== undefined;
    if (this.cache && job.entry.size >= SIG_CACHE_MIN_BYTES && (out.mode === RequestMode.DELTA || out.mode === RequestMode.WHOLE || appendOnCached)) {
      try {
        // Full-length strong sums: the entry then also serves as the next sync's block hash grid.
        const strong = this.ctx.opts.checksumChoice;
        const basisSig = out.mode === RequestMode.WHOLE ? undefined : out.fullSig;
        const params = SignatureRecorder.paramsFor(job.entry.size, basisSig, { format: 'deltasync', strong, strongLen: STRONG_FULL_LEN[strong] });
        job.recorder = new SignatureRecorder(params, job.entry.size, basisSig && { signature: basisSig, size: out.basisSize });
        // --append keeps the existing bytes where they are.
        if (appendOnCached) job.recorder.copied(0, out.basisSize);
      } catch {
        job.recorder = undefined;
      }
    }
    if (out.mode === RequestMode.DELTA) {
      let basis: Buffer | BasisReader;
      let basisFh: FdHandle | undefined;
      if (inPlace) {
        await checkBasisIdentity(fh, out);
        basis = { read: (offset, length) => readAt(fh, offset, length), size: out.basisSize };
      } else if (out.basisData) {
        basis = out.basisData;
      } else {
        const bfh = await this.openBasis(out);
        basisFh = job.basisFh = bfh;
        await checkBasisIdentity(bfh, out);
        basis = {
          read: (offset, length) => readAt(bfh, offset, length),
          size: out.basisSize,
          close: async () => {
            if (job.basisFh === bfh) job.basisFh = undefined;
            await bfh.close();
          },
        };
      }
      const output: PatchOutput = {
        write: async (data, position) => {
          await Promise.all([writeAt(fh, data, position), this.record(job, data)]);
          this.advance(job, data.length);
        },
        unchanged: (offset, length) => {
          this.recordCopied(job, offset, length);
          this.advance(job, length);
        },
      };
      if (basisFh) output.copyFromBasis = (offset, length, position) => this.copyFromBasis(job, basisFh, offset, length, position);
      const grid = out.fullSig && blockHashGrid(out.fullSig, out.basisSize);
      job.engine = new PatchEngine(basis, undefined, { output, inPlace, ...(grid ? { grid } : {}) });
      await job.engine.open();
    } else {
      job.hasher = new native.Hasher('xxh3');
      job.writer = new WriteBehind(fh, job.position, (n) => this.advance(job, n));
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

  /**
   * Puts basis bytes at `position` of the output: the part whose signature entries the recorder
   * can reuse by range copy (copy_file_range or reflink: no user-space bytes), the rest through
   * user space so the recorder sees it (same read and write counts as copy_file_range, and no
   * read-back of the new file afterwards).
   */
  private async copyFromBasis(job: Job, basisFh: FdHandle, offset: number, length: number, position: number): Promise<void> {
    const fh = job.fh!;
    const span = job.recorder ? job.recorder.reusableSpan(offset, length) : { start: 0, end: length };
    const through = async (from: number, to: number): Promise<void> => {
      const readFrom = (at: number): Promise<Buffer> => readAt(basisFh, offset + at, Math.min(COPY_THROUGH_BYTES, to - at));
      // One read ahead: the next piece comes from the page cache while this one is written.
      let next: Promise<Buffer> | undefined = from < to ? readFrom(from) : undefined;
      try {
        for (let at = from; at < to; ) {
          const data: Buffer = await next!;
          next = undefined;
          if (data.length === 0) throw new DeltaSyncError('ERR_HASH_MISMATCH', 'basis shorter than its signature');
          if (at + data.length < to) next = readFrom(at + data.length);
          await Promise.all([writeAt(fh, data, position + at), this.record(job, data)]);
          this.advance(job, data.length);
          at += data.length;
        }
      } finally {
        // The basis closes after a failure: no read of it may still be on the pool then.
        await next?.catch(() => undefined);
      }
    };
    await through(0, span.start);
    if (span.end > span.start) {
      const n = span.end - span.start;
      const r = await copyRange(basisFh, offset + span.start, fh, position + span.start, n);
      if (r.bytes !== n) throw new DeltaSyncError('ERR_HASH_MISMATCH', 'basis shorter than its signature');
      this.recordCopied(job, offset + span.start, n);
      this.advance(job, n);
    }
    await through(span.end, length);
  }

  /** Tells the recorder `length` basis bytes from `offset` went to the output unseen. */
  private recordCopied(job: Job, offset: number, length: number): void {
    try {
      job.recorder?.copied(offset, length);
    } catch {
      job.recorder = undefined;
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

  /**
   * Stores the signature recorded while writing the file that is now in place. `fh` is the
   * job's own descriptor of that file: read-back and identity never go through a path.
   */
  private async storeSignature(job: Job, fh: FdHandle): Promise<void> {
    const rec = job.recorder;
    job.recorder = undefined;
    if (!rec || !this.cache) return;
    try {
      // Blocks the recorder did not see whole (a block mixing copied and new bytes) are read back.
      const sig = await rec.finish((offset, length) => readAt(fh, offset, length));
      // After the rename and the attributes: the cache keys on ctime, which both change.
      const st = statOpen(fh);
      // The replaced version's entry (default mode: a new inode) is moved and updated in place.
      if (await this.cache.store(job.out.target, st, sig, { previous: job.out.basisStat })) this.summary.sigCacheStores++;
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
      if (job.after) {
        await job.after;
        job.after = undefined;
      }
      if (job.engine) {
        await job.engine.write(payload);
      } else {
        job.hasher!.updateSync(payload);
        await Promise.all([job.writer!.add(payload), this.record(job, payload)]);
        job.position += payload.length;
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
    await job.after;
    if (job.engine) {
      // Copied blocks were verified by their signature hashes: the basis must still be that file.
      if (job.basisFh) await checkBasisIdentity(job.basisFh, out);
      await job.engine.finish();
      job.markDataDone();
      size = job.engine.stats.outBytes;
    } else {
      await job.writer!.flush();
      job.markDataDone();
      size = job.position;
      if (!job.hasher!.digest().equals(fe.hash)) throw new DeltaSyncError('ERR_HASH_MISMATCH', 'whole-file hash mismatch');
    }
    const fh = job.fh!;
    if (opts.inplace && out.mode !== RequestMode.APPEND && out.mode !== RequestMode.APPEND_VERIFY) await fh.truncate(size);
    if (opts.fsync) await fh.sync();
    await applyToHandle(fh, entry, opts, targetPerms(entry, opts, out.existingMode), job.known);
    // Kept open past the rename only when the cache needs the final file's identity; otherwise
    // closed first, so that a write error reported at close keeps the file out of place.
    const keepOpen = job.recorder !== undefined && this.cache !== undefined;
    if (!keepOpen) {
      job.fh = undefined;
      await fh.close();
    }
    if (job.tempPath) await renameAt(job.tempPath, out.target);
    job.tempPath = undefined;
    if (out.partial && out.basisFrom === 'partial') await this.atPartial(out.partial, false, unlinkAt).catch(() => undefined);
    job.size = size;
    job.done = true;
    if (keepOpen) {
      job.fh = undefined;
      try {
        await this.storeSignature(job, fh);
      } finally {
        await fh.close().catch(() => undefined);
      }
    }
  }

  /** A job is over: clean up after failures, queue a redo on a hash mismatch, report in order. */
  private async settle(job: Job): Promise<void> {
    job.markDataDone();
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
          this.error(`${this.shownOf(job.entry)}: failed verification -- update discarded`, job.entry.path);
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
    this.filePins.get(out.index)?.release();
    this.filePins.delete(out.index);
    this.wake.notify();
  }

  /** Closes a job's patch engine, basis and output; errors on close no longer matter here. */
  private async closeJobFiles(job: Job, keepData = false): Promise<void> {
    // A write still on the pool must land (or fail) before its descriptor closes; what is
    // queued behind it is only worth writing when the data is kept (--partial).
    await job.writer?.stop(keepData).catch(() => undefined);
    await job.engine?.close().catch(() => undefined);
    // Open when the job failed before its patch engine took the basis over.
    await job.basisFh?.close().catch(() => undefined);
    job.basisFh = undefined;
    const fh = job.fh;
    job.fh = undefined;
    await fh?.close().catch(() => undefined);
  }

  /** Closes and removes the temp file of a failed file (in place: the file stays as written). */
  private async discard(job: Job): Promise<void> {
    await this.closeJobFiles(job);
    if (job.tempPath) await unlinkAt(job.tempPath).catch(() => undefined);
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
      await this.closeJobFiles(job, keepPartial);
      const temp = job.tempPath;
      if (!temp) continue;
      if (keepPartial && job.written > 0) {
        try {
          // A partial dir in the destination is made and entered through handles: a symlink
          // planted there cannot take the data elsewhere.
          if (job.out.partial) await this.atPartial(job.out.partial, true, (dest) => renameAt(temp, dest));
          else await renameAt(temp, job.out.target);
          continue;
        } catch {
          // fall through: remove it
        }
      }
      await unlinkAt(temp).catch(() => undefined);
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
      await this.openTree();
      return;
    }
    this.root = dest;
    if (st?.isDirectory()) {
      await this.openTree();
      return;
    }
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
    if (!this.ctx.opts.dryRun) await this.openTree();
  }

  /**
   * Opens the destination root's handle. From here on every change below it goes through
   * directory handles opened without following symlinks (lib/sync/dest-tree.ts).
   */
  private async openTree(): Promise<void> {
    try {
      this.tree = await DestTree.open(this.root);
    } catch (err) {
      // A dry run may name a root (a single file's directory) that does not exist.
      if (this.ctx.opts.dryRun && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw ioError(err, this.root, 'open directory');
    }
  }

  /** The path the user knows for an entry (messages only; never for file system calls). */
  private shownOf(e: FileEntry): string {
    if (this.singleTarget !== undefined) return this.singleTarget;
    return e.path === '.' ? this.root : join(this.root, e.path);
  }

  /**
   * Leases the handle of the entry's directory (release `place.dir`). A dry run addresses
   * entries of directories it would have created by their plain paths: nothing is written.
   */
  private async placeOf(e: FileEntry): Promise<Place> {
    const shown = this.shownOf(e);
    let rel: string;
    let parent: string;
    let name: string;
    if (this.singleTarget !== undefined) {
      rel = basename(this.singleTarget);
      parent = '.';
      name = rel;
    } else if (e.path === '.') {
      rel = parent = name = '.';
    } else {
      rel = e.path;
      ({ parent, name } = splitRel(e.path));
    }
    try {
      if (!this.tree) throw Object.assign(new Error(`ENOENT: ${this.root}`), { code: 'ENOENT' });
      const dir = this.tree.dirIfOpen(parent) ?? (await this.tree.dir(parent));
      return { dir, name, rel, target: dir.at(name), shown };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (this.ctx.opts.dryRun && (code === 'ENOENT' || code === 'ENOTDIR')) return { dir: NO_DIR, name, rel, target: shown, shown };
      throw err;
    }
  }

  /** lstat of an entry through its directory's handle; undefined when it or its directory is missing. */
  private async lstatEntry(e: FileEntry): Promise<BigIntStats | undefined> {
    let place: Place;
    try {
      place = await this.placeOf(e);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Its directory is missing or not a directory: processEntry reports that when it acts.
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
    try {
      return await lstatAt(place.target);
    } finally {
      place.dir.release();
    }
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
      this.statAhead.set(j, this.lstatEntry(e).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
    }
    const pending = this.statAhead.get(index);
    this.statAhead.delete(index);
    const e = this.entries[index]!;
    if (!this.needsLookup(e)) return undefined;
    const r = await (pending ?? this.lstatEntry(e));
    if (r instanceof Error) throw r;
    return r;
  }

  private async processEntry(index: number): Promise<void> {
    const e = this.entries[index]!;
    let st: BigIntStats | undefined;
    try {
      st = await this.lookup(index);
    } catch (err) {
      this.error(ioError(err, this.shownOf(e), 'stat').message, e.path);
      return;
    }
    let place: Place | undefined;
    try {
      place = await this.placeOf(e);
      switch (e.type) {
        case EntryType.DIR:
          await this.doDir(index, e, place, st);
          break;
        case EntryType.SYMLINK:
          await this.doSymlink(e, place, st);
          break;
        case EntryType.FILE:
          await this.doFile(index, e, place, st);
          break;
        default:
          await this.doSpecial(e, place, st);
      }
    } catch (err) {
      if (err === this.failed || (err instanceof DeltaSyncError && (err.code === 'ERR_PROTOCOL' || err.code === 'ERR_ABORTED' || err.code === 'ERR_REMOTE'))) throw err;
      if (this.failed !== undefined) throw this.failed;
      this.error(ioError(err, this.shownOf(e), 'update').message, e.path);
    } finally {
      place?.dir.release();
    }
  }

  /** Removes what is in the way of a new item. Directories only go with --delete. */
  private async clearWay(e: FileEntry, place: Place, st: BigIntStats): Promise<boolean> {
    if (this.ctx.opts.dryRun) return true;
    if (isType(st, constants.S_IFDIR)) {
      if (!this.ctx.opts.delete) {
        try {
          await rmdirAt(place.target);
          this.tree!.forget(place.rel);
          return true;
        } catch {
          this.error(`cannot delete non-empty directory: ${place.shown} (could not make way for ${e.path}; use --delete)`, e.path);
          return false;
        }
      }
      // Through handles: a symlink swapped in below cannot turn this into a delete elsewhere.
      await this.tree!.removeTree(place.rel);
      return true;
    }
    await unlinkAt(place.target);
    return true;
  }

  private async doDir(index: number, e: FileEntry, place: Place, st: BigIntStats | undefined): Promise<void> {
    const opts = this.ctx.opts;
    const target = place.target;
    this.dirIndexes.push(index);
    if (st && !isType(st, constants.S_IFDIR)) {
      if (!(await this.clearWay(e, place, st))) return;
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
        await mkdirAt(target, { mode: perms | 0o700 });
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
    if (!opts.dryRun) await this.cleanStaleTemps(e.path);
  }

  /**
   * Removes temp files an interrupted earlier run left in `dir`. With --partial, one larger
   * than its destination is kept as that destination (or partial-dir file): the next
   * transfer then only needs what is missing.
   */
  private async cleanStaleTemps(rel: string): Promise<void> {
    let dir: DirHandle;
    let names: string[];
    try {
      dir = await this.tree!.dir(rel);
    } catch {
      return;
    }
    try {
      try {
        names = await readdirAt(dir.at('.'));
      } catch {
        return;
      }
      const listed = this.children.get(rel);
      for (const name of names) {
        const m = TEMP_RE.exec(name);
        if (!m) continue;
        const temp = dir.at(name);
        const original = m[1]!;
        let partialDir: DirHandle | undefined;
        try {
          const opts = this.ctx.opts;
          if (opts.partial && listed?.has(original)) {
            const target = dir.at(original);
            // A --partial-dir inside the destination is reached through handles too.
            const inTree = opts.partialDir ? this.partialDirInTree(rel) : undefined;
            if (inTree !== undefined) partialDir = await this.tree!.dir(inTree).catch(missingAsUndefined);
            const keepAs = !opts.partialDir ? target : partialDir ? partialDir.at(original) : inTree === undefined ? this.partialPathOf(dir.shown(original)) : undefined;
            const tst = await lstatAt(temp);
            const kst = keepAs === undefined ? undefined : await lstatAt(keepAs);
            if (tst && tst.isFile() && tst.size > 0n && (!kst || (kst.isFile() && kst.size < tst.size))) {
              let dest = keepAs;
              if (inTree !== undefined && !partialDir) {
                partialDir = await this.tree!.makeDirs(inTree);
                dest = partialDir.at(original);
              } else if (opts.partialDir && inTree === undefined) {
                await mkdir(dirname(keepAs!), { recursive: true });
              }
              await renameAt(temp, dest!);
              // Lookups made ahead of this rename are stale now.
              this.statAhead.clear();
              continue;
            }
          }
          await unlinkAt(temp);
        } catch {
          // Not ours to fight over: leave it.
        } finally {
          partialDir?.release();
        }
      }
    } finally {
      dir.release();
    }
  }

  /**
   * The --partial-dir of directory `rel`, relative to the destination root, when it is a
   * relative path that stays inside the destination; undefined otherwise (an absolute one is
   * the user's own path).
   */
  private partialDirInTree(rel: string): string | undefined {
    const dir = this.ctx.opts.partialDir;
    if (!dir || isAbsolute(dir)) return undefined;
    const full = posix.join(rel, dir);
    return full === '..' || full.startsWith('../') ? undefined : full;
  }

  /** The --partial-dir file of `shown` (a user-visible path) outside the destination tree. */
  private partialPathOf(shown: string): string {
    const dir = this.ctx.opts.partialDir!;
    return isAbsolute(dir) ? join(dir, basename(shown)) : join(dirname(shown), dir, basename(shown));
  }

  /** Where the --partial-dir file of the entry at `place` lives. */
  private partialSpotOf(place: Place): PartialSpot {
    const inTree = this.partialDirInTree(place.dir.rel);
    return inTree !== undefined ? { dir: inTree, name: place.name } : { path: this.partialPathOf(place.shown) };
  }

  /**
   * Runs `fn` on the path of a partial file. In the destination tree that is a handle path in the
   * partial dir's own no-follow handle (the dir is made first when `create`; a symlink in its
   * place fails with ENOTDIR); outside, the user's path.
   */
  private async atPartial<T>(spot: PartialSpot, create: boolean, fn: (path: string) => Promise<T>): Promise<T> {
    if ('path' in spot) {
      if (create) await mkdir(dirname(spot.path), { recursive: true });
      return fn(spot.path);
    }
    if (!this.tree) throw new DeltaSyncError('ERR_IO', 'destination tree not open');
    const dir = create ? await this.tree.makeDirs(spot.dir) : await this.tree.dir(spot.dir);
    try {
      return await fn(dir.at(spot.name));
    } finally {
      dir.release();
    }
  }

  /**
   * Opens a request's basis again for the patch: no-follow, a regular file; the caller checks it
   * is still the file the signature was made from.
   */
  private async openBasis(out: Outstanding): Promise<FdHandle> {
    const opened = out.basisFrom === 'partial' && out.partial ? await this.atPartial(out.partial, false, openRegularForRead) : await openRegularForRead(out.target);
    return opened.fh;
  }

  private async doSymlink(e: FileEntry, place: Place, st: BigIntStats | undefined): Promise<void> {
    const opts = this.ctx.opts;
    const target = place.target;
    const linkTarget = e.linkTarget!;
    if (st && isType(st, constants.S_IFLNK)) {
      const current = await readlinkAt(target);
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
      if (!(await this.clearWay(e, place, st))) return;
    }
    if (!opts.dryRun) {
      const temp = tempPathFor(target);
      await symlinkAt(linkTarget, temp);
      try {
        await applyToPath(temp, e, { time: opts.times, perms: false, owner: wantOwner(opts), group: wantGroup(opts, e.gid) });
        await renameAt(temp, target);
      } catch (err) {
        await unlinkAt(temp).catch(() => undefined);
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

  private async doSpecial(e: FileEntry, place: Place, st: BigIntStats | undefined): Promise<void> {
    const opts = this.ctx.opts;
    const target = place.target;
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
      const mode = targetPerms(e, opts, undefined) & 0o777;
      if (fmt === constants.S_IFIFO) {
        await mknodAt(place.dir, basename(temp), { kind: 'p', mode });
      } else {
        const rdev = e.rdev ?? 0;
        const major = Math.floor(rdev / 256) & 0xfff;
        const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
        await mknodAt(place.dir, basename(temp), { kind: fmt === constants.S_IFBLK ? 'b' : 'c', mode, major, minor });
      }
      try {
        await applyToPath(temp, e, { time: opts.times, perms: opts.perms, owner: wantOwner(opts), group: wantGroup(opts, e.gid) });
        if (st && isType(st, constants.S_IFDIR)) {
          if (!(await this.clearWay(e, place, st))) {
            await unlinkAt(temp);
            return;
          }
        }
        await renameAt(temp, target);
      } catch (err) {
        await unlinkAt(temp).catch(() => undefined);
        throw err;
      }
    }
    this.ctx.sink.item({ path: e.path, type, update: 'create', created: !st, checksum: !!st });
  }

  private async doFile(index: number, e: FileEntry, place: Place, st: BigIntStats | undefined): Promise<void> {
    const opts = this.ctx.opts;
    const target = place.target;
    if (st && isType(st, constants.S_IFDIR)) {
      if (!(await this.clearWay(e, place, st))) return;
      st = undefined;
    }
    const isFile = st !== undefined && isType(st, constants.S_IFREG);
    if (st && !isFile) {
      // A symlink, FIFO ... where the file goes: the rename replaces it (in place: remove it).
      if (opts.inplace && !opts.dryRun) await unlinkAt(target);
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
    if (opts.partialDir) out.partial = this.partialSpotOf(place);
    // out.target names the directory by its descriptor: keep that open until the file is settled.
    await this.holdDirectory(index, place.dir);
    await this.request(out, st);
  }

  /** Keeps a lease on `dir` until the request of entry `index` is released. */
  private async holdDirectory(index: number, dir: DirHandle): Promise<void> {
    if (!this.tree || dir === NO_DIR) return;
    const lease = await this.tree.dir(dir.rel);
    this.filePins.get(index)?.release();
    this.filePins.set(index, lease);
  }

  private async sameChecksum(target: string, e: FileEntry): Promise<boolean> {
    if (!e.checksum) return false;
    let fh: FdHandle | undefined;
    try {
      // Reads what is at the name now, never a file that a symlink swapped in since points to;
      // O_NONBLOCK so that a FIFO swapped in cannot hang the run.
      fh = await openNoFollow(target, constants.O_RDONLY | constants.O_NONBLOCK);
      return (await fileChecksum(`/proc/self/fd/${fh.fd}`, this.ctx.opts.checksumChoice)).equals(e.checksum);
    } catch {
      return false;
    } finally {
      await fh?.close().catch(() => undefined);
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
    let basisFrom: 'target' | 'partial' | undefined;
    let basisStat: BigIntStats | undefined;
    // One no-follow descriptor of the basis, checked to be a regular file, serves its stat, the
    // cache lookup and the read for the signature: no path is resolved again in between.
    let basisFh: FdHandle | undefined;
    // Only a delta reads its basis (--append takes the lstat; -W and a whole redo need nothing).
    const deltaPossible = !opts.wholeFile && !(out.mode === RequestMode.WHOLE && fullStrong) && !(opts.append !== 'no' && !fullStrong);
    try {
      if (out.partial && !opts.inplace && deltaPossible) {
        const opened = await this.atPartial(out.partial, false, openRegularForRead).catch(() => undefined);
        if (opened) {
          basisFh = opened.fh;
          basisStat = opened.st;
          basisFrom = 'partial';
        }
      }
      if (basisFrom === undefined && st && isType(st, constants.S_IFREG)) {
        basisFrom = 'target';
        // An unreadable (or since replaced) file keeps its lstat: --append needs no read, and a
        // delta without a readable basis goes whole below.
        basisStat = st;
        const opened = deltaPossible ? await openRegularForRead(out.target).catch(() => undefined) : undefined;
        if (opened) {
          basisFh = opened.fh;
          basisStat = opened.st;
        }
      }
      let basisSize = basisStat ? Number(basisStat.size) : 0;
      let sig: Buffer | undefined;
      if (opts.append !== 'no' && basisFrom === 'target' && !fullStrong) {
        out.mode = opts.append === 'verify' ? RequestMode.APPEND_VERIFY : RequestMode.APPEND;
        // The cached signature of the existing part seeds the appended file's entry (no read-back).
        const cached = basisSize > 0 ? await this.cachedSignature(out.target, basisStat!, false).catch(() => undefined) : undefined;
        if (cached && cached.strongLen === STRONG_FULL_LEN[cached.strong]) out.fullSig = cached;
      } else if (out.mode === RequestMode.WHOLE && fullStrong) {
        // A redo asked for the whole file.
      } else if (!opts.wholeFile && basisFrom !== undefined && basisSize > 0) {
        try {
          if (!basisFh) throw new Error('basis not readable');
          let full: Signature | undefined;
          if (basisSize <= SMALL_BASIS_BYTES && !opts.inplace) {
            // One read serves both the signature and, later, the patch.
            // Its size is known: one read, not readFile()'s fstat and growing buffer.
            out.basisData = await readAt(basisFh, 0, basisSize);
            full = await this.computeSignature(out.basisData, out.basisData.length);
          } else {
            full =
              (await this.cachedSignature(out.target, basisStat!, fullStrong)) ??
              (await this.computeSignature(descriptorPath(basisFh.fd), basisSize));
            // The grid stands for the file as stat'ed before its signature was read or looked up.
            out.basisStat = basisStat;
          }
          const size = full.fileSize ?? basisSize;
          const strongLen = fullStrong ? STRONG_FULL_LEN[opts.checksumChoice] : syncStrongLen(size, full.blockLen, opts.checksumChoice);
          // Full-length hashes are kept for the patch; the wire gets them cut to the sync length.
          if (full.strongLen === STRONG_FULL_LEN[full.strong]) out.fullSig = full;
          const wire = truncateStrong(full, Math.min(strongLen, full.strongLen));
          // A sparse signature is about a third of the bytes; a redo (fullStrong) after a failed
          // verification sends every full entry, so it cannot fail the same way again.
          const sparse = !fullStrong && wire.blockCount >= 2 * DEFAULT_ANCHOR_STRIDE && this.ctx.conn.shared('sig:sparse');
          sig = sparse ? SparseSignature.from(wire).toBuffer() : wire.toBuffer();
          basisSize = size;
          out.mode = RequestMode.DELTA;
        } catch {
          // An unreadable basis just means a whole-file transfer.
          out.mode = RequestMode.WHOLE;
          delete out.basisData;
          delete out.fullSig;
          delete out.basisStat;
        }
      } else {
        out.mode = RequestMode.WHOLE;
      }
      if (out.mode === RequestMode.DELTA) out.basisFrom = basisFrom;
      out.basisSize = out.mode === RequestMode.WHOLE ? 0 : basisSize;
      // The window counts a kept basis too: it stays in memory until its file is done.
      out.sigBytes = (sig?.length ?? 0) + (out.basisData?.length ?? 0) + (out.fullSig?.blocks.length ?? 0);
      return sig ? { out, sig } : { out };
    } finally {
      // The patch opens the basis again and checks it is still this file (checkBasisIdentity):
      // holding a descriptor per outstanding request could run into the descriptor limit.
      await basisFh?.close().catch(() => undefined);
    }
  }

  /** The basis signature with full-length strong sums (the same hashing; cut for the wire later). */
  private computeSignature(basis: string | Buffer, size: number): Promise<Signature> {
    const opts = this.ctx.opts;
    const blockLen = opts.blockSize || defaultBlockLen('deltasync', size);
    return signature(basis, { blockLen, strong: opts.checksumChoice, strongLen: STRONG_FULL_LEN[opts.checksumChoice] });
  }

  /**
   * The basis signature from the signature cache (no read of the basis), as stored: the caller
   * cuts its strong sums to the sync length (strong sums are prefixes of the block hash, so a
   * shorter one is exactly what computing it would give).
   */
  private async cachedSignature(basis: string, stats: BigIntStats, fullStrong: boolean): Promise<Signature | undefined> {
    const opts = this.ctx.opts;
    const size = Number(stats.size);
    // A redo (fullStrong) follows a failed verification: read the basis itself.
    if (!this.cache || fullStrong || size < SIG_CACHE_MIN_BYTES || opts.blockSize) return undefined;
    // Keyed on the identity of the file as opened (`stats`): the cache never stats a path itself.
    const cached = await this.cache
      .lookup(basis, { format: 'deltasync', strong: opts.checksumChoice, rolling: 'ds64' }, { similar: true, stats })
      .catch(() => undefined);
    if (!cached || cached.fileSize !== size) return undefined;
    if (cached.strongLen < syncStrongLen(size, cached.blockLen, opts.checksumChoice)) return undefined;
    this.summary.sigCacheHits++;
    return cached;
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
    const place = await this.placeOf(e);
    try {
      await this.holdDirectory(r.index, place.dir);
    } finally {
      place.dir.release();
    }
    const target = place.target;
    const st = await lstatAt(target);
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
    if (this.ctx.opts.partialDir) out.partial = this.partialSpotOf(place);
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
    const tree = this.tree;
    if (!tree) return;
    for (const index of this.dirIndexes) {
      this.checkFailed();
      const e = this.entries[index]!;
      if (!e.listed || this.newDirs.has(e.path)) continue;
      let dir: DirHandle;
      let names: string[];
      try {
        dir = await tree.dir(e.path);
      } catch (err) {
        this.error(ioError(err, this.shownOf(e), 'read directory').message, e.path);
        continue;
      }
      try {
        try {
          names = await readdirAt(dir.at('.'));
        } catch (err) {
          this.error(ioError(err, dir.shown(), 'read directory').message, e.path);
          continue;
        }
        names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        const listed = this.children.get(e.path);
        for (const name of names) {
          if (listed?.has(name) || name === partialName) continue;
          const rel = e.path === '.' ? name : `${e.path}/${name}`;
          await this.deleteTree(dir, name, rel);
        }
      } finally {
        dir.release();
      }
    }
  }

  /**
   * Deletes `name` in `parent` (contents first, each directory through its own no-follow
   * handle), reporting each item; protected names stay.
   */
  private async deleteTree(parent: DirHandle, name: string, rel: string): Promise<boolean> {
    const path = parent.at(name);
    const shown = parent.shown(name);
    let st: BigIntStats | undefined;
    try {
      st = await lstatAt(path);
    } catch (err) {
      this.error(ioError(err, shown, 'stat').message, rel);
      return false;
    }
    if (!st) return true;
    const isDir = isType(st, constants.S_IFDIR);
    if (this.receiverFilter.excluded(rel, isDir)) return false;
    const type: ItemType = isDir ? 'd' : isType(st, constants.S_IFLNK) ? 'L' : isType(st, constants.S_IFREG) ? 'f' : 'S';
    let emptied = true;
    if (isDir) {
      let dir: DirHandle | undefined;
      let names: string[] = [];
      try {
        dir = await this.tree!.dir(rel);
        names = await readdirAt(dir.at('.'));
      } catch (err) {
        dir?.release();
        this.error(ioError(err, shown, 'read directory').message, rel);
        return false;
      }
      try {
        names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        for (const child of names) emptied = (await this.deleteTree(dir, child, `${rel}/${child}`)) && emptied;
      } finally {
        dir.release();
      }
      if (!emptied) return false;
    }
    if (!this.ctx.opts.dryRun) {
      try {
        if (isDir) {
          await rmdirAt(path);
          this.tree!.forget(rel);
        } else {
          await unlinkAt(path);
        }
      } catch (err) {
        this.error(ioError(err, shown, 'delete').message, rel);
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
      let place: Place | undefined;
      try {
        place = await this.placeOf(e);
        const target = place.target;
        const st = await lstatAt(target);
        if (!st || !isType(st, constants.S_IFDIR)) continue;
        const createdPerms = this.createdDirPerms.get(index);
        const diff = diffAttrs(e, st, opts);
        if (createdPerms !== undefined && (Number(st.mode) & 0o7777) !== createdPerms) {
          await chmodNoFollow(target, createdPerms);
          diff.perms = false;
        }
        diff.owner = false;
        diff.group = false;
        if (diff.perms || diff.time) await applyToPath(target, e, diff);
      } catch (err) {
        this.error(ioError(err, this.shownOf(e), 'set attributes of').message, e.path);
      } finally {
        place?.dir.release();
      }
    }
  }
}
