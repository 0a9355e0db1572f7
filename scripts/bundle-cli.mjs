// Bundles the CLI compiled by tsc (dist/lib) into dist/bundle/, which bin/deltasync.js loads.
//
// Why: Node's ESM loader reads (on the thread pool), resolves and links each module on its
// own, about a millisecond apiece, and a sync loads some 50 of ours: that was most of the
// start-up of a small sync (one unchanged file: 93 -> 68 ms here; both ends of a remote sync
// pay it). The dynamic imports of lib/cli/main.ts stay separate chunks, so the file commands
// do not load the sync engine. bin/deltasync.js takes the bundle only while it is not older
// than dist/lib/cli/main.js: a tsc run without this step falls back to the modules, never to
// stale code.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { main: join(root, 'dist', 'lib', 'cli', 'main.js') },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Dependencies (node-gyp-build) are loaded from node_modules as before.
  packages: 'external',
  logLevel: 'warning',
});
