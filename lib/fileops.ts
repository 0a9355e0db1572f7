// Range copies between open files for the receiver: unchanged ranges of the basis go into the
// new file by copy_file_range(2) or a reflink (FICLONERANGE), in the addon, off the JS thread;
// read/write in JS only when the addon lacks them (an old prebuild).
import { fstat as fstatCallback, fstatSync, read as readCallback, write as writeCallback } from 'node:fs';
import type { BigIntStats, Stats } from 'node:fs';
import { promisify } from 'node:util';
import { DeltaSyncError } from './errors.js';
import { native } from './native.js';
import type { StrongKind } from './native.js';

const fstat = promisify(fstatCallback) as (fd: number) => Promise<Stats>;

/**
 * How {@link copyFileRange} moves bytes:
 * - `'auto'` (default): copy_file_range(2), falling back to pread/pwrite when the kernel refuses
 *   the pair of files (EXDEV, EINVAL, ENOSYS, EOPNOTSUPP);
 * - `'copy_file_range'`: no fallback, the refusal rejects (diagnostics, tests);
 * - `'readwrite'`: pread/pwrite with a 1 MiB buffer only.
 */
export type CopyMethod = 'auto' | 'copy_file_range' | 'readwrite';

/** An open file: a descriptor, or an object holding one (a `fs/promises` FileHandle and the like). */
export type FileRef = number | { readonly fd: number };

/** The addon's range-copy functions (native/fileops.cc). */
interface FileOpsAddon {
  copyFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number, method?: CopyMethod): Promise<number>;
  cloneFileRange(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): Promise<boolean>;
  copyHashRange(
    fdIn: number,
    offIn: number,
    fdOut: number,
    offOut: number,
    length: number,
    strong: StrongKind,
    cellLen: number,
  ): Promise<{ bytes: number; hashes: Buffer }>;
}

const addon = native as unknown as Partial<FileOpsAddon>;
const hasNativeCopy = typeof addon.copyFileRange === 'function';
const hasNativeClone = typeof addon.cloneFileRange === 'function';
const hasNativeCopyHash = typeof addon.copyHashRange === 'function';

/** JS fallback buffer, same size as the addon's. */
const READ_WRITE_BUFFER = 1024 * 1024;
/**
 * fstat of an open file. Its inode's metadata is in memory, so the synchronous call (about a
 * microsecond) is cheaper than a thread-pool round trip, whose main-thread share alone is tens of
 * microseconds — paid several times per file on a tree of small files.
 */
export function statOpen(fh: { fd: number }): BigIntStats {
  return fstatSync(fh.fd, { bigint: true });
}

/** {@link copyRange} copies in pieces this large so an abort or progress report comes soon. */
const DEFAULT_PIECE_BYTES = 64 * 1024 * 1024;

/** True when the addon provides the range copies (else the JS read/write fallback runs). */
export function nativeFileOps(): boolean {
  return hasNativeCopy && hasNativeClone;
}

function fdOf(file: FileRef, name: string): number {
  if (typeof file === 'number') return file;
  if (file !== null && typeof file === 'object' && typeof (file as { fd?: unknown }).fd === 'number') return (file as { fd: number }).fd;
  throw new DeltaSyncError('ERR_USAGE', `${name} must be a file descriptor or a FileHandle`);
}

function checkRange(offIn: number, offOut: number, length: number): void {
  for (const [name, v] of [['offIn', offIn], ['offOut', offOut], ['length', length]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new DeltaSyncError('ERR_USAGE', `${name} must be an integer in 0..2^53-1, got ${String(v)}`);
  }
}

async function readWriteFallback(fdIn: number, offIn: number, fdOut: number, offOut: number, length: number): Promise<number> {
  const buffer = Buffer.allocUnsafe(Math.min(READ_WRITE_BUFFER, Math.max(1, length)));
  let done = 0;
  while (done < length) {
    const want = Math.min(buffer.length, length - done);
    const got = await new Promise<number>((resolve, reject) =>
      readCallback(fdIn, buffer, 0, want, offIn + done, (err, n) => (err ? reject(err) : resolve(n))),
    );
    if (got === 0) break;
    let put = 0;
    while (put < got) {
      put += await new Promise<number>((resolve, reject) =>
        writeCallback(fdOut, buffer, put, got - put, offOut + done + put, (err, n) => (err ? reject(err) : resolve(n))),
      );
    }
    done += got;
  }
  return done;
}

/**
 * Copies up to `length` bytes from `fileIn` at `offIn` to `fileOut` at `offOut`, off the JS
 * thread; the descriptors' own file positions are not used or moved. Resolves to the bytes
 * copied: fewer than `length` only when `fileIn` ends first.
 *
 * Rejects with the system error (`code` such as `'ENOSPC'`, `errno`, `syscall`, and
 * `bytesCopied` so far) when the copy fails; callers name the path with `ioError(err, path,
 * 'write')`. Overlapping ranges of one file reject with EINVAL, an O_APPEND destination with
 * EBADF. Keep both files open until the promise settles.
 */
export async function copyFileRange(
  fileIn: FileRef,
  offIn: number,
  fileOut: FileRef,
  offOut: number,
  length: number,
  options: { method?: CopyMethod } = {},
): Promise<number> {
  const fdIn = fdOf(fileIn, 'fileIn');
  const fdOut = fdOf(fileOut, 'fileOut');
  checkRange(offIn, offOut, length);
  const method = options.method ?? 'auto';
  if (method !== 'auto' && method !== 'copy_file_range' && method !== 'readwrite') {
    throw new DeltaSyncError('ERR_USAGE', `unknown copy method ${String(method)} (auto, copy_file_range, readwrite)`);
  }
  if (hasNativeCopy) return addon.copyFileRange!(fdIn, offIn, fdOut, offOut, length, method);
  if (method === 'copy_file_range') {
    throw Object.assign(new Error('ENOSYS: copy_file_range is not available (no native fileops), copy_file_range'), {
      code: 'ENOSYS',
      syscall: 'copy_file_range',
    });
  }
  return readWriteFallback(fdIn, offIn, fdOut, offOut, length);
}

/**
 * Makes `[offIn, offIn + length)` of `fileIn` appear at `offOut` in `fileOut` by sharing the
 * filesystem's extents (a reflink: no data read or written). Resolves false when this can't be
 * done here — a filesystem without reflinks (ext4, tmpfs), two filesystems, offsets or length
 * not aligned to the filesystem block — so the caller copies instead. Rejects on real errors
 * (EBADF, ENOSPC, ...). `length` 0 clones nothing and resolves true.
 */
export async function cloneFileRange(fileIn: FileRef, offIn: number, fileOut: FileRef, offOut: number, length: number): Promise<boolean> {
  const fdIn = fdOf(fileIn, 'fileIn');
  const fdOut = fdOf(fileOut, 'fileOut');
  checkRange(offIn, offOut, length);
  if (!hasNativeClone) return length === 0;
  return addon.cloneFileRange!(fdIn, offIn, fdOut, offOut, length);
}

/** The most grid cells one {@link copyHashRange} call may touch (the addon's bound). */
export const COPY_HASH_MAX_PIECES = 1 << 20;

/** True when the addon provides {@link copyHashRange}. */
export function nativeCopyHash(): boolean {
  return hasNativeCopyHash;
}

/**
 * Copies `[offIn, offIn + length)` of `fileIn` to `fileOut` at `offOut` through one small
 * buffer on the thread pool (read, hash, write: no bytes in JavaScript), and resolves to the
 * full-length `strong` hash of every piece of the range on the grid of `cellLen`-byte cells of
 * `fileIn` (the deltasync block digest's pieces, docs/FORMAT.md), in order. `bytes` < `length`
 * only when `fileIn` ends first (`hashes` then covers the pieces read whole). At most
 * {@link COPY_HASH_MAX_PIECES} pieces per call. Rejects like {@link copyFileRange}.
 */
export async function copyHashRange(
  fileIn: FileRef,
  offIn: number,
  fileOut: FileRef,
  offOut: number,
  length: number,
  strong: StrongKind,
  cellLen: number,
): Promise<{ bytes: number; hashes: Buffer }> {
  const fdIn = fdOf(fileIn, 'fileIn');
  const fdOut = fdOf(fileOut, 'fileOut');
  checkRange(offIn, offOut, length);
  if (!hasNativeCopyHash) {
    throw new DeltaSyncError('ERR_USAGE', 'copyHashRange needs the native addon (check nativeCopyHash() first)');
  }
  return addon.copyHashRange!(fdIn, offIn, fdOut, offOut, length, strong, cellLen);
}

/** Options of {@link copyRange}. */
export interface CopyRangeOptions {
  /** Try a reflink for the block-aligned part first. Default true. */
  clone?: boolean;
  /** How the bytes not cloned are copied. Default `'auto'`. */
  method?: CopyMethod;
  /** Filesystem block size for reflink alignment; default: the destination's `st_blksize`. */
  blockSize?: number;
  /** Checked between pieces: an abort rejects with ERR_ABORTED (the destination holds a prefix). */
  signal?: AbortSignal;
  /** Called after each piece with the bytes done so far in this call. */
  onProgress?: (bytes: number) => void;
  /** Bytes per copy piece (abort/progress granularity). Default 64 MiB. */
  pieceBytes?: number;
}

/** What {@link copyRange} did. */
export interface CopyRangeResult {
  /** Bytes now at the destination: fewer than asked only when the source ended first. */
  bytes: number;
  /** Of which shared by reflink (neither read nor written). */
  clonedBytes: number;
  /** Of which copied (copy_file_range or read/write). */
  copiedBytes: number;
}

/**
 * Puts `[offIn, offIn + length)` of `fileIn` at `offOut` in `fileOut` the cheapest way the
 * filesystem offers: the block-aligned middle as a reflink when source and destination offsets
 * share their alignment and the filesystem supports it, everything else with
 * {@link copyFileRange}. This is what the receiver calls for each run of unchanged basis bytes.
 */
export async function copyRange(
  fileIn: FileRef,
  offIn: number,
  fileOut: FileRef,
  offOut: number,
  length: number,
  options: CopyRangeOptions = {},
): Promise<CopyRangeResult> {
  const fdIn = fdOf(fileIn, 'fileIn');
  const fdOut = fdOf(fileOut, 'fileOut');
  checkRange(offIn, offOut, length);
  const pieceBytes = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
  if (!Number.isSafeInteger(pieceBytes) || pieceBytes < 1) throw new DeltaSyncError('ERR_USAGE', `pieceBytes must be a positive integer, got ${String(pieceBytes)}`);
  const result: CopyRangeResult = { bytes: 0, clonedBytes: 0, copiedBytes: 0 };
  if (length === 0) return result;

  const checkAbort = (): void => {
    if (options.signal?.aborted) throw new DeltaSyncError('ERR_ABORTED', 'range copy aborted', { cause: options.signal.reason });
  };
  // Copies [from, to) of the requested range; false when the source ended early.
  const copyPart = async (from: number, to: number): Promise<boolean> => {
    for (let pos = from; pos < to; ) {
      checkAbort();
      const want = Math.min(pieceBytes, to - pos);
      const n = await copyFileRange(fdIn, offIn + pos, fdOut, offOut + pos, want, { method: options.method ?? 'auto' });
      pos += n;
      result.bytes += n;
      result.copiedBytes += n;
      options.onProgress?.(result.bytes);
      if (n < want) return false;
    }
    return true;
  };

  if (options.clone !== false && hasNativeClone) {
    const blockSize = options.blockSize ?? (await fstat(fdOut)).blksize;
    if (Number.isSafeInteger(blockSize) && blockSize > 0 && offIn % blockSize === offOut % blockSize) {
      const head = Math.min(length, (blockSize - (offIn % blockSize)) % blockSize);
      const rest = length - head;
      const sourceSize = (await fstat(fdIn)).size;
      // A range that ends at the source's end may clone its last, partial block too.
      const toEof = offIn + length >= sourceSize;
      const middle = toEof ? Math.max(0, Math.min(rest, sourceSize - offIn - head)) : rest - (rest % blockSize);
      if (middle > 0) {
        checkAbort();
        let cloned = await cloneFileRange(fdIn, offIn + head, fdOut, offOut + head, middle);
        let clonedLen = middle;
        if (!cloned && toEof && middle % blockSize !== 0 && middle > blockSize) {
          // The partial tail block may be what was refused (destination extends past it).
          clonedLen = middle - (middle % blockSize);
          cloned = await cloneFileRange(fdIn, offIn + head, fdOut, offOut + head, clonedLen);
        }
        if (cloned) {
          if (!(await copyPart(0, head))) return result;
          result.bytes += clonedLen;
          result.clonedBytes += clonedLen;
          options.onProgress?.(result.bytes);
          if (head + clonedLen < length && offIn + head + clonedLen < sourceSize) await copyPart(head + clonedLen, length);
          return result;
        }
      }
    }
  }
  await copyPart(0, length);
  return result;
}
