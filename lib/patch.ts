// Patch: rebuild the new file from the basis and a delta (either format, detected by magic).
import { constants as bufferConstants } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { DeltaSyncError } from './errors.js';
import { AutoDeltaDecoder } from './format/detect.js';
import type { DeltaOp } from './format/ops.js';
import { CHUNK_SIZE, FileRangeReader, InputSource, writeAtomically } from './io.js';
import type { Input } from './io.js';
import { native } from './native.js';
import type { NativeHasher } from './native.js';

/** Something to copy basis bytes from: bytes in memory, a file path, or a reader. */
export type Basis = Uint8Array | string /* file path, random access */ | BasisReader;

/** Random access to a basis. `read` may return fewer bytes only at the end of the basis. */
export interface BasisReader {
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Total size, if known: COPYs are then checked before reading. */
  size?: number;
}

/** Counters of one patch. */
export interface PatchStats {
  outBytes: number;
  copiedBytes: number;
  literalBytes: number;
  elapsedMs: number;
  /** True when the delta carried a whole-file hash and the result matched it (deltasync format). */
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
    close: async () => undefined,
  };
}

/** Output batches: big enough that hashing and writing cost little per call. */
const OUTPUT_BATCH = 1024 * 1024;

type Sink = (data: Buffer) => void | Promise<void>;

/**
 * Streaming patcher: write() delta chunks, finish() at the end. Output goes to `sink` in
 * batches; for deltasync deltas the whole-file hash is computed on the way and checked in
 * finish() (ERR_HASH_MISMATCH).
 */
export class PatchEngine {
  readonly stats: PatchStats = { outBytes: 0, copiedBytes: 0, literalBytes: 0, elapsedMs: 0, verified: false };
  private readonly decoder = new AutoDeltaDecoder();
  private basis: BasisAccess | undefined;
  private hasher: NativeHasher | undefined;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private readonly started = performance.now();

  constructor(
    private readonly basisSpec: Basis,
    private readonly sink: Sink,
  ) {
    checkBasis(basisSpec);
  }

  /** Feeds delta bytes. */
  async write(chunk: Buffer): Promise<void> {
    const ops: DeltaOp[] = [];
    this.decoder.push(chunk, ops);
    if (this.decoder.format === 'deltasync' && !this.hasher) this.hasher = new native.Hasher('xxh3');
    for (const op of ops) {
      if (op.kind === 'literal') {
        this.stats.literalBytes += op.data.length;
        await this.emit(op.data);
      } else {
        await this.copy(op.offset, op.length);
      }
    }
    this.stats.elapsedMs = performance.now() - this.started;
  }

  /** Ends the delta: checks it is complete, flushes, verifies the result hash. */
  async finish(): Promise<PatchStats> {
    this.decoder.finish();
    await this.flush();
    if (this.decoder.format === 'deltasync') {
      const expected = this.decoder.resultHash!;
      const actual = this.hasher!.digest();
      if (!actual.equals(expected)) {
        throw new DeltaSyncError(
          'ERR_HASH_MISMATCH',
          'patched result does not match the hash in the delta (wrong basis, or a damaged delta)',
        );
      }
      this.stats.verified = true;
    }
    this.stats.elapsedMs = performance.now() - this.started;
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
    let done = 0;
    while (done < length) {
      const want = Math.min(CHUNK_SIZE, length - done);
      const data = await this.basis.read(offset + done, want);
      if (data.length < want) {
        throw new DeltaSyncError('ERR_CORRUPT', `delta COPY at offset ${offset + done} runs past the end of the basis`);
      }
      await this.emit(data);
      done += want;
    }
  }

  private async emit(data: Buffer): Promise<void> {
    this.stats.outBytes += data.length;
    this.batch.push(data);
    this.batchBytes += data.length;
    if (this.batchBytes >= OUTPUT_BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.batchBytes === 0) return;
    const data = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    await Promise.all([this.hasher?.update(data), this.sink(data)]);
  }
}

/**
 * Applies `delta` (Buffer, file path, Readable or AsyncIterable; either format) to `basis`
 * and returns the result, verified against the delta's whole-file hash when it has one.
 */
export async function patch(basis: Basis, delta: Input): Promise<{ output: Buffer; stats: PatchStats }> {
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

/**
 * Applies `delta` to `basis` into `outPath`: written to a temp file beside it, verified,
 * fsynced and renamed; on any error nothing is left behind. `outPath` may be the basis itself.
 */
export async function patchFile(basis: Basis, delta: Input, outPath: string): Promise<PatchStats> {
  checkBasis(basis);
  if (typeof outPath !== 'string') throw new DeltaSyncError('ERR_USAGE', 'patchFile needs an output path');
  const src = await InputSource.open(delta, 'delta');
  try {
    return await writeAtomically(outPath, async (file) => {
      const engine = new PatchEngine(basis, (data) => file.write(data));
      try {
        await engine.open();
        for await (const chunk of src.chunks()) await engine.write(chunk);
        return await engine.finish();
      } finally {
        await engine.close();
      }
    });
  } finally {
    await src.close();
  }
}
