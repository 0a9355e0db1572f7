#!/usr/bin/env node
// The seed experiment (shared/seeds/004): sync a big file, change one byte, sync again; how much
// does each side read and write, how much crosses the wire, how long does it take? deltasync
// (default atomic mode and --inplace) and rsync --no-whole-file (default and --inplace) in the
// same run, pushing and pulling through a remote shell that counts the bytes it relays.
//
//   npm run bench:seed                    # 1 GiB
//   npm run bench:seed -- --quick         # 64 MiB
//   npm run bench:seed -- --size 3G       # the original experiment's size
//   npm run bench:seed -- --variants append --tools ds,rsync --directions push
//   npm run bench:seed -- --fs xfs        # on a fresh loop-mounted XFS with reflinks (root)
//
// Measured per sync, per side, from /proc/<pid>/io of the processes (rchar/wchar: every byte
// passed to read/write-like calls, page cache or not, pipes included): each side's command runs
// under bench/iowrap.sh, which records its shell's counters after the command was reaped (the
// kernel folds a reaped child's counters into its parent). The remote shell is
// bench/count-rsh.js: it counts the bytes on the wire in each direction and records its own
// subtree's counters, which are subtracted from the local side's. Wall time is the local
// command's. Page cache is warm unless --drop-caches (global, needs root).
//
// The filesystem matters: where it shares extents (XFS with reflink=1, btrfs) the receiver's
// range copies cost neither reads nor writes. `--fs xfs` makes a sparse XFS image (mkfs.xfs -m
// reflink=1) on a loop device with scripts/scratch-fs.sh, runs everything on it, and unmounts and
// removes it afterwards, also after an error or Ctrl-C. Every report names the filesystem it ran
// on (its type, and whether a reflink copy actually worked there).
//
// Writes a markdown table to stdout and bench/results/seed-<size>.{md,json} (seed-<size>-xfs.*
// with --fs xfs). A row that fails (non-zero exit, wrong result, timeout) is reported as failed;
// the run goes on.
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  rmSync,
  statfsSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(root, 'bin', 'deltasync.js');
const IOWRAP = join(root, 'bench', 'iowrap.sh');
const RSH = join(root, 'bench', 'count-rsh.js');
const SCRATCH_FS = join(root, 'scripts', 'scratch-fs.sh');

const TOOLS = {
  ds: { label: 'deltasync', kind: 'ds', flags: [] },
  'ds-inplace': { label: 'deltasync --inplace', kind: 'ds', flags: ['--inplace'] },
  rsync: { label: 'rsync --no-whole-file', kind: 'rsync', flags: [] },
  'rsync-inplace': { label: 'rsync --no-whole-file --inplace', kind: 'rsync', flags: ['--inplace'] },
};
// deltasync rows are compared with the rsync row of the same mode.
const RSYNC_TWIN = { ds: 'rsync', 'ds-inplace': 'rsync-inplace' };
const VARIANTS = {
  append: 'append 1 byte',
  prepend: 'prepend 1 byte',
  middle: 'change 1 byte in the middle',
};

function usage() {
  return `usage: node bench/seed.js [--quick] [--size N[K|M|G]] [--variants ${Object.keys(VARIANTS).join(',')}]
       [--tools ${Object.keys(TOOLS).join(',')}] [--directions push,pull] [--work DIR] [--out DIR]
       [--timeout SECONDS] [--drop-caches] [--keep] [--fs xfs|DIR] [--fs-size N[M|G]]
  --fs xfs   run on a fresh loop-mounted XFS with reflinks (needs root and loop devices);
             its sparse image goes under --work (default: the temp dir), sized --fs-size
             (default 6 x size + 1 GiB). --fs DIR is --work DIR.`;
}

export function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)i?B?$/i.exec(text);
  if (!m) throw new Error(`bad size '${text}'`);
  const mult = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2].toUpperCase()];
  return Math.round(Number(m[1]) * mult);
}

function parseArgs(argv) {
  const opts = {
    size: 2 ** 30,
    variants: Object.keys(VARIANTS),
    tools: Object.keys(TOOLS),
    directions: ['push', 'pull'],
    work: tmpdir(),
    out: join(root, 'bench', 'results'),
    timeout: undefined,
    dropCaches: false,
    keep: false,
    fs: undefined,
    fsSize: undefined,
  };
  const list = (text, known, what) => {
    const items = text.split(',').filter(Boolean);
    for (const item of items) if (!known.includes(item)) throw new Error(`unknown ${what} '${item}' (${known.join(', ')})`);
    return items;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') opts.size = 64 * 2 ** 20;
    else if (a === '--size') opts.size = parseSize(value());
    else if (a === '--variants') opts.variants = list(value(), Object.keys(VARIANTS), 'variant');
    else if (a === '--tools') opts.tools = list(value(), Object.keys(TOOLS), 'tool');
    else if (a === '--directions') opts.directions = list(value(), ['push', 'pull'], 'direction');
    else if (a === '--work') opts.work = resolve(value());
    else if (a === '--out') opts.out = resolve(value());
    else if (a === '--timeout') opts.timeout = Number(value());
    else if (a === '--drop-caches') opts.dropCaches = true;
    else if (a === '--keep') opts.keep = true;
    else if (a === '--fs') {
      const v = value();
      if (v === 'xfs') opts.fs = 'xfs';
      else if (v.includes('/') || v === '.' || v === '..') opts.work = resolve(v);
      else throw new Error(`unknown --fs '${v}': xfs (a fresh loop XFS with reflinks) or a directory path`);
    } else if (a === '--fs-size') opts.fsSize = parseSize(value());
    else if (a === '--help' || a === '-h') {
      console.log(usage());
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${usage()}`);
  }
  // Generous: a failing or hanging row must not stall the run forever.
  opts.timeout ??= 120 + Math.ceil(opts.size / 2 ** 30) * 240;
  return opts;
}

/** Parses /proc/<pid>/io text into numbers. */
function parseIo(text) {
  const io = {};
  for (const line of String(text).split('\n')) {
    const m = /^(\w+):\s*(\d+)/.exec(line);
    if (m) io[m[1]] = Number(m[2]);
  }
  return 'rchar' in io ? io : undefined;
}

function subIo(a, b) {
  if (!a || !b) return undefined;
  const out = {};
  for (const k of Object.keys(a)) out[k] = a[k] - (b[k] ?? 0);
  return out;
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function readIo(path) {
  try {
    return parseIo(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

// Process groups of the commands running now: a signal to this script kills them before the
// scratch filesystem they work on is unmounted.
const liveGroups = new Set();

// This sandbox sets NODE_EXTRA_CA_CERTS, which makes every node process (both deltasync ends and
// the counting remote shell) parse a CA bundle at start (~0.2 s here): a cost of the
// environment, not of the tools, so the commands run without it (recorded in the result).
const ENV_REMOVED = process.env.NODE_EXTRA_CA_CERTS ? ['NODE_EXTRA_CA_CERTS'] : [];
const measuredEnv = { ...process.env };
for (const name of ENV_REMOVED) delete measuredEnv[name];

/** Runs a command with a timeout; resolves { code, seconds, stderr, stdout, timedOut }. */
function run(cmd, args, { env, timeoutSec }) {
  return new Promise((resolvePromise) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...measuredEnv, ...env }, detached: true });
    if (child.pid) liveGroups.add(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout = (stdout + d).slice(-65536)));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-65536)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL'); // the whole process group it started
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutSec * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      liveGroups.delete(child.pid);
      resolvePromise({ code: 127, seconds: 0, stderr: err.message, stdout, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      liveGroups.delete(child.pid);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      resolvePromise({ code: code ?? (signal ? 128 : 255), seconds, stderr, stdout, timedOut });
    });
  });
}

// ---- the filesystem under the experiment ----

/**
 * Mounts a fresh XFS with reflinks on a loop device (scripts/scratch-fs.sh), its sparse image in
 * a new directory under `parent`. Returns the mount point and `release()`, which unmounts it and
 * removes the image: idempotent and synchronous, so a signal handler can call it. Throws with
 * the script's reason when this machine can't (not root, no loop devices, no mkfs.xfs).
 */
export function mountScratchXfs(parent, bytes) {
  const dir = mkdtempSync(join(parent, 'ds-scratch-xfs-'));
  const size = `${Math.max(320, Math.ceil(bytes / 2 ** 20))}M`; // mkfs.xfs wants > 300 MB
  const r = spawnSync('bash', [SCRATCH_FS, 'mount', dir, size], { encoding: 'utf8' });
  if (r.status !== 0) {
    try {
      rmdirSync(dir); // the script cleaned up inside it
    } catch {}
    const why = String(r.stderr ?? r.error?.message ?? '').trim().split('\n').pop() || `exit ${r.status}`;
    throw new Error(`cannot make a scratch XFS with reflinks: ${why.replace(/^scratch-fs: /, '')}`);
  }
  const mountPoint = r.stdout.trim().split('\n').pop();
  let released = false;
  return {
    mountPoint,
    imageDir: dir,
    release() {
      if (released) return;
      released = true;
      const u = spawnSync('bash', [SCRATCH_FS, 'umount', dir], { encoding: 'utf8' });
      if (u.status !== 0) process.stderr.write(`seed: unmounting ${mountPoint} failed: ${String(u.stderr).trim()} (run: bash ${SCRATCH_FS} umount ${dir})\n`);
    },
  };
}

/**
 * What `dir` lives on: filesystem type and device (findmnt), and whether a reflink copy works
 * there (tried, not inferred from the type: XFS may be formatted without reflinks).
 */
export function describeFilesystem(dir) {
  const info = { type: 'unknown', source: undefined, reflink: false };
  const f = spawnSync('findmnt', ['--noheadings', '--output', 'FSTYPE,SOURCE', '--target', dir], { encoding: 'utf8' });
  if (f.status === 0) {
    const [type, source] = f.stdout.trim().split(/\s+/);
    info.type = type || 'unknown';
    info.source = source;
  }
  const probe = mkdtempSync(join(dir, 'reflink-probe-'));
  try {
    writeFileSync(join(probe, 'a'), Buffer.alloc(64 * 1024, 1));
    info.reflink = spawnSync('cp', ['--reflink=always', join(probe, 'a'), join(probe, 'b')], { stdio: 'ignore' }).status === 0;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
  return info;
}

/** One line for the report: "xfs with reflinks (fresh loop-mounted image, /dev/loop0)". */
function fsLabel(fs) {
  const how = fs.scratch ? `a fresh loop-mounted image, mkfs.xfs -m reflink=1, ${fs.source}` : `${fs.source ?? 'unknown device'}`;
  return `${fs.type} ${fs.reflink ? 'with reflinks' : 'without reflinks'} (${how})`;
}

function sameFiles(a, b) {
  return spawnSync('cmp', ['-s', a, b]).status === 0;
}

function dropCaches() {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  } catch (err) {
    console.error(`seed: cannot drop caches (${err.message}); continuing with a warm cache`);
  }
}

/** A file of `size` pseudo-random bytes (incompressible, no repeated blocks). */
function makeBase(path, size) {
  const fd = openSync(path, 'w');
  const chunk = Buffer.allocUnsafe(16 * 2 ** 20);
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(chunk.length, size - done);
      randomFillSync(chunk, 0, n);
      writeSync(fd, chunk, 0, n);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

const T0 = 1_600_000_000; // source mtime before the change
const T1 = T0 + 3600; // after

async function modify(file, variant, size) {
  if (variant === 'append') {
    const fd = openSync(file, 'a');
    writeSync(fd, Buffer.from('0'));
    closeSync(fd);
  } else if (variant === 'prepend') {
    const tmp = `${file}.new`;
    const out = createWriteStream(tmp);
    out.write(Buffer.from('0'));
    await pipeline(createReadStream(file, { highWaterMark: 8 * 2 ** 20 }), out);
    renameSync(tmp, file);
  } else if (variant === 'middle') {
    const fd = openSync(file, 'r+');
    const pos = Math.floor(size / 2);
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, pos);
    b[0] ^= 0xff;
    writeSync(fd, b, 0, 1, pos);
    closeSync(fd);
  }
  utimesSync(file, T1, T1);
}

/** One measured sync: returns the figures for both sides. */
async function measuredSync({ tool, direction, srcDir, dstDir, rowDir, step, timeoutSec, cacheHome }) {
  const t = TOOLS[tool];
  const localIoFile = join(rowDir, `${step}-local.io`);
  const remoteIoFile = join(rowDir, `${step}-remote.io`);
  const wireFile = join(rowDir, `${step}-wire.json`);
  for (const f of [localIoFile, remoteIoFile, wireFile]) rmSync(f, { force: true });
  const remoteProgram = t.kind === 'ds' ? `node ${CLI}` : 'rsync';
  const remotePath = `sh ${IOWRAP} ${remoteIoFile} ${remoteProgram}`;
  const src = direction === 'push' ? `${srcDir}/` : `localhost:${srcDir}/`;
  const dst = direction === 'push' ? `localhost:${dstDir}/` : `${dstDir}/`;
  const args =
    t.kind === 'ds'
      ? [process.execPath, CLI, '-a', ...t.flags, '-e', RSH, '--remote-path', remotePath, src, dst]
      : ['rsync', '-a', '--no-whole-file', ...t.flags, '-e', RSH, '--rsync-path', remotePath, src, dst];
  const r = await run('sh', [IOWRAP, localIoFile, ...args], {
    env: { SEED_WIRE_FILE: wireFile, XDG_CACHE_HOME: cacheHome },
    timeoutSec,
  });
  const localTotal = readIo(localIoFile);
  const remote = readIo(remoteIoFile);
  const wire = readJson(wireFile);
  const relayTotal = wire ? parseIo(wire.io) : undefined;
  const local = subIo(localTotal, relayTotal);
  const [sender, receiver] = direction === 'push' ? [local, remote] : [remote, local];
  let error;
  if (r.timedOut) error = `timed out after ${timeoutSec} s`;
  else if (r.code !== 0) error = `exit ${r.code}: ${lastLine(r.stderr)}`;
  else if (!sameFiles(join(srcDir, 'data.bin'), join(dstDir, 'data.bin'))) error = 'destination differs from the source';
  return {
    ok: error === undefined,
    error,
    seconds: r.seconds,
    sender: sender && pickIo(sender),
    receiver: receiver && pickIo(receiver),
    wire: wire ? { toRemote: wire.toRemote, fromRemote: wire.fromRemote, total: wire.toRemote + wire.fromRemote } : undefined,
  };
}

function pickIo(io) {
  return { read: io.rchar, written: io.wchar, diskRead: io.read_bytes, diskWritten: io.write_bytes };
}

/** The most telling stderr line: the last error-looking one, else the last that is not noise. */
function lastLine(text) {
  const lines = String(text)
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^\s+at /.test(l) && !/^Node\.js v/.test(l) && !/^\s*[\^{}]+\s*$/.test(l));
  const errors = lines.filter((l) => /\b\w*Error\b|error|^deltasync|^rsync|failed|denied|No such/i.test(l));
  const pick = errors.length > 0 ? errors[errors.length - 1] : lines[lines.length - 1];
  return (pick ?? '').trim().slice(0, 300);
}

async function runRow(opts, base, variant, tool, direction) {
  const rowDir = mkdtempSync(join(opts.workDir, `${variant}-${tool}-${direction}-`));
  const srcDir = join(rowDir, 'src');
  const dstDir = join(rowDir, 'dst');
  const cacheHome = join(rowDir, 'cache');
  mkdirSync(srcDir);
  mkdirSync(dstDir);
  mkdirSync(cacheHome);
  const row = { variant, tool, label: TOOLS[tool].label, direction };
  try {
    const file = join(srcDir, 'data.bin');
    copyFileSync(base, file);
    utimesSync(file, T0, T0);
    if (opts.dropCaches) dropCaches();
    const common = { tool, direction, srcDir, dstDir, rowDir, timeoutSec: opts.timeout, cacheHome };
    row.first = await measuredSync({ ...common, step: 'first' });
    if (!row.first.ok) throw new Error(`first sync: ${row.first.error}`);
    await modify(file, variant, opts.size);
    if (opts.dropCaches) dropCaches();
    row.second = await measuredSync({ ...common, step: 'second' });
    if (!row.second.ok) throw new Error(`second sync: ${row.second.error}`);
    row.ok = true;
  } catch (err) {
    row.ok = false;
    row.error = err.message;
  } finally {
    if (!opts.keep) rmSync(rowDir, { recursive: true, force: true });
  }
  return row;
}

// ---- report ----

function mib(n) {
  if (n === undefined || Number.isNaN(n)) return '–';
  if (n < 2 ** 20) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

function times(n, size) {
  return n === undefined ? '–' : `${(n / size).toFixed(2)}×`;
}

function ratio(a, b) {
  return a === undefined || b === undefined || !b ? '–' : `${(a / b).toFixed(2)}`;
}

function sum(a, b) {
  return a === undefined || b === undefined ? undefined : a + b;
}

function table(rows, size, step) {
  const head =
    '| change | tool | dir | sender read | sender written | receiver read | receiver written | all read (× size) | all written | wire ↑ / ↓ | wire vs rsync | time s | time vs rsync |\n' +
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = [head];
  for (const row of rows) {
    const m = row[step];
    if (!m || !m.ok) {
      const why = m?.error ?? row.error ?? 'not run';
      lines.push(`| ${row.variant} | ${row.label} | ${row.direction} | failed: ${why.replace(/\|/g, '\\|')} |||||||||||`);
      continue;
    }
    const twinKey = RSYNC_TWIN[row.tool];
    const twin = twinKey && rows.find((r) => r.variant === row.variant && r.tool === twinKey && r.direction === row.direction)?.[step];
    const allRead = sum(m.sender?.read, m.receiver?.read);
    const allWritten = sum(m.sender?.written, m.receiver?.written);
    lines.push(
      `| ${row.variant} | ${row.label} | ${row.direction} | ${mib(m.sender?.read)} | ${mib(m.sender?.written)} | ${mib(m.receiver?.read)} | ${mib(m.receiver?.written)} | ${mib(allRead)} (${times(allRead, size)}) | ${mib(allWritten)} | ${mib(m.wire?.toRemote)} / ${mib(m.wire?.fromRemote)} | ${twin?.ok ? ratio(m.wire?.total, twin.wire?.total) : '–'} | ${m.seconds.toFixed(2)} | ${twin?.ok ? ratio(m.seconds, twin.seconds) : '–'} |`,
    );
  }
  return lines.join('\n');
}

function rsyncVersion() {
  const r = spawnSync('rsync', ['--version']);
  return r.status === 0 ? String(r.stdout).split('\n')[0] : 'rsync not found';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  mkdirSync(opts.out, { recursive: true });
  // Undone in reverse order at the end, after an error, or on a signal (children killed first).
  const cleanups = [];
  const cleanUp = () => {
    while (cleanups.length > 0) {
      try {
        cleanups.pop()();
      } catch (err) {
        process.stderr.write(`seed: cleanup: ${err.message}\n`);
      }
    }
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      process.stderr.write(`\nseed: ${sig}: stopping, cleaning up\n`);
      for (const pid of liveGroups) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {}
      }
      cleanUp();
      process.exit(128 + (osConstants.signals[sig] ?? 1));
    });
  }
  const sizeLabel = mib(opts.size).replace(/\.0+ | /g, '');
  const started = new Date();
  const rows = [];
  let filesystem;
  try {
    let workParent = opts.work;
    if (opts.fs === 'xfs') {
      // Peak use: base, source, destination, the new temp file, the prepend variant's rewrite.
      const imageBytes = opts.fsSize ?? 6 * opts.size + 2 ** 30;
      warnIfShort(opts.work, 5 * opts.size);
      process.stderr.write(`seed: making a ${mib(imageBytes)} loop XFS (reflink=1) under ${opts.work}\n`);
      const scratch = mountScratchXfs(opts.work, imageBytes);
      if (opts.keep) process.stderr.write(`seed: --keep: leaving ${scratch.mountPoint} mounted; remove it with: bash ${SCRATCH_FS} umount ${scratch.imageDir}\n`);
      else cleanups.push(() => scratch.release());
      workParent = scratch.mountPoint;
    } else {
      warnIfShort(opts.work, 4 * opts.size);
    }
    opts.workDir = mkdtempSync(join(workParent, 'ds-seed-'));
    if (!opts.keep) cleanups.push(() => rmSync(opts.workDir, { recursive: true, force: true }));
    filesystem = { ...describeFilesystem(opts.workDir), scratch: opts.fs === 'xfs' };
    if (opts.fs === 'xfs' && !filesystem.reflink) throw new Error(`the scratch XFS at ${workParent} does not do reflinks`);
    process.stderr.write(`seed: filesystem: ${fsLabel(filesystem)}\n`);
    const base = join(opts.workDir, 'base.bin');
    process.stderr.write(`seed: making a ${mib(opts.size)} file in ${opts.workDir}\n`);
    makeBase(base, opts.size);
    for (const variant of opts.variants) {
      for (const direction of opts.directions) {
        for (const tool of opts.tools) {
          process.stderr.write(`seed: ${variant} / ${TOOLS[tool].label} / ${direction} ... `);
          const row = await runRow(opts, base, variant, tool, direction);
          process.stderr.write(row.ok ? `${row.second.seconds.toFixed(2)} s\n` : `FAILED (${row.error})\n`);
          rows.push(row);
        }
      }
    }
  } finally {
    cleanUp();
  }

  const command = `npm run bench:seed --${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`;
  const md = [
    `## Seed experiment: ${mib(opts.size)} file, second sync after a one-byte change`,
    '',
    `\`${command}\` — ${started.toISOString()}, ${rsyncVersion()}, node ${process.version}, ` +
      `page cache ${opts.dropCaches ? 'dropped before each sync' : 'warm'}. ` +
      `Filesystem: ${fsLabel(filesystem)}. ` +
      'Read/written: rchar/wchar of all processes of each side (/proc/PID/io; pipes included' +
      (filesystem.reflink ? '; ranges shared by reflink (FICLONERANGE) are neither read nor written, so they count 0' : '') +
      '). ' +
      'Wire: bytes through the remote shell, local→remote / remote→local. "vs rsync": deltasync ÷ rsync in the same mode (default or --inplace), same change and direction.',
    '',
    table(rows, opts.size, 'second'),
    '',
    `### First sync (${mib(opts.size)}, empty destination)`,
    '',
    table(rows, opts.size, 'first'),
    '',
  ].join('\n');
  console.log(md);
  const base = join(opts.out, `seed-${sizeLabel}${opts.fs === 'xfs' ? '-xfs' : ''}`);
  writeFileSync(`${base}.md`, md);
  writeFileSync(
    `${base}.json`,
    JSON.stringify(
      { size: opts.size, started: started.toISOString(), command, rsync: rsyncVersion(), node: process.version, dropCaches: opts.dropCaches, filesystem, envRemoved: ENV_REMOVED, rows },
      null,
      2,
    ),
  );
  process.stderr.write(`seed: wrote ${base}.md and ${base}.json\n`);
  if (!existsSync(CLI)) process.stderr.write(`seed: note: ${CLI} is missing\n`);
}

/** Warns (the run goes on) when the filesystem holding `dir` has less than `bytes` free. */
function warnIfShort(dir, bytes) {
  try {
    const st = statfsSync(dir);
    const free = st.bavail * st.bsize;
    if (free < bytes) process.stderr.write(`seed: warning: ${mib(free)} free under ${dir}, the run may need ${mib(bytes)}\n`);
  } catch {}
}

// Only run when executed, so bench/run.js can import the scratch filesystem helpers.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`seed: ${err.message}`);
    process.exit(1);
  });
}
