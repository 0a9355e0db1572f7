// Bundles the CLI compiled by tsc (dist/lib) into one CommonJS file, dist/bundle/main.cjs,
// which bin/deltasync.js loads with V8's code cache; then runs one small sync with it so the
// cache (dist/bundle/main.cjs.v8cache) exists from the start.
//
// Why a bundle: Node's ESM loader reads (on the thread pool), resolves and links each module on
// its own, about a millisecond apiece, and a sync loads some 50 of ours: that was most of the
// start-up of a small sync (one unchanged file: 93 -> 68 ms here; both ends of a remote sync
// pay it). Why CommonJS: Node 20 gives a code cache (vm.Script cachedData) to scripts only, not
// to ES modules; with it a start compiles none of the code the cached run compiled (one
// unchanged file: 118-138 -> 101-117 ms). The file commands' modules are still evaluated only
// when used (esbuild wraps dynamically imported modules in lazy initializers).
// bin/deltasync.js takes the bundle only while it is not older than dist/lib/cli/main.js: a tsc
// run without this step falls back to the modules, never to stale code.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [join(root, 'dist', 'lib', 'cli', 'main.js')],
  outfile: join(outdir, 'main.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // Dependencies (node-gyp-build) are loaded from node_modules as before.
  packages: 'external',
  // The modules find the package root and the addon from their own URL.
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// The warm-up: a first sync makes a destination; a second one, the run whose code is kept, meets
// an unchanged file, a changed one (the delta path) and a new one (sent whole). Its signature
// cache lives in the scratch directory too. Without the addon (not built yet, no compiler) it
// fails; the first sync of a user then writes the code cache.
const scratch = mkdtempSync(join(tmpdir(), 'deltasync-warmup-'));
try {
  const src = join(scratch, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'a'), 'a small file\n');
  writeFileSync(join(src, 'b'), Buffer.alloc(100_000, 1));
  const sync = () =>
    spawnSync(process.execPath, [join(root, 'bin', 'deltasync.js'), '-a', '--no-whole-file', `${src}/`, `${join(scratch, 'dst')}/`], {
      env: { ...process.env, XDG_CACHE_HOME: join(scratch, 'cache') },
      encoding: 'utf8',
    });
  let r = sync();
  if (r.status === 0) {
    writeFileSync(join(src, 'b'), Buffer.alloc(100_001, 1));
    writeFileSync(join(src, 'c'), 'a new file\n');
    rmSync(join(outdir, 'main.cjs.v8cache'), { force: true });
    r = sync();
  }
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || '').trim().split('\n')[0];
    process.stderr.write(`bundle-cli: no code cache made (the warm-up sync failed: ${why})\n`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
