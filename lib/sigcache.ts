// Receiver-side signature cache: the signature of a file the receiver wrote (or hashed) is kept
// on disk, keyed by the file's identity, so the next sync sends it without reading the file.
// Layout, entry format and the eviction scheme are documented in docs/SIGCACHE.md.
import { lstat, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { randomBytes } from './builtins.js';
import { DeltaSyncError } from './errors.js';
import { dropBytes } from './io.js';
import { native } from './native.js';
import type { NativeSignatureBuilder } from './native.js';
import type { BlockHashGrid, PatchEngine } from './patch.js';
import { MAX_SIGNATURE_BYTES, WEAK_WIDTH, blockCountFor, resolveSignatureParams } from './params.js';
import type { Format, RollingKind, SignatureOptions, SignatureParams, StrongKind } from './params.js';
import { Signature, signature as computeSignature } from './signature.js';

/**
 * What identifies one version of a file: if any field differs, a cached signature is stale.
 * Take it with `fs.stat(path, { bigint: true })` (nanosecond times).
 */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Options of {@link SignatureCache}. */
export interface SignatureCacheOptions {
  /** Cache directory (created on first store, mode 0700). Default {@link defaultCacheDir}(). */
  dir?: string;
  /** Bound on the entries' total size; least recently used entries go first. Default 1 GiB. */
  maxBytes?: number;
  /**
   * fsync each entry before renaming it into place, and an entry updated in place before its
   * header is written. Default true. Entries carry their own checksums (per chunk, and over the
   * header and chunk table), so without it a crash can only lose entries, never make a wrong
   * one trusted.
   */
  fsync?: boolean;
  /** Told about I/O problems in the cache (they never fail a lookup or a store). */
  onError?: (err: unknown) => void;
}

/** Options of {@link SignatureCache.lookup}. */
export interface LookupOptions {
  /** The file's stats from `fs.stat(path, { bigint: true })`, when the caller has them. */
  stats?: BigIntStats;
  /**
   * Take a cached signature with another block length (½..2× the default for the file's size)
   * or a longer strong sum, when `params` leaves those unset. Default false: exactly the
   * defaults. The sync receiver sets it (any such signature serves the sender equally well);
   * commands whose output must be reproducible (`deltasync signature`) don't.
   */
  similar?: boolean;
}

/** Counters of one {@link SignatureCache} instance, for --stats, tests and benchmarks. */
export interface SignatureCacheCounters {
  hits: number;
  misses: number;
  /** Entries found for the file but for an older version of it (removed). */
  stale: number;
  /** Entries that failed their checks (bad checksum, truncated, garbled; removed). */
  corrupt: number;
  stores: number;
  /** Stores that updated an existing entry in place (only changed chunks written). */
  updates: number;
  /** Entries removed to keep the cache under maxBytes. */
  evicted: number;
  /** Full scans of the cache directory (see docs/SIGCACHE.md, "Size bound"). */
  scans: number;
}

/** Default bound on the cache's size: 1 GiB (the signature of 1 GiB of data is ≈ 0.7 MiB). */
export const DEFAULT_CACHE_MAX_BYTES = 1024 * 1024 * 1024;

/**
 * The default cache directory: `$XDG_CACHE_HOME/deltasync/sig` when XDG_CACHE_HOME is set to an
 * absolute path (the XDG spec says to ignore relative ones), else `~/.cache/deltasync/sig`.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env['XDG_CACHE_HOME'];
  const base = xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  return join(base, 'deltasync', 'sig');
}

/** The identity fields of a BigIntStats. */
export function fileIdentity(stats: BigIntStats | FileIdentity): FileIdentity {
  const s = stats as FileIdentity;
  for (const field of ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'] as const) {
    if (typeof s[field] !== 'bigint') {
      throw new DeltaSyncError('ERR_USAGE', `signature cache: ${field} must be a bigint (use fs.stat(path, { bigint: true }))`);
    }
  }
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
}

function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

// ---- entry format (docs/SIGCACHE.md) ----

const ENTRY_MAGIC = 0x44535343; // "DSSC"
/** 2: raw block entries in checksummed chunks, updatable in place (1: one whole-entry checksum). */
const ENTRY_VERSION = 2;
/** Header fields, then the header checksum. */
const HEADER_FIELDS_LEN = 64;
const HEADER_LEN = HEADER_FIELDS_LEN + 16;
/** Per-chunk checksum: XXH3-128 of the chunk's bytes. */
const CHUNK_SUM_LEN = 16;
/** Chunks are at least this long and at most MAX_CHUNKS per entry (the table stays ≤ 16 KiB). */
const MIN_CHUNK_LEN = 4096;
const MAX_CHUNKS = 1024;
const MAX_ENTRY_LEN = HEADER_LEN + MAX_SIGNATURE_BYTES + MAX_CHUNKS * CHUNK_SUM_LEN;

const FORMAT_CODE: Record<Format, number> = { deltasync: 1, rdiff: 2 };
const STRONG_CODE: Record<StrongKind, number> = { xxh3: 1, md4: 2, blake2b: 3 };
const ROLLING_CODE: Record<RollingKind, number> = { ds64: 1, rollsum: 2, rabinkarp: 3 };

const ENTRY_NAME = /^[0-9a-f]{32}$/;
const SHARD_NAME = /^[0-9a-f]{2}$/;
const TEMP_PREFIX = '.tmp-';
/** A temp file older than this is a crashed writer's leftover. */
const TEMP_MAX_AGE_MS = 60 * 60 * 1000;
/** A prune lock older than this belongs to a crashed pruner. */
const LOCK_MAX_AGE_MS = 10 * 60 * 1000;
/** Eviction brings the total down to this fraction of maxBytes, so scans stay rare. */
const LOW_WATER = 0.8;
/** The usage log is folded into one record when it grows past this. */
const LOG_COMPACT_BYTES = 1024 * 1024;
const LOG_NAME = 'usage.log';
const LOCK_NAME = 'prune.lock';

/** Chunk length for an entries region of `entriesLen` bytes: a power of two, fixed by the length. */
function chunkLenFor(entriesLen: number): number {
  let c = MIN_CHUNK_LEN;
  while (c * MAX_CHUNKS < entriesLen) c *= 2;
  return c;
}

function chunkCountFor(entriesLen: number, chunkLen: number): number {
  return Math.ceil(entriesLen / chunkLen);
}

/** Size of an entry file whose entries region is `entriesLen` bytes. */
function entryFileLength(entriesLen: number, chunkLen: number): number {
  return HEADER_LEN + entriesLen + CHUNK_SUM_LEN * chunkCountFor(entriesLen, chunkLen);
}

/** The chunk table: XXH3-128 of each chunkLen-byte piece of `entries` (the last may be shorter). */
function chunkTable(entries: Buffer, chunkLen: number): Buffer {
  const count = chunkCountFor(entries.length, chunkLen);
  const table = Buffer.allocUnsafe(count * CHUNK_SUM_LEN);
  for (let c = 0; c < count; c++) {
    native.hash('xxh3', entries.subarray(c * chunkLen, Math.min(entries.length, (c + 1) * chunkLen))).copy(table, c * CHUNK_SUM_LEN);
  }
  return table;
}

/**
 * Header fields, 64 bytes: magic "DSSC" (4), version (1), format, strong, rolling (1 each),
 * blockLen, strongLen (u32 LE), dev, ino, size (u64 LE), mtime ns, ctime ns (i64 LE), entries
 * length, chunk length (u32 LE).
 */
function headerFields(id: FileIdentity, p: SignatureParams, entriesLen: number, chunkLen: number): Buffer {
  const h = Buffer.alloc(HEADER_FIELDS_LEN);
  h.writeUInt32BE(ENTRY_MAGIC, 0);
  h.writeUInt8(ENTRY_VERSION, 4);
  h.writeUInt8(FORMAT_CODE[p.format], 5);
  h.writeUInt8(STRONG_CODE[p.strong], 6);
  h.writeUInt8(ROLLING_CODE[p.rolling], 7);
  h.writeUInt32LE(p.blockLen, 8);
  h.writeUInt32LE(p.strongLen, 12);
  h.writeBigUInt64LE(BigInt.asUintN(64, id.dev), 16);
  h.writeBigUInt64LE(BigInt.asUintN(64, id.ino), 24);
  h.writeBigUInt64LE(BigInt.asUintN(64, id.size), 32);
  h.writeBigInt64LE(BigInt.asIntN(64, id.mtimeNs), 40);
  h.writeBigInt64LE(BigInt.asIntN(64, id.ctimeNs), 48);
  h.writeUInt32LE(entriesLen, 56);
  h.writeUInt32LE(chunkLen, 60);
  return h;
}

/** The whole 80-byte header: fields, then XXH3-128 of (fields ++ chunk table). */
function sealHeader(fields: Buffer, table: Buffer): Buffer {
  return Buffer.concat([fields, native.hash('xxh3', Buffer.concat([fields, table]))]);
}

/** Where an entry's parts lie, as its header says (not yet checked against the header checksum). */
interface EntryFrame {
  entriesLen: number;
  chunkLen: number;
  /** Offset and length of the chunk table. */
  tableAt: number;
  tableLen: number;
}

/**
 * Checks an entry's framing: magic, version, a canonical chunk length for the entries length,
 * and the file length. 'old-version' for an entry of an earlier format version.
 */
function entryFrame(header: Buffer, fileLength: number): EntryFrame | 'old-version' | undefined {
  if (header.length < HEADER_LEN || header.readUInt32BE(0) !== ENTRY_MAGIC) return undefined;
  const version = header.readUInt8(4);
  if (version !== ENTRY_VERSION) return version >= 1 && version < ENTRY_VERSION ? 'old-version' : undefined;
  const entriesLen = header.readUInt32LE(56);
  const chunkLen = header.readUInt32LE(60);
  if (entriesLen > MAX_SIGNATURE_BYTES || chunkLen !== chunkLenFor(entriesLen)) return undefined;
  if (fileLength !== entryFileLength(entriesLen, chunkLen)) return undefined;
  return { entriesLen, chunkLen, tableAt: HEADER_LEN + entriesLen, tableLen: CHUNK_SUM_LEN * chunkCountFor(entriesLen, chunkLen) };
}

/** Does the header checksum vouch for these header fields and this chunk table? */
function sealHolds(header: Buffer, table: Buffer): boolean {
  const fields = header.subarray(0, HEADER_FIELDS_LEN);
  return native.hash('xxh3', Buffer.concat([fields, table])).equals(header.subarray(HEADER_FIELDS_LEN, HEADER_LEN));
}

type Verdict =
  | { ok: true; signature: Signature }
  | { ok: false; why: 'stale' | 'corrupt' }
  | { ok: false; why: 'other-params' };

/** Which cached block/strong lengths a lookup takes (the kinds always match: they are in the name). */
type LengthsCheck = (blockLen: number, strongLen: number) => boolean;

/** Checks an entry read from disk against the file identity and the parameters asked for. */
function decodeEntry(buf: Buffer, id: FileIdentity, kinds: SignatureKinds, accepts: LengthsCheck): Verdict {
  const corrupt: Verdict = { ok: false, why: 'corrupt' };
  const frame = entryFrame(buf, buf.length);
  // An entry of an older format is as useless as one for an older file version.
  if (frame === 'old-version') return { ok: false, why: 'stale' };
  if (frame === undefined) return corrupt;
  const table = buf.subarray(frame.tableAt, frame.tableAt + frame.tableLen);
  if (!sealHolds(buf, table)) return corrupt;
  // Header checksum good: some writer sealed exactly this header. Is it for this version of the file?
  const fields = buf.subarray(0, HEADER_FIELDS_LEN);
  const blockLen = fields.readUInt32LE(8);
  const strongLen = fields.readUInt32LE(12);
  const params = { ...kinds, blockLen, strongLen };
  if (!headerFields(id, params, frame.entriesLen, frame.chunkLen).equals(fields)) return { ok: false, why: 'stale' };
  // Every chunk must be the one the sealed table names: a torn in-place update fails here.
  const entries = buf.subarray(HEADER_LEN, HEADER_LEN + frame.entriesLen);
  if (!chunkTable(entries, frame.chunkLen).equals(table)) return corrupt;
  let sig: Signature;
  try {
    sig = new Signature({ ...params, fileSize: kinds.format === 'deltasync' ? Number(id.size) : undefined, blocks: entries });
  } catch {
    return corrupt;
  }
  if (!signatureFits(sig, params, id.size)) return corrupt;
  if (!accepts(blockLen, strongLen)) return { ok: false, why: 'other-params' };
  return { ok: true, signature: sig };
}

/** Does `sig` have parameters `p` and describe a file of `size` bytes? */
function signatureFits(sig: Signature, p: SignatureParams, size: bigint): boolean {
  if (sig.format !== p.format || sig.blockLen !== p.blockLen || sig.strongLen !== p.strongLen) return false;
  if (sig.strong !== p.strong || sig.rolling !== p.rolling) return false;
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) return false;
  const n = Number(size);
  if (sig.fileSize !== undefined && sig.fileSize !== n) return false;
  return sig.blockCount === blockCountFor(n, sig.blockLen);
}

/** The parameters that pick an entry: one entry per file and (format, strong, rolling). */
export type SignatureKinds = Pick<SignatureParams, 'format' | 'strong' | 'rolling'>;

/** Entry file name: XXH3-128 of (dev, ino, format, strong, rolling). */
function entryName(id: FileIdentity, kinds: SignatureKinds): string {
  const key = Buffer.alloc(32);
  key.writeBigUInt64LE(BigInt.asUintN(64, id.dev), 0);
  key.writeBigUInt64LE(BigInt.asUintN(64, id.ino), 8);
  key.writeUInt8(FORMAT_CODE[kinds.format], 16);
  key.writeUInt8(STRONG_CODE[kinds.strong], 17);
  key.writeUInt8(ROLLING_CODE[kinds.rolling], 18);
  return native.hash('xxh3', key).toString('hex');
}

/**
 * Would a signature with parameters `candidate` do for a file of `size` bytes, asked for with
 * `options`? Kinds must be those asked for. Block and strong lengths must equal the ones asked
 * for (or their defaults for `size`) — unless `similar` is set and `options` leaves them unset:
 * then any block length within ½..2× the default and any strong length at least the default do.
 * (rsync's √size block length is a rule of thumb; a signature that is already there beats one
 * with the ideal length that costs a read of the whole file.)
 */
export function acceptableParams(
  candidate: SignatureParams,
  size: number,
  options?: SignatureOptions | SignatureParams,
  similar = false,
): boolean {
  const want = resolveSignatureParams(options, size);
  if (candidate.format !== want.format || candidate.strong !== want.strong || candidate.rolling !== want.rolling) return false;
  return lengthsCheck(want, options, similar)(candidate.blockLen, candidate.strongLen);
}

function lengthsCheck(want: SignatureParams, options: SignatureOptions | SignatureParams | undefined, similar: boolean): LengthsCheck {
  const fixedBlock = !similar || (options?.blockLen !== undefined && options.blockLen !== 0);
  const fixedStrong = !similar || (options?.strongLen !== undefined && options.strongLen !== 0);
  return (blockLen, strongLen) =>
    (fixedBlock ? blockLen === want.blockLen : blockLen * 2 >= want.blockLen && blockLen <= want.blockLen * 2) &&
    (fixedStrong ? strongLen === want.strongLen : strongLen >= want.strongLen);
}

function isEnoent(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

async function readExactly(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buf, filled, length - filled, position + filled);
    if (bytesRead === 0) throw new DeltaSyncError('ERR_TRUNCATED', `signature cache: entry ended at ${position + filled}`);
    filled += bytesRead;
  }
  return buf;
}

async function writeExactly(handle: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Options of {@link SignatureCache.store}. */
export interface StoreOptions {
  /**
   * The file version the new one was made from (the basis of a sync, as stat'ed before it was
   * patched). When the new file has another inode (an atomic rename), the entry recorded for
   * exactly that version is moved to the new file's name and updated in place instead of being
   * written whole. Not needed when the inode stays (`--inplace`): the file's own entry is used.
   */
  previous?: BigIntStats | FileIdentity;
}

interface ScannedEntry {
  path: string;
  size: number;
  lastUsedNs: bigint;
}

/**
 * A directory of signatures keyed by file identity and signature parameters.
 *
 * - {@link lookup} stats the file (it never opens it) and returns the cached signature when an
 *   entry exists for exactly this (device, inode, size, mtime ns, ctime ns) and these
 *   parameters; anything else is a miss, and a stale or damaged entry is removed.
 * - {@link store} records a signature the caller computed — typically the receiver, while
 *   writing the file, so it costs no extra read.
 * - {@link signature} is lookup-or-compute for callers that only have the file.
 *
 * Entries are checksummed and checked against the file's identity; a damaged or stale entry is
 * removed, never used (docs/SIGCACHE.md says what the identity check can and cannot see).
 * Cache I/O errors never reject: lookups miss, stores return false (see `onError`).
 * Safe to share between concurrent processes (docs/SIGCACHE.md).
 */
export class SignatureCache {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly fsync: boolean;
  private readonly onError: ((err: unknown) => void) | undefined;
  private readonly counters: SignatureCacheCounters = { hits: 0, misses: 0, stale: 0, corrupt: 0, stores: 0, updates: 0, evicted: 0, scans: 0 };
  private lastStampUs = 0;
  // Running view of the usage log: which log file, how far read, sum of its records.
  private logIno = -1;
  private logOffset = 0;
  private logSum = 0;
  private pruning: Promise<void> | undefined;

  constructor(options: SignatureCacheOptions = {}) {
    if (options === null || typeof options !== 'object') throw new DeltaSyncError('ERR_USAGE', 'signature cache options must be an object');
    const dir = options.dir ?? defaultCacheDir();
    if (typeof dir !== 'string' || dir === '') throw new DeltaSyncError('ERR_USAGE', 'signature cache dir must be a non-empty path');
    const maxBytes = options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new DeltaSyncError('ERR_USAGE', `signature cache maxBytes must be a positive integer, got ${String(maxBytes)}`);
    }
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.fsync = options.fsync ?? true;
    this.onError = options.onError;
  }

  /** A copy of this instance's counters. */
  get stats(): SignatureCacheCounters {
    return { ...this.counters };
  }

  /**
   * The cached signature of the file at `path`, or undefined. Only stats the file (give
   * `stats` to skip even that). `params` may be partial options: what is unset takes its
   * default for the file's size, as in `signature()` (lib/signature.ts); see
   * {@link LookupOptions.similar} for taking a signature with other block/strong lengths.
   */
  async lookup(path: string, params?: SignatureParams | SignatureOptions, options: LookupOptions = {}): Promise<Signature | undefined> {
    let st = options.stats;
    if (st === undefined) {
      try {
        st = await stat(path, { bigint: true });
      } catch (err) {
        if (!isEnoent(err)) this.report(err);
        this.counters.misses++;
        return undefined;
      }
    }
    if (!st.isFile()) {
      this.counters.misses++;
      return undefined;
    }
    const id = fileIdentity(st);
    if (id.size > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.counters.misses++;
      return undefined;
    }
    const want = resolveSignatureParams(params, Number(id.size));
    const sig = await this.read(id, want, lengthsCheck(want, params, options.similar === true));
    if (sig) this.counters.hits++;
    else this.counters.misses++;
    return sig;
  }

  /**
   * Records `sig` as the signature of the file version `stats` describes. Take `stats` with
   * `fs.stat(path, { bigint: true })` after the file's last write *and* its last metadata change
   * (rename, chmod, utimes all change ctime); omitted, the path is stat'ed now. Resolves false
   * when nothing was stored: the signature does not describe a file of that size (the file
   * changed meanwhile), it is larger than maxBytes, or the cache could not be written.
   *
   * When the file already has an intact entry for an older version with the same parameters
   * (an `--inplace` sync keeps the inode), or `options.previous` names the version it replaced
   * (an atomic sync gives a new inode), that entry is updated in place: only the chunks of block
   * entries that changed, the chunk table and the header are written (docs/SIGCACHE.md).
   */
  async store(path: string, stats: BigIntStats | FileIdentity | undefined, sig: Signature, options: StoreOptions = {}): Promise<boolean> {
    if (!(sig instanceof Signature)) throw new DeltaSyncError('ERR_USAGE', 'signature cache: store needs a Signature');
    let id: FileIdentity;
    if (stats === undefined) {
      try {
        const st = await stat(path, { bigint: true });
        if (!st.isFile()) return false;
        id = fileIdentity(st);
      } catch (err) {
        this.report(err);
        return false;
      }
    } else {
      id = fileIdentity(stats);
    }
    const previous = options.previous === undefined ? undefined : fileIdentity(options.previous);
    const p = sig.params;
    if (!signatureFits(sig, p, id.size)) return false;
    const entries = sig.blocks;
    const chunkLen = chunkLenFor(entries.length);
    const entryBytes = entryFileLength(entries.length, chunkLen);
    if (entryBytes > this.maxBytes || entryBytes > MAX_ENTRY_LEN) return false;
    const table = chunkTable(entries, chunkLen);
    const header = sealHeader(headerFields(id, p, entries.length, chunkLen), table);
    const name = entryName(id, p);
    const moved = { replaced: 0 };
    let grown: number | undefined;
    try {
      grown = await this.updateEntry(name, id, p, previous, { header, entries, table, chunkLen }, moved);
    } catch (err) {
      // Possibly half-written: the full write below replaces it (and a reader would refuse it).
      this.report(err);
    }
    try {
      if (grown === undefined) {
        const replaced = await this.writeEntry(name, [header, entries, table]);
        grown = entryBytes - replaced;
      } else {
        this.counters.updates++;
      }
      this.counters.stores++;
      await this.account(grown - moved.replaced);
      return true;
    } catch (err) {
      this.report(err);
      if (moved.replaced > 0) await this.account(-moved.replaced).catch(() => undefined);
      return false;
    }
  }

  /**
   * Removes the entry of the file (dev, ino of `stats`) for these kinds (defaults: the
   * deltasync format's), if any — e.g. after a whole-file hash mismatch, or for a basis that a
   * sync just replaced by a new inode.
   */
  async delete(stats: BigIntStats | FileIdentity, kinds?: Partial<SignatureKinds>): Promise<void> {
    const id = fileIdentity(stats);
    const k = resolveSignatureParams(kinds ?? {}, 0);
    await this.remove(this.entryPath(entryName(id, k)));
  }

  /**
   * Lookup-or-compute: the cached signature of `path`, else computed (one read of the file) and
   * stored when the file did not change while it was read and was not modified within the last
   * 2 seconds (a change in the same timestamp tick would go unseen).
   */
  async signature(path: string, options?: SignatureOptions, similar = false): Promise<{ signature: Signature; cached: boolean }> {
    let before: BigIntStats | undefined;
    try {
      before = await stat(path, { bigint: true });
    } catch {
      before = undefined; // computeSignature reports the problem with the path
    }
    if (before?.isFile()) {
      const hit = await this.lookup(path, options, { stats: before, similar });
      if (hit) return { signature: hit, cached: true };
    }
    const params = before?.isFile() ? resolveSignatureParams(options, Number(before.size)) : options;
    const sig = await computeSignature(path, params);
    if (before?.isFile()) {
      try {
        const after = await stat(path, { bigint: true });
        const settled = BigInt(Date.now()) * 1_000_000n - after.ctimeNs > 2_000_000_000n;
        if (sameIdentity(fileIdentity(before), fileIdentity(after)) && settled) await this.store(path, after, sig);
      } catch (err) {
        this.report(err);
      }
    }
    return { signature: sig, cached: false };
  }

  /**
   * Scans the cache and evicts least recently used entries until the total is at most 80% of
   * maxBytes (nothing when already under maxBytes and `force` is false). Also removes temp
   * files left by crashed writers. Runs by itself after stores push the total over maxBytes.
   */
  async prune(force = false): Promise<{ bytes: number; entries: number }> {
    const result = await this.scanAndEvict(force ? 0 : this.maxBytes);
    return result ?? { bytes: NaN, entries: NaN };
  }

  /** Total size and number of entries now on disk (a full scan; for tests and diagnostics). */
  async usage(): Promise<{ bytes: number; entries: number }> {
    const entries = await this.scan(false);
    return { bytes: entries.reduce((a, e) => a + e.size, 0), entries: entries.length };
  }

  // ---- internals ----

  private report(err: unknown): void {
    if (this.onError) {
      try {
        this.onError(err);
      } catch {
        // a failing listener must not break the cache
      }
    }
  }

  private entryPath(name: string): string {
    return join(this.dir, name.slice(0, 2), name);
  }

  /** Strictly increasing (within this process) time stamp, for LRU order by entry mtime. */
  private stamp(): number {
    const us = Math.max(Date.now() * 1000, this.lastStampUs + 1);
    this.lastStampUs = us;
    return us / 1e6;
  }

  private async read(id: FileIdentity, kinds: SignatureKinds, accepts: LengthsCheck): Promise<Signature | undefined> {
    const path = this.entryPath(entryName(id, kinds));
    let handle: FileHandle | undefined;
    let verdict: Verdict;
    let size = 0;
    try {
      handle = await open(path, 'r');
      size = (await handle.stat()).size;
      if (size > MAX_ENTRY_LEN) {
        verdict = { ok: false, why: 'corrupt' };
      } else {
        const buf = Buffer.allocUnsafe(size);
        let filled = 0;
        while (filled < size) {
          const { bytesRead } = await handle.read(buf, filled, size - filled, filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        verdict = decodeEntry(buf.subarray(0, filled), id, kinds, accepts);
      }
      if (verdict.ok) {
        // Last use = entry mtime; eviction takes the oldest first.
        const t = this.stamp();
        await handle.utimes(t, t).catch((err: unknown) => this.report(err));
        return verdict.signature;
      }
    } catch (err) {
      if (!isEnoent(err)) this.report(err);
      return undefined;
    } finally {
      await handle?.close().catch(() => undefined);
    }
    // Another parameter set's entry is still right for its askers: keep it.
    if (verdict.why === 'other-params') return undefined;
    this.counters[verdict.why]++;
    await this.remove(path);
    return undefined;
  }

  /**
   * Updates an existing entry in place to `next` (docs/SIGCACHE.md, "Updating in place"): the
   * entry at `name`, or the entry of `previous` renamed to `name` first. Writes the chunks whose
   * checksums differ from the entry's sealed table, the new table, truncates, fsyncs, and writes
   * the header last. Returns the change of the entry's size, or undefined when there is no
   * entry it can update (missing, damaged, other parameters or chunk length, or already for
   * this very file version: that store replaces it whole, atomically, as readers may be using it).
   * `moved.replaced` gets the size of an entry that the rename replaced.
   */
  private async updateEntry(
    name: string,
    id: FileIdentity,
    p: SignatureParams,
    previous: FileIdentity | undefined,
    next: { header: Buffer; entries: Buffer; table: Buffer; chunkLen: number },
    moved: { replaced: number },
  ): Promise<number | undefined> {
    const target = this.entryPath(name);
    const source = previous === undefined ? target : this.entryPath(entryName(previous, p));
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: write only to a regular entry file (the rename-over path never followed links either).
      handle = await open(source, fsConstants.O_RDWR | fsConstants.O_NOFOLLOW);
    } catch (err) {
      if (!isEnoent(err) && (err as NodeJS.ErrnoException).code !== 'ELOOP') this.report(err);
      return undefined;
    }
    try {
      const st = await handle.stat();
      if (!st.isFile() || st.size < HEADER_LEN || st.size > MAX_ENTRY_LEN) return undefined;
      const header = await readExactly(handle, 0, HEADER_LEN);
      const frame = entryFrame(header, st.size);
      if (frame === undefined || frame === 'old-version') return undefined;
      const oldTable = await readExactly(handle, frame.tableAt, frame.tableLen);
      if (!sealHolds(header, oldTable)) return undefined;
      const fields = header.subarray(0, HEADER_FIELDS_LEN);
      const wanted = headerFields(id, p, frame.entriesLen, frame.chunkLen);
      // Kinds and lengths (bytes 0..16) must match, and the chunk grid with them.
      if (!fields.subarray(0, 16).equals(wanted.subarray(0, 16)) || frame.chunkLen !== next.chunkLen) return undefined;
      const sameVersion = fields.subarray(16, 56).equals(wanted.subarray(16, 56));
      if (sameVersion) return undefined;
      if (previous !== undefined && source !== target) {
        // Another inode's entry: only the one recorded for exactly the replaced version.
        if (!fields.subarray(16, 56).equals(headerFields(previous, p, 0, 0).subarray(16, 56))) return undefined;
        let replaced = 0;
        try {
          replaced = (await lstat(target)).size;
        } catch {
          replaced = 0;
        }
        await mkdir(join(this.dir, name.slice(0, 2)), { recursive: true, mode: 0o700 });
        await rename(source, target);
        moved.replaced = replaced;
      }
      // Body: the chunks whose checksum changed (or that are new), runs of them in one write.
      const { entries, table, chunkLen } = next;
      const count = table.length / CHUNK_SUM_LEN;
      const oldCount = oldTable.length / CHUNK_SUM_LEN;
      const same = (c: number) =>
        c < oldCount && table.subarray(c * CHUNK_SUM_LEN, (c + 1) * CHUNK_SUM_LEN).equals(oldTable.subarray(c * CHUNK_SUM_LEN, (c + 1) * CHUNK_SUM_LEN));
      for (let c = 0; c < count; ) {
        if (same(c)) {
          c++;
          continue;
        }
        let end = c + 1;
        while (end < count && !same(end)) end++;
        await writeExactly(handle, entries.subarray(c * chunkLen, Math.min(entries.length, end * chunkLen)), HEADER_LEN + c * chunkLen);
        c = end;
      }
      await writeExactly(handle, table, HEADER_LEN + entries.length);
      const length = HEADER_LEN + entries.length + table.length;
      if (length < st.size) await handle.truncate(length);
      // The body must be on disk before a header that vouches for it can be.
      if (this.fsync) await handle.datasync();
      await writeExactly(handle, next.header, 0);
      const t = this.stamp();
      await handle.utimes(t, t);
      return length - st.size;
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /** Writes an entry: temp file in the shard, fsync, rename over. Returns the replaced size. */
  private async writeEntry(name: string, parts: Buffer[]): Promise<number> {
    const shard = join(this.dir, name.slice(0, 2));
    await mkdir(shard, { recursive: true, mode: 0o700 });
    const temp = join(shard, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o600);
    let renamed = false;
    try {
      let bufs = parts;
      while (bufs.length > 0) {
        const { bytesWritten } = await handle.writev(bufs);
        bufs = dropBytes(bufs, bytesWritten);
      }
      const t = this.stamp();
      await handle.utimes(t, t);
      if (this.fsync) await handle.sync();
      await handle.close();
      let replaced = 0;
      const target = join(shard, name);
      try {
        replaced = (await lstat(target)).size;
      } catch {
        replaced = 0;
      }
      await rename(temp, target);
      renamed = true;
      return replaced;
    } finally {
      if (!renamed) {
        await handle.close().catch(() => undefined);
        await unlink(temp).catch(() => undefined);
      }
    }
  }

  private async remove(path: string): Promise<void> {
    let size = 0;
    try {
      size = (await lstat(path)).size;
      await unlink(path);
    } catch (err) {
      if (!isEnoent(err)) this.report(err);
      return;
    }
    await this.account(-size).catch((err: unknown) => this.report(err));
  }

  /**
   * Appends a size change to the shared usage log and updates this process's view of the total;
   * prunes when the total passes maxBytes (or is unknown because the log is new).
   */
  private async account(delta: number): Promise<void> {
    const logPath = join(this.dir, LOG_NAME);
    let needScan = false;
    let handle: FileHandle | undefined;
    try {
      handle = await open(logPath, 'a+', 0o600);
      const record = Buffer.alloc(8);
      record.writeBigInt64LE(BigInt(delta));
      await handle.write(record, 0, 8, null); // O_APPEND: one 8-byte write lands whole
      const st = await handle.stat();
      if (st.ino !== this.logIno) {
        this.logIno = st.ino;
        this.logOffset = 0;
        this.logSum = 0;
        // Only our record: nobody has counted what is already in the directory.
        needScan = st.size <= 8;
      }
      const end = st.size - (st.size % 8);
      if (end > this.logOffset) {
        const buf = Buffer.allocUnsafe(end - this.logOffset);
        let filled = 0;
        while (filled < buf.length) {
          const { bytesRead } = await handle.read(buf, filled, buf.length - filled, this.logOffset + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        for (let at = 0; at + 8 <= filled; at += 8) this.logSum += Number(buf.readBigInt64LE(at));
        this.logOffset += filled - (filled % 8);
      }
      if (st.size > LOG_COMPACT_BYTES) needScan = true;
    } finally {
      await handle?.close().catch(() => undefined);
    }
    if (needScan || this.logSum > this.maxBytes) await this.pruneOnce();
  }

  /** One prune at a time per instance; concurrent callers wait for the running one. */
  private async pruneOnce(): Promise<void> {
    if (!this.pruning) {
      this.pruning = this.scanAndEvict(this.maxBytes)
        .then(() => undefined)
        .catch((err: unknown) => this.report(err))
        .finally(() => {
          this.pruning = undefined;
        });
    }
    await this.pruning;
  }

  /**
   * Under the prune lock: scans, evicts down to LOW_WATER × maxBytes when the total exceeds
   * `threshold`, and restarts the usage log at the total found. Undefined when another process
   * holds the lock (it is doing the same work).
   */
  private async scanAndEvict(threshold: number): Promise<{ bytes: number; entries: number } | undefined> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const lockPath = join(this.dir, LOCK_NAME);
    if (!(await this.acquireLock(lockPath))) return undefined;
    try {
      this.counters.scans++;
      const entries = await this.scan(true);
      let total = entries.reduce((a, e) => a + e.size, 0);
      if (total > threshold) {
        const target = Math.floor(this.maxBytes * LOW_WATER);
        entries.sort((a, b) => (a.lastUsedNs < b.lastUsedNs ? -1 : a.lastUsedNs > b.lastUsedNs ? 1 : 0));
        for (const e of entries) {
          if (total <= target) break;
          try {
            await unlink(e.path);
            this.counters.evicted++;
          } catch (err) {
            if (!isEnoent(err)) {
              this.report(err);
              continue;
            }
          }
          total -= e.size;
        }
      }
      await this.resetLog(total);
      return { bytes: total, entries: entries.length };
    } finally {
      await unlink(lockPath).catch(() => undefined);
    }
  }

  private async acquireLock(lockPath: string): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const h = await open(lockPath, 'wx', 0o600);
        await h.close();
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      try {
        const st = await stat(lockPath);
        if (Date.now() - st.mtimeMs < LOCK_MAX_AGE_MS) return false;
        await unlink(lockPath); // a crashed pruner's lock
      } catch (err) {
        if (!isEnoent(err)) throw err;
      }
    }
    return false;
  }

  /** Starts a new usage log holding one record: the total just counted. */
  private async resetLog(total: number): Promise<void> {
    const logPath = join(this.dir, LOG_NAME);
    const temp = join(this.dir, `${TEMP_PREFIX}log-${process.pid}-${randomBytes(6).toString('hex')}`);
    const record = Buffer.alloc(8);
    record.writeBigInt64LE(BigInt(total));
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.write(record, 0, 8, 0);
    } finally {
      await handle.close();
    }
    await rename(temp, logPath);
    const st = await stat(logPath).catch(() => undefined);
    // Adopt the new log as read up to its first record (appends after it get read next time).
    if (st) {
      this.logIno = st.ino;
      this.logOffset = 8;
      this.logSum = total;
    }
  }

  /** Lists entries (and, when `sweep`, removes old temp files). */
  private async scan(sweep: boolean): Promise<ScannedEntry[]> {
    const out: ScannedEntry[] = [];
    let shards: string[];
    try {
      shards = (await readdir(this.dir)).filter((n) => SHARD_NAME.test(n));
    } catch (err) {
      if (isEnoent(err)) return out;
      throw err;
    }
    const now = Date.now();
    if (sweep) await this.sweepTemp(this.dir, now);
    for (const shard of shards) {
      const shardDir = join(this.dir, shard);
      let names: string[];
      try {
        names = await readdir(shardDir);
      } catch (err) {
        if (!isEnoent(err)) this.report(err);
        continue;
      }
      for (const name of names) {
        const path = join(shardDir, name);
        if (ENTRY_NAME.test(name) && name.startsWith(shard)) {
          try {
            const st = await lstat(path, { bigint: true });
            if (st.isFile()) out.push({ path, size: Number(st.size), lastUsedNs: st.mtimeNs });
          } catch (err) {
            if (!isEnoent(err)) this.report(err);
          }
        } else if (sweep && name.startsWith(TEMP_PREFIX)) {
          await this.removeIfOld(path, now);
        }
      }
    }
    return out;
  }

  private async sweepTemp(dir: string, now: number): Promise<void> {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(TEMP_PREFIX)) await this.removeIfOld(join(dir, name), now);
    }
  }

  private async removeIfOld(path: string, now: number): Promise<void> {
    try {
      const st = await lstat(path);
      if (now - st.mtimeMs > TEMP_MAX_AGE_MS) await unlink(path);
    } catch (err) {
      if (!isEnoent(err)) this.report(err);
    }
  }
}

/** Bytes handed to the native builder per call while recording. */
const RECORD_BATCH_BYTES = 8 * 1024 * 1024;

/** The basis a {@link SignatureRecorder} may reuse entries from. */
export interface RecorderBasis {
  /** The basis's signature (from the cache, or computed for this sync). */
  signature: Signature;
  /** The basis's size (the rdiff format does not record it). */
  size: number;
}

/**
 * Builds the signature of a file while it is being written from a basis and a delta, without
 * reading it back: the receiver's way to fill the cache at no extra read.
 *
 * Feed the new file front to back: {@link data} with bytes the caller has in memory (literals,
 * or basis bytes it copied through user space) and {@link copied} for basis ranges that went
 * into the file without passing through JavaScript (copy_file_range, reflink, or left in place by
 * --inplace). A block of the new file that a copy covers whole, at a basis offset that is a
 * block boundary, with the basis signature's parameters, has the basis block's entry: it is
 * reused. Any other block that data did not cover whole is a *hole*: {@link finish} reads it
 * back from the new file. {@link reusableSpan} tells the caller beforehand which part of a copy
 * will be reused, so it can put the rest through user space and hand the bytes over instead.
 *
 * For a one-byte append or an in-place edit almost every block is reused; for a one-byte insert
 * at the front none is (every block moved), so the caller should copy through user space.
 */
export class SignatureRecorder {
  readonly params: SignatureParams;
  /** Size of the new file. */
  readonly size: number;
  private readonly entrySize: number;
  private readonly blockCount: number;
  private readonly entries: Buffer;
  private readonly state: Uint8Array; // per block: 0 pending, 1 filled, 2 hole
  private readonly basis: RecorderBasis | undefined;
  private readonly builder: NativeSignatureBuilder;
  private pos = 0;
  // The block being assembled from data(): its parts, and whether all its bytes so far came from data.
  private partial: Buffer[] = [];
  private partialLen = 0;
  private partialClean = true;
  // Whole blocks waiting for the builder: their bytes and first block indices.
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private batchBlocks: number[] = [];
  private lastBlockFed = false;
  private finished = false;
  /** Entries taken from the basis signature. */
  reusedBlocks = 0;

  /**
   * @param params parameters of the signature to build (see {@link SignatureRecorder.paramsFor})
   * @param size size of the new file
   * @param basis the basis signature, to reuse its entries
   */
  constructor(params: SignatureParams, size: number, basis?: RecorderBasis) {
    this.params = resolveSignatureParams(params, size);
    if (!Number.isSafeInteger(size) || size < 0) throw new DeltaSyncError('ERR_USAGE', `recorder: size must be a non-negative integer, got ${String(size)}`);
    this.size = size;
    this.entrySize = WEAK_WIDTH[this.params.rolling] + this.params.strongLen;
    this.blockCount = blockCountFor(size, this.params.blockLen);
    if (this.blockCount * this.entrySize > MAX_SIGNATURE_BYTES) {
      throw new DeltaSyncError('ERR_BAD_PARAMS', `signature would exceed ${MAX_SIGNATURE_BYTES} bytes: use a larger block length than ${this.params.blockLen}`);
    }
    this.entries = Buffer.alloc(this.blockCount * this.entrySize);
    this.state = new Uint8Array(this.blockCount);
    const b = basis?.signature;
    const compatible =
      b !== undefined && b.blockLen === this.params.blockLen && b.strongLen === this.params.strongLen &&
      b.strong === this.params.strong && b.rolling === this.params.rolling &&
      Number.isSafeInteger(basis!.size) && blockCountFor(basis!.size, b.blockLen) === b.blockCount;
    this.basis = compatible ? basis : undefined;
    this.builder = new native.SignatureBuilder({
      blockLen: this.params.blockLen,
      strongLen: this.params.strongLen,
      strong: this.params.strong,
      rolling: this.params.rolling,
    });
  }

  /**
   * Parameters for recording a new file of `newSize` bytes: the basis signature's when they are
   * acceptable for that size ({@link acceptableParams} with `similar`), so its entries can be
   * reused and the next lookup (with `similar`) finds them; else the defaults for `newSize`.
   */
  static paramsFor(newSize: number, basis: Signature | undefined, options?: SignatureOptions): SignatureParams {
    if (basis && acceptableParams(basis.params, newSize, options, true)) return basis.params;
    return resolveSignatureParams(options, newSize);
  }

  /** Bytes of the new file accounted for so far. */
  get position(): number {
    return this.pos;
  }

  /** Bytes {@link finish} will read back (holes so far). */
  get holeBytes(): number {
    let n = 0;
    for (let k = 0; k < this.blockCount; k++) if (this.state[k] === 2) n += this.blockLength(k);
    return n;
  }

  /**
   * For a copy of `length` bytes from basis offset `basisOffset` at the current position: the
   * part [start, end) (relative to the copy) whose blocks will be reused. Bytes outside it are
   * hashed: copy them through user space and pass them to {@link data} to avoid reading them
   * back. start === end when nothing is reusable.
   */
  reusableSpan(basisOffset: number, length: number): { start: number; end: number } {
    const B = this.params.blockLen;
    let start = -1;
    let end = -1;
    for (let at = this.pos; at < this.pos + length; ) {
      const k = Math.floor(at / B);
      const blockEnd = Math.min(k * B + this.blockLength(k), this.pos + length);
      if (at === k * B && blockEnd === k * B + this.blockLength(k) && this.reusable(k, basisOffset + (at - this.pos))) {
        if (start < 0) start = at - this.pos;
        end = blockEnd - this.pos;
      } else if (start >= 0) {
        break; // reuse is one run: alignment holds for the whole copy or not at all
      }
      at = blockEnd;
    }
    return start < 0 ? { start: 0, end: 0 } : { start, end };
  }

  /** Bytes of the new file at the current position, in order. */
  async data(bytes: Uint8Array): Promise<void> {
    this.checkOpen(bytes.length);
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const B = this.params.blockLen;
    let off = 0;
    while (off < buf.length) {
      const k = Math.floor(this.pos / B);
      const blockStart = k * B;
      const L = this.blockLength(k);
      const inBlock = this.pos - blockStart;
      if (inBlock === 0 && this.partialLen === 0) {
        // Whole blocks straight from the caller's buffer (the short last block, if any, below).
        const fullBlocksLeft = this.blockLength(this.blockCount - 1) === B ? this.blockCount - k : this.blockCount - 1 - k;
        const whole = Math.min(Math.floor((buf.length - off) / B), fullBlocksLeft);
        if (whole > 0) {
          this.queue(buf.subarray(off, off + whole * B), k, whole);
          off += whole * B;
          this.pos += whole * B;
          continue;
        }
        if (k === this.blockCount - 1 && buf.length - off >= L) {
          this.queue(buf.subarray(off, off + L), k, 1);
          off += L;
          this.pos += L;
          continue;
        }
      }
      const take = Math.min(buf.length - off, L - inBlock);
      if (this.partialClean) {
        this.partial.push(buf.subarray(off, off + take));
        this.partialLen += take;
      }
      off += take;
      this.pos += take;
      if (inBlock + take === L) this.closeBlock(k);
    }
    if (this.batchBytes >= RECORD_BATCH_BYTES) await this.flush();
  }

  /** `length` bytes copied from basis offset `basisOffset` to the current position, unseen. */
  copied(basisOffset: number, length: number): void {
    this.checkOpen(length);
    if (!Number.isSafeInteger(basisOffset) || basisOffset < 0) throw new DeltaSyncError('ERR_USAGE', `recorder: bad basis offset ${String(basisOffset)}`);
    const B = this.params.blockLen;
    const end = this.pos + length;
    const delta = basisOffset - this.pos;
    // Reused entries go over in runs (consecutive blocks of both files), one copy per run.
    let runFrom = -1;
    let runBasis = -1;
    let runLen = 0;
    const flushRun = (): void => {
      if (runLen === 0) return;
      const e = this.entrySize;
      this.basis!.signature.blocks.copy(this.entries, runFrom * e, runBasis * e, (runBasis + runLen) * e);
      this.state.fill(1, runFrom, runFrom + runLen);
      this.reusedBlocks += runLen;
      runLen = 0;
    };
    try {
      while (this.pos < end) {
        const k = Math.floor(this.pos / B);
        const blockStart = k * B;
        const L = this.blockLength(k);
        const take = Math.min(end - this.pos, blockStart + L - this.pos);
        if (this.pos === blockStart && take === L && this.partialLen === 0 && this.reusable(k, this.pos + delta)) {
          const j = (this.pos + delta) / B;
          if (runLen > 0 && k === runFrom + runLen && j === runBasis + runLen) {
            runLen++;
          } else {
            flushRun();
            runFrom = k;
            runBasis = j;
            runLen = 1;
          }
        } else {
          flushRun();
          this.partialClean = false;
          if (this.pos - blockStart + take === L) this.closeBlock(k);
        }
        this.pos += take;
      }
    } finally {
      flushRun();
    }
  }

  /**
   * Completes the signature: hashes the queued blocks, reads the holes back through `readNew`
   * (offset and length in the new file; needed only when {@link holeBytes} > 0).
   */
  async finish(readNew?: (offset: number, length: number) => Promise<Uint8Array>): Promise<Signature> {
    if (this.finished) throw new DeltaSyncError('ERR_USAGE', 'recorder: already finished');
    if (this.pos !== this.size) throw new DeltaSyncError('ERR_USAGE', `recorder: ${this.pos} of ${this.size} bytes recorded`);
    this.finished = true;
    await this.flush();
    if (this.lastBlockFed) this.place(this.builder.final(), [this.blockCount - 1], 1);
    await this.fillHoles(readNew);
    return new Signature({
      ...this.params,
      fileSize: this.params.format === 'deltasync' ? this.size : undefined,
      blocks: this.entries,
    });
  }

  private checkOpen(length: number): void {
    if (this.finished) throw new DeltaSyncError('ERR_USAGE', 'recorder: already finished');
    if (!Number.isSafeInteger(length) || length < 0 || this.pos + length > this.size) {
      throw new DeltaSyncError('ERR_USAGE', `recorder: ${String(length)} more bytes at ${this.pos} exceed the file size ${this.size}`);
    }
  }

  private blockLength(k: number): number {
    return Math.min(this.params.blockLen, this.size - k * this.params.blockLen);
  }

  /** Can new block k take the basis entry of the block at basis offset `basisAt`? */
  private reusable(k: number, basisAt: number): boolean {
    const basis = this.basis;
    const B = this.params.blockLen;
    if (!basis || basisAt % B !== 0) return false;
    const j = basisAt / B;
    if (j >= basis.signature.blockCount) return false;
    return Math.min(B, basis.size - j * B) === this.blockLength(k);
  }

  /** Block k is complete: queue it if data gave all its bytes, else it is a hole. */
  private closeBlock(k: number): void {
    if (this.partialClean && this.partialLen === this.blockLength(k)) {
      this.queue(this.partial.length === 1 ? this.partial[0]! : Buffer.concat(this.partial, this.partialLen), k, 1);
    } else {
      this.state[k] = 2;
    }
    this.partial = [];
    this.partialLen = 0;
    this.partialClean = true;
  }

  private queue(bytes: Buffer, firstBlock: number, count: number): void {
    this.batch.push(bytes);
    this.batchBytes += bytes.length;
    for (let i = 0; i < count; i++) this.batchBlocks.push(firstBlock + i);
    if (firstBlock + count === this.blockCount && this.blockLength(this.blockCount - 1) !== this.params.blockLen) {
      this.lastBlockFed = true; // its entry comes from final()
    }
  }

  private async flush(): Promise<void> {
    if (this.batchBytes === 0) return;
    const parts = this.batch;
    const blocks = this.batchBlocks;
    this.batch = [];
    this.batchBytes = 0;
    this.batchBlocks = [];
    // The builder streams: the parts go in (the batch holds whole blocks, in order) without a
    // copy into one buffer, and all in one call, off the JS thread once the batch is big.
    const out = parts.length === 1 && parts[0]!.length < 256 * 1024 ? this.builder.updateSync(parts[0]!) : await this.builder.updateParts(parts);
    this.place(out, blocks, out.length / this.entrySize);
  }

  private place(entries: Buffer, blocks: number[], count: number): void {
    const e = this.entrySize;
    // Runs of consecutive blocks (a batch is mostly one) go in one copy each.
    for (let i = 0; i < count; ) {
      const k = blocks[i]!;
      let n = 1;
      while (i + n < count && blocks[i + n] === k + n) n++;
      entries.copy(this.entries, k * e, i * e, (i + n) * e);
      this.state.fill(1, k, k + n);
      i += n;
    }
  }

  private async fillHoles(readNew: ((offset: number, length: number) => Promise<Uint8Array>) | undefined): Promise<void> {
    const B = this.params.blockLen;
    let holeBuilder: NativeSignatureBuilder | undefined;
    for (let k = 0; k < this.blockCount; ) {
      if (this.state[k] !== 2) {
        if (this.state[k] === 0) throw new Error(`deltasync: recorder left block ${k} unaccounted`);
        k++;
        continue;
      }
      let end = k;
      while (end < this.blockCount && this.state[end] === 2 && (end === k || (end - k + 1) * B <= RECORD_BATCH_BYTES)) end++;
      if (!readNew) throw new DeltaSyncError('ERR_USAGE', 'recorder: some blocks must be read back, but no reader was given');
      holeBuilder ??= new native.SignatureBuilder({ blockLen: B, strongLen: this.params.strongLen, strong: this.params.strong, rolling: this.params.rolling });
      const offset = k * B;
      const length = Math.min(end * B, this.size) - offset;
      const got = await readNew(offset, length);
      if (got.length !== length) throw new DeltaSyncError('ERR_TRUNCATED', `recorder: read back ${got.length} of ${length} bytes at ${offset}`);
      const blocks = Array.from({ length: end - k }, (_, i) => k + i);
      const out = await holeBuilder.update(got);
      this.place(out, blocks, out.length / this.entrySize);
      if (end === this.blockCount && this.blockLength(end - 1) !== B) this.place(holeBuilder.final(), [end - 1], 1);
      k = end;
    }
  }
}

/**
 * The same signature with its strong sums cut to `strongLen` bytes: strong sums are prefixes of
 * the block hash, so this is exactly what computing it with that length would give.
 */
export function truncateStrong(sig: Signature, strongLen: number): Signature {
  if (strongLen === sig.strongLen) return sig;
  if (!Number.isSafeInteger(strongLen) || strongLen < 1 || strongLen > sig.strongLen) {
    throw new DeltaSyncError('ERR_USAGE', `cannot cut ${sig.strongLen}-byte strong sums to ${String(strongLen)} bytes`);
  }
  const weak = WEAK_WIDTH[sig.rolling];
  const entry = weak + strongLen;
  const blocks = Buffer.allocUnsafe(sig.blockCount * entry);
  native.copyRows(sig.blocks, 0, sig.entrySize, blocks, 0, entry, entry, sig.blockCount);
  return new Signature({ ...sig.params, strongLen, fileSize: sig.fileSize, blocks });
}

/**
 * The block hash grid of a signature made with full-length strong sums (a signature cache entry
 * of the receiver, for instance), for {@link PatchEngine}'s verification without reading copied
 * blocks; undefined when the strong sums are shorter or the basis size is unknown.
 */
export function blockHashGrid(sig: Signature, basisSize = sig.fileSize): BlockHashGrid | undefined {
  if (basisSize === undefined || sig.strongLen !== native.strongFullLen(sig.strong)) return undefined;
  if (blockCountFor(basisSize, sig.blockLen) !== sig.blockCount) return undefined;
  const weak = WEAK_WIDTH[sig.rolling];
  const hashes = Buffer.allocUnsafe(sig.blockCount * sig.strongLen);
  native.copyRows(sig.blocks, weak, sig.entrySize, hashes, 0, sig.strongLen, sig.strongLen, sig.blockCount);
  return { strong: sig.strong, blockLen: sig.blockLen, basisSize, hashes };
}
