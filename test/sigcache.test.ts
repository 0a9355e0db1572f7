// Signature cache: hits without touching the file, every identity change is a miss, damaged
// entries are never trusted, the size bound holds with LRU order, concurrent writers.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { constants as fsConstants, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

// Spy on fs/promises.open (used by the cache, and by everything that reads a file) so a test
// can tell whether the cached path opened the file.
vi.mock('node:fs/promises', async (importOriginal) => {
  const mod = await importOriginal<typeof import('node:fs/promises')>();
  return { ...mod, open: vi.fn(mod.open), default: { ...mod, open: vi.fn(mod.open) } };
});

const { SignatureCache, SignatureRecorder, acceptableParams, defaultCacheDir, fileIdentity } = await import('../lib/sigcache.js');
const { signature, Signature } = await import('../lib/signature.js');
const { native } = await import('../lib/native.js');

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const openSpy = vi.mocked(fsp.open);

let dir: string;
let cacheDir: string;

beforeEach(async () => {
  dir = await fsp.mkdtemp(join(tmpdir(), 'ds-sigcache-'));
  cacheDir = join(dir, 'cache');
});

afterEach(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

async function makeFile(name: string, size: number): Promise<string> {
  const path = join(dir, name);
  await fsp.writeFile(path, randomBytes(size));
  return path;
}

const statBig = (path: string) => fsp.stat(path, { bigint: true });

/** Entry files currently in the cache directory (shard/name). */
function entryFiles(root = cacheDir): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const shard of readdirSync(root)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const name of readdirSync(join(root, shard))) out.push(join(root, shard, name));
  }
  return out;
}

function rchar(): number {
  const m = /rchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return Number(m![1]);
}

function wchar(): number {
  const m = /wchar:\s*(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return Number(m![1]);
}

// Entry layout, version 2 (docs/SIGCACHE.md): 64 bytes of fields (entries length at 56, chunk
// length at 60), XXH3-128 of (fields ++ chunk table), the block entries, the chunk table
// (XXH3-128 of each chunk-length piece of the entries).
function splitEntry(entry: Buffer) {
  const entriesLen = entry.readUInt32LE(56);
  const chunkLen = entry.readUInt32LE(60);
  return {
    fields: entry.subarray(0, 64),
    entries: entry.subarray(80, 80 + entriesLen),
    table: entry.subarray(80 + entriesLen),
    chunkLen,
  };
}

function sealEntry(fields: Buffer, entries: Buffer): Buffer {
  const chunkLen = fields.readUInt32LE(60);
  const sums: Buffer[] = [];
  for (let at = 0; at < entries.length; at += chunkLen) sums.push(native.hash('xxh3', entries.subarray(at, at + chunkLen)));
  const table = Buffer.concat(sums);
  return Buffer.concat([fields, native.hash('xxh3', Buffer.concat([fields, table])), entries, table]);
}

/** A file with a cached signature, stored the way the receiver does after writing it. */
async function cachedFile(cache: InstanceType<typeof SignatureCache>, name = 'f', size = 200_000) {
  const path = await makeFile(name, size);
  const sig = await signature(path);
  expect(await cache.store(path, await statBig(path), sig)).toBe(true);
  return { path, sig };
}

describe('defaultCacheDir', () => {
  it('follows XDG_CACHE_HOME when absolute, else ~/.cache', () => {
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/deltasync/sig');
    expect(defaultCacheDir({ XDG_CACHE_HOME: 'relative/cache' })).toBe(join(homedir(), '.cache', 'deltasync', 'sig'));
    expect(defaultCacheDir({})).toBe(join(homedir(), '.cache', 'deltasync', 'sig'));
  });
});

describe('lookup and store', () => {
  it('returns the stored signature for the same file version and parameters', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache);
    const hit = await cache.lookup(path, sig.params);
    expect(hit).toBeDefined();
    expect(hit!.toBuffer().equals(sig.toBuffer())).toBe(true);
    // Partial options resolve to the same defaults for the file's size.
    expect((await cache.lookup(path))!.toBuffer().equals(sig.toBuffer())).toBe(true);
    expect(cache.stats).toMatchObject({ hits: 2, misses: 0, stores: 1 });
    // A second instance (another process) sees it too.
    expect(await new SignatureCache({ dir: cacheDir }).lookup(path, sig.params)).toBeDefined();
  });

  it('a hit neither opens nor reads the file', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache, 'big', 32 * 1024 * 1024);
    openSpy.mockClear();
    const before = rchar();
    const hit = await cache.lookup(path, sig.params);
    const read = rchar() - before;
    expect(hit).toBeDefined();
    expect(openSpy.mock.calls.map((c) => String(c[0]))).not.toContain(path);
    expect(read).toBeLessThan(4 * 1024 * 1024); // the entry (~130 KB), not the 32 MiB file

    // The same measurement sees a read of the file when there is no entry.
    await cache.delete(await statBig(path));
    openSpy.mockClear();
    const before2 = rchar();
    const { cached } = await cache.signature(path);
    expect(cached).toBe(false);
    expect(rchar() - before2).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    expect(openSpy.mock.calls.map((c) => String(c[0]))).toContain(path);
  });

  it('any change of size, mtime or ctime is a miss, and the stale entry is removed', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const path = await makeFile('f', 200_000);
    // Whole seconds, so utimes can put the very same mtime back later.
    const T = 1_600_000_000;
    await fsp.utimes(path, T, T);
    const sig = await signature(path);
    const original = await statBig(path);
    expect(original.mtimeNs).toBe(BigInt(T) * 1_000_000_000n);
    expect(await cache.store(path, original, sig)).toBe(true);
    expect(await cache.lookup(path, sig.params)).toBeDefined();
    expect(entryFiles()).toHaveLength(1);

    // Same size, same mtime (put back with utimes): only ctime tells the content changed.
    await fsp.writeFile(path, randomBytes(Number(original.size)));
    await fsp.utimes(path, T, T);
    const now = await statBig(path);
    expect(now.size).toBe(original.size);
    expect(now.mtimeNs).toBe(original.mtimeNs);
    expect(now.ino).toBe(original.ino);
    expect(now.ctimeNs).not.toBe(original.ctimeNs);
    expect(await cache.lookup(path, sig.params)).toBeUndefined();
    expect(cache.stats.stale).toBe(1);
    expect(entryFiles()).toHaveLength(0);

    // chmod changes only ctime.
    const s2 = await signature(path);
    expect(await cache.store(path, await statBig(path), s2)).toBe(true);
    expect(await cache.lookup(path, s2.params)).toBeDefined();
    await fsp.chmod(path, 0o600);
    expect(await cache.lookup(path, s2.params)).toBeUndefined();

    // mtime alone.
    expect(await cache.store(path, await statBig(path), s2)).toBe(true);
    await fsp.utimes(path, new Date(), new Date(Date.now() - 5000));
    expect(await cache.lookup(path, s2.params)).toBeUndefined();

    // Size: one byte appended.
    expect(await cache.store(path, await statBig(path), s2)).toBe(true);
    await fsp.appendFile(path, Buffer.from([1]));
    expect(await cache.lookup(path, s2.params)).toBeUndefined();

    // A different inode at the same path (the atomic rename a sync does).
    const replacement = await makeFile('other', 1000);
    const s3 = await signature(replacement);
    expect(await cache.store(replacement, await statBig(replacement), s3)).toBe(true);
    await fsp.rename(replacement, path);
    expect(await cache.lookup(path, s3.params)).toBeUndefined();
  });

  it('parameters: kinds pick the entry, lengths must match unless similar ones are welcome', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache);
    expect(await cache.lookup(path, { ...sig.params, blockLen: sig.blockLen + 8 })).toBeUndefined();
    expect(await cache.lookup(path, { ...sig.params, strongLen: sig.strongLen - 1 })).toBeUndefined();
    expect(await cache.lookup(path, { ...sig.params, strong: 'md4' })).toBeUndefined();
    expect(await cache.lookup(path, { ...sig.params, rolling: 'rollsum' })).toBeUndefined();
    expect(await cache.lookup(path, { format: 'rdiff' })).toBeUndefined();
    // A miss on other lengths leaves the entry for those who want it.
    expect((await cache.lookup(path, sig.params))!.toBuffer().equals(sig.toBuffer())).toBe(true);
    // Kinds coexist.
    const rd = await signature(path, { format: 'rdiff', strong: 'md4' });
    expect(await cache.store(path, await statBig(path), rd)).toBe(true);
    expect((await cache.lookup(path, rd.params))!.toBuffer().equals(rd.toBuffer())).toBe(true);
    expect((await cache.lookup(path, sig.params))!.toBuffer().equals(sig.toBuffer())).toBe(true);
    expect(entryFiles()).toHaveLength(2);
    expect(cache.stats.stale + cache.stats.corrupt).toBe(0);
  });

  it('similar: another block length within 1/2..2x of the default, a longer strong sum', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const path = await makeFile('f', 1_000_000);
    const def = await signature(path); // default block length for 1 MB: 1000 -> 1000
    const wider = await signature(path, { blockLen: def.blockLen * 2, strongLen: def.strongLen + 2 });
    expect(await cache.store(path, undefined, wider)).toBe(true);
    expect(await cache.lookup(path)).toBeUndefined(); // exact defaults wanted
    const hit = await cache.lookup(path, undefined, { similar: true });
    expect(hit?.toBuffer().equals(wider.toBuffer())).toBe(true);
    // Explicit lengths stay exact even with similar.
    expect(await cache.lookup(path, { blockLen: def.blockLen }, { similar: true })).toBeUndefined();
    // Outside the range: no.
    const tooWide = await signature(path, { blockLen: def.blockLen * 2 + 8 });
    expect(await cache.store(path, undefined, tooWide)).toBe(true);
    expect(await cache.lookup(path, undefined, { similar: true })).toBeUndefined();
    const weaker = await signature(path, { strongLen: def.strongLen - 1 });
    expect(await cache.store(path, undefined, weaker)).toBe(true);
    expect(await cache.lookup(path, undefined, { similar: true })).toBeUndefined();
    expect(acceptableParams(wider.params, 1_000_000, undefined, true)).toBe(true);
    expect(acceptableParams(wider.params, 1_000_000)).toBe(false);
    expect(acceptableParams(def.params, 1_000_000)).toBe(true);
  });

  it('refuses a signature that does not describe a file of that size', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const path = await makeFile('f', 5000);
    const other = await signature(randomBytes(5001));
    expect(await cache.store(path, await statBig(path), other)).toBe(false);
    const rd = await signature(randomBytes(50_000), { format: 'rdiff' }); // rdiff: block count checked
    expect(await cache.store(path, await statBig(path), rd)).toBe(false);
    expect(entryFiles()).toHaveLength(0);
  });

  it('store() without stats takes them now; delete() removes the entry', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const path = await makeFile('f', 10_000);
    const sig = await signature(path);
    expect(await cache.store(path, undefined, sig)).toBe(true);
    expect(await cache.lookup(path, sig.params)).toBeDefined();
    await cache.delete(await statBig(path));
    expect(await cache.lookup(path, sig.params)).toBeUndefined();
  });

  it('signature(): computes on a miss, stores once the file is settled, hits afterwards', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const path = await makeFile('f', 100_000);
    // Modified just now: a change in the same timestamp tick could go unseen, so not stored.
    const first = await cache.signature(path);
    expect(first.cached).toBe(false);
    expect(entryFiles()).toHaveLength(0);
    // Make it look settled: the settle rule compares ctime with the clock.
    const realNow = Date.now;
    Date.now = () => realNow() + 10_000;
    try {
      expect((await cache.signature(path)).cached).toBe(false);
    } finally {
      Date.now = realNow;
    }
    const again = await cache.signature(path);
    expect(again.cached).toBe(true);
    expect(again.signature.toBuffer().equals(first.signature.toBuffer())).toBe(true);
    const expected = await signature(path);
    expect(again.signature.toBuffer().equals(expected.toBuffer())).toBe(true);
  });

  it('misses quietly on missing files, directories and an unusable cache directory', async () => {
    const errors: unknown[] = [];
    const cache = new SignatureCache({ dir: cacheDir, onError: (e) => errors.push(e) });
    expect(await cache.lookup(join(dir, 'nope'))).toBeUndefined();
    expect(await cache.lookup(dir)).toBeUndefined();
    // The cache directory is a file: stores fail, lookups miss, nothing throws.
    await fsp.writeFile(cacheDir, 'not a directory');
    const path = await makeFile('f', 3000);
    const sig = await signature(path);
    expect(await cache.store(path, await statBig(path), sig)).toBe(false);
    expect(await cache.lookup(path, sig.params)).toBeUndefined();
    expect(errors.length).toBeGreaterThan(0);
    expect(() => new SignatureCache({ dir: cacheDir, maxBytes: 0 })).toThrow(/maxBytes/);
    await expect(cache.store(path, (await fsp.stat(path)) as never, sig)).rejects.toThrow(/bigint/);
  });
});

describe('damaged entries', () => {
  it('every single-byte flip is detected, the entry removed and rebuilt', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache, 'small', 3000);
    const [entry] = entryFiles();
    const good = readFileSync(entry!);
    const st = await statBig(path);
    for (let i = 0; i < good.length; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 1 << i % 8;
      await fsp.writeFile(entry!, bad);
      expect(await cache.lookup(path, sig.params), `flip at byte ${i}`).toBeUndefined();
      expect(existsSync(entry!), `entry kept after flip at byte ${i}`).toBe(false);
      // Rebuilt by the next store, and trusted again.
      expect(await cache.store(path, st, sig)).toBe(true);
      expect(await cache.lookup(path, sig.params)).toBeDefined();
    }
    expect(cache.stats.corrupt).toBe(good.length);
  });

  it('truncated entries are ignored and removed', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache, 'f', 50_000);
    const [entry] = entryFiles();
    const good = readFileSync(entry!);
    for (const len of [0, 1, 4, 63, 64, 65, 79, 80, good.length - 17, good.length - 16, good.length - 1]) {
      await fsp.writeFile(entry!, good.subarray(0, len));
      expect(await cache.lookup(path, sig.params), `truncated to ${len}`).toBeUndefined();
      expect(existsSync(entry!)).toBe(false);
    }
    // Extended by a byte: also refused.
    await fsp.writeFile(entry!, Buffer.concat([good, Buffer.from([0])]));
    expect(await cache.lookup(path, sig.params)).toBeUndefined();
  });

  it('a well-checksummed entry for another file version is stale, not trusted', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache, 'f', 8000);
    const [entry] = entryFiles();
    const good = readFileSync(entry!);
    await fsp.utimes(path, new Date(), new Date(Date.now() - 60_000));
    // Put the old entry under the new version's name: the header's identity gives it away.
    const st = await statBig(path);
    await cache.store(path, st, sig);
    await fsp.writeFile(entry!, good);
    expect(await cache.lookup(path, sig.params, { stats: st })).toBeUndefined();
    expect(cache.stats.stale).toBe(1);
  });

  it('correct checksums over entries that do not fit the file are still refused', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache, 'f', 8000);
    const [entry] = entryFiles();
    const good = readFileSync(entry!);
    const { fields, entries } = splitEntry(good);
    expect(entries.equals(sig.blocks)).toBe(true);
    // One block entry too few, correctly checksummed: the block count gives it away.
    const shortFields = Buffer.from(fields);
    shortFields.writeUInt32LE(entries.length - sig.entrySize, 56);
    await fsp.writeFile(entry!, sealEntry(shortFields, entries.subarray(0, entries.length - sig.entrySize)));
    expect(await cache.lookup(path, sig.params)).toBeUndefined();
    expect(cache.stats.corrupt).toBe(1);
    // A block length the format does not allow (0).
    const zeroBlock = Buffer.from(fields);
    zeroBlock.writeUInt32LE(0, 8);
    await fsp.mkdir(dirname(entry!), { recursive: true });
    await fsp.writeFile(entry!, sealEntry(zeroBlock, entries));
    expect(await cache.lookup(path, { ...sig.params })).toBeUndefined();
    expect(cache.stats.corrupt).toBe(2);
    // And the same resealed untouched is accepted (the test's sealing is right).
    await fsp.mkdir(dirname(entry!), { recursive: true });
    const resealed = sealEntry(fields, entries);
    expect(resealed.equals(good)).toBe(true);
    await fsp.writeFile(entry!, resealed);
    expect(await cache.lookup(path, sig.params)).toBeDefined();
  });

  it('an entry of the previous format version is a miss, removed, then rebuilt', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache, 'f', 8000);
    const [entry] = entryFiles();
    const good = readFileSync(entry!);
    // Version 1 layout: 64-byte header (version at byte 4), serialized signature, XXH3-128 trailer.
    const v1 = Buffer.alloc(64);
    good.copy(v1, 0, 0, 4);
    v1.writeUInt8(1, 4);
    const payload = sig.toBuffer();
    v1.writeUInt32LE(payload.length, 57);
    const body = Buffer.concat([v1, payload]);
    await fsp.writeFile(entry!, Buffer.concat([body, native.hash('xxh3', body)]));
    expect(await cache.lookup(path, sig.params)).toBeUndefined();
    expect(cache.stats).toMatchObject({ stale: 1, corrupt: 0 });
    expect(existsSync(entry!)).toBe(false);
    expect(await cache.store(path, undefined, sig)).toBe(true);
    expect(readFileSync(entry!).equals(good)).toBe(true);
  });
});

describe('updating an entry in place', () => {
  // Many small blocks so the entry is large next to what an update writes (24 bytes per KiB).
  const PARAMS = { blockLen: 1024, strongLen: 16 } as const;
  const UPDATE_FLAGS = fsConstants.O_RDWR | fsConstants.O_NOFOLLOW;

  type Op = { kind: 'write'; pos: number; bytes: Buffer } | { kind: 'truncate'; len: number } | { kind: 'sync' };

  /** Runs `action`, recording the writes, truncations and syncs made through update handles. */
  async function recordUpdate(action: () => Promise<unknown>): Promise<Op[]> {
    const real = await vi.importActual<typeof import('node:fs/promises')>('node:fs/promises');
    const ops: Op[] = [];
    openSpy.mockImplementation((async (file: string, flags: number, mode?: number) => {
      const h = await real.open(file, flags, mode);
      if (flags !== UPDATE_FLAGS) return h;
      return new Proxy(h, {
        get(target, prop) {
          if (prop === 'write') {
            return (buf: Buffer, off: number, len: number, pos: number) => {
              ops.push({ kind: 'write', pos, bytes: Buffer.from(buf.subarray(off, off + len)) });
              return target.write(buf, off, len, pos);
            };
          }
          if (prop === 'truncate') {
            return (len: number) => {
              ops.push({ kind: 'truncate', len });
              return target.truncate(len);
            };
          }
          if (prop === 'sync' || prop === 'datasync') {
            return () => {
              ops.push({ kind: 'sync' });
              return target[prop]();
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    }) as never);
    try {
      await action();
    } finally {
      openSpy.mockImplementation(real.open);
    }
    return ops;
  }

  /** The entry bytes a crash leaves when only the ops in `mask` reached the disk, op `torn` half. */
  function crashState(base: Buffer, ops: Op[], mask: number, torn: number): Buffer {
    let state = Buffer.from(base);
    ops.forEach((op, i) => {
      if ((mask & (1 << i)) === 0) return;
      if (op.kind === 'truncate') {
        state = Buffer.from(state.subarray(0, op.len));
      } else if (op.kind === 'write') {
        const bytes = i === torn ? op.bytes.subarray(0, op.bytes.length >> 1) : op.bytes;
        if (op.pos + bytes.length > state.length) state = Buffer.concat([state, Buffer.alloc(op.pos + bytes.length - state.length)]);
        bytes.copy(state, op.pos);
      }
    });
    return state;
  }

  /** The receiver's way: the recorder reuses the basis entries of the unchanged blocks. */
  async function recordAppend(path: string, basisSig: InstanceType<typeof Signature>, basisSize: number, tail: Buffer) {
    const rec = new SignatureRecorder(basisSig.params, basisSize + tail.length, { signature: basisSig, size: basisSize });
    rec.copied(0, basisSize);
    await rec.data(tail);
    const fh = await fsp.open(path, 'r');
    try {
      return await rec.finish(async (offset, length) => {
        const buf = Buffer.alloc(length);
        await fh.read(buf, 0, length, offset);
        return buf;
      });
    } finally {
      await fh.close();
    }
  }

  /** Sum of the usage log's records (docs/SIGCACHE.md): the cache's idea of its size. */
  function logSum(): number {
    const log = readFileSync(join(cacheDir, 'usage.log'));
    let sum = 0;
    for (let at = 0; at + 8 <= log.length; at += 8) sum += Number(log.readBigInt64LE(at));
    return sum;
  }

  /** The entry file a full store of `sig` for `st` writes into an empty cache. */
  async function freshEntry(path: string, st: Awaited<ReturnType<typeof statBig>>, sig: InstanceType<typeof Signature>): Promise<Buffer> {
    const freshDir = await fsp.mkdtemp(join(dir, 'fresh-'));
    const fresh = new SignatureCache({ dir: freshDir });
    expect(await fresh.store(path, st, sig)).toBe(true);
    expect(fresh.stats.updates).toBe(0);
    const [file] = entryFiles(freshDir);
    const bytes = readFileSync(file!);
    await fsp.rm(freshDir, { recursive: true });
    return bytes;
  }

  it('a one-byte append writes a few KiB, not the whole entry; the result is a freshly computed entry', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const N = 8 * 1024 * 1024;
    const path = await makeFile('f', N);
    const sig0 = await signature(path, PARAMS);
    expect(await cache.store(path, await statBig(path), sig0)).toBe(true);
    const [entry] = entryFiles();
    const entryLen = statSync(entry!).size;
    expect(entryLen).toBeGreaterThan(190 * 1024);
    const usedBefore = (await fsp.stat(entry!, { bigint: true })).mtimeNs;

    await fsp.appendFile(path, Buffer.from('x'));
    const sig1 = await recordAppend(path, sig0, N, Buffer.from('x'));
    const st1 = await statBig(path);
    const before = wchar();
    expect(await cache.store(path, st1, sig1)).toBe(true);
    const written = wchar() - before;
    expect(cache.stats).toMatchObject({ stores: 2, updates: 1 });
    // Two 4 KiB chunks at most, the 768-byte chunk table, the header, a usage record.
    expect(written).toBeLessThan(16 * 1024);

    // The same measurement sees a whole entry written by a full store.
    const before2 = wchar();
    const expected = await freshEntry(path, st1, await signature(path, PARAMS));
    expect(wchar() - before2).toBeGreaterThanOrEqual(entryLen);
    expect(readFileSync(entry!).equals(expected)).toBe(true);
    const hit = await new SignatureCache({ dir: cacheDir }).lookup(path, sig0.params);
    expect(hit!.toBuffer().equals((await signature(path, PARAMS)).toBuffer())).toBe(true);
    // Last use moved forward, and the usage log still adds up to what is on disk.
    expect((await fsp.stat(entry!, { bigint: true })).mtimeNs).toBeGreaterThan(usedBefore);
    expect(logSum()).toBe((await cache.usage()).bytes);
  });

  it('edits, truncation, growth: each updated entry is byte for byte what a full store writes', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const path = await makeFile('f', 3_000_000);
    await cache.store(path, undefined, await signature(path, PARAMS));
    const overwrite = async (at: number, bytes: Buffer) => {
      const h = await fsp.open(path, 'r+');
      await h.write(bytes, 0, bytes.length, at);
      await h.close();
    };
    const steps: [string, () => Promise<unknown>, boolean][] = [
      ['overwrite in the middle', () => overwrite(1_500_000, randomBytes(3000)), true],
      ['overwrite two distant places', async () => (await overwrite(10, randomBytes(1)), overwrite(2_900_000, randomBytes(1))), true],
      ['truncate', () => fsp.truncate(path, 2_000_001), true],
      ['append', () => fsp.appendFile(path, randomBytes(70_000)), true],
      ['the same version again: written whole, atomically', async () => undefined, false],
      ['shrink to less than a chunk', () => fsp.truncate(path, 100_000), true],
    ];
    for (const [what, change, inPlace] of steps) {
      await change();
      const st = await statBig(path);
      const sig = await signature(path, PARAMS);
      const updates = cache.stats.updates;
      expect(await cache.store(path, st, sig), what).toBe(true);
      expect(cache.stats.updates - updates, what).toBe(inPlace ? 1 : 0);
      const files = entryFiles();
      expect(files, what).toHaveLength(1);
      expect(readFileSync(files[0]!).equals(await freshEntry(path, st, sig)), what).toBe(true);
      expect((await cache.lookup(path, sig.params, { stats: st }))!.toBuffer().equals(sig.toBuffer()), what).toBe(true);
      expect(logSum(), what).toBe((await cache.usage()).bytes);
    }
  });

  it('a new chunk length (the entries region crossed 4 MiB) is written whole', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const params = { blockLen: 16, strongLen: 16 } as const; // 24 bytes of entry per 16 bytes of file
    const path = await makeFile('f', 2_700_000);
    await cache.store(path, undefined, await signature(path, params));
    expect(splitEntry(readFileSync(entryFiles()[0]!)).chunkLen).toBe(4096);
    await fsp.appendFile(path, randomBytes(200_000));
    const st = await statBig(path);
    const sig = await signature(path, params);
    expect(await cache.store(path, st, sig)).toBe(true);
    expect(cache.stats.updates).toBe(0);
    expect(splitEntry(readFileSync(entryFiles()[0]!)).chunkLen).toBe(8192);
    expect((await cache.lookup(path, sig.params, { stats: st }))!.toBuffer().equals(sig.toBuffer())).toBe(true);
  });

  it('previous: after an atomic replacement the old entry moves to the new inode and is updated', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const path = await makeFile('f', 2_000_000);
    const st0 = await statBig(path);
    const sig0 = await signature(path, PARAMS);
    await cache.store(path, st0, sig0);
    const [oldEntry] = entryFiles();
    // What a sync does: a new file next to it, renamed over.
    const temp = join(dir, '.f.tmp');
    await fsp.writeFile(temp, Buffer.concat([readFileSync(path), Buffer.from('y')]));
    await fsp.rename(temp, path);
    const st1 = await statBig(path);
    expect(st1.ino).not.toBe(st0.ino);
    const sig1 = await signature(path, PARAMS);
    // An entry of the new inode with another block length is already there: the move replaces it.
    expect(await cache.store(path, st1, await signature(path, { ...PARAMS, blockLen: 2048 }))).toBe(true);
    expect(entryFiles()).toHaveLength(2);
    const before = wchar();
    expect(await cache.store(path, st1, sig1, { previous: st0 })).toBe(true);
    expect(wchar() - before).toBeLessThan(16 * 1024);
    expect(cache.stats.updates).toBe(1);
    const files = entryFiles();
    expect(files).toHaveLength(1);
    expect(files[0]).not.toBe(oldEntry);
    expect(readFileSync(files[0]!).equals(await freshEntry(path, st1, sig1))).toBe(true);
    expect(logSum()).toBe((await cache.usage()).bytes);

    // A previous version without an intact entry of its own: a whole write, nothing moved.
    const st2Temp = join(dir, '.f.tmp2');
    await fsp.writeFile(st2Temp, Buffer.concat([readFileSync(path), Buffer.from('z')]));
    await fsp.rename(st2Temp, path);
    const st2 = await statBig(path);
    const sig2 = await signature(path, PARAMS);
    expect(await cache.store(path, st2, sig2, { previous: st0 })).toBe(true);
    expect(cache.stats.updates).toBe(1);
    expect(entryFiles()).toHaveLength(2); // st1's entry stays until looked up or evicted
    expect((await cache.lookup(path, sig2.params, { stats: st2 }))!.toBuffer().equals(sig2.toBuffer())).toBe(true);
    expect(logSum()).toBe((await cache.usage()).bytes);
  });

  for (const edit of ['a changed byte and an append', 'a truncation'] as const) {
    it(`a torn update (${edit}) is never trusted, whatever part of it reached the disk`, async () => {
      const cache = new SignatureCache({ dir: cacheDir });
      const path = await makeFile('f', 1_000_000); // 977 blocks: a 23 KiB entries region, 6 chunks
      const st0 = await statBig(path);
      const sig0 = await signature(path, PARAMS);
      await cache.store(path, st0, sig0);
      const [entry] = entryFiles();
      const E0 = readFileSync(entry!);
      if (edit === 'a truncation') {
        await fsp.truncate(path, 600_000);
      } else {
        const h = await fsp.open(path, 'r+');
        await h.write(Buffer.from([0x5a]), 0, 1, 300_000);
        await h.close();
        await fsp.appendFile(path, randomBytes(5000));
      }
      const st1 = await statBig(path);
      const sig1 = await signature(path, PARAMS);
      const ops = await recordUpdate(() => cache.store(path, st1, sig1));
      expect(cache.stats.updates).toBe(1);
      const E1 = readFileSync(entry!);
      // The body and chunk table first, one sync, the header (80 bytes at 0) last.
      const last = ops.at(-1)!;
      expect(last.kind === 'write' && last.pos === 0 && last.bytes.length === 80).toBe(true);
      expect(ops.at(-2)!.kind).toBe('sync');
      expect(ops.filter((o) => o.kind === 'sync')).toHaveLength(1);
      expect(ops.slice(0, -1).some((o) => o.kind === 'write' && o.pos < 80)).toBe(false);
      if (edit === 'a truncation') expect(ops.some((o) => o.kind === 'truncate')).toBe(true);

      // A crash may leave any subset of the writes on disk (ignoring the sync barrier, so also
      // the header without the body), one of them half written.
      const effects = ops.filter((o) => o.kind !== 'sync');
      expect(effects.length).toBeLessThanOrEqual(6);
      let trusted = 0;
      let states = 0;
      for (let mask = 0; mask < 1 << effects.length; mask++) {
        for (let torn = -1; torn < effects.length; torn++) {
          if (torn >= 0 && ((mask & (1 << torn)) === 0 || effects[torn]!.kind !== 'write')) continue;
          const state = crashState(E0, effects, mask, torn);
          states++;
          const label = `ops ${mask.toString(2)}, torn ${torn}`;
          for (const [st, sig, full] of [[st1, sig1, E1], [st0, sig0, E0]] as const) {
            await fsp.mkdir(dirname(entry!), { recursive: true });
            await fsp.writeFile(entry!, state);
            const got = await cache.lookup(path, sig.params, { stats: st });
            if (state.equals(full)) {
              expect(got?.toBuffer().equals(sig.toBuffer()), label).toBe(true);
              trusted++;
            } else {
              expect(got, label).toBeUndefined();
            }
          }
        }
      }
      expect(states).toBeGreaterThan(8);
      expect(trusted).toBeGreaterThanOrEqual(2); // nothing reached the disk (old), all of it (new)
    });
  }
});

describe('size bound', () => {
  it('stays under maxBytes and evicts the least recently used first', async () => {
    const files: { path: string; sig: InstanceType<typeof Signature> }[] = [];
    for (let i = 0; i < 40; i++) {
      const path = await makeFile(`f${i}`, 60_000);
      files.push({ path, sig: await signature(path) });
    }
    const probe = new SignatureCache({ dir: join(dir, 'probe') });
    await probe.store(files[0]!.path, undefined, files[0]!.sig);
    const entrySize = (await probe.usage()).bytes;
    const maxBytes = entrySize * 10;
    const cache = new SignatureCache({ dir: cacheDir, maxBytes });
    const hot = files[0]!;
    for (const [i, f] of files.entries()) {
      expect(await cache.store(f.path, undefined, f.sig)).toBe(true);
      // Keep the first file in use.
      expect(await cache.lookup(hot.path, hot.sig.params), `hot entry lost after ${i} stores`).toBeDefined();
      const { bytes } = await cache.usage();
      expect(bytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(cache.stats.evicted).toBeGreaterThan(0);
    // The newest survive, the oldest cold ones went.
    expect(await cache.lookup(files[39]!.path, files[39]!.sig.params)).toBeDefined();
    expect(await cache.lookup(files[1]!.path, files[1]!.sig.params)).toBeUndefined();
    expect(await cache.lookup(files[2]!.path, files[2]!.sig.params)).toBeUndefined();
    // A fresh instance (a new process) keeps the bound using the shared usage log.
    const next = new SignatureCache({ dir: cacheDir, maxBytes });
    for (const f of files.slice(1, 20)) {
      await next.store(f.path, undefined, f.sig);
      expect((await next.usage()).bytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(next.stats.scans).toBeLessThan(19); // not a scan per store
  });

  it('a cache whose usage log was lost still finds its size', async () => {
    const files: string[] = [];
    for (let i = 0; i < 12; i++) files.push(await makeFile(`f${i}`, 60_000));
    const first = new SignatureCache({ dir: cacheDir });
    for (const f of files) await first.store(f, undefined, await signature(f));
    const { bytes } = await first.usage();
    await fsp.rm(join(cacheDir, 'usage.log'));
    const small = new SignatureCache({ dir: cacheDir, maxBytes: Math.floor(bytes / 2) });
    const extra = await makeFile('extra', 60_000);
    await small.store(extra, undefined, await signature(extra));
    expect((await small.usage()).bytes).toBeLessThanOrEqual(Math.floor(bytes / 2));
  });

  it('removes temp files left by crashed writers once they are old', async () => {
    const cache = new SignatureCache({ dir: cacheDir });
    const { path, sig } = await cachedFile(cache);
    const shard = dirname(entryFiles()[0]!);
    const oldTemp = join(shard, '.tmp-99999-deadbeef');
    const newTemp = join(shard, '.tmp-99999-cafef00d');
    await fsp.writeFile(oldTemp, 'partial');
    await fsp.writeFile(newTemp, 'in progress');
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    await fsp.utimes(oldTemp, old, old);
    await cache.prune(true);
    expect(existsSync(oldTemp)).toBe(false);
    expect(existsSync(newTemp)).toBe(true); // may be a live writer's
    expect(await cache.lookup(path, sig.params)).toBeDefined();
  });
});

describe('concurrency', () => {
  const distModule = join(ROOT, 'dist', 'lib', 'sigcache.js');

  it('concurrent writers and readers never see a torn entry', async () => {
    expect(existsSync(distModule), 'needs dist/ (npm run build:ts)').toBe(true);
    const path = await makeFile('f', 300_000);
    const other = randomBytes(300_000);
    const sigA = await signature(path);
    const sigB = await signature(other, { blockLen: sigA.blockLen, strongLen: sigA.strongLen });
    const script = `
      import { SignatureCache } from ${JSON.stringify(distModule)};
      import { Signature } from ${JSON.stringify(join(ROOT, 'dist', 'lib', 'signature.js'))};
      import { readFileSync } from 'node:fs';
      import { stat } from 'node:fs/promises';
      const [cacheDir, path, aFile, bFile, rounds] = process.argv.slice(1);
      const a = Signature.parse(readFileSync(aFile)), b = Signature.parse(readFileSync(bFile));
      const cache = new SignatureCache({ dir: cacheDir, maxBytes: 64 * 1024 * 1024 });
      const st = await stat(path, { bigint: true });
      let torn = 0, hits = 0;
      for (let i = 0; i < Number(rounds); i++) {
        await cache.store(path, st, i % 2 ? a : b);
        const got = await cache.lookup(path, a.params, { stats: st });
        if (got) {
          hits++;
          const buf = got.toBuffer();
          if (!buf.equals(a.toBuffer()) && !buf.equals(b.toBuffer())) torn++;
        }
      }
      const s = cache.stats;
      console.log(JSON.stringify({ torn, hits, corrupt: s.corrupt }));
    `;
    const aFile = join(dir, 'a.sig');
    const bFile = join(dir, 'b.sig');
    await fsp.writeFile(aFile, sigA.toBuffer());
    await fsp.writeFile(bFile, sigB.toBuffer());
    const runChild = () =>
      new Promise<{ torn: number; hits: number; corrupt: number }>((resolvePromise, reject) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script, cacheDir, path, aFile, bFile, '60'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => (code === 0 ? resolvePromise(JSON.parse(out)) : reject(new Error(`child exited ${code}: ${err}`))));
      });
    const results = await Promise.all([runChild(), runChild(), runChild(), runChild()]);
    for (const r of results) {
      expect(r.torn).toBe(0);
      expect(r.corrupt).toBe(0);
      expect(r.hits).toBeGreaterThan(0);
    }
    // What is left is one whole entry and no temp files.
    const left = entryFiles();
    expect(left.filter((p) => p.includes('.tmp-'))).toEqual([]);
    const cache = new SignatureCache({ dir: cacheDir });
    const final = await cache.lookup(path, sigA.params);
    expect(final).toBeDefined();
    expect([sigA.toBuffer().toString('hex'), sigB.toBuffer().toString('hex')]).toContain(final!.toBuffer().toString('hex'));
    expect(fileIdentity(await statBig(path)).size).toBe(300_000n);
  });
});

describe('SignatureRecorder', () => {
  type Params = InstanceType<typeof Signature>['params'];

  /** Feeds the recorder one segment list and returns the signature and the bytes read back. */
  async function record(
    params: Params,
    basis: Buffer,
    basisSig: InstanceType<typeof Signature> | undefined,
    segments: ({ copy: [number, number]; how: 'unseen' | 'bytes' | 'split' } | { literal: Buffer })[],
  ) {
    const next = Buffer.concat(segments.map((s) => ('literal' in s ? s.literal : basis.subarray(s.copy[0], s.copy[0] + s.copy[1]))));
    const rec = new SignatureRecorder(params, next.length, basisSig && { signature: basisSig, size: basis.length });
    for (const s of segments) {
      if ('literal' in s) {
        await rec.data(s.literal);
        continue;
      }
      const [at, len] = s.copy;
      if (s.how === 'bytes') await rec.data(basis.subarray(at, at + len));
      else if (s.how === 'unseen') rec.copied(at, len);
      else {
        const { start, end } = rec.reusableSpan(at, len);
        if (start > 0) await rec.data(basis.subarray(at, at + start));
        if (end > start) rec.copied(at + start, end - start);
        if (end < len) await rec.data(basis.subarray(at + end, at + len));
      }
    }
    const predicted = rec.holeBytes;
    let readBack = 0;
    const sig = await rec.finish(async (offset, length) => {
      readBack += length;
      return next.subarray(offset, offset + length);
    });
    expect(readBack).toBe(predicted);
    return { sig, next, readBack, reused: rec.reusedBlocks };
  }

  const N = 1_000_003;
  const basis = randomBytes(N);
  let basisSig: InstanceType<typeof Signature>;
  beforeEach(async () => {
    basisSig ??= await signature(basis);
  });

  it('one-byte append: reuses every basis block but the last, reads back at most one block', async () => {
    const params = SignatureRecorder.paramsFor(N + 1, basisSig);
    expect(params).toEqual(basisSig.params);
    const { sig, next, readBack, reused } = await record(params, basis, basisSig, [{ copy: [0, N], how: 'unseen' }, { literal: Buffer.from('x') }]);
    expect(sig.toBuffer().equals((await signature(next, params)).toBuffer())).toBe(true);
    expect(reused).toBe(Math.floor(N / basisSig.blockLen));
    expect(readBack).toBeLessThanOrEqual(basisSig.blockLen);
  });

  it('a byte changed in the middle: one block read back', async () => {
    const m = 500_000;
    const { sig, next, readBack } = await record(basisSig.params, basis, basisSig, [
      { copy: [0, m], how: 'unseen' },
      { literal: Buffer.from([basis[m]! ^ 0xff]) },
      { copy: [m + 1, N - m - 1], how: 'unseen' },
    ]);
    expect(sig.toBuffer().equals((await signature(next, basisSig.params)).toBuffer())).toBe(true);
    expect(readBack).toBe(basisSig.blockLen);
  });

  it('one byte prepended: nothing is reusable, so the caller passes the bytes and nothing is read back', async () => {
    const rec = new SignatureRecorder(basisSig.params, N + 1, { signature: basisSig, size: N });
    await rec.data(Buffer.from('x'));
    expect(rec.reusableSpan(0, N)).toEqual({ start: 0, end: 0 });
    const { sig, next, readBack } = await record(basisSig.params, basis, basisSig, [{ literal: Buffer.from('x') }, { copy: [0, N], how: 'split' }]);
    expect(readBack).toBe(0);
    expect(sig.toBuffer().equals((await signature(next, basisSig.params)).toBuffer())).toBe(true);
    // Unseen instead: all of it is read back.
    const unseen = await record(basisSig.params, basis, basisSig, [{ literal: Buffer.from('x') }, { copy: [0, N], how: 'unseen' }]);
    expect(unseen.readBack).toBe(N + 1);
    expect(unseen.sig.toBuffer().equals(sig.toBuffer())).toBe(true);
  });

  it('whole file from data in odd chunk sizes equals signature()', async () => {
    for (const params of [basisSig.params, { format: 'rdiff', blockLen: 2048, strongLen: 32, strong: 'blake2b', rolling: 'rabinkarp' } as const]) {
      const rec = new SignatureRecorder(params, N);
      const sizes = [1, 7, 2047, 2048, 2049, 100_000, 1];
      let at = 0;
      for (let i = 0; at < N; i++) {
        const n = Math.min(sizes[i % sizes.length]!, N - at);
        await rec.data(basis.subarray(at, at + n));
        at += n;
      }
      expect(rec.holeBytes).toBe(0);
      const sig = await rec.finish();
      expect(sig.toBuffer().equals((await signature(basis, params)).toBuffer())).toBe(true);
    }
  });

  it('any edit script, any way of feeding: the same signature as computing it from the bytes', async () => {
    const kinds = [
      { format: 'deltasync', strong: 'xxh3', rolling: 'ds64', strongLen: 8 },
      { format: 'deltasync', strong: 'md4', rolling: 'rollsum', strongLen: 5 },
      { format: 'rdiff', strong: 'blake2b', rolling: 'rabinkarp', strongLen: 32 },
    ] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 1, max: 700 }),
        fc.constantFrom(...kinds),
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('copy' as const), at: fc.nat(), len: fc.integer({ min: 0, max: 5000 }), how: fc.constantFrom('unseen', 'bytes', 'split') }),
            fc.record({ kind: fc.constant('literal' as const), len: fc.integer({ min: 0, max: 3000 }) }),
          ),
          { maxLength: 12 },
        ),
        fc.boolean(),
        async (size, blockLen, kind, script, withBasis) => {
          const base = randomBytes(size);
          const params = { ...kind, blockLen } as Params;
          const segments = script.map((s) => {
            if (s.kind === 'literal') return { literal: randomBytes(s.len) };
            const at = size === 0 ? 0 : s.at % size;
            return { copy: [at, Math.min(s.len, size - at)] as [number, number], how: s.how };
          });
          const bsig = withBasis ? await signature(base, params) : undefined;
          const { sig, next } = await record(params, base, bsig, segments);
          expect(sig.toBuffer().equals((await signature(next, params)).toBuffer())).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('misuse is refused', async () => {
    const rec = new SignatureRecorder(basisSig.params, 10);
    await expect(rec.data(Buffer.alloc(11))).rejects.toMatchObject({ code: 'ERR_USAGE' });
    rec.copied(0, 4);
    await expect(rec.finish(async () => Buffer.alloc(0))).rejects.toMatchObject({ code: 'ERR_USAGE' }); // 4 of 10
    rec.copied(4, 6);
    await expect(rec.finish()).rejects.toMatchObject({ code: 'ERR_USAGE' }); // holes but no reader
    const other = new SignatureRecorder(basisSig.params, 10);
    other.copied(0, 10);
    await expect(other.finish(async () => Buffer.alloc(3))).rejects.toMatchObject({ code: 'ERR_TRUNCATED' });
  });
});
