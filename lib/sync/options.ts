// Sync options: the public API shape (SyncOptions), the resolved transfer settings both ends
// agree on (TransferOptions, sent to the remote end in SESSION), and their validation.
import { DeltaSyncError } from '../errors.js';
import type { StrongKind } from '../native.js';
import { MAX_BLOCK_LEN, STRONG_KINDS } from '../params.js';
import { patternRule, validateRules, type FilterRule, parseFilterRule } from './filter.js';
import type { SyncItem } from './itemize.js';

/** Progress of a sync, reported through {@link SyncOptions.onProgress}. */
export interface SyncProgress {
  /** File being transferred, relative to the destination root. */
  path: string;
  /** Bytes of that file written so far. */
  fileBytes: number;
  /** Size of that file. */
  fileSize: number;
  /** True on the last report for the file. */
  fileDone: boolean;
  /** Bytes of all transferred files done so far. */
  bytesDone: number;
  /** Bytes of all files known to need a transfer so far (grows while the file list streams in). */
  bytesTotal: number;
  /** Files finished so far. */
  filesDone: number;
  /** Files known to need a transfer so far (grows like bytesTotal). */
  filesTotal: number;
}

/** A message about one file or the run (warnings, errors that did not stop the run). */
export interface SyncMessage {
  /** 'error': something (usually one file) failed but the run went on; it then ends with ERR_PARTIAL. */
  level: 'info' | 'warning' | 'error';
  /** One line, without the `deltasync:` prefix the CLI adds. */
  message: string;
  /** File concerned, relative to the destination root, when there is one. */
  path?: string;
}

/** Options of {@link sync}. Defaults follow rsync's. */
export interface SyncOptions {
  /** `-a`: recursive, links, perms, times, group, owner (as root), devices and specials (as root). */
  archive?: boolean;
  /** `-r`: recurse into directories. */
  recursive?: boolean;
  /** `-l`: copy symlinks as symlinks. */
  links?: boolean;
  /** `-L`: copy the referent of symlinks instead. */
  copyLinks?: boolean;
  /** `-p`: preserve permissions. */
  perms?: boolean;
  /** `-t`: preserve modification times. */
  times?: boolean;
  /** `-o`: preserve owner (only effective as root). */
  owner?: boolean;
  /** `-g`: preserve group (as root, or for groups the receiving user belongs to). */
  group?: boolean;
  /** `--devices`: copy device files (root only). */
  devices?: boolean;
  /** `--specials`: copy FIFOs (sockets are skipped). */
  specials?: boolean;
  /** `-n`: report what would change, change nothing. */
  dryRun?: boolean;
  /** `--delete`: delete destination files that are not in the source (after the transfer). */
  delete?: boolean;
  /** `--delete-excluded`: also delete excluded files on the receiver. */
  deleteExcluded?: boolean;
  /** `-c`: compare whole-file checksums instead of size + mtime. */
  checksum?: boolean;
  /** `-I`: transfer even files whose size and mtime match. */
  ignoreTimes?: boolean;
  /** `--size-only`: skip files whose size matches. */
  sizeOnly?: boolean;
  /** `-u`: skip files that are newer on the receiver. */
  update?: boolean;
  /** `--ignore-existing`: skip files that exist on the receiver. */
  ignoreExisting?: boolean;
  /** `--modify-window`: mtimes within this many seconds are equal (default 0: same microsecond). */
  modifyWindow?: number;
  /**
   * `-W` (true) / `--no-whole-file` (false): send whole files instead of deltas. Default: true
   * for a local sync (reading the basis costs more than copying), false over a remote shell.
   */
  wholeFile?: boolean;
  /** `--inplace`: write updated data directly into the destination file. */
  inplace?: boolean;
  /** `--append`: only send data past the end of shorter destination files. */
  append?: boolean;
  /** `--append-verify`: like append, and verify the whole file (redo it on a mismatch). */
  appendVerify?: boolean;
  /** `--partial`: keep a partially transferred file (it is the basis of the next run). */
  partial?: boolean;
  /** `--partial-dir`: keep partial files in this directory (relative: beside each file). */
  partialDir?: string;
  /** `--block-size`: block length of the signatures (default ≈ √size). */
  blockSize?: number;
  /** `--checksum-choice`: strong hash for blocks and `-c` (xxh3, md4, blake2b). */
  checksumChoice?: StrongKind;
  /** `-z`: compress the connection (zlib). */
  compress?: boolean;
  /** `--compress-level`: zlib level 1..9 (default 6). */
  compressLevel?: number;
  /** `--bwlimit`: limit the bytes the sending side writes, in KiB per second. */
  bwlimit?: number;
  /** fsync each file before renaming it into place (default false, as rsync; `--fsync`). */
  fsync?: boolean;
  /**
   * Signature cache of the receiving end (docs/SIGCACHE.md): a directory there, or false to
   * disable it. Default: the receiving end's default cache directory.
   */
  sigCache?: string | false;
  /** Filter rules in rsync syntax ("- *.o", "+ /src/", "P keep/"), in order. */
  filter?: string[];
  /** Exclude patterns (after `filter`). */
  exclude?: string[];
  /** Include patterns (after `filter`, before `exclude`). */
  include?: string[];
  /** Remote shell command (default `ssh`, or $DELTASYNC_RSH). */
  rsh?: string;
  /** Program run on the remote end (default `deltasync`). */
  remotePath?: string;
  /** Called with progress while files are transferred. */
  onProgress?: (progress: SyncProgress) => void;
  /** Called for every change (the records behind `-i`). */
  onItem?: (item: SyncItem) => void;
  /** Called for warnings and per-file errors (the run goes on). */
  onMessage?: (message: SyncMessage) => void;
  /** Aborting stops the run: no destination file is left torn (`--partial` keeps partial data). */
  signal?: AbortSignal;
}

/** Settings both ends of a transfer use; sent to the remote end in SESSION. */
export interface TransferOptions {
  recursive: boolean;
  links: boolean;
  copyLinks: boolean;
  perms: boolean;
  times: boolean;
  owner: boolean;
  group: boolean;
  devices: boolean;
  specials: boolean;
  dryRun: boolean;
  delete: boolean;
  deleteExcluded: boolean;
  checksum: boolean;
  ignoreTimes: boolean;
  sizeOnly: boolean;
  update: boolean;
  ignoreExisting: boolean;
  modifyWindow: number;
  wholeFile: boolean;
  inplace: boolean;
  append: 'no' | 'append' | 'verify';
  partial: boolean;
  partialDir: string | null;
  blockSize: number;
  checksumChoice: StrongKind;
  fsync: boolean;
  /** Receiver's signature cache: null disabled, '' its default directory, else a directory. */
  sigCache: string | null;
  filters: FilterRule[];
  /** Bytes per second for the sending role's writes (0: unlimited). */
  bwlimit: number;
  /** The client wants ITEM records and PROGRESS from a remote receiver. */
  wantItems: boolean;
  wantProgress: boolean;
}

function usage(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_USAGE', message);
}

/** Builds the rule list from the API's filter/include/exclude fields (in that order). */
export function rulesFromOptions(o: SyncOptions): FilterRule[] {
  const rules: FilterRule[] = [];
  for (const f of o.filter ?? []) rules.push(...parseFilterRule(f));
  for (const p of o.include ?? []) rules.push(...patternRule(p, 'include'));
  for (const p of o.exclude ?? []) rules.push(...patternRule(p, 'exclude'));
  return rules;
}

/**
 * Resolves API options into transfer settings. `remote` selects the whole-file default.
 * Throws ERR_USAGE for invalid values or combinations.
 */
export function resolveTransferOptions(o: SyncOptions, remote: boolean, rules?: FilterRule[]): TransferOptions {
  const a = o.archive === true;
  const blockSize = o.blockSize ?? 0;
  if (!Number.isSafeInteger(blockSize) || blockSize < 0 || blockSize > MAX_BLOCK_LEN) {
    throw usage(`--block-size must be an integer in 1..${MAX_BLOCK_LEN}`);
  }
  const checksumChoice = o.checksumChoice ?? 'xxh3';
  if (!STRONG_KINDS.includes(checksumChoice)) throw usage(`--checksum-choice must be one of ${STRONG_KINDS.join(', ')}`);
  const bwlimit = o.bwlimit ?? 0;
  if (typeof bwlimit !== 'number' || !Number.isFinite(bwlimit) || bwlimit < 0) throw usage('--bwlimit must be a non-negative number');
  const modifyWindow = o.modifyWindow ?? 0;
  if (!Number.isFinite(modifyWindow) || modifyWindow < 0) throw usage('--modify-window must be a non-negative number');
  if (o.compressLevel !== undefined && (!Number.isInteger(o.compressLevel) || o.compressLevel < 1 || o.compressLevel > 9)) {
    throw usage('--compress-level must be an integer in 1..9');
  }
  const append = o.appendVerify ? 'verify' : o.append ? 'append' : 'no';
  if (o.partialDir !== undefined && (o.partialDir === '' || o.partialDir.includes('\0'))) throw usage('--partial-dir needs a directory name');
  const inplace = o.inplace === true || append !== 'no';
  if (inplace && (o.partialDir !== undefined)) throw usage('--partial-dir cannot be combined with --inplace or --append');
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return {
    recursive: o.recursive ?? a,
    links: o.links ?? a,
    copyLinks: o.copyLinks ?? false,
    perms: o.perms ?? a,
    times: o.times ?? a,
    owner: o.owner ?? a,
    group: o.group ?? a,
    devices: o.devices ?? (a && root),
    specials: o.specials ?? a,
    dryRun: o.dryRun ?? false,
    delete: (o.delete ?? false) || (o.deleteExcluded ?? false),
    deleteExcluded: o.deleteExcluded ?? false,
    checksum: o.checksum ?? false,
    ignoreTimes: o.ignoreTimes ?? false,
    sizeOnly: o.sizeOnly ?? false,
    update: o.update ?? false,
    ignoreExisting: o.ignoreExisting ?? false,
    modifyWindow,
    wholeFile: append !== 'no' ? false : (o.wholeFile ?? !remote),
    inplace,
    append,
    partial: (o.partial ?? false) || o.partialDir !== undefined,
    partialDir: o.partialDir ?? null,
    blockSize,
    checksumChoice,
    fsync: o.fsync ?? false,
    sigCache: o.sigCache === false ? null : (o.sigCache ?? ''),
    filters: rules ?? rulesFromOptions(o),
    bwlimit: Math.round(bwlimit * 1024),
    wantItems: false,
    wantProgress: false,
  };
}

/** Validates TransferOptions received from the other end (untrusted). */
export function validateTransferOptions(value: unknown): TransferOptions {
  const bad = (what: string): never => {
    throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: SESSION has an invalid option ${what}`);
  };
  if (value === null || typeof value !== 'object') bad('object');
  const v = value as Record<string, unknown>;
  const bool = (k: string): boolean => (typeof v[k] === 'boolean' ? (v[k] as boolean) : bad(k));
  const num = (k: string, max: number): number => {
    const n = v[k];
    return typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= max ? n : bad(k);
  };
  const append = v.append;
  if (append !== 'no' && append !== 'append' && append !== 'verify') bad('append');
  const choice = v.checksumChoice;
  if (typeof choice !== 'string' || !STRONG_KINDS.includes(choice as StrongKind)) bad('checksumChoice');
  const partialDir = v.partialDir;
  if (partialDir !== null && (typeof partialDir !== 'string' || partialDir === '' || partialDir.includes('\0'))) bad('partialDir');
  const sigCache = v.sigCache;
  if (sigCache !== null && (typeof sigCache !== 'string' || sigCache.includes('\0'))) bad('sigCache');
  return {
    recursive: bool('recursive'),
    links: bool('links'),
    copyLinks: bool('copyLinks'),
    perms: bool('perms'),
    times: bool('times'),
    owner: bool('owner'),
    group: bool('group'),
    devices: bool('devices'),
    specials: bool('specials'),
    dryRun: bool('dryRun'),
    delete: bool('delete'),
    deleteExcluded: bool('deleteExcluded'),
    checksum: bool('checksum'),
    ignoreTimes: bool('ignoreTimes'),
    sizeOnly: bool('sizeOnly'),
    update: bool('update'),
    ignoreExisting: bool('ignoreExisting'),
    modifyWindow: num('modifyWindow', 1e9),
    wholeFile: bool('wholeFile'),
    inplace: bool('inplace'),
    append: append as TransferOptions['append'],
    partial: bool('partial'),
    partialDir: partialDir as string | null,
    blockSize: num('blockSize', MAX_BLOCK_LEN),
    checksumChoice: choice as StrongKind,
    fsync: bool('fsync'),
    sigCache: sigCache as string | null,
    filters: validateRules(v.filters),
    bwlimit: num('bwlimit', 1e12),
    wantItems: bool('wantItems'),
    wantProgress: bool('wantProgress'),
  };
}
