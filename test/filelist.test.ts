// The sender's walk: wire order (a directory's entries sorted bytewise, then each subdirectory
// in turn, depth first), one batch per directory, and what walk() and walkBatches() agree on.
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileListWalker, type SourceItem } from '../lib/sync/filelist.js';
import { FilterList } from '../lib/sync/filter.js';
import { resolveTransferOptions } from '../lib/sync/options.js';

const root = mkdtempSync(join(tmpdir(), 'deltasync-walk-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Names chosen so that bytewise order differs from locale order and from depth-first-by-path. */
const NAMES = ['B', 'a', 'a-b', 'a.b', 'a0', 'é', 'z'];

function makeTree(dir: string, depth: number, seed: number): void {
  mkdirSync(dir, { recursive: true });
  NAMES.forEach((name, i) => {
    const path = join(dir, name);
    if (depth > 0 && (i + seed) % 3 === 0) makeTree(path, depth - 1, seed + i + 1);
    else if ((i + seed) % 5 === 4) symlinkSync(`target-${i}`, path);
    else writeFileSync(path, `${name} ${depth} ${seed}`);
  });
}

/** The order the walk must produce, computed the plain recursive way. */
function expectedOrder(local: string, rel: string, out: string[][]): void {
  const names = readdirSync(local, { encoding: 'buffer' }).sort(Buffer.compare).map((b) => b.toString('utf8'));
  out.push(names.map((n) => (rel === '.' ? n : `${rel}/${n}`)));
  for (const n of names) {
    if (lstatSync(join(local, n)).isDirectory()) expectedOrder(join(local, n), rel === '.' ? n : `${rel}/${n}`, out);
  }
}

function walker(): FileListWalker {
  const opts = resolveTransferOptions({ archive: true, recursive: true }, false);
  return new FileListWalker(opts, new FilterList(opts.filters, 'sender'), () => {});
}

async function batchesOf(sources: string[]): Promise<SourceItem[][]> {
  const out: SourceItem[][] = [];
  for await (const batch of walker().walkBatches(sources)) out.push(batch);
  return out;
}

describe('FileListWalker', () => {
  it('lists each directory whole, sorted bytewise, then its subdirectories depth first, one batch per directory', async () => {
    const src = join(root, 'deep');
    makeTree(src, 4, 0);
    const expected: string[][] = [];
    expectedOrder(src, '.', expected);
    expect(expected.length).toBeGreaterThan(5); // the tree really is nested

    const batches = await batchesOf([`${src}/`]);
    // The first batch is the source directory itself ('.'), then one batch per listed directory.
    expect(batches[0]!.map((i) => i.entry.path)).toEqual(['.']);
    expect(batches.slice(1).map((b) => b.map((i) => i.entry.path))).toEqual(expected.filter((names) => names.length > 0));
    // Every item carries the local path it is read from.
    for (const item of batches.flat().slice(1)) expect(item.local).toBe(join(src, item.entry.path));

    const flat: string[] = [];
    for await (const item of walker().walk([`${src}/`])) flat.push(item.entry.path);
    expect(flat).toEqual(batches.flat().map((i) => i.entry.path));
  });

  it('merges a directory named by two sources: the first source wins per name, both contents are listed', async () => {
    const one = join(root, 'one', 'shared');
    const two = join(root, 'two', 'shared');
    mkdirSync(join(one, 'sub'), { recursive: true });
    mkdirSync(join(two, 'sub'), { recursive: true });
    writeFileSync(join(one, 'same'), 'first');
    writeFileSync(join(two, 'same'), 'second');
    writeFileSync(join(one, 'sub', 'x'), 'x');
    writeFileSync(join(two, 'sub', 'y'), 'y');
    const items = (await batchesOf([one, two])).flat();
    const paths = items.map((i) => i.entry.path);
    expect(paths).toEqual(['shared', 'shared/same', 'shared/sub', 'shared/sub/x', 'shared/sub/y']);
    expect(items.find((i) => i.entry.path === 'shared/same')!.local).toBe(join(one, 'same'));
  });
});
