// Test trees and runners for the sync tests: a tree of awkward cases, a copy of a real system
// directory, the CLI as a child process, and rsync as the reference.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, lutimesSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(REPO, 'bin', 'deltasync.js');
export const FAKE_RSH = join(REPO, 'test', 'fixtures', 'fake-rsh.sh');
/**
 * Where the receivers of the tests keep their default signature cache: one directory under the
 * system temp dir shared by all test processes (the cache is made for that), never the user's
 * ~/.cache.
 */
export const TEST_CACHE_HOME = join(tmpdir(), 'deltasync-test-cache-home');
/**
 * Remote program for the fake and real remote shells: this checkout, with this node. The
 * remote shell runs it through sh, so the cache location can be set in front (ssh does not
 * pass the environment on).
 */
export const REMOTE_PATH = `XDG_CACHE_HOME=${TEST_CACHE_HOME} ${process.execPath} ${BIN}`;

/** A fresh directory under the system temp dir; removed by the returned function. */
export function tempDir(prefix: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), `ds-${prefix}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}


/** Runs `deltasync ARGS` and collects its output. */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, XDG_CACHE_HOME: TEST_CACHE_HOME, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

/** Parses the JSON object `--json` prints (the last line of stdout). */
export function jsonStats(r: RunResult): Record<string, number | string | boolean | null> {
  const lines = r.stdout.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1] ?? '') as Record<string, number | string | boolean | null>;
  } catch {
    throw new Error(`no JSON in output (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** Runs rsync; throws on a non-zero exit. */
export function rsync(args: string[], cwd?: string): string {
  const r = spawnSync('rsync', args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`rsync ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/**
 * Differences between two trees as rsync sees them with checksums, permissions, times, owner,
 * group, links and devices: the lines of `rsync -anci --delete A/ B/` (empty: identical).
 */
export function treeDiff(a: string, b: string): string[] {
  return rsync(['-anci', '--delete', `${a}/`, `${b}/`])
    .split('\n')
    .filter((l) => l.length > 0);
}

/** Writes `size` pseudo-random bytes in 1 MiB pieces. */
export function writeRandomFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(1024 * 1024, size - done);
      writeSync(fd, randomBytes(n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * A tree of the cases a sync gets wrong: names with spaces, newlines, non-ASCII and leading
 * dashes, empty directories, empty files, symlinks (relative, absolute, dangling, to a
 * directory), a FIFO and (as root) a device node, unusual modes (including a read-only directory with contents), fixed mtimes
 * with nanoseconds, deep nesting and a large random file.
 */
export function buildAwkwardTree(root: string, bigFileBytes = 24 * 1024 * 1024): void {
  const file = (rel: string, content: string | Buffer, mode?: number): void => {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content);
    if (mode !== undefined) chmodSync(p, mode);
  };
  mkdirSync(root, { recursive: true });
  file('plain.txt', 'hello, world\n');
  file('with space.txt', 'spaces\n');
  file('new\nline', 'a newline in the name\n');
  file('tab\there', 'tab\n');
  file('ünïcödé-名前.txt', 'non-ASCII name\n');
  file('-leading-dash', 'dash\n');
  file('#hash;semi', 'punct\n');
  file("quote'single\"double", 'quotes\n');
  file('back\\slash', 'backslash\n');
  file('x'.repeat(200), 'long name\n');
  file('empty-file', '');
  file('exec.sh', '#!/bin/sh\necho hi\n', 0o755);
  file('private', 'secret\n', 0o600);
  file('readonly', 'ro\n', 0o444);
  file('setgid-file', 'sg\n', 0o2755);
  file('sub/inner.txt', 'inner\n');
  file('sub/deeper/deepest/leaf.txt', 'leaf\n');
  file('ro-dir/inside.txt', 'inside a read-only dir\n');
  mkdirSync(join(root, 'empty-dir'));
  mkdirSync(join(root, 'sub/empty-sub'));
  symlinkSync('plain.txt', join(root, 'link-rel'));
  symlinkSync('/etc/hostname', join(root, 'link-abs'));
  symlinkSync('does/not/exist', join(root, 'link-dangling'));
  symlinkSync('sub', join(root, 'link-dir'));
  symlinkSync('../plain.txt', join(root, 'sub/link-up'));
  writeRandomFile(join(root, 'big.bin'), bigFileBytes);
  // A FIFO always; a device node when we may make one (root), as rsync -a copies both.
  spawnSync('mkfifo', ['-m', '0640', join(root, 'fifo')]);
  if (process.getuid?.() === 0) spawnSync('mknod', ['-m', '0600', join(root, 'chardev'), 'c', '1', '3']);
  // Fixed times with nanoseconds, on files, a symlink and directories (set last, deepest first).
  utimesSync(join(root, 'plain.txt'), 1_600_000_000.123456, 1_600_000_000.123456);
  utimesSync(join(root, 'sub/inner.txt'), 1_500_000_000, 1_500_000_000);
  lutimesSync(join(root, 'link-rel'), 1_400_000_000, 1_400_000_000);
  chmodSync(join(root, 'ro-dir'), 0o555);
  utimesSync(join(root, 'sub/deeper'), 1_300_000_000, 1_300_000_000);
  utimesSync(join(root, 'empty-dir'), 1_200_000_000, 1_200_000_000);
}

/** A copy of a real system directory (cp -a), the bulk of the e2e tests. */
export function copySystemTree(dest: string, source = '/usr/share/doc'): void {
  const r = spawnSync('cp', ['-a', source, dest], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -a ${source} ${dest} failed: ${r.stderr}`);
}

/** Itemize lines (`-i` output), sorted, without rsync's/our own header and summary lines. */
export function itemLines(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => /^([<>ch.*][fdLDS]|\*deleting)/.test(l))
    .sort();
}
