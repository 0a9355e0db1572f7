// Loads the compiled addon (prebuild or local build) and gives it types.
// Internal module: the public API wraps these objects.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeltaSyncError } from './errors.js';

/** Rolling (weak) checksum kinds. `ds64` is deltasync's default; the others are librsync's. */
export type RollingKind = 'ds64' | 'rollsum' | 'rabinkarp';
/** Strong hash kinds: XXH3-128 (16 bytes), MD4 (16 bytes), BLAKE2b-256 as librsync (32 bytes). */
export type StrongKind = 'xxh3' | 'md4' | 'blake2b';

export interface BlockParams {
  blockLen: number;
  rolling: RollingKind;
  strong: StrongKind;
  /** Bytes of the strong hash kept per block (1..full length). */
  strongLen: number;
}

/**
 * Result of feeding the matcher. `ops` holds triples [kind, a, b]:
 * kind 0 = COPY (a = basis offset, b = length);
 * kind 1 = LITERAL (a = length, b unused; the bytes are the next `a` bytes of `literals`);
 * kind 2 = LITERAL still inside the chunk passed to this update() (a = offset in that chunk,
 * b = length): not copied, so the caller must keep the chunk unchanged while it uses them.
 * Consecutive block copies arrive merged (also across calls).
 */
export interface MatchResult {
  ops: Float64Array;
  literals: Buffer;
  /**
   * Full-length strong hash of every block the COPY ops cover, in op order (a copy of `b`
   * bytes covers ceil(b / blockLen) blocks): the sender's half of the deltasync block digest.
   */
  digests: Buffer;
}

export interface NativeSignatureBuilder {
  /** Feeds data; resolves to packed entries (weak big-endian, then strong) of blocks completed. */
  update(data: Uint8Array): Promise<Buffer>;
  updateSync(data: Uint8Array): Buffer;
  /** update() of the parts' concatenation, in one call (on the pool when they are big). */
  updateParts(parts: Uint8Array[]): Promise<Buffer>;
  /**
   * Reads up to `length` bytes of the open file `fd` from `position` and feeds them, reading
   * and hashing on all cores (signatures of whole files). `bytesRead` < `length` only at the
   * end of the file. Rejects on a read error or when the file changes while being read.
   */
  updateFromFile(fd: number, position: number, length: number): Promise<{ entries: Buffer; bytesRead: number }>;
  /** Entry of the trailing partial block, if any (empty Buffer otherwise). */
  final(): Buffer;
}

export interface NativeMatcher {
  update(data: Uint8Array): Promise<MatchResult>;
  /** Flushes the tail (short-window matching at end of input). */
  final(): Promise<MatchResult>;
  /** Counters for --stats and tests. */
  stats(): { weakHits: number; strongCalcs: number; strongHits: number; chainCapped: number; distrusted: number; slicedBatches: number };
}

export interface NativeHasher {
  update(data: Uint8Array): Promise<void>;
  updateSync(data: Uint8Array): void;
  digest(): Buffer;
}

export interface NativeAddon {
  /** Weak-sum width in bytes for a rolling kind (ds64: 8, rollsum/rabinkarp: 4). */
  weakWidth(kind: RollingKind): number;
  /** Full digest length of a strong kind. */
  strongFullLen(kind: StrongKind): number;
  hash(kind: StrongKind, data: Uint8Array): Buffer;
  /**
   * Copies `count` rows of `rowLen` bytes, row r from `src[srcStart + r * srcStride]` to
   * `dst[dstStart + r * dstStride]`, in order (repacks whole signature tables in one call).
   * Throws a RangeError when a row would run past either buffer.
   */
  copyRows(src: Uint8Array, srcStart: number, srcStride: number, dst: Uint8Array, dstStart: number, dstStride: number, rowLen: number, count: number): void;
  /** Fills `buf` with random bytes from the kernel (getrandom); returns it. */
  randomFill<T extends Uint8Array>(buf: T): T;
  /** Weak checksum of a whole window (tests). */
  rollingDigest(kind: RollingKind, data: Uint8Array): bigint;
  simdLevel(): string;
  simdDetected(): string;
  /** Threads the native code splits large work across: DELTASYNC_THREADS, else the cores this process may run on. */
  workerThreads(): number;
  /** Force a SIMD level for this process; false if the CPU lacks it. */
  setSimdLevel(name: string): boolean;
  SignatureBuilder: new (params: BlockParams) => NativeSignatureBuilder;
  Matcher: new (
    params: BlockParams & {
      blocks: Uint8Array;
      blockCount: number;
      lastBlockLen: number;
      /** --inplace receiver: accept a block only at a stream offset ≤ its basis offset. */
      inPlace?: boolean;
      /**
       * Sparse signature (lib/sparse-signature.ts): `blocks` holds the anchor entries only (every
       * anchorStride-th block and the last), `checks` checkLen bytes for every block.
       */
      anchorStride?: number;
      checks?: Uint8Array;
      checkLen?: number;
    },
  ) => NativeMatcher;
  Hasher: new (kind: StrongKind) => NativeHasher;
  /**
   * Protocol frame splitter (native/protocol/frames.h): the whole frames in `buffer` as
   * [type, payloadOffset, length] triples, the bytes they cover, and the bytes the next frame
   * needs in all (5 while its header is incomplete; 0 after a bad header). `error` describes a
   * bad header at `consumed`.
   */
  splitFrames(buffer: Uint8Array, maxPayload: number): { frames: Float64Array; consumed: number; need: number; error?: string };
  /**
   * FLIST payload decoder (native/protocol/file_list.h): 15 numbers per entry (see
   * lib/protocol/messages.ts) and the full paths back to back, or a one-line error in which
   * "{path}" stands for `path`.
   */
  decodeFileList(
    payload: Uint8Array,
    prevPath: Uint8Array,
  ): { fields: Float64Array; paths: Buffer; error?: undefined } | { error: string; path?: Buffer };
  /**
   * Decoder of the small binary messages (native/protocol/messages.h: REQUEST, FILE_BEGIN,
   * FILE_END, FILE_ERROR, PROGRESS, LOG): their fields in wire order, strings as offset and
   * length in `payload`; or a one-line error.
   */
  decodeMessage(type: number, payload: Uint8Array): Float64Array | string;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('deltasync: cannot find the package root');
    dir = parent;
  }
  return dir;
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeAddon;
  const root = packageRoot();
  try {
    return nodeGypBuild(root);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).trim().split('\n')[0];
    throw new DeltaSyncError(
      'ERR_NO_ADDON',
      `no usable native addon for ${process.platform}-${process.arch} (node ${process.versions.node}): ` +
        `no prebuilt binary loaded and none was built here (${why}). ` +
        `Fix: install a C++17 compiler, python3 and make, then run \`npm rebuild deltasync\` ` +
        `(or \`npx node-gyp rebuild\` inside ${root}).`,
      { cause: err },
    );
  }
}

export const native: NativeAddon = load();
