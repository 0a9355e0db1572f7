// Builds the libFuzzer harnesses (fuzz/build.sh: clang, ASan + UBSan: formats and protocol) and
// runs each for DELTASYNC_FUZZ_SECONDS (default 20; .ci/run sets 60) from the committed seed
// corpus (fuzz/run.sh). Any crash, sanitizer report or
// failed harness check fails the test. Skipped, saying so, only when clang cannot build
// libFuzzer programs (Debian: apt-get install clang libclang-rt-14-dev).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.DELTASYNC_FUZZ_SECONDS ?? 20);
const HARNESSES = ['fuzz_delta_deltasync', 'fuzz_delta_rdiff', 'fuzz_signature', 'fuzz_protocol'];

/** Whether clang can link a libFuzzer program here (checked once, before the tests are collected). */
function fuzzerRuntime(): { ok: boolean; why: string } {
  const dir = mkdtempSync(join(tmpdir(), 'deltasync-fuzz-probe-'));
  try {
    const src = join(dir, 'probe.cc');
    writeFileSync(src, 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n');
    const r = spawnSync('clang++', ['-fsanitize=fuzzer,address,undefined', src, '-o', join(dir, 'probe')], { encoding: 'utf8' });
    if (r.error) return { ok: false, why: `clang++ not found (${r.error.message})` };
    return r.status === 0 ? { ok: true, why: '' } : { ok: false, why: (r.stderr || '').split('\n')[0] ?? 'link failed' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a command without blocking the worker (vitest's RPC times out on a blocked loop). */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const runtime = fuzzerRuntime();
if (!runtime.ok) {
  console.warn(`fuzz tests SKIPPED: clang++ cannot build libFuzzer programs: ${runtime.why}. Install clang and libclang-rt-14-dev.`);
}

describe.skipIf(!runtime.ok)('libFuzzer harnesses (ASan + UBSan)', () => {
  let out: string;

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'deltasync-fuzz-'));
    const r = await run('sh', [join(root, 'fuzz/build.sh'), out]);
    expect(r.stderr).not.toContain('error:');
    expect(r.status).toBe(0);
    // The matcher stage of fuzz_signature must be built, not silently dropped.
    expect(r.stderr).not.toContain('WARNING');
  }, 600_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('every seed is in the committed corpus and every harness has seeds', () => {
    for (const name of HARNESSES) expect(readdirSync(join(root, 'fuzz/corpus', name)).length).toBeGreaterThanOrEqual(5);
  });

  for (const name of HARNESSES) {
    it(`${name}: ${SECONDS} s without a crash`, async () => {
      const r = await run('sh', [join(root, 'fuzz/run.sh'), String(SECONDS), name], { ...process.env, FUZZ_OUT: out });
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '';
      // On failure the message shows run.sh's report: the finding and where the input was saved.
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(line).toMatch(/crashes=0/);
      const execs = Number(/execs=(\d+)/.exec(line)?.[1] ?? 0);
      // Thousands of executions per second are normal; far fewer means the harness is broken.
      expect(execs).toBeGreaterThan(SECONDS * 100);
    }, (SECONDS + 120) * 1000);
  }
});
