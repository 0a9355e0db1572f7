// Where the ends of a transfer are: local paths or `[user@]host:path` reached over a remote
// shell, and how the remote shell command line is built.
import { DeltaSyncError } from '../errors.js';

/** A parsed SRC or DEST argument. */
export interface Location {
  /** Remote host (absent for a local path). */
  host?: string;
  user?: string;
  /** Path on that host; "" means the remote login directory. */
  path: string;
}

function usage(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_USAGE', message);
}

/**
 * rsync's rule: an argument is remote when a ':' comes before any '/'. `[v6addr]:path` is
 * accepted; `host::module` and `rsync://` (rsync daemons) are not supported.
 */
export function parseLocation(arg: string): Location {
  if (arg.startsWith('rsync://')) throw usage(`rsync daemon URLs are not supported: ${arg}`);
  let hostPart: string | undefined;
  let path: string;
  const bracket = /^((?:[^@/:]*@)?)\[([^\]/]+)\]:(.*)$/s.exec(arg);
  if (bracket) {
    hostPart = `${bracket[1]}${bracket[2]}`;
    path = bracket[3]!;
  } else {
    const colon = arg.indexOf(':');
    const slash = arg.indexOf('/');
    if (colon === -1 || (slash !== -1 && slash < colon)) return { path: arg };
    hostPart = arg.slice(0, colon);
    path = arg.slice(colon + 1);
  }
  if (path.startsWith(':')) throw usage(`rsync daemon modules (host::module) are not supported: ${arg}`);
  const at = hostPart.lastIndexOf('@');
  const user = at === -1 ? undefined : hostPart.slice(0, at);
  const host = at === -1 ? hostPart : hostPart.slice(at + 1);
  if (user === '') throw usage(`empty user name in ${arg}`);
  const loc: Location = { host, path };
  if (user !== undefined) loc.user = user;
  return loc;
}

/**
 * Splits a command string into words like a POSIX shell without expansions: whitespace
 * separates, single quotes are literal, double quotes allow \" \\ \$ \`, backslash escapes.
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < command.length) {
    const c = command[i]!;
    if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end === -1) throw usage(`unterminated ' in command: ${command}`);
      word += command.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      for (;;) {
        if (i >= command.length) throw usage(`unterminated " in command: ${command}`);
        const d = command[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < command.length && '"\\$`'.includes(command[i + 1]!)) {
          word += command[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
    } else if (c === '\\' && i + 1 < command.length) {
      word += command[i + 1];
      inWord = true;
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The argv that starts the remote end: RSH words, `-l USER` when a user is given, the host,
 * then the remote command (`REMOTE_PATH --server --sender|--receiver`). The remote command is
 * passed as words that ssh joins and hands to the remote shell, so REMOTE_PATH may contain
 * arguments (e.g. "node /opt/deltasync/bin/deltasync.js").
 */
export function remoteCommand(
  rsh: string,
  remotePath: string,
  loc: Location,
  serverRole: 'sender' | 'receiver',
): { file: string; args: string[] } {
  const words = splitCommand(rsh);
  if (words.length === 0) throw usage('the remote shell command (-e/--rsh) is empty');
  const [file, ...args] = words as [string, ...string[]];
  if (loc.user !== undefined) args.push('-l', loc.user);
  if (!loc.host) throw usage('remote location without a host name');
  args.push(loc.host, remotePath, '--server', serverRole === 'sender' ? '--sender' : '--receiver');
  return { file, args };
}
