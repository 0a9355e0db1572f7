// Patch: rebuild the new file from the basis and a delta (either format, detected by magic).
import { constants as bufferConstants } from 'node:buffer';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { nowMs } from './builtins.js';
import { DeltaSyncError, ioError } from './errors.js';
import { AutoDeltaDecoder } from './format/detect.js';
import type { DeltaOp } from './format/ops.js';
import { copyHashRange, copyRange, nativeCopyHash } from './fileops.js';
import { CHUNK_SIZE, FileRangeReader, InputSource, writeAtomically } from './io.js';
import type { AtomicFile, AtomicFileOptions, Input } from './io.js';
import { native } from './native.js';
import type { NativeHasher, StrongKind } from './native.js';
import { BlockDigest } from './format/deltasync.js';
import { yieldIfBusy } from './event-loop.js';

/** Something to copy basis bytes from: bytes in memory, a file path, or a reader. */
export type Basis = Uint8Array | string /* file path, random access */ | BasisReader;

/** Random access to a basis. `read` may return fewer bytes only at the end of the basis. */
export interface BasisReader {
  /** Reads `length` bytes at `offset` (fewer only at the end of the basis). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Total size, if known: COPYs are then checked before reading. */
  size?: number;
  /** Called once when the patch is done with the basis (e.g. to close a file it reads). */
  close?(): Promise<void>;
}

/** Counters of one patch. */
export interface PatchStats {
  /** Bytes of the rebuilt file. */
  outBytes: number;
  /** Bytes copied from the basis. */
  copiedBytes: number;
  /** Bytes taken from the delta's literals. */
  literalBytes: number;
  /** Wall time spent in this patch, in milliseconds. */
  elapsedMs: number;
  /** True when the delta carried a result digest and the result matched it (deltasync format). */
  verified: boolean;
}

/** Uniform access to the three basis kinds. */
interface BasisAccess {
  readonly size: number | undefined;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

function isBasisReader(value: unknown): value is BasisReader {
  return value !== null && typeof value === 'object' && typeof (value as BasisReader).read === 'function';
}

function checkBasis(basis: unknown): void {
  if (typeof basis === 'string' || basis instanceof Uint8Array || isBasisReader(basis)) {
    if (isBasisReader(basis) && basis.size !== undefined && (!Number.isSafeInteger(basis.size) || basis.size < 0)) {
      throw new DeltaSyncError('ERR_USAGE', `basis reader size must be a non-negative integer, got ${String(basis.size)}`);
    }
    return;
  }
  throw new DeltaSyncError('ERR_USAGE', 'basis must be a Buffer/Uint8Array, a file path or a BasisReader');
}

async function openBasis(basis: Basis): Promise<BasisAccess> {
  if (typeof basis === 'string') return FileRangeReader.open(basis);
  // An already open file (patchFile): its views are never reused, no copy needed.
  if (basis instanceof FileRangeReader) return basis;
  if (basis instanceof Uint8Array) {
    const buf = Buffer.from(basis.buffer, basis.byteOffset, basis.byteLength);
    return {
      size: buf.length,
      read: async (offset, length) => buf.subarray(offset, offset + length),
      close: async () => undefined,
    };
  }
  const reader = basis;
  return {
    size: reader.size,
    read: async (offset, length) => {
      const data = await reader.read(offset, length);
      if (!(data instanceof Uint8Array) || data.length > length) {
        throw new DeltaSyncError('ERR_USAGE', 'basis reader returned something other than at most the requested bytes');
      }
      // Copied: a reader may reuse its buffer, and output is batched before it is written.
      return Buffer.from(data);
    },
    close: async () => {
      await reader.close?.();
    },
  };
}

/** Strong hashes of consecutive cells of a buffer (native/format/binding.cc); absent in old builds. */
const hashCells = (native as unknown as { hashCells?: (strong: StrongKind, data: Uint8Array, cellLen: number) => Promise<Buffer> })
  .hashCells;

/** Output batches: big enough that hashing and writing cost little per call. */
const OUTPUT_BATCH = 1024 * 1024;
/** A batch holds at most this many pieces (writev's IOV_MAX). */
const OUTPUT_BATCH_PARTS = 1024;
/**
 * Hashed range copies go in pieces of this size, two in flight (one reading and hashing while
 * the other writes): big enough that a call's cost vanishes, small enough to overlap.
 */
const COPY_SEGMENT = 8 * 1024 * 1024;
/**
 * Shorter COPYs go through the batched user-space path: a range copy costs a few system calls
 * and a thread-pool round trip, which many tiny COPYs would pay over and over.
 */
const RANGE_COPY_MIN = 128 * 1024;

type Sink = (data: Buffer) => void | Promise<void>;

/**
 * Full-length strong hashes of the basis's blocks (a signature made with the full strong
 * length, or a signature cache entry): lets {@link PatchEngine} verify COPYs of whole blocks
 * without reading them. Only pass a grid you trust to describe the basis as it is now.
 */
export interface BlockHashGrid {
  strong: StrongKind;
  blockLen: number;
  /** Size of the basis the grid describes. */
  basisSize: number;
  /** ceil(basisSize / blockLen) hashes of strongFullLen(strong) bytes, in block order. */
  hashes: Buffer;
}

/** Positional output for {@link PatchEngine}: lets COPYs bypass user space. */
export interface PatchOutput {
  /** Writes result bytes at `position`. */
  write(data: Buffer, position: number): Promise<void>;
  /** Writes the concatenation of `parts` at `position` (writev); used instead of write() when given. */
  writeParts?(parts: Buffer[], position: number): Promise<void>;
  /** Puts basis bytes [offset, offset + length) at `position` (e.g. copy_file_range). */
  copyFromBasis?(offset: number, length: number, position: number): Promise<void>;
  /**
   * Puts basis bytes [offset, offset + length) at `position` and resolves to the full-length
   * `strong` hash of each piece of the range on the basis grid of `cellLen`-byte cells, in order
   * (see {@link copyHashRange}): COPYs are then verified without their bytes entering
   * JavaScript. Must reject (ERR_CORRUPT) when the basis ends before the range does. Called
   * with up to two ranges in flight; each starts on a cell border or at a COPY's start.
   */
  copyHashedFromBasis?(offset: number, length: number, position: number, strong: StrongKind, cellLen: number): Promise<Buffer>;
  /** In place: basis bytes [offset, offset + length) are already where they belong. */
  unchanged?(offset: number, length: number): void;
}

/** Options of {@link PatchEngine}. */
export interface PatchEngineOptions {
  /** Trusted block hashes of the basis (see {@link BlockHashGrid}). */
  grid?: BlockHashGrid;
  /** Positional output; replaces the sink. */
  output?: PatchOutput;
  /**
   * The output is the basis file itself (--inplace): a COPY to its own offset is skipped, and a
   * COPY from bytes this patch already rewrote fails with ERR_HASH_MISMATCH (its old bytes are gone).
   */
  inPlace?: boolean;
}

/**
 * Streaming patcher: write() delta chunks, finish() at the end. Output goes to `sink` (or the
 * positional `output`) in batches; for deltasync deltas the block digest of the result is
 * computed on the way and checked in finish() (ERR_HASH_MISMATCH). With a trusted grid and a
 * range-copying output, whole-block COPYs are neither read nor hashed.
 */
export class PatchEngine {
  readonly stats: PatchStats = { outBytes: 0, copiedBytes: 0, literalBytes: 0, elapsedMs: 0, verified: false };
  /** COPY bytes handed to output.copyFromBasis (not through user space). */
  rangeCopiedBytes = 0;
  /** In place: COPY bytes left where they were (neither read nor written). */
  unchangedBytes = 0;
  private readonly decoder = new AutoDeltaDecoder();
  private basis: BasisAccess | undefined;
  private digest: BlockDigest | undefined;
  private grid: BlockHashGrid | undefined;
  private gridChecked = false;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private position = 0;
  /** In place: output ranges written so far, merged, ascending (writes only move forward). */
  private readonly written: number[] = [];
  private readonly started = nowMs();
  private readonly sink: Sink | undefined;
  private readonly output: PatchOutput | undefined;

  constructor(
    private readonly basisSpec: Basis,
    sink: Sink | undefined,
    private readonly options: PatchEngineOptions = {},
  ) {
    checkBasis(basisSpec);
    this.sink = sink;
    this.output = options.output;
    if (!sink && !this.output) throw new DeltaSyncError('ERR_USAGE', 'patch engine needs a sink or an output');
  }

  /** Feeds delta bytes. */
  async write(chunk: Buffer): Promise<void> {
    await yieldIfBusy();
    const ops: DeltaOp[] = [];
    this.decoder.push(chunk, ops);
    if (!this.digest && this.decoder.format === 'deltasync') {
      // Known once the header is complete (before any op).
      const g = this.decoder.grid;
      if (g) this.digest = new BlockDigest(g.strong, g.blockLen);
    }
    for (const op of ops) {
      if (op.kind === 'literal') {
        this.stats.literalBytes += op.data.length;
        // Hashing (thread pool) and writing overlap; both settle before anything is thrown.
        const hashed = this.digest?.literal(op.data);
        if (hashed) {
          const [h, e] = await Promise.allSettled([hashed, this.emit(op.data)]);
          if (h.status === 'rejected') throw h.reason;
          if (e.status === 'rejected') throw e.reason;
        } else {
          await this.emit(op.data);
        }
      } else {
        await this.copy(op.offset, op.length);
      }
    }
    this.stats.elapsedMs = nowMs() - this.started;
  }

  /**
   * Writes out what is batched: afterwards the engine holds no reference to the chunks given
   * to write() (their buffers may be reused).
   */
  async drain(): Promise<void> {
    await this.flush();
  }

  /** Ends the delta: checks it is complete, flushes, verifies the result digest. */
  async finish(): Promise<PatchStats> {
    this.decoder.finish();
    await this.flush();
    if (this.decoder.format === 'deltasync') {
      const expected = this.decoder.resultHash!;
      const actual = this.digest!.digest();
      if (!actual.equals(expected)) {
        throw new DeltaSyncError(
          'ERR_HASH_MISMATCH',
          'patched result does not match the hash in the delta (wrong basis, or a damaged delta)',
        );
      }
      this.stats.verified = true;
    }
    this.stats.elapsedMs = nowMs() - this.started;
    await this.close();
    return this.stats;
  }

  /** Opens the basis now (a missing basis file fails here even if the delta has no COPY). */
  async open(): Promise<void> {
    this.basis ??= await openBasis(this.basisSpec);
  }

  /** Releases the basis (a file handle); safe to call more than once. */
  async close(): Promise<void> {
    const basis = this.basis;
    this.basis = undefined;
    await basis?.close();
  }

  /** The caller's grid, if it fits this delta and basis (else pieces are hashed from their bytes). */
  private usableGrid(): BlockHashGrid | undefined {
    if (this.gridChecked) return this.grid;
    this.gridChecked = true;
    const g = this.options.grid;
    const d = this.digest;
    if (!g || !d || g.strong !== d.strong || g.blockLen !== d.blockLen) return undefined;
    if (this.basis?.size !== undefined && this.basis.size !== g.basisSize) return undefined;
    if (g.hashes.length !== Math.ceil(g.basisSize / g.blockLen) * d.pieceHashLen) return undefined;
    this.grid = g;
    return g;
  }

  private async copy(offset: number, length: number): Promise<void> {
    this.basis ??= await openBasis(this.basisSpec);
    const size = this.basis.size;
    if (size !== undefined && offset + length > size) {
      throw new DeltaSyncError(
        'ERR_CORRUPT',
        `delta COPY of ${length} bytes at offset ${offset} runs past the end of the ${size}-byte basis`,
      );
    }
    this.stats.copiedBytes += length;
    const digest = this.digest;
    const out = this.output;
    const inPlace = this.options.inPlace === true;
    if (!digest) {
      // Nothing to verify (rdiff): the output may copy the range without reading it.
      if (out?.copyFromBasis && !inPlace && length >= RANGE_COPY_MIN) await this.copyOutside(offset, length, () => out.copyFromBasis!(offset, length, this.position));
      else await this.copyThrough(offset, length);
      return;
    }
    if (out?.copyHashedFromBasis && !inPlace && length >= RANGE_COPY_MIN && !this.usableGrid()) {
      await this.copyHashed(offset, length);
      return;
    }
    // A COPY is at most three groups of pieces, so the work per COPY is not per cell: a head
    // inside a cell, whole cells, a tail inside a cell (or the basis's short last cell).
    const B = digest.blockLen;
    const end = offset + length;
    let at = offset;
    if (at % B !== 0) {
      const to = Math.min(end, (Math.floor(at / B) + 1) * B);
      await this.copyPiece(at, to - at);
      at = to;
    }
    let cellsEnd = at + Math.floor((end - at) / B) * B;
    const grid = this.usableGrid();
    if (cellsEnd < end && grid && end === grid.basisSize) cellsEnd = end; // the short last cell, whole
    if (cellsEnd > at) await this.copyCells(at, cellsEnd - at);
    if (cellsEnd < end) await this.copyPiece(cellsEnd, end - cellsEnd);
  }

  /** Output bytes [position, position + length) put there by `put`, past the batch. */
  private async copyOutside(offset: number, length: number, put: () => Promise<void>): Promise<void> {
    await this.flush();
    await put();
    this.rangeCopiedBytes += length;
    this.position += length;
    this.stats.outBytes += length;
  }

  /**
   * A COPY verified from the hashes the output computes as it copies (copyHashedFromBasis), in
   * segments ending on cell borders, their hashes fed to the digest in order. One segment is in
   * flight at a time: two threads writing one file contend for its inode lock (ext4 takes it for
   * every buffered write), and the waiter spins in the kernel — a 1 GiB copy took 0.70–0.89 s
   * with two in flight, 0.50–0.53 s with one (alternating runs; rdiff 0.42–0.46 s). The next
   * segment starts before the previous one's hashes go into the digest.
   */
  private async copyHashed(offset: number, length: number): Promise<void> {
    await this.flush();
    const out = this.output!;
    const digest = this.digest!;
    const B = digest.blockLen;
    const w = digest.pieceHashLen;
    const end = offset + length;
    const start = this.position;
    // Bounded so one call's hashes stay small (a hostile grid of 1-byte cells).
    const span = Math.max(B, Math.min(COPY_SEGMENT, B * 65536));
    const inFlight: { done: Promise<Buffer>; length: number }[] = [];
    let at = offset;
    const startNext = (): void => {
      const border = Math.floor((at + span) / B) * B;
      const to = Math.min(end, border > at ? border : (Math.floor(at / B) + 1) * B);
      const done = out.copyHashedFromBasis!(at, to - at, start + (at - offset), digest.strong, B);
      done.catch(() => undefined); // surfaced when awaited
      inFlight.push({ done, length: to - at });
      at = to;
    };
    try {
      if (at < end) startNext();
      while (inFlight.length > 0) {
        const next = inFlight[0]!;
        const hashes = await next.done;
        inFlight.shift();
        if (at < end) startNext();
        await digest.pieces(hashes, w, 0, hashes.length / w, next.length);
      }
    } finally {
      // Never leave a copy running into a file the caller is about to close.
      await Promise.allSettled(inFlight.map((f) => f.done));
    }
    this.rangeCopiedBytes += length;
    this.position += length;
    this.stats.outBytes += length;
  }

  /** One piece that is not a whole cell: its bytes are hashed. */
  private async copyPiece(offset: number, length: number): Promise<void> {
    const digest = this.digest!;
    const hasher = new native.Hasher(digest.strong);
    await this.copyThrough(offset, length, hasher);
    digest.piece(hasher.digest(), length);
  }

  /** Whole cells from a cell border: hashes from the grid (bytes need not pass here), else from the bytes. */
  private async copyCells(offset: number, length: number): Promise<void> {
    const digest = this.digest!;
    const B = digest.blockLen;
    const w = digest.pieceHashLen;
    const count = Math.ceil(length / B);
    const grid = this.usableGrid();
    if (!grid) {
      if (hashCells && B <= CHUNK_SIZE / 2) {
        // Hashed in bulk, strong hashes only: one native call per chunk of whole cells however
        // small they are (a hostile block length of 1 costs what its signature would).
        const chunk = Math.floor(Math.min(CHUNK_SIZE, B * 65536) / B) * B;
        await this.copyThrough(offset, length, undefined, chunk, async (data) => {
          const hashes = await hashCells(digest.strong, data, B);
          await digest.pieces(hashes, w, 0, hashes.length / w, data.length);
        });
        return;
      }
      // Cells too big to read whole (or an addon without hashCells): one streaming hash each.
      for (let at = offset; at < offset + length; at += B) await this.copyPiece(at, Math.min(B, offset + length - at));
      return;
    }
    const first = offset / B;
    await digest.pieces(grid.hashes.subarray(first * w, (first + count) * w), w, 0, count, length);
    const out = this.output;
    const inPlace = this.options.inPlace === true;
    if (out && inPlace && offset === this.position) {
      await this.flush();
      out.unchanged?.(offset, length);
      this.unchangedBytes += length;
    } else if (out && !inPlace && out.copyFromBasis) {
      await this.flush();
      await out.copyFromBasis(offset, length, this.position);
      this.rangeCopiedBytes += length;
    } else {
      await this.copyThrough(offset, length);
      return;
    }
    this.position += length;
    this.stats.outBytes += length;
  }

  /** Reads basis bytes and emits them, hashing them with `hasher` or handing them to `each` if given. */
  private async copyThrough(
    offset: number,
    length: number,
    hasher?: NativeHasher,
    chunk = CHUNK_SIZE,
    each?: (data: Buffer) => Promise<void>,
  ): Promise<void> {
    if (this.options.inPlace) this.checkNotRewritten(offset, length);
    let done = 0;
    while (done < length) {
      const want = Math.min(chunk, length - done);
      const data = await this.basis!.read(offset + done, want);
      if (data.length < want) {
        throw new DeltaSyncError('ERR_CORRUPT', `delta COPY at offset ${offset + done} runs past the end of the basis`);
      }
      if (hasher) await hasher.update(data);
      await each?.(data);
      await this.emit(data);
      done += want;
    }
  }

  /** In place: a COPY source this patch has already overwritten cannot be read any more. */
  private checkNotRewritten(offset: number, length: number): void {
    const w = this.written;
    // Ranges are ascending and disjoint: find the last one starting before the source's end.
    let lo = 0;
    let hi = w.length / 2;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (w[mid * 2]! < offset + length) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && w[(lo - 1) * 2 + 1]! > offset) {
      throw new DeltaSyncError('ERR_HASH_MISMATCH', `in-place COPY at offset ${offset} reads bytes this patch already rewrote`);
    }
  }

  private async emit(data: Buffer): Promise<void> {
    if (this.options.inPlace) {
      const w = this.written;
      const end = this.position + data.length;
      if (w.length > 0 && w[w.length - 1] === this.position) w[w.length - 1] = end;
      else w.push(this.position, end);
    }
    this.stats.outBytes += data.length;
    this.position += data.length;
    this.batch.push(data);
    this.batchBytes += data.length;
    if (this.batchBytes >= OUTPUT_BATCH || this.batch.length >= OUTPUT_BATCH_PARTS) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.batchBytes === 0) return;
    const parts = this.batch;
    const at = this.position - this.batchBytes;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    if (this.output?.writeParts) {
      await this.output.writeParts(parts, at);
      return;
    }
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
    if (this.output) await this.output.write(data, at);
    else await this.sink!(data);
  }
}

/** What {@link patch} returns. */
export interface PatchResult {
  /** The rebuilt file. */
  output: Buffer;
  /** Counters of the patch. */
  stats: PatchStats;
}

/**
 * Applies `delta` (Buffer, file path, Readable or AsyncIterable; either format) to `basis`
 * and returns the result, verified against the delta's result digest when it has one (deltasync format).
 */
export async function patch(basis: Basis, delta: Input): Promise<PatchResult> {
  checkBasis(basis);
  const parts: Buffer[] = [];
  let total = 0;
  const engine = new PatchEngine(basis, (data) => {
    total += data.length;
    if (total > bufferConstants.MAX_LENGTH) {
      throw new DeltaSyncError('ERR_BAD_PARAMS', `patched result exceeds the ${bufferConstants.MAX_LENGTH}-byte Buffer limit: use patchFile or createPatchStream`);
    }
    parts.push(data);
  });
  await engine.open();
  let src: InputSource | undefined;
  try {
    src = await InputSource.open(delta, 'delta');
    for await (const chunk of src.chunks()) await engine.write(chunk);
    const stats = await engine.finish();
    return { output: Buffer.concat(parts, total), stats };
  } finally {
    await src?.close();
    await engine.close();
  }
}

/** Transform: delta bytes in, new data out. */
class PatchStream extends Transform {
  private readonly engine: PatchEngine;
  private readWaiters: (() => void)[] = [];

  constructor(basis: Basis) {
    super();
    // One COPY can describe gigabytes: when the reader falls behind, wait until it asks for
    // more, so memory stays O(chunk) instead of O(output).
    this.engine = new PatchEngine(basis, (data) => {
      if (this.destroyed) throw new DeltaSyncError('ERR_ABORTED', 'patch stream destroyed');
      if (this.push(data)) return undefined;
      return new Promise<void>((resolve) => this.readWaiters.push(resolve));
    });
  }

  private resumeWriters(): void {
    const waiters = this.readWaiters;
    this.readWaiters = [];
    for (const resume of waiters) resume();
  }

  override _read(size: number): void {
    this.resumeWriters();
    super._read(size);
  }

  get stats(): PatchStats {
    return this.engine.stats;
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!(chunk instanceof Uint8Array)) {
      callback(new DeltaSyncError('ERR_USAGE', 'patch stream: write Buffers/Uint8Arrays'));
      return;
    }
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.engine.write(buf).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.engine.finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.resumeWriters();
    this.engine.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}

/**
 * A Transform applying a delta to `basis`: delta in, new data out. Output is pushed as it is
 * made; for deltasync deltas a hash mismatch is reported as an ERR_HASH_MISMATCH error at the
 * end, after the data went out (callers writing files should use {@link patchFile}).
 */
export function createPatchStream(basis: Basis): Transform & { readonly stats: PatchStats } {
  checkBasis(basis);
  return new PatchStream(basis);
}

/** Delta chunks of patchFile: two buffers in turn (literals are written before they are reused). */
const PATCH_DELTA_CHUNK = 4 * 1024 * 1024;

/**
 * Applies `delta` to `basis` into `outPath`: written to a temp file beside it, verified,
 * fsynced (unless `options.fsync` is false) and renamed; on any error nothing is left behind.
 * `outPath` may be the basis itself.
 */
export async function patchFile(basis: Basis, delta: Input, outPath: string, options?: AtomicFileOptions): Promise<PatchStats> {
  checkBasis(basis);
  if (typeof outPath !== 'string') throw new DeltaSyncError('ERR_USAGE', 'patchFile needs an output path');
  const src = await InputSource.open(delta, 'delta', PATCH_DELTA_CHUNK);
  let basisFile: FileRangeReader | undefined;
  try {
    // A basis file goes to the output file by range copies (hashed on the way where the
    // delta's digest needs its bytes), never through JavaScript.
    if (typeof basis === 'string') basisFile = await FileRangeReader.open(basis);
    return await writeAtomically(outPath, async (file) => {
      const engine = new PatchEngine(basisFile ?? basis, undefined, { output: fileOutput(file, basisFile) });
      try {
        await engine.open();
        for await (const chunk of src.chunks({ reuseBuffers: true })) {
          await engine.write(chunk);
          await engine.drain();
        }
        return await engine.finish();
      } finally {
        await engine.close();
      }
    }, options);
  } finally {
    await basisFile?.close();
    await src.close();
  }
}

/** Positional output into an atomic file, with range copies from `basis` when it is a file. */
function fileOutput(file: AtomicFile, basis: FileRangeReader | undefined): PatchOutput {
  const output: PatchOutput = {
    write: (data, position) => file.writeAt([data], position),
    writeParts: (parts, position) => file.writeAt(parts, position),
  };
  if (!basis) return output;
  const shortBasis = (offset: number): DeltaSyncError =>
    new DeltaSyncError('ERR_CORRUPT', `delta COPY at offset ${offset} runs past the end of the basis`);
  const basisFd = (): number => {
    const fd = basis.fd;
    if (fd === undefined) throw new Error('deltasync: basis already closed');
    return fd;
  };
  // A failed read names the basis, anything else the output.
  const rangeError = (err: unknown): DeltaSyncError =>
    (err as { syscall?: string }).syscall === 'pread' ? ioError(err, basis.path, 'read') : ioError(err, file.target, 'write');
  output.copyFromBasis = async (offset, length, position) => {
    const r = await copyRange(basisFd(), offset, file.fd, position, length).catch((err: unknown) => {
      throw rangeError(err);
    });
    if (r.bytes !== length) throw shortBasis(offset + r.bytes);
  };
  if (nativeCopyHash()) {
    output.copyHashedFromBasis = async (offset, length, position, strong, cellLen) => {
      const r = await copyHashRange(basisFd(), offset, file.fd, position, length, strong, cellLen).catch((err: unknown) => {
        throw rangeError(err);
      });
      if (r.bytes !== length) throw shortBasis(offset + r.bytes);
      return r.hashes;
    };
  }
  return output;
}
