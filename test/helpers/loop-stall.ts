// Keeps each test worker's event loop turning between tests, and names the test during which
// it stood still for 20 s or more anyway.
//
// vitest's worker RPC gives up after 60 s without a turn of the loop ("[vitest-worker]: Timeout
// calling onTaskUpdate"). A file of synchronous tests (spawnSync of the CLI, 54 of them in
// test/cli.test.ts) never lets the loop turn between its tests: under ASan that file ran 71 s
// on end. One setImmediate after each test gives the RPC its turn.
import { afterEach, expect } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));

const STALL_MS = 20_000;
let last = Date.now();
setInterval(() => {
  const now = Date.now();
  if (now - last >= STALL_MS) {
    const test = expect.getState().currentTestName ?? '(between tests)';
    process.stderr.write(`loop-stall: the event loop did not turn for ${Math.round((now - last) / 1000)} s, until "${test}"\n`);
  }
  last = now;
}, 1000).unref();
