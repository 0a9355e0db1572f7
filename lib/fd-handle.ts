// Open files as plain descriptors behind the part of the FileHandle API the sync engine uses,
// and the per-entry metadata calls, made synchronously where that is cheap.
//
// Why: every fs/promises call is a thread-pool round trip that measured 50–250 µs here, while
// the system call itself takes a few µs on an inode already in memory, and a small file needs
// about 20 of them across sender and receiver. Opening, fstat-ing twice, reading and closing
// 5000 small files took 1.3 s through fs/promises and 0.04 s synchronously. So metadata calls and
// reads/writes of at most SYNC_IO_MAX bytes run on the JS thread (as rsync makes them in its
// single-threaded processes); creates and renames (100–200 µs of kernel time each), larger
// transfers, fsync and truncation go to the thread pool, so the event loop never stalls on them.
import {
  chmodSync,
  closeSync,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsync as fsyncCallback,
  ftruncate as ftruncateCallback,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdir as mkdirCallback,
  open as openCallback,
  openSync,
  read as readCallback,
  readdirSync,
  readlinkSync,
  rename as renameCallback,
  statSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  write as writeCallback,
  writeSync,
  writev as writevCallback,
  constants,
  type BigIntStats,
  type Stats,
} from 'node:fs';
import { DeltaSyncError } from './errors.js';
import { yieldIfBusy } from './event-loop.js';
import { native } from './native.js';

/** preadv2(RWF_NOWAIT) in the addon: bytes read from the page cache, -1 when that would wait (native/fileops.cc). */
const readCached = (native as unknown as { readCached?: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => number }).readCached;

/**
 * Reads and writes up to this many bytes are made on the JS thread (page cache: microseconds);
 * a read only when its bytes are already cached, so a cold file never blocks the event loop.
 */
export const SYNC_IO_MAX = 256 * 1024;

function viaPool<T>(start: (done: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** An open descriptor with the FileHandle methods the engine calls. Close it exactly once. */
export class FdHandle {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** The descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  private open(): number {
    if (this.#fd < 0) {
      const err = new Error('EBADF: file already closed') as NodeJS.ErrnoException;
      err.code = 'EBADF';
      throw err;
    }
    return this.#fd;
  }

  /** Reads `length` bytes unless the file ends first (a read from the page cache is finished on the pool if only partly cached). */
  async read(buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    await yieldIfBusy();
    const fd = this.open();
    let cached = 0;
    if (length <= SYNC_IO_MAX && position !== null && readCached) {
      const n = readCached(fd, buffer, offset, length, position);
      // All of it, or all there is; else the uncached rest is read on the pool.
      if (n >= 0 && (n === length || this.atEnd(position + n))) return { bytesRead: n, buffer };
      cached = Math.max(0, n);
    }
    const rest = await viaPool<number>((done) =>
      readCallback(fd, buffer, offset + cached, length - cached, position === null ? null : position + cached, done),
    );
    return { bytesRead: cached + rest, buffer };
  }

  private atEnd(position: number): boolean {
    return fstatSync(this.open()).size <= position;
  }

  async write(buffer: Uint8Array, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number; buffer: Uint8Array }> {
    await yieldIfBusy();
    const fd = this.open();
    const bytesWritten =
      length <= SYNC_IO_MAX
        ? writeSync(fd, buffer, offset, length, position)
        : await viaPool<number>((done) => writeCallback(fd, buffer, offset, length, position, done));
    return { bytesWritten, buffer };
  }

  /** Writes `buffers` one after another at `position` (at most IOV_MAX of them); always on the pool. */
  async writev(buffers: Buffer[], position: number): Promise<number> {
    const fd = this.open();
    return viaPool<number>((done) => writevCallback(fd, buffers, position, done));
  }

  stat(options: { bigint: true }): Promise<BigIntStats>;
  stat(options?: { bigint?: false }): Promise<Stats>;
  async stat(options?: { bigint?: boolean }): Promise<BigIntStats | Stats> {
    await yieldIfBusy();
    return options?.bigint ? fstatSync(this.open(), { bigint: true }) : fstatSync(this.open());
  }

  async utimes(atime: number | Date, mtime: number | Date): Promise<void> {
    await yieldIfBusy();
    futimesSync(this.open(), atime, mtime);
  }

  async chmod(mode: number): Promise<void> {
    await yieldIfBusy();
    fchmodSync(this.open(), mode);
  }

  async chown(uid: number, gid: number): Promise<void> {
    await yieldIfBusy();
    fchownSync(this.open(), uid, gid);
  }

  /** Off the JS thread: freeing a large file's blocks takes long. */
  async truncate(length = 0): Promise<void> {
    const fd = this.open();
    await viaPool<void>((done) => ftruncateCallback(fd, length, done));
  }

  /** Off the JS thread: it waits for the disk. */
  async sync(): Promise<void> {
    const fd = this.open();
    await viaPool<void>((done) => fsyncCallback(fd, done));
  }

  /** Closes the descriptor; a second close does nothing. */
  async close(): Promise<void> {
    await yieldIfBusy();
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeSync(fd);
  }
}

/**
 * open(2) of `path`: synchronously (a lookup of an inode already in memory, as a rule), except
 * a create, which allocates an inode (~200 µs of kernel time measured here, more than all the
 * other calls of a small file together) and goes to the thread pool: the receiver's other files
 * move on meanwhile.
 */
export async function openFile(path: string, flags: number, mode = 0o666): Promise<FdHandle> {
  await yieldIfBusy();
  if (flags & constants.O_CREAT) return new FdHandle(await viaPool<number>((done) => openCallback(path, flags, mode, done)));
  return new FdHandle(openSync(path, flags, mode));
}

/**
 * Opens a file to read that must be a regular file. O_NONBLOCK: a FIFO put at the name since
 * it was listed cannot block the JS thread in open(2); it is refused instead, like any other
 * non-regular file.
 */
export async function openRegularFile(path: string): Promise<FdHandle> {
  await yieldIfBusy();
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if ((fstatSync(fd).mode & constants.S_IFMT) !== constants.S_IFREG) {
      throw new DeltaSyncError('ERR_IO', `cannot open ${path}: it is no longer a regular file`, { path });
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return new FdHandle(fd);
}

/** Descriptor-level calls for code that handles raw descriptors (O_PATH and the like). */
export async function openDescriptor(path: string, flags: number, mode?: number): Promise<number> {
  await yieldIfBusy();
  return openSync(path, flags, mode);
}

export async function closeDescriptor(fd: number): Promise<void> {
  await yieldIfBusy();
  closeSync(fd);
}

export async function fstatDescriptor(fd: number): Promise<BigIntStats> {
  await yieldIfBusy();
  return fstatSync(fd, { bigint: true });
}

// Per-entry metadata calls with the fs/promises signatures the engine used.
export function lstat(path: string, options: { bigint: true }): Promise<BigIntStats>;
export function lstat(path: string): Promise<Stats>;
export async function lstat(path: string, options?: { bigint: true }): Promise<BigIntStats | Stats> {
  await yieldIfBusy();
  return options?.bigint ? lstatSync(path, { bigint: true }) : lstatSync(path);
}

/**
 * A directory's names, synchronously like the other metadata calls: through the thread pool each
 * listing was a round trip the sender's walk and the receiver's entry loop waited for in turn
 * (445 directories of the tree benchmark: 45 ms of the walk's 60 ms).
 */
export function readdir(path: string, options: { encoding: 'buffer' }): Promise<Buffer[]>;
export function readdir(path: string): Promise<string[]>;
export async function readdir(path: string, options?: { encoding: 'buffer' }): Promise<Buffer[] | string[]> {
  await yieldIfBusy();
  return options?.encoding === 'buffer' ? readdirSync(path, { encoding: 'buffer' }) : readdirSync(path);
}

export function stat(path: string, options: { bigint: true }): Promise<BigIntStats>;
export function stat(path: string): Promise<Stats>;
export async function stat(path: string, options?: { bigint: true }): Promise<BigIntStats | Stats> {
  await yieldIfBusy();
  return options?.bigint ? statSync(path, { bigint: true }) : statSync(path);
}

/**
 * On the thread pool, like a file create: a new directory allocates an inode and its first block
 * (~240 µs of kernel time each here; 445 of them held the JS thread ~106 ms of a 2.4 s copy).
 */
export async function mkdir(path: string, mode?: number | { mode?: number }): Promise<void> {
  await viaPool<void>((done) => mkdirCallback(path, mode, (err) => done(err)));
}

export async function unlink(path: string): Promise<void> {
  await yieldIfBusy();
  unlinkSync(path);
}

export async function rmdir(path: string): Promise<void> {
  await yieldIfBusy();
  rmdirSync(path);
}

/** On the thread pool: replacing a name frees the old inode and may start its writeback (~120 µs here). */
export async function rename(from: string, to: string): Promise<void> {
  await viaPool<void>((done) => renameCallback(from, to, done));
}

export async function symlink(target: string, path: string): Promise<void> {
  await yieldIfBusy();
  symlinkSync(target, path);
}

export async function readlink(path: string): Promise<string> {
  await yieldIfBusy();
  return readlinkSync(path);
}

export async function chmod(path: string, mode: number): Promise<void> {
  await yieldIfBusy();
  chmodSync(path, mode);
}

export async function lchown(path: string, uid: number, gid: number): Promise<void> {
  await yieldIfBusy();
  lchownSync(path, uid, gid);
}

export async function lutimes(path: string, atime: number | Date, mtime: number | Date): Promise<void> {
  await yieldIfBusy();
  lutimesSync(path, atime, mtime);
}
