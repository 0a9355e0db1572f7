#!/usr/bin/env node
// Benchmark suite: deltasync against rdiff and rsync, measured side by side in one run.
//
//   npm run bench                  # 1 GiB file
//   npm run bench -- --quick       # 64 MiB
//   npm run bench -- --size 256M --runs 3 --only signature,delta
//   npm run bench -- --quick --only sync --fs xfs   # work files on a fresh loop XFS with reflinks
//
// Anchors and deltasync runs are interleaved (anchor, ours, anchor, ours, ...) and medians
// are reported, so the ratios survive a noisy, shared machine. Prints a markdown table and
// writes JSON plus an SVG chart of the ratios under bench/results/.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenarios, makeTree, modifyTree } from './scenarios.js';
import { renderSvg } from './chart.js';
import { describeFilesystem, mountScratchXfs } from './seed.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin', 'deltasync.js');

// This sandbox sets NODE_EXTRA_CA_CERTS, which makes every node process parse a CA bundle at
// start (~0.2 s here, a cost of the environment, not of deltasync): the measured processes run
// without it unless --as-is-env; the startup rows measure node both ways.
const ENV_REMOVED = process.env.NODE_EXTRA_CA_CERTS ? ['NODE_EXTRA_CA_CERTS'] : [];
let measuredEnv = process.env;

function parseArgs(argv) {
  const opts = { size: 1 << 30, runs: 3, only: null, keep: false, out: join(root, 'bench', 'results'), fs: undefined, fsSize: undefined, asIsEnv: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--quick') opts.size = 64 << 20;
    else if (a === '--size') opts.size = parseSize(value());
    else if (a === '--runs') opts.runs = Math.max(1, Number.parseInt(value(), 10));
    else if (a === '--only') opts.only = new Set(value().split(','));
    else if (a === '--keep') opts.keep = true;
    else if (a === '--as-is-env') opts.asIsEnv = true;
    else if (a === '--out') opts.out = resolve(value());
    else if (a === '--fs') {
      if (value() !== 'xfs') throw new Error('--fs takes xfs (a fresh loop-mounted XFS with reflinks)');
      opts.fs = 'xfs';
    } else if (a === '--fs-size') opts.fsSize = parseSize(value());
    else if (a === '--help' || a === '-h') {
      console.log('usage: node bench/run.js [--quick] [--size N[K|M|G]] [--runs N] [--only op,...] [--keep] [--out DIR] [--fs xfs [--fs-size N]] [--as-is-env]');
      console.log('--as-is-env: keep NODE_EXTRA_CA_CERTS for the measured processes (removed by default; the startup rows show its cost)');
      console.log('ops: read, startup, signature, delta, patch, sync, remote, tree, simd, threads');
      console.log('--fs xfs: work files on a fresh loop XFS with reflinks (root, loop devices; sparse image of --fs-size, default 24 x size + 2 GiB, in the temp dir)');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return opts;
}

export function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text);
  if (!m) throw new Error(`bad size '${text}'`);
  const mult = { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[m[2].toUpperCase()];
  return Math.round(Number(m[1]) * mult);
}

// Runs a command under /usr/bin/time to get its peak RSS; wall time is measured here.
function run(cmd, args, { env, stdoutFile, cwd, asIsEnv } = {}) {
  return new Promise((resolvePromise, reject) => {
    const timeFile = join(tmpdir(), `ds-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const out = stdoutFile ? openSync(stdoutFile, 'w') : 'ignore';
    const start = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', timeFile, cmd, ...args], {
      stdio: ['ignore', out, 'pipe'],
      env: { ...(asIsEnv ? process.env : measuredEnv), ...env },
      cwd,
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (typeof out === 'number') closeSync(out);
      let rssKiB = NaN;
      try {
        const lines = readFileSync(timeFile, 'utf8').trim().split('\n');
        rssKiB = Number(lines[lines.length - 1]);
        rmSync(timeFile, { force: true });
      } catch {}
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim().split('\n').pop()}`));
      else resolvePromise({ seconds, rssMiB: rssKiB / 1024 });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// rdiff 2.3.2's recommended block length (sqrt of the size rounded down to a multiple of 128,
// at least 256), so both tools get the same block size.
function rdiffBlockLen(size) {
  if (size <= 256 * 256) return 256;
  return Math.floor(Math.sqrt(size) / 128) * 128;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const want = (op) => !opts.only || opts.only.has(op);
  opts.envRemoved = opts.asIsEnv ? [] : ENV_REMOVED;
  if (opts.envRemoved.length > 0) {
    measuredEnv = { ...process.env };
    for (const name of opts.envRemoved) delete measuredEnv[name];
  }
  if (!existsSync(join(root, 'dist', 'lib', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm install` (or `npx tsc`) first');
  }
  // --fs xfs: everything below runs on a scratch XFS, unmounted at the end, on error or signal.
  let scratch;
  if (opts.fs === 'xfs') {
    scratch = mountScratchXfs(tmpdir(), opts.fsSize ?? 24 * opts.size + 2 ** 31);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.on(sig, () => {
        scratch.release();
        process.exit(130);
      });
    }
  }
  let work;
  try {
    work = mkdtempSync(join(scratch ? scratch.mountPoint : tmpdir(), 'deltasync-bench-'));
  } catch (err) {
    scratch?.release();
    throw err;
  }
  opts.filesystem = { ...describeFilesystem(work), scratch: Boolean(scratch) };
  console.error(`# work files on ${opts.filesystem.type} ${opts.filesystem.reflink ? 'with' : 'without'} reflinks (${opts.filesystem.source ?? '?'})`);
  const rows = [];
  const fail = [];
  const add = (row) => {
    rows.push(row);
    const ratio = row.ratio === undefined ? '' : ` ratio ${row.ratio.toFixed(2)}`;
    console.error(`  ${row.op} ${row.scenario} ${row.tool}: ${row.seconds.toFixed(3)} s${ratio}`);
  };
  try {
    console.error(`# generating ${fmtBytes(opts.size)} files in ${work}`);
    const files = scenarios(work, opts.size);
    spawnSync('sync'); // write the inputs back now, not during the measurements
    const size = opts.size;
    const B = rdiffBlockLen(size);

    // Physical reference: reading the file from the page cache.
    let readRate = NaN;
    {
      const times = [];
      for (let r = 0; r < opts.runs + 1; r++) times.push((await run('cat', [files.base], { stdoutFile: '/dev/null' })).seconds);
      readRate = size / median(times.slice(1));
      rows.push({ op: 'read', scenario: 'page cache', tool: 'cat', seconds: size / readRate, rssMiB: NaN, bytes: size });
      console.error(`  raw read ${fmtRate(readRate)}`);
      // And writing a copy of it (into the page cache, no fsync): patch and the unrelated-data
      // delta write as much, so this bounds them on this machine's storage.
      const writes = [];
      for (let r = 0; r < opts.runs; r++) {
        writes.push((await run('dd', [`if=${files.base}`, `of=${join(work, 'write-probe')}`, 'bs=1M', 'status=none'])).seconds);
        rmSync(join(work, 'write-probe'), { force: true });
      }
      rows.push({ op: 'write', scenario: 'page cache (copy of the file)', tool: 'dd bs=1M', seconds: median(writes), rssMiB: NaN, bytes: size });
      console.error(`  raw copy ${fmtRate(size / median(writes))}`);
    }

    // Fixed cost of every CLI run: node's startup (with this environment, which may make node
    // load extra CA certificates) and the CLI's module loading, against rdiff's own startup.
    if (want('startup')) {
      const startups = [
        ['rdiff --version', () => run('rdiff', ['--version'])],
        ['node -e 0', () => run(process.execPath, ['-e', '0'], { asIsEnv: true })],
        ['deltasync --version', () => run(process.execPath, [cli, '--version'], { asIsEnv: true })],
      ];
      if (process.env.NODE_EXTRA_CA_CERTS) {
        // node reads that bundle at startup; measured so the note can separate it out.
        startups.push(['node -e 0 without NODE_EXTRA_CA_CERTS', () => run('/usr/bin/env', ['-u', 'NODE_EXTRA_CA_CERTS', process.execPath, '-e', '0'])]);
        startups.push(['deltasync --version without NODE_EXTRA_CA_CERTS', () => run('/usr/bin/env', ['-u', 'NODE_EXTRA_CA_CERTS', process.execPath, cli, '--version'])]);
      }
      const samples = startups.map(() => []);
      for (let r = 0; r < Math.max(5, opts.runs); r++) {
        for (let i = 0; i < startups.length; i++) samples[i].push(await startups[i][1]());
      }
      const anchor = median(samples[0].map((x) => x.seconds));
      startups.forEach(([tool], i) => {
        const seconds = median(samples[i].map((x) => x.seconds));
        add({
          op: 'startup',
          scenario: process.env.NODE_EXTRA_CA_CERTS ? 'NODE_EXTRA_CA_CERTS set' : 'process start',
          tool,
          seconds,
          bytes: 0,
          rssMiB: Math.max(...samples[i].map((x) => x.rssMiB)),
          ratio: i === 0 ? undefined : anchor / seconds,
          anchor: startups[0][0],
        });
      });
    }

    // Pairs of [anchor, ours...] measured interleaved.
    async function measure(op, scenario, bytes, variants) {
      const samples = variants.map(() => []);
      for (let r = 0; r < opts.runs; r++) {
        for (let v = 0; v < variants.length; v++) {
          try {
            if (variants[v].before) variants[v].before();
            // Every run starts alike: without its earlier output (replacing a file keeps the
            // old one's dirty pages until the rename, where rdiff truncates them away first),
            // and with no dirty page cache left to write back (the kernel throttles writers
            // once GiBs are dirty: a run would pay for its predecessor's output).
            if (variants[v].out) rmSync(variants[v].out, { force: true });
            spawnSync('sync');
            samples[v].push(await variants[v].run());
          } catch (err) {
            fail.push(`${op} ${scenario} ${variants[v].tool}: ${err.message}`);
            samples[v] = null;
            break;
          }
        }
      }
      const anchor = samples[0] ? median(samples[0].map((s) => s.seconds)) : NaN;
      variants.forEach((v, i) => {
        if (!samples[i] || samples[i].length === 0) return;
        const seconds = median(samples[i].map((s) => s.seconds));
        add({
          op,
          scenario,
          tool: v.tool,
          seconds,
          bytes,
          rssMiB: Math.max(...samples[i].map((s) => s.rssMiB)),
          ratio: i === 0 ? undefined : anchor / seconds,
          anchor: variants[0].tool,
        });
      });
    }

    const ds = (args, env) => () => run(process.execPath, [cli, ...args], { env });
    const rd = (args) => () => run('rdiff', args);

    if (want('signature')) {
      await measure('signature', 'basis', size, [
        { tool: 'rdiff', out: join(work, 'sig.rdiff'), run: rd(['-f', 'signature', '-b', String(B), files.base, join(work, 'sig.rdiff')]) },
        { tool: 'deltasync', out: join(work, 'sig.ds'), run: ds(['signature', '-f', '-b', String(B), files.base, join(work, 'sig.ds')]) },
        { tool: 'deltasync --format rdiff', out: join(work, 'sig.dsr'), run: ds(['signature', '-f', '--format', 'rdiff', '-b', String(B), files.base, join(work, 'sig.dsr')]) },
      ]);
    }
    // delta and patch need the signatures.
    if (want('delta') || want('patch')) {
      await run('rdiff', ['-f', 'signature', '-b', String(B), files.base, join(work, 'sig.rdiff')]);
      await run(process.execPath, [cli, 'signature', '-f', '-b', String(B), files.base, join(work, 'sig.ds')]);
      await run(process.execPath, [cli, 'signature', '-f', '--format', 'rdiff', '-b', String(B), files.base, join(work, 'sig.dsr')]);
      for (const [name, file] of Object.entries(files.variants)) {
        const dR = join(work, `delta-${name}.rdiff`);
        const dD = join(work, `delta-${name}.ds`);
        const dDR = join(work, `delta-${name}.dsr`);
        if (want('delta')) {
          await measure('delta', name, statSync(file).size, [
            { tool: 'rdiff', out: dR, run: rd(['-f', 'delta', join(work, 'sig.rdiff'), file, dR]) },
            { tool: 'deltasync', out: dD, run: ds(['delta', '-f', join(work, 'sig.ds'), file, dD]) },
            { tool: 'deltasync --format rdiff', out: dDR, run: ds(['delta', '-f', join(work, 'sig.dsr'), file, dDR]) },
          ]);
        } else {
          await run('rdiff', ['-f', 'delta', join(work, 'sig.rdiff'), file, dR]);
          await run(process.execPath, [cli, 'delta', '-f', join(work, 'sig.ds'), file, dD]);
        }
        if (want('patch')) {
          await measure('patch', name, statSync(file).size, [
            { tool: 'rdiff', out: join(work, 'out.rdiff'), run: rd(['-f', 'patch', files.base, dR, join(work, 'out.rdiff')]) },
            { tool: 'deltasync', out: join(work, 'out.ds'), run: ds(['patch', '-f', files.base, dD, join(work, 'out.ds')]) },
          ]);
        }
      }
    }

    if (want('simd')) {
      // Per-variant throughput of the native core (signature and unrelated-data delta).
      const levels = ['scalar', 'sse41', 'avx2', 'avx512'];
      for (const level of levels) {
        await measure(`signature simd=${level}`, 'basis', size, [
          { tool: 'rdiff', run: rd(['-f', 'signature', '-b', String(B), files.base, join(work, 'sig.rdiff')]) },
          { tool: `deltasync ${level}`, run: ds(['signature', '-f', '-b', String(B), files.base, join(work, 'sig.ds')], { DELTASYNC_SIMD: level }) },
        ]);
        await measure(`delta simd=${level}`, 'unrelated', size, [
          { tool: 'rdiff', run: rd(['-f', 'delta', join(work, 'sig.rdiff'), files.variants.unrelated, join(work, 'd.rdiff')]) },
          { tool: `deltasync ${level}`, run: ds(['delta', '-f', join(work, 'sig.ds'), files.variants.unrelated, join(work, 'd.ds')], { DELTASYNC_SIMD: level }) },
        ]);
      }
    }

    if (want('simd')) {
      // The native core alone, in memory, per SIMD level (native/test/core_test.cc `bench`):
      // this machine's levels, and NEON on aarch64 under qemu (emulated: correctness, not speed).
      for (const row of await coreBench(work, 64)) add(row);
    }

    if (want('threads')) {
      // The same inside one process (signature() only, no node startup): the scaling of the
      // native read + hash itself. The child prints its own elapsed seconds.
      const sigModule = join(root, 'dist', 'lib', 'signature.js');
      // `prefix`: a command the node process runs under (taskset), or none.
      const timed = (threads, prefix = []) => async () => {
        const script = `const { signature } = await import(${JSON.stringify(sigModule)});
          const t = performance.now(); await signature(${JSON.stringify(files.base)}, { blockLen: ${B} });
          process.stdout.write(String((performance.now() - t) / 1000));`;
        const out = join(work, `inproc-${threads}`);
        const cmd = [...prefix, process.execPath, '--input-type=module', '-e', script];
        const r = await run(cmd[0], cmd.slice(1), { env: threads ? { DELTASYNC_THREADS: threads } : {}, stdoutFile: out });
        return { seconds: Number(readFileSync(out, 'utf8')), rssMiB: r.rssMiB };
      };
      // Threads reading and hashing their own ranges of the file (DELTASYNC_THREADS).
      await measure('signature threads, in process', 'basis', size, [
        { tool: 'deltasync 1 thread', run: timed('1') },
        { tool: 'deltasync 2 threads', run: timed('2') },
      ]);
      await measure('signature threads', 'basis', size, [
        { tool: 'deltasync 1 thread', run: ds(['signature', '-f', '-b', String(B), files.base, join(work, 'sig1.ds')], { DELTASYNC_THREADS: '1' }) },
        { tool: 'deltasync all cores', run: ds(['signature', '-f', '-b', String(B), files.base, join(work, 'sig2.ds')]) },
      ]);
      // Cores: the whole process (its reads, its hashing, Node's own threads) confined with
      // taskset to one core, then to two; the addon sizes its thread count from the affinity mask.
      const allowed = availableParallelism();
      if (allowed >= 2) {
        const one = ['taskset', '-c', '0'];
        const two = ['taskset', '-c', '0,1'];
        const dsOn = (prefix, args) => () => {
          const cmd = [...prefix, process.execPath, cli, ...args];
          return run(cmd[0], cmd.slice(1));
        };
        await measure('signature cores, in process', 'basis', size, [
          { tool: 'deltasync 1 core', run: timed(undefined, one) },
          { tool: 'deltasync 2 cores', run: timed(undefined, two) },
        ]);
        await measure('signature cores', 'basis', size, [
          { tool: 'deltasync 1 core', run: dsOn(one, ['signature', '-f', '-b', String(B), files.base, join(work, 'sig1.ds')]) },
          { tool: 'deltasync 2 cores', run: dsOn(two, ['signature', '-f', '-b', String(B), files.base, join(work, 'sig2.ds')]) },
        ]);
        await run(process.execPath, [cli, 'signature', '-f', '-b', String(B), files.base, join(work, 'sig.ds')]);
        await measure('delta cores', 'unrelated', size, [
          { tool: 'deltasync 1 core', out: join(work, 'd1.ds'), run: dsOn(one, ['delta', '-f', join(work, 'sig.ds'), files.variants.unrelated, join(work, 'd1.ds')]) },
          { tool: 'deltasync 2 cores', out: join(work, 'd2.ds'), run: dsOn(two, ['delta', '-f', join(work, 'sig.ds'), files.variants.unrelated, join(work, 'd2.ds')]) },
        ]);
      }
    }

    if (want('sync') || want('remote')) {
      const fakeRsh = join(root, 'bench', 'fake-rsh.sh');
      for (const [name, file] of Object.entries(files.variants)) {
        const src = join(work, `src-${name}`);
        const dst = join(work, `dst-${name}`);
        mkdirSync(src, { recursive: true });
        cpSync(file, join(src, 'big'));
        const reset = () => {
          rmSync(dst, { recursive: true, force: true });
          mkdirSync(dst, { recursive: true });
          cpSync(files.base, join(dst, 'big'));
        };
        const modes = [];
        if (want('sync')) modes.push(['sync', [], []]);
        if (want('remote')) {
          modes.push([
            'remote',
            ['-e', fakeRsh],
            ['-e', fakeRsh, '--remote-path', `${process.execPath} ${cli}`],
          ]);
        }
        for (const [op, rsyncExtra, dsExtra] of modes) {
          const target = op === 'remote' ? `localhost:${dst}/` : `${dst}/`;
          await measure(op, name, statSync(file).size, [
            { tool: 'rsync', before: reset, run: () => run('rsync', ['-a', '--no-whole-file', ...rsyncExtra, `${src}/`, target]) },
            { tool: 'deltasync', before: reset, run: ds(['-a', '--no-whole-file', ...dsExtra, `${src}/`, target]) },
          ]);
        }
      }
    }

    if (want('tree')) {
      const base = join(work, 'tree-base');
      const src = join(work, 'tree-src');
      makeTree(base, Math.max(500, Math.min(5000, Math.round(opts.size / (200 << 10)))));
      cpSync(base, src, { recursive: true, preserveTimestamps: true });
      modifyTree(src);
      const dst = join(work, 'tree-dst');
      const reset = () => {
        rmSync(dst, { recursive: true, force: true });
        cpSync(base, dst, { recursive: true, preserveTimestamps: true });
      };
      await measure('sync', 'tree of small files', 0, [
        { tool: 'rsync', before: reset, run: () => run('rsync', ['-a', '--no-whole-file', `${src}/`, `${dst}/`]) },
        { tool: 'deltasync', before: reset, run: ds(['-a', '--no-whole-file', `${src}/`, `${dst}/`]) },
      ]);
    }

    report(rows, fail, opts, readRate);
  } finally {
    if (!opts.keep || scratch) rmSync(work, { recursive: true, force: true });
    scratch?.release();
  }
}

/** qemu-user's aarch64 runner, if installed. */
function qemuAarch64() {
  for (const name of ['qemu-aarch64', 'qemu-aarch64-static']) {
    for (const dir of (process.env.PATH ?? '').split(':')) {
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

/** Runs a command, resolving to its stdout (rejects with its stderr's last line). */
function capture(cmd, args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolvePromise(out) : reject(new Error(`${cmd} exited ${code}: ${err.trim().split('\n').pop()}`))));
  });
}

/**
 * Builds the standalone core program (x86_64, and aarch64 when the cross compiler and qemu are
 * there) and turns its `bench` table (| operation | level | GB/s |) into rows. Build problems
 * become a row-less warning: the CLI rows do not depend on them.
 */
async function coreBench(work, mib) {
  const rows = [];
  const build = join(root, 'native', 'test', 'build_core.sh');
  const targets = [{ arch: 'x86_64', runner: [], mib, suffix: '' }];
  const qemu = qemuAarch64();
  if (qemu) targets.push({ arch: 'aarch64', runner: [qemu], mib: Math.max(1, mib >> 4), suffix: ' (qemu)', parts: ['sums', 'search'] });
  for (const t of targets) {
    let table;
    try {
      console.error(`# building the core bench program for ${t.arch}`);
      const exe = (await capture('sh', [build, t.arch, join(work, `core-${t.arch}`)])).trim().split('\n').pop();
      table = '';
      for (const part of t.parts ?? ['all']) {
        const [cmd, ...args] = [...t.runner, exe, 'bench', String(t.mib), part];
        table += await capture(cmd, args);
      }
    } catch (err) {
      console.error(`  core bench ${t.arch} skipped: ${err.message}`);
      continue;
    }
    const bytes = t.mib << 20;
    for (const line of table.split('\n')) {
      const m = /^\| (.+?) \| (\w+) \| ([\d.]+) \|$/.exec(line.trim());
      if (!m || m[1] === 'operation') continue;
      const gbps = Number(m[3]);
      rows.push({
        op: `core ${m[1]}`,
        scenario: `in memory, ${t.mib} MiB, ${t.arch}`,
        tool: `${m[2]}${t.suffix}`,
        seconds: gbps > 0 ? bytes / (gbps * 1e9) : NaN,
        bytes,
        rssMiB: NaN,
        inMemory: true, // no anchor, no file: the ratio and raw-read columns do not apply
      });
    }
  }
  return rows;
}

function fmtBytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${n} B`;
}
function fmtRate(bytesPerSecond) {
  return `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;
}

function report(rows, fail, opts, readRate) {
  const lines = [];
  const fs = opts.filesystem;
  lines.push(
    `deltasync benchmark — ${fmtBytes(opts.size)}, median of ${opts.runs}, ${new Date().toISOString()}` +
      (fs ? `, files on ${fs.type} ${fs.reflink ? 'with' : 'without'} reflinks${fs.scratch ? ' (a fresh loop-mounted XFS)' : ''}` : '') +
      (opts.envRemoved.length ? `, measured processes without ${opts.envRemoved.join(', ')} (see the startup rows)` : ''),
  );
  lines.push('');
  lines.push('| operation | scenario | tool | median s | GB/s | speed-up vs anchor | × raw read | peak RSS MiB |');
  lines.push('|---|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const rate = r.bytes ? r.bytes / r.seconds : NaN;
    lines.push(
      `| ${r.op} | ${r.scenario} | ${r.tool} | ${r.seconds.toFixed(3)} | ${Number.isFinite(rate) ? (rate / 1e9).toFixed(2) : '—'} | ` +
        `${r.ratio !== undefined ? `${r.ratio.toFixed(2)}× ${r.anchor}` : r.inMemory ? '—' : '(anchor)'} | ` +
        `${Number.isFinite(rate) && !r.inMemory ? (rate / readRate).toFixed(2) : '—'} | ${Number.isFinite(r.rssMiB) ? r.rssMiB.toFixed(0) : '—'} |`,
    );
  }
  if (fail.length) {
    lines.push('');
    lines.push('Failed measurements:');
    for (const f of fail) lines.push(`- ${f}`);
  }
  const text = lines.join('\n');
  console.log(text);
  mkdirSync(opts.out, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-') + (fs?.scratch ? '-xfs' : '');
  writeFileSync(join(opts.out, `bench-${stamp}.json`), JSON.stringify({ size: opts.size, runs: opts.runs, readRate, filesystem: fs, envRemoved: opts.envRemoved, rows, fail }, null, 2));
  writeFileSync(join(opts.out, `bench-${stamp}.md`), text + '\n');
  writeFileSync(join(opts.out, 'ratios.svg'), renderSvg(rows.filter((r) => r.ratio !== undefined && r.op !== 'startup')));
  console.error(`wrote ${opts.out}/bench-${stamp}.{json,md} and ratios.svg`);
}

// Only run when executed, so helpers can be imported by tests.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`bench: ${err.message}`);
    process.exit(1);
  });
}

export { median, rdiffBlockLen };
