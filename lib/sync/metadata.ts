// File attributes on the receiver: comparing and setting mode, owner, group and mtime.
import { type FdHandle, lchown, lutimes } from '../fd-handle.js';
import type { BigIntStats } from 'node:fs';
import { EntryType, type FileEntry } from '../protocol/messages.js';
import { chmodNoFollow } from './dest-tree.js';
import type { TransferOptions } from './options.js';

const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const GROUPS = new Set<number>(typeof process.getgroups === 'function' ? process.getgroups() : []);

let cachedUmask: number | undefined;
/** The process umask (read once; process.umask() without arguments is deprecated). */
export function umask(): number {
  if (cachedUmask === undefined) {
    const old = process.umask(0o022);
    process.umask(old);
    cachedUmask = old;
  }
  return cachedUmask;
}

/** Modification time of a stat result in nanoseconds since the epoch. */
export function statMtimeNs(st: BigIntStats): bigint {
  return st.mtimeNs;
}

/** Entry mtime in nanoseconds. */
export function entryMtimeNs(e: FileEntry): bigint {
  return BigInt(e.mtimeSec) * 1_000_000_000n + BigInt(e.mtimeNsec);
}

/**
 * True when the destination's mtime equals the entry's. Like rsync (modify window 0), whole
 * seconds are compared; with a modify window, seconds within the window count as equal.
 * (Times are still set to the microsecond, the most Node's fs can set.)
 */
export function sameMtime(e: FileEntry, st: BigIntStats, window: number): boolean {
  const a = floorDiv(entryMtimeNs(e), 1_000_000_000n);
  const b = floorDiv(st.mtimeNs, 1_000_000_000n);
  return window > 0 ? Math.abs(Number(a - b)) <= window : a === b;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** Seconds value for utimes that lands on the entry's microsecond after libuv's truncation. */
export function mtimeSeconds(e: FileEntry): number {
  // Half a microsecond of headroom absorbs the double's rounding error either way.
  return e.mtimeSec + (Math.floor(e.mtimeNsec / 1000) + 0.5) / 1e6;
}

/** Whether owner/group can and should be set for this entry. */
export function wantOwner(opts: TransferOptions): boolean {
  return opts.owner && IS_ROOT;
}

export function wantGroup(opts: TransferOptions, gid: number): boolean {
  return opts.group && (IS_ROOT || GROUPS.has(gid));
}

/** Permission bits the destination should have. `existingMode` is the mode of a file being replaced. */
export function targetPerms(e: FileEntry, opts: TransferOptions, existingMode: number | undefined): number {
  if (opts.perms) return e.mode & 0o7777;
  if (existingMode !== undefined) return existingMode & 0o7777;
  return e.mode & 0o777 & ~umask();
}

/** Attribute differences between an entry and an existing destination (itemize columns). */
export interface AttrDiff {
  time: boolean;
  perms: boolean;
  owner: boolean;
  group: boolean;
}

export function diffAttrs(e: FileEntry, st: BigIntStats, opts: TransferOptions): AttrDiff {
  const isLink = e.type === EntryType.SYMLINK;
  return {
    time: opts.times && !sameMtime(e, st, opts.modifyWindow),
    // Linux symlinks have no permissions of their own.
    perms: opts.perms && !isLink && (Number(st.mode) & 0o7777) !== (e.mode & 0o7777),
    owner: wantOwner(opts) && Number(st.uid) !== e.uid,
    group: wantGroup(opts, e.gid) && Number(st.gid) !== e.gid,
  };
}

/** What a file we just created looks like, so that calls that change nothing can be skipped. */
export interface KnownAttrs {
  uid: number;
  /** -1 when unknown (a setgid directory gives its own group). */
  gid: number;
  mode: number;
}

/**
 * Sets attributes on an open file (the temp file before its rename, so the file appears
 * complete with its final attributes). chown comes first: it can clear setuid bits.
 * `known` (a file we created) lets calls that would change nothing be skipped.
 */
export async function applyToHandle(fh: FdHandle, e: FileEntry, opts: TransferOptions, perms: number, known?: KnownAttrs): Promise<void> {
  const owner = wantOwner(opts) && (known === undefined || known.uid !== e.uid);
  const group = wantGroup(opts, e.gid) && (known === undefined || known.gid !== e.gid);
  if (owner || group) await fh.chown(owner ? e.uid : -1, group ? e.gid : -1);
  if (known === undefined || owner || group || (known.mode & 0o7777) !== perms) await fh.chmod(perms);
  if (opts.times) {
    const t = mtimeSeconds(e);
    await fh.utimes(Date.now() / 1000, t);
  }
}

const EUID = typeof process.geteuid === 'function' ? process.geteuid() : -1;
const EGID = typeof process.getegid === 'function' ? process.getegid() : -1;

/** Attributes of a file we create with `open(path, 'wx', mode)` in a directory. */
export function createdAttrs(mode: number, setgidDir: boolean): KnownAttrs {
  return { uid: EUID, gid: setgidDir ? -1 : EGID, mode: mode & ~umask() & 0o777 };
}

/**
 * Sets owner/group/perms/times by path, for what `diff` says differs. Never follows a final
 * symlink (lchown, lutimes, chmod through an O_PATH|O_NOFOLLOW descriptor): a symlink swapped in
 * at `path` cannot redirect the change to its target. With a handle path of the destination
 * tree (`DirHandle.at(name)`) no component is followed at all.
 */
export async function applyToPath(path: string, e: FileEntry, diff: AttrDiff): Promise<void> {
  const isLink = e.type === EntryType.SYMLINK;
  if (diff.owner || diff.group) {
    await lchown(path, diff.owner ? e.uid : -1, diff.group ? e.gid : -1);
  }
  if (diff.perms && !isLink) await chmodNoFollow(path, e.mode & 0o7777);
  if (diff.time) {
    // lutimes sets a non-link's own times too.
    await lutimes(path, Date.now() / 1000, mtimeSeconds(e));
  }
}
