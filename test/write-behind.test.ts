// The receiver's write-behind: a file's received bytes land in order at their positions, big
// files in batches written on the thread pool (one at a time), a small file in one write on the
// JS thread, and a failed write is reported, never lost.
import { constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FdHandle, openFile, SYNC_IO_MAX } from '../lib/fd-handle.js';
import { BATCH_BYTES, WriteBehind } from '../lib/sync/write-behind.js';
import { seededBytes } from './helpers/bytes.js';
import { tempDir } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
beforeAll(() => {
  tmp = tempDir('write-behind');
});
afterAll(() => tmp.cleanup());

/** Records the calls a WriteBehind makes on its handle. */
class RecordingHandle extends FdHandle {
  readonly calls: Array<{ kind: 'write' | 'writev'; bytes: number; position: number; parts: number }> = [];
  inFlight = 0;
  maxInFlight = 0;
  override async write(buffer: Uint8Array, offset: number, length: number, position: number | null) {
    this.calls.push({ kind: 'write', bytes: length, position: position ?? -1, parts: 1 });
    return super.write(buffer, offset, length, position);
  }
  override async writev(buffers: Buffer[], position: number): Promise<number> {
    this.calls.push({ kind: 'writev', bytes: buffers.reduce((n, b) => n + b.length, 0), position, parts: buffers.length });
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      return await super.writev(buffers, position);
    } finally {
      this.inFlight--;
    }
  }
}

async function recordingFile(name: string, flags = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL): Promise<{ path: string; fh: RecordingHandle }> {
  const path = join(tmp.path, name);
  const plain = await openFile(path, flags, 0o600);
  return { path, fh: new RecordingHandle(plain.fd) };
}

describe('WriteBehind', () => {
  it('writes a big file in batches of at least BATCH_BYTES on the pool, one at a time, from its start position', async () => {
    const { path, fh } = await recordingFile('big');
    const head = seededBytes(1000, 1);
    await fh.write(head, 0, head.length, 0);
    const pieces = Array.from({ length: 37 }, (_, i) => seededBytes(100_000 + i * 997, 10 + i));
    const landed: number[] = [];
    const w = new WriteBehind(fh, head.length, (n) => landed.push(n));
    fh.calls.length = 0;
    for (const p of pieces) await w.add(p);
    await w.flush();
    await fh.close();
    const all = Buffer.concat([head, ...pieces]);
    expect(readFileSync(path).equals(all)).toBe(true);
    expect(fh.calls.every((c) => c.kind === 'writev')).toBe(true);
    // Every batch but the last is full; together they cover the data once, in order.
    for (const c of fh.calls.slice(0, -1)) expect(c.bytes).toBeGreaterThanOrEqual(BATCH_BYTES);
    let at = head.length;
    for (const c of fh.calls) {
      expect(c.position).toBe(at);
      at += c.bytes;
    }
    expect(at).toBe(all.length);
    expect(fh.maxInFlight).toBe(1);
    expect(landed.reduce((a, b) => a + b, 0)).toBe(all.length - head.length);
    expect(w.next).toBe(all.length);
  });

  it('writes a small file once, on the JS thread', async () => {
    const { path, fh } = await recordingFile('small');
    const data = seededBytes(SYNC_IO_MAX, 2);
    const w = new WriteBehind(fh, 0);
    await w.add(data);
    expect(fh.calls).toEqual([]);
    await w.flush();
    await fh.close();
    expect(fh.calls).toEqual([{ kind: 'write', bytes: data.length, position: 0, parts: 1 }]);
    expect(readFileSync(path).equals(data)).toBe(true);
  });

  it('reports a failed write at the next add() or flush(), and stop() waits for the write on the pool', async () => {
    // Read-only descriptor: every write fails with EBADF.
    const { fh: ro } = await recordingFile('ro', constants.O_RDWR | constants.O_CREAT | constants.O_EXCL);
    await ro.close();
    const readOnly = new RecordingHandle((await openFile(join(tmp.path, 'ro'), constants.O_RDONLY)).fd);
    const w = new WriteBehind(readOnly, 0);
    await w.add(seededBytes(BATCH_BYTES, 3)); // starts a batch on the pool
    await expect(w.flush()).rejects.toMatchObject({ code: 'EBADF' });
    const w2 = new WriteBehind(readOnly, 0);
    await w2.add(seededBytes(BATCH_BYTES, 4));
    await expect(w2.add(seededBytes(BATCH_BYTES, 5))).rejects.toMatchObject({ code: 'EBADF' });
    const w3 = new WriteBehind(readOnly, 0);
    await w3.add(seededBytes(BATCH_BYTES, 6));
    await expect(w3.stop(false)).rejects.toMatchObject({ code: 'EBADF' });
    expect(readOnly.inFlight).toBe(0);
    await readOnly.close();
  });

  it('stop(false) drops what is queued, stop(true) writes it', async () => {
    for (const keep of [false, true]) {
      const { path, fh } = await recordingFile(`stop-${keep}`);
      const first = seededBytes(BATCH_BYTES + 10, 7);
      const queued = seededBytes(5000, 8);
      const w = new WriteBehind(fh, 0);
      await w.add(first);
      await w.add(queued);
      await w.stop(keep);
      expect(fh.inFlight).toBe(0);
      await fh.close();
      expect(readFileSync(path).equals(keep ? Buffer.concat([first, queued]) : first)).toBe(true);
    }
  });
});
