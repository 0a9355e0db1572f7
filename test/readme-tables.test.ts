// scripts/readme-tables.js turns bench JSON into the README's tables. Fixtures here are written
// by hand in the shapes bench/run.js and bench/seed.js produce, with round numbers so every
// expected figure is simple arithmetic on the fixture.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const script = join(root, 'scripts', 'readme-tables.js');

interface Renderer {
  renderBenchTable(result: unknown, meta?: { date?: string; source?: string }): string;
  renderSeedTable(result: unknown, meta?: { date?: string; source?: string }): string;
  renderSeedSummary(result: unknown): string;
  replaceSection(text: string, name: string, body: string): string;
  fmtBytes(n: number): string;
  stampToIso(name: string): string | undefined;
}
const lib = (await import(script)) as Renderer;

const MiB = 1024 * 1024;

const benchFixture = {
  size: 8 * MiB,
  runs: 3,
  readRate: 4e9,
  rows: [
    { op: 'read', scenario: 'page cache', tool: 'cat', seconds: 0.002, rssMiB: null, bytes: 8 * MiB },
    { op: 'signature', scenario: 'basis', tool: 'rdiff', seconds: 0.5, bytes: 8 * MiB, rssMiB: 4, anchor: 'rdiff' },
    { op: 'signature', scenario: 'basis', tool: 'deltasync', seconds: 0.125, bytes: 8 * MiB, rssMiB: 40, ratio: 4, anchor: 'rdiff' },
    { op: 'sync', scenario: 'tree of small files', tool: 'rsync', seconds: 0.1, bytes: 0, rssMiB: 7, anchor: 'rsync' },
    { op: 'sync', scenario: 'tree of small files', tool: 'deltasync', seconds: 0.4, bytes: 0, rssMiB: 60, ratio: 0.25, anchor: 'rsync' },
  ],
  fail: ['patch similar rdiff: exit 1'],
};

const side = (read: number, written: number) => ({ read, written, diskRead: 0, diskWritten: 0 });
const seedFixture = {
  size: 4 * MiB,
  started: '2026-01-02T03:04:05.000Z',
  command: 'npm run bench:seed -- --size 4M',
  rsync: 'rsync  version 3.5.0  protocol version 32',
  dropCaches: false,
  rows: [
    {
      variant: 'append',
      tool: 'ds',
      label: 'deltasync',
      direction: 'push',
      ok: true,
      first: { ok: true, seconds: 1, sender: side(4 * MiB, 4 * MiB), receiver: side(4 * MiB, 4 * MiB), wire: { toRemote: 4 * MiB, fromRemote: 0, total: 4 * MiB } },
      second: { ok: true, seconds: 0.5, sender: side(4 * MiB, 1024), receiver: side(4 * MiB, 2 * MiB), wire: { toRemote: 1024, fromRemote: 2048, total: 3072 } },
    },
    {
      variant: 'append',
      tool: 'rsync',
      label: 'rsync --no-whole-file',
      direction: 'pull',
      ok: false,
      error: 'second sync: exit 12: broken | pipe',
      first: { ok: true, seconds: 1, sender: side(1, 1), receiver: side(1, 1), wire: { toRemote: 1, fromRemote: 1, total: 2 } },
      second: { ok: false, error: 'exit 12: broken | pipe' },
    },
  ],
};

/** Table rows of a markdown table (lines starting with '|' after the header and separator). */
function bodyRows(md: string): string[][] {
  const lines = md.split('\n').filter((l) => l.startsWith('|'));
  return lines.slice(2).map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}

describe('readme-tables renderer', () => {
  it('puts each deltasync row beside its anchor, with speed-up and throughput', () => {
    const md = lib.renderBenchTable(benchFixture, { date: '2026-03-04T05:06:07.000Z' });
    expect(md).toContain('`npm run bench`');
    expect(md).toContain('2026-03-04 05:06 UTC');
    expect(md).toContain('8.0 MiB files, median of 3 runs');
    expect(md).toContain('4.00 GB/s');
    const rows = bodyRows(md);
    expect(rows).toHaveLength(2); // anchors and the raw read are not rows of their own
    // 8 MiB in 0.125 s = 0.067 GB/s; anchor 0.5 s; ratio 4.
    expect(rows[0]).toEqual(['signature', 'basis', 'deltasync', '0.125', 'rdiff', '0.500', '4.00×', '0.07', '40 / 4']);
    // A tree has no single size: no throughput rather than 0.
    expect(rows[1]).toEqual(['sync', 'tree of small files', 'deltasync', '0.400', 'rsync', '0.100', '0.25×', '—', '60 / 7']);
    expect(md).toContain('Failed in that run: patch similar rdiff: exit 1.');
  });

  it('lists in-memory kernel rates (no anchor) in a table of their own', () => {
    const md = lib.renderBenchTable({
      size: 8 * MiB,
      runs: 1,
      rows: [
        // 64 MiB at 2 GB/s and at 8 GB/s, as bench/run.js records them: seconds = bytes / rate.
        { op: 'core signature', scenario: 'in memory, 64 MiB, x86_64', tool: 'scalar', seconds: (64 * MiB) / 2e9, bytes: 64 * MiB, rssMiB: null, inMemory: true },
        { op: 'core signature', scenario: 'in memory, 64 MiB, x86_64', tool: 'avx2', seconds: (64 * MiB) / 8e9, bytes: 64 * MiB, rssMiB: null, inMemory: true },
      ],
      fail: [],
    });
    expect(md).not.toContain('speed-up');
    const rows = bodyRows(md);
    expect(rows).toEqual([
      ['core signature', 'in memory, 64 MiB, x86_64', 'scalar', '2.00'],
      ['core signature', 'in memory, 64 MiB, x86_64', 'avx2', '8.00'],
    ]);
  });

  it('sums both sides of the second sync and reports failures in place', () => {
    const md = lib.renderSeedTable(seedFixture);
    expect(md).toContain('`npm run bench:seed -- --size 4M`');
    expect(md).toContain('2026-01-02 03:04 UTC');
    expect(md).toContain('rsync version 3.5.0 protocol version 32');
    const rows = bodyRows(md);
    expect(rows).toHaveLength(2);
    // read 4 + 4 MiB = 8 MiB = 2.00x of 4 MiB; written 1 KiB + 2 MiB; wire 3 KiB.
    expect(rows[0]).toEqual(['append', 'deltasync', 'push', '4.0 MiB', '4.0 MiB', '8.0 MiB (2.00×)', '2.0 MiB', '3.0 KiB', '0.50']);
    expect(rows[1]!.slice(0, 4)).toEqual(['append', 'rsync --no-whole-file', 'pull', 'failed: exit 12: broken \\| pipe']);
  });

  it('summarises the append case in prose, push against pull', () => {
    const pushRow = seedFixture.rows[0]!;
    const pullRow = {
      ...pushRow,
      direction: 'pull',
      second: { ...pushRow.second, sender: side(4 * MiB, 0), receiver: side(6 * MiB, 4 * MiB), wire: { toRemote: 2048, fromRemote: 2048, total: 4096 } },
    };
    const md = lib.renderSeedSummary({ ...seedFixture, rows: [...seedFixture.rows, pullRow] });
    expect(md).toContain('`npm run bench:seed -- --size 4M` on 2026-01-02 03:04 UTC: a 4.0 MiB file');
    // Only successful pushes get a bullet: the failed rsync pull is left out.
    expect(md.match(/^- /gm)).toHaveLength(1);
    expect(md).toContain('- `deltasync`: read 2.00× the file size (sender 4.0 MiB, receiver 4.0 MiB), wrote 2.0 MiB, 3.0 KiB on the wire');
    expect(md).toContain('pushed / pulled: 3.0 KiB / 4.0 KiB on the wire; the sender read 4.0 MiB / 4.0 MiB, the receiver 4.0 MiB / 6.0 MiB.');
    expect(lib.renderSeedSummary({ rows: [] })).toMatch(/no successful append measurement/);
  });

  it('formats sizes and run.js file stamps', () => {
    expect(lib.fmtBytes(512)).toBe('512 B');
    expect(lib.fmtBytes(1536)).toBe('1.5 KiB');
    expect(lib.fmtBytes(3 * 1024 * MiB)).toBe('3.0 GiB');
    expect(lib.stampToIso('bench-2026-11-21T20-43-00-721Z.json')).toBe('2026-11-21T20:43:00.721Z');
    expect(lib.stampToIso('bench-latest.json')).toBeUndefined();
  });

  it('replaces only the marked section, and refuses missing or doubled markers', () => {
    const text = 'a\n<!-- x -->\nold\n<!-- /x -->\nb\n';
    const once = lib.replaceSection(text, 'x', 'new');
    expect(once).toBe('a\n<!-- x -->\nnew\n<!-- /x -->\nb\n');
    expect(lib.replaceSection(once, 'x', 'new')).toBe(once);
    expect(() => lib.replaceSection('a <!-- x --> b', 'x', 'new')).toThrow(/no <!-- x -->/);
    expect(() => lib.replaceSection('<!-- /x --> <!-- x -->', 'x', 'new')).toThrow(/out of order/);
    expect(() => lib.replaceSection('<!-- x --><!-- /x --><!-- x --><!-- /x -->', 'x', 'new')).toThrow(/repeated/);
  });
});

describe('npm run bench:readme', () => {
  let work = '';
  afterEach(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('fills the README from the newest result of each operation and draws the chart', () => {
    work = mkdtempSync(join(tmpdir(), 'deltasync-readme-tables-'));
    const results = join(work, 'results');
    mkdirSync(results);
    const put = (name: string, json: unknown, date: string): void => {
      writeFileSync(join(results, name), JSON.stringify(json));
      utimesSync(join(results, name), new Date(date), new Date(date));
    };
    const slower = (rows: typeof benchFixture.rows) => rows.map((r) => ({ ...r, seconds: r.seconds * 10 }));
    // Oldest: everything, 10x slower (superseded for both operations).
    put('bench-2026-01-01T00-00-00-000Z.json', { ...benchFixture, rows: slower(benchFixture.rows) }, '2026-01-01');
    // Then a full run (supplies signature), then a sync-only run (supplies sync).
    put('bench-2026-02-01T00-00-00-000Z.json', benchFixture, '2026-02-01');
    const syncOnly = { ...benchFixture, runs: 5, rows: benchFixture.rows.filter((r) => r.op === 'sync').map((r) => ({ ...r, seconds: r.seconds / 2 })), fail: [] };
    put('bench-2026-03-04T05-06-07-000Z.json', syncOnly, '2026-03-04');
    writeFileSync(join(results, 'seed-4MiB.json'), JSON.stringify(seedFixture));
    const readme = join(work, 'README.md');
    const before =
      '# t\n\n<!-- bench:seed-summary -->\n<!-- /bench:seed-summary -->\n<!-- bench:run -->\nstale\n<!-- /bench:run -->\n\nmiddle\n\n<!-- bench:seed -->\n<!-- /bench:seed -->\nend\n';
    writeFileSync(readme, before);

    execFileSync(process.execPath, [script, '--results', results, '--readme', readme, '--docs', join(work, 'docs')], { stdio: 'pipe' });

    const after = readFileSync(readme, 'utf8');
    expect(after.startsWith('# t\n\n<!-- bench:seed-summary -->\nMeasured by `npm run bench:seed -- --size 4M`')).toBe(true);
    expect(after).not.toContain('stale');
    const run = after.slice(after.indexOf('<!-- bench:run -->'), after.indexOf('<!-- /bench:run -->'));
    // sync from the newest run (0.4 / 2 s), signature from the one before (0.125 s), nothing from the oldest.
    expect(run.indexOf('2026-03-04 05:06 UTC')).toBeLessThan(run.indexOf('2026-02-01 00:00 UTC'));
    expect(run).toContain('| sync | tree of small files | deltasync | 0.200 |');
    expect(run).toContain('median of 5 runs');
    expect(run).toContain('| signature | basis | deltasync | 0.125 |');
    expect(run).not.toContain('| sync | tree of small files | deltasync | 0.400 |');
    expect(run).not.toContain('2026-01-01');
    expect(run.match(/^\| (signature|sync) \|/gm)).toHaveLength(2);
    expect(after).toContain('| append | deltasync | push |');
    expect(after).toContain('\n\nmiddle\n\n');
    expect(after.endsWith('<!-- /bench:seed -->\nend\n')).toBe(true);
    const svg = readFileSync(join(work, 'docs', 'ratios.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('signature');
    expect(svg).toContain('tree of small files');
  });

  it('uses the result files named with --bench and --seed instead of the newest', () => {
    work = mkdtempSync(join(tmpdir(), 'deltasync-readme-tables-'));
    const results = join(work, 'results');
    mkdirSync(results);
    const chosen = join(work, 'chosen.json');
    writeFileSync(chosen, JSON.stringify(benchFixture));
    writeFileSync(join(results, 'bench-2026-03-04T05-06-07-000Z.json'), JSON.stringify({ ...benchFixture, runs: 1 }));
    writeFileSync(join(results, 'seed-1MiB.json'), JSON.stringify({ ...seedFixture, command: 'newest seed' }));
    const seed = join(work, 'seed-chosen.json');
    writeFileSync(seed, JSON.stringify(seedFixture));
    const readme = join(work, 'README.md');
    writeFileSync(readme, '<!-- bench:run -->\n<!-- /bench:run -->\n<!-- bench:seed -->\n<!-- /bench:seed -->\n');
    execFileSync(process.execPath, [script, '--results', results, '--readme', readme, '--docs', join(work, 'docs'), '--bench', chosen, '--seed', seed], { stdio: 'pipe' });
    const after = readFileSync(readme, 'utf8');
    expect(after).toContain('median of 3 runs');
    expect(after).not.toContain('median of 1 run');
    expect(after).toContain('`npm run bench:seed -- --size 4M`');
    expect(after).not.toContain('newest seed');
  });

  it('keeps runs on a scratch XFS (--fs xfs) in their own section, naming the file system', () => {
    work = mkdtempSync(join(tmpdir(), 'deltasync-readme-tables-'));
    const results = join(work, 'results');
    mkdirSync(results);
    const ext4 = { type: 'ext4', source: '/dev/vda', reflink: false, scratch: false };
    const xfs = { type: 'xfs', source: '/dev/loop0', reflink: true, scratch: true };
    writeFileSync(join(results, 'bench-2026-03-04T05-06-07-000Z.json'), JSON.stringify({ ...benchFixture, filesystem: ext4 }));
    writeFileSync(join(results, 'seed-4MiB.json'), JSON.stringify({ ...seedFixture, filesystem: ext4 }));
    // Newer, on XFS: must not replace the ordinary tables.
    writeFileSync(join(results, 'bench-2026-04-04T05-06-07-000Z-xfs.json'), JSON.stringify({ ...benchFixture, runs: 7, filesystem: xfs }));
    writeFileSync(join(results, 'seed-4MiB-xfs.json'), JSON.stringify({ ...seedFixture, command: 'seed on xfs', filesystem: xfs }));
    utimesSync(join(results, 'seed-4MiB.json'), new Date('2026-01-01'), new Date('2026-01-01'));
    const readme = join(work, 'README.md');
    writeFileSync(readme, '<!-- bench:run -->\n<!-- /bench:run -->\n<!-- bench:seed -->\n<!-- /bench:seed -->\n<!-- bench:seed-reflink -->\n<!-- /bench:seed-reflink -->\n');
    execFileSync(process.execPath, [script, '--results', results, '--readme', readme, '--docs', join(work, 'docs')], { stdio: 'pipe' });
    const after = readFileSync(readme, 'utf8');
    const section = (name: string) => after.slice(after.indexOf(`<!-- ${name} -->`), after.indexOf(`<!-- /${name} -->`));
    expect(section('bench:run')).toContain('median of 3 runs');
    expect(section('bench:run')).not.toContain('median of 7 runs');
    expect(section('bench:run')).toContain('files on ext4 without reflinks');
    expect(section('bench:seed')).not.toContain('seed on xfs');
    expect(section('bench:seed')).toContain('files on ext4 without reflinks');
    expect(section('bench:seed-reflink')).toContain('`seed on xfs`');
    expect(section('bench:seed-reflink')).toContain('files on a fresh loop-mounted xfs with reflinks');
  });

  it('fails with a message when the README lacks the markers', () => {
    work = mkdtempSync(join(tmpdir(), 'deltasync-readme-tables-'));
    const results = join(work, 'results');
    mkdirSync(results);
    writeFileSync(join(results, 'bench-2026-03-04T05-06-07-000Z.json'), JSON.stringify(benchFixture));
    const readme = join(work, 'README.md');
    writeFileSync(readme, '# no markers\n');
    let stderr = '';
    let status = 0;
    try {
      execFileSync(process.execPath, [script, '--results', results, '--readme', readme, '--docs', join(work, 'docs')], { stdio: 'pipe' });
    } catch (err) {
      const e = err as { status: number; stderr: Buffer };
      status = e.status;
      stderr = e.stderr.toString();
    }
    expect(status).toBe(1);
    expect(stderr).toMatch(/^readme-tables: README has no <!-- bench:run -->/);
    expect(readFileSync(readme, 'utf8')).toBe('# no markers\n');
    expect(existsSync(join(work, 'docs'))).toBe(false);
  });
});
