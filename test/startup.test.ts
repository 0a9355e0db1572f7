// A sync's start-up loads only the Node built-ins it uses: each one costs milliseconds, and a
// small sync is mostly start-up (lib/builtins.ts loads the others on first use). Checked from
// the list of built-ins the process loaded, for a local sync in the default and --inplace
// modes (a temp file, the signature cache, the matcher), and the lazy ones still work where
// they are needed (compression, the remote shell: test/sync-remote.test.ts).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, treeDiff } from './helpers/trees.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/**
 * Built-ins a local sync must not load: none of their work is needed for it. (net is not among
 * them: Node loads it for process.stdout and stderr on pipes, as the test runs the CLI.)
 */
const UNNEEDED = ['crypto', 'zlib', 'child_process', 'perf_hooks', 'v8', 'dgram'];

let tmp: { path: string; cleanup: () => void };
beforeAll(() => {
  tmp = tempDir('startup');
});
afterAll(() => tmp.cleanup());

/** Runs the CLI; returns its exit status and the built-in modules the process loaded. */
function loadedBy(args: string[]): { status: number | null; stderr: string; builtins: Set<string> } {
  const list = join(tmp.path, `loaded-${Math.random().toString(36).slice(2)}.txt`);
  const preload = join(tmp.path, 'preload.cjs');
  writeFileSync(
    preload,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`,
  );
  const r = spawnSync(process.execPath, ['--require', preload, join(ROOT, 'bin', 'deltasync.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, XDG_CACHE_HOME: join(tmp.path, 'cache') },
  });
  const loaded = readFileSync(list, 'utf8');
  const builtins = new Set(
    loaded
      .split('\n')
      .filter((l) => l.startsWith('NativeModule '))
      .map((l) => l.slice('NativeModule '.length)),
  );
  return { status: r.status, stderr: r.stderr, builtins };
}

describe('start-up', () => {
  it('a local sync loads none of the built-ins it does not use, in either write mode', () => {
    const src = join(tmp.path, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a'), 'first file\n');
    writeFileSync(join(src, 'sub', 'b'), Buffer.alloc(5_000_000, 7));
    for (const mode of [[], ['--inplace']]) {
      const dst = join(tmp.path, `dst${mode.join('')}`);
      for (const round of ['new', 'again']) {
        if (round === 'again') writeFileSync(join(src, 'sub', 'b'), Buffer.alloc(5_000_001, 7));
        const r = loadedBy(['-a', '--no-whole-file', ...mode, `${src}/`, `${dst}/`]);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(treeDiff(src, dst)).toEqual([]);
        // The list is real: the modules a sync needs are in it.
        expect(r.builtins.has('fs')).toBe(true);
        expect(UNNEEDED.filter((m) => r.builtins.has(m)), `${mode.join(' ')} ${round}`).toEqual([]);
      }
    }
  });
});
