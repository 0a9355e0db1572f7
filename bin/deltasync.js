#!/usr/bin/env node
// Entry point of the `deltasync` command. The CLI itself is TypeScript compiled into dist/
// (`npm install` runs `prepare`, which runs tsc); this file only starts it.
let cli;
try {
  cli = await import('../dist/lib/cli/main.js');
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
