// bin/deltasync.js runs the CLI from dist/bundle/ (scripts/bundle-cli.mjs) while that bundle is
// not older than the modules tsc wrote to dist/lib/, and from the modules otherwise: a tsc run
// without the bundle step must never leave stale code running. Checked on a copy of the
// package whose other half is broken, so only the expected half can do the sync.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { Script } from 'node:vm';
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
    expect(existsSync(join(ROOT, 'dist', 'bundle', 'main.cjs')), 'run `npm run build:ts`').toBe(true);
  });

  it('runs a sync from the bundle while it is current, without the modules', () => {
    const pkg = packageCopy('current');
    // The sync engine's modules are gone: only the bundle can sync.
    rmSync(join(pkg, 'dist', 'lib', 'sync'), { recursive: true });
    const now = Date.now() / 1000;
    setMtime(join(pkg, 'dist', 'lib', 'cli', 'main.js'), now - 60);
    setMtime(join(pkg, 'dist', 'bundle', 'main.cjs'), now);
    const r = syncWith(pkg, 'current');
    expect(r.status, r.stderr).toBe(0);
    expect(treeDiff(r.src, r.dst)).toEqual([]);
  });

  it('runs from the modules once tsc has written them after the bundle', () => {
    const pkg = packageCopy('stale');
    // A stale bundle that would fail if it ran.
    const bundleMain = join(pkg, 'dist', 'bundle', 'main.cjs');
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

describe('the code cache of the bundle', () => {
  /** The first line bin/deltasync.js expects in the cache of `bundle`. */
  function stampOf(bundle: string): string {
    const st = statSync(bundle, { bigint: true });
    return `deltasync-code-cache ${st.size} ${st.mtimeNs} ${st.ino} ${process.version}\n`;
  }

  function cacheOf(pkg: string): { stamp: string; data: Buffer } | undefined {
    const path = join(pkg, 'dist', 'bundle', 'main.cjs.v8cache');
    if (!existsSync(path)) return undefined;
    const raw = readFileSync(path);
    const end = raw.indexOf(10) + 1;
    return { stamp: raw.toString('latin1', 0, end), data: raw.subarray(end) };
  }

  /** A package copy whose bundle is current (copies get new mtimes in copy order). */
  function currentCopy(name: string): string {
    const pkg = packageCopy(name);
    const now = Date.now() / 1000;
    setMtime(join(pkg, 'dist', 'lib', 'cli', 'main.js'), now - 60);
    setMtime(join(pkg, 'dist', 'bundle', 'main.cjs'), now);
    return pkg;
  }

  function run(pkg: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
    return spawnSync(process.execPath, [join(pkg, 'bin', 'deltasync.js'), ...args], { encoding: 'utf8' });
  }

  it('is made by the build for the bundle it built, and V8 takes it', () => {
    const bundle = join(ROOT, 'dist', 'bundle', 'main.cjs');
    const cache = cacheOf(ROOT);
    expect(cache, 'the build (scripts/bundle-cli.mjs) makes dist/bundle/main.cjs.v8cache').toBeDefined();
    expect(cache!.stamp).toBe(stampOf(bundle));
    const source = readFileSync(bundle, 'utf8');
    const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: bundle, cachedData: cache!.data });
    expect(script.cachedDataRejected).toBe(false);
  });

  it('is written by a sync when there is none for this bundle, not by help', () => {
    const pkg = currentCopy('cache-write');
    rmSync(join(pkg, 'dist', 'bundle', 'main.cjs.v8cache'), { force: true });
    expect(run(pkg, ['--help']).status).toBe(0);
    expect(cacheOf(pkg)).toBeUndefined();
    const r = syncWith(pkg, 'cache-write');
    expect(r.status, r.stderr).toBe(0);
    expect(cacheOf(pkg)?.stamp).toBe(stampOf(join(pkg, 'dist', 'bundle', 'main.cjs')));
    // Left alone once it matches: the next sync uses it.
    const before = statSync(join(pkg, 'dist', 'bundle', 'main.cjs.v8cache'), { bigint: true }).mtimeNs;
    expect(syncWith(pkg, 'cache-write-2').status).toBe(0);
    expect(statSync(join(pkg, 'dist', 'bundle', 'main.cjs.v8cache'), { bigint: true }).mtimeNs).toBe(before);
  });

  it('is never used for other code of the same length (V8 checks only the length)', () => {
    const pkg = currentCopy('cache-other');
    const bundle = join(pkg, 'dist', 'bundle', 'main.cjs');
    expect(syncWith(pkg, 'cache-other').status).toBe(0); // a cache for this bundle
    expect(cacheOf(pkg)?.stamp).toBe(stampOf(bundle));
    // Same length, other code: the program name the help prints.
    const source = readFileSync(bundle, 'utf8');
    expect(source).toContain('PROGRAM = "deltasync";');
    writeFileSync(bundle, source.replace('PROGRAM = "deltasync";', 'PROGRAM = "deltasynX";'));
    setMtime(bundle, Date.now() / 1000 + 5);
    expect(run(pkg, ['--help']).stdout).toMatch(/^deltasynX /);
    // A cache whose stamp names other code is not used either, and a damaged one is remade.
    writeFileSync(join(pkg, 'dist', 'bundle', 'main.cjs.v8cache'), Buffer.concat([Buffer.from(stampOf(bundle), 'latin1'), Buffer.alloc(5000, 7)]));
    const r = syncWith(pkg, 'cache-damaged');
    expect(r.status, r.stderr).toBe(0);
    expect(treeDiff(r.src, r.dst)).toEqual([]);
    expect(cacheOf(pkg)!.data.equals(Buffer.alloc(5000, 7))).toBe(false);
    expect(run(pkg, ['--help']).stdout).toMatch(/^deltasynX /);
  });

  it('is not used by the file commands (it would only add to their memory)', () => {
    const pkg = currentCopy('cache-file-commands');
    const bundle = join(pkg, 'dist', 'bundle', 'main.cjs');
    expect(syncWith(pkg, 'cache-file-commands').status).toBe(0);
    const made = cacheOf(pkg)!;
    // Other code of the same length, and the old cache relabelled as its own: a sync would run
    // the old code from it (the stamp is all that is checked), a file command compiles afresh.
    const source = readFileSync(bundle, 'utf8');
    writeFileSync(bundle, source.replace('PROGRAM = "deltasync";', 'PROGRAM = "deltasynX";'));
    setMtime(bundle, Date.now() / 1000 + 5);
    writeFileSync(join(pkg, 'dist', 'bundle', 'main.cjs.v8cache'), Buffer.concat([Buffer.from(stampOf(bundle), 'latin1'), made.data]));
    expect(run(pkg, ['--help']).stdout).toMatch(/^deltasync /);
    for (const command of ['signature', 'delta', 'patch']) expect(run(pkg, [command, '--help']).stdout).toMatch(/^Usage: deltasynX /);
  });
});
