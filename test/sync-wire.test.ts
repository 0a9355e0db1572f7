// Issue 5's wire target, measured against the real rsync in the same test: after a 1-byte change
// to a big file (appended, prepended, changed in the middle), a sync over a remote shell moves at
// most half the bytes rsync --no-whole-file moves over the same shell for the same change. Both
// tools' own counters are used (rsync's --stats "Total bytes sent/received", our --json
// bytesSent/bytesReceived: every byte of the protocol stream, both directions).
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededBytes } from './helpers/bytes.js';
import { FAKE_RSH, REMOTE_PATH, jsonStats, rsync, runCli, tempDir } from './helpers/trees.js';

const SIZE = 24 * 1024 * 1024;
const tmp = tempDir('sync-wire');
afterAll(() => tmp.cleanup());

const old = seededBytes(SIZE, 77);
const variants: Record<string, Buffer> = {
  append: Buffer.concat([old, Buffer.from('!')]),
  prepend: Buffer.concat([Buffer.from('!'), old]),
  middle: (() => {
    const b = Buffer.from(old);
    b[SIZE >> 1]! ^= 0x5a;
    return b;
  })(),
};

function rsyncWireBytes(stats: string): number {
  const field = (name: string) => Number(new RegExp(`^${name}: ([\\d,]+)`, 'm').exec(stats)![1]!.replace(/,/g, ''));
  return field('Total bytes sent') + field('Total bytes received');
}

describe('bytes on the wire after a 1-byte change, against rsync over the same remote shell', () => {
  for (const [variant, next] of Object.entries(variants)) {
    for (const direction of variant === 'middle' ? ['push', 'pull'] : ['push']) {
      it(`${variant}, ${direction}: at most 0.5x rsync's bytes, same result`, async () => {
        const root = join(tmp.path, `${variant}-${direction}`);
        const src = join(root, 'src');
        mkdirSync(src, { recursive: true });
        const dests = { ds: join(root, 'ds'), rsync: join(root, 'rsync') };
        for (const d of Object.values(dests)) {
          mkdirSync(d);
          writeFileSync(join(d, 'big'), old);
          // An older mtime: the same-size middle change must not pass the quick check.
          utimesSync(join(d, 'big'), 1_000_000, 1_000_000);
        }
        writeFileSync(join(src, 'big'), next);
        const remote = (path: string) => `somehost:${path}`;
        const [from, to] = direction === 'push' ? [`${src}/`, remote(dests.ds)] : [remote(`${src}/`), dests.ds];
        const r = await runCli(['-r', '--json', '--no-sig-cache', '-e', FAKE_RSH, '--remote-path', REMOTE_PATH, from, to]);
        expect(r.code, r.stderr).toBe(0);
        const ours = jsonStats(r);
        const [rfrom, rto] = direction === 'push' ? [`${src}/`, remote(dests.rsync)] : [remote(`${src}/`), dests.rsync];
        const theirs = rsyncWireBytes(rsync(['-r', '--no-whole-file', '--stats', '-e', FAKE_RSH, rfrom, rto]));
        expect(readFileSync(join(dests.ds, 'big')).equals(next)).toBe(true);
        expect(readFileSync(join(dests.rsync, 'big')).equals(next)).toBe(true);
        const wire = (ours.bytesSent as number) + (ours.bytesReceived as number);
        // Not trivially met: a delta transfer happened (the file did not go whole).
        expect(ours.matchedBytes as number).toBeGreaterThan(SIZE - 65_536);
        expect(wire, `deltasync ${wire} bytes, rsync ${theirs} bytes`).toBeLessThanOrEqual(0.5 * theirs);
      }, 60_000);
    }
  }
});
