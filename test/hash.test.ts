// Strong hashes through the addon, checked against Debian's own tools (`xxhsum -H2`, `b2sum`,
// OpenSSL's legacy MD4 when present) and RFC 1320's MD4 suite; plus the standalone native test
// program's SIMD agreement mode (every XXH3 kernel this CPU has against the scalar one), and the
// same program cross-built for aarch64 under qemu when the cross tools are installed.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { run } from './helpers/run.js';
import type { RunResult } from './helpers/run.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { native, type StrongKind } from '../lib/native.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BUILD_SH = join(ROOT, 'native', 'test', 'build.sh');

/** splitmix64 over BigInt: deterministic data, so a failure names a reproducible input. */
function rng(seed: number): () => bigint {
  let state = BigInt(seed);
  const mask = (1n << 64n) - 1n;
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & mask;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    return z ^ (z >> 31n);
  };
}

function randomBytes(len: number, seed: number): Buffer {
  const next = rng(seed);
  const out = Buffer.alloc(len);
  // BigInt per 8 bytes is slow for MiBs: seed a fast xorshift32 from it instead.
  let x = Number(next() & 0xffffffffn) | 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function randomInt(next: () => bigint, below: number): number {
  return Number(next() % BigInt(below));
}

let dir: string;
interface Input {
  path: string;
  data: Buffer;
}
const inputs: Input[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deltasync-hash-'));
  for (let len = 0; len <= 300; len++) inputs.push({ path: join(dir, `len${len}`), data: randomBytes(len, 5000 + len) });
  // Multi-MiB: odd sizes, an exact multiple of the XXH3 1 KiB block, one just past it.
  for (const len of [(1 << 20) + 17, 3 << 20, (5 << 20) - 1, (6 << 20) + 1025]) {
    inputs.push({ path: join(dir, `big${len}`), data: randomBytes(len, len) });
  }
  inputs.push({ path: join(dir, 'zeros'), data: Buffer.alloc((2 << 20) + 333) });
  for (const input of inputs) writeFileSync(input.path, input.data);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a checksum tool once over every input file; maps path to the hex digest it printed. */
function toolDigests(command: string, args: string[]): Map<string, string> {
  const r = spawnSync(command, [...args, ...inputs.map((i) => i.path)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new Error(`cannot run ${command}: ${r.error.message}`);
  expect(r.status, `${command} ${args.join(' ')} failed: ${r.stderr}`).toBe(0);
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    // "<hex>  <path>" (xxhsum, b2sum) or "<hex> *<path>" (openssl dgst -r)
    const m = /^([0-9a-f]+) [ *](.+)$/.exec(line);
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}

/** Feeds data to a native Hasher in random pieces, mixing the sync and async update paths. */
async function streamed(kind: StrongKind, data: Buffer, seed: number): Promise<string> {
  const next = rng(seed);
  const hasher = new native.Hasher(kind);
  let pos = 0;
  while (pos < data.length) {
    const pick = randomInt(next, 4);
    const limit = pick === 0 ? 70 : pick === 1 ? 1100 : pick === 2 ? 70_000 : 2 << 20;
    const n = Math.min(randomInt(next, limit + 1), data.length - pos);
    const piece = data.subarray(pos, pos + n);
    if (randomInt(next, 2) === 0) hasher.updateSync(piece);
    else await hasher.update(piece);
    pos += n;
  }
  return hasher.digest().toString('hex');
}

async function compareWithTool(kind: StrongKind, expected: Map<string, string>): Promise<void> {
  let compared = 0;
  for (const [i, input] of inputs.entries()) {
    const want = expected.get(input.path);
    expect(want, `tool printed nothing for ${input.path}`).toBeDefined();
    const label = `${kind} len ${input.data.length}`;
    expect(native.hash(kind, input.data).toString('hex'), `${label} one-shot`).toBe(want);
    const splits = input.data.length > 100_000 ? 1 : 3;
    for (let s = 0; s < splits; s++) {
      expect(await streamed(kind, input.data, i * 10 + s), `${label} streamed (seed ${i * 10 + s})`).toBe(want);
    }
    compared++;
  }
  expect(compared).toBe(inputs.length);
}

describe('strong hashes against Debian tools', () => {
  test('digest lengths', () => {
    expect(native.strongFullLen('xxh3')).toBe(16);
    expect(native.strongFullLen('md4')).toBe(16);
    expect(native.strongFullLen('blake2b')).toBe(32);
  });

  test('XXH3-128 equals `xxhsum -H2` for lengths 0..300 and multi-MiB, one-shot and streamed', async () => {
    await compareWithTool('xxh3', toolDigests('xxhsum', ['-H2']));
  });

  test('BLAKE2b equals `b2sum -l 256` for lengths 0..300 and multi-MiB, one-shot and streamed', async () => {
    await compareWithTool('blake2b', toolDigests('b2sum', ['-l', '256']));
  });

  test('MD4 matches the RFC 1320 test suite', async () => {
    const suite: Array<[string, string]> = [
      ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
      ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
      ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
      ['message digest', 'd9130a8164549fe818874806e1c7014b'],
      ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
      ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
      [
        '12345678901234567890123456789012345678901234567890123456789012345678901234567890',
        'e33b4ddc9c38f2199c3e7b164fcc0536',
      ],
    ];
    for (const [text, want] of suite) {
      const data = Buffer.from(text, 'latin1');
      expect(native.hash('md4', data).toString('hex'), `MD4("${text}")`).toBe(want);
      expect(await streamed('md4', data, text.length), `MD4("${text}") streamed`).toBe(want);
      const bytewise = new native.Hasher('md4');
      for (let i = 0; i < data.length; i++) bytewise.updateSync(data.subarray(i, i + 1));
      expect(bytewise.digest().toString('hex'), `MD4("${text}") byte at a time`).toBe(want);
    }
  });

  // OpenSSL 3 moved MD4 to its legacy provider, which a minimal system may lack; the RFC suite
  // above pins MD4 regardless.
  const opensslMd4 = ['dgst', '-md4', '-provider', 'legacy', '-provider', 'default'];
  const haveOpensslMd4 = spawnSync('openssl', opensslMd4, { input: '' }).status === 0;
  test.skipIf(!haveOpensslMd4)('MD4 equals OpenSSL (legacy provider) on lengths 0..300 and multi-MiB', async () => {
    await compareWithTool('md4', toolDigests('openssl', [...opensslMd4, '-r']));
  });
});

describe('Hasher and hash() misuse', () => {
  test('unknown kinds are refused', () => {
    expect(() => native.hash('sha1' as StrongKind, Buffer.alloc(1))).toThrow(/unknown strong hash/);
    expect(() => new native.Hasher('nope' as StrongKind)).toThrow(/unknown strong hash/);
  });

  test('a digested Hasher refuses further use', () => {
    const h = new native.Hasher('xxh3');
    h.updateSync(Buffer.from('abc'));
    expect(h.digest().toString('hex')).toBe('06b05ab6733a618578af5f94892f3950'); // xxhsum -H2 of "abc"
    expect(() => h.updateSync(Buffer.from('x'))).toThrow();
    expect(() => h.digest()).toThrow();
  });
});

describe('SIMD variants agree', () => {
  test('every XXH3 level the addon accepts gives the scalar digest', () => {
    const before = native.simdLevel();
    const levels = ['scalar', 'sse41', 'avx2', 'avx512', 'neon'];
    const data = randomBytes((4 << 20) + 777, 77);
    try {
      expect(native.setSimdLevel('scalar')).toBe(true);
      const reference = [1, 241, 1024, 1025, 4096 + 63, data.length].map((n) =>
        native.hash('xxh3', data.subarray(0, n)).toString('hex'),
      );
      let tried = 0;
      for (const level of levels) {
        if (!native.setSimdLevel(level)) continue;
        tried++;
        expect(native.simdLevel()).toBe(level);
        [1, 241, 1024, 1025, 4096 + 63, data.length].forEach((n, i) => {
          expect(native.hash('xxh3', data.subarray(0, n)).toString('hex'), `${level} len ${n}`).toBe(reference[i]);
        });
      }
      expect(tried).toBeGreaterThanOrEqual(1);
    } finally {
      native.setSimdLevel(before);
    }
  });

  describe('native test program', () => {
    let buildDir: string;
    beforeAll(() => {
      buildDir = mkdtempSync(join(tmpdir(), 'deltasync-hash-test-'));
    });
    afterAll(() => {
      rmSync(buildDir, { recursive: true, force: true });
    });

    async function build(arch: string): Promise<string> {
      const r = await run('sh', [BUILD_SH, arch, buildDir]);
      expect(r.status, `build.sh ${arch} failed:\n${r.stderr}`).toBe(0);
      return r.stdout.trim().split('\n').pop()!;
    }

    function expectPassed(r: RunResult, what: string): void {
      const out = String(r.stdout);
      expect(r.status, `${what} failed:\n${out}\n${String(r.stderr)}`).toBe(0);
      expect(out).toMatch(/all \d+ checks passed/);
    }

    test('x86-64/host build: every kernel equals scalar; RFC, xxhsum and b2sum checks', async () => {
      const program = await build(process.arch === 'arm64' ? 'aarch64' : 'x86_64');
      const simd = await run(program, ['simd']);
      expectPassed(simd, 'hash_test simd');
      // The program must have compared the best kernel the addon itself would pick.
      const detected = native.simdDetected();
      expect(simd.stdout).toMatch(new RegExp(`variants on this CPU:.*\\b${detected}\\b`));
      expectPassed(await run(program, ['rfc']), 'hash_test rfc');
      expectPassed(await run(program, ['tools']), 'hash_test tools');
    });

    const haveCross =
      process.arch === 'x64' &&
      spawnSync('aarch64-linux-gnu-g++', ['--version']).status === 0 &&
      spawnSync('qemu-aarch64', ['--version']).status === 0;
    test.skipIf(!haveCross)('aarch64 build under qemu: NEON equals scalar; RFC and tool checks', async () => {
      const program = await build('aarch64');
      const all = await run('qemu-aarch64', [program, 'all'], { timeout: 120_000 });
      expectPassed(all, 'qemu-aarch64 hash_test all');
      expect(all.stdout).toMatch(/variants on this CPU: scalar neon/);
    });
  });
});
