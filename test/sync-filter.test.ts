// Filter rules (--exclude/--include/--filter/--exclude-from) checked against rsync: for each
// rule set, the dry-run item list of deltasync must equal rsync's on the same trees.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilterList, parseFilterRule, patternRule } from '../lib/sync/filter.js';
import { buildAwkwardTree, rsync, runCli, tempDir, treeDiff, itemLines } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
let src: string;

const items = itemLines;

beforeAll(() => {
  tmp = tempDir('filter');
  src = join(tmp.path, 'src');
  buildAwkwardTree(src, 4096);
  mkdirSync(join(src, 'docs/a/b'), { recursive: true });
  for (const p of ['docs/README', 'docs/a/copyright', 'docs/a/b/copyright', 'docs/a/changelog.gz', 'docs/a/b/index.html', 'docs/x.html', 'core', 'a.o', 'sub/b.o', '[weird]name']) {
    writeFileSync(join(src, p), p);
  }
});

afterAll(() => tmp.cleanup());

const RULE_SETS: string[][] = [
  ['--exclude=*.txt'],
  ['--exclude=sub/'],
  ['--exclude=sub'],
  ['--exclude=/plain.txt', '--exclude=/docs/a/'],
  ['--include=*/', '--include=*.txt', '--exclude=*'],
  ['--exclude=**/deepest'],
  ['--exclude=docs/***'],
  ['--exclude=?lain.*'],
  ['--exclude=[a-e]*'],
  ['--exclude=[!a-e]*'],
  ['--exclude=*/copyright'],
  ['--exclude=a/b/*'],
  ['--exclude=docs/**/copyright'],
  ['--exclude=\\[weird\\]name'],
  ['--exclude=*.o', '--include=core', '--exclude=c*'],
  ['--filter=- *.html', '--filter=+ /docs/', '--filter=- /d*'],
  ['--filter=exclude,! */', '--filter=+ *'],
  ['-f', '- /sub/deeper/', '-f', 'hide link-*'],
  ['--include=/docs/', '--include=/docs/a/', '--include=/docs/a/**', '--exclude=*'],
  ['--exclude=*.o', '--filter=!', '--exclude=*.html'],
];

describe('filter rules select the same files as rsync', () => {
  for (const rules of RULE_SETS) {
    it(rules.join(' '), async () => {
      const dest = join(tmp.path, 'never-created');
      const ours = await runCli(['-ani', ...rules, `${src}/`, dest]);
      expect(ours.code, ours.stderr).toBe(0);
      const theirs = rsync(['-ani', ...rules, `${src}/`, dest]);
      expect(items(ours.stdout)).toEqual(items(theirs));
    });
  }

  it('reads --exclude-from files with comments and +/- prefixes', async () => {
    const list = join(tmp.path, 'rules.txt');
    writeFileSync(list, '# comment\n; also comment\n\n+ keep.o\n*.o\n- docs/x.html\n/sub/deeper\n');
    writeFileSync(join(src, 'keep.o'), 'k');
    const dest = join(tmp.path, 'never');
    const ours = await runCli(['-ani', `--exclude-from=${list}`, `${src}/`, dest]);
    expect(ours.code, ours.stderr).toBe(0);
    expect(items(ours.stdout)).toEqual(items(rsync(['-ani', `--exclude-from=${list}`, `${src}/`, dest])));
  });

  it('excluded files on the receiver survive --delete, unless --delete-excluded', async () => {
    for (const extra of [[], ['--delete-excluded'], ['--filter=P *.keep', '--delete-excluded']]) {
      const ours = join(tmp.path, `del-ours${extra.length}`);
      const ref = join(tmp.path, `del-ref${extra.length}`);
      for (const d of [ours, ref]) {
        mkdirSync(join(d, 'sub'), { recursive: true });
        writeFileSync(join(d, 'junk.o'), 'x');
        writeFileSync(join(d, 'sub/junk.o'), 'x');
        writeFileSync(join(d, 'notes.keep'), 'x');
        writeFileSync(join(d, 'gone.txt'), 'x');
      }
      const rules = ['--exclude=*.o', '--exclude=*.keep', ...extra];
      const r = await runCli(['-ai', '--delete', ...rules, `${src}/`, ours]);
      expect(r.code, r.stderr).toBe(0);
      const expected = rsync(['-ai', '--delete', ...rules, `${src}/`, ref]);
      expect(items(r.stdout)).toEqual(items(expected));
      expect(treeDiff(ours, ref)).toEqual([]);
    }
  });

  it('rejects unsupported or malformed rules with a usage error', async () => {
    const r = await runCli(['-a', '--filter=: .rsync-filter', `${src}/`, join(tmp.path, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not supported/);
    const bad = await runCli(['-a', '--filter=bogus pattern', `${src}/`, join(tmp.path, 'x')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/filter rule/);
  });
});

describe('FilterList unit behaviour', () => {
  it('first match wins and dir-only rules ignore files', () => {
    const f = new FilterList([...patternRule('keep/', 'include'), ...patternRule('keep', 'exclude')], 'sender');
    expect(f.excluded('a/keep', true)).toBe(false);
    expect(f.excluded('a/keep', false)).toBe(true);
  });

  it('sender-only and receiver-only rules apply to their side', () => {
    const rules = [...parseFilterRule('hide secret'), ...parseFilterRule('protect keep')];
    expect(new FilterList(rules, 'sender').excluded('secret', false)).toBe(true);
    expect(new FilterList(rules, 'receiver').excluded('secret', false)).toBe(false);
    expect(new FilterList(rules, 'receiver').excluded('keep', false)).toBe(true);
    expect(new FilterList(rules, 'sender').excluded('keep', false)).toBe(false);
  });
});
