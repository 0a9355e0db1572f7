#!/usr/bin/env node
// Entry point of the `deltasync` command. The CLI itself is TypeScript compiled into dist/
// (`npm install` runs `prepare`: tsc, then scripts/bundle-cli.mjs); this file only starts it.
// The bundle (dist/bundle/main.cjs) starts faster than the modules (dist/lib/) it is made of;
// it is used only while it is not older than them, so a tsc run alone never leaves stale code
// running. It is compiled with V8's code cache (main.cjs.v8cache beside it), which a sync
// writes when there was none for this bundle and this Node.
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

const BUNDLE = fileURLToPath(new URL('../dist/bundle/main.cjs', import.meta.url));
const CACHE = `${BUNDLE}.v8cache`;
const MODULES = '../dist/lib/cli/main.js';
/**
 * The file commands (lib/cli/main.ts) run without the code cache: it holds a sync's compiled
 * code, ~1 MB of their peak RSS (a 1 GiB delta: 64.9 -> 66.1 MB), whose target is tight, for
 * a few milliseconds of a start that their hashing dwarfs.
 */
const FILE_COMMANDS = new Set(['signature', 'delta', 'patch']);

function bundleIsCurrent() {
  try {
    return statSync(BUNDLE).mtimeMs >= statSync(new URL(MODULES, import.meta.url)).mtimeMs;
  } catch {
    return false;
  }
}

/**
 * The bundle's exports, compiled from the code cache when there is one for this very file: V8
 * itself checks only the source's length and its own version and flags, so the cache's first
 * line names the file's size, mtime and inode and the Node version it was made for.
 */
function loadBundle(withCache) {
  const source = readFileSync(BUNDLE, 'utf8');
  const st = statSync(BUNDLE, { bigint: true });
  const stamp = `deltasync-code-cache ${st.size} ${st.mtimeNs} ${st.ino} ${process.version}\n`;
  let cachedData;
  try {
    const raw = withCache ? readFileSync(CACHE) : undefined;
    const end = raw ? raw.indexOf(10) + 1 : 0;
    if (end > 0 && raw.toString('latin1', 0, end) === stamp) cachedData = raw.subarray(end);
  } catch {
    // No cache yet: compiled from the source.
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: BUNDLE,
    cachedData,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(BUNDLE), module, BUNDLE, dirname(BUNDLE));
  const cacheUsable = cachedData !== undefined && !script.cachedDataRejected;
  return { cli: module.exports, keepCode: cacheUsable ? undefined : () => writeCache(script, stamp) };
}

/** Writes the code compiled so far, unless the package directory is not writable (no error). */
function writeCache(script, stamp) {
  const temp = `${CACHE}.${process.pid}.tmp`;
  let fd;
  try {
    fd = openSync(temp, 'wx', 0o644);
  } catch {
    return;
  }
  try {
    writeSync(fd, stamp, null, 'latin1');
    writeSync(fd, script.createCachedData());
    closeSync(fd);
    fd = undefined;
    renameSync(temp, CACHE);
  } catch {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // Already gone.
    }
  }
}

let cli;
let keepCode;
try {
  if (bundleIsCurrent()) ({ cli, keepCode } = loadBundle(!FILE_COMMANDS.has(process.argv[2])));
  else cli = await import(MODULES);
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist')) {
    process.stderr.write(
      'deltasync: the TypeScript is not built (dist/ is missing); run `npm install` or `npm run build:ts` in the package directory\n',
    );
  } else {
    process.stderr.write(`deltasync: cannot start: ${err && err.message ? err.message : String(err)}\n`);
  }
  process.exit(1);
}
process.exitCode = await cli.main(process.argv.slice(2));
if (keepCode && process.exitCode === 0 && cli.ranSync?.()) keepCode();
