// The receiver under symlink attacks (the CVE-2024-12747 race, the CVE-2024-12088 escape shape):
// while a sync runs, another process keeps swapping a destination subdirectory for a symlink to
// a canary directory outside the destination, and file names for symlinks to a canary file.
// Writes go through directory handles opened without following symlinks, so whatever the
// interleaving, nothing is created, changed or deleted in the canary. A control writer using
// plain paths under the same racer shows the race is real (it does reach its canary).
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, TEST_CACHE_HOME, runCli, tempDir, writeRandomFile } from './helpers/trees.js';

const FILES = 300;
const RUNS = 4;

let tmp: { path: string; cleanup: () => void };
beforeAll(() => {
  tmp = tempDir('symrace');
});
afterAll(() => tmp.cleanup());

/**
 * Swaps `<dir>/<name>` between the real directory and a symlink to `canaryDir`, and each of
 * `files` between a regular file and a symlink to `canaryFile`, as fast as it can until
 * SIGTERM; prints how many swaps it made.
 */
const RACER = `
const fs = require('fs');
const [sub, canaryDir, canaryFile, ...files] = process.argv.slice(1);
const real = sub + '.real';
let swaps = 0, stop = false;
process.on('SIGTERM', () => { stop = true; });
function swapFile(f) {
  try { fs.renameSync(f, f + '.keep'); } catch { return; }
  try { fs.symlinkSync(canaryFile, f); swaps++; } catch {}
  try { if (fs.lstatSync(f).isSymbolicLink()) fs.unlinkSync(f); } catch {}
  try { fs.renameSync(f + '.keep', f); } catch {}
}
function batch() {
  for (let i = 0; i < 100 && !stop; i++) {
    try { fs.renameSync(sub, real); } catch { continue; }
    try { fs.symlinkSync(canaryDir, sub); swaps++; } catch {}
    try { if (fs.lstatSync(sub).isSymbolicLink()) fs.unlinkSync(sub); } catch {}
    try { fs.renameSync(real, sub); } catch {}
    for (const f of files) swapFile(f);
  }
  if (stop) { process.stdout.write(String(swaps)); process.exit(0); }
  setImmediate(batch);
}
batch();
`;

interface Racer {
  child: ChildProcess;
  stop: () => Promise<number>;
}

function startRacer(sub: string, canaryDir: string, canaryFile: string, files: string[]): Racer {
  const child = spawn(process.execPath, ['-e', RACER, sub, canaryDir, canaryFile, ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number>((resolve) => child.once('close', () => resolve(Number(out) || 0)));
  return {
    child,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** A snapshot of everything about a canary that an escaped write could change. */
function snapshot(dir: string): string {
  return readdirSync(dir)
    .sort()
    .map((name) => {
      const st = lstatSync(join(dir, name));
      return `${name} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs} ${st.size} ${st.isFile() ? readFileSync(join(dir, name), 'hex') : ''}`;
    })
    .join('\n');
}

function makeCanary(dir: string): void {
  mkdirSync(dir);
  writeFileSync(join(dir, 'victim'), 'original\n');
  chmodSync(join(dir, 'victim'), 0o644);
  utimesSync(join(dir, 'victim'), 1000, 1000);
  // Names the sync creates and deletes in sub/: an escaped write or delete would touch these.
  writeFileSync(join(dir, 'extra-0'), 'canary extra\n');
  writeFileSync(join(dir, 'f0000'), 'canary f0000\n');
  utimesSync(join(dir, 'extra-0'), 1000, 1000);
  utimesSync(join(dir, 'f0000'), 1000, 1000);
  utimesSync(dir, 1000, 1000);
}

/** Source: sub/ with many files, nested dirs and symlinks; attrs/ files that only need attribute changes. */
function makeSource(src: string): void {
  mkdirSync(join(src, 'sub/nested/deeper'), { recursive: true });
  mkdirSync(join(src, 'attrs'), { recursive: true });
  for (let i = 0; i < FILES; i++) writeFileSync(join(src, 'sub', `f${String(i).padStart(4, '0')}`), `new content ${i}\n`.repeat(1 + (i % 7)));
  for (let i = 0; i < 20; i++) writeFileSync(join(src, 'sub/nested/deeper', `n${i}`), `nested ${i}\n`);
  for (let i = 0; i < 20; i++) symlinkSync(`f${String(i).padStart(4, '0')}`, join(src, 'sub', `link${i}`));
  for (let i = 0; i < 8; i++) {
    const p = join(src, 'attrs', `a${i}`);
    writeFileSync(p, 'original\n'); // the canary victim's size: only attributes differ
    chmodSync(p, 0o600);
    utimesSync(p, 2000, 2000);
  }
}

/** Destination as an older run left it: stale sub/ contents, extraneous files, attrs/ files with other attributes. */
function makeDest(dst: string): void {
  mkdirSync(join(dst, 'sub/nested'), { recursive: true });
  mkdirSync(join(dst, 'attrs'));
  for (let i = 0; i < FILES; i += 3) writeFileSync(join(dst, 'sub', `f${String(i).padStart(4, '0')}`), `old ${i}\n`);
  for (let i = 0; i < 30; i++) writeFileSync(join(dst, 'sub', `extra-${i}`), 'extraneous\n');
  for (let i = 0; i < 8; i++) {
    const p = join(dst, 'attrs', `a${i}`);
    writeFileSync(p, 'original\n');
    chmodSync(p, 0o644);
    utimesSync(p, 2000, 2000);
  }
}

describe('symlink races against the receiver', () => {
  it('the racer does redirect a writer that uses plain paths (control)', async () => {
    const base = join(tmp.path, 'control');
    const dst = join(base, 'dst');
    const canary = join(base, 'canary');
    mkdirSync(join(dst, 'sub'), { recursive: true });
    makeCanary(canary);
    const racer = startRacer(join(dst, 'sub'), canary, join(canary, 'victim'), []);
    let escaped = 0;
    try {
      // Until the racer wins once, within 30 s: on a loaded machine (the ASan run) 2000 tries
      // were sometimes not enough.
      const deadline = Date.now() + 30_000;
      for (let i = 0; escaped === 0 && Date.now() < deadline; i++) {
        try {
          writeFileSync(join(dst, 'sub', `c${i}`), 'x');
        } catch {
          // the directory was away
        }
        if (i % 50 === 49) await new Promise((r) => setTimeout(r, 1));
        escaped = readdirSync(canary).filter((n) => n.startsWith('c')).length;
      }
    } finally {
      await racer.stop();
    }
    expect(escaped).toBeGreaterThan(0);
  });

  it(`a sync (-a --delete) under the racer never touches the canary (${RUNS} runs)`, async () => {
    const base = join(tmp.path, 'race');
    const src = join(base, 'src');
    makeSource(src);
    const canary = join(base, 'canary');
    makeCanary(canary);
    const before = snapshot(canary);
    let totalSwaps = 0;
    for (let run = 0; run < RUNS; run++) {
      const dst = join(base, `dst${run}`);
      makeDest(dst);
      const attrFiles = Array.from({ length: 8 }, (_, i) => join(dst, 'attrs', `a${i}`));
      const racer = startRacer(join(dst, 'sub'), canary, join(canary, 'victim'), attrFiles);
      let r;
      try {
        r = await runCli(['-a', '--delete', `${src}/`, `${dst}/`]);
      } finally {
        totalSwaps += await racer.stop();
      }
      // Files in a directory that was away when they were written fail (23); nothing crashes.
      expect([0, 23], r.stderr).toContain(r.code);
      expect(r.stderr).not.toMatch(/\/proc\/self\/fd/);
      expect(snapshot(canary)).toBe(before);
      // Whatever the racer left (sub, sub.real, or neither: --delete may remove sub.real as an
      // extraneous name it saw at the top), the destination itself is still a real directory.
      expect(lstatSync(dst).isDirectory()).toBe(true);
    }
    expect(totalSwaps).toBeGreaterThan(RUNS * 10);
    // Without the racer the same sync completes and the destination equals the source.
    const dst = join(base, 'calm');
    makeDest(dst);
    const r = await runCli(['-a', '--delete', `${src}/`, `${dst}/`]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dst, 'sub/f0001'), 'utf8')).toBe(readFileSync(join(src, 'sub/f0001'), 'utf8'));
    expect(existsSync(join(dst, 'sub/extra-0'))).toBe(false);
    expect(statSync(join(dst, 'attrs/a0')).mode & 0o777).toBe(0o600);
    expect(snapshot(canary)).toBe(before);
  }, 120_000);

  it('a symlink in the destination where the source has a directory is replaced, never written through (CVE-2024-12088 shape)', async () => {
    const base = join(tmp.path, 'escape');
    const src = join(base, 'src');
    const dst = join(base, 'dst');
    const canary = join(base, 'canary');
    mkdirSync(base);
    makeCanary(canary);
    const before = snapshot(canary);
    mkdirSync(join(src, 'esc/inner'), { recursive: true });
    writeFileSync(join(src, 'esc/f0000'), 'through the link?\n');
    writeFileSync(join(src, 'esc/inner/x'), 'deeper\n');
    // A chain: esc -> hop -> canary, and a file whose name is a link to the victim.
    mkdirSync(dst);
    symlinkSync(canary, join(dst, 'hop'));
    symlinkSync('hop', join(dst, 'esc'));
    writeFileSync(join(src, 'victim-name'), 'replaced\n');
    symlinkSync(join(canary, 'victim'), join(dst, 'victim-name'));
    const r = await runCli(['-a', `${src}/`, `${dst}/`]);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(join(dst, 'esc')).isDirectory()).toBe(true);
    expect(readFileSync(join(dst, 'esc/f0000'), 'utf8')).toBe('through the link?\n');
    expect(readFileSync(join(dst, 'esc/inner/x'), 'utf8')).toBe('deeper\n');
    expect(lstatSync(join(dst, 'victim-name')).isFile()).toBe(true);
    expect(snapshot(canary)).toBe(before);
    // rsync's --safe-links is not implemented: refused as an unknown option, not silently ignored.
    const safe = await runCli(['-a', '--safe-links', `${src}/`, `${dst}/`]);
    expect(safe.code).not.toBe(0);
    expect(snapshot(canary)).toBe(before);
  });

  it('--inplace: a symlink swapped in at the file name after the lookup is refused, its target untouched', async () => {
    const base = join(tmp.path, 'inplace');
    const src = join(base, 'src');
    const dst = join(base, 'dst');
    const canary = join(base, 'canary');
    mkdirSync(src, { recursive: true });
    mkdirSync(dst);
    makeCanary(canary);
    const before = snapshot(canary);
    // a-big keeps the transfer busy (bandwidth-limited) while b-small, already looked up and
    // requested by the generator, waits for its turn to be opened.
    writeRandomFile(join(src, 'a-big'), 4 * 1024 * 1024);
    writeFileSync(join(src, 'b-small'), 'new small content\n');
    writeFileSync(join(dst, 'b-small'), 'old\n');
    const { child, exited } = spawnCli(['-a', '-W', '--inplace', '--bwlimit=2m', `${src}/`, `${dst}/`]);
    await waitFor(() => existsSync(join(dst, 'a-big')) && statSync(join(dst, 'a-big')).size >= 256 * 1024, child);
    rmSync(join(dst, 'b-small'));
    symlinkSync(join(canary, 'victim'), join(dst, 'b-small'));
    const r = await exited;
    expect(snapshot(canary)).toBe(before);
    expect(lstatSync(join(dst, 'b-small')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(dst, 'a-big')).equals(readFileSync(join(src, 'a-big')))).toBe(true);
    // Refused as an error of that file, reported with the path the user knows.
    expect(r.code, r.stderr).toBe(23);
    expect(r.stderr).toContain(join(dst, 'b-small'));
    expect(r.stderr).not.toMatch(/\/proc\/self\/fd/);
  }, 60_000);

  it('--partial-dir: a symlink planted as the partial directory is neither read, written nor deleted through', async () => {
    const base = join(tmp.path, 'partial-dir');
    const src = join(base, 'src');
    const dst = join(base, 'dst');
    const canary = join(base, 'canary');
    mkdirSync(src, { recursive: true });
    mkdirSync(dst);
    makeCanary(canary);
    // A partial file of f0000 as the old code would find it through the link: used as the
    // basis, then deleted after the transfer.
    writeFileSync(join(src, 'f0000'), 'canary f0000\nand more lines of the new version\n'.repeat(50));
    writeFileSync(join(dst, 'f0000'), 'old\n');
    const before = snapshot(canary);
    symlinkSync(canary, join(dst, '.part'));
    const r = await runCli(['-a', '--no-whole-file', '--partial-dir=.part', `${src}/`, `${dst}/`]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dst, 'f0000')).equals(readFileSync(join(src, 'f0000')))).toBe(true);
    expect(lstatSync(join(dst, '.part')).isSymbolicLink()).toBe(true);
    expect(snapshot(canary)).toBe(before);

    // Interrupted: the data received so far must not be kept through the link.
    writeRandomFile(join(src, 'big'), 8 * 1024 * 1024);
    const { child, exited } = spawnCli(['-a', '--partial-dir=.part', '--bwlimit=4m', `${src}/`, `${dst}/`]);
    await waitFor(() => readdirSync(dst).some((n) => n.startsWith('.big.deltasync-') && statSync(join(dst, n)).size >= 512 * 1024), child);
    child.kill('SIGTERM');
    const killed = await exited;
    expect(killed.code).toBe(20);
    expect(snapshot(canary)).toBe(before);
    expect(readdirSync(dst).filter((n) => n.includes('.deltasync-'))).toEqual([]);
  }, 60_000);
});

/** Starts the CLI without waiting for it. */
function spawnCli(args: string[]): { child: ChildProcess; exited: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, XDG_CACHE_HOME: TEST_CACHE_HOME }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stderr })));
  return { child, exited };
}

/** Polls `cond` until it holds; fails if the child exits first or it takes too long. */
async function waitFor(cond: () => boolean, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (child.exitCode !== null) throw new Error(`the sync ended (code ${child.exitCode}) before the condition held`);
    if (Date.now() > deadline) throw new Error('timed out waiting for the transfer');
    await new Promise((r) => setTimeout(r, 10));
  }
}

