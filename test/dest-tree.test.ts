// The destination tree through directory handles: writes land in the directory a handle was
// opened on even when a symlink replaces it afterwards, final symlinks are never followed,
// symlinks below the root are refused, and handles in use survive the LRU bound.
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CREATE_EXCL,
  DestTree,
  chmodNoFollow,
  lstatAt,
  lutimesAt,
  mkdirAt,
  mknodAt,
  openNoFollow,
  openRegularForRead,
  openRegularForUpdate,
  readdirAt,
  renameAt,
  symlinkAt,
} from '../lib/sync/dest-tree.js';
import { tempDir } from './helpers/trees.js';

const tmp = tempDir('desttree');
afterAll(() => tmp.cleanup());

let n = 0;
let base: string;
let dest: string;
let canary: string;

beforeEach(() => {
  base = join(tmp.path, String(n++));
  dest = join(base, 'dest');
  canary = join(base, 'canary');
  mkdirSync(join(dest, 'sub', 'deep'), { recursive: true });
  mkdirSync(canary);
  writeFileSync(join(canary, 'victim'), 'original\n');
  chmodSync(join(canary, 'victim'), 0o644);
  utimesSync(join(canary, 'victim'), 1000, 1000);
});

async function writeNew(path: string, text: string): Promise<void> {
  const fh = await openNoFollow(path, CREATE_EXCL, 0o644);
  try {
    const bytes = Buffer.from(text);
    await fh.write(bytes, 0, bytes.length, 0);
  } finally {
    await fh.close();
  }
}

function canaryUnchanged(): void {
  expect(readdirSync(canary)).toEqual(['victim']);
  expect(readFileSync(join(canary, 'victim'), 'utf8')).toBe('original\n');
  const st = statSync(join(canary, 'victim'));
  expect(st.mode & 0o7777).toBe(0o644);
  expect(st.mtimeMs).toBe(1_000_000);
}

describe('DestTree', () => {
  it('addresses entries through handles and shows the real paths', async () => {
    const tree = await DestTree.open(dest);
    try {
      const d = await tree.dir('sub/deep');
      expect(d.path).toMatch(/^\/proc\/self\/fd\/\d+$/);
      await writeNew(d.at('f'), 'data');
      expect(readFileSync(join(dest, 'sub/deep/f'), 'utf8')).toBe('data');
      await mkdirAt(d.at('made'), 0o755);
      expect(statSync(join(dest, 'sub/deep/made')).isDirectory()).toBe(true);
      expect(d.shown('f')).toBe(join(dest, 'sub/deep/f'));
      expect(tree.shown(`cannot write ${d.at('f')}: no`)).toBe(`cannot write ${join(dest, 'sub/deep/f')}: no`);
      expect(tree.shown(`cannot read ${d.at('.')}: no`)).toBe(`cannot read ${join(dest, 'sub/deep')}: no`);
      const st = await lstatAt(d.at('.'));
      expect(st?.ino).toBe(BigInt(statSync(join(dest, 'sub/deep')).ino));
      expect(await lstatAt(d.at('missing'))).toBeUndefined();
      d.release();
    } finally {
      await tree.close();
    }
  });

  it('a directory swapped for a symlink after its handle is open: writes stay in the real directory', async () => {
    const tree = await DestTree.open(dest);
    try {
      const d = await tree.dir('sub');
      renameSync(join(dest, 'sub'), join(dest, 'moved'));
      symlinkSync(canary, join(dest, 'sub'));
      await writeNew(d.at('new'), 'x');
      await mkdirAt(d.at('newdir'));
      await symlinkAt('whatever', d.at('newlink'));
      await renameAt(d.at('new'), d.at('renamed'));
      expect(readdirSync(join(dest, 'moved')).sort()).toEqual(['deep', 'newdir', 'newlink', 'renamed']);
      canaryUnchanged();
      d.release();
      // A fresh handle of that name is refused: the symlink is not followed.
      tree.forget('sub');
      await expect(tree.dir('sub')).rejects.toMatchObject({ code: 'ENOTDIR' });
      await expect(tree.dir('sub/deep')).rejects.toMatchObject({ code: 'ENOTDIR' });
      canaryUnchanged();
    } finally {
      await tree.close();
    }
  });

  it('a directory swapped for a symlink while its contents are written: nothing reaches the canary', async () => {
    const tree = await DestTree.open(dest);
    try {
      const d = await tree.dir('sub');
      for (let i = 0; i < 50; i++) {
        // Flip between the real directory and a symlink to the canary on every file.
        if (i % 2 === 0) {
          renameSync(join(dest, 'sub'), join(dest, 'real'));
          symlinkSync(canary, join(dest, 'sub'));
        } else {
          unlinkSync(join(dest, 'sub'));
          renameSync(join(dest, 'real'), join(dest, 'sub'));
        }
        await writeNew(d.at(`f${i}`), String(i));
      }
      const real = existsSync(join(dest, 'real')) ? join(dest, 'real') : join(dest, 'sub');
      expect(readdirSync(real).filter((x) => x.startsWith('f')).length).toBe(50);
      canaryUnchanged();
      d.release();
    } finally {
      await tree.close();
    }
  });

  it('a symlink below the root is never followed to reach a directory', async () => {
    symlinkSync(canary, join(dest, 'link'));
    symlinkSync('sub', join(dest, 'relative'));
    const tree = await DestTree.open(dest);
    try {
      await expect(tree.dir('link')).rejects.toMatchObject({ code: 'ENOTDIR' });
      await expect(tree.dir('relative/deep')).rejects.toMatchObject({ code: 'ENOTDIR' });
      await expect(tree.dir('../x')).rejects.toMatchObject({ code: 'ERR_PROTOCOL' });
      canaryUnchanged();
    } finally {
      await tree.close();
    }
  });

  it('a symlink planted at the file name: create fails, rename replaces the link, attributes refuse it', async () => {
    const tree = await DestTree.open(dest);
    try {
      const d = await tree.dir('sub');
      symlinkSync(join(canary, 'victim'), join(dest, 'sub/target'));
      await expect(writeNew(d.at('target'), 'evil')).rejects.toMatchObject({ code: 'EEXIST' });
      await expect(openNoFollow(d.at('target'), 0)).rejects.toMatchObject({ code: 'ELOOP' });
      await expect(chmodNoFollow(d.at('target'), 0o777)).rejects.toMatchObject({ code: 'ELOOP' });
      await lutimesAt(d.at('target'), 5, 5);
      canaryUnchanged();
      await writeNew(d.at('.target.tmp'), 'new content');
      await renameAt(d.at('.target.tmp'), d.at('target'));
      expect(lstatSync(join(dest, 'sub/target')).isFile()).toBe(true);
      expect(readFileSync(join(dest, 'sub/target'), 'utf8')).toBe('new content');
      await chmodNoFollow(d.at('target'), 0o600);
      expect(statSync(join(dest, 'sub/target')).mode & 0o777).toBe(0o600);
      canaryUnchanged();
      d.release();
    } finally {
      await tree.close();
    }
  });

  it('removeTree empties directories through handles and does not follow symlinks in them', async () => {
    mkdirSync(join(dest, 'gone/a/b'), { recursive: true });
    writeFileSync(join(dest, 'gone/a/b/f'), 'x');
    symlinkSync(canary, join(dest, 'gone/a/tocanary'));
    symlinkSync(join(canary, 'victim'), join(dest, 'gone/victimlink'));
    const tree = await DestTree.open(dest);
    try {
      await tree.removeTree('gone');
      expect(existsSync(join(dest, 'gone'))).toBe(false);
      canaryUnchanged();
      await tree.removeTree('does-not-exist');
    } finally {
      await tree.close();
    }
  });

  it('makeDirs creates missing levels through handles and refuses a symlink on the way', async () => {
    symlinkSync(canary, join(dest, 'sub/planted'));
    const tree = await DestTree.open(dest);
    try {
      const made = await tree.makeDirs('sub/deep/a/b', 0o750);
      expect(made.shown()).toBe(join(dest, 'sub/deep/a/b'));
      expect(statSync(join(dest, 'sub/deep/a/b')).isDirectory()).toBe(true);
      made.release();
      await expect(tree.makeDirs('sub/planted/x')).rejects.toMatchObject({ code: 'ENOTDIR' });
      canaryUnchanged();
    } finally {
      await tree.close();
    }
  });

  it('keeps at most maxCached unpinned handles and never closes a pinned one', async () => {
    for (let i = 0; i < 30; i++) mkdirSync(join(dest, `d${i}`));
    const tree = await DestTree.open(dest, { maxCached: 4 });
    try {
      const held = await tree.dir('d0');
      const heldPath = held.at('.');
      for (let i = 1; i < 30; i++) {
        const h = await tree.dir(`d${i}`);
        await writeNew(h.at('f'), String(i));
        h.release();
      }
      expect(tree.openCount).toBeLessThanOrEqual(4 + 2);
      // The held handle still names d0 (its descriptor number was not reused).
      const st = await lstatAt(heldPath);
      expect(st?.ino).toBe(BigInt(statSync(join(dest, 'd0')).ino));
      await writeNew(held.at('f'), '0');
      held.release();
      for (let i = 0; i < 30; i++) expect(readFileSync(join(dest, `d${i}/f`), 'utf8')).toBe(String(i));
    } finally {
      await tree.close();
    }
  });

  it('more leases held at once than the bound: every handle stays open and names its own directory', async () => {
    for (let i = 0; i < 40; i++) mkdirSync(join(dest, `p${i}`));
    const tree = await DestTree.open(dest, { maxCached: 4 });
    try {
      // Opened concurrently, as the receiver's look-ahead does, some twice.
      const leases = await Promise.all(Array.from({ length: 60 }, (_, i) => tree.dir(`p${i % 40}`)));
      expect(tree.openCount).toBe(41);
      for (let i = 0; i < 60; i++) {
        const st = await lstatAt(leases[i]!.at('.'));
        expect(st?.ino).toBe(BigInt(statSync(join(dest, `p${i % 40}`)).ino));
      }
      for (const l of leases) l.release();
      expect(tree.openCount).toBeLessThanOrEqual(4 + 1);
    } finally {
      await tree.close();
    }
  });

  it('with more leases held than the bound, the bound is on the unleased handles: one just released stays open', async () => {
    for (let i = 0; i < 20; i++) mkdirSync(join(dest, `r${i}`));
    const tree = await DestTree.open(dest, { maxCached: 4 });
    try {
      // A receiver with files outstanding in more directories than the bound holds this many.
      const held = await Promise.all(Array.from({ length: 10 }, (_, i) => tree.dir(`r${i}`)));
      expect(tree.openCount).toBe(11);
      const next = await tree.dir('r10');
      next.release();
      // Kept for the next file of that directory (it was closed at once, and opened again).
      expect(tree.openCount).toBe(12);
      const again = tree.dirIfOpen('r10');
      expect(again).toBeDefined();
      again!.release();
      for (let i = 11; i < 20; i++) (await tree.dir(`r${i}`)).release();
      expect(tree.openCount).toBe(11 + 4);
      for (const h of held) h.release();
      expect(tree.openCount).toBe(1 + 4);
    } finally {
      await tree.close();
    }
  });

  it('dirIfOpen hands out a lease only for a handle already open, never a stale one, and pins it', async () => {
    for (let i = 0; i < 8; i++) mkdirSync(join(dest, `q${i}`));
    const tree = await DestTree.open(dest, { maxCached: 2 });
    try {
      const root = tree.dirIfOpen('.');
      expect(root?.rel).toBe('.');
      root!.release();
      expect(tree.dirIfOpen('q0')).toBeUndefined(); // not opened yet: the caller awaits dir()
      const first = await tree.dir('q0');
      const again = tree.dirIfOpen('q0');
      expect(again?.fd).toBe(first.fd);
      first.release();
      // Pinned by `again`: opening more directories than the bound does not close it.
      for (let i = 1; i < 8; i++) (await tree.dir(`q${i}`)).release();
      const st = await lstatAt(again!.at('.'));
      expect(st?.ino).toBe(BigInt(statSync(join(dest, 'q0')).ino));
      again!.release();
      // Only normalized paths hit; anything else goes through dir(), which normalizes or refuses.
      (await tree.dir('q7')).release();
      const hit = tree.dirIfOpen('q7');
      expect(hit).toBeDefined();
      hit!.release();
      expect(tree.dirIfOpen('./q7')).toBeUndefined();
      expect(tree.dirIfOpen('q7/../q7')).toBeUndefined();
      // Forgotten (removed or replaced): stale, never handed out again.
      tree.forget('q7');
      expect(tree.dirIfOpen('q7')).toBeUndefined();
    } finally {
      await tree.close();
    }
    expect(tree.dirIfOpen('.')).toBeUndefined();
  });

  it('makes FIFOs through the handle', async () => {
    const tree = await DestTree.open(dest);
    try {
      const d = await tree.dir('sub');
      renameSync(join(dest, 'sub'), join(dest, 'moved'));
      symlinkSync(canary, join(dest, 'sub'));
      await mknodAt(d, 'fifo', { kind: 'p', mode: 0o640 });
      expect(lstatSync(join(dest, 'moved/fifo')).isFIFO()).toBe(true);
      expect(readdirSync(join(dest, 'moved')).sort()).toEqual(['deep', 'fifo']);
      expect(await readdirAt(d.at('.'))).toContain('fifo');
      canaryUnchanged();
      d.release();
    } finally {
      await tree.close();
    }
  });

  it('opens only regular files for reading and updating in place: symlinks and FIFOs are refused, not followed or blocked on', async () => {
    const tree = await DestTree.open(dest);
    try {
      const d = await tree.dir('sub');
      writeFileSync(join(dest, 'sub/plain'), 'old bytes\n');
      const r = await openRegularForRead(d.at('plain'));
      expect(r.st.isFile()).toBe(true);
      const back = Buffer.alloc(64);
      const { bytesRead } = await r.fh.read(back, 0, back.length, 0);
      expect(back.subarray(0, bytesRead).toString()).toBe('old bytes\n');
      await r.fh.close();
      // In place: the same inode, readable and writable.
      const ino = statSync(join(dest, 'sub/plain')).ino;
      const u = await openRegularForUpdate(d.at('plain'), 0o600);
      await u.write(Buffer.from('NEW'), 0, 3, 0);
      expect((await u.stat()).ino).toBe(ino);
      await u.close();
      expect(readFileSync(join(dest, 'sub/plain'), 'utf8')).toBe('NEW bytes\n');
      // Missing: created with the mode asked for.
      const c = await openRegularForUpdate(d.at('fresh'), 0o600);
      await c.close();
      expect(statSync(join(dest, 'sub/fresh')).mode & 0o777).toBe(0o600);

      symlinkSync(join(canary, 'victim'), join(dest, 'sub/link'));
      await expect(openRegularForRead(d.at('link'))).rejects.toMatchObject({ code: 'ELOOP' });
      await expect(openRegularForUpdate(d.at('link'), 0o600)).rejects.toThrow(/now a symlink/);
      await mknodAt(d, 'fifo', { kind: 'p', mode: 0o600 });
      // A FIFO with no writer would block a plain open: these return at once with an error.
      await expect(openRegularForRead(d.at('fifo'))).rejects.toThrow(/not a regular file/);
      await expect(openRegularForUpdate(d.at('fifo'), 0o600)).rejects.toThrow(/not a regular file/);
      canaryUnchanged();
      // Messages name the real path, never the handle path.
      const err = await openRegularForUpdate(d.at('link'), 0o600).catch((e: Error) => e);
      expect(tree.shown((err as Error).message)).toContain(join(dest, 'sub/link'));
      expect(tree.shown((err as Error).message)).not.toMatch(/\/proc\/self\/fd/);
      d.release();
    } finally {
      await tree.close();
    }
  });

  it('a missing root fails with ENOENT naming it', async () => {
    await expect(DestTree.open(join(base, 'nope'))).rejects.toMatchObject({ code: 'ENOENT', message: expect.stringContaining(join(base, 'nope')) as unknown });
  });
});
