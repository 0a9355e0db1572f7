// The sync sender reads a big file into recycled buffers. A buffer may only be read into again
// once no queued frame points into it: the few literal bytes of a chunk are copied first
// (detachPieces), a mostly-literal chunk is never recycled. A mistake here would put the next
// read's bytes on the wire in place of queued literals: the receiver's whole-file hash would
// catch it and redo the file, so the test asserts no redo, not just the right result.
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sync } from '../lib/index.js';
import { detachPieces } from '../lib/sync/sender.js';
import { seededBytes } from './helpers/bytes.js';
import { tempDir } from './helpers/trees.js';

const tmp = tempDir('deltasync-sender-buffers-');
afterAll(() => tmp.cleanup());

describe('detachPieces', () => {
  const chunk = Buffer.allocUnsafe(4096).fill(7);
  const other = Buffer.from('a copy op and other bytes');

  it('leaves pieces alone when none points into the chunk', () => {
    const pieces = [other, other.subarray(2, 5)];
    expect(detachPieces(pieces, chunk)).toBe(pieces);
  });

  it('copies the pieces that point into the chunk when they are at most an eighth of it', () => {
    const inside = chunk.subarray(100, 100 + 512);
    const out = detachPieces([other, inside], chunk)!;
    expect(out).toHaveLength(2);
    expect(out[0]).toBe(other);
    expect(out[1]!.buffer).not.toBe(chunk.buffer);
    expect(out[1]!.equals(inside)).toBe(true);
    chunk.fill(9); // the copy no longer sees the chunk
    expect(out[1]!.every((b) => b === 7)).toBe(true);
  });

  it('gives up (undefined) when more than an eighth of the chunk would be copied', () => {
    expect(detachPieces([chunk.subarray(0, 513)], chunk)).toBeUndefined();
  });
});

describe('sync sender over recycled read buffers', () => {
  it('a 40 MiB file with an edit in every 4 MiB chunk, sent slowly: same result, no redo', { timeout: 120_000 }, async () => {
    const size = 40 * 1024 * 1024;
    const old = seededBytes(size, 21);
    const next = Buffer.from(old);
    // 200 KB of new bytes in each chunk: literal, copied out of its chunk before it is queued.
    for (let at = 1_000_000; at < size; at += 4 * 1024 * 1024) next.set(seededBytes(200_000, at), at);
    // And one chunk rewritten whole: mostly literal, so that buffer goes out as it is.
    next.set(seededBytes(4 * 1024 * 1024, 99), 20 * 1024 * 1024);
    const src = join(tmp.path, 'src');
    const dst = join(tmp.path, 'dst');
    mkdirSync(src);
    mkdirSync(dst);
    writeFileSync(join(src, 'big'), next);
    writeFileSync(join(dst, 'big'), old);
    utimesSync(join(dst, 'big'), 1_000_000, 1_000_000); // older: the quick check sends it
    // A low limit keeps literal frames queued while the sender reads on.
    const stats = await sync(`${src}/`, `${dst}/`, { recursive: true, wholeFile: false, bwlimit: 4000, sigCache: false });
    expect(stats.filesTransferred).toBe(1);
    expect(stats.redone).toBe(0);
    expect(stats.literalBytes).toBeGreaterThan(10 * 200_000);
    expect(stats.literalBytes).toBeLessThan(12 * 1024 * 1024);
    expect(readFileSync(join(dst, 'big')).equals(next)).toBe(true);
  });
});
