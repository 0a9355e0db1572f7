// Keeps the two native builds in step: CMakeLists.txt compiles every native/*.cc,
// native/hash/*.cc and native/format/*.cc by glob and gives *_avx2.cc / *_avx512.cc their SIMD flags by name, while
// binding.gyp lists files and flags by hand. A source added to one but not the other, or a flag
// changed on one side only, fails here instead of in a user's build.
// Then the packaging check itself, scripts/package-check.sh: prebuilds (x64, and arm64 run
// under qemu), npm pack, a fresh install without a compiler, and the no-addon errors.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface GypTarget {
  target_name: string;
  sources?: string[];
  cflags_cc?: string[];
  conditions?: unknown[];
}

/** binding.gyp is a Python literal (comments, maybe trailing commas): let Python read it. */
function readGyp(): { targets: GypTarget[]; conditions?: unknown[] } {
  const json = execFileSync(
    'python3',
    ['-c', 'import ast, json, sys; print(json.dumps(ast.literal_eval(open(sys.argv[1]).read())))', join(root, 'binding.gyp')],
    { encoding: 'utf8' },
  );
  return JSON.parse(json) as { targets: GypTarget[]; conditions?: unknown[] };
}

/** Every target, including those inside `conditions` blocks (whatever the architecture). */
function allTargets(gyp: { targets: GypTarget[]; conditions?: unknown[] }): GypTarget[] {
  const out: GypTarget[] = [...gyp.targets];
  const visit = (conditions: unknown[] | undefined): void => {
    for (const cond of conditions ?? []) {
      if (!Array.isArray(cond)) continue;
      for (const branch of cond.slice(1)) {
        if (branch && typeof branch === 'object' && Array.isArray((branch as { targets?: unknown }).targets)) {
          out.push(...((branch as { targets: GypTarget[] }).targets));
          visit((branch as { conditions?: unknown[] }).conditions);
        }
      }
    }
  };
  visit(gyp.conditions);
  return out;
}

function globbed(): string[] {
  const list = (dir: string): string[] =>
    (existsSync(join(root, dir)) ? readdirSync(join(root, dir)) : [])
      .filter((f) => f.endsWith('.cc'))
      .map((f) => `${dir}/${f}`);
  return [...list('native'), ...list('native/hash'), ...list('native/format'), ...list('native/protocol')].sort();
}

/** The COMPILE_OPTIONS CMakeLists.txt sets on one group of SIMD sources. */
function cmakeFlags(group: string): string[] {
  const text = readFileSync(join(root, 'CMakeLists.txt'), 'utf8');
  const m = new RegExp(`set_source_files_properties\\(\\$\\{${group}\\}\\s+PROPERTIES COMPILE_OPTIONS "([^"]*)"\\)`).exec(text);
  if (!m) throw new Error(`CMakeLists.txt sets no COMPILE_OPTIONS on ${group}`);
  return (m[1] as string).split(';');
}

describe('binding.gyp and CMakeLists.txt build the same addon', () => {
  const targets = allTargets(readGyp());
  const sources = targets.flatMap((t) => (t.sources ?? []).map((s) => ({ src: s, target: t })));

  it('binding.gyp compiles exactly the sources CMakeLists.txt globs', () => {
    expect(sources.map((s) => s.src).sort()).toEqual(globbed());
  });

  it('SIMD flags sit only on the files named for them, and match on both sides', () => {
    const avx2 = cmakeFlags('DELTASYNC_AVX2_SOURCES');
    const avx512 = cmakeFlags('DELTASYNC_AVX512_SOURCES');
    expect(avx2).toEqual(['-mavx2', '-msse4.1']);
    expect(avx512).toEqual(['-mavx512f', '-mavx512bw', '-mavx2']);
    for (const { src, target } of sources) {
      const machineFlags = (target.cflags_cc ?? []).filter((f) => f.startsWith('-m')).sort();
      const expected = src.endsWith('_avx2.cc') ? avx2 : src.endsWith('_avx512.cc') ? avx512 : [];
      expect({ src, flags: machineFlags }).toEqual({ src, flags: [...expected].sort() });
    }
  });
});

describe('the npm tarball', () => {
  // Needs g++-aarch64-linux-gnu, qemu-user and `file` (Debian), and the npm registry and Debian's
  // archive for the dependencies and the arm64 node; about a minute on 2 cores.
  it('installs without a compiler, runs, and explains a missing addon (scripts/package-check.sh)', async () => {
    // --no-tsc: `npm test` built dist/ already, and rebuilding it here would race the tests that
    // run the CLI from it. Spawned asynchronously: a minute-long blocking call starves vitest's
    // worker RPC.
    const { status, output } = await new Promise<{ status: number | null; output: string }>((resolve, reject) => {
      const child = spawn('bash', [join(root, 'scripts/package-check.sh'), '--no-tsc'], { cwd: root });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 400_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ status: code, output: text });
      });
    });
    expect(status, output.split('\n').slice(-40).join('\n')).toBe(0);
    expect(output).toMatch(/package-check: OK/);
  }, 420_000);
});
