// Deltas: match new data against a signature (native matcher) and encode the ops.
import { Transform } from 'node:stream';
import { nowMs } from './builtins.js';
import { DeltaSyncError } from './errors.js';
import { BlockDigest, forEachPiece } from './format/deltasync.js';
import { createDeltaEncoder } from './format/detect.js';
import type { DeltaEncoder } from './format/ops.js';
import { CHUNK_SIZE, ChunkingTransform, InputSource, writeAtomically } from './io.js';
import type { Input } from './io.js';
import { native } from './native.js';
import type { MatchResult, NativeMatcher } from './native.js';
import { MAX_FILE_SIZE } from './params.js';
import { Signature } from './signature.js';
import { SparseSignature } from './sparse-signature.js';
import { yieldIfBusy } from './event-loop.js';

/** Counters of one delta. */
export interface DeltaStats {
  /** Bytes of new data read. */
  newBytes: number;
  /** New bytes sent as literals. */
  literalBytes: number;
  /** New bytes covered by copies from the basis. */
  matchedBytes: number;
  /** Encoded delta size. */
  deltaBytes: number;
  /** COPY commands written (after merging adjacent ones). */
  copyOps: number;
  /** LITERAL commands written. */
  literalOps: number;
  /** Wall time spent in this delta, in milliseconds. */
  elapsedMs: number;
}

/** Options of {@link DeltaEngine}. */
export interface DeltaEngineOptions {
  /**
   * The receiver applies the delta over its basis (rsync's --inplace): blocks are only copied
   * to an offset at or before their basis offset, so no COPY reads bytes already rewritten.
   */
  inPlace?: boolean;
}

/** A literal run longer than this is written as several commands, so memory stays O(chunk). */
const MAX_LITERAL_RUN = CHUNK_SIZE;
/**
 * A longer run of copies is written as several commands, as soon as each is complete, so the
 * receiver of a sync copies while the sender is still matching. Same as the native matcher's
 * kMaxCopyRunBytes (native/matcher.h).
 */
const MAX_COPY_RUN = 32 * 1024 * 1024;

/**
 * Streaming delta maker: update() with large chunks of new data, finish() at the end; both
 * return the encoded delta bytes produced so far. Adjacent copies and literals are merged.
 */
export class DeltaEngine {
  /** update() keeps no reference to its chunk once it resolves (the returned pieces may). */
  static readonly releasesInput = true;
  readonly stats: DeltaStats = { newBytes: 0, literalBytes: 0, matchedBytes: 0, deltaBytes: 0, copyOps: 0, literalOps: 0, elapsedMs: 0 };
  private readonly encoder: DeltaEncoder;
  private readonly matcher: NativeMatcher | undefined;
  /** deltasync: the result's block digest, fed from the matcher's block hashes and the literals. */
  private readonly digest: BlockDigest | undefined;
  private readonly started = nowMs();
  private copyOffset = 0;
  private copyLength = 0;
  private literalParts: Buffer[] = [];
  private literalLength = 0;
  private finished = false;
  /** {@link updateAhead}: the chunk the matcher is working on, and its result to come. */
  private ahead: { chunk: Buffer; result: Promise<MatchResult> } | undefined;

  /** `resultSize`: size of the new data when known up front (recorded by the deltasync format). */
  constructor(readonly sig: Signature | SparseSignature, readonly resultSize?: number, options: DeltaEngineOptions = {}) {
    this.encoder = createDeltaEncoder(sig.format);
    this.encoder.header(resultSize, { strong: sig.strong, blockLen: sig.blockLen });
    // An empty basis has nothing to match: everything is literal.
    if (sig.blockCount > 0) {
      this.matcher = new native.Matcher({
        blockLen: sig.blockLen,
        strongLen: sig.strongLen,
        strong: sig.strong,
        rolling: sig.rolling,
        blocks: sig.blocks,
        blockCount: sig.blockCount,
        lastBlockLen: sig.lastBlockLen,
        inPlace: options.inPlace === true,
        ...(sig instanceof SparseSignature ? { anchorStride: sig.stride, checks: sig.checks, checkLen: sig.checkLen } : {}),
      });
    }
    if (sig.format === 'deltasync') this.digest = new BlockDigest(sig.strong, sig.blockLen);
  }

  /** Feeds new data (best in MiB-sized chunks); returns delta bytes ready to go out. */
  async update(chunk: Buffer): Promise<Buffer[]> {
    await yieldIfBusy();
    if (this.finished) throw new Error('deltasync: delta already finished');
    if (chunk.length === 0) return this.take();
    this.stats.newBytes += chunk.length;
    if (this.stats.newBytes > MAX_FILE_SIZE) throw new DeltaSyncError('ERR_BAD_PARAMS', 'new data larger than 2^53 - 1 bytes');
    if (this.matcher) {
      await this.apply(await this.matcher.update(chunk), chunk);
    } else {
      await this.digest?.literal(chunk);
      this.addLiteral(chunk);
    }
    // Literal runs end at chunk boundaries (one more LITERAL per chunk at most), so once this
    // resolves nothing but the returned pieces points into `chunk`: the caller may reuse it.
    this.flushLiteral();
    return this.take();
  }

  /**
   * update() one chunk behind: starts matching `chunk` on the thread pool, then encodes the
   * previous chunk's result while the matcher works, and returns that chunk's delta bytes (they
   * may point into it). So the JS thread's share of a chunk (digest, encoding, handing the
   * bytes to the writer) no longer waits for the matcher or the matcher for it. A chunk must
   * stay unchanged until the call after next has resolved. Not to be mixed with update().
   */
  async updateAhead(chunk: Buffer): Promise<Buffer[]> {
    await yieldIfBusy();
    if (this.finished) throw new Error('deltasync: delta already finished');
    if (!this.matcher) return this.update(chunk);
    if (chunk.length === 0) return this.take();
    const previous = this.ahead;
    this.ahead = undefined;
    // The matcher takes one call at a time: the previous chunk's result first.
    const result = previous ? await previous.result : undefined;
    this.stats.newBytes += chunk.length;
    if (this.stats.newBytes > MAX_FILE_SIZE) throw new DeltaSyncError('ERR_BAD_PARAMS', 'new data larger than 2^53 - 1 bytes');
    const started = this.matcher.update(chunk);
    started.catch(() => undefined); // surfaced by the next call or finish()
    this.ahead = { chunk, result: started };
    if (previous && result) {
      await this.apply(result, previous.chunk);
      this.flushLiteral();
    }
    return this.take();
  }

  /** Flushes the matcher and writes END (and the result hash); returns the last delta bytes. */
  async finish(): Promise<Buffer[]> {
    if (this.finished) throw new Error('deltasync: delta already finished');
    this.finished = true;
    const ahead = this.ahead;
    this.ahead = undefined;
    if (ahead) {
      await this.apply(await ahead.result, ahead.chunk);
      this.flushLiteral();
    }
    if (this.matcher) await this.apply(await this.matcher.final());
    this.flushCopy();
    this.flushLiteral();
    if (this.resultSize !== undefined && this.resultSize !== this.stats.newBytes) {
      throw new DeltaSyncError('ERR_IO', `new file changed size while being read (${this.resultSize} bytes expected, ${this.stats.newBytes} read)`);
    }
    this.encoder.end(this.digest?.digest());
    return this.take();
  }

  private take(): Buffer[] {
    const out = this.encoder.take();
    this.stats.deltaBytes = this.encoder.bytesWritten;
    this.stats.elapsedMs = nowMs() - this.started;
    return out;
  }

  /** `chunk`: the data of the update() that produced `result` (kind-2 literals point into it). */
  private async apply(result: MatchResult, chunk?: Buffer): Promise<void> {
    const { ops, literals, digests } = result;
    const digest = this.digest;
    let litPos = 0;
    let digestPos = 0;
    for (let i = 0; i + 2 < ops.length; i += 3) {
      const a = ops[i + 1]!;
      if (ops[i] === 0) {
        const length = ops[i + 2]!;
        if (digest) {
          // The matcher's copies are whole basis blocks: one piece, and one hash, per block,
          // fed to the digest in one call per copy (a call per block costs more than the hashing).
          let count = 0;
          forEachPiece(a, length, this.sig.blockLen, () => count++);
          const w = digest.pieceHashLen;
          await digest.pieces(digests.subarray(digestPos, digestPos + count * w), w, 0, count, length);
          digestPos += count * w;
        }
        this.addCopy(a, length);
      } else {
        let data: Buffer;
        if (ops[i] === 2) {
          if (!chunk) throw new Error('deltasync: matcher referenced input outside update()');
          data = chunk.subarray(a, a + ops[i + 2]!);
        } else {
          data = literals.subarray(litPos, litPos + a);
          litPos += a;
        }
        await digest?.literal(data);
        this.addLiteral(data);
      }
    }
    if (litPos !== literals.length) throw new Error('deltasync: matcher literal bytes do not add up');
    if (digest && digestPos !== digests.length) throw new Error('deltasync: matcher block hashes do not add up');
  }

  private addCopy(offset: number, length: number): void {
    if (length <= 0) return;
    this.flushLiteral();
    this.stats.matchedBytes += length;
    if (this.copyLength > 0 && this.copyOffset + this.copyLength === offset) {
      this.copyLength += length;
    } else {
      this.flushCopy();
      this.copyOffset = offset;
      this.copyLength = length;
    }
    if (this.copyLength >= MAX_COPY_RUN) this.flushCopy();
  }

  private addLiteral(data: Buffer): void {
    if (data.length === 0) return;
    this.flushCopy();
    this.stats.literalBytes += data.length;
    this.literalParts.push(data);
    this.literalLength += data.length;
    if (this.literalLength >= MAX_LITERAL_RUN) this.flushLiteral();
  }

  private flushCopy(): void {
    if (this.copyLength === 0) return;
    this.encoder.copy(this.copyOffset, this.copyLength);
    this.stats.copyOps++;
    this.copyLength = 0;
  }

  private flushLiteral(): void {
    if (this.literalLength === 0) return;
    this.encoder.literal(this.literalParts, this.literalLength);
    this.stats.literalOps++;
    this.literalParts = [];
    this.literalLength = 0;
  }
}

/**
 * Read size of {@link pipeDelta}'s four buffers: 6 MiB in all. 1 GiB unrelated, alternating
 * runs: 1.5 MiB chunks 1.27–1.57 s, 2 MiB 1.62–1.81 s, 1 MiB 1.45–1.66 s.
 */
export const DELTA_FILE_CHUNK = 1536 * 1024;

/**
 * Runs a file through `engine`, overlapping the work: while the matcher works on one chunk, the
 * JS thread encodes the chunk before it, the chunk before that goes out, and the next one is
 * read. Four read buffers are recycled (the returned pieces point into their chunk), so `write`
 * must have written its parts when it resolves. Ends with the engine's last bytes.
 */
export async function pipeDelta(engine: DeltaEngine, src: InputSource, write: (parts: Buffer[]) => Promise<void>): Promise<void> {
  let writing: Promise<void> = Promise.resolve();
  for await (const chunk of src.chunks({ reuseBuffers: DeltaEngine.releasesInput, buffers: 4 })) {
    const parts = await engine.updateAhead(chunk);
    await writing; // that chunk's buffer is free again for the read after next
    writing = write(parts);
    writing.catch(() => undefined); // surfaced by the await above or below
  }
  await writing;
  await write(await engine.finish());
}

function toSignature(sig: unknown): Signature {
  if (sig instanceof Signature) return sig;
  if (sig instanceof Uint8Array) return Signature.parse(sig);
  throw new DeltaSyncError('ERR_USAGE', 'delta needs a Signature or a serialized signature (Buffer/Uint8Array)');
}

/** What {@link delta} returns. */
export interface DeltaResult {
  /** The encoded delta, in the signature's format. */
  delta: Buffer;
  /** Counters of the delta. */
  stats: DeltaStats;
}

/**
 * Computes the delta turning the signature's basis into `input` (Buffer, file path, Readable
 * or AsyncIterable), in the signature's format. Memory is O(signature + chunk + delta).
 */
export async function delta(sig: Signature | Uint8Array, input: Input): Promise<DeltaResult> {
  const signature = toSignature(sig);
  const src = await InputSource.open(input, 'new file');
  try {
    const engine = new DeltaEngine(signature, src.size);
    const parts: Buffer[] = [];
    for await (const chunk of src.chunks()) parts.push(...(await engine.update(chunk)));
    parts.push(...(await engine.finish()));
    return { delta: Buffer.concat(parts), stats: engine.stats };
  } finally {
    await src.close();
  }
}

/** Transform: new data in, delta bytes out (format = the signature's). */
class DeltaStream extends ChunkingTransform {
  private readonly engine: DeltaEngine;

  constructor(sig: Signature) {
    super('delta stream');
    this.engine = new DeltaEngine(sig);
  }

  get stats(): DeltaStats {
    return this.engine.stats;
  }

  protected async processChunk(data: Buffer): Promise<void> {
    for (const p of await this.engine.update(data)) this.push(p);
  }

  protected async finish(): Promise<void> {
    for (const p of await this.engine.finish()) this.push(p);
  }
}

/** A Transform turning new data into a delta against `sig`; `stats` fills in as it runs. */
export function createDeltaStream(sig: Signature): Transform & { readonly stats: DeltaStats } {
  if (!(sig instanceof Signature)) throw new DeltaSyncError('ERR_USAGE', 'createDeltaStream needs a Signature (use Signature.parse/read)');
  return new DeltaStream(sig);
}

/**
 * Writes the delta of the file at `newPath` against `sig` (a Signature or a signature file
 * path) to `deltaPath` (temp file + fsync + rename; nothing is left behind on error).
 */
export async function deltaFile(sig: Signature | string, newPath: string, deltaPath: string): Promise<DeltaStats> {
  if (typeof newPath !== 'string' || typeof deltaPath !== 'string') throw new DeltaSyncError('ERR_USAGE', 'deltaFile needs file paths');
  const signature = typeof sig === 'string' ? await Signature.read(sig) : toSignature(sig);
  const src = await InputSource.open(newPath, 'new file', DELTA_FILE_CHUNK);
  try {
    return await writeAtomically(deltaPath, async (file) => {
      const engine = new DeltaEngine(signature, src.size);
      await pipeDelta(engine, src, async (parts) => {
        for (const p of parts) await file.write(p);
        await file.flush();
      });
      return engine.stats;
    });
  } finally {
    await src.close();
  }
}
