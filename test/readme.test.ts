// The README's API examples are the files under examples/: each ```js block that imports
// 'deltasync' must be one of them verbatim, and each example runs here against the built package
// (`deltasync` resolves to dist/ through package.json "exports", as it would for a user). The
// examples write under os.tmpdir(); TMPDIR points at a directory of this test so their results
// can be checked independently of what they print.
import { run } from './helpers/run.js';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const examplesDir = join(root, 'examples');
const exampleFiles = readdirSync(examplesDir).filter((f) => f.endsWith('.mjs')).sort();

/** The ```js fenced blocks of the README, without the fences. */
function readmeJsBlocks(): string[] {
  const text = readFileSync(join(root, 'README.md'), 'utf8');
  return [...text.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

let tmp = '';
afterEach(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = '';
});

/** Runs examples/NAME with TMPDIR set to a fresh directory; returns stdout lines and that directory. */
async function runExample(name: string): Promise<{ lines: string[]; tmp: string }> {
  tmp = mkdtempSync(join(tmpdir(), 'deltasync-readme-'));
  // Spawned without blocking the worker (see test/helpers/run.ts).
  const r = await run(process.execPath, [join(examplesDir, name)], {
    cwd: tmp,
    env: { ...process.env, TMPDIR: tmp },
    timeout: 60_000,
  });
  expect(r.error, `${name}`).toBeUndefined();
  expect(r.stderr, `${name} stderr`).toBe('');
  expect(r.status, `${name} exit status`).toBe(0);
  return { lines: r.stdout.trimEnd().split('\n'), tmp };
}

/** The single deltasync-example-* directory an example made under `dir`. */
function exampleDir(dir: string): string {
  const made = readdirSync(dir).filter((f) => f.startsWith('deltasync-example-'));
  expect(made).toHaveLength(1);
  return join(dir, made[0]!);
}

/** Every file under `dir` (relative path -> contents). */
function treeContents(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(full).isDirectory()) walk(full, r);
      else out.set(r, readFileSync(full));
    }
  };
  walk(dir, '');
  return out;
}

const numberAfter = (line: string | undefined, re: RegExp): number => {
  const m = re.exec(line ?? '');
  expect(m, `${re} in ${line}`).not.toBeNull();
  return Number(m![1]);
};

describe('README examples', () => {
  it('shows every example, and every API snippet is an example', () => {
    expect(exampleFiles).toEqual(['buffers.mjs', 'errors.mjs', 'files.mjs', 'streams.mjs', 'sync-progress.mjs']);
    const blocks = readmeJsBlocks();
    for (const f of exampleFiles) {
      expect(blocks, `README shows examples/${f} verbatim`).toContain(readFileSync(join(examplesDir, f), 'utf8'));
    }
    const examples = new Set(exampleFiles.map((f) => readFileSync(join(examplesDir, f), 'utf8')));
    const stray = blocks.filter((b) => /from 'deltasync'/.test(b) && !examples.has(b));
    expect(stray, 'README js blocks importing deltasync that are not under examples/').toEqual([]);
  });

  it('links only to files that exist and headings that exist', () => {
    const text = readFileSync(join(root, 'README.md'), 'utf8');
    // GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'.
    const anchors = new Set(
      [...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
        m[1]!
          .toLowerCase()
          .replace(/[^\p{L}\p{N} _-]/gu, '')
          .replace(/ /g, '-'),
      ),
    );
    const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    expect(links.length).toBeGreaterThan(10);
    for (const link of links) {
      const [path, anchor] = link.split('#');
      if (path) expect(existsSync(join(root, path)), `README links to ${link}`).toBe(true);
      else expect(anchors, `README links to ${link}`).toContain(anchor);
    }
  });

  it('resolves deltasync to the built package', () => {
    expect(existsSync(join(root, 'dist', 'lib', 'index.js')), 'dist/ built (npm run build:ts)').toBe(true);
  });

  it('buffers.mjs: rebuilds the new data from a small delta', async () => {
    const { lines } = await runExample('buffers.mjs');
    const newLength = 45 * 2000 + 'NEW TEXT'.length;
    expect(lines[0]).toMatch(new RegExp(`for a ${newLength}-byte file$`));
    expect(numberAfter(lines[0], /delta (\d+) bytes/)).toBeLessThan(newLength / 20);
    const literal = numberAfter(lines[1], /literal (\d+)/);
    const matched = numberAfter(lines[1], /matched (\d+)/);
    expect(literal + matched).toBe(newLength);
    expect(literal).toBeGreaterThanOrEqual('NEW TEXT'.length);
    expect(lines[2]).toBe('rebuilt equals new: true');
  });

  it('files.mjs: the rebuilt file equals the new one', async () => {
    const { lines, tmp: dir } = await runExample('files.mjs');
    const work = exampleDir(dir);
    const newFile = readFileSync(join(work, 'new.bin'));
    expect(readFileSync(join(work, 'rebuilt.bin')).equals(newFile)).toBe(true);
    expect(newFile.length).toBe(4 * 1024 * 1024 + 'appended\n'.length);
    const matched = numberAfter(lines[1], /^(\d+) bytes matched/);
    const literal = numberAfter(lines[1], /(\d+) literal$/);
    expect(matched + literal).toBe(newFile.length);
    expect(literal).toBeLessThan(64 * 1024);
    // No temporary files left beside the outputs.
    expect(readdirSync(work).sort()).toEqual(['new.bin', 'new.delta', 'old.bin', 'old.sig', 'rebuilt.bin']);
  });

  it('streams.mjs: the patched stream equals the new file', async () => {
    const { lines, tmp: dir } = await runExample('streams.mjs');
    const work = exampleDir(dir);
    const newFile = readFileSync(join(work, 'new.bin'));
    expect(newFile.subarray(0, 8).toString()).toBe('changed!');
    expect(readFileSync(join(work, 'rebuilt.bin')).equals(newFile)).toBe(true);
    expect(numberAfter(lines[0], /(\d+) literal/) + numberAfter(lines[0], /(\d+) matched/)).toBe(2 * 1024 * 1024);
    expect(numberAfter(lines[1], /patch: (\d+) bytes/)).toBe(2 * 1024 * 1024);
  });

  it('sync-progress.mjs: the destination equals the source, the second run sends only the change', async () => {
    const { lines, tmp: dir } = await runExample('sync-progress.mjs');
    const work = exampleDir(dir);
    const src = treeContents(join(work, 'src'));
    const dest = treeContents(join(work, 'dest'));
    expect([...dest.keys()].sort()).toEqual([...src.keys()].sort());
    for (const [path, data] of src) expect(dest.get(path)!.equals(data), path).toBe(true);

    const bigSize = 8 * 1024 * 1024 + 'one more line\n'.length;
    expect(lines).toContain(`  big.bin: ${bigSize} bytes (1/1 files)`);
    expect(lines).toContain(`first run: 2 files, ${8 * 1024 * 1024 + 'hello\n'.length} literal bytes`);
    const second = lines.find((l) => l.startsWith('second run:'));
    const literal = numberAfter(second, /(\d+) literal/);
    expect(literal).toBeGreaterThanOrEqual('one more line\n'.length);
    expect(literal).toBeLessThan(64 * 1024);
    expect(literal + numberAfter(second, /(\d+) matched/)).toBe(bigSize);
  });

  it('errors.mjs: typed errors with stable codes', async () => {
    const { lines } = await runExample('errors.mjs');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^ERR_BAD_MAGIC \(exit 2\): /);
    expect(lines[1]).toMatch(/^ERR_IO \(exit 11\): .*\/nonexistent\/file/);
  });
});
