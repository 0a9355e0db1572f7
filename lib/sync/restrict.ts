// Restrictions of `deltasync --server` for use as a forced command in authorized_keys:
// --root (every requested path stays beneath a directory), --read-only, --write-only and
// --no-delete, and the reading of the client's request from SSH_ORIGINAL_COMMAND.
// The policy lives here; server.ts applies it to each SESSION before any file is touched.
import { lstat, readlink, realpath } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { DeltaSyncError } from '../errors.js';
import { isContentsArg, type FollowGuard } from './filelist.js';
import { splitCommand } from './location.js';
import type { TransferOptions } from './options.js';
import type { OpenGuard } from './sender.js';

/** Restrictions given on the server's own command line (they always win over the client). */
export interface ServerRestrictions {
  /** `--root DIR`: every path the client names is resolved beneath DIR. */
  root?: string | undefined;
  /** `--read-only`: serve only as the sender (the client pulls). */
  readOnly?: boolean | undefined;
  /** `--write-only`: serve only as the receiver (the client pushes). */
  writeOnly?: boolean | undefined;
  /** `--no-delete`: refuse --delete / --delete-excluded. */
  noDelete?: boolean | undefined;
}

type Role = 'sender' | 'receiver';

function refused(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_USAGE', `refused by the server: ${message}`);
}

/** True when any restriction is set. */
export function hasRestrictions(r: ServerRestrictions): boolean {
  return r.root !== undefined || r.readOnly === true || r.writeOnly === true || r.noDelete === true;
}

/** Checks the server's own flags for contradictions (a misconfigured forced command). */
export function validateRestrictions(r: ServerRestrictions, ownRole: Role | undefined): void {
  const usage = (m: string): DeltaSyncError => new DeltaSyncError('ERR_USAGE', m);
  if (r.readOnly && r.writeOnly) throw usage('--read-only and --write-only exclude each other');
  if (r.root !== undefined && (r.root === '' || r.root.includes('\0'))) throw usage('--root needs a directory');
  if (r.readOnly && ownRole === 'receiver') throw usage('--read-only cannot be combined with --receiver');
  if (r.writeOnly && ownRole === 'sender') throw usage('--write-only cannot be combined with --sender');
}

/**
 * Parses the command the client asked sshd to run (SSH_ORIGINAL_COMMAND) as a shell word
 * list. It must be a deltasync server command: `PROGRAM... --server [--sender|--receiver]`
 * (PROGRAM may be several words, e.g. `node /opt/deltasync/bin/deltasync.js`). Paths and
 * transfer options never travel on this line (they come in SESSION), so any other option is
 * refused rather than guessed at. Returns the requested role, if any.
 */
export function parseOriginalCommand(command: string): { role: Role | undefined } {
  let words: string[];
  try {
    words = splitCommand(command);
  } catch {
    throw refused(`cannot parse the requested command: ${JSON.stringify(command)}`);
  }
  const server = words.indexOf('--server');
  if (server === -1) throw refused(`this key only runs the deltasync server, not ${JSON.stringify(command)}`);
  let role: Role | undefined;
  for (const w of words.slice(server + 1)) {
    const r: Role | undefined = w === '--sender' ? 'sender' : w === '--receiver' ? 'receiver' : undefined;
    if (r === undefined) throw refused(`unexpected argument ${JSON.stringify(w)} in the requested command`);
    if (role !== undefined && role !== r) throw refused('the requested command names both --sender and --receiver');
    role = r;
  }
  return { role };
}

/**
 * The role the server runs as: its own `--sender`/`--receiver`, else the one in
 * SSH_ORIGINAL_COMMAND (read when the server has restrictions or no role of its own).
 */
export function chooseRole(ownRole: Role | undefined, r: ServerRestrictions, originalCommand: string | undefined): Role | undefined {
  if (originalCommand === undefined || (ownRole !== undefined && !hasRestrictions(r))) return ownRole;
  const { role } = parseOriginalCommand(originalCommand);
  if (ownRole !== undefined && role !== undefined && role !== ownRole) {
    throw refused(`this key only serves as the ${ownRole}, the client asked for the ${role}`);
  }
  return ownRole ?? role;
}

/** Refuses a role the restrictions exclude. */
export function checkRole(role: Role, r: ServerRestrictions): void {
  if (r.readOnly && role === 'receiver') {
    throw refused('this server is read-only: it only sends files (pull), it cannot receive (push)');
  }
  if (r.writeOnly && role === 'sender') {
    throw refused('this server is write-only: it only receives files (push), it cannot send (pull)');
  }
}

/** Refuses options that would make the server delete, or write outside its root. */
export function checkOptions(opts: TransferOptions, role: Role, r: ServerRestrictions): void {
  // Only a receiving server deletes; a pulling client's --delete acts on the client's own files.
  if (r.noDelete && role === 'receiver' && (opts.delete || opts.deleteExcluded)) {
    throw refused('--delete is not allowed (the server was started with --no-delete)');
  }
  if (r.root !== undefined && role === 'receiver' && opts.partialDir !== null && !isAbsolute(opts.partialDir)) {
    if (opts.partialDir.split('/').includes('..')) throw refused(`--partial-dir ${JSON.stringify(opts.partialDir)} contains ".."`);
  }
}

function within(root: string, p: string): boolean {
  return root === '/' || p === root || p.startsWith(`${root}/`);
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/**
 * Resolves a path the client asked for beneath `root`. Relative paths are taken relative to
 * the root; absolute ones must lie within it; any ".." component is refused. Every existing
 * component is checked with lstat, and a symlink among them must resolve (realpath) inside
 * the root; the last component is followed only when `followLast` (a receiver's destination,
 * a source with a trailing slash, or -L). Components that do not exist yet are left for the
 * receiver to create. Returns the path to use, with the checked symlinks in the leading
 * components replaced by their targets, the last name and a trailing slash kept as given.
 */
export async function resolveUnderRoot(root: string, requested: string, followLast: boolean): Promise<string> {
  if (requested.includes('\0')) throw refused('a path contains a NUL byte');
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch (err) {
    throw new DeltaSyncError('ERR_USAGE', `--root ${root}: ${(err as Error).message}`);
  }
  let rel = requested;
  if (isAbsolute(requested)) {
    const given = resolve(root);
    const base = [realRoot, given].find((b) => within(b, requested) || within(b, requested.replace(/\/+$/, '')));
    if (base === undefined) throw refused(`${requested} is outside the server's root`);
    rel = requested.slice(base === '/' ? 1 : base.length);
  }
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refused(`${requested}: ".." is not allowed`);
  const trailing = rel === '' || isContentsArg(rel);
  let current = realRoot;
  let missing = false;
  for (let i = 0; i < parts.length; i++) {
    const last = i === parts.length - 1;
    const next = join(current, parts[i]!);
    if (missing || (last && !followLast && !trailing)) {
      current = next;
      continue;
    }
    let st;
    try {
      st = await lstat(next);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw refused(`${requested}: ${(err as Error).message}`);
      missing = true;
      current = next;
      continue;
    }
    if (!st.isSymbolicLink()) {
      current = next;
      continue;
    }
    let target: string;
    try {
      target = await realpath(next);
    } catch {
      // A dangling link: creating through it could land anywhere, reading it fails anyway.
      throw refused(`${requested}: symlink ${parts.slice(0, i + 1).join('/')} has no target inside the server's root`);
    }
    if (!within(realRoot, target)) {
      throw refused(`${requested}: symlink ${parts.slice(0, i + 1).join('/')} leads outside the server's root`);
    }
    current = last ? next : target;
  }
  return trailing && current !== '/' ? `${current}/` : current;
}

/**
 * With -L the sender follows every symlink in the tree. Under --root it must not read anything
 * outside the root: this guard (given to the file list walker) refuses a link whose target
 * resolves outside the root, naming it; the walker skips that entry alone and the run ends with
 * exit 23. Directories reached through in-root links are walked, and their links checked, the
 * same way. The check happens when the entry is listed (see docs/SYNC.md for the race).
 */
export function rootFollowGuard(root: string): FollowGuard {
  let realRoot: Promise<string> | undefined;
  return async (local) => {
    realRoot ??= realpath(root);
    let target: string;
    try {
      target = await realpath(local);
    } catch {
      return undefined; // dangling or gone: the walker reports it itself
    }
    if (within(await realRoot, target)) return undefined;
    return `symlink ${local} leads outside the server's root: not followed (-L), skipped`;
  };
}

/**
 * The sender's last check under --root, made on the open file itself: the path the kernel
 * reports for the descriptor (`/proc/self/fd/N`) must lie within the root. A directory or link
 * swapped for a symlink leading out after the file list was made cannot redirect the read.
 * Without /proc, the listed path is resolved instead (narrower, not race-free).
 */
export function rootOpenGuard(root: string): OpenGuard {
  let realRoot: Promise<string> | undefined;
  return async (fd, local) => {
    realRoot ??= realpath(root);
    let actual: string;
    try {
      actual = await readlink(`/proc/self/fd/${fd}`);
    } catch {
      try {
        actual = await realpath(local);
      } catch {
        return `${local} cannot be resolved beneath the server's root: not sent`;
      }
    }
    if (within(await realRoot, actual)) return undefined;
    return `${local} now resolves outside the server's root (a path component was replaced): not sent`;
  };
}

/**
 * Applies the restrictions to a SESSION: refuses what they exclude and returns the paths to
 * use (beneath the root when one is set).
 */
export async function restrictSession(role: Role, paths: readonly string[], opts: TransferOptions, r: ServerRestrictions): Promise<string[]> {
  checkRole(role, r);
  checkOptions(opts, role, r);
  if (r.root === undefined) return [...paths];
  const root = r.root;
  const resolved: string[] = [];
  for (const p of paths) {
    const followLast = role === 'receiver' || opts.copyLinks || p === '' || isContentsArg(p);
    resolved.push(await resolveUnderRoot(root, p, followLast));
  }
  if (role === 'receiver') {
    if (opts.partialDir !== null && isAbsolute(opts.partialDir)) opts.partialDir = await resolveUnderRoot(root, opts.partialDir, true);
    if (opts.sigCache !== null && opts.sigCache !== '') opts.sigCache = await resolveUnderRoot(root, opts.sigCache, true);
  }
  return resolved;
}
