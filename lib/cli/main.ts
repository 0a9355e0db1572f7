// The `deltasync` command: picks the mode, turns every failure into one line on stderr and an
// exit code. Modes are loaded lazily so `--help` and `--version` work even when the native
// addon is missing, and a broken mode cannot take the others down.
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeltaSyncError } from '../errors.js';
import { PROGRAM, printError, printErr, printOut } from './output.js';

/** Subcommands handled by lib/cli/rdiff-commands.ts. */
const RDIFF_COMMANDS = new Set(['signature', 'delta', 'patch']);

/** Exit status when stdout's reader went away: what a shell reports for a SIGPIPE death. */
const EXIT_BROKEN_PIPE = 141;

/** Shape of lib/sync/cli.ts, which owns sync mode and `--server`. */
interface SyncCliModule {
  runSyncCli(argv: string[]): Promise<number>;
  /** Optional help section for the sync mode, shown by `deltasync --help`. */
  syncHelp?: string | (() => string);
}

/** Loads sync mode; undefined when this build lacks it (a trimmed or partial install). */
async function loadSyncCli(): Promise<SyncCliModule | undefined> {
  try {
    const mod: SyncCliModule = await import('../sync/cli.js');
    return mod;
  } catch (err) {
    // Only the sync module itself missing means "not built"; anything it fails to import is a bug.
    const e = err as NodeJS.ErrnoException & { url?: string };
    const missing = e?.url ?? String(e?.message).match(/Cannot find module '([^']+)'/)?.[1] ?? '';
    if (e?.code === 'ERR_MODULE_NOT_FOUND' && missing.endsWith('sync/cli.js')) return undefined;
    throw err;
  }
}

/** Version from package.json, found by walking up from this file (src or dist layout). */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'deltasync' && pkg.version) return pkg.version;
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

const SYNC_PLACEHOLDER = `Sync mode:
  ${PROGRAM} [OPTIONS] SRC... DEST      rsync-like sync of files and trees (local or [user@]host:path)`;

/** The full `--help` text: every mode. */
export async function helpText(): Promise<string> {
  const { rdiffHelp } = await import('./rdiff-commands.js');
  let sync = SYNC_PLACEHOLDER;
  try {
    const mod = await loadSyncCli();
    if (mod?.syncHelp !== undefined) {
      sync = typeof mod.syncHelp === 'function' ? mod.syncHelp() : mod.syncHelp;
    }
  } catch {
    // Help must still print when the sync module cannot load.
  }
  return `${PROGRAM} ${version()}: the rsync algorithm as a Node.js package.

Usage:
  ${PROGRAM} [OPTIONS] SRC... DEST
  ${PROGRAM} signature [OPTIONS] BASIS [SIGNATURE]
  ${PROGRAM} delta [OPTIONS] SIGNATURE NEWFILE [DELTA]
  ${PROGRAM} patch [OPTIONS] BASIS DELTA [NEWFILE]
  ${PROGRAM} --help | --version

${sync.trimEnd()}

${rdiffHelp().trimEnd()}

General:
  -h, --help     Show this help (also '${PROGRAM} COMMAND --help')
  -V, --version  Show the version

Exit codes: 0 ok, 1 usage error, 2 bad signature/delta (garbled, truncated, hash mismatch),
  11 file I/O error, 12 protocol/remote error, 20 aborted, 23 partial transfer,
  141 stdout closed by its reader.
`;
}

/** Arguments before `--`, where a `--help`/`--version` request may appear. */
function optionsPart(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf('--');
  return end === -1 ? argv : argv.slice(0, end);
}

/**
 * Runs the CLI with `argv` (without node and script) and resolves to the process exit code.
 * Never throws: every error is reported on stderr as one line.
 */
export async function main(argv: string[]): Promise<number> {
  // Without a listener an EPIPE on stdout would be thrown as an uncaught exception, possibly
  // after main has returned (a late write), so the listener stays for the process's life.
  if (!stdoutGuarded) {
    process.stdout.on('error', () => {});
    stdoutGuarded = true;
  }
  try {
    return await dispatch(argv);
  } catch (err) {
    return reportError(err);
  }
}

let stdoutGuarded = false;

async function dispatch(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first !== undefined && RDIFF_COMMANDS.has(first)) {
    // These commands spend their time in the addon: V8's optimizing compiler would only add its
    // compile zones and code, ~8 MB of the peak RSS of a 1 GiB delta (73 -> 65 MB), for no
    // measurable speed. Sync keeps it: its per-file work is JavaScript.
    // require, not import(): the bundle runs as a script (bin/deltasync.js), where import() of a
    // built-in has no loader; node:v8 is loaded only here.
    (createRequire(import.meta.url)('node:v8') as typeof import('node:v8')).setFlagsFromString('--no-turbofan');
    const { runRdiffCommand } = await import('./rdiff-commands.js');
    return runRdiffCommand(first as 'signature' | 'delta' | 'patch', argv.slice(1));
  }
  const opts = optionsPart(argv);
  // The remote end's arguments come from the client: never reinterpret them as a help request.
  const server = opts.includes('--server');
  if (!server && opts.includes('--help') || (argv.length === 1 && first === '-h')) {
    printOut(await helpText());
    return 0;
  }
  if (!server && (opts.includes('--version') || (argv.length === 1 && first === '-V'))) {
    printOut(`${PROGRAM} ${version()}`);
    return 0;
  }
  if (argv.length === 0) {
    printErr(`${PROGRAM}: missing arguments\n${(await helpText()).split('\n\n')[1] ?? ''}\nTry '${PROGRAM} --help' for more.`);
    return 1;
  }
  const sync = await loadSyncCli();
  if (sync === undefined) {
    throw new DeltaSyncError(
      'ERR_USAGE',
      `sync mode is not available in this build (lib/sync/cli.js missing); use '${PROGRAM} signature|delta|patch'`,
    );
  }
  syncRan = true;
  return sync.runSyncCli(argv);
}

let syncRan = false;

/**
 * Whether this process ran a sync (or served one): bin/deltasync.js keeps V8's compiled code of
 * such a run for the next start. Not of the file commands, which change V8's flags (the cache
 * would not match the next sync's), nor of help or a usage error, which compile little.
 */
export function ranSync(): boolean {
  return syncRan;
}

/** Prints one line for `err` and returns the exit code it maps to. */
export function reportError(err: unknown): number {
  if (err instanceof DeltaSyncError) {
    printError(err.message);
    return err.exitCode;
  }
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.code === 'EPIPE') return EXIT_BROKEN_PIPE;
  if (e && typeof e.code === 'string' && typeof e.syscall === 'string') {
    // A file system error that escaped wrapping is still the user's file, not our bug.
    printError(`${e.path ? `${e.path}: ` : ''}${e.message}`);
    return 11;
  }
  const message = err instanceof Error ? err.message : String(err);
  if (message.startsWith(`${PROGRAM}: no native addon`)) {
    // lib/native.ts explains how to build the addon over several lines: keep them.
    printErr(message);
    return 1;
  }
  printError(`internal error: ${message} (this is a bug; please report it with the command line you ran)`);
  if (process.env.DELTASYNC_DEBUG && err instanceof Error && err.stack) printErr(err.stack);
  return 1;
}
