// File and stream I/O for the core: large-chunk readers, a cached random-access file reader,
// and atomic output files (temp file beside the target, optional fsync, rename).
import { lstat, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { randomBytes } from './builtins.js';
import { DeltaSyncError, ioError } from './errors.js';

/** What the core reads: bytes in memory, a file path, a Node stream or any async iterable of bytes. */
export type Input = Uint8Array | string | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

/** Size of the chunks handed to the native code: large, so the per-call cost vanishes. */
export const CHUNK_SIZE = 8 * 1024 * 1024;

/**
 * Default chunk of file inputs. Files are read one chunk ahead into two buffers: 4 MiB keeps
 * those 8 MiB of a delta's or signature's peak memory where 8 MiB chunks would cost 16, and
 * per-call costs stay negligible (the native calls take milliseconds per chunk).
 */
export const FILE_CHUNK_SIZE = 4 * 1024 * 1024;

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

function isOldStyleStream(value: unknown): value is NodeJS.ReadableStream {
  return value !== null && typeof value === 'object' && typeof (value as NodeJS.ReadableStream).on === 'function' &&
    typeof (value as NodeJS.ReadableStream).pipe === 'function';
}

function toBuffer(chunk: unknown, what: string): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new DeltaSyncError('ERR_USAGE', `${what}: the stream must yield bytes (Buffer/Uint8Array), got ${typeof chunk}`);
}

/** Maps a stream's error: file system errors become ERR_IO, DeltaSyncErrors pass through. */
function streamError(err: unknown, what: string): unknown {
  if (err instanceof DeltaSyncError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e && typeof e === 'object' && typeof e.syscall === 'string') return ioError(err, e.path ?? what, 'read');
  return err;
}

/**
 * One input opened for sequential reading. `size` is known for Buffers and files.
 * Always call close() (chunks() closes a file when iteration finishes or stops).
 */
export class InputSource {
  private handle: FileHandle | undefined;

  private constructor(
    /** For messages: the file path or "input". */
    readonly name: string,
    readonly size: number | undefined,
    private readonly input: Input,
    handle: FileHandle | undefined,
    private readonly chunkSize: number,
  ) {
    this.handle = handle;
  }

  /**
   * Opens `input`; files are opened and stat'ed now (ERR_IO names the path). `chunkSize`
   * defaults to FILE_CHUNK_SIZE for files, CHUNK_SIZE for the rest.
   */
  static async open(input: Input, what = 'input', chunkSize?: number): Promise<InputSource> {
    if (typeof input === 'string') {
      let handle: FileHandle | undefined;
      try {
        handle = await open(input, 'r');
        const st = await handle.stat();
        if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
        return new InputSource(input, st.isFile() ? st.size : undefined, input, handle, chunkSize ?? FILE_CHUNK_SIZE);
      } catch (err) {
        await handle?.close().catch(() => undefined);
        throw ioError(err, input, 'open');
      }
    }
    if (input instanceof Uint8Array) return new InputSource(what, input.length, input, undefined, chunkSize ?? CHUNK_SIZE);
    if (isAsyncIterable(input) || isOldStyleStream(input)) return new InputSource(what, undefined, input, undefined, chunkSize ?? CHUNK_SIZE);
    throw new DeltaSyncError('ERR_USAGE', `${what} must be a Buffer/Uint8Array, a file path, a readable stream or an async iterable`);
  }

  /**
   * The input in chunks of about chunkSize bytes (the last may be shorter; none is empty).
   * `reuseBuffers`: file chunks come from `buffers` (default 2) buffers used in turn, so a chunk
   * is only valid until the consumer asks for chunk number (its own + buffers - 1) — for
   * consumers that keep nothing (signatures), it saves a fresh, page-faulting allocation per
   * chunk; a third buffer lets a consumer still write one chunk's data out while it works on the
   * next.
   */
  async *chunks(options: { reuseBuffers?: boolean; buffers?: 2 | 3 | 4 } = {}): AsyncGenerator<Buffer> {
    const input = this.input;
    if (typeof input === 'string') {
      yield* this.fileChunks(input, options.reuseBuffers === true ? (options.buffers ?? 2) : 0);
    } else if (input instanceof Uint8Array) {
      const buf = toBuffer(input, this.name);
      for (let pos = 0; pos < buf.length; pos += this.chunkSize) yield buf.subarray(pos, pos + this.chunkSize);
    } else {
      yield* this.streamChunks(input);
    }
  }

  private async *fileChunks(path: string, reusedBuffers: number): AsyncGenerator<Buffer> {
    const handle = this.handle;
    if (!handle) throw new Error('deltasync: input already closed');
    // Small files get a buffer their size (+1 to see the end), not a whole chunk.
    const wantAt = (position: number): number =>
      this.size === undefined ? this.chunkSize : Math.min(this.chunkSize, Math.max(64 * 1024, this.size - position + 1));
    // One chunk is with the consumer while the next is being read (and, with three, one more
    // is still being written out by the consumer).
    const pool: Buffer[] = [];
    let turn = 0;
    const bufferFor = (length: number): Buffer => {
      if (reusedBuffers === 0) return Buffer.allocUnsafe(length);
      const slot = turn++ % reusedBuffers;
      if (!pool[slot] || pool[slot]!.length < length) pool[slot] = Buffer.allocUnsafe(Math.max(length, this.chunkSize));
      return pool[slot]!.subarray(0, length);
    };
    const readAt = async (position: number): Promise<{ chunk: Buffer; full: boolean }> => {
      const buf = bufferFor(wantAt(position));
      let filled = 0;
      try {
        while (filled < buf.length) {
          const { bytesRead } = await handle.read(buf, filled, buf.length - filled, position + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
      } catch (err) {
        throw ioError(err, path, 'read');
      }
      return { chunk: buf.subarray(0, filled), full: filled === buf.length };
    };
    const atEnd = Promise.resolve({ chunk: Buffer.alloc(0), full: false });
    try {
      let position = 0;
      // Read one chunk ahead so the disk works while the caller hashes/matches.
      let next = readAt(position);
      for (;;) {
        const { chunk, full } = await next;
        if (chunk.length === 0) break;
        position += chunk.length;
        next = full ? readAt(position) : atEnd;
        next.catch(() => undefined); // surfaced when awaited
        yield chunk;
      }
    } finally {
      await this.close();
    }
  }

  private async *streamChunks(input: NodeJS.ReadableStream | AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
    const iterable: AsyncIterable<unknown> = isAsyncIterable(input)
      ? input
      : new Readable().wrap(input as NodeJS.ReadableStream);
    let parts: Buffer[] = [];
    let size = 0;
    try {
      for await (const raw of iterable) {
        const chunk = toBuffer(raw, this.name);
        if (chunk.length === 0) continue;
        if (size === 0 && chunk.length >= this.chunkSize) {
          yield chunk;
          continue;
        }
        parts.push(chunk);
        size += chunk.length;
        if (size >= this.chunkSize) {
          const whole = Buffer.concat(parts, size);
          parts = [];
          size = 0;
          yield whole;
        }
      }
    } catch (err) {
      throw streamError(err, this.name);
    }
    if (size > 0) yield Buffer.concat(parts, size);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Random-access reader over a file with a one-window cache, so the many short COPYs of a
 * mostly-sequential delta turn into few large reads.
 */
export class FileRangeReader {
  private windowStart = 0;
  private window: Buffer = Buffer.alloc(0);

  private constructor(
    readonly path: string,
    private handle: FileHandle | undefined,
    readonly size: number,
    private readonly windowSize: number,
  ) {}

  static async open(path: string, windowSize = 4 * 1024 * 1024): Promise<FileRangeReader> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      const st = await handle.stat();
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      return new FileRangeReader(path, handle, st.size, windowSize);
    } catch (err) {
      await handle?.close().catch(() => undefined);
      throw ioError(err, path, 'open');
    }
  }

  /** The open descriptor (for range copies), or undefined once closed. */
  get fd(): number | undefined {
    return this.handle?.fd;
  }

  /** Bytes [offset, offset + length) clipped to the file (a view of a buffer never reused). */
  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(offset + length, this.size);
    if (offset >= end) return Buffer.alloc(0);
    if (offset >= this.windowStart && end <= this.windowStart + this.window.length) {
      return this.window.subarray(offset - this.windowStart, end - this.windowStart);
    }
    if (end - offset >= this.windowSize) return this.readRaw(offset, end - offset);
    const start = offset;
    this.window = await this.readRaw(start, Math.min(this.windowSize, this.size - start));
    this.windowStart = start;
    return this.window.subarray(0, Math.min(end - start, this.window.length));
  }

  private async readRaw(offset: number, length: number): Promise<Buffer> {
    const handle = this.handle;
    if (!handle) throw new Error('deltasync: basis already closed');
    const buf = Buffer.allocUnsafe(length);
    let filled = 0;
    try {
      while (filled < length) {
        const { bytesRead } = await handle.read(buf, filled, length - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
    } catch (err) {
      throw ioError(err, this.path, 'read');
    }
    return buf.subarray(0, filled);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
  }
}

/** Name of the temp file used while writing `target`: `.NAME.deltasync-XXXXXX` beside it. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.deltasync-${randomBytes(3).toString('hex')}`);
}

/**
 * Where an output goes. A regular file (or a new name) is written atomically: temp file beside
 * it, then a rename. A character device or FIFO (/dev/null, /dev/stdout on a terminal or pipe, a
 * named pipe) is written in place: renaming over it would replace the device node or the pipe
 * with a regular file (`delta ... /dev/null` used to turn /dev/null into a file). A symlink is
 * followed, so the file it names is replaced, not the link. Anything else is refused.
 */
export async function outputTarget(path: string): Promise<{ path: string; stream: boolean }> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      // A dangling symlink would be replaced by the rename: refuse it rather than guess.
      const link = await lstat(path).catch(() => undefined);
      if (link?.isSymbolicLink()) throw new DeltaSyncError('ERR_IO', `cannot write ${path}: it is a symlink to nothing`, { path });
      return { path, stream: false };
    }
    throw ioError(err, path, 'write');
  }
  if (st.isCharacterDevice() || st.isFIFO()) return { path, stream: true };
  if (st.isFile()) {
    const link = await lstat(path);
    return { path: link.isSymbolicLink() ? await realpath(path) : path, stream: false };
  }
  const what = st.isDirectory() ? 'a directory' : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a regular file';
  throw new DeltaSyncError('ERR_IO', `cannot write ${path}: it is ${what}`, { path });
}

/** How an atomic output file is committed. */
export interface AtomicFileOptions {
  /**
   * fsync the data (and the directory after the rename) before commit() resolves: the file
   * survives a power loss, at the price of waiting for the disk. Default true. The rename alone
   * already guarantees readers never see a partial file (rdiff does not fsync at all; the CLI
   * turns this off unless `--fsync` is given).
   */
  fsync?: boolean;
}

/**
 * An output file written atomically: data goes to a temp file beside the target; commit()
 * (optionally fsyncs and) renames it over the target; abort() removes it. Writes are batched.
 */
export class AtomicFile {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private closed = false;
  /** The batch being written in the background (at most one), so producing overlaps writing. */
  private inFlight: Promise<void> | undefined;
  /** Bytes written so far. */
  bytes = 0;

  private constructor(
    readonly target: string,
    /** The temp file, or undefined when the target is a device or pipe written in place. */
    readonly tempPath: string | undefined,
    private readonly handle: FileHandle,
    private readonly durable: boolean,
  ) {}

  static async create(target: string, options: AtomicFileOptions = {}): Promise<AtomicFile> {
    const out = await outputTarget(target);
    if (out.stream) {
      try {
        // No create, no truncate: the device or pipe is there and stays what it is.
        return new AtomicFile(target, undefined, await open(target, fsConstants.O_WRONLY), false);
      } catch (err) {
        throw ioError(err, target, 'write');
      }
    }
    for (let attempt = 0; ; attempt++) {
      const temp = tempPathFor(out.path);
      try {
        const handle = await open(temp, 'wx', 0o666);
        return new AtomicFile(out.path, temp, handle, options.fsync !== false);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 8) continue;
        throw ioError(err, target, 'create a temporary file for');
      }
    }
  }

  /**
   * Queues `data` (kept by reference until written: do not modify it afterwards). Big batches
   * are written in the background while the caller produces the next one; a write error
   * surfaces from a later write(), flush() or commit().
   */
  async write(data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    this.pending.push(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length));
    this.pendingBytes += data.length;
    this.bytes += data.length;
    if (this.pendingBytes >= CHUNK_SIZE || this.pending.length >= 1024) {
      await this.inFlight; // one batch in flight bounds memory to two batches
      this.inFlight = this.writeBatch(this.takePending());
      this.inFlight.catch(() => undefined); // surfaced when awaited
    }
  }

  /** The temp file's descriptor (positional writes, range copies into it). */
  get fd(): number {
    return this.handle.fd;
  }

  /**
   * Writes the concatenation of `parts` at `position` now (writev, no copy), bypassing the
   * queue of write(): for writers that place their bytes themselves. Do not mix with write().
   */
  async writeAt(parts: Buffer[], position: number): Promise<void> {
    let at = position;
    try {
      while (parts.length > 0) {
        const batch = parts.length > 1024 ? parts.slice(0, 1024) : parts;
        const { bytesWritten } = await this.handle.writev(batch, at);
        if (bytesWritten === 0) throw Object.assign(new Error('write wrote nothing'), { code: 'EIO', syscall: 'writev' });
        at += bytesWritten;
        parts = dropBytes(parts, bytesWritten);
      }
    } catch (err) {
      throw ioError(err, this.target, 'write');
    }
    this.bytes = Math.max(this.bytes, at);
  }

  /** Writes everything queued and waits for it. */
  async flush(): Promise<void> {
    const previous = this.inFlight;
    this.inFlight = undefined;
    await previous;
    await this.writeBatch(this.takePending());
  }

  private takePending(): Buffer[] {
    const parts = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return parts;
  }

  private async writeBatch(parts: Buffer[]): Promise<void> {
    try {
      while (parts.length > 0) {
        // writev takes at most IOV_MAX (1024) buffers per call: the batch bound above keeps to it.
        const { bytesWritten } = await this.handle.writev(parts);
        parts = dropBytes(parts, bytesWritten);
      }
    } catch (err) {
      throw ioError(err, this.target, 'write');
    }
  }

  /** Flushes, fsyncs (when durable), closes and renames the temp file over the target. */
  async commit(): Promise<void> {
    try {
      await this.flush();
      if (this.durable) await this.handle.sync();
      this.closed = true;
      await this.handle.close();
      if (this.tempPath !== undefined) await rename(this.tempPath, this.target);
    } catch (err) {
      await this.abort();
      throw ioError(err, this.target, 'write');
    }
    if (this.durable) await syncDirectory(dirname(this.target));
  }

  /** Closes and removes the temp file; never throws. */
  async abort(): Promise<void> {
    await this.inFlight?.catch(() => undefined);
    this.inFlight = undefined;
    if (!this.closed) {
      this.closed = true;
      await this.handle.close().catch(() => undefined);
    }
    if (this.tempPath !== undefined) await unlink(this.tempPath).catch(() => undefined);
  }
}

/** Makes a rename durable; best effort (some file systems refuse to fsync a directory). */
async function syncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch {
    // The data itself is already synced; only the directory entry's durability is at stake.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** `parts` without its first `n` bytes (after a partial write). */
export function dropBytes(parts: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length;
  if (i >= parts.length) return [];
  const rest = parts.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

/** Runs `fn` with an AtomicFile for `target`: committed if fn succeeds, removed otherwise. */
export async function writeAtomically<T>(
  target: string,
  fn: (file: AtomicFile) => Promise<T>,
  options?: AtomicFileOptions,
): Promise<T> {
  const file = await AtomicFile.create(target, options);
  let result: T;
  try {
    result = await fn(file);
  } catch (err) {
    await file.abort();
    throw err;
  }
  await file.commit();
  return result;
}

/**
 * A Transform that gathers the (often small) writes a stream delivers into chunks of about
 * CHUNK_SIZE before handing them to processChunk(): the native code wants MiBs at a time.
 * finish() runs once after the last chunk.
 */
export abstract class ChunkingTransform extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly what: string) {
    super();
  }

  protected abstract processChunk(data: Buffer): Promise<void>;
  protected abstract finish(): Promise<void>;

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!(chunk instanceof Uint8Array)) {
      callback(new DeltaSyncError('ERR_USAGE', `${this.what}: write Buffers/Uint8Arrays`));
      return;
    }
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes < CHUNK_SIZE) {
      callback();
      return;
    }
    this.flushPending().then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.flushPending()
      .then(() => this.finish())
      .then(() => callback(), callback);
  }

  private async flushPending(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.processChunk(data);
  }
}
