// Names the test during which a worker's event loop stood still for 20 s or more. vitest's
// worker RPC gives up after 60 s of that ("[vitest-worker]: Timeout calling onTaskUpdate")
// without saying which test held the loop (a long spawnSync, an endless chain of microtasks).
import { expect } from 'vitest';

const STALL_MS = 20_000;
let last = Date.now();
setInterval(() => {
  const now = Date.now();
  if (now - last >= STALL_MS) {
    const test = expect.getState().currentTestName ?? '(between tests)';
    process.stderr.write(`loop-stall: the event loop did not turn for ${Math.round((now - last) / 1000)} s, during "${test}"\n`);
  }
  last = now;
}, 1000).unref();
