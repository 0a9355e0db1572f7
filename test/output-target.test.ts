// Outputs that are not plain files: a character device or a FIFO is written into (never
// replaced by the atomic rename), a symlink is followed to the file it names, and a directory,
// a dangling symlink or a block device is refused with a clear message. Each case uses nodes
// made in a temp directory, never the machine's own /dev/null: a regression must not break it.
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signatureFile } from '../lib/index.js';
import { seededBytes } from './helpers/bytes.js';
import { run } from './helpers/run.js';
import { BIN, tempDir } from './helpers/trees.js';

const tmp = tempDir('deltasync-output-');
afterAll(() => tmp.cleanup());

const isRoot = process.getuid?.() === 0;
const cli = (args: string[]) => run(process.execPath, [BIN, ...args], { timeout: 60_000 });

const basis = join(tmp.path, 'basis');
const newer = join(tmp.path, 'new');
const data = seededBytes(3 * 1024 * 1024 + 11, 3);
writeFileSync(basis, data);
const changed = Buffer.from(data);
changed.write('changed in the middle', 1_500_000);
writeFileSync(newer, changed);

/** A fresh character device node with /dev/null's numbers (1, 3), in our temp directory. */
function nullDevice(name: string): string {
  const path = join(tmp.path, name);
  const r = spawnSync('mknod', ['-m', '666', path, 'c', '1', '3']);
  expect(r.status, String(r.stderr)).toBe(0);
  return path;
}

/** A FIFO and a reader collecting what is written into it. */
function fifoWithReader(name: string): { path: string; received: Promise<Buffer> } {
  const path = join(tmp.path, name);
  expect(spawnSync('mkfifo', [path]).status).toBe(0);
  const reader = spawn('cat', [path]);
  const parts: Buffer[] = [];
  reader.stdout.on('data', (d: Buffer) => parts.push(d));
  const received = new Promise<Buffer>((resolve) => reader.on('close', () => resolve(Buffer.concat(parts))));
  return { path, received };
}

describe('output targets that are not plain files', () => {
  it.runIf(isRoot)('signature, delta and patch write into a character device without --force and leave it a device', async () => {
    const dev = nullDevice('null-1');
    const sig = join(tmp.path, 'ref.sig');
    expect((await cli(['signature', basis, sig])).status).toBe(0);
    const d = join(tmp.path, 'ref.delta');
    expect((await cli(['delta', sig, newer, d])).status).toBe(0);
    for (const args of [
      ['signature', basis, dev],
      ['delta', sig, newer, dev],
      ['patch', basis, d, dev],
    ]) {
      const r = await cli(args);
      expect(r.status, `${args[0]}: ${r.stderr}`).toBe(0);
      const st = lstatSync(dev);
      expect(st.isCharacterDevice(), args[0]).toBe(true);
      expect(st.rdev).toBe(statSync('/dev/null').rdev);
    }
    // The library's file functions too.
    await signatureFile(basis, dev);
    expect(lstatSync(dev).isCharacterDevice()).toBe(true);
  });

  it('a FIFO receives the same bytes a file would, and stays a FIFO', async () => {
    const sig = join(tmp.path, 'fifo-ref.sig');
    expect((await cli(['signature', basis, sig])).status).toBe(0);
    const fifo = fifoWithReader('sig-fifo');
    const r = await cli(['signature', basis, fifo.path]);
    expect(r.status, r.stderr).toBe(0);
    expect((await fifo.received).equals(readFileSync(sig))).toBe(true);
    expect(lstatSync(fifo.path).isFIFO()).toBe(true);
  });

  it('patch into a FIFO fails with a clear message instead of hanging (it writes at offsets)', async () => {
    const sig = join(tmp.path, 'pf.sig');
    const d = join(tmp.path, 'pf.delta');
    expect((await cli(['signature', basis, sig])).status).toBe(0);
    expect((await cli(['delta', sig, newer, d])).status).toBe(0);
    const fifo = fifoWithReader('patch-fifo');
    const r = await cli(['patch', basis, d, fifo.path]);
    expect(r.error).toBeUndefined(); // not killed by the timeout
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/cannot write .*patch-fifo/);
    await fifo.received;
    expect(lstatSync(fifo.path).isFIFO()).toBe(true);
  });

  it('a symlink to a file is followed: the file is replaced, the link stays', async () => {
    const real = join(tmp.path, 'real.sig');
    const link = join(tmp.path, 'link.sig');
    writeFileSync(real, 'old contents');
    symlinkSync(real, link);
    expect((await cli(['signature', basis, link])).stderr).toMatch(/already exists/); // still needs --force
    const r = await cli(['signature', '--force', basis, link]);
    expect(r.status, r.stderr).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(real);
    const ref = join(tmp.path, 'link-ref.sig');
    expect((await cli(['signature', basis, ref])).status).toBe(0);
    expect(readFileSync(real).equals(readFileSync(ref))).toBe(true);
  });

  it('a directory, a dangling symlink or a block device is refused before any work', async () => {
    const dir = join(tmp.path, 'a-dir');
    mkdirSync(dir);
    const dangling = join(tmp.path, 'dangling.sig');
    symlinkSync(join(tmp.path, 'nowhere'), dangling);
    const cases: [string, RegExp][] = [
      [dir, /cannot write .*a-dir: it is a directory/],
      [dangling, /cannot write .*dangling\.sig: it is a symlink to nothing/],
    ];
    if (isRoot) {
      const blk = join(tmp.path, 'blk');
      expect(spawnSync('mknod', [blk, 'b', '7', '200']).status).toBe(0);
      cases.push([blk, /cannot write .*blk: it is a block device/]);
    }
    for (const [target, message] of cases) {
      for (const force of [[], ['--force']]) {
        const r = await cli(['signature', ...force, basis, target]);
        expect(r.status, target).not.toBe(0);
        expect(r.stderr).toMatch(message);
      }
    }
    expect(lstatSync(dangling).isSymbolicLink()).toBe(true);
    await expect(signatureFile(basis, dir)).rejects.toMatchObject({ code: 'ERR_IO' });
  });
});
