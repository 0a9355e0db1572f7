import { describe, expect, it } from 'vitest';
import { yieldIfBusy } from '../lib/event-loop.js';

describe('yieldIfBusy', () => {
  it('lets timers run during a long chain of awaits that resolve at once', async () => {
    let fired = 0;
    const timer = setInterval(() => fired++, 1);
    const end = performance.now() + 200;
    let calls = 0;
    let waits = 0;
    while (performance.now() < end) {
      const wait = yieldIfBusy();
      calls++;
      if (wait) waits++;
      await wait;
    }
    clearInterval(timer);
    // Without the waits the interval never fires: the loop below would hold the event loop.
    expect(fired).toBeGreaterThan(3);
    // And it waits only now and then (every ~20 ms), not on every call.
    expect(waits).toBeGreaterThan(0);
    expect(waits).toBeLessThan(calls / 100);
  });
});
