// The sender's file list: walks the sources with rsync's path semantics and yields entries in
// wire order. Order: a directory's entries (sorted bytewise) are listed together, then each
// subdirectory in turn, so the receiver sees every directory before its contents.
import { open } from 'node:fs/promises';
import { lstat, readdir, readlink, stat } from '../fd-handle.js';
import { constants, lstatSync, type BigIntStats } from 'node:fs';
import { yieldIfBusy } from '../event-loop.js';
import { ioError } from '../errors.js';
import { native, type StrongKind } from '../native.js';
import { EntryType, type FileEntry } from '../protocol/messages.js';
import type { FilterList } from './filter.js';
import type { TransferOptions } from './options.js';

/** An entry plus where the sender reads it from. */
export interface SourceItem {
  entry: FileEntry;
  /** Local path of the file on the sender. */
  local: string;
}

/** Non-fatal problems while listing; the run goes on. */
export interface WalkIssue {
  kind: 'error' | 'vanished' | 'skip';
  message: string;
  path?: string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** True when a source argument means "the contents of" a directory. */
export function isContentsArg(arg: string): boolean {
  return arg.endsWith('/') || arg === '.' || arg.endsWith('/.');
}

/** Splits a source argument into the directory its names are relative to and its top name. */
export function splitSource(arg: string): { top: string } {
  if (isContentsArg(arg)) return { top: '.' };
  const trimmed = arg.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return { top: slash === -1 ? trimmed : trimmed.slice(slash + 1) };
}

function entryTypeOf(mode: number): EntryType | undefined {
  switch (mode & constants.S_IFMT) {
    case constants.S_IFREG:
      return EntryType.FILE;
    case constants.S_IFDIR:
      return EntryType.DIR;
    case constants.S_IFLNK:
      return EntryType.SYMLINK;
    case constants.S_IFCHR:
    case constants.S_IFBLK:
      return EntryType.DEVICE;
    case constants.S_IFIFO:
    case constants.S_IFSOCK:
      return EntryType.SPECIAL;
    default:
      return undefined;
  }
}

function makeEntry(path: string, st: BigIntStats, type: EntryType): FileEntry {
  const ns = st.mtimeNs;
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  const entry: FileEntry = {
    path,
    type,
    mode: Number(st.mode),
    size: type === EntryType.FILE ? Number(st.size) : 0,
    mtimeSec: Number(sec),
    mtimeNsec: Number(nsec),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
  if (type === EntryType.DEVICE) entry.rdev = Number(st.rdev);
  return entry;
}

/** Whole-file hash of a file, read in large chunks (for -c). */
export async function fileChecksum(path: string, kind: StrongKind): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const hasher = new native.Hasher(kind);
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      // The hasher may run off-thread: give it a copy the next read cannot overwrite.
      await hasher.update(Buffer.from(buf.subarray(0, bytesRead)));
      pos += bytesRead;
    }
    return hasher.digest();
  } finally {
    await fh.close();
  }
}

/**
 * Decides whether the walker may follow a symlink (-L): resolves to a refusal message naming the
 * link when it must not (e.g. it leads out of a restricted server's root), else undefined.
 */
export type FollowGuard = (local: string) => Promise<string | undefined>;

/** Walks the sources and yields the file list in wire order. */
export class FileListWalker {
  private readonly seen = new Set<string>();
  ioErrors = 0;

  constructor(
    private readonly opts: TransferOptions,
    private readonly filter: FilterList,
    private readonly report: (issue: WalkIssue) => void,
    private readonly followGuard?: FollowGuard,
  ) {}

  /** Stats a path the way the options say symlinks are treated. */
  private async statFor(local: string, follow: boolean): Promise<BigIntStats> {
    return follow ? stat(local, { bigint: true }) : lstat(local, { bigint: true });
  }

  /**
   * Turns a stat result into an entry, applying the symlink rules (-l, -L) and the
   * devices/specials options; undefined when the item is skipped.
   */
  private async toEntry(path: string, local: string, st: BigIntStats): Promise<FileEntry | undefined> {
    let type = entryTypeOf(Number(st.mode));
    if (type === EntryType.SYMLINK && this.opts.copyLinks) {
      try {
        st = await stat(local, { bigint: true });
        type = entryTypeOf(Number(st.mode));
        // Checked after stat: a dangling link is reported as such below, not as refused.
        const refusal = await this.followGuard?.(local);
        if (refusal !== undefined) {
          this.ioErrors++;
          this.report({ kind: 'error', message: refusal, path });
          return undefined;
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ELOOP') {
          this.ioErrors++;
          this.report({ kind: 'error', message: `symlink has no referent: ${local}`, path });
        } else {
          this.ioErrors++;
          this.report({ kind: 'error', message: ioError(err, local, 'stat').message, path });
        }
        return undefined;
      }
    }
    if (type === undefined) {
      this.report({ kind: 'skip', message: `skipping unknown file type "${path}"`, path });
      return undefined;
    }
    if (
      (type === EntryType.SYMLINK && !this.opts.links) ||
      (type === EntryType.DEVICE && !this.opts.devices) ||
      (type === EntryType.SPECIAL && !this.opts.specials)
    ) {
      this.report({ kind: 'skip', message: `skipping non-regular file "${path}"`, path });
      return undefined;
    }
    if (type === EntryType.SPECIAL && (Number(st.mode) & constants.S_IFMT) === constants.S_IFSOCK) {
      this.report({ kind: 'skip', message: `skipping socket "${path}" (sockets cannot be recreated)`, path });
      return undefined;
    }
    const entry = makeEntry(path, st, type);
    if (type === EntryType.SYMLINK) {
      try {
        entry.linkTarget = await readlink(local);
      } catch (err) {
        this.ioErrors++;
        this.report({ kind: 'error', message: ioError(err, local, 'read the symlink').message, path });
        return undefined;
      }
    }
    if (type === EntryType.FILE && this.opts.checksum) {
      try {
        entry.checksum = await fileChecksum(local, this.opts.checksumChoice);
      } catch (err) {
        this.reportIo(err, local, path, 'read');
        return undefined;
      }
    }
    return entry;
  }

  private reportIo(err: unknown, local: string, path: string, action: string): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      this.report({ kind: 'vanished', message: `file has vanished: ${local}`, path });
    } else {
      this.ioErrors++;
      this.report({ kind: 'error', message: ioError(err, local, action).message, path });
    }
  }

  /** The whole list, source by source, one entry at a time. */
  async *walk(sources: readonly string[]): AsyncGenerator<SourceItem> {
    for await (const batch of this.walkBatches(sources)) yield* batch;
  }

  /**
   * The whole list in wire order, a directory's entries at a time: an async iteration step
   * costs a few promises, which per entry was most of the walk's time on a tree of small files.
   */
  async *walkBatches(sources: readonly string[]): AsyncGenerator<SourceItem[]> {
    for (const arg of sources) yield* this.walkSource(arg);
  }

  private async *walkSource(arg: string): AsyncGenerator<SourceItem[]> {
    const { top } = splitSource(arg);
    const contents = top === '.';
    let st: BigIntStats;
    try {
      // A trailing slash follows a symlink to a directory, as the shell and rsync do.
      st = await this.statFor(arg, contents || this.opts.copyLinks);
    } catch (err) {
      this.ioErrors++;
      this.report({ kind: 'error', message: ioError(err, arg, 'stat').message, path: arg });
      return;
    }
    const isDir = (Number(st.mode) & constants.S_IFMT) === constants.S_IFDIR;
    if (contents && !isDir) {
      this.ioErrors++;
      this.report({ kind: 'error', message: `cannot copy the contents of ${arg}: not a directory`, path: arg });
      return;
    }
    if (isDir && !this.opts.recursive) {
      this.report({ kind: 'skip', message: `skipping directory ${contents ? '.' : top}`, path: top });
      return;
    }
    if (!contents && this.filter.excluded(top, isDir)) return;
    if (this.seen.has(top)) {
      if (!isDir) return;
    }
    const entry = await this.toEntry(top, arg, st);
    if (!entry) return;
    if (entry.type === EntryType.DIR) entry.listed = this.opts.recursive;
    const first = !this.seen.has(top);
    this.seen.add(top);
    if (first) yield [{ entry, local: arg }];
    if (entry.type === EntryType.DIR && this.opts.recursive) {
      yield* this.walkTree(arg.replace(/\/+$/, '') || '/', top);
    }
  }

  /**
   * Lists a directory and everything below it: each directory's entries, then each of its
   * subdirectories in turn, depth first. A stack instead of one generator per level, whose
   * `yield*` chains would cost every batch a promise per level.
   */
  private async *walkTree(localDir: string, relDir: string): AsyncGenerator<SourceItem[]> {
    // Subdirectories still to list, each level's in reverse order so pop() takes the next one.
    const pending: SourceItem[][] = [];
    let next: { local: string; rel: string } | undefined = { local: localDir, rel: relDir };
    while (next) {
      const { items, subdirs } = await this.listDir(next.local, next.rel);
      if (items.length > 0) yield items;
      if (subdirs.length > 0) pending.push(subdirs.reverse());
      next = undefined;
      while (pending.length > 0 && next === undefined) {
        const level = pending[pending.length - 1]!;
        const d = level.pop();
        if (level.length === 0) pending.pop();
        if (d) next = { local: d.local, rel: d.entry.path };
      }
    }
  }

  /** One directory's entries (sorted bytewise) and, among them, the subdirectories to list. */
  private async listDir(localDir: string, relDir: string): Promise<{ items: SourceItem[]; subdirs: SourceItem[] }> {
    const items: SourceItem[] = [];
    const subdirs: SourceItem[] = [];
    let names: Buffer[];
    try {
      names = await readdir(localDir, { encoding: 'buffer' });
    } catch (err) {
      this.ioErrors++;
      this.report({ kind: 'error', message: ioError(err, localDir, 'read directory').message, path: relDir });
      return { items, subdirs };
    }
    names.sort(Buffer.compare);
    const sep = localDir.endsWith('/') ? '' : '/';
    for (const raw of names) {
      let name: string;
      try {
        name = UTF8.decode(raw);
      } catch {
        this.ioErrors++;
        this.report({
          kind: 'error',
          message: `cannot transfer a file name that is not valid UTF-8 in ${localDir}: ${JSON.stringify(raw.toString('latin1'))}`,
          path: relDir,
        });
        continue;
      }
      const rel = relDir === '.' ? name : `${relDir}/${name}`;
      const local = `${localDir}${sep}${name}`;
      let st: BigIntStats;
      try {
        // Awaited only when the event loop is due a turn: a promise per entry was measurable.
        const turn = yieldIfBusy();
        if (turn) await turn;
        st = lstatSync(local, { bigint: true });
      } catch (err) {
        this.reportIo(err, local, rel, 'stat');
        continue;
      }
      const mode = Number(st.mode) & constants.S_IFMT;
      const isDir = mode === constants.S_IFDIR;
      let effectiveDir = isDir;
      if (!isDir && this.opts.copyLinks && mode === constants.S_IFLNK) {
        effectiveDir = await stat(local).then((s) => s.isDirectory(), () => false);
      }
      if (this.filter.excluded(rel, effectiveDir)) continue;
      // Plain files (without -c) and directories need nothing toEntry would await.
      const entry = isDir || (mode === constants.S_IFREG && !this.opts.checksum) ? makeEntry(rel, st, isDir ? EntryType.DIR : EntryType.FILE) : await this.toEntry(rel, local, st);
      if (!entry) continue;
      if (this.seen.has(rel)) {
        // Same name from an earlier source: the first one wins; directories still merge.
        if (entry.type === EntryType.DIR) subdirs.push({ entry, local });
        continue;
      }
      this.seen.add(rel);
      if (entry.type === EntryType.DIR) entry.listed = true;
      const item = { entry, local };
      items.push(item);
      if (entry.type === EntryType.DIR) subdirs.push(item);
    }
    return { items, subdirs };
  }
}

/** True when the transfer is a single non-directory source (DEST may then name the file). */
export async function isSingleFileTransfer(sources: readonly string[], opts: TransferOptions): Promise<boolean> {
  if (sources.length !== 1) return false;
  const arg = sources[0]!;
  if (isContentsArg(arg)) return false;
  try {
    const st = opts.copyLinks ? await stat(arg) : await lstat(arg);
    return !st.isDirectory();
  } catch {
    return false;
  }
}
