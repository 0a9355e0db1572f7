// The committed API reference (docs/api, markdown from TSDoc) must match the sources: a TSDoc
// comment or an export changed without `npm run docs` fails here. typedoc regenerates into a
// temporary directory with the project's typedoc.json; the two trees are compared file by file.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './helpers/run.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(root, 'docs', 'api');

/** Every file under `dir`, as '/'-separated paths relative to it, sorted. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(relative(dir, full).split('\\').join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

describe('docs/api (typedoc)', () => {
  let fresh = '';
  let work = '';

  // Spawned without blocking the worker: typedoc takes tens of seconds on a loaded machine,
  // and a blocked worker misses vitest's RPC deadline ("Timeout calling onTaskUpdate").
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'deltasync-docs-'));
    fresh = join(work, 'api');
    const r = await run(process.execPath, [join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', fresh], { cwd: root });
    // typedoc reports type errors on stdout; show them rather than just "exit 1".
    if (r.error || r.status !== 0) throw new Error(`typedoc failed:\n${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}`);
  }, 300_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('documents the public entry points', () => {
    const files = listFiles(fresh);
    // A few exports README examples rely on: if one disappears from the reference, the
    // entry point or the typedoc configuration broke.
    for (const name of ['functions/sync.md', 'functions/signature.md', 'functions/delta.md', 'functions/patch.md', 'classes/DeltaSyncError.md']) {
      expect(files).toContain(name);
    }
    expect(readFileSync(join(fresh, 'functions', 'sync.md'), 'utf8')).toMatch(/Synchronises/);
  });

  it('is committed up to date (run `npm run docs` after changing TSDoc or exports)', () => {
    const want = listFiles(fresh);
    const have = listFiles(committed);
    expect(have, 'files in docs/api').toEqual(want);
    const stale = want.filter((f) => readFileSync(join(fresh, f), 'utf8') !== readFileSync(join(committed, f), 'utf8'));
    expect(stale, 'files in docs/api that differ from a fresh `npm run docs`').toEqual([]);
  });

  it('carries nothing that changes from run to run or machine to machine', () => {
    for (const f of listFiles(committed)) {
      const text = readFileSync(join(committed, f), 'utf8');
      expect(text, f).not.toContain(root);
      expect(text, f).not.toMatch(/\b20\d\d-\d\d-\d\dT\d\d:/);
      expect(text, f).not.toMatch(/github\.com\/[^)\s]*\/blob\/[0-9a-f]{7,}/);
    }
  });
});
