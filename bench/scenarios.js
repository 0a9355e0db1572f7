// Test data for the benchmark: a random basis and its variants, and a tree of small files.
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, fstatSync, futimesSync, mkdirSync, openSync, readSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const CHUNK = 64 << 20;

function writeRandom(path, size) {
  const fd = openSync(path, 'w');
  for (let done = 0; done < size; ) {
    const n = Math.min(CHUNK, size - done);
    writeSync(fd, randomBytes(n));
    done += n;
  }
  closeSync(fd);
}

function copyWithPrefix(src, dst, prefix, size) {
  const out = openSync(dst, 'w');
  writeSync(out, prefix);
  const inp = openSync(src, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  for (let pos = 0; pos < size; ) {
    const n = readSync(inp, buf, 0, CHUNK, pos);
    if (n <= 0) break;
    writeSync(out, buf, 0, n);
    pos += n;
  }
  closeSync(inp);
  closeSync(out);
}

/** Writes basis + variants (identical, append, prepend, scattered, unrelated); returns paths. */
export function scenarios(dir, size) {
  const base = join(dir, 'basis');
  writeRandom(base, size);
  const v = {
    identical: join(dir, 'new-identical'),
    append: join(dir, 'new-append'),
    prepend: join(dir, 'new-prepend'),
    scattered: join(dir, 'new-scattered'),
    unrelated: join(dir, 'new-unrelated'),
  };
  copyFileSync(base, v.identical);
  copyFileSync(base, v.append);
  const fa = openSync(v.append, 'a');
  writeSync(fa, Buffer.from([0x30]));
  closeSync(fa);
  copyWithPrefix(base, v.prepend, Buffer.from([0x30]), size);
  copyFileSync(base, v.scattered);
  const fs = openSync(v.scattered, 'r+');
  for (let i = 0; i < 100; i++) {
    const at = Math.floor(((i + 0.5) / 100) * Math.max(0, size - 1024));
    writeSync(fs, randomBytes(1024), 0, 1024, at);
  }
  closeSync(fs);
  writeRandom(v.unrelated, size);
  return { base, variants: v };
}

/** A tree of `count` small files (1–40 KiB) in nested directories. */
export function makeTree(dir, count) {
  for (let i = 0; i < count; i++) {
    const sub = join(dir, `d${i % 37}`, `e${i % 11}`);
    mkdirSync(sub, { recursive: true });
    const fd = openSync(join(sub, `f${i}.dat`), 'w');
    writeSync(fd, randomBytes(1024 + ((i * 7919) % (40 * 1024))));
    closeSync(fd);
  }
}

/**
 * Changes about 10% of the files of a tree made by makeTree, in place, and moves their mtime
 * a minute on: the others keep the base's mtimes, so both tools' quick check (size and mtime)
 * skips exactly the unchanged files, whatever second the copies were made in.
 */
export function modifyTree(dir) {
  let i = 0;
  for (const d of readdirSync(dir).sort()) {
    for (const e of readdirSync(join(dir, d)).sort()) {
      for (const f of readdirSync(join(dir, d, e)).sort()) {
        if (i++ % 10 !== 0) continue;
        const fd = openSync(join(dir, d, e, f), 'r+');
        writeSync(fd, randomBytes(100), 0, 100, 500);
        const { mtimeMs } = fstatSync(fd);
        futimesSync(fd, new Date(), new Date(mtimeMs + 60_000));
        closeSync(fd);
      }
    }
  }
}
