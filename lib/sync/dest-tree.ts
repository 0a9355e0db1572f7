// The destination tree through directory handles (Linux).
//
// Node has no openat(). Instead every destination directory is held open (O_PATH, opened from
// its parent's handle with O_DIRECTORY|O_NOFOLLOW, component by component from the root), and
// entries are addressed as `/proc/self/fd/<dirfd>/<name>`: the kernel resolves that magic link to
// the directory the descriptor refers to, not to a path, so the lookup of `name` happens in that
// directory exactly as openat(dirfd, name) would. A directory swapped for a symlink after its
// handle was opened cannot redirect anything; one swapped before is refused (ENOTDIR). The final
// component is never followed: creates are O_EXCL|O_NOFOLLOW, rename/unlink/rmdir/mkdir/symlink
// and lchown/lutimes act on the name itself, chmod goes through an O_PATH|O_NOFOLLOW descriptor.
//
// A handle path is only meaningful while its descriptor is open: handles are leased (pinned) and
// only unpinned ones are closed when many are open, so a descriptor number is never reused under
// a path still in use.
import { constants, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import { spawn } from '../builtins.js';
import { DeltaSyncError } from '../errors.js';
import {
  chmod,
  closeDescriptor as closeFd,
  type FdHandle,
  fstatDescriptor,
  lstat,
  mkdir as mkdirAt,
  openDescriptor as openFd,
  openFile,
  readdir as readdirAt,
  rmdir as rmdirAt,
  unlink as unlinkAt,
} from '../fd-handle.js';
import { statOpen } from '../fileops.js';

/** Linux O_PATH (the same value on x86 and the generic ABI used by arm64); Node does not export it. */
export const O_PATH = 0o10000000;
const DIR_FLAGS = O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const FD_DIR = '/proc/self/fd';
/** Unpinned directory handles kept open for reuse before the least recently used are closed. */
const DEFAULT_MAX_CACHED = 256;

/** A leased handle of one destination directory. Call {@link DirHandle.release} when done. */
export interface DirHandle {
  /** The directory relative to the destination root ('.' for the root). */
  readonly rel: string;
  /** The open descriptor (O_PATH); valid while the lease is held. */
  readonly fd: number;
  /** `/proc/self/fd/N`: the directory itself. */
  readonly path: string;
  /** The handle path of `name` in this directory ('.' for the directory itself). */
  at(name: string): string;
  /** The user-visible path of `name` in this directory (for messages), or of the directory. */
  shown(name?: string): string;
  /** Ends the lease; the descriptor may be closed afterwards. */
  release(): void;
}

interface OpenDir {
  fd: number;
  rel: string;
  shownPath: string;
  pins: number;
  /** Removed or replaced: close as soon as it is unpinned, never hand out again. */
  stale: boolean;
}

class Lease implements DirHandle {
  private released = false;
  constructor(
    private readonly tree: DestTree,
    private readonly d: OpenDir,
  ) {}
  get rel(): string {
    return this.d.rel;
  }
  get fd(): number {
    return this.d.fd;
  }
  get path(): string {
    return `${FD_DIR}/${this.d.fd}`;
  }
  at(name: string): string {
    return `${FD_DIR}/${this.d.fd}/${name}`;
  }
  shown(name?: string): string {
    return name === undefined || name === '.' ? this.d.shownPath : join(this.d.shownPath, name);
  }
  release(): void {
    if (this.released) return;
    this.released = true;
    this.tree.unpin(this.d);
  }
}

/** Splits a relative path into its directory and its last component. */
export function splitRel(rel: string): { parent: string; name: string } {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? { parent: '.', name: rel } : { parent: rel.slice(0, slash), name: rel.slice(slash + 1) };
}

/** The destination tree opened at a root directory; every write below it goes through handles. */
export class DestTree {
  /** Open directories by relative path, least recently used first (Map keeps insertion order). */
  private readonly dirs = new Map<string, OpenDir>();
  private readonly opening = new Map<string, Promise<OpenDir>>();
  private readonly byFd = new Map<number, OpenDir>();
  /**
   * Entries of `dirs` leased now. The bound is on the others: with more directories leased than
   * the bound (a receiver with files outstanding in hundreds of directories), a bound on all of
   * them closed each handle as soon as its lease ended, and the next file of that directory
   * opened it again, its parent too (a tree of 444 directories: ~3400 opens instead of ~450).
   */
  private pinnedCached = 0;
  private closed = false;

  private constructor(
    private readonly rootDir: OpenDir,
    private readonly maxCached: number,
  ) {
    this.byFd.set(rootDir.fd, rootDir);
  }

  /**
   * Opens the destination root. The root path itself is the user's and is followed like any
   * path they give; nothing below it is. Fails with ERR_IO when /proc is not mounted: without
   * it there is no way to address entries through directory handles from Node.
   */
  static async open(root: string, options: { maxCached?: number } = {}): Promise<DestTree> {
    let fd: number;
    try {
      fd = await openFd(root, O_PATH | constants.O_DIRECTORY);
    } catch (err) {
      throw dirError(err, root);
    }
    try {
      // The magic link must resolve to our descriptor's directory, else nothing below is safe.
      const [viaProc, direct] = await Promise.all([lstat(`${FD_DIR}/${fd}/.`, { bigint: true }), fstatDescriptor(fd)]);
      if (viaProc.ino !== direct.ino || viaProc.dev !== direct.dev) throw new Error('mismatch');
    } catch {
      await closeFd(fd).catch(() => undefined);
      throw new DeltaSyncError('ERR_IO', `cannot use ${FD_DIR}: the receiver writes through directory handles and needs /proc mounted (Linux)`, { path: FD_DIR });
    }
    return new DestTree({ fd, rel: '.', shownPath: root, pins: 1, stale: false }, options.maxCached ?? DEFAULT_MAX_CACHED);
  }

  /** The root's user-visible path. */
  get rootShown(): string {
    return this.rootDir.shownPath;
  }

  /** Descriptors open now (for tests and the LRU bound). */
  get openCount(): number {
    return this.byFd.size;
  }

  /**
   * A leased handle of directory `rel` (relative to the root, '.' for the root). Each missing
   * component is opened from its parent's handle with O_DIRECTORY|O_NOFOLLOW: a symlink
   * anywhere below the root fails with ENOTDIR.
   */
  async dir(rel: string): Promise<DirHandle> {
    const d = await this.openDir(normalize(rel));
    return new Lease(this, d);
  }

  /**
   * {@link dir} without waiting, for a directory whose handle is open already (the common case
   * of a receiver going through a tree in order): undefined when it would have to be opened.
   */
  dirIfOpen(rel: string): DirHandle | undefined {
    if (this.closed) return undefined;
    if (rel === '.') {
      this.rootDir.pins++;
      return new Lease(this, this.rootDir);
    }
    // Keys are normalized paths: a hit needs no normalizing.
    const have = this.dirs.get(rel);
    if (!have || have.stale) return undefined;
    this.pin(have);
    // Most recently used last.
    this.dirs.delete(rel);
    this.dirs.set(rel, have);
    return new Lease(this, have);
  }

  private async openDir(rel: string): Promise<OpenDir> {
    if (this.closed) throw new DeltaSyncError('ERR_IO', 'destination tree already closed');
    if (rel === '.') {
      this.rootDir.pins++;
      return this.rootDir;
    }
    const have = this.dirs.get(rel);
    if (have && !have.stale) {
      this.pin(have);
      // Most recently used last.
      this.dirs.delete(rel);
      this.dirs.set(rel, have);
      return have;
    }
    const pending = this.opening.get(rel);
    if (!pending) {
      // The new handle comes pinned once, for this caller: nothing can close it in between.
      const opened = this.openFromParent(rel);
      this.opening.set(rel, opened);
      const clear = (): void => {
        if (this.opening.get(rel) === opened) this.opening.delete(rel);
      };
      opened.then(clear, clear);
      const d = await opened;
      if (d.stale) {
        this.unpin(d);
        return this.openDir(rel);
      }
      this.trim();
      return d;
    }
    let d: OpenDir;
    try {
      d = await pending;
    } catch {
      // Someone else's open, started before the directory existed (a look-ahead racing the
      // mkdir of the directory): its failure says nothing about now. Open afresh; a failure of
      // our own open is then reported.
      return this.openDir(rel);
    }
    // Closed or replaced since it was opened (it was not pinned for us meanwhile): open again.
    if (d.stale || this.byFd.get(d.fd) !== d) return this.openDir(rel);
    this.pin(d);
    return d;
  }

  private async openFromParent(rel: string): Promise<OpenDir> {
    const { parent, name } = splitRel(rel);
    const p = await this.openDir(parent);
    let fd: number;
    try {
      fd = await openFd(`${FD_DIR}/${p.fd}/${name}`, DIR_FLAGS);
    } catch (err) {
      throw dirError(err, join(this.rootDir.shownPath, rel));
    } finally {
      this.unpin(p);
    }
    const d: OpenDir = { fd, rel, shownPath: join(this.rootDir.shownPath, rel), pins: 1, stale: false };
    this.byFd.set(fd, d);
    const old = this.dirs.get(rel);
    if (old) this.retire(old);
    this.dirs.set(rel, d);
    this.pinnedCached++;
    return d;
  }

  private pin(d: OpenDir): void {
    if (d.pins++ === 0 && this.dirs.get(d.rel) === d) this.pinnedCached++;
  }

  /** Called by leases. */
  unpin(d: OpenDir): void {
    d.pins--;
    if (d.pins === 0 && this.dirs.get(d.rel) === d) this.pinnedCached--;
    if (d.pins <= 0 && (d.stale || this.closed)) this.closeDir(d);
    else this.trim();
  }

  /**
   * Drops the handles of `rel` and everything below it: call after removing or replacing that
   * directory, so that a new directory of the same name gets a fresh handle.
   */
  forget(rel: string): void {
    rel = normalize(rel);
    if (rel === '.') return;
    const prefix = `${rel}/`;
    for (const d of [...this.dirs.values()]) {
      if (d.rel === rel || d.rel.startsWith(prefix)) this.retire(d);
    }
  }

  private retire(d: OpenDir): void {
    d.stale = true;
    if (this.dirs.get(d.rel) === d) {
      this.dirs.delete(d.rel);
      if (d.pins > 0) this.pinnedCached--;
    }
    if (d.pins <= 0) this.closeDir(d);
  }

  /** Closes least recently used unpinned handles beyond the bound. */
  private trim(): void {
    let excess = this.dirs.size - this.pinnedCached - this.maxCached;
    if (excess <= 0) return;
    // Deleting the entry being visited is safe in a Map iteration.
    for (const d of this.dirs.values()) {
      if (excess <= 0) break;
      if (d.pins > 0) continue;
      this.dirs.delete(d.rel);
      this.closeDir(d);
      excess--;
    }
  }

  private closeDir(d: OpenDir): void {
    if (!this.byFd.has(d.fd) || this.byFd.get(d.fd) !== d) return;
    this.byFd.delete(d.fd);
    // Only unpinned handles get here: no operation naming this descriptor is in flight.
    closeFd(d.fd).catch(() => undefined);
  }

  /**
   * Replaces handle paths (`/proc/self/fd/N/...`) of this tree's open directories in `text`
   * with the paths the user knows. Messages must never show /proc paths.
   */
  shown(text: string): string {
    return text.replace(/\/proc\/self\/fd\/(\d+)(\/\.(?![^\s:'"/]))?/g, (whole, fd: string) => {
      const d = this.byFd.get(Number(fd));
      return d ? d.shownPath : whole;
    });
  }

  /**
   * `mkdir -p` below the root: each missing component is made through its parent's handle and
   * an existing one must be a real directory (a symlink fails with ENOTDIR). Returns a lease.
   */
  async makeDirs(rel: string, mode = 0o700): Promise<DirHandle> {
    rel = normalize(rel);
    try {
      return await this.dir(rel);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || rel === '.') throw err;
    }
    const { parent, name } = splitRel(rel);
    const p = await this.makeDirs(parent, mode);
    try {
      await mkdirAt(p.at(name), mode).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    } finally {
      p.release();
    }
    return this.dir(rel);
  }

  /**
   * Removes `rel` and, for a directory, everything below it, without following symlinks:
   * each level is read and emptied through its own no-follow handle.
   */
  async removeTree(rel: string): Promise<void> {
    const { parent, name } = splitRel(normalize(rel));
    const p = await this.dir(parent);
    try {
      const st = await lstatAt(p.at(name));
      if (!st) return;
      if ((Number(st.mode) & constants.S_IFMT) !== constants.S_IFDIR) {
        await unlinkAt(p.at(name));
        return;
      }
      const d = await this.dir(rel);
      try {
        for (const child of await readdirAt(d.at('.'))) await this.removeTree(`${rel}/${child}`);
      } finally {
        d.release();
      }
      this.forget(rel);
      await rmdirAt(p.at(name));
    } finally {
      p.release();
    }
  }

  /**
   * Closes every handle; no new ones can be opened. A handle still leased (an operation that
   * outlived an abort) is closed when its lease ends, so its number cannot be reused under it.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rootDir.pins--;
    const idle = [...this.byFd.values()].filter((d) => d.pins <= 0);
    this.dirs.clear();
    this.pinnedCached = 0;
    for (const d of idle) this.byFd.delete(d.fd);
    await Promise.all(idle.map((d) => closeFd(d.fd).catch(() => undefined)));
  }
}

function normalize(rel: string): string {
  const parts = rel.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.some((c) => c === '..')) throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: path ${JSON.stringify(rel)} leaves the destination`);
  return parts.length === 0 ? '.' : parts.join('/');
}

function dirError(err: unknown, shown: string): NodeJS.ErrnoException {
  const e = err as NodeJS.ErrnoException;
  // A symlink where a directory should be: O_DIRECTORY|O_NOFOLLOW gives ENOTDIR (or ELOOP).
  const code = e.code === 'ELOOP' ? 'ENOTDIR' : e.code;
  const out = new Error(`${code ?? 'error'}: ${shown}`) as NodeJS.ErrnoException;
  if (code !== undefined) out.code = code;
  out.path = shown;
  return out;
}

// ------------------------------------------------------------------------------------------
// Operations on handle paths (`DirHandle.at(name)`): none follows the final component.

/** lstat of a handle path; undefined when it does not exist. */
export async function lstatAt(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Opens a handle path without following a final symlink (`flags` as numbers, e.g.
 * O_WRONLY|O_CREAT|O_EXCL for a new file). A symlink in the way fails (ELOOP, or EEXIST for
 * an exclusive create), so its target is never written.
 */
export function openNoFollow(path: string, flags: number, mode = 0o666): Promise<FdHandle> {
  return openFile(path, flags | constants.O_NOFOLLOW, mode);
}

/** The path naming exactly the file open as `fd` (its magic link), e.g. to hand to APIs that take paths. */
export function descriptorPath(fd: number): string {
  return `${FD_DIR}/${fd}`;
}

/** Flags of `open(path, 'wx')` with O_NOFOLLOW: a new file, never through a symlink. */
export const CREATE_EXCL = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Like {@link CREATE_EXCL}, readable too: for files whose bytes may be read back through the same descriptor. */
export const CREATE_EXCL_RW = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function notRegular(path: string, st: BigIntStats): DeltaSyncError {
  const what = (Number(st.mode) & constants.S_IFMT) === constants.S_IFLNK ? 'a symlink (not followed)' : 'not a regular file';
  return new DeltaSyncError('ERR_IO', `cannot open ${path}: it is now ${what}`, { path });
}

/**
 * Opens the regular file at `path` for reading without following a final symlink (O_NONBLOCK:
 * a FIFO swapped in cannot hang the run) and checks that it is a regular file. Resolves with the
 * handle and its fstat; rejects for anything else at the name.
 */
export async function openRegularForRead(path: string): Promise<{ fh: FdHandle; st: BigIntStats }> {
  const fh = await openNoFollow(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = statOpen(fh);
    if ((Number(st.mode) & constants.S_IFMT) !== constants.S_IFREG) throw notRegular(path, st);
    return { fh, st };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Opens the file at `path` read-write for an update in place, creating it with `mode` when
 * missing. Never follows a final symlink and never opens anything but a regular file for I/O
 * (a device's open can have side effects): the name is opened O_PATH|O_NOFOLLOW, checked, and
 * that very inode is reopened through its descriptor.
 */
export async function openRegularForUpdate(path: string, mode: number): Promise<FdHandle> {
  let pathFd: number;
  try {
    pathFd = await openFd(path, O_PATH | constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return openNoFollow(path, CREATE_EXCL_RW, mode);
  }
  try {
    const st = await fstatDescriptor(pathFd);
    if ((Number(st.mode) & constants.S_IFMT) !== constants.S_IFREG) throw notRegular(path, st);
    return await openFile(`${FD_DIR}/${pathFd}`, constants.O_RDWR);
  } finally {
    await closeFd(pathFd).catch(() => undefined);
  }
}

/**
 * Runs `fn` with a path that names exactly the inode now at `path` (an O_PATH descriptor's
 * magic link), refusing symlinks: for operations that have no no-follow variant (chmod).
 */
async function withInode<T>(path: string, fn: (inodePath: string, st: BigIntStats) => Promise<T>): Promise<T> {
  const fd = await openFd(path, O_PATH | constants.O_NOFOLLOW);
  try {
    const st = await fstatDescriptor(fd);
    if ((Number(st.mode) & constants.S_IFMT) === constants.S_IFLNK) {
      const err = new Error(`ELOOP: symlink where a file was expected: ${path}`) as NodeJS.ErrnoException;
      err.code = 'ELOOP';
      throw err;
    }
    return await fn(`${FD_DIR}/${fd}`, st);
  } finally {
    await closeFd(fd).catch(() => undefined);
  }
}

/** chmod that never follows a symlink at `path` (it fails with ELOOP instead). */
export function chmodNoFollow(path: string, mode: number): Promise<void> {
  return withInode(path, (p) => chmod(p, mode));
}

// These never follow a final symlink by themselves; on handle paths they act within the handle's directory.
export { lchown as lchownAt, lutimes as lutimesAt, readlink as readlinkAt, rename as renameAt, symlink as symlinkAt } from '../fd-handle.js';
export { mkdirAt, readdirAt, rmdirAt, unlinkAt };

/**
 * Makes a FIFO or a device node `name` in `dir` with mkfifo(1)/mknod(1) (Node has no mknod).
 * The child gets the directory handle as its descriptor 3 and creates `/proc/self/fd/3/name`,
 * so it too works through the handle.
 */
export async function mknodAt(dir: DirHandle, name: string, spec: { kind: 'p' | 'b' | 'c'; mode: number; major?: number; minor?: number }): Promise<void> {
  const path = `${FD_DIR}/3/${name}`;
  const mode = (spec.mode & 0o7777).toString(8);
  const [cmd, args] =
    spec.kind === 'p' ? ['mkfifo', ['-m', mode, '--', path]] : ['mknod', ['-m', mode, '--', path, spec.kind, String(spec.major ?? 0), String(spec.minor ?? 0)]];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd as string, args as string[], { stdio: ['ignore', 'ignore', 'pipe', dir.fd] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} failed for ${dir.shown(name)}: ${stderr.trim().replace(path, dir.shown(name))}`));
    });
  });
}
