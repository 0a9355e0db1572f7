// Interrupted transfers and the update modes: --partial resume (local and remote), stale temp
// files, --partial-dir, --inplace, --append(-verify), the hash-mismatch redo, AbortSignal and
// --bwlimit.
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sync } from '../lib/sync/index.js';
import { BIN, FAKE_RSH, REMOTE_PATH, jsonStats, rsync, runCli, tempDir, treeDiff, writeRandomFile } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
const SIZE = 16 * 1024 * 1024;

beforeAll(() => {
  tmp = tempDir('partial');
});

afterAll(() => tmp.cleanup());

/** Starts the CLI, waits until `file` has at least `bytes` bytes (or any temp beside it), kills it. */
async function killPartWay(args: string[], watchDir: string, bytes: number, signal: NodeJS.Signals): Promise<number | null> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const sizes = existsSync(watchDir) ? readdirSync(watchDir).map((n) => statSync(join(watchDir, n)).size) : [];
    if (sizes.some((s) => s >= bytes)) break;
    if (Date.now() > deadline) throw new Error('transfer never got going');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill(signal);
  return exited;
}

function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => /\.deltasync-[0-9a-f]{6}$/.test(n));
}

describe('interrupt and resume', () => {
  it('--partial keeps the data of a killed local transfer; the rerun sends only the rest', async () => {
    const src = join(tmp.path, 'p1-src');
    const dst = join(tmp.path, 'p1-dst');
    mkdirSync(src);
    writeRandomFile(join(src, 'big'), SIZE);
    const code = await killPartWay(['-a', '--partial', '--bwlimit=4m', `${src}/`, dst], dst, 3 * 1024 * 1024, 'SIGTERM');
    expect(code).toBe(20);
    const kept = statSync(join(dst, 'big')).size;
    expect(kept).toBeGreaterThan(2 * 1024 * 1024);
    expect(kept).toBeLessThan(SIZE);
    expect(tempFiles(dst)).toEqual([]);
    const r = await runCli(['-a', '--partial', '--no-whole-file', '--json', `${src}/`, dst]);
    expect(r.code, r.stderr).toBe(0);
    const s = jsonStats(r);
    // Only the part after what was kept is literal (give or take a block); it all crossed the wire once.
    expect(s.literalBytes as number).toBeLessThanOrEqual(SIZE - kept + 64 * 1024);
    expect(s.literalBytes as number).toBeGreaterThanOrEqual(SIZE - kept);
    expect(s.bytesSent as number).toBeLessThan(SIZE - kept + 256 * 1024);
    expect(readFileSync(join(dst, 'big')).equals(readFileSync(join(src, 'big')))).toBe(true);
  });

  it('a pull killed part-way resumes with --partial over the remote shell', async () => {
    const src = join(tmp.path, 'p2-src');
    const dst = join(tmp.path, 'p2-dst');
    mkdirSync(src);
    writeRandomFile(join(src, 'big'), SIZE);
    const remote = ['-e', FAKE_RSH, '--remote-path', REMOTE_PATH];
    await killPartWay(['-a', '--partial', '--bwlimit=4m', ...remote, `host:${src}/`, dst], dst, 3 * 1024 * 1024, 'SIGINT');
    const kept = statSync(join(dst, 'big')).size;
    expect(kept).toBeGreaterThan(2 * 1024 * 1024);
    const r = await runCli(['-a', '--partial', '--json', ...remote, `host:${src}/`, dst]);
    expect(r.code, r.stderr).toBe(0);
    const s = jsonStats(r);
    expect(s.bytesReceived as number).toBeLessThan(SIZE - kept + 256 * 1024);
    expect(s.matchedBytes as number).toBeGreaterThanOrEqual(kept - 64 * 1024);
    expect(treeDiff(dst, src)).toEqual([]);
  });

  it('a push whose client dies keeps the partial file on the remote end', async () => {
    const src = join(tmp.path, 'p3-src');
    const dst = join(tmp.path, 'p3-dst');
    mkdirSync(src);
    writeRandomFile(join(src, 'big'), SIZE);
    const remote = ['-e', FAKE_RSH, '--remote-path', REMOTE_PATH];
    await killPartWay(['-a', '--partial', '--bwlimit=4m', ...remote, `${src}/`, `host:${dst}`], dst, 3 * 1024 * 1024, 'SIGKILL');
    // The server notices the closed connection by itself and keeps what it got.
    const deadline = Date.now() + 10_000;
    while (!existsSync(join(dst, 'big')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const kept = statSync(join(dst, 'big')).size;
    expect(kept).toBeGreaterThan(2 * 1024 * 1024);
    const r = await runCli(['-a', '--partial', '--json', ...remote, `${src}/`, `host:${dst}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonStats(r).bytesSent as number).toBeLessThan(SIZE - kept + 256 * 1024);
    expect(treeDiff(dst, src)).toEqual([]);
  });

  it('stale temp files of a hard-killed run are reused with --partial and removed without it', async () => {
    const src = join(tmp.path, 'p4-src');
    const dst = join(tmp.path, 'p4-dst');
    mkdirSync(src);
    writeRandomFile(join(src, 'big'), SIZE);
    writeFileSync(join(src, 'small'), 'small\n');
    await killPartWay(['-a', '--bwlimit=4m', `${src}/`, dst], dst, 3 * 1024 * 1024, 'SIGKILL');
    const stale = tempFiles(dst);
    expect(stale.length).toBe(1);
    const staleSize = statSync(join(dst, stale[0]!)).size;
    const r = await runCli(['-a', '--partial', '--no-whole-file', '--json', `${src}/`, dst]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonStats(r).matchedBytes as number).toBeGreaterThanOrEqual(staleSize - 64 * 1024);
    expect(tempFiles(dst)).toEqual([]);
    expect(treeDiff(dst, src)).toEqual([]);

    // Without --partial a stale temp file is simply removed.
    writeFileSync(join(dst, '.small.deltasync-abcdef'), 'leftover');
    appendFileSync(join(src, 'small'), 'more\n');
    const again = await runCli(['-a', `${src}/`, dst]);
    expect(again.code, again.stderr).toBe(0);
    expect(tempFiles(dst)).toEqual([]);
    expect(treeDiff(dst, src)).toEqual([]);
  });

  it('--partial-dir keeps partial data aside, leaves the old file alone and is not deleted', async () => {
    const src = join(tmp.path, 'p5-src');
    const dst = join(tmp.path, 'p5-dst');
    mkdirSync(src);
    mkdirSync(dst);
    writeRandomFile(join(src, 'big'), SIZE);
    writeFileSync(join(dst, 'big'), 'old version\n');
    const code = await killPartWay(['-a', '--partial-dir=.part', '--delete', '--bwlimit=4m', `${src}/`, dst], dst, 3 * 1024 * 1024, 'SIGTERM');
    expect(code).toBe(20);
    // The temp file is renamed into the partial dir when the run stops.
    const deadline = Date.now() + 5000;
    while (!existsSync(join(dst, '.part', 'big')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(readFileSync(join(dst, 'big'), 'utf8')).toBe('old version\n');
    const kept = statSync(join(dst, '.part', 'big')).size;
    expect(kept).toBeGreaterThan(1024 * 1024);
    const r = await runCli(['-a', '--partial-dir=.part', '--delete', '--no-whole-file', '--json', `${src}/`, dst]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonStats(r).matchedBytes as number).toBeGreaterThanOrEqual(kept - 64 * 1024);
    expect(existsSync(join(dst, '.part', 'big'))).toBe(false);
    expect(readFileSync(join(dst, 'big')).equals(readFileSync(join(src, 'big')))).toBe(true);
  });
});

/** Polls until `file` has at least `bytes` bytes. */
async function waitForSize(file: string, bytes: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(existsSync(file) && statSync(file).size >= bytes)) {
    if (Date.now() > deadline) throw new Error(`${file} never reached ${bytes} bytes`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('update modes', () => {
  it('--inplace rewrites the same inode, also when the delta moves data backwards', async () => {
    const src = join(tmp.path, 'ip-src');
    const dst = join(tmp.path, 'ip-dst');
    mkdirSync(src);
    writeRandomFile(join(src, 'f'), 4 * 1024 * 1024);
    await runCli(['-a', `${src}/`, dst]);
    const inode = statSync(join(dst, 'f')).ino;
    // Insert at the front: every old block moves to a higher offset.
    const data = readFileSync(join(src, 'f'));
    writeFileSync(join(src, 'f'), Buffer.concat([Buffer.from('inserted at the front'), data]));
    const r = await runCli(['-a', '--inplace', '--no-whole-file', '--json', `${src}/`, dst]);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(join(dst, 'f')).ino).toBe(inode);
    expect(treeDiff(dst, src)).toEqual([]);
    // Shrink: the file is truncated in place.
    writeFileSync(join(src, 'f'), data.subarray(0, 1000));
    const r2 = await runCli(['-a', '--inplace', '--no-whole-file', `${src}/`, dst]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(statSync(join(dst, 'f')).ino).toBe(inode);
    expect(treeDiff(dst, src)).toEqual([]);
  });

  it('--append sends only the tail; --append-verify redoes a file whose prefix differs', async () => {
    const src = join(tmp.path, 'ap-src');
    const dst = join(tmp.path, 'ap-dst');
    mkdirSync(src);
    mkdirSync(dst);
    writeRandomFile(join(src, 'log'), 1024 * 1024);
    const data = readFileSync(join(src, 'log'));
    writeFileSync(join(dst, 'log'), data.subarray(0, 700_000));
    const r = await runCli(['-a', '--append', '--json', `${src}/`, dst]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonStats(r).literalBytes).toBe(data.length - 700_000);
    expect(readFileSync(join(dst, 'log')).equals(data)).toBe(true);

    const bad = Buffer.from(data.subarray(0, 700_000));
    bad[10] = bad[10]! ^ 0xff;
    writeFileSync(join(dst, 'log'), bad);
    const v = await runCli(['-a', '--append-verify', '--json', `${src}/`, dst]);
    expect(v.code, v.stderr).toBe(0);
    expect(jsonStats(v).redone).toBe(1);
    expect(readFileSync(join(dst, 'log')).equals(data)).toBe(true);
  });

  it('a basis that changes during the transfer fails verification and the file is redone', async () => {
    const src = join(tmp.path, 'rd-src');
    const dst = join(tmp.path, 'rd-dst');
    mkdirSync(src);
    writeRandomFile(join(src, 'a-slow'), 6 * 1024 * 1024);
    writeRandomFile(join(src, 'b-delta'), 2 * 1024 * 1024);
    await runCli(['-a', `${src}/`, dst]);
    // A new size: same size and mtime second would pass the quick check.
    writeRandomFile(join(src, 'a-slow'), 6 * 1024 * 1024 + 1);
    appendFileSync(join(src, 'b-delta'), 'tail');
    const child = spawn(process.execPath, [BIN, '-a', '--no-whole-file', '--bwlimit=3m', '--json', `${src}/`, dst], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // b's signature went out at the start; change its basis while a is still being sent.
    const aTemp = (): string | undefined => tempFiles(dst)[0];
    const deadline = Date.now() + 20_000;
    while (!aTemp() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await waitForSize(join(dst, aTemp()!), 1024 * 1024);
    const b = readFileSync(join(dst, 'b-delta'));
    b.fill(0, 100_000, 200_000);
    writeFileSync(join(dst, 'b-delta'), b);
    expect(await exited).toBe(0);
    const s = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
    expect(s.redone).toBe(1);
    expect(treeDiff(dst, src)).toEqual([]);
  });
});

describe('signature cache on the receiver', () => {
  it('the next delta takes the basis signature from the cache: same bytes, same result; a changed basis misses', async () => {
    const src = join(tmp.path, 'sc-src');
    const dst = join(tmp.path, 'sc-dst');
    const cache = join(tmp.path, 'sc-cache');
    mkdirSync(src);
    writeRandomFile(join(src, 'big'), 6 * 1024 * 1024);
    const remote = ['-e', FAKE_RSH, '--remote-path', REMOTE_PATH];
    const first = await runCli(['-a', '--json', `--sig-cache=${cache}`, ...remote, `${src}/`, `h:${dst}`]);
    expect(first.code, first.stderr).toBe(0);
    expect(jsonStats(first).sigCacheStores).toBe(1);

    appendFileSync(join(src, 'big'), 'one');
    const cached = await runCli(['-a', '--json', `--sig-cache=${cache}`, ...remote, `${src}/`, `h:${dst}`]);
    expect(cached.code, cached.stderr).toBe(0);
    const c = jsonStats(cached);
    expect(c.sigCacheHits).toBe(1);
    expect(c.literalBytes).toBe(3);
    expect(treeDiff(dst, src)).toEqual([]);

    // The same change without the cache moves exactly the same bytes.
    const twin = join(tmp.path, 'sc-twin');
    rsync(['-a', `${src}/`, twin]);
    appendFileSync(join(src, 'big'), 'two');
    rsync(['-a', `${dst}/`, `${twin}/`]);
    const withCache = jsonStats(await runCli(['-a', '--json', `--sig-cache=${cache}`, ...remote, `${src}/`, `h:${dst}`]));
    const without = jsonStats(await runCli(['-a', '--json', '--no-sig-cache', ...remote, `${src}/`, `h:${twin}`]));
    expect(withCache.sigCacheHits).toBe(1);
    expect(without.sigCacheHits).toBe(0);
    expect(withCache.bytesReceived).toBe(without.bytesReceived);
    expect(withCache.literalBytes).toBe(without.literalBytes);

    // Rewritten behind the cache's back with size and mtime restored: ctime differs, a miss.
    const st = statSync(join(dst, 'big'));
    const data = readFileSync(join(dst, 'big'));
    data.fill(1, 0, 1000);
    writeFileSync(join(dst, 'big'), data);
    utimesSync(join(dst, 'big'), st.atime, st.mtime);
    appendFileSync(join(src, 'big'), 'three');
    const miss = await runCli(['-a', '--json', `--sig-cache=${cache}`, ...remote, `${src}/`, `h:${dst}`]);
    expect(miss.code, miss.stderr).toBe(0);
    expect(jsonStats(miss).sigCacheHits).toBe(0);
    expect(treeDiff(dst, src)).toEqual([]);
  });
});

describe('API control', () => {
  it('an AbortSignal stops the sync: ERR_ABORTED, no temp files, no torn destination', async () => {
    const src = join(tmp.path, 'ab-src');
    const dst = join(tmp.path, 'ab-dst');
    mkdirSync(src);
    mkdirSync(dst);
    writeRandomFile(join(src, 'big'), SIZE);
    writeFileSync(join(dst, 'big'), 'previous version\n');
    const controller = new AbortController();
    const progress: number[] = [];
    const run = sync(`${src}/`, dst, {
      archive: true,
      bwlimit: 4096,
      signal: controller.signal,
      onProgress: (p) => {
        progress.push(p.fileBytes);
        if (p.fileBytes > 2 * 1024 * 1024) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'ERR_ABORTED', exitCode: 20 });
    expect(progress.length).toBeGreaterThan(0);
    expect(readFileSync(join(dst, 'big'), 'utf8')).toBe('previous version\n');
    expect(tempFiles(dst)).toEqual([]);
  });

  it('reports progress up to the full size and returns the stats', async () => {
    const src = join(tmp.path, 'pg-src');
    mkdirSync(src);
    writeRandomFile(join(src, 'one'), 3 * 1024 * 1024);
    writeFileSync(join(src, 'two'), 'two\n');
    const seen: Array<{ path: string; fileDone: boolean; bytesDone: number; bytesTotal: number }> = [];
    const stats = await sync(`${src}/`, join(tmp.path, 'pg-dst'), { archive: true, onProgress: (p) => seen.push(p) });
    expect(stats.filesTransferred).toBe(2);
    expect(stats.literalBytes).toBe(3 * 1024 * 1024 + 4);
    const last = seen[seen.length - 1]!;
    expect(last.fileDone).toBe(true);
    expect(last.bytesDone).toBe(3 * 1024 * 1024 + 4);
    expect(last.bytesTotal).toBe(3 * 1024 * 1024 + 4);
    expect(seen.filter((p) => p.fileDone).map((p) => p.path).sort()).toEqual(['one', 'two']);
  });

  it('--bwlimit holds the sender to the limit', async () => {
    const src = join(tmp.path, 'bw-src');
    mkdirSync(src);
    writeRandomFile(join(src, 'f'), 2 * 1024 * 1024);
    const started = Date.now();
    const r = await runCli(['-a', '--bwlimit=1024', `${src}/`, join(tmp.path, 'bw-dst')]);
    expect(r.code, r.stderr).toBe(0);
    // 2 MiB at 1 MiB/s, minus the burst allowance.
    expect(Date.now() - started).toBeGreaterThan(1600);
  });
});
