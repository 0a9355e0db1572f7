#!/usr/bin/env node
// Turns the newest benchmark results into the README's tables, so the figures there are the
// ones a command produced rather than typed by hand:
//
//   npm run bench            -> bench/results/bench-<ISO time>.json (+ ratios.svg)
//   npm run bench:seed       -> bench/results/seed-<size>.json
//   npm run bench:readme     -> README.md between <!-- bench:run --> / <!-- /bench:run --> and
//                               <!-- bench:seed --> / <!-- /bench:seed --> (and, when present,
//                               <!-- bench:seed-summary -->: the same result in prose; and
//                               <!-- bench:seed-reflink -->: the newest seed-*-xfs.json, a run
//                               with --fs xfs); docs/bench/ratios.svg. Runs with --fs xfs
//                               never stand in for the ordinary ones.
//
// Options: --results DIR (bench/results), --readme FILE (README.md), --docs DIR (docs/bench);
// --bench FILE (repeatable) and --seed FILE pick result files instead of the newest ones (e.g.
// to leave out a quick debugging run).
// For each operation the newest run that measured it is shown (one table per contributing run);
// the newest seed result is shown. Each table names the command and the date that produced it.
// Nothing else in README.md changes.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Bytes as the bench reports print them: B below 1 KiB, then KiB / MiB / GiB with one decimal. */
export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '—';
  if (n < KiB) return `${n} B`;
  if (n < MiB) return `${(n / KiB).toFixed(1)} KiB`;
  if (n < GiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${(n / GiB).toFixed(1)} GiB`;
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The date part of an ISO time ("2026-11-21 20:43 UTC"), or the input when it is not one. */
function fmtDate(iso) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d):(\d\d)/.exec(iso ?? '');
  return m ? `${m[1]} ${m[2]}:${m[3]} UTC` : String(iso ?? 'unknown date');
}

/** bench-2026-11-21T20-43-00-721Z.json -> 2026-11-21T20:43:00.721Z (run.js replaces ':' and '.'). */
export function stampToIso(fileName) {
  const m = /(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)-(\d{3})Z/.exec(fileName);
  return m ? `${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z` : undefined;
}

/**
 * Markdown for one `npm run bench` result: one line per measured deltasync variant, next to the
 * anchor (rdiff, rsync, ...) it was timed against in the same run.
 */
export function renderBenchTable(result, meta = {}) {
  const all = Array.isArray(result?.rows) ? result.rows : [];
  const rows = meta.ops ? all.filter((r) => meta.ops.includes(r.op)) : all;
  const size = num(result?.size);
  const runs = num(result?.runs);
  const readRate = num(result?.readRate);
  const command = result?.command ?? meta.command ?? 'npm run bench';
  const when = fmtDate(result?.started ?? meta.date);
  const lines = [];
  const facts = [];
  if (Number.isFinite(size)) facts.push(`${fmtBytes(size)} files`);
  if (Number.isFinite(runs)) facts.push(`median of ${runs} run${runs === 1 ? '' : 's'}`);
  if (Number.isFinite(readRate)) facts.push(`\`cat\` reads the file from the page cache at ${(readRate / 1e9).toFixed(2)} GB/s`);
  if (result?.filesystem) facts.push(`files ${describeFs(result.filesystem)}`);
  if (Array.isArray(result?.envRemoved) && result.envRemoved.length > 0) {
    facts.push(`measured processes run without ${result.envRemoved.map(cell).join(', ')} (this machine sets it; the startup rows show what it costs every node process)`);
  }
  lines.push(`Produced by \`${command}\` on ${when}${meta.source ? ` (${meta.source})` : ''}: ${facts.join(', ')}.`);
  const compared = [];
  for (const r of rows) {
    if (r.ratio === undefined || r.ratio === null) continue; // anchors and the raw read appear beside ours
    const anchor = rows.find((a) => a.op === r.op && a.scenario === r.scenario && a.tool === r.anchor && (a.ratio === undefined || a.ratio === null));
    const secs = num(r.seconds);
    const rate = num(r.bytes) > 0 ? num(r.bytes) / secs : NaN; // trees and start-up have no single size
    const rss = (v) => (Number.isFinite(num(v)) ? num(v).toFixed(0) : '—');
    compared.push(
      `| ${cell(r.op)} | ${cell(r.scenario)} | ${cell(r.tool)} | ${secs.toFixed(3)} | ${cell(r.anchor ?? '—')} | ` +
        `${anchor ? num(anchor.seconds).toFixed(3) : '—'} | ${num(r.ratio).toFixed(2)}× | ` +
        `${Number.isFinite(rate) ? (rate / 1e9).toFixed(2) : '—'} | ${rss(r.rssMiB)} / ${anchor ? rss(anchor.rssMiB) : '—'} |`,
    );
  }
  if (compared.length > 0) {
    lines.push('Speed-up = anchor time ÷ deltasync time, so above 1× deltasync is faster.');
    lines.push('');
    lines.push('| operation | scenario | deltasync | time s | anchor | anchor s | speed-up | deltasync GB/s | peak RSS MiB (ours / anchor) |');
    lines.push('|---|---|---|---:|---|---:|---:|---:|---:|');
    lines.push(...compared);
  }
  // Native kernels measured in memory (bench/run.js --only simd): no anchor, one rate each.
  const inMemory = rows.filter((r) => r.inMemory);
  if (inMemory.length > 0) {
    if (compared.length > 0) lines.push('');
    lines.push('Native kernels in memory (no file I/O), per SIMD variant:');
    lines.push('');
    lines.push('| operation | scenario | variant | GB/s |');
    lines.push('|---|---|---|---:|');
    for (const r of inMemory) {
      const rate = num(r.bytes) / num(r.seconds);
      lines.push(`| ${cell(r.op)} | ${cell(r.scenario)} | ${cell(r.tool)} | ${Number.isFinite(rate) ? (rate / 1e9).toFixed(2) : '—'} |`);
    }
  }
  if (compared.length === 0 && inMemory.length === 0) lines.push('(no measurements in this result)');
  const fail = Array.isArray(result?.fail) ? result.fail : [];
  if (fail.length > 0) {
    lines.push('');
    lines.push(`Failed in that run: ${fail.map((f) => cell(f)).join('; ')}.`);
  }
  return lines.join('\n');
}

/** Where the benchmark's files lived (bench/run.js and bench/seed.js record it). */
export function describeFs(fs) {
  const kind = `${cell(fs.type ?? 'unknown')} ${fs.reflink ? 'with' : 'without'} reflinks`;
  return fs.scratch ? `on a fresh loop-mounted ${kind}` : `on ${kind}`;
}

/**
 * Markdown for one `npm run bench:seed` result: the second sync (one small change), bytes read
 * and written by each side, bytes on the wire, time.
 */
export function renderSeedTable(result, meta = {}) {
  const rows = Array.isArray(result?.rows) ? result.rows : [];
  const size = num(result?.size);
  const command = result?.command ?? meta.command ?? 'npm run bench:seed';
  const lines = [];
  const cache = result?.dropCaches ? 'page cache dropped before each sync' : 'page cache warm';
  lines.push(
    `Produced by \`${command}\` on ${fmtDate(result?.started ?? meta.date)}${meta.source ? ` (${meta.source})` : ''}: ` +
      `a ${fmtBytes(size)} file already synced once, then changed (one byte appended, one byte prepended, ` +
      `or a few bytes in the middle) and synced again through a remote shell; ${cache}` +
      `${result?.filesystem ? `; files ${describeFs(result.filesystem)}` : ''}` +
      `${Array.isArray(result?.envRemoved) && result.envRemoved.length > 0 ? `; commands run without ${result.envRemoved.map(cell).join(', ')} (set on this machine; it costs every node process its start-up)` : ''}` +
      `${result?.rsync ? `; ${String(result.rsync).replace(/\s+/g, ' ').trim()}` : ''}. ` +
      'Read and written: every byte each side\'s processes passed to read/write calls (/proc/PID/io rchar/wchar).',
  );
  lines.push('');
  lines.push('| change | tool | direction | sender read | receiver read | all read (× file size) | all written | on the wire | time s |');
  lines.push('|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const s = r.second;
    if (!r.ok || !s || !s.ok) {
      const why = s?.error ?? r.error ?? 'not run';
      lines.push(`| ${cell(r.variant)} | ${cell(r.label ?? r.tool)} | ${cell(r.direction)} | failed: ${cell(why)} ||||||`);
      continue;
    }
    const read = num(s.sender?.read) + num(s.receiver?.read);
    const written = num(s.sender?.written) + num(s.receiver?.written);
    const wire = num(s.wire?.total);
    lines.push(
      `| ${cell(r.variant)} | ${cell(r.label ?? r.tool)} | ${cell(r.direction)} | ${fmtBytes(num(s.sender?.read))} | ` +
        `${fmtBytes(num(s.receiver?.read))} | ${fmtBytes(read)} (${(read / size).toFixed(2)}×) | ${fmtBytes(written)} | ` +
        `${fmtBytes(wire)} | ${num(s.seconds).toFixed(2)} |`,
    );
  }
  if (rows.length === 0) lines.push('| (no measurements in this result) ||||||||');
  return lines.join('\n');
}

/**
 * The seed answers in prose, for the README's "Why" section: per tool, what a one-byte append
 * cost (pushed), then the same change pushed and pulled by deltasync side by side.
 */
export function renderSeedSummary(result) {
  const rows = (Array.isArray(result?.rows) ? result.rows : []).filter((r) => r.ok && r.second?.ok);
  const size = num(result?.size);
  const cost = (s) => {
    const read = num(s.sender?.read) + num(s.receiver?.read);
    const written = num(s.sender?.written) + num(s.receiver?.written);
    return { read, written, wire: num(s.wire?.total) };
  };
  const lines = [];
  const appendPush = rows.filter((r) => r.variant === 'append' && r.direction === 'push');
  if (appendPush.length > 0) {
    lines.push(
      `Measured by \`${result?.command ?? 'npm run bench:seed'}\` on ${fmtDate(result?.started)}: a ${fmtBytes(size)} file, ` +
        'one byte appended, second sync, pushed through a remote shell (both machines counted together):',
    );
    lines.push('');
    for (const r of appendPush) {
      const c = cost(r.second);
      lines.push(
        `- \`${r.label ?? r.tool}\`: read ${(c.read / size).toFixed(2)}× the file size ` +
          `(sender ${fmtBytes(num(r.second.sender?.read))}, receiver ${fmtBytes(num(r.second.receiver?.read))}), ` +
          `wrote ${fmtBytes(c.written)}, ${fmtBytes(c.wire)} on the wire`,
      );
    }
  }
  const push = rows.find((r) => r.variant === 'append' && r.tool === 'ds' && r.direction === 'push');
  const pull = rows.find((r) => r.variant === 'append' && r.tool === 'ds' && r.direction === 'pull');
  if (push && pull) {
    const a = cost(push.second);
    const b = cost(pull.second);
    lines.push('');
    lines.push(
      `The same change with deltasync, pushed / pulled: ${fmtBytes(a.wire)} / ${fmtBytes(b.wire)} on the wire; ` +
        `the sender read ${fmtBytes(num(push.second.sender?.read))} / ${fmtBytes(num(pull.second.sender?.read))}, ` +
        `the receiver ${fmtBytes(num(push.second.receiver?.read))} / ${fmtBytes(num(pull.second.receiver?.read))}.`,
    );
  }
  if (lines.length === 0) lines.push('(no successful append measurement in the newest seed result)');
  return lines.join('\n');
}

/**
 * Replaces what lies between `<!-- NAME -->` and `<!-- /NAME -->` in `text` with `body`.
 * Throws when the pair is missing, repeated or out of order: a silent no-op would leave stale figures.
 */
export function replaceSection(text, name, body) {
  const open = `<!-- ${name} -->`;
  const close = `<!-- /${name} -->`;
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  if (start < 0 || end < 0) throw new Error(`README has no ${open} ... ${close} section`);
  if (end < start || text.indexOf(open, start + 1) >= 0 || text.indexOf(close, end + 1) >= 0) {
    throw new Error(`README's ${open} ... ${close} markers are repeated or out of order`);
  }
  return `${text.slice(0, start + open.length)}\n${body.trim()}\n${text.slice(end)}`;
}

/**
 * Which bench results to show: for each operation (signature, delta, sync, ...) the newest
 * result that measured it, so a later `npm run bench -- --only sync` does not hide the
 * signature figures of an earlier full run. `results` are {name, mtimeMs, result}; returns
 * the contributing ones, newest first, each with the operations it supplies.
 */
export function pickBenchResults(results) {
  const newestFirst = [...results].sort((x, y) => y.mtimeMs - x.mtimeMs);
  const taken = new Set();
  const picked = [];
  for (const r of newestFirst) {
    const ops = [];
    for (const row of Array.isArray(r.result?.rows) ? r.result.rows : []) {
      const measured = (row.ratio !== undefined && row.ratio !== null) || row.inMemory;
      if (!measured || taken.has(row.op) || ops.includes(row.op)) continue;
      ops.push(row.op);
    }
    if (ops.length === 0) continue;
    for (const op of ops) taken.add(op);
    picked.push({ ...r, ops });
  }
  return picked;
}

/** Files in `dir` whose names match `pattern`, with their modification times. */
export function listResults(dir, pattern) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => pattern.test(name))
    .map((name) => ({ name, path: join(dir, name), mtimeMs: statSync(join(dir, name)).mtimeMs }));
}

/** Newest file in `dir` whose name matches `pattern`, by modification time; undefined if none. */
export function newestResult(dir, pattern) {
  if (!existsSync(dir)) return undefined;
  let best;
  for (const name of readdirSync(dir)) {
    if (!pattern.test(name)) continue;
    const full = join(dir, name);
    const mtimeMs = statSync(full).mtimeMs;
    if (!best || mtimeMs > best.mtimeMs) best = { path: full, name, mtimeMs };
  }
  return best;
}

function parseArgs(argv) {
  const opts = { results: join(root, 'bench', 'results'), readme: join(root, 'README.md'), docs: join(root, 'docs', 'bench'), bench: [], seed: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const key = { '--results': 'results', '--readme': 'readme', '--docs': 'docs', '--seed': 'seed' }[a];
    if (key && i + 1 < argv.length) opts[key] = resolve(argv[++i]);
    else if (a === '--bench' && i + 1 < argv.length) opts.bench.push(resolve(argv[++i]));
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/readme-tables.js [--results DIR] [--readme FILE] [--docs DIR] [--bench FILE]... [--seed FILE]');
      console.log('  --bench / --seed choose the result files instead of the newest ones in --results');
      process.exit(0);
    } else throw new Error(`unknown or incomplete option: ${a}`);
  }
  return opts;
}

/** A result file named on the command line, in listResults' shape. */
function fileEntry(path) {
  if (!existsSync(path)) throw new Error(`no such result file: ${path}`);
  return { name: basename(path), path, mtimeMs: statSync(path).mtimeMs };
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${err.message}`);
  }
}

export async function main(argv = process.argv.slice(2)) {
  const opts = parseArgs(argv);
  let readme = readFileSync(opts.readme, 'utf8');
  let chart;
  const shown = (p) => relative(root, p) || p;

  const picked = pickBenchResults(
    (opts.bench.length > 0 ? opts.bench.map(fileEntry) : listResults(opts.results, /^bench-(?!.*-xfs\.json$).*\.json$/)).map((f) => ({ ...f, result: readJson(f.path) })),
  );
  if (picked.length > 0) {
    const tables = picked.map((p) => renderBenchTable(p.result, { date: stampToIso(p.name), source: shown(p.path), ops: p.ops }));
    readme = replaceSection(readme, 'bench:run', tables.join('\n\n'));
    // As bench/run.js draws it: speed-ups only, without process start-up (not a file operation).
    const shownRows = picked.flatMap((p) =>
      p.result.rows.filter((r) => p.ops.includes(r.op) && r.ratio !== undefined && r.ratio !== null && r.op !== 'startup'),
    );
    chart = await renderChart(shownRows, opts.results, picked[0].mtimeMs);
  } else {
    console.error(`readme-tables: no bench-*.json in ${shown(opts.results)} (run \`npm run bench\`); bench:run section left as it was`);
  }

  // Runs on a scratch XFS (--fs xfs) have a section of their own.
  const seed = opts.seed ? fileEntry(opts.seed) : newestResult(opts.results, /^seed-(?!.*-xfs\.json$).*\.json$/);
  const reflinkSeed = newestResult(opts.results, /^seed-.*-xfs\.json$/);
  if (reflinkSeed && readme.includes('<!-- bench:seed-reflink -->')) {
    readme = replaceSection(readme, 'bench:seed-reflink', renderSeedTable(readJson(reflinkSeed.path), { source: shown(reflinkSeed.path) }));
  }
  if (seed) {
    const result = readJson(seed.path);
    readme = replaceSection(readme, 'bench:seed', renderSeedTable(result, { source: shown(seed.path) }));
    // The prose summary is optional: a README may show only the table.
    if (readme.includes('<!-- bench:seed-summary -->')) readme = replaceSection(readme, 'bench:seed-summary', renderSeedSummary(result));
  } else {
    console.error(`readme-tables: no seed-*.json in ${shown(opts.results)} (run \`npm run bench:seed\`); bench:seed section left as it was`);
  }

  writeFileSync(opts.readme, readme);
  if (chart) {
    mkdirSync(opts.docs, { recursive: true });
    writeFileSync(join(opts.docs, 'ratios.svg'), chart);
  }
  const from = [...picked.map((p) => p.name), ...(seed ? [seed.name] : []), ...(reflinkSeed ? [reflinkSeed.name] : [])];
  console.error(`readme-tables: updated ${shown(opts.readme)}${from.length ? ` from ${from.join(', ')}` : ''}${chart ? ` and ${shown(join(opts.docs, 'ratios.svg'))}` : ''}`);
}

/**
 * The speed-up chart of the rows shown, drawn by bench/chart.js (the renderer bench/run.js
 * uses), so it matches the tables even when they come from several runs. Falls back to the
 * ratios.svg of the newest run when that renderer is unavailable.
 */
async function renderChart(rows, resultsDir, newestMtimeMs) {
  try {
    const { renderSvg } = await import(pathToFileURL(join(root, 'bench', 'chart.js')).href);
    const svg = renderSvg(rows);
    if (typeof svg === 'string' && svg.startsWith('<svg')) return svg + (svg.endsWith('\n') ? '' : '\n');
  } catch (err) {
    console.error(`readme-tables: bench/chart.js failed (${err.message}); using the newest ratios.svg`);
  }
  const svg = join(resultsDir, 'ratios.svg');
  // run.js rewrites ratios.svg on every run: use it only when it was written with that result.
  if (existsSync(svg) && Math.abs(statSync(svg).mtimeMs - newestMtimeMs) < 5000) return readFileSync(svg, 'utf8');
  console.error('readme-tables: no chart for these results; docs/bench/ratios.svg left as it was');
  return undefined;
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  main().catch((err) => {
    console.error(`readme-tables: ${err.message}`);
    process.exit(1);
  });
}
