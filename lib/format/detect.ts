// Format detection by magic number, and format-independent delta coder factories.
import { DeltaSyncError } from '../errors.js';
import type { Format } from '../params.js';
import { readUintBE } from './bytes.js';
import { DS_DELTA_MAGIC, DS_SIG_MAGIC, DsDeltaDecoder, DsDeltaEncoder } from './deltasync.js';
import type { DeltaDecoder, DeltaEncoder, DeltaOp } from './ops.js';
import { RS_DELTA_MAGIC, RdiffDeltaDecoder, RdiffDeltaEncoder, isRdiffSigMagic } from './rdiff.js';

export type FileKind = 'signature' | 'delta';

/** What the first four bytes say: format and kind, or null for an unknown magic. */
export function identifyMagic(magic: number): { format: Format; kind: FileKind } | null {
  if (magic === DS_SIG_MAGIC) return { format: 'deltasync', kind: 'signature' };
  if (magic === DS_DELTA_MAGIC) return { format: 'deltasync', kind: 'delta' };
  if (isRdiffSigMagic(magic)) return { format: 'rdiff', kind: 'signature' };
  if (magic === RS_DELTA_MAGIC) return { format: 'rdiff', kind: 'delta' };
  return null;
}

/** Reads and identifies the magic at the start of `buf`; throws if it is not `want`. */
export function expectMagic(buf: Uint8Array, want: FileKind): Format {
  if (buf.length < 4) {
    throw new DeltaSyncError('ERR_TRUNCATED', buf.length === 0 ? `empty ${want}` : `${want} truncated inside the magic number`);
  }
  const magic = readUintBE(buf, 0, 4)!;
  const id = identifyMagic(magic);
  if (!id) throw new DeltaSyncError('ERR_BAD_MAGIC', `not a ${want} (unknown magic 0x${magic.toString(16).padStart(8, '0')})`);
  if (id.kind !== want) throw new DeltaSyncError('ERR_BAD_MAGIC', `expected a ${want} but got a ${id.format} ${id.kind}`);
  return id.format;
}

/** A new delta encoder for a format. */
export function createDeltaEncoder(format: Format): DeltaEncoder {
  return format === 'rdiff' ? new RdiffDeltaEncoder() : new DsDeltaEncoder();
}

/** Delta decoder that picks the format from the magic number. */
export class AutoDeltaDecoder {
  private inner: DeltaDecoder | undefined;
  private head: Buffer = Buffer.alloc(0);

  /** Format, once the magic has been seen. */
  get format(): Format | undefined {
    return this.inner?.format;
  }
  get resultSize(): number | undefined {
    return this.inner?.resultSize;
  }
  get resultHash(): Buffer | undefined {
    return this.inner?.resultHash;
  }
  get outputBytes(): number {
    return this.inner?.outputBytes ?? 0;
  }
  get done(): boolean {
    return this.inner?.done ?? false;
  }

  push(chunk: Buffer, out: DeltaOp[]): void {
    if (this.inner) {
      this.inner.push(chunk, out);
      return;
    }
    const all = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
    if (all.length < 4) {
      this.head = Buffer.from(all);
      return;
    }
    const format = expectMagic(all, 'delta');
    this.inner = format === 'rdiff' ? new RdiffDeltaDecoder() : new DsDeltaDecoder();
    this.head = Buffer.alloc(0);
    this.inner.push(all, out);
  }

  finish(): void {
    if (!this.inner) expectMagic(this.head, 'delta');
    this.inner!.finish();
  }
}
