// The I/O of a CLI run, as the kernel counts it: the command runs under bench/iowrap.sh, whose
// shell collects /proc/PID/io rchar/wchar of the reaped process tree (copy_file_range included).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { run } from './run.js';
import { BIN, REPO } from './trees.js';

const IOWRAP = join(REPO, 'bench', 'iowrap.sh');

export interface Io {
  read: number;
  written: number;
}

/**
 * Runs `deltasync --no-whole-file --sig-cache CACHE ARGS` under iowrap.sh (its counters file in
 * `workDir`); the run must succeed silently. --no-whole-file: a local sync sends whole files by
 * default, as rsync's does.
 */
export async function measuredSync(workDir: string, cache: string, args: string[], timeout = 120_000): Promise<Io> {
  const ioFile = join(workDir, 'io.txt');
  const r = await run('sh', [IOWRAP, ioFile, process.execPath, BIN, '--no-whole-file', '--sig-cache', cache, ...args], { timeout });
  expect(r.error).toBeUndefined();
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const text = readFileSync(ioFile, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)![1]);
  return { read: field('rchar'), written: field('wchar') };
}
