// Range copies (copy_file_range / pread+pwrite / FICLONERANGE) against a Buffer model of the
// destination, across methods, filesystems and failure modes.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { cloneFileRange, copyFileRange, copyRange, nativeFileOps } from '../lib/fileops.js';
import type { CopyMethod } from '../lib/fileops.js';

let dir: string;
const fds: number[] = [];

function openFd(path: string, flags: string): number {
  const fd = openSync(path, flags);
  fds.push(fd);
  return fd;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ds-fileops-'));
});

afterEach(() => {
  for (const fd of fds.splice(0)) {
    try {
      closeSync(fd);
    } catch {
      // already closed by the test
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Applies a copy to the model: what the destination must hold afterwards. */
function modelCopy(src: Buffer, dst: Buffer, offIn: number, offOut: number, length: number): Buffer {
  const n = Math.max(0, Math.min(length, src.length - offIn));
  const out = Buffer.alloc(Math.max(dst.length, n > 0 ? offOut + n : dst.length));
  dst.copy(out);
  if (n > 0) src.copy(out, offOut, offIn, offIn + n);
  return out;
}

const SRC_SIZE = 3 * 1024 * 1024 + 12345;
const CASES: [number, number, number][] = [
  [0, 0, SRC_SIZE], // whole file
  [1, 0, 4095], // odd offsets and lengths
  [4097, 8193, 1_000_003],
  [SRC_SIZE - 10, 77, 10], // exactly to the end
  [SRC_SIZE - 10, 77, 1000], // past the end: copies 10
  [SRC_SIZE, 5, 100], // at the end: nothing
  [SRC_SIZE + 4096, 5, 100], // beyond the end: nothing
  [12345, 2 * 1024 * 1024 + 1, 1024 * 1024 + 7], // destination grows past its end
  [0, 0, 0], // zero length
  [333, 1024 * 1024 - 1, 2 * 1024 * 1024 + 2], // spans several 1 MiB fallback buffers
];

describe.each<CopyMethod>(['auto', 'copy_file_range', 'readwrite'])('copyFileRange (%s)', (method) => {
  it('copies odd ranges, clipped at the end of the source, without moving file positions', async () => {
    expect(nativeFileOps()).toBe(true);
    const src = randomBytes(SRC_SIZE);
    writeFileSync(join(dir, 'src'), src);
    let model = randomBytes(2 * 1024 * 1024 + 3);
    writeFileSync(join(dir, 'dst'), model);
    const fdIn = openFd(join(dir, 'src'), 'r');
    const fdOut = openFd(join(dir, 'dst'), 'r+');
    for (const [offIn, offOut, length] of CASES) {
      const n = await copyFileRange(fdIn, offIn, fdOut, offOut, length, { method });
      expect(n, `copy ${offIn} -> ${offOut} (${length})`).toBe(Math.max(0, Math.min(length, SRC_SIZE - offIn)));
      model = modelCopy(src, model, offIn, offOut, length);
      expect(readFileSync(join(dir, 'dst')).equals(model), `content after ${offIn} -> ${offOut} (${length})`).toBe(true);
    }
    // Positional: the descriptors' own offsets never moved.
    const probe = Buffer.alloc(4);
    const { readSync } = await import('node:fs');
    expect(readSync(fdIn, probe, 0, 4, null)).toBe(4);
    expect(probe.equals(src.subarray(0, 4))).toBe(true);
  });
});

describe('copyFileRange', () => {
  it('64 MiB, by copy_file_range and by the read/write fallback, off the JS thread', async () => {
    const size = 64 * 1024 * 1024;
    const src = randomBytes(size);
    writeFileSync(join(dir, 'src'), src);
    for (const method of ['auto', 'readwrite'] as const) {
      const out = join(dir, `dst-${method}`);
      const fdIn = openFd(join(dir, 'src'), 'r');
      const fdOut = openFd(out, 'w');
      let ticks = 0;
      const timer = setInterval(() => ticks++, 0);
      const n = await copyFileRange(fdIn, 0, fdOut, 0, size, { method });
      clearInterval(timer);
      expect(n).toBe(size);
      expect(readFileSync(out).equals(src)).toBe(true);
      if (method === 'readwrite') expect(ticks).toBeGreaterThan(0); // the event loop ran meanwhile
    }
  });

  it('falls back to read/write across filesystems (copy_file_range alone refuses)', async () => {
    const shm = '/dev/shm';
    if (!existsSync(shm) || statSync(shm).dev === statSync(dir).dev) return; // no second filesystem here
    const other = mkdtempSync(join(shm, 'ds-fileops-'));
    try {
      const src = randomBytes(5 * 1024 * 1024 + 1);
      writeFileSync(join(other, 'src'), src);
      const fdIn = openFd(join(other, 'src'), 'r');
      const fdOut = openFd(join(dir, 'dst'), 'w');
      await expect(copyFileRange(fdIn, 0, fdOut, 0, src.length, { method: 'copy_file_range' })).rejects.toMatchObject({ code: 'EXDEV' });
      expect(await copyFileRange(fdIn, 3, fdOut, 0, src.length, { method: 'auto' })).toBe(src.length - 3);
      expect(readFileSync(join(dir, 'dst')).equals(src.subarray(3))).toBe(true);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('copies within one file when the ranges do not overlap, refuses when they do', async () => {
    const src = randomBytes(1024 * 1024);
    writeFileSync(join(dir, 'f'), src);
    const fd = openFd(join(dir, 'f'), 'r+');
    expect(await copyFileRange(fd, 0, fd, 1024 * 1024, 1024 * 1024)).toBe(1024 * 1024);
    expect(readFileSync(join(dir, 'f')).equals(Buffer.concat([src, src]))).toBe(true);
    for (const method of ['auto', 'readwrite'] as const) {
      await expect(copyFileRange(fd, 0, fd, 100, 1000, { method })).rejects.toMatchObject({ code: 'EINVAL' });
    }
  });

  it('rejects cleanly on bad descriptors and bad arguments', async () => {
    writeFileSync(join(dir, 'src'), randomBytes(10_000));
    const fdIn = openFd(join(dir, 'src'), 'r');
    const fdOut = openFd(join(dir, 'dst'), 'w');
    for (const method of ['auto', 'readwrite'] as const) {
      await expect(copyFileRange(999_999, 0, fdOut, 0, 10, { method })).rejects.toMatchObject({ code: 'EBADF', syscall: expect.any(String) });
      await expect(copyFileRange(fdIn, 0, 999_999, 0, 10, { method })).rejects.toMatchObject({ code: 'EBADF' });
      // Destination open read-only, source open write-only.
      await expect(copyFileRange(fdIn, 0, fdIn, 20_000, 10, { method })).rejects.toMatchObject({ code: 'EBADF' });
      const wo = openFd(join(dir, 'wo'), 'w');
      await expect(copyFileRange(wo, 0, fdOut, 0, 10, { method })).rejects.toMatchObject({ code: 'EBADF' });
      // O_APPEND would ignore the offset: refused.
      const app = openFd(join(dir, 'app'), 'a');
      await expect(copyFileRange(fdIn, 0, app, 5, 10, { method })).rejects.toMatchObject({ code: 'EBADF' });
      // A directory as the source.
      const d = openFd(dir, 'r');
      await expect(copyFileRange(d, 0, fdOut, 0, 10, { method })).rejects.toMatchObject({ code: expect.stringMatching(/^E(ISDIR|INVAL|BADF)$/) });
    }
    await expect(copyFileRange(-1, 0, fdOut, 0, 10)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(copyFileRange(fdIn, -1, fdOut, 0, 10)).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(copyFileRange(fdIn, 0, fdOut, 0, 2 ** 53)).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(copyFileRange(fdIn, 0.5, fdOut, 0, 1)).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(copyFileRange(fdIn, 0, fdOut, 0, 1, { method: 'bogus' as CopyMethod })).rejects.toMatchObject({ code: 'ERR_USAGE' });
    await expect(copyFileRange('x' as unknown as number, 0, fdOut, 0, 1)).rejects.toMatchObject({ code: 'ERR_USAGE' });
    // Errors look like Node's system errors.
    const err = await copyFileRange(999_999, 0, fdOut, 0, 10).catch((e: unknown) => e as NodeJS.ErrnoException);
    expect(err).toBeInstanceOf(Error);
    expect(err.errno).toBe(-9);
    expect(err.message).toMatch(/^EBADF: /);
  });

  it('accepts FileHandles', async () => {
    const src = randomBytes(100_000);
    writeFileSync(join(dir, 'src'), src);
    const a = await open(join(dir, 'src'), 'r');
    const b = await open(join(dir, 'dst'), 'w');
    try {
      expect(await copyFileRange(a, 10, b, 0, 50_000)).toBe(50_000);
    } finally {
      await a.close();
      await b.close();
    }
    expect(readFileSync(join(dir, 'dst')).equals(src.subarray(10, 50_010))).toBe(true);
  });
});

describe('copyRange', () => {
  it('copies in pieces with progress, and stops on abort', async () => {
    const src = randomBytes(1024 * 1024 + 5);
    writeFileSync(join(dir, 'src'), src);
    const fdIn = openFd(join(dir, 'src'), 'r');
    const fdOut = openFd(join(dir, 'dst'), 'w');
    const progress: number[] = [];
    const r = await copyRange(fdIn, 5, fdOut, 0, src.length, { pieceBytes: 300_000, onProgress: (n) => progress.push(n) });
    expect(r).toEqual({ bytes: src.length - 5, clonedBytes: 0, copiedBytes: src.length - 5 });
    expect(progress).toEqual([300_000, 600_000, 900_000, src.length - 5]);
    expect(readFileSync(join(dir, 'dst')).equals(src.subarray(5))).toBe(true);
    const ac = new AbortController();
    ac.abort();
    await expect(copyRange(fdIn, 0, fdOut, 0, 100, { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('on a filesystem without reflinks, clones nothing and copies everything', async () => {
    const src = randomBytes(256 * 1024);
    writeFileSync(join(dir, 'src'), src);
    const fdIn = openFd(join(dir, 'src'), 'r');
    const fdOut = openFd(join(dir, 'dst'), 'w');
    const supported = await cloneFileRange(fdIn, 0, fdOut, 0, 65536);
    if (supported) return; // this /tmp has reflinks: covered by the XFS tests
    expect(await cloneFileRange(fdIn, 0, fdOut, 0, 0)).toBe(true); // nothing to clone
    const r = await copyRange(fdIn, 4096, fdOut, 0, 200_000);
    expect(r).toEqual({ bytes: 200_000, clonedBytes: 0, copiedBytes: 200_000 });
    expect(readFileSync(join(dir, 'dst')).subarray(0, 200_000).equals(src.subarray(4096, 204_096))).toBe(true);
    await expect(cloneFileRange(999_999, 0, fdOut, 0, 4096)).rejects.toMatchObject({ code: 'EBADF' });
  });
});

// Reflinks need a filesystem that has them: a loop-mounted XFS image when this runs as root
// with xfsprogs installed (CI); skipped otherwise.
describe('reflinks (XFS loop mount)', () => {
  let mnt: string | undefined;
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'ds-fileops-xfs-'));
    const canMount = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v mkfs.xfs']).status === 0;
    if (!canMount) return;
    const img = join(work, 'xfs.img');
    const point = join(work, 'mnt');
    mkdirSync(point);
    try {
      execFileSync('truncate', ['-s', '320M', img]);
      execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
      execFileSync('mount', ['-o', 'loop', img, point], { stdio: 'ignore' });
      mnt = point;
    } catch {
      mnt = undefined;
    }
  });
  afterAll(() => {
    if (mnt) spawnSync('umount', [mnt]);
    rmSync(work, { recursive: true, force: true });
  });

  it('clones aligned ranges, refuses unaligned ones, and copyRange mixes both', async (ctx) => {
    if (!mnt) ctx.skip();
    const src = randomBytes(1024 * 1024 + 1000); // ends with a partial block
    writeFileSync(join(mnt!, 'src'), src);
    const fdIn = openFd(join(mnt!, 'src'), 'r');
    const fdOut = openFd(join(mnt!, 'dst'), 'w+');
    expect(await cloneFileRange(fdIn, 4096, fdOut, 8192, 65536)).toBe(true);
    expect(await cloneFileRange(fdIn, 4097, fdOut, 8192, 65536)).toBe(false);
    expect(readFileSync(join(mnt!, 'dst')).subarray(8192, 8192 + 65536).equals(src.subarray(4096, 4096 + 65536))).toBe(true);

    // Same alignment on both sides, odd start and length: copy head, clone middle, copy tail.
    const fdOut2 = openFd(join(mnt!, 'dst2'), 'w+');
    const r = await copyRange(fdIn, 100, fdOut2, 4096 + 100, 500_000);
    expect(r.bytes).toBe(500_000);
    expect(r.clonedBytes).toBeGreaterThan(400_000);
    expect(r.clonedBytes % 4096).toBe(0);
    expect(r.copiedBytes).toBe(500_000 - r.clonedBytes);
    expect(readFileSync(join(mnt!, 'dst2')).subarray(4196, 4196 + 500_000).equals(src.subarray(100, 500_100))).toBe(true);

    // To the end of the source: the partial last block is cloned too.
    const fdOut3 = openFd(join(mnt!, 'dst3'), 'w+');
    const r3 = await copyRange(fdIn, 0, fdOut3, 0, src.length + 5000);
    expect(r3).toEqual({ bytes: src.length, clonedBytes: src.length, copiedBytes: 0 });
    expect(readFileSync(join(mnt!, 'dst3')).equals(src)).toBe(true);

    // Offsets of different alignment: nothing can be shared.
    const fdOut4 = openFd(join(mnt!, 'dst4'), 'w+');
    const r4 = await copyRange(fdIn, 1, fdOut4, 0, 300_000);
    expect(r4).toEqual({ bytes: 300_000, clonedBytes: 0, copiedBytes: 300_000 });
    expect(readFileSync(join(mnt!, 'dst4')).equals(src.subarray(1, 300_001))).toBe(true);
  });

  it('reports ENOSPC with the bytes copied so far', async (ctx) => {
    if (!mnt) ctx.skip();
    const big = join(work, 'big');
    writeFileSync(big, randomBytes(32 * 1024 * 1024));
    const avail = () => Number(execFileSync('df', ['--output=avail', '-B1', mnt!]).toString().trim().split('\n')[1]);
    const fdIn = openFd(big, 'r');
    const outs = { auto: openFd(join(mnt!, 'full-auto'), 'w'), readwrite: openFd(join(mnt!, 'full-readwrite'), 'w') };
    // Leave about 8 MiB free, then copy 32 MiB into it.
    execFileSync('fallocate', ['-l', String(avail() - 8 * 1024 * 1024), join(mnt!, 'filler')]);
    try {
      for (const method of ['auto', 'readwrite'] as const) {
        const fdOut = outs[method];
        const err = await copyFileRange(fdIn, 0, fdOut, 0, 32 * 1024 * 1024, { method }).catch(
          (e: unknown) => e as NodeJS.ErrnoException & { bytesCopied: number },
        );
        expect(err).toMatchObject({ code: 'ENOSPC', errno: -28 });
        expect(err.bytesCopied).toBeLessThan(32 * 1024 * 1024);
        execFileSync('truncate', ['-s', '0', join(mnt!, `full-${method}`)]);
      }
    } finally {
      rmSync(join(mnt!, 'filler'), { force: true });
    }
  });
});

describe('without the native functions (an old prebuild)', () => {
  it('copies with JS reads and writes and never claims a clone', async () => {
    vi.resetModules();
    vi.doMock('../lib/native.js', async (importOriginal) => {
      const mod = await importOriginal<typeof import('../lib/native.js')>();
      const { copyFileRange: _c, cloneFileRange: _k, ...rest } = mod.native as unknown as Record<string, unknown>;
      return { native: rest };
    });
    try {
      const js = await import('../lib/fileops.js');
      expect(js.nativeFileOps()).toBe(false);
      const src = randomBytes(3 * 1024 * 1024 + 3);
      writeFileSync(join(dir, 'src'), src);
      let model = randomBytes(1000);
      writeFileSync(join(dir, 'dst'), model);
      const fdIn = openFd(join(dir, 'src'), 'r');
      const fdOut = openFd(join(dir, 'dst'), 'r+');
      for (const [offIn, offOut, length] of CASES) {
        expect(await js.copyFileRange(fdIn, offIn, fdOut, offOut, length)).toBe(Math.max(0, Math.min(length, src.length - offIn)));
        model = modelCopy(src, model, offIn, offOut, length);
      }
      expect(readFileSync(join(dir, 'dst')).equals(model)).toBe(true);
      expect(await js.cloneFileRange(fdIn, 0, fdOut, 0, 4096)).toBe(false);
      const r = await js.copyRange(fdIn, 0, fdOut, 0, 10_000);
      expect(r).toEqual({ bytes: 10_000, clonedBytes: 0, copiedBytes: 10_000 });
      await expect(js.copyFileRange(999_999, 0, fdOut, 0, 10)).rejects.toMatchObject({ code: 'EBADF' });
      await expect(js.copyFileRange(fdIn, 0, fdOut, 0, 10, { method: 'copy_file_range' })).rejects.toMatchObject({ code: 'ENOSYS' });
    } finally {
      vi.doUnmock('../lib/native.js');
      vi.resetModules();
    }
  });
});
