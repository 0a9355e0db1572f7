// `deltasync [OPTIONS] SRC... DEST` and `deltasync --server`: option parsing (rsync's names
// and meanings), output (-v, -i, --stats, --json, --progress) and exit codes.
import { DeltaSyncError } from '../errors.js';
import { formatOptions, parseArgs, type OptionSpec, type ParsedArgs } from '../cli/args.js';
import { oneLine } from '../cli/output.js';
import type { StrongKind } from '../native.js';
import { STRONG_KINDS } from '../params.js';
import { ClientSink } from './client-sink.js';
import { parseFilterRule, patternRule, readRuleFile, type FilterRule } from './filter.js';
import { formatItem, itemChanged, itemVerbose, type SyncItem } from './itemize.js';
import { resolveTransferOptions, type SyncMessage, type SyncOptions } from './options.js';
import { ProgressPrinter, statsBlock, statsJson, summaryLines } from './report.js';
import { runServerProcess } from './server.js';
import { SyncPartialError, planSync, runSync, type SyncStats } from './session.js';

const SPECS: OptionSpec[] = [
  { long: 'verbose', short: 'v', kind: 'count', description: 'List changed files and a summary' },
  { long: 'quiet', short: 'q', description: 'Suppress non-error messages' },
  { long: 'archive', short: 'a', description: 'Archive mode: -rlptgoD' },
  { long: 'recursive', short: 'r', negatable: true, description: 'Recurse into directories' },
  { long: 'links', short: 'l', negatable: true, description: 'Copy symlinks as symlinks' },
  { long: 'copy-links', short: 'L', description: 'Transform symlinks into the files they point to' },
  { long: 'perms', short: 'p', negatable: true, description: 'Preserve permissions' },
  { long: 'times', short: 't', negatable: true, description: 'Preserve modification times' },
  { long: 'owner', short: 'o', negatable: true, description: 'Preserve owner (as root)' },
  { long: 'group', short: 'g', negatable: true, description: 'Preserve group' },
  { long: 'D', short: 'D', description: 'Same as --devices --specials' },
  { long: 'devices', negatable: true, description: 'Preserve device files (as root)' },
  { long: 'specials', negatable: true, description: 'Preserve special files (FIFOs)' },
  { long: 'dry-run', short: 'n', description: 'Show what would change, change nothing' },
  { long: 'itemize-changes', short: 'i', kind: 'count', description: "Output a change summary per item (rsync's YXcstpoguax)" },
  { long: 'delete', description: 'Delete extraneous files from the destination' },
  { long: 'delete-excluded', description: 'Also delete excluded files from the destination' },
  { long: 'exclude', kind: 'list', valueName: 'PATTERN', description: 'Exclude files matching PATTERN' },
  { long: 'include', kind: 'list', valueName: 'PATTERN', description: "Don't exclude files matching PATTERN" },
  { long: 'exclude-from', kind: 'list', valueName: 'FILE', description: 'Read exclude patterns from FILE' },
  { long: 'include-from', kind: 'list', valueName: 'FILE', description: 'Read include patterns from FILE' },
  { long: 'filter', short: 'f', kind: 'list', valueName: 'RULE', description: 'Add a filter RULE ("- pat", "+ pat", "P pat", ". file", "!")' },
  { long: 'checksum', short: 'c', description: 'Skip files by checksum, not size and mtime' },
  { long: 'ignore-times', short: 'I', description: "Don't skip files that match size and time" },
  { long: 'size-only', description: 'Skip files that match in size' },
  { long: 'update', short: 'u', description: 'Skip files that are newer on the receiver' },
  { long: 'ignore-existing', description: 'Skip files that exist on the receiver' },
  { long: 'modify-window', kind: 'value', valueName: 'SECS', description: 'Compare mtimes with this much leeway' },
  { long: 'whole-file', short: 'W', negatable: true, description: 'Copy whole files (default for local syncs; --no-whole-file: deltas)' },
  { long: 'inplace', description: 'Update destination files in place' },
  { long: 'append', description: 'Append data onto shorter files' },
  { long: 'append-verify', description: '--append and verify the whole file' },
  { long: 'partial', description: 'Keep partially transferred files' },
  { long: 'partial-dir', kind: 'value', valueName: 'DIR', description: 'Put partially transferred files into DIR' },
  { long: 'P', short: 'P', description: 'Same as --partial --progress' },
  { long: 'compress', short: 'z', description: 'Compress the connection (zlib)' },
  { long: 'compress-level', kind: 'value', valueName: 'NUM', description: 'zlib level 1-9 (default 6)' },
  { long: 'bwlimit', kind: 'value', valueName: 'RATE', description: 'Limit the sending side, KiB/s (suffixes k, m, g)' },
  { long: 'block-size', short: 'B', kind: 'value', valueName: 'SIZE', description: 'Force a fixed block size' },
  { long: 'checksum-choice', kind: 'value', aliases: ['cc'], valueName: 'HASH', description: 'Strong hash: xxh3 (default), md4, blake2b' },
  { long: 'fsync', negatable: true, description: 'fsync each file before renaming it into place (off by default, as in rsync)' },
  { long: 'sig-cache', kind: 'value', valueName: 'DIR', description: "Receiver's signature cache directory (docs/SIGCACHE.md)" },
  { long: 'no-sig-cache', description: "Don't use the receiver's signature cache" },
  { long: 'stats', description: 'Print transfer statistics' },
  { long: 'json', description: 'Print one JSON object with the statistics at the end' },
  { long: 'progress', description: 'Show progress during the transfer' },
  { long: 'rsh', short: 'e', kind: 'value', valueName: 'COMMAND', description: 'Remote shell to use (default ssh)' },
  { long: 'remote-path', kind: 'value', aliases: ['rsync-path'], valueName: 'PROGRAM', description: 'Program to run on the remote side (default deltasync)' },
  { long: 'server', description: '(internal) Run as the remote end on stdin/stdout' },
  { long: 'sender', description: '(internal) With --server: be the sender' },
  { long: 'receiver', description: '(internal) With --server: be the receiver' },
  { long: 'root', kind: 'value', valueName: 'DIR', description: 'With --server: resolve every requested path beneath DIR' },
  { long: 'read-only', description: 'With --server: only send (pull backups)' },
  { long: 'write-only', description: 'With --server: only receive (push backups)' },
  { long: 'no-delete', description: 'With --server: refuse --delete' },
];

/** Options that only mean something with --server. */
const SERVER_ONLY = ['server', 'sender', 'receiver', 'root', 'read-only', 'write-only', 'no-delete'];

/** Help section for `deltasync --help`. */
export function syncHelp(): string {
  // The server's own flags are documented in docs/SYNC.md ("Restricted server").
  const visible = SPECS.filter((s) => !SERVER_ONLY.includes(s.long));
  // -D and -P are short-only in rsync; the parser needs a long name, help does not show it.
  const options = formatOptions(visible).replace(/^(\s+-[DP]), --[DP]( +)/gm, (_m, flag: string, pad: string) => `${flag}     ${pad}`);
  return `Sync mode (rsync's options and meanings; see docs/SYNC.md):
  deltasync [OPTIONS] SRC... DEST       SRC/DEST: local path or [user@]host:path
  A trailing '/' on a source directory copies its contents rather than the directory.

${options}`;
}

function usage(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_USAGE', message);
}

/** "100", "1.5m", "2G" → KiB per second (rsync's --bwlimit units). */
export function parseBwlimit(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (!m) throw usage(`--bwlimit: invalid rate ${JSON.stringify(text)}`);
  const n = Number(m[1]);
  const unit = m[2]!.toLowerCase();
  return unit === 'm' ? n * 1024 : unit === 'g' ? n * 1024 * 1024 : n;
}

/** "8192", "8k", "1m" → bytes. */
function parseSize(text: string, what: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(text.trim());
  if (!m) throw usage(`${what}: invalid size ${JSON.stringify(text)}`);
  const n = Number(m[1]) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1024 : 1024 * 1024);
  if (!Number.isSafeInteger(n) || n <= 0) throw usage(`${what}: invalid size ${JSON.stringify(text)}`);
  return n;
}

function flagOr(p: ParsedArgs, name: string, fallback: boolean): boolean {
  return p.has(name) ? p.flag(name) : fallback;
}

/** Filter rules in command-line order. */
function rulesFromArgs(p: ParsedArgs): FilterRule[] {
  const rules: FilterRule[] = [];
  for (const { name, value } of p.occurrences) {
    const v = String(value);
    if (name === 'exclude') rules.push(...patternRule(v, 'exclude'));
    else if (name === 'include') rules.push(...patternRule(v, 'include'));
    else if (name === 'exclude-from') rules.push(...readRuleFile(v, 'exclude'));
    else if (name === 'include-from') rules.push(...readRuleFile(v, 'include'));
    else if (name === 'filter') rules.push(...parseFilterRule(v));
  }
  return rules;
}

/** Output settings of a CLI run. */
interface OutputSettings {
  verbose: number;
  quiet: boolean;
  itemize: number;
  stats: boolean;
  json: boolean;
  progress: boolean;
}

/** Turns parsed arguments into SyncOptions (without callbacks). */
export function optionsFromArgs(p: ParsedArgs): { options: SyncOptions; rules: FilterRule[]; out: OutputSettings } {
  const archive = p.flag('archive');
  const d = p.flag('D');
  const options: SyncOptions = {
    recursive: flagOr(p, 'recursive', archive),
    links: flagOr(p, 'links', archive),
    copyLinks: p.flag('copy-links'),
    perms: flagOr(p, 'perms', archive),
    times: flagOr(p, 'times', archive),
    owner: flagOr(p, 'owner', archive),
    group: flagOr(p, 'group', archive),
    dryRun: p.flag('dry-run'),
    delete: p.flag('delete'),
    deleteExcluded: p.flag('delete-excluded'),
    checksum: p.flag('checksum'),
    ignoreTimes: p.flag('ignore-times'),
    sizeOnly: p.flag('size-only'),
    update: p.flag('update'),
    ignoreExisting: p.flag('ignore-existing'),
    inplace: p.flag('inplace'),
    append: p.flag('append'),
    appendVerify: p.flag('append-verify'),
    partial: p.flag('partial') || p.flag('P'),
    compress: p.flag('compress'),
  };
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (p.has('devices') || d || archive) options.devices = p.has('devices') ? p.flag('devices') : root;
  if (p.has('specials') || d || archive) options.specials = p.has('specials') ? p.flag('specials') : true;
  if (p.has('whole-file')) options.wholeFile = p.flag('whole-file');
  if (p.has('fsync')) options.fsync = p.flag('fsync');
  const cacheDir = p.value('sig-cache');
  if (cacheDir !== undefined) {
    if (cacheDir === '') throw usage('--sig-cache needs a directory');
    options.sigCache = cacheDir;
  }
  if (p.flag('no-sig-cache')) options.sigCache = false;
  const partialDir = p.value('partial-dir');
  if (partialDir !== undefined) options.partialDir = partialDir;
  const mw = p.value('modify-window');
  if (mw !== undefined) {
    const n = Number(mw);
    if (!Number.isFinite(n) || n < 0) throw usage(`--modify-window: invalid value ${JSON.stringify(mw)}`);
    options.modifyWindow = n;
  }
  const level = p.value('compress-level');
  if (level !== undefined) {
    options.compressLevel = Number(level);
    if (!Number.isInteger(options.compressLevel) || options.compressLevel < 1 || options.compressLevel > 9) {
      throw usage('--compress-level must be 1..9');
    }
    options.compress = true;
  }
  const bw = p.value('bwlimit');
  if (bw !== undefined) options.bwlimit = parseBwlimit(bw);
  const bs = p.value('block-size');
  if (bs !== undefined) options.blockSize = parseSize(bs, '--block-size');
  const cc = p.value('checksum-choice');
  if (cc !== undefined) {
    const kind = cc === 'xxh128' || cc === 'xxh3-128' ? 'xxh3' : cc === 'blake2' ? 'blake2b' : cc;
    if (!STRONG_KINDS.includes(kind as StrongKind)) throw usage(`--checksum-choice must be one of ${STRONG_KINDS.join(', ')}`);
    options.checksumChoice = kind as StrongKind;
  }
  const rsh = p.value('rsh');
  if (rsh !== undefined) options.rsh = rsh;
  const rp = p.value('remote-path');
  if (rp !== undefined) options.remotePath = rp;
  const out: OutputSettings = {
    verbose: p.count('verbose'),
    quiet: p.flag('quiet'),
    itemize: p.count('itemize-changes'),
    stats: p.flag('stats'),
    json: p.flag('json'),
    progress: p.flag('progress') || p.flag('P'),
  };
  return { options, rules: rulesFromArgs(p), out };
}

/** Entry point of sync mode and `--server`; resolves to the exit code. */
export async function runSyncCli(argv: string[]): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(argv, SPECS, { context: 'deltasync' });
  } catch (err) {
    return fail(err);
  }
  if (parsed.flag('server')) {
    if (parsed.operands.length > 0) return fail(usage('--server takes no file arguments (paths come over the protocol)'));
    const role = parsed.flag('sender') ? 'sender' : parsed.flag('receiver') ? 'receiver' : undefined;
    return runServerProcess(role, {
      root: parsed.value('root'),
      readOnly: parsed.flag('read-only'),
      writeOnly: parsed.flag('write-only'),
      noDelete: parsed.flag('no-delete'),
    });
  }
  const serverFlag = ['root', 'read-only', 'write-only', 'no-delete'].find((name) => parsed.has(name));
  if (serverFlag !== undefined) return fail(usage(`--${serverFlag} only applies with --server`));
  let plan;
  let settings;
  try {
    if (parsed.operands.length < 2) throw usage('need at least one SRC and a DEST (see deltasync --help)');
    settings = optionsFromArgs(parsed);
    const sources = parsed.operands.slice(0, -1);
    plan = planSync(sources, parsed.operands[parsed.operands.length - 1]!);
  } catch (err) {
    return fail(err);
  }
  return runClient(plan, settings);
}

function fail(err: unknown): number {
  if (err instanceof DeltaSyncError) {
    process.stderr.write(`deltasync: ${oneLine(err.message)}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`deltasync: internal error: ${oneLine(message)}\n`);
  if (process.env.DELTASYNC_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}

async function runClient(
  plan: ReturnType<typeof planSync>,
  settings: { options: SyncOptions; rules: FilterRule[]; out: OutputSettings },
): Promise<number> {
  const { options, rules, out } = settings;
  // With --json, stdout carries only the JSON object; the human output moves to stderr.
  const human = (text: string): void => {
    (out.json ? process.stderr : process.stdout).write(text);
  };
  const direction = plan.direction === 'push' ? '<' : '>';
  const listItems = out.itemize > 0 || out.verbose > 0;
  const progress = out.progress && !out.quiet ? new ProgressPrinter(human, !out.json && process.stdout.isTTY === true, process.stdout.columns ?? 100) : undefined;

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);

  const opts: SyncOptions = {
    ...options,
    filter: [],
    signal: controller.signal,
    onMessage: (m: SyncMessage) => {
      if (m.level === 'error') {
        process.stderr.write(`deltasync: ${oneLine(m.message)}\n`);
      } else if (m.level === 'warning') {
        if (!out.quiet) process.stderr.write(`${oneLine(m.message)}\n`);
      } else if (out.verbose > 0 && !out.quiet) {
        human(`${oneLine(m.message)}\n`);
      }
    },
  };
  if (listItems && !out.quiet) {
    opts.onItem = (item: SyncItem) => {
      if (out.itemize > 0) {
        if (out.itemize > 1 || itemChanged(item)) human(`${formatItem(item, true, direction)}\n`);
      } else if (itemVerbose(item)) {
        human(`${formatItem(item, false, direction)}\n`);
      }
    };
  }
  if (progress) opts.onProgress = (p) => progress.update(p);

  const sink = new ClientSink(opts);
  if (out.verbose > 0 && !out.quiet) human(plan.direction === 'pull' ? 'receiving incremental file list\n' : 'sending incremental file list\n');
  let stats: SyncStats;
  let code = 0;
  try {
    // Validate early (a usage error must not start a remote shell).
    resolveTransferOptions(opts, plan.direction !== 'local', rules);
    stats = await runSync(plan, { ...opts, filter: [] }, sink, rules);
  } catch (err) {
    progress?.finish();
    return fail(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
  progress?.finish();
  if (stats.errors > 0) code = 23;
  else if (stats.vanished > 0) code = 24;
  if (out.stats && !out.quiet) human(`\n${statsBlock(stats)}\n\n`);
  if ((out.verbose > 0 || out.stats) && !out.quiet) human(`${out.stats ? '' : '\n'}${summaryLines(stats)}\n`);
  if (out.json) process.stdout.write(`${JSON.stringify(statsJson(stats, code))}\n`);
  if (code !== 0) {
    const err = new SyncPartialError(
      code === 24
        ? 'some files vanished before they could be transferred (code 24)'
        : 'some files/attrs were not transferred (see previous errors) (code 23)',
      stats,
      code,
    );
    process.stderr.write(`deltasync error: ${err.message}\n`);
  }
  return code;
}
