import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SYNC_IO_MAX, openFile, openRegularFile } from '../lib/fd-handle.js';
import { native } from '../lib/native.js';

const readCached = (native as unknown as { readCached: (fd: number, b: Uint8Array, o: number, l: number, p: number) => number }).readCached;

/** Drops the file's pages (or 4 KiB pages [first, first + count)) from the page cache: dd's nocache is posix_fadvise(DONTNEED). */
function dropCache(path: string, first?: number, count?: number): void {
  execFileSync('sync', [path]);
  const range = first === undefined ? ['count=0'] : ['bs=4096', `skip=${first}`, `count=${count}`];
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'of=/dev/null', 'status=none', ...range]);
}

/**
 * Drops the pages and returns what an RWF_NOWAIT read of the whole file then gets: under load (other test files writing) the kernel
 * now and then keeps a page the first time, which says nothing about the code under test.
 */
function dropCacheUntilCold(fd: number, path: string, size: number, first?: number, count?: number): number {
  const probe = Buffer.alloc(size);
  let got = size;
  for (let i = 0; i < 5 && got >= size; i++) {
    dropCache(path, first, count);
    got = readCached(fd, probe, 0, size, 0);
  }
  return got;
}

const dir = mkdtempSync(join(tmpdir(), 'deltasync-fdh-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('FdHandle', () => {
  it('reads and writes the same bytes below and above the synchronous limit', async () => {
    for (const size of [0, 1, SYNC_IO_MAX, SYNC_IO_MAX + 1, 3 * SYNC_IO_MAX + 17]) {
      const data = randomBytes(size);
      const path = join(dir, `rw-${size}`);
      const out = await openFile(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        const { bytesWritten } = await out.write(data, 0, size, 0);
        expect(bytesWritten).toBe(size);
        const back = Buffer.alloc(size + 10);
        const { bytesRead } = await out.read(back, 0, back.length, 0);
        expect(bytesRead).toBe(size);
        expect(back.subarray(0, size).equals(data)).toBe(true);
        expect(Number((await out.stat({ bigint: true })).size)).toBe(size);
        await out.truncate(1);
        expect((await out.stat()).size).toBe(1); // ftruncate extends an empty file too
      } finally {
        await out.close();
      }
      expect(readFileSync(path).length).toBe(1);
    }
  });

  it('is closed once: fd -1 afterwards, a second close does nothing, later calls fail EBADF', async () => {
    const path = join(dir, 'closed');
    writeFileSync(path, 'x');
    const fh = await openFile(path, constants.O_RDONLY);
    expect(fh.fd).toBeGreaterThanOrEqual(0);
    await fh.close();
    expect(fh.fd).toBe(-1);
    await fh.close();
    await expect(fh.read(Buffer.alloc(1), 0, 1, 0)).rejects.toMatchObject({ code: 'EBADF' });
    await expect(fh.stat()).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('openRegularFile refuses a FIFO without blocking on it, and a directory', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    // No writer ever opens the FIFO: a blocking open would hang the test (and the sync's JS thread).
    await expect(openRegularFile(fifo)).rejects.toThrow(/no longer a regular file/);
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    await expect(openRegularFile(sub)).rejects.toThrow(/no longer a regular file/);
    await expect(openRegularFile(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    const file = join(dir, 'plain');
    writeFileSync(file, 'plain bytes');
    const fh = await openRegularFile(file);
    try {
      const buf = Buffer.alloc(32);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      expect(buf.subarray(0, bytesRead).toString()).toBe('plain bytes');
    } finally {
      await fh.close();
    }
  });

  it('reads a cold or partly cached file whole, without waiting for the disk on the JS thread', async () => {
    const size = 200 * 1024;
    const data = randomBytes(size);
    const path = join(dir, 'cold');
    writeFileSync(path, data);
    const fh = await openFile(path, constants.O_RDONLY);
    try {
      const probe = Buffer.alloc(size);
      // Not cached: the addon's RWF_NOWAIT read declines (-1) or takes only what is cached.
      expect(dropCacheUntilCold(fh.fd, path, size)).toBeLessThan(size);
      const cold = Buffer.alloc(size + 1);
      expect((await fh.read(cold, 0, size + 1, 0)).bytesRead).toBe(size);
      expect(cold.subarray(0, size).equals(data)).toBe(true);
      // Now cached: the whole read happens right there.
      expect(readCached(fh.fd, probe, 0, size, 0)).toBe(size);
      expect(probe.equals(data)).toBe(true);
      // Second half dropped: the cached half is read at once, the rest on the pool.
      expect(dropCacheUntilCold(fh.fd, path, size, 25, 25)).toBeLessThan(size);
      const part = Buffer.alloc(size);
      expect((await fh.read(part, 0, size, 0)).bytesRead).toBe(size);
      expect(part.equals(data)).toBe(true);
      // At the end of the file: 0, and a read past it asks for nothing more.
      expect(readCached(fh.fd, probe, 0, 10, size)).toBe(0);
      expect((await fh.read(probe, 0, 10, size)).bytesRead).toBe(0);
    } finally {
      await fh.close();
    }
    expect(() => readCached(-1 as number, Buffer.alloc(1), 0, 1, 0)).toThrow();
    expect(() => readCached(0, Buffer.alloc(1), 1, 1, 0)).toThrow(/within the buffer/);
  });
});
