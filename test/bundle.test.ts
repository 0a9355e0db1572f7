// bin/deltasync.js runs the CLI from dist/bundle/ (scripts/bundle-cli.mjs) while that bundle is
// not older than the modules tsc wrote to dist/lib/, and from the modules otherwise: a tsc run
// without the bundle step must never leave stale code running. Checked on a copy of the
// package whose other half is broken, so only the expected half can do the sync.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, treeDiff } from './helpers/trees.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

let tmp: { path: string; cleanup: () => void };
beforeAll(() => {
  tmp = tempDir('bundle');
});
afterAll(() => tmp.cleanup());

/** A copy of the package (bin, dist, package.json; node_modules and the addon linked). */
function packageCopy(name: string): string {
  const pkg = join(tmp.path, name);
  mkdirSync(pkg);
  cpSync(join(ROOT, 'bin'), join(pkg, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'dist'), join(pkg, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'));
  symlinkSync(join(ROOT, 'build'), join(pkg, 'build'));
  return pkg;
}

function syncWith(pkg: string, label: string): { status: number | null; stderr: string; src: string; dst: string } {
  const src = join(tmp.path, `${label}-src`);
  const dst = join(tmp.path, `${label}-dst`);
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'a'), 'first file\n');
  writeFileSync(join(src, 'sub', 'b'), Buffer.alloc(300_000, 7));
  const r = spawnSync(process.execPath, [join(pkg, 'bin', 'deltasync.js'), '-a', `${src}/`, `${dst}/`], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, src, dst };
}

function setMtime(path: string, seconds: number): void {
  utimesSync(path, seconds, seconds);
}

describe('the CLI bundle', () => {
  it('exists after the build (npm test builds it)', () => {
    expect(existsSync(join(ROOT, 'dist', 'bundle', 'main.js')), 'run `npm run build:ts`').toBe(true);
  });

  it('runs a sync from the bundle while it is current, without the modules', () => {
    const pkg = packageCopy('current');
    // The sync engine's modules are gone: only the bundle can sync.
    rmSync(join(pkg, 'dist', 'lib', 'sync'), { recursive: true });
    const now = Date.now() / 1000;
    setMtime(join(pkg, 'dist', 'lib', 'cli', 'main.js'), now - 60);
    setMtime(join(pkg, 'dist', 'bundle', 'main.js'), now);
    const r = syncWith(pkg, 'current');
    expect(r.status, r.stderr).toBe(0);
    expect(treeDiff(r.src, r.dst)).toEqual([]);
  });

  it('runs from the modules once tsc has written them after the bundle', () => {
    const pkg = packageCopy('stale');
    // A stale bundle that would fail if it ran.
    const bundleMain = join(pkg, 'dist', 'bundle', 'main.js');
    writeFileSync(bundleMain, `throw new Error('the stale bundle ran');\n${readFileSync(bundleMain, 'utf8')}`);
    const now = Date.now() / 1000;
    setMtime(bundleMain, now - 60);
    setMtime(join(pkg, 'dist', 'lib', 'cli', 'main.js'), now);
    const r = syncWith(pkg, 'stale');
    expect(r.stderr).not.toMatch(/stale bundle/);
    expect(r.status, r.stderr).toBe(0);
    expect(treeDiff(r.src, r.dst)).toEqual([]);
  });
});
