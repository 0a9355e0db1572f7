// Format-independent delta ops, and the incremental decoder skeleton both delta formats share.
import { DeltaSyncError } from '../errors.js';
import { MAX_FILE_SIZE } from '../params.js';
import type { Format } from '../params.js';

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
  /** Magic and header. `resultSize` is recorded when the format can carry it and it is known. */
  header(resultSize?: number): void;
  copy(offset: number, length: number): void;
  /** One LITERAL command made of `parts` (total `length` ≥ 1 bytes). */
  literal(parts: readonly Uint8Array[], length: number): void;
  /** END (and, for deltasync, the whole-file hash of the result). */
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
 * Memory is bounded by MAX_UNIT_BYTES plus the chunk; literal payloads are handed out as
 * views of the pushed chunks, possibly split.
 */
export abstract class DeltaDecoder {
  abstract readonly format: Format;
  /** Result size recorded in the delta, if any (known after the header). */
  resultSize: number | undefined;
  /** Whole-file hash of the result (deltasync format, known once done). */
  resultHash: Buffer | undefined;
  /** Bytes of output the ops decoded so far describe. */
  outputBytes = 0;
  /** Bytes of delta consumed. */
  inputBytes = 0;
  /** True once END (and any trailer) has been read. */
  done = false;

  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of the current LITERAL command still to come. */
  protected literalLeft = 0;

  /**
   * Parses one unit at buf[pos..end): returns the position after it, or -1 if the unit is not
   * complete yet. Must not consume literal payload bytes: set `literalLeft` instead.
   */
  protected abstract step(buf: Buffer, pos: number, end: number, out: DeltaOp[]): number;

  /** Name of the thing being decoded, for messages. */
  protected abstract readonly what: string;

  /** Feeds a chunk; appends decoded ops to `out`. Throws DeltaSyncError on bad input. */
  push(chunk: Buffer, out: DeltaOp[]): void {
    let pos = 0;
    const end = chunk.length;
    this.inputBytes += end;
    if (this.pending.length > 0) {
      // Finish the incomplete unit from the pending bytes plus the head of this chunk.
      const head = Buffer.concat([this.pending, chunk.subarray(0, MAX_UNIT_BYTES)]);
      const next = this.step(head, 0, head.length, out);
      if (next < 0) {
        if (end >= MAX_UNIT_BYTES) throw new Error('deltasync: decoder unit longer than MAX_UNIT_BYTES');
        this.pending = head;
        return;
      }
      pos = next - this.pending.length;
      this.pending = Buffer.alloc(0);
    }
    while (pos < end) {
      if (this.literalLeft > 0) {
        const n = Math.min(this.literalLeft, end - pos);
        out.push({ kind: 'literal', data: chunk.subarray(pos, pos + n) });
        this.literalLeft -= n;
        pos += n;
        continue;
      }
      if (this.done) this.trailing();
      const next = this.step(chunk, pos, end, out);
      if (next < 0) {
        this.pending = Buffer.from(chunk.subarray(pos, end));
        return;
      }
      pos = next;
    }
  }

  /** Declares the end of the delta; throws if it stopped early. */
  finish(): void {
    if (this.done && this.pending.length === 0 && this.literalLeft === 0) return;
    if (this.literalLeft > 0) {
      throw new DeltaSyncError('ERR_CORRUPT', `${this.what}: literal runs ${this.literalLeft} bytes past the end of the delta`);
    }
    if (this.inputBytes === 0) throw new DeltaSyncError('ERR_TRUNCATED', `${this.what}: empty input`);
    throw new DeltaSyncError('ERR_TRUNCATED', `${this.what}: truncated after ${this.inputBytes} bytes (${this.expecting()})`);
  }

  /** What the decoder is waiting for, for the truncation message. */
  protected abstract expecting(): string;

  private trailing(): never {
    throw new DeltaSyncError('ERR_CORRUPT', `${this.what}: unexpected data after the END command`);
  }

  /** Accounts for an op's output and checks it against the bounds. */
  protected addOutput(length: number): void {
    this.outputBytes += length;
    if (this.outputBytes > MAX_FILE_SIZE) {
      throw new DeltaSyncError('ERR_CORRUPT', `${this.what}: ops describe more than 2^53 - 1 bytes of output`);
    }
    if (this.resultSize !== undefined && this.outputBytes > this.resultSize) {
      throw new DeltaSyncError('ERR_CORRUPT', `${this.what}: ops describe more than the declared ${this.resultSize} bytes of output`);
    }
  }
}
