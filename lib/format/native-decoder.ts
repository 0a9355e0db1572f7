// Types for native/format (the C++ decoders of untrusted signature and delta bytes), and the
// glue that turns their results into DeltaOps and DeltaSyncErrors. Internal module.
import { DeltaSyncError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { native } from '../native.js';
import type { Format } from '../params.js';
import type { RollingKind, StrongKind } from '../native.js';
import type { DeltaOp } from './ops.js';

/** Codes the native validators use: a subset of {@link ErrorCode}, same meanings. */
export type NativeFormatErrorCode = Extract<ErrorCode, 'ERR_BAD_MAGIC' | 'ERR_BAD_PARAMS' | 'ERR_TRUNCATED' | 'ERR_CORRUPT' | 'ERR_HASH_MISMATCH'>;

/** A refusal: the code and one-line message of the DeltaSyncError to raise. */
export interface NativeFormatError {
  code: NativeFormatErrorCode;
  message: string;
}

/** What every native validator returns when it refuses its input. */
export interface NativeRefusal {
  error: NativeFormatError;
}

/** `T` on success, `{ error }` on refusal. */
export type NativeResult<T> = (T & { error?: undefined }) | NativeRefusal;

/** Kinds of the triples in {@link NativeDeltaDecoder.push}'s result. */
export const NATIVE_OP_COPY = 0;
export const NATIVE_OP_LITERAL = 1;
export const NATIVE_OP_ERROR = 2;

/** native/format/delta_decoder.h through N-API. */
export interface NativeDeltaDecoder {
  /**
   * Decodes a chunk. Triples [kind, a, b]: COPY (a = basis offset, b = length), LITERAL (a =
   * offset of the payload in `chunk`, b = length), ERROR (always last; details from error()).
   */
  push(chunk: Uint8Array): Float64Array;
  /** Declares the end of the delta; null if it was complete. */
  finish(): NativeFormatError | null;
  /** The error that stopped the decoder, if any. */
  error(): NativeFormatError | null;
  /** undefined until the magic has been seen (auto mode). */
  readonly format: Format | undefined;
  readonly resultSize: number | undefined;
  /** A copy of the deltasync result hash, once read. */
  readonly resultHash: Buffer | undefined;
  /** deltasync v2: the basis block grid the result digest is defined on (after the header). */
  readonly grid: { strong: StrongKind; blockLen: number } | undefined;
  readonly outputBytes: number;
  readonly inputBytes: number;
  readonly done: boolean;
}

/** A signature header as native/format/signature_format.h reads it. */
export interface NativeSignatureHeader {
  format: Format;
  magic: number;
  rolling: RollingKind;
  strong: StrongKind;
  blockLen: number;
  strongLen: number;
  entrySize: number;
  headerLen: number;
  /** deltasync only (the rdiff format does not record them). */
  fileSize?: number;
  blockCount?: number;
  totalLen?: number;
}

/** A whole signature, validated (length, bounds, deltasync checksum). */
export interface NativeParsedSignature extends NativeSignatureHeader {
  blockCount: number;
  entriesOffset: number;
  entriesLength: number;
}

/** Result of the in-memory applier (tests and fuzzing; the product patches in lib/patch.ts). */
export interface NativeApplyResult {
  output: Buffer;
  verified: boolean;
  copiedBytes: number;
  literalBytes: number;
}

/** The members native/format/binding.cc adds to the addon. */
export interface NativeFormatAddon {
  DeltaDecoder: new (format: Format | 'auto', basisSize?: number) => NativeDeltaDecoder;
  expectMagic(data: Uint8Array, kind: 'signature' | 'delta'): NativeResult<{ format: Format }>;
  parseSignatureHeader(data: Uint8Array, format: Format): NativeResult<NativeSignatureHeader>;
  rdiffSignatureBlockCount(magic: number, blockLen: number, strongLen: number, totalLen: number): NativeResult<{ blockCount: number }>;
  parseSignature(data: Uint8Array): NativeResult<NativeParsedSignature>;
  applyDelta(basis: Uint8Array, delta: Uint8Array, maxOutput: number, chunkSizes?: number[]): NativeResult<NativeApplyResult>;
}

export const nativeFormat = native as unknown as NativeFormatAddon;

/** The DeltaSyncError for a native refusal. */
export function formatError(e: NativeFormatError): DeltaSyncError {
  return new DeltaSyncError(e.code, e.message);
}

/** The value of a native result, or throws its refusal as a DeltaSyncError. */
export function unwrap<T>(result: NativeResult<T>): T {
  if (result.error !== undefined) throw formatError(result.error);
  return result as T;
}

/**
 * Pushes `chunk` through a native decoder and appends its ops to `out` (literal data as views
 * of `chunk`). Throws the decoder's DeltaSyncError after appending the ops before it.
 */
export function pushChunk(decoder: NativeDeltaDecoder, chunk: Buffer, out: DeltaOp[]): void {
  const ops = decoder.push(chunk);
  for (let i = 0; i < ops.length; i += 3) {
    const kind = ops[i];
    const a = ops[i + 1]!;
    const b = ops[i + 2]!;
    if (kind === NATIVE_OP_COPY) out.push({ kind: 'copy', offset: a, length: b });
    else if (kind === NATIVE_OP_LITERAL) out.push({ kind: 'literal', data: chunk.subarray(a, a + b) });
    else throw formatError(decoder.error() ?? { code: 'ERR_CORRUPT', message: 'delta decoder failed' });
  }
}

/** Ends a native decoder's input; throws its DeltaSyncError if the delta was incomplete. */
export function finishDecoder(decoder: NativeDeltaDecoder): void {
  const error = decoder.finish();
  if (error) throw formatError(error);
}
