// Signature parameters: kinds, bounds, defaults and option validation.
import { DeltaSyncError } from './errors.js';
import type { RollingKind, StrongKind } from './native.js';

export type { RollingKind, StrongKind } from './native.js';

/** Signature/delta format: deltasync's own, or librsync's (`rdiff`). */
export type Format = 'deltasync' | 'rdiff';

/** Options of {@link signature} and friends. Every field is optional; see each for its default. */
export interface SignatureOptions {
  /** Format of the signature (and of deltas made from it). Default `'deltasync'`. */
  format?: Format;
  /**
   * Block length in bytes, 1..64 MiB; 0 or undefined means the default:
   * deltasync ≈ √size rounded down to a multiple of 8, min 700, max 128 KiB (rsync's rule);
   * rdiff: rdiff 2.3.2's recommended length (256 up to 64 KiB, else √size rounded down to a
   * multiple of 128; 2048 when the size is unknown).
   */
  blockLen?: number;
  /**
   * Bytes of the strong hash kept per block, 1..full digest length; 0 or undefined means the
   * default: deltasync derives it from the file size and block count so that a false block match
   * stays below 2^-64 over the whole file (8..16 bytes; 16 when the size is unknown); rdiff uses
   * the full length (32 for blake2b, 16 for md4), as `rdiff signature` does.
   */
  strongLen?: number;
  /** Strong hash: deltasync default `'xxh3'`; rdiff default `'blake2b'` (`'md4'` allowed, `'xxh3'` not). */
  strong?: StrongKind;
  /** Rolling checksum: deltasync default `'ds64'`; rdiff default `'rabinkarp'` (`'rollsum'` allowed, `'ds64'` not). */
  rolling?: RollingKind;
  /** Size hint for stream inputs (used for the defaults); Buffers and files know their size. */
  fileSize?: number;
}

/** Fully resolved signature parameters. */
export interface SignatureParams {
  format: Format;
  blockLen: number;
  strongLen: number;
  strong: StrongKind;
  rolling: RollingKind;
}

export const FORMATS: readonly Format[] = ['deltasync', 'rdiff'];
export const ROLLING_KINDS: readonly RollingKind[] = ['ds64', 'rollsum', 'rabinkarp'];
export const STRONG_KINDS: readonly StrongKind[] = ['xxh3', 'md4', 'blake2b'];

/** Kinds each format can carry. */
export const FORMAT_KINDS: Record<Format, { rolling: readonly RollingKind[]; strong: readonly StrongKind[] }> = {
  deltasync: { rolling: ROLLING_KINDS, strong: STRONG_KINDS },
  rdiff: { rolling: ['rollsum', 'rabinkarp'], strong: ['md4', 'blake2b'] },
};

/** Weak-sum width in bytes (same values as native.weakWidth; checked by the tests). */
export const WEAK_WIDTH: Record<RollingKind, number> = { ds64: 8, rollsum: 4, rabinkarp: 4 };
/** Full strong digest length in bytes (same values as native.strongFullLen; checked by the tests). */
export const STRONG_FULL_LEN: Record<StrongKind, number> = { xxh3: 16, md4: 16, blake2b: 32 };

/** Largest block length accepted anywhere (options and parsed signatures): 64 MiB. */
export const MAX_BLOCK_LEN = 64 * 1024 * 1024;
/** Largest file size / offset / length handled: 2^53 - 1 (exact in a JS number). */
export const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;
/** Largest serialized signature accepted when parsing or reading: 1 GiB. */
export const MAX_SIGNATURE_BYTES = 1024 * 1024 * 1024;

/** rsync's block-length rule: min and max. */
export const DS_MIN_BLOCK_LEN = 700;
export const DS_MAX_BLOCK_LEN = 128 * 1024;
/** deltasync block length when the size is unknown (a stream without a size hint). */
export const DS_UNKNOWN_SIZE_BLOCK_LEN = 4096;
/** Bits of margin against a false block match per delta (see defaultStrongLen). */
export const DS_STRONG_MARGIN_BITS = 64;
/** deltasync default strong length bounds. */
export const DS_MIN_DEFAULT_STRONG_LEN = 8;
export const DS_MAX_DEFAULT_STRONG_LEN = 16;

/** rdiff 2.3.2: block length for files up to 256*256 bytes, and when the size is unknown. */
export const RDIFF_SMALL_BLOCK_LEN = 256;
export const RDIFF_UNKNOWN_SIZE_BLOCK_LEN = 2048;

/** floor(sqrt(n)) exactly, for 0 <= n <= 2^53. */
export function isqrt(n: number): number {
  let r = Math.floor(Math.sqrt(n));
  const N = BigInt(n);
  // Math.sqrt may be off by one for large n; fix with exact integer arithmetic.
  while (BigInt(r) * BigInt(r) > N) r--;
  while (BigInt(r + 1) * BigInt(r + 1) <= N) r++;
  return r;
}

/** Number of blocks of `blockLen` covering `size` bytes. */
export function blockCountFor(size: number, blockLen: number): number {
  return Math.ceil(size / blockLen);
}

/** Default block length for a format and a (possibly unknown) file size. */
export function defaultBlockLen(format: Format, size: number | undefined): number {
  if (format === 'rdiff') {
    // rdiff 2.3.2 (librsync rs_sig_args): 256 up to 256*256 bytes, else sqrt(size) rounded down
    // to a multiple of 128 (the BLAKE2b block size); 2048 when the size is unknown (stdin).
    if (size === undefined) return RDIFF_UNKNOWN_SIZE_BLOCK_LEN;
    if (size <= RDIFF_SMALL_BLOCK_LEN * RDIFF_SMALL_BLOCK_LEN) return RDIFF_SMALL_BLOCK_LEN;
    return isqrt(size) & ~127;
  }
  // rsync: sqrt(size) rounded down to a multiple of 8, within [700, 128 KiB].
  if (size === undefined) return DS_UNKNOWN_SIZE_BLOCK_LEN;
  if (size <= DS_MIN_BLOCK_LEN * DS_MIN_BLOCK_LEN) return DS_MIN_BLOCK_LEN;
  const root = Math.floor(isqrt(size) / 8) * 8;
  return Math.min(DS_MAX_BLOCK_LEN, Math.max(DS_MIN_BLOCK_LEN, root));
}

/**
 * Default strong length.
 *
 * rdiff: the full digest (what `rdiff signature` writes by default).
 *
 * deltasync: worst case, every byte offset of a new file of about the basis size is compared with
 * every block, so about size × blockCount strong comparisons; with n strong bits a false match
 * has probability ≤ size × blockCount / 2^n. We take n ≥ log2(size) + log2(blockCount) + 64
 * (ignoring the weak sum, which an adversary or structured data can make collide), rounded up to
 * whole bytes and kept within [8, 16] and the digest length. Unknown size: 16.
 */
export function defaultStrongLen(format: Format, strong: StrongKind, size: number | undefined, blockLen: number): number {
  const full = STRONG_FULL_LEN[strong];
  if (format === 'rdiff') return full;
  if (size === undefined) return Math.min(full, DS_MAX_DEFAULT_STRONG_LEN);
  const blocks = Math.max(1, blockCountFor(size, blockLen));
  const bits = Math.log2(Math.max(1, size)) + Math.log2(blocks) + DS_STRONG_MARGIN_BITS;
  const bytes = Math.ceil(bits / 8);
  return Math.min(full, DS_MAX_DEFAULT_STRONG_LEN, Math.max(DS_MIN_DEFAULT_STRONG_LEN, bytes));
}

function usage(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_USAGE', message);
}

function badParams(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_BAD_PARAMS', message);
}

/** Checks a block length from anywhere (options or a parsed file). Throws ERR_BAD_PARAMS. */
export function checkBlockLen(blockLen: number, where = 'block length'): void {
  if (!Number.isSafeInteger(blockLen) || blockLen < 1 || blockLen > MAX_BLOCK_LEN) {
    throw badParams(`${where} ${blockLen} out of range (1..${MAX_BLOCK_LEN})`);
  }
}

/** Checks a strong length against its hash kind. Throws ERR_BAD_PARAMS. */
export function checkStrongLen(strongLen: number, strong: StrongKind, where = 'strong sum length'): void {
  const full = STRONG_FULL_LEN[strong];
  if (!Number.isSafeInteger(strongLen) || strongLen < 1 || strongLen > full) {
    throw badParams(`${where} ${strongLen} out of range for ${strong} (1..${full})`);
  }
}

function optionalNumber(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw usage(`option ${name} must be a number, got ${String(value)}`);
  return value;
}

/**
 * Validates signature options and fills in the defaults for a file of `size` bytes
 * (undefined: unknown). Throws ERR_USAGE for wrong types/kinds, ERR_BAD_PARAMS for
 * out-of-range lengths.
 */
export function resolveSignatureParams(options: SignatureOptions | undefined, size?: number): SignatureParams {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw usage('signature options must be an object');
  }
  const o = options ?? {};
  const format = o.format ?? 'deltasync';
  if (!FORMATS.includes(format)) throw usage(`unknown format ${String(format)} (deltasync or rdiff)`);
  const kinds = FORMAT_KINDS[format];
  const strong = o.strong ?? (format === 'rdiff' ? 'blake2b' : 'xxh3');
  if (!STRONG_KINDS.includes(strong)) throw usage(`unknown strong hash ${String(strong)} (${STRONG_KINDS.join(', ')})`);
  if (!kinds.strong.includes(strong)) throw usage(`strong hash ${strong} is not available in the ${format} format (${kinds.strong.join(', ')})`);
  const rolling = o.rolling ?? (format === 'rdiff' ? 'rabinkarp' : 'ds64');
  if (!ROLLING_KINDS.includes(rolling)) throw usage(`unknown rolling checksum ${String(rolling)} (${ROLLING_KINDS.join(', ')})`);
  if (!kinds.rolling.includes(rolling)) throw usage(`rolling checksum ${rolling} is not available in the ${format} format (${kinds.rolling.join(', ')})`);

  const hint = optionalNumber(o.fileSize, 'fileSize');
  if (hint !== undefined && (!Number.isSafeInteger(hint) || hint < 0)) throw usage(`option fileSize must be a non-negative integer, got ${hint}`);
  const knownSize = size ?? hint;

  const blockOpt = optionalNumber(o.blockLen, 'blockLen');
  const blockLen = blockOpt === undefined || blockOpt === 0 ? defaultBlockLen(format, knownSize) : blockOpt;
  checkBlockLen(blockLen);

  const strongOpt = optionalNumber(o.strongLen, 'strongLen');
  const strongLen = strongOpt === undefined || strongOpt === 0 ? defaultStrongLen(format, strong, knownSize, blockLen) : strongOpt;
  checkStrongLen(strongLen, strong);

  return { format, blockLen, strongLen, strong, rolling };
}
