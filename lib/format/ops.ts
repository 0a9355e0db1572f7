// Format-independent delta ops, and the incremental decoder both delta formats share (the
// parsing itself is native: native/format/delta_decoder.cc).
import type { Format, StrongKind } from '../params.js';
import { finishDecoder, nativeFormat, pushChunk } from './native-decoder.js';
import type { NativeDeltaDecoder } from './native-decoder.js';

/** Copy `length` bytes of the basis starting at `offset`. */
export interface CopyOp {
  kind: 'copy';
  offset: number;
  length: number;
}

/** Append `data` (a whole LITERAL command's bytes, or a piece of one while streaming). */
export interface LiteralOp {
  kind: 'literal';
  data: Buffer;
}

export type DeltaOp = CopyOp | LiteralOp;

/** Writes one delta, command after command, into a ByteWriter (see each format module). */
export interface DeltaEncoder {
  readonly format: Format;
  /**
   * Magic and header. `resultSize` is recorded when the format can carry it and it is known;
   * `grid` (the signature's strong kind and block length) by formats whose result digest needs it.
   */
  header(resultSize?: number, grid?: { strong: StrongKind; blockLen: number }): void;
  copy(offset: number, length: number): void;
  /** One LITERAL command made of `parts` (total `length` ≥ 1 bytes). */
  literal(parts: readonly Uint8Array[], length: number): void;
  /** END (and, for deltasync, the block digest of the result). */
  end(resultHash?: Uint8Array): void;
  /** Encoded bytes produced since the previous call. */
  take(): Buffer[];
  /** Total encoded bytes so far. */
  readonly bytesWritten: number;
}

/**
 * Longest unit a decoder step parses at once (magic+header, a command header, the trailer).
 * Literal payloads are not units: they stream through.
 */
export const MAX_UNIT_BYTES = 40;

/**
 * Incremental delta decoder: push() chunks of any size, get ops out, finish() at the end.
 * The bytes are parsed and bounded in native code (native/format/delta_decoder.cc); memory is
 * bounded by MAX_UNIT_BYTES plus the chunk, and literal payloads are handed out as views of the
 * pushed chunks, possibly split.
 */
export abstract class DecoderBase {
  protected readonly decoder: NativeDeltaDecoder;
  private hash: Buffer | undefined;

  /** `basisSize`, when given, makes every COPY beyond it an ERR_CORRUPT at decode time. */
  protected constructor(format: Format | 'auto', basisSize?: number) {
    this.decoder = new nativeFormat.DeltaDecoder(format, basisSize);
  }

  /** Result size recorded in the delta, if any (known after the header). */
  get resultSize(): number | undefined {
    return this.decoder.resultSize;
  }
  /** Whole-file hash of the result (deltasync format, known once done). */
  get resultHash(): Buffer | undefined {
    this.hash ??= this.decoder.resultHash;
    return this.hash;
  }
  /** deltasync: strong kind and block length of the result digest's grid (after the header). */
  get grid(): { strong: StrongKind; blockLen: number } | undefined {
    return this.decoder.grid;
  }
  /** Bytes of output the ops decoded so far describe. */
  get outputBytes(): number {
    return this.decoder.outputBytes;
  }
  /** Bytes of delta consumed. */
  get inputBytes(): number {
    return this.decoder.inputBytes;
  }
  /** True once END (and any trailer) has been read. */
  get done(): boolean {
    return this.decoder.done;
  }

  /**
   * Feeds a chunk; appends decoded ops to `out` (literal data are views of `chunk`). Throws
   * DeltaSyncError on bad input, after appending the ops that came before it.
   */
  push(chunk: Buffer, out: DeltaOp[]): void {
    pushChunk(this.decoder, chunk, out);
  }

  /** Declares the end of the delta; throws if it stopped early. */
  finish(): void {
    finishDecoder(this.decoder);
  }
}

/** A decoder of one known format (see the format modules). */
export abstract class DeltaDecoder extends DecoderBase {
  abstract readonly format: Format;
}
