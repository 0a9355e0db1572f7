// The final "N passed, N failed" line of .ci/run, parsed from vitest summaries. The samples
// are vitest 3.2's own summary lines (coloured as vitest prints them when CI is set).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CI_RUN = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), '.ci', 'run');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deltasync-ci-count-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function count(log: string, status: number): { line: string; code: number | null } {
  const file = join(dir, `log-${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, log);
  const r = spawnSync('bash', [CI_RUN, '--count', file, String(status)], { encoding: 'utf8' });
  return { line: r.stdout.trim(), code: r.status };
}

const ESC = '\x1b';
const colour = (code: number, text: string): string => `${ESC}[${code}m${text}${ESC}[39m`;

describe('.ci/run --count', () => {
  test('all passed, with skipped and todo', () => {
    const log = ' Test Files  12 passed (12)\n      Tests  340 passed | 3 skipped | 2 todo (345)\n   Start at  10:00:00\n';
    expect(count(log, 0)).toEqual({ line: '340 passed, 0 failed', code: 0 });
  });

  test('failures first, in colour', () => {
    const log =
      `${ESC}[2m Test Files ${ESC}[22m ${colour(31, '2 failed')}${ESC}[90m (2)${ESC}[39m\n` +
      `${ESC}[2m      Tests ${ESC}[22m ${colour(31, '1 failed')}${ESC}[2m | ${ESC}[22m${colour(32, '2 passed')}` +
      `${ESC}[2m | ${ESC}[22m${colour(33, '1 skipped')}${ESC}[2m | ${ESC}[22m${colour(90, '1 todo')}${ESC}[90m (5)${ESC}[39m\n`;
    // One test failed; one suite failed to load (reported apart from the tests).
    const withSuite = `⎯⎯⎯⎯⎯⎯ Failed Suites 1 ⎯⎯⎯⎯⎯⎯⎯\n${log}`;
    expect(count(log, 1)).toEqual({ line: '2 passed, 1 failed', code: 0 });
    expect(count(withSuite, 1)).toEqual({ line: '2 passed, 2 failed', code: 0 });
  });

  test('unhandled errors count as failures', () => {
    const log = '      Tests  10 passed (10)\n     Errors  2 errors\n';
    expect(count(log, 1).line).toBe('10 passed, 2 failed');
  });

  test('a failing status never reports zero failures', () => {
    expect(count('      Tests  10 passed (10)\n', 1).line).toBe('10 passed, 1 failed');
  });

  test('no summary at all', () => {
    expect(count('error TS2307: Cannot find module\n', 2)).toEqual({ line: '0 passed, 1 failed', code: 1 });
  });
});
