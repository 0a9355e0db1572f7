import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SYNC_IO_MAX, openFile, openRegularFile } from '../lib/fd-handle.js';

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
});
