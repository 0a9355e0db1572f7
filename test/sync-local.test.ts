// Local sync end to end through the CLI, checked against rsync on the same input: a copy of
// /usr/share/doc plus a tree of awkward cases (names, links, modes, times, a large file).
import { appendFileSync, chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAwkwardTree, copySystemTree, jsonStats, rsync, runCli, tempDir, treeDiff, itemLines } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
let src: string;

const items = itemLines;

beforeAll(() => {
  tmp = tempDir('local');
  src = join(tmp.path, 'src');
  buildAwkwardTree(src);
  copySystemTree(join(src, 'doc'));
});

afterAll(() => tmp.cleanup());

describe('local sync of a real tree', () => {
  it('copies a tree exactly as rsync -a does, and a second run changes nothing', async () => {
    const ours = join(tmp.path, 'ours');
    const ref = join(tmp.path, 'ref');
    rsync(['-a', `${src}/`, `${ref}/`]);
    const first = await runCli(['-a', '--json', `${src}/`, ours]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(treeDiff(ours, ref)).toEqual([]);
    const s1 = jsonStats(first);
    expect(s1.filesTransferred).toBeGreaterThan(1000);
    expect(s1.literalBytes).toBe(s1.totalFileSize);

    const second = await runCli(['-ai', '--json', `${src}/`, ours]);
    expect(second.code).toBe(0);
    expect(items(second.stdout)).toEqual([]);
    const s2 = jsonStats(second);
    expect(s2.filesTransferred).toBe(0);
    expect(s2.literalBytes).toBe(0);
    expect(s2.totalFileSize).toBe(s1.totalFileSize);
    expect(treeDiff(ours, ref)).toEqual([]);
  });

  it('trusts size + mtime (quick check): a same-size same-mtime change is not seen without -c', async () => {
    const ours = join(tmp.path, 'quick');
    await runCli(['-a', `${src}/sub/`, ours]);
    const f = join(ours, 'inner.txt');
    const st = statSync(f);
    writeFileSync(f, 'INNER\n');
    utimesSync(f, st.atime, st.mtime);
    const plain = await runCli(['-ai', `${src}/sub/`, ours]);
    expect(plain.code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('INNER\n');
    const checked = await runCli(['-aci', `${src}/sub/`, ours]);
    expect(checked.code).toBe(0);
    expect(readFileSync(f, 'utf8')).toBe('inner\n');
    // rsync reports the same item for the same situation.
    const ref = join(tmp.path, 'quick-ref');
    rsync(['-a', `${src}/sub/`, ref]);
    writeFileSync(join(ref, 'inner.txt'), 'INNER\n');
    utimesSync(join(ref, 'inner.txt'), st.atime, st.mtime);
    expect(items(checked.stdout)).toEqual(items(rsync(['-aci', `${src}/sub/`, ref])));
  });

  it('itemizes and applies a mix of changes like rsync -ai --delete', async () => {
    const base = join(tmp.path, 'mix-src');
    rsync(['-a', '--exclude=doc', `${src}/`, base]);
    const ours = join(tmp.path, 'mix-ours');
    const ref = join(tmp.path, 'mix-ref');
    rsync(['-a', `${base}/`, ours]);
    rsync(['-a', `${base}/`, ref]);
    // Change the source in many ways.
    appendFileSync(join(base, 'plain.txt'), 'more\n');
    writeFileSync(join(base, 'with space.txt'), 'SAME!!\n');
    utimesSync(join(base, 'with space.txt'), 1_000_000_000, 1_000_000_000);
    chmodSync(join(base, 'private'), 0o640);
    utimesSync(join(base, 'exec.sh'), 1_100_000_000, 1_100_000_000);
    unlinkSync(join(base, '-leading-dash'));
    rmSync(join(base, 'sub/deeper'), { recursive: true });
    mkdirSync(join(base, 'brand/new/dirs'), { recursive: true });
    writeFileSync(join(base, 'brand/new/dirs/file'), 'new\n');
    unlinkSync(join(base, 'link-rel'));
    symlinkSync('exec.sh', join(base, 'link-rel'));
    renameSync(join(base, 'tab\there'), join(base, 'renamed'));
    unlinkSync(join(base, 'empty-file'));
    mkdirSync(join(base, 'empty-file'));
    writeFileSync(join(ours, 'extraneous'), 'delete me\n');
    writeFileSync(join(ref, 'extraneous'), 'delete me\n');

    const r = await runCli(['-ai', '--delete', `${base}/`, ours]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const expected = rsync(['-ai', '--delete', `${base}/`, ref]);
    expect(items(r.stdout)).toEqual(items(expected));
    expect(treeDiff(ours, ref)).toEqual([]);
    expect(treeDiff(ours, base)).toEqual([]);
  });

  it('--dry-run reports what would change and changes nothing', async () => {
    const base = join(tmp.path, 'dry-src');
    rsync(['-a', '--exclude=doc', '--exclude=big.bin', `${src}/`, base]);
    const ours = join(tmp.path, 'dry-ours');
    rsync(['-a', `${base}/sub/`, ours]);
    writeFileSync(join(ours, 'junk'), 'x');
    const before = rsync(['-anci', '--delete', `${ours}/`, `${base}/`]);
    const r = await runCli(['-ani', '--delete', `${base}/`, ours]);
    expect(r.code).toBe(0);
    expect(items(r.stdout)).toEqual(items(rsync(['-ani', '--delete', `${base}/`, ours])));
    expect(items(r.stdout).length).toBeGreaterThan(5);
    expect(rsync(['-anci', '--delete', `${ours}/`, `${base}/`])).toBe(before);
  });

  it('follows rsync path semantics for files, directories and trailing slashes', async () => {
    const root = join(tmp.path, 'paths');
    mkdirSync(root);
    const cases: Array<[string[], string]> = [
      [[`${src}/plain.txt`], 'newname'],
      [[`${src}/plain.txt`], 'adir/'],
      [[`${src}/sub`], 'd1'],
      [[`${src}/sub/`], 'd2'],
      [[`${src}/sub`, `${src}/plain.txt`], 'd3'],
      [[`${src}/sub/deeper/`, `${src}/sub/`], 'd4'],
    ];
    for (const [sources, dest] of cases) {
      const ours = join(root, 'ours', dest);
      const ref = join(root, 'ref', dest);
      mkdirSync(join(root, 'ours'), { recursive: true });
      mkdirSync(join(root, 'ref'), { recursive: true });
      const r = await runCli(['-a', ...sources, ours]);
      expect(r.code, r.stderr).toBe(0);
      rsync(['-a', ...sources, ref]);
      // A DEST directory that is not itself in the file list keeps its creation time (both
      // tools): level those so that only what was transferred is compared.
      if (statSync(ours).isDirectory() && !sources.some((s) => s.endsWith('/'))) {
        utimesSync(ours, 1_000_000_000, 1_000_000_000);
        utimesSync(ref, 1_000_000_000, 1_000_000_000);
      }
    }
    utimesSync(join(root, 'ours'), 1_000_000_000, 1_000_000_000);
    utimesSync(join(root, 'ref'), 1_000_000_000, 1_000_000_000);
    expect(treeDiff(join(root, 'ours'), join(root, 'ref'))).toEqual([]);
    // Without -r a directory is skipped, with rsync's message.
    const skip = await runCli(['-lpt', `${src}/sub`, join(root, 'skip')]);
    expect(skip.code).toBe(0);
    expect(skip.stderr).toContain('skipping directory sub');
  });

  it('updates by delta with --no-whole-file: only the changes are literal', async () => {
    const a = join(tmp.path, 'delta-src');
    const b = join(tmp.path, 'delta-dst');
    mkdirSync(a);
    const big = readFileSync(join(src, 'big.bin'));
    writeFileSync(join(a, 'f'), big);
    await runCli(['-a', `${a}/`, b]);
    // Change 100 bytes in the middle and append 1 KiB.
    const changed = Buffer.from(big);
    changed.fill(7, 5_000_000, 5_000_100);
    writeFileSync(join(a, 'f'), Buffer.concat([changed, Buffer.alloc(1024, 1)]));
    const whole = await runCli(['-a', '--json', '-I', `${a}/`, join(tmp.path, 'delta-whole')]);
    expect(jsonStats(whole).literalBytes).toBe(big.length + 1024);
    const r = await runCli(['-a', '--no-whole-file', '--json', `${a}/`, b]);
    expect(r.code, r.stderr).toBe(0);
    const s = jsonStats(r);
    expect(s.filesTransferred).toBe(1);
    expect(s.literalBytes as number).toBeLessThan(1024 + 100 + 2 * 8192);
    expect((s.literalBytes as number) + (s.matchedBytes as number)).toBe(big.length + 1024);
    expect(s.bytesSent as number).toBeLessThan(64 * 1024);
    expect(treeDiff(b, a)).toEqual([]);
  });

  it('honours --checksum-choice and --block-size in delta transfers and -c', async () => {
    const a = join(tmp.path, 'cc-src');
    mkdirSync(a);
    const big = readFileSync(join(src, 'big.bin')).subarray(0, 3 * 1024 * 1024);
    writeFileSync(join(a, 'f'), big);
    for (const [choice, block] of [['md4', '2048'], ['blake2b', '4096'], ['xxh3', '700']] as const) {
      const b = join(tmp.path, `cc-dst-${choice}`);
      await runCli(['-a', `${a}/`, b]);
      const changed = Buffer.concat([Buffer.from('prefix'), big.subarray(0, 1_000_000), Buffer.from('middle'), big.subarray(1_000_000)]);
      writeFileSync(join(b, 'f'), big);
      writeFileSync(join(a, 'f'), changed);
      const r = await runCli(['-a', '-c', '--no-whole-file', `--checksum-choice=${choice}`, `--block-size=${block}`, '--json', `${a}/`, b]);
      expect(r.code, r.stderr).toBe(0);
      const s = jsonStats(r);
      expect(s.literalBytes as number).toBeLessThan(12 + 3 * Number(block));
      expect(treeDiff(b, a)).toEqual([]);
      writeFileSync(join(a, 'f'), big);
    }
    const bad = await runCli(['-a', '--checksum-choice=sha1', `${a}/`, join(tmp.path, 'cc-bad')]);
    expect(bad.code).toBe(1);
  });

  it('-v lists the same names as rsync -v, and --progress reports every file', async () => {
    const base = join(tmp.path, 'v-src');
    rsync(['-a', '--exclude=doc', '--exclude=big.bin', `${src}/`, base]);
    const ours = join(tmp.path, 'v-ours');
    const ref = join(tmp.path, 'v-ref');
    const names = (out: string): string[] =>
      out
        .split('\n')
        .filter((l) => l !== '' && !/^(sent |total size |sending incremental)/.test(l))
        .map((l) => l.replace(/^created directory .*$/, 'created directory DEST'))
        .sort();
    const r = await runCli(['-av', `${base}/`, ours]);
    expect(r.code, r.stderr).toBe(0);
    expect(names(r.stdout)).toEqual(names(rsync(['-av', `${base}/`, ref])));
    expect(r.stdout).toMatch(/^sent [\d,]+ bytes {2}received [\d,]+ bytes/m);
    expect(r.stdout).toMatch(/^total size is [\d,]+ {2}speedup is [\d.]+$/m);

    const p = await runCli(['-a', '--progress', `${base}/`, join(tmp.path, 'v-progress')]);
    expect(p.code, p.stderr).toBe(0);
    const done = p.stdout.split('\n').filter((l) => /100% .*\(xfr#\d+, \d+\/\d+ files\)$/.test(l));
    const files = Number(rsync(['-a', '--stats', '-n', `${base}/`, join(tmp.path, 'v-none')]).match(/reg: ([\d,]+)/)![1]!.replace(/,/g, ''));
    expect(done.length).toBe(files);
  });
});
