// Faults from the file system and the connection, each with the exit code rsync would use and a
// message naming the path, the old file intact: a source rewritten while it is read (torn
// reads), a full disk, permission denied, a read-only file system, a directory where a file is
// expected (and the reverse), and a remote shell that dies mid-transfer.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWhole } from '../lib/sync/sender.js';
import { seededBytes } from './helpers/bytes.js';
import { FAKE_RSH, REMOTE_PATH, TEST_CACHE_HOME, runCli, tempDir, treeDiff } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
const mounts: string[] = [];

beforeAll(() => {
  tmp = tempDir('faults-fs');
});

afterAll(() => {
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  tmp.cleanup();
});

/** Temp names the receiver uses (lib/sync/receiver.ts tempPathFor). */
function tempsBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) => /(^|\/)\.[^/]+\.deltasync-[0-9a-f]{6}$/.test(p));
}

const BLOCK = 4096;

/**
 * A writer that keeps rewriting files block by block, each block stamped with the version it
 * belongs to: a copy that mixes versions is torn, one with a single version is a consistent
 * snapshot. Resolves once every file holds its first version.
 */
async function startRewriter(files: { path: string; blocks: number }[]): Promise<ChildProcess> {
  const script = `
    const fs = require('fs');
    const files = ${JSON.stringify(files)}.map((f) => ({ ...f, fd: fs.openSync(f.path, 'r+') }));
    const block = Buffer.alloc(${BLOCK});
    const write = (f, v, i) => {
      block.fill(v & 0xff);
      block.writeUInt32LE(v, 0);
      block.writeUInt32LE(i, 4);
      fs.writeSync(f.fd, block, 0, block.length, i * ${BLOCK});
    };
    for (const f of files) for (let i = 0; i < f.blocks; i++) write(f, 1, i);
    process.stdout.write('ready\\n');
    let v = 1;
    const pass = () => {
      v++;
      for (const f of files) for (let i = 0; i < f.blocks; i++) write(f, v, i);
      setImmediate(pass);
    };
    pass();
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`rewriter exited early (${code})`)));
  });
  return child;
}

/** The versions found in a copy written by the rewriter (one: consistent; more: torn). */
function versionsIn(data: Buffer): Set<number> {
  const seen = new Set<number>();
  for (let off = 0; off + 8 <= data.length; off += BLOCK) seen.add(data.readUInt32LE(off));
  return seen;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

/**
 * A file handle over memory whose content a "writer" replaces at chosen reads: every change
 * bumps the ctime, as a real write does.
 */
function changingHandle(versions: Buffer[], changeAtReads: number[]): { handle: Parameters<typeof readWhole>[0]; reads: () => number } {
  let version = 0;
  let reads = 0;
  const handle = {
    stat: async () => ({ size: BigInt(versions[version]!.length), mtimeNs: 1n, ctimeNs: BigInt(version), ino: 7n }),
    read: async (buf: Buffer, offset: number, length: number, position: number) => {
      if (changeAtReads.includes(reads++) && version + 1 < versions.length) version++;
      const data = versions[version]!;
      // Short reads, as from a pipe-like file system: a change can land between two of them.
      const n = Math.max(0, Math.min(length, 1000, data.length - position));
      data.copy(buf, offset, position, position + n);
      return { bytesRead: n, buffer: buf };
    },
  };
  return { handle: handle as unknown as Parameters<typeof readWhole>[0], reads: () => reads };
}

describe('reading a file that changes (the sender\'s stable read)', () => {
  const v = [Buffer.alloc(5000, 1), Buffer.alloc(5000, 2), Buffer.alloc(7000, 3), Buffer.alloc(5000, 4)];

  it('returns the file when it holds still', async () => {
    const { handle } = changingHandle(v, []);
    expect(await readWhole(handle, 1 << 20)).toEqual({ data: v[0] });
  });

  it('reads again once after a change and returns one consistent version', async () => {
    // The change lands mid-file: the first read holds blocks of two versions.
    const { handle } = changingHandle(v, [2]);
    const r = await readWhole(handle, 1 << 20);
    expect('data' in r && r.data.equals(v[1]!)).toBe(true);
  });

  it('reports a file that changes during both reads (a size change too) as changed', async () => {
    const { handle, reads } = changingHandle(v, [2, 8, 14]);
    expect(await readWhole(handle, 1 << 20)).toEqual({ changed: true });
    expect(reads()).toBeGreaterThanOrEqual(2);
  });

  it('leaves a file over the limit to the streamed path without reading it', async () => {
    const { handle, reads } = changingHandle(v, []);
    expect(await readWhole(handle, 4999)).toEqual({ tooBig: true });
    expect(reads()).toBe(0);
  });
});

describe('a source file that changes while it is read', () => {
  // Local (sender in process) and a pull (the sender is the remote server: its report crosses
  // the connection and still sets the client's exit code).
  for (const mode of ['local', 'pull'] as const) {
    it(`${mode}: reported as changed (exit 24), never installed torn; the rerun copies it`, async () => {
      const src = join(tmp.path, `torn-${mode}-src`);
      const dst = join(tmp.path, `torn-${mode}-dst`);
      mkdirSync(src);
      mkdirSync(dst);
      // big: streamed (over the sender's in-memory limit); small: read whole, reread once.
      const big = { path: join(src, 'big'), blocks: (12 * 1024 * 1024) / BLOCK };
      const small = { path: join(src, 'small'), blocks: 75 };
      const oldBig = seededBytes(big.blocks * BLOCK, 1);
      const oldSmall = seededBytes(small.blocks * BLOCK, 2);
      writeFileSync(big.path, Buffer.alloc(0));
      writeFileSync(small.path, Buffer.alloc(0));
      writeFileSync(join(dst, 'big'), oldBig);
      writeFileSync(join(dst, 'small'), oldSmall);
      // Old versions from long ago: same size as the new ones, so the quick check needs the mtime.
      for (const f of ['big', 'small']) utimesSync(join(dst, f), 1_600_000_000, 1_600_000_000);
      writeFileSync(join(src, 'steady'), seededBytes(100_000, 3));
      const from = mode === 'pull' ? `host:${src}/` : `${src}/`;
      const remote = mode === 'pull' ? ['-e', FAKE_RSH, '--remote-path', REMOTE_PATH] : [];
      const writer = await startRewriter([big, small]);
      let r;
      try {
        // Slow enough that the big file is rewritten many times while it is sent.
        r = await runCli(['-a', '--bwlimit=6m', ...remote, from, dst]);
      } finally {
        await stop(writer);
      }
      expect(r.code, r.stderr).toBe(24);
      expect(r.stderr).toMatch(new RegExp(`file has changed during transfer: ${src}/+big`));
      // The streamed file could not be reread: the old version stays, whole.
      expect(readFileSync(join(dst, 'big')).equals(oldBig), 'big was replaced although it changed during the read').toBe(true);
      // The small one is the old version or one consistent version, never a mix.
      const gotSmall = readFileSync(join(dst, 'small'));
      if (!gotSmall.equals(oldSmall)) {
        expect(gotSmall.length).toBe(small.blocks * BLOCK);
        expect(versionsIn(gotSmall).size, 'small holds blocks of several versions (torn)').toBe(1);
      }
      expect(readFileSync(join(dst, 'steady')).equals(readFileSync(join(src, 'steady')))).toBe(true);
      expect(tempsBelow(dst)).toEqual([]);

      // Once the file holds still, the next run copies it. With -c: a snapshot of "small" taken
      // in the same second as the writer's last pass has the same size and mtime as the final
      // version, which the quick check cannot tell apart (as with rsync).
      const again = await runCli(['-a', '-c', ...remote, from, dst]);
      expect(again.code, again.stderr).toBe(0);
      expect(treeDiff(src, dst)).toEqual([]);
    });
  }
});

const IS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

/** Mounts a tmpfs of `size` at `dir`; false when this machine does not let us. */
function mountTmpfs(dir: string, size: string): boolean {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return false;
  mounts.push(dir);
  return true;
}

const canMount = ((): boolean => {
  if (!IS_ROOT) return false;
  const dir = tempDir('mount-probe');
  const probe = join(dir.path, 'm');
  const ok = mountTmpfs(probe, '64k');
  if (ok) {
    spawnSync('umount', [probe]);
    mounts.pop();
  }
  dir.cleanup();
  return ok;
})();

interface Scenario {
  /** Builds a fresh src/ and dst/ under `base`; returns the destination directory. */
  setup: (base: string) => { src: string; dst: string };
  /** Sync flags, the same for rsync and deltasync. */
  flags: string[];
  /** Run both tools as this user. */
  uid?: number;
}

/**
 * Runs rsync and deltasync on two fresh copies of a scenario; rsync's exit code is the one
 * deltasync must give.
 */
async function againstRsync(name: string, sc: Scenario): Promise<{ rsyncCode: number | null; ds: Awaited<ReturnType<typeof runCli>>; dst: string; src: string }> {
  const ref = sc.setup(join(tmp.path, `${name}-rsync`));
  const ident = sc.uid !== undefined ? { uid: sc.uid, gid: sc.uid } : {};
  const rs = spawnSync('rsync', [...sc.flags, `${ref.src}/`, ref.dst], { encoding: 'utf8', ...ident });
  const mine = sc.setup(join(tmp.path, `${name}-ds`));
  const ds = await runCli([...sc.flags, `${mine.src}/`, mine.dst], ident);
  return { rsyncCode: rs.status, ds, dst: mine.dst, src: mine.src };
}

const OLD_BIG = seededBytes(100_000, 11);

/** src/big (new, 3 MB), src/ok; dst/big (old). `dstParent` may be a mount point. */
function bigUpdate(base: string, dstParent = base): { src: string; dst: string } {
  const src = join(base, 'src');
  const dst = join(dstParent, 'dst');
  mkdirSync(src, { recursive: true });
  mkdirSync(dst, { recursive: true });
  writeFileSync(join(src, 'big'), seededBytes(3_000_000, 12));
  writeFileSync(join(src, 'ok'), 'small file\n');
  writeFileSync(join(dst, 'big'), OLD_BIG);
  return { src, dst };
}

describe('file system faults: the path named, the old file intact, rsync\'s exit code', () => {
  it.skipIf(!canMount)('disk full (a 1 MiB tmpfs)', async () => {
    const r = await againstRsync('full', {
      setup: (base) => {
        mkdirSync(base, { recursive: true });
        mountTmpfs(join(base, 'mnt'), '1m');
        return bigUpdate(base, join(base, 'mnt'));
      },
      flags: ['-a'],
    });
    expect(r.ds.stderr).toMatch(new RegExp(`${r.dst}/big: no space left on device`));
    expect(readFileSync(join(r.dst, 'big')).equals(OLD_BIG)).toBe(true);
    expect(tempsBelow(r.dst)).toEqual([]);
    // rsync stops with 11 (file I/O error): a full disk fails every later file too.
    expect(r.ds.code, r.ds.stderr).toBe(r.rsyncCode);
  });

  it.skipIf(!canMount)('read-only file system (a tmpfs remounted ro)', async () => {
    const r = await againstRsync('erofs', {
      setup: (base) => {
        mkdirSync(base, { recursive: true });
        const mnt = join(base, 'mnt');
        mountTmpfs(mnt, '8m');
        const out = bigUpdate(base, mnt);
        const ro = spawnSync('mount', ['-o', 'remount,ro', mnt], { encoding: 'utf8' });
        if (ro.status !== 0) throw new Error(`remount ro failed: ${ro.stderr}`);
        return out;
      },
      flags: ['-a'],
    });
    expect(r.ds.stderr).toMatch(new RegExp(`${r.dst}/big: read-only file system`));
    expect(readFileSync(join(r.dst, 'big')).equals(OLD_BIG)).toBe(true);
    expect(r.ds.code, r.ds.stderr).toBe(r.rsyncCode);
    expect(r.rsyncCode).toBe(23);
  });

  it.skipIf(!IS_ROOT)('permission denied (a destination directory the user may not write, as nobody)', async () => {
    const r = await againstRsync('eacces', {
      setup: (base) => {
        const out = bigUpdate(base);
        // Root owns dst (0755); nobody may read everything but write nothing there.
        for (const d of [tmp.path, base, out.src, out.dst]) chmodSync(d, 0o755);
        for (const f of ['big', 'ok']) chmodSync(join(out.src, f), 0o644);
        return out;
      },
      flags: ['-rt'],
      uid: NOBODY,
    });
    expect(r.ds.stderr).toMatch(new RegExp(`${r.dst}/big: permission denied`));
    expect(readFileSync(join(r.dst, 'big')).equals(OLD_BIG)).toBe(true);
    expect(r.ds.code, r.ds.stderr).toBe(r.rsyncCode);
    expect(r.rsyncCode).toBe(23);
  });

  it('a non-empty directory where a file is expected, and a file where a directory is expected', async () => {
    const r = await againstRsync('dir-file', {
      setup: (base) => {
        const src = join(base, 'src');
        const dst = join(base, 'dst');
        mkdirSync(join(src, 'y'), { recursive: true });
        mkdirSync(join(dst, 'x'), { recursive: true });
        writeFileSync(join(src, 'x'), 'a file now\n');
        writeFileSync(join(src, 'y', 'f'), 'inside the new directory\n');
        writeFileSync(join(dst, 'x', 'keep'), 'kept\n');
        writeFileSync(join(dst, 'y'), 'a file before\n');
        return { src, dst };
      },
      flags: ['-a'],
    });
    // The directory is not deleted without --delete (rsync: "could not make way").
    expect(r.ds.stderr).toMatch(new RegExp(`${r.dst}/x`));
    expect(readFileSync(join(r.dst, 'x', 'keep'), 'utf8')).toBe('kept\n');
    // A plain file gives way to the directory, as with rsync.
    expect(readFileSync(join(r.dst, 'y', 'f'), 'utf8')).toBe('inside the new directory\n');
    expect(r.ds.code, r.ds.stderr).toBe(r.rsyncCode);
    expect(r.rsyncCode).toBe(23);
  });
});

/**
 * A remote shell whose connection drops once the transfer is under way: it runs the fake
 * remote shell in its own process group, waits until a temp file appears in DS_WATCH_DIR, kills
 * the group (the remote command dies with the connection) and exits 255 as ssh does.
 */
function dyingRsh(): string {
  const path = join(tmp.path, 'dying-rsh.sh');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      // Background jobs of a script get /dev/null as stdin: hand the real one over on fd 3.
      'exec 3<&0',
      `setsid sh '${FAKE_RSH}' "$@" 0<&3 3<&- &`,
      'pid=$!',
      'n=0',
      'until find "$DS_WATCH_DIR" -name ".*" -type f 2>/dev/null | grep -q . || [ $n -ge 400 ]; do sleep 0.05; n=$((n+1)); done',
      'sleep 0.3',
      'kill -9 -$pid',
      'exit 255',
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return path;
}

describe('the connection to the remote end breaks mid-transfer', () => {
  for (const direction of ['push', 'pull'] as const) {
    it(`${direction}: a clear message, rsync's exit code (255 from the remote shell), the old file intact`, async () => {
      const rsh = dyingRsh();
      const run = async (tool: 'rsync' | 'ds'): Promise<{ code: number | null; stderr: string; dst: string }> => {
        const base = join(tmp.path, `pipe-${direction}-${tool}`);
        const { src, dst } = bigUpdate(base);
        writeFileSync(join(src, 'big'), seededBytes(6_000_000, 13));
        const from = direction === 'pull' ? `host:${src}/` : `${src}/`;
        const to = direction === 'push' ? `host:${dst}` : dst;
        const env = { ...process.env, DS_WATCH_DIR: dst, XDG_CACHE_HOME: TEST_CACHE_HOME };
        if (tool === 'rsync') {
          const r = spawnSync('rsync', ['-a', '--bwlimit=1m', '-e', rsh, from, to], { encoding: 'utf8', env, timeout: 60_000 });
          return { code: r.status, stderr: r.stderr, dst };
        }
        const r = await runCli(['-a', '--bwlimit=1m', '-e', rsh, '--remote-path', REMOTE_PATH, from, to], { env });
        return { code: r.code, stderr: r.stderr, dst };
      };
      const ref = await run('rsync');
      const ds = await run('ds');
      expect(ds.stderr).toMatch(/closed|lost|broken/i);
      expect(ds.stderr).not.toMatch(/internal error/);
      expect(readFileSync(join(ds.dst, 'big')).equals(OLD_BIG)).toBe(true);
      expect(ds.code, ds.stderr).toBe(ref.code);
      expect(ref.code).toBe(255);
      // The next run completes and cleans up what the dead end left.
      const again = await runCli(['-a', '-e', FAKE_RSH, '--remote-path', REMOTE_PATH, direction === 'pull' ? `host:${join(ds.dst, '..', 'src')}/` : `${join(ds.dst, '..', 'src')}/`, direction === 'push' ? `host:${ds.dst}` : ds.dst]);
      expect(again.code, again.stderr).toBe(0);
      expect(tempsBelow(ds.dst)).toEqual([]);
      expect(treeDiff(join(ds.dst, '..', 'src'), ds.dst)).toEqual([]);
    });
  }
});
