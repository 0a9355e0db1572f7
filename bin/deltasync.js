#!/usr/bin/env node
// Entry point of the `deltasync` command. The CLI itself is TypeScript compiled into dist/
// (`npm install` runs `prepare`: tsc, then scripts/bundle-cli.mjs); this file only starts it.
// The bundle (dist/bundle/) starts faster than the modules (dist/lib/) it is made of; it is used
// only while it is not older than them, so a tsc run alone never leaves stale code running.
import { statSync } from 'node:fs';

const BUNDLE = '../dist/bundle/main.js';
const MODULES = '../dist/lib/cli/main.js';

function bundleIsCurrent() {
  try {
    return statSync(new URL(BUNDLE, import.meta.url)).mtimeMs >= statSync(new URL(MODULES, import.meta.url)).mtimeMs;
  } catch {
    return false;
  }
}

let cli;
try {
  cli = await import(bundleIsCurrent() ? BUNDLE : MODULES);
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
