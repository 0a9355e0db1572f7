// Keeps the event loop turning during work whose awaits resolve at once.
//
// Synchronous file calls (lib/fd-handle.ts) and native calls on small inputs (run inline by the
// addon) resolve at once, so a sync of many cached small files, or a loop over small buffers,
// could run as one long chain of microtasks and starve timers and I/O callbacks (an
// application's, or a test runner's RPC). Once such a chain has held the event loop for
// YIELD_AFTER_MS, the next call waits for one turn of the loop.

import { nowMs } from './builtins.js';

const YIELD_AFTER_MS = 20;
let turnStarted = 0;
let turnMarked = false;

/** Undefined (go on) or a promise resolved after one turn of the event loop: `await` either. */
export function yieldIfBusy(): Promise<void> | undefined {
  const now = nowMs();
  if (!turnMarked) {
    // The first call of this turn: the immediate runs once the chain lets the loop move.
    turnMarked = true;
    turnStarted = now;
    setImmediate(() => {
      turnMarked = false;
    });
    return undefined;
  }
  if (now - turnStarted < YIELD_AFTER_MS) return undefined;
  return new Promise((resolve) => setImmediate(resolve));
}
