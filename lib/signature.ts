// Signatures: the per-block weak + strong sums of a basis file, in deltasync's or rdiff's format.
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { DeltaSyncError, ioError } from './errors.js';
import {
  DS_SIG_HEADER_LEN,
  DS_SIG_TRAILER_LEN,
  encodeDsSignatureHeader,
  parseDsSignatureHeader,
} from './format/deltasync.js';
import { expectMagic } from './format/detect.js';
import {
  RS_SIG_HEADER_LEN,
  encodeRdiffSignatureHeader,
  parseRdiffSignatureHeader,
  rdiffBlockCount,
} from './format/rdiff.js';
import { ChunkingTransform, InputSource, writeAtomically } from './io.js';
import type { Input } from './io.js';
import { native } from './native.js';
import type { NativeSignatureBuilder } from './native.js';
import {
  FORMAT_KINDS,
  FORMATS,
  MAX_FILE_SIZE,
  MAX_SIGNATURE_BYTES,
  WEAK_WIDTH,
  blockCountFor,
  checkBlockLen,
  checkStrongLen,
  resolveSignatureParams,
} from './params.js';
import type { Format, RollingKind, SignatureOptions, SignatureParams, StrongKind } from './params.js';
import { yieldIfBusy } from './event-loop.js';

export type { Input } from './io.js';

/** Fields of a {@link Signature}. */
export interface SignatureInit {
  format: Format;
  blockLen: number;
  strongLen: number;
  strong: StrongKind;
  rolling: RollingKind;
  /** Size of the basis: required for the deltasync format; the rdiff format does not record it. */
  fileSize?: number | undefined;
  /** Packed block entries: weak sum (big-endian, weakWidth bytes) then strongLen strong bytes. */
  blocks: Buffer;
}

/** A parsed or computed signature. Immutable; every field is validated on construction. */
export class Signature {
  readonly format: Format;
  readonly blockLen: number;
  readonly strongLen: number;
  readonly strong: StrongKind;
  readonly rolling: RollingKind;
  readonly blockCount: number;
  /** Size of the basis: the deltasync format records it; rdiff's doesn't (undefined). */
  readonly fileSize: number | undefined;
  /** Packed entries: weak (big-endian, native.weakWidth(rolling) bytes) + strong (strongLen). */
  readonly blocks: Buffer;

  /** Builds a signature from its parts; throws ERR_USAGE/ERR_BAD_PARAMS when they disagree. */
  constructor(init: SignatureInit) {
    if (!FORMATS.includes(init.format)) throw new DeltaSyncError('ERR_USAGE', `unknown format ${String(init.format)}`);
    const kinds = FORMAT_KINDS[init.format];
    if (!kinds.strong.includes(init.strong)) throw new DeltaSyncError('ERR_USAGE', `strong hash ${String(init.strong)} is not available in the ${init.format} format`);
    if (!kinds.rolling.includes(init.rolling)) throw new DeltaSyncError('ERR_USAGE', `rolling checksum ${String(init.rolling)} is not available in the ${init.format} format`);
    checkBlockLen(init.blockLen);
    checkStrongLen(init.strongLen, init.strong);
    if (!Buffer.isBuffer(init.blocks)) throw new DeltaSyncError('ERR_USAGE', 'signature blocks must be a Buffer');
    const entrySize = WEAK_WIDTH[init.rolling] + init.strongLen;
    const blockCount = init.blocks.length / entrySize;
    if (!Number.isInteger(blockCount)) {
      throw new DeltaSyncError('ERR_BAD_PARAMS', `signature blocks (${init.blocks.length} bytes) are not a whole number of ${entrySize}-byte entries`);
    }
    if (init.blocks.length > MAX_SIGNATURE_BYTES) {
      throw new DeltaSyncError('ERR_BAD_PARAMS', `signature blocks exceed the ${MAX_SIGNATURE_BYTES}-byte signature limit`);
    }
    if (blockCount > 0 && (blockCount - 1) * init.blockLen >= MAX_FILE_SIZE) {
      throw new DeltaSyncError('ERR_BAD_PARAMS', `${blockCount} blocks of ${init.blockLen} bytes exceed 2^53 - 1 bytes`);
    }
    let fileSize: number | undefined;
    if (init.format === 'deltasync') {
      const size = init.fileSize;
      if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
        throw new DeltaSyncError('ERR_BAD_PARAMS', 'a deltasync signature needs the basis file size');
      }
      if (blockCountFor(size, init.blockLen) !== blockCount) {
        throw new DeltaSyncError('ERR_BAD_PARAMS', `signature has ${blockCount} blocks but a ${size}-byte file has ${blockCountFor(size, init.blockLen)}`);
      }
      fileSize = size;
    }
    this.format = init.format;
    this.blockLen = init.blockLen;
    this.strongLen = init.strongLen;
    this.strong = init.strong;
    this.rolling = init.rolling;
    this.blockCount = blockCount;
    this.fileSize = fileSize;
    this.blocks = init.blocks;
  }

  /** Bytes per block entry. */
  get entrySize(): number {
    return WEAK_WIDTH[this.rolling] + this.strongLen;
  }

  /** Length of the basis's last block when known (deltasync), else 0 (rdiff: unknown). */
  get lastBlockLen(): number {
    if (this.fileSize === undefined || this.blockCount === 0) return 0;
    return this.fileSize - (this.blockCount - 1) * this.blockLen;
  }

  /** The parameters, as options that reproduce this signature's layout. */
  get params(): SignatureParams {
    return { format: this.format, blockLen: this.blockLen, strongLen: this.strongLen, strong: this.strong, rolling: this.rolling };
  }

  /** Serialized in its format (see docs/FORMAT.md). */
  toBuffer(): Buffer {
    return Buffer.concat(serializeSignature(this.params, this.blocks, this.fileSize));
  }

  /** Parses a whole serialized signature (format detected by magic), validating everything. */
  static parse(data: Uint8Array): Signature {
    if (!(data instanceof Uint8Array)) throw new DeltaSyncError('ERR_USAGE', 'Signature.parse needs a Buffer/Uint8Array');
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const format = expectMagic(buf, 'signature');
    if (format === 'rdiff') {
      const h = parseRdiffSignatureHeader(buf);
      rdiffBlockCount(h, buf.length);
      return new Signature({
        format,
        blockLen: h.blockLen,
        strongLen: h.strongLen,
        strong: h.strong,
        rolling: h.rolling,
        blocks: Buffer.from(buf.subarray(RS_SIG_HEADER_LEN)),
      });
    }
    const h = parseDsSignatureHeader(buf);
    if (buf.length < h.totalLen) {
      throw new DeltaSyncError('ERR_TRUNCATED', `deltasync signature: truncated (${buf.length} of ${h.totalLen} bytes)`);
    }
    if (buf.length > h.totalLen) {
      throw new DeltaSyncError('ERR_CORRUPT', `deltasync signature: ${buf.length - h.totalLen} unexpected bytes after the end`);
    }
    const bodyEnd = h.totalLen - DS_SIG_TRAILER_LEN;
    const expected = native.hash('xxh3', buf.subarray(0, bodyEnd));
    if (!expected.equals(buf.subarray(bodyEnd))) {
      throw new DeltaSyncError('ERR_CORRUPT', 'deltasync signature: checksum mismatch (the signature is damaged)');
    }
    return new Signature({
      format,
      blockLen: h.blockLen,
      strongLen: h.strongLen,
      strong: h.strong,
      rolling: h.rolling,
      fileSize: h.fileSize,
      blocks: Buffer.from(buf.subarray(DS_SIG_HEADER_LEN, bodyEnd)),
    });
  }

  /**
   * Reads and parses a signature from a file path, stream or buffer. The header is checked as
   * soon as it arrives, and the data read is bounded (by the size the header implies for
   * deltasync, by {@link MAX_SIGNATURE_BYTES} for rdiff).
   */
  static async read(input: Input): Promise<Signature> {
    if (input instanceof Uint8Array) return Signature.parse(input);
    const src = await InputSource.open(input, 'signature');
    try {
      if (src.size !== undefined && src.size > MAX_SIGNATURE_BYTES) {
        throw new DeltaSyncError('ERR_BAD_PARAMS', `${src.name}: ${src.size} bytes exceed the ${MAX_SIGNATURE_BYTES}-byte signature limit`);
      }
      const parts: Buffer[] = [];
      let total = 0;
      let limit = MAX_SIGNATURE_BYTES;
      let headerChecked = false;
      for await (const chunk of src.chunks()) {
        parts.push(chunk);
        total += chunk.length;
        if (!headerChecked && total >= Math.max(DS_SIG_HEADER_LEN, RS_SIG_HEADER_LEN)) {
          const head = Buffer.concat(parts, total).subarray(0, DS_SIG_HEADER_LEN);
          if (expectMagic(head, 'signature') === 'deltasync') limit = parseDsSignatureHeader(head).totalLen;
          else parseRdiffSignatureHeader(head);
          headerChecked = true;
        } else if (!headerChecked && total >= 4) {
          expectMagic(Buffer.concat(parts, total), 'signature');
        }
        if (total > limit) {
          throw new DeltaSyncError(
            limit === MAX_SIGNATURE_BYTES ? 'ERR_BAD_PARAMS' : 'ERR_CORRUPT',
            limit === MAX_SIGNATURE_BYTES
              ? `${src.name}: more than the ${MAX_SIGNATURE_BYTES}-byte signature limit`
              : `deltasync signature: unexpected bytes after the end`,
          );
        }
      }
      return Signature.parse(Buffer.concat(parts, total));
    } finally {
      await src.close();
    }
  }
}

/** Serialized signature as a list of buffers: header, entries, trailer (deltasync). */
function serializeSignature(p: SignatureParams, blocks: Buffer, fileSize: number | undefined): Buffer[] {
  if (p.format === 'rdiff') return [encodeRdiffSignatureHeader(p), blocks];
  const header = encodeDsSignatureHeader({ ...p, fileSize: fileSize! });
  const hasher = new native.Hasher('xxh3');
  hasher.updateSync(header);
  hasher.updateSync(blocks);
  return [header, blocks, hasher.digest()];
}

/** Streams chunks through a native signature builder, bounding the entries' total size. */
class EntryCollector {
  private readonly builder: NativeSignatureBuilder;
  entryBytes = 0;
  inputBytes = 0;

  constructor(private readonly params: SignatureParams) {
    this.builder = new native.SignatureBuilder({
      blockLen: params.blockLen,
      strongLen: params.strongLen,
      strong: params.strong,
      rolling: params.rolling,
    });
  }

  async update(chunk: Buffer): Promise<Buffer> {
    await yieldIfBusy();
    this.inputBytes += chunk.length;
    if (this.inputBytes > MAX_FILE_SIZE) throw new DeltaSyncError('ERR_BAD_PARAMS', 'input larger than 2^53 - 1 bytes');
    return this.count(await this.builder.update(chunk));
  }

  /** Feeds up to `length` bytes of the file at `position`; returns the entries and bytes read. */
  async updateFromFile(fd: number, position: number, length: number): Promise<{ entries: Buffer; bytesRead: number }> {
    const { entries, bytesRead } = await this.builder.updateFromFile(fd, position, length);
    this.inputBytes += bytesRead;
    if (this.inputBytes > MAX_FILE_SIZE) throw new DeltaSyncError('ERR_BAD_PARAMS', 'input larger than 2^53 - 1 bytes');
    return { entries: this.count(entries), bytesRead };
  }

  final(): Buffer {
    return this.count(this.builder.final());
  }

  private count(entries: Buffer): Buffer {
    this.entryBytes += entries.length;
    if (this.entryBytes > MAX_SIGNATURE_BYTES) {
      throw new DeltaSyncError(
        'ERR_BAD_PARAMS',
        `signature would exceed ${MAX_SIGNATURE_BYTES} bytes: use a larger block length than ${this.params.blockLen}`,
      );
    }
    return entries;
  }
}

/**
 * Input bytes per native call of {@link signatureOfFile}. Each call splits its range across the
 * cores and joins them, then comes back to JS: on 1 GiB, 2 cores against 1, 32 MiB calls gained
 * 1.40-1.53x, 128 MiB 1.69-1.74x, 256 MiB 1.77-1.87x. The entries one call returns are bounded
 * too, so that tiny blocks cannot make one call allocate far beyond the signature-size check.
 */
const FILE_RANGE_BYTES = 256 * 1024 * 1024;
const FILE_RANGE_MAX_ENTRY_BYTES = 8 * 1024 * 1024;

/** Whole blocks per native call: {@link FILE_RANGE_BYTES} of input, at most {@link FILE_RANGE_MAX_ENTRY_BYTES} of entries. */
export function fileRangeFor(p: Pick<SignatureParams, 'blockLen' | 'strongLen' | 'rolling'>): number {
  const entryBytes = WEAK_WIDTH[p.rolling] + p.strongLen;
  const blocks = Math.min(Math.floor(FILE_RANGE_BYTES / p.blockLen), Math.floor(FILE_RANGE_MAX_ENTRY_BYTES / entryBytes));
  return Math.max(1, blocks) * p.blockLen;
}

/**
 * Signature of a regular file, read by the native code itself: each core reads and hashes its
 * own range of blocks through a cache-sized buffer, so nothing large crosses into JS and the
 * kernel's copy out of the page cache is split across cores too. Undefined when `path` is
 * not a regular file (pipes, devices): the caller streams it instead.
 */
async function signatureOfFile(path: string, options: SignatureOptions | undefined): Promise<Signature | undefined> {
  let handle: FileHandle | undefined;
  try {
    let size: number;
    try {
      handle = await open(path, 'r');
      const st = await handle.stat();
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      if (!st.isFile()) return undefined;
      size = st.size;
    } catch (err) {
      throw ioError(err, path, 'open');
    }
    const params = resolveSignatureParams(options, size);
    const collector = new EntryCollector(params);
    const parts: Buffer[] = [];
    const range = fileRangeFor(params);
    // Read until a short read: a file that grew since the stat is read to its new end.
    for (let position = 0; ; ) {
      let result: { entries: Buffer; bytesRead: number };
      try {
        result = await collector.updateFromFile(handle.fd, position, range);
      } catch (err) {
        if (err instanceof DeltaSyncError) throw err;
        throw new DeltaSyncError('ERR_IO', `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { path, cause: err });
      }
      parts.push(result.entries);
      position += result.bytesRead;
      if (result.bytesRead < range) break;
    }
    parts.push(collector.final());
    return new Signature({
      ...params,
      fileSize: params.format === 'deltasync' ? collector.inputBytes : undefined,
      blocks: Buffer.concat(parts, collector.entryBytes),
    });
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Computes the signature of `input` (Buffer, file path, Readable or AsyncIterable). Regular
 * files are read by the native code on all cores; other inputs in 8 MiB chunks. Memory is
 * O(signature + chunk).
 */
export async function signature(input: Input, options?: SignatureOptions): Promise<Signature> {
  resolveSignatureParams(options); // validate the options before touching the input
  if (typeof input === 'string') {
    const sig = await signatureOfFile(input, options);
    if (sig) return sig;
  }
  const src = await InputSource.open(input, 'basis');
  try {
    const params = resolveSignatureParams(options, src.size);
    const collector = new EntryCollector(params);
    const parts: Buffer[] = [];
    // The native builder keeps no reference to a chunk once update() resolves.
    for await (const chunk of src.chunks({ reuseBuffers: true })) parts.push(await collector.update(chunk));
    parts.push(collector.final());
    return new Signature({
      ...params,
      fileSize: params.format === 'deltasync' ? collector.inputBytes : undefined,
      blocks: Buffer.concat(parts, collector.entryBytes),
    });
  } finally {
    await src.close();
  }
}

/** Transform: basis bytes in, serialized signature out. */
class SignatureStream extends ChunkingTransform {
  private readonly collector: EntryCollector;
  private entries: Buffer[] = [];
  private headerSent = false;

  constructor(private readonly params: SignatureParams) {
    super('signature stream');
    this.collector = new EntryCollector(params);
  }

  protected async processChunk(data: Buffer): Promise<void> {
    this.emitEntries(await this.collector.update(data));
  }

  protected async finish(): Promise<void> {
    this.emitEntries(this.collector.final());
    if (this.params.format === 'rdiff') {
      this.sendRdiffHeader();
    } else {
      const blocks = Buffer.concat(this.entries, this.collector.entryBytes);
      this.entries = [];
      for (const part of serializeSignature(this.params, blocks, this.collector.inputBytes)) this.push(part);
    }
  }

  private sendRdiffHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.push(encodeRdiffSignatureHeader(this.params));
  }

  private emitEntries(entries: Buffer): void {
    if (entries.length === 0) return;
    if (this.params.format === 'rdiff') {
      // rdiff's header does not depend on the size: stream entries as they come.
      this.sendRdiffHeader();
      this.push(entries);
    } else {
      // deltasync's header records the file size: hold the entries (O(signature)) until the end.
      this.entries.push(entries);
    }
  }
}

/**
 * A Transform turning basis bytes into a serialized signature. The parameters are fixed up
 * front: give `blockLen`, or `fileSize` as a hint, else the defaults for an unknown size apply.
 */
export function createSignatureStream(options?: SignatureOptions): Transform {
  return new SignatureStream(resolveSignatureParams(options));
}

/** Writes the signature of the file at `basisPath` to `sigPath` (temp file + fsync + rename). */
export async function signatureFile(basisPath: string, sigPath: string, options?: SignatureOptions): Promise<Signature> {
  if (typeof basisPath !== 'string' || typeof sigPath !== 'string') throw new DeltaSyncError('ERR_USAGE', 'signatureFile needs two paths');
  const sig = await signature(basisPath, options);
  await writeAtomically(sigPath, async (file) => {
    for (const part of serializeSignature(sig.params, sig.blocks, sig.fileSize)) await file.write(part);
  });
  return sig;
}
