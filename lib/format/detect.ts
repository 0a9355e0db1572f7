// Format detection by magic number, and format-independent delta coder factories.
import type { Format } from '../params.js';
import { DS_DELTA_MAGIC, DS_SIG_MAGIC, DsDeltaEncoder } from './deltasync.js';
import { nativeFormat, unwrap } from './native-decoder.js';
import { DecoderBase } from './ops.js';
import type { DeltaEncoder } from './ops.js';
import { RS_DELTA_MAGIC, RdiffDeltaEncoder, isRdiffSigMagic } from './rdiff.js';

export type FileKind = 'signature' | 'delta';

/** What the first four bytes say: format and kind, or null for an unknown magic. */
export function identifyMagic(magic: number): { format: Format; kind: FileKind } | null {
  if (magic === DS_SIG_MAGIC) return { format: 'deltasync', kind: 'signature' };
  if (magic === DS_DELTA_MAGIC) return { format: 'deltasync', kind: 'delta' };
  if (isRdiffSigMagic(magic)) return { format: 'rdiff', kind: 'signature' };
  if (magic === RS_DELTA_MAGIC) return { format: 'rdiff', kind: 'delta' };
  return null;
}

/** Reads and identifies the magic at the start of `buf` (natively); throws if it is not `want`. */
export function expectMagic(buf: Uint8Array, want: FileKind): Format {
  return unwrap(nativeFormat.expectMagic(buf, want)).format;
}

/** A new delta encoder for a format. */
export function createDeltaEncoder(format: Format): DeltaEncoder {
  return format === 'rdiff' ? new RdiffDeltaEncoder() : new DsDeltaEncoder();
}

/** Delta decoder that picks the format from the magic number (parsing is native). */
export class AutoDeltaDecoder extends DecoderBase {
  /** `basisSize`, when given, makes every COPY beyond it an ERR_CORRUPT at decode time. */
  constructor(basisSize?: number) {
    super('auto', basisSize);
  }

  /** Format, once the magic has been seen. */
  get format(): Format | undefined {
    return this.decoder.format;
  }
}
