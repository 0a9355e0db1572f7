// End-to-end tests of `deltasync signature|delta|patch`, `--help`, `--version` and error
// reporting, through `node bin/deltasync.js` with real files, real pipes and the real `rdiff`.
// Needs dist/ built (`npm test` runs tsc first).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededBytes } from './helpers/bytes.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'deltasync.js');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

let dir: string;

interface Run {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

function finish(r: SpawnSyncReturns<Buffer>): Run {
  // EPIPE: the CLI exited (e.g. on a usage error) before reading all the stdin we offered.
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'EPIPE') throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** Runs the CLI in the temp dir; `input` (if any) is piped to stdin. */
function ds(args: string[], input?: Uint8Array): Run {
  return finish(
    spawnSync(process.execPath, [BIN, ...args], {
      cwd: dir,
      input: input ?? Buffer.alloc(0),
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, DELTASYNC_DEBUG: '' },
    }),
  );
}

/** Runs a shell command line in the temp dir (for redirections and pipelines). */
function sh(script: string): Run {
  return finish(
    spawnSync('bash', ['-c', `set -o pipefail; ${script}`], {
      cwd: dir,
      maxBuffer: 256 * 1024 * 1024,
      env: { ...process.env, DS: `${process.execPath} ${BIN}` },
    }),
  );
}

function rdiff(args: string[]): Run {
  return finish(spawnSync('rdiff', args, { cwd: dir, maxBuffer: 256 * 1024 * 1024 }));
}

function path(name: string): string {
  return join(dir, name);
}

function read(name: string): Buffer {
  return readFileSync(path(name));
}

function randomBytes(length: number, seed: number): Buffer {
  return seededBytes(length, seed);
}

/** A new version of `basis` with an overwrite, an insertion, a deletion and an append. */
function edited(basis: Buffer, seed: number): Buffer {
  const n = basis.length;
  const a = Math.floor(n * 0.2);
  const b = Math.floor(n * 0.5);
  const c = Math.floor(n * 0.8);
  return Buffer.concat([
    basis.subarray(0, a),
    randomBytes(1000, seed + 1), // overwrite
    basis.subarray(a + 1000, b),
    randomBytes(3333, seed + 2), // insertion
    basis.subarray(b, c),
    basis.subarray(c + 5000), // deletion
    randomBytes(777, seed + 3), // append
  ]);
}

/** A one-line diagnostic from the CLI: prefixed, no stack trace. */
function expectOneLineError(r: Run, pattern: RegExp): void {
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^deltasync: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toMatch(/internal error/);
}

/** Files in the temp dir whose names look like leftover temporary outputs. */
function leftovers(): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('.') || f.includes('.tmp'));
}

const BASIS = randomBytes(300_000, 7);
const NEW = edited(BASIS, 7);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'deltasync-cli-'));
  writeFileSync(path('basis'), BASIS);
  writeFileSync(path('new'), NEW);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('round trips through files', () => {
  for (const format of ['deltasync', 'rdiff'] as const) {
    test(`signature, delta, patch with files (${format})`, () => {
      const p = `${format}-files`;
      expect(ds(['signature', '--format', format, 'basis', `${p}.sig`]).status).toBe(0);
      expect(ds(['delta', `${p}.sig`, 'new', `${p}.delta`]).status).toBe(0);
      const r = ds(['patch', 'basis', `${p}.delta`, `${p}.out`]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(read(`${p}.out`).equals(NEW)).toBe(true);
      // The delta carries far less than the new file: most of it matched the basis.
      expect(statSync(path(`${p}.delta`)).size).toBeLessThan(NEW.length / 10);
      expect(leftovers()).toEqual([]);
    });
  }

  test('files spanning many read chunks: literal runs across chunk boundaries survive', () => {
    // 8 MiB reads: a basis of 20 MiB and a new file whose literal runs (9 MiB of unrelated
    // data, then small edits) straddle the chunk boundaries, so any reuse of a read buffer
    // while the engine or the output still points into it would garble the result.
    const big = randomBytes(20 << 20, 41);
    const fresh = Buffer.concat([
      big.subarray(0, 7 << 20),
      randomBytes(9 << 20, 42),
      big.subarray(7 << 20, 12 << 20),
      randomBytes(5000, 43),
      big.subarray(12 << 20),
    ]);
    writeFileSync(path('big.basis'), big);
    writeFileSync(path('big.new'), fresh);
    for (const format of ['deltasync', 'rdiff'] as const) {
      expect(ds(['signature', '-f', '--format', format, '-b', '4096', 'big.basis', `big-${format}.sig`]).status).toBe(0);
      const d = ds(['delta', '-f', `big-${format}.sig`, 'big.new', `big-${format}.delta`]);
      expect(d.stderr).toBe('');
      const p = ds(['patch', '-f', 'big.basis', `big-${format}.delta`, `big-${format}.out`]);
      expect(p.stderr).toBe('');
      expect(read(`big-${format}.out`).equals(fresh), format).toBe(true);
    }
    // The real rdiff agrees on what our rdiff-format delta means.
    expect(rdiff(['patch', 'big.basis', 'big-rdiff.delta', 'big-rdiff.rdout']).status).toBe(0);
    expect(read('big-rdiff.rdout').equals(fresh)).toBe(true);
  });

  test('options are accepted before, between and after operands', () => {
    expect(ds(['signature', '-b', '2048', 'basis', '--sum-size=12', 'opt.sig', '-Hmd4']).status).toBe(0);
    expect(ds(['delta', 'opt.sig', 'new', 'opt.delta']).status).toBe(0);
    expect(ds(['patch', 'basis', 'opt.delta', 'opt.out']).status).toBe(0);
    expect(read('opt.out').equals(NEW)).toBe(true);
  });

  test('an omitted output and "-" both mean stdout, and equal the file output', () => {
    expect(ds(['signature', 'basis', 'so.sig']).status).toBe(0);
    const omitted = ds(['signature', 'basis']);
    const dash = ds(['signature', 'basis', '-']);
    expect(omitted.status).toBe(0);
    expect(omitted.stdout.equals(read('so.sig'))).toBe(true);
    expect(dash.stdout.equals(read('so.sig'))).toBe(true);

    expect(ds(['delta', 'so.sig', 'new', 'so.delta']).status).toBe(0);
    const delta = ds(['delta', 'so.sig', 'new']);
    expect(delta.status).toBe(0);
    expect(delta.stdout.equals(read('so.delta'))).toBe(true);

    const patched = ds(['patch', 'basis', 'so.delta']);
    expect(patched.status).toBe(0);
    expect(patched.stdout.equals(NEW)).toBe(true);
  });
});

describe('stdin and stdout pipes', () => {
  for (const format of ['deltasync', 'rdiff'] as const) {
    test(`each input from stdin, each output to stdout (${format})`, () => {
      const p = `${format}-pipe`;
      const sig = ds(['signature', '--format', format, '-', '-'], BASIS);
      expect(sig.stderr).toBe('');
      expect(sig.status).toBe(0);
      writeFileSync(path(`${p}.sig`), sig.stdout);

      // New file from stdin, delta to stdout.
      const d1 = ds(['delta', `${p}.sig`, '-'], NEW);
      expect(d1.status).toBe(0);
      // Signature from stdin, delta to a file. (A deltasync delta records the new file's size
      // when it is known, so it is compared with a delta of the same file, not of stdin.)
      const d2 = ds(['delta', '-', 'new', `${p}.delta`], sig.stdout);
      expect(d2.status).toBe(0);
      expect(read(`${p}.delta`).equals(ds(['delta', `${p}.sig`, 'new']).stdout)).toBe(true);

      // Delta from stdin, output to stdout and to a file.
      const out1 = ds(['patch', 'basis', '-'], d1.stdout);
      expect(out1.status).toBe(0);
      expect(out1.stdout.equals(NEW)).toBe(true);
      const out2 = ds(['patch', 'basis', '-', `${p}.out`], d1.stdout);
      expect(out2.status).toBe(0);
      expect(read(`${p}.out`).equals(NEW)).toBe(true);

      // New file from stdin with a file output goes through a temp file too.
      expect(ds(['delta', `${p}.sig`, '-', `${p}.delta2`], NEW).status).toBe(0);
      expect(read(`${p}.delta2`).equals(d1.stdout)).toBe(true);
      // Basis from stdin with a file output.
      expect(ds(['signature', '--format', format, '-', `${p}.sig2`], BASIS).status).toBe(0);
      expect(read(`${p}.sig2`).equals(sig.stdout)).toBe(true);
      expect(leftovers()).toEqual([]);
    });
  }

  test('a reader that goes away early ends the run quietly', () => {
    const big = randomBytes(8 * 1024 * 1024, 99);
    writeFileSync(path('big'), big);
    expect(ds(['signature', 'big', 'big.sig']).status).toBe(0);
    // An unrelated basis makes the delta (and the patch output) large.
    expect(ds(['delta', 'big.sig', 'big', 'big.delta']).status).toBe(0);
    const r = sh('$DS patch big big.delta | head -c 100 > /dev/null; echo "status=${PIPESTATUS[0]}"');
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toMatch(/^status=(0|141)\n$/);
  });
});

describe('--stats', () => {
  function field(stderr: string, label: string): number {
    const m = new RegExp(`^\\s+${label}\\s+(\\d+) bytes`, 'm').exec(stderr);
    if (!m) throw new Error(`no "${label}" in:\n${stderr}`);
    return Number(m[1]);
  }

  test('delta of an identical file: everything matched, nothing literal', () => {
    expect(ds(['signature', 'basis', 'st.sig']).status).toBe(0);
    const r = ds(['delta', '--stats', 'st.sig', 'basis', 'st-same.delta']);
    expect(r.status).toBe(0);
    expect(field(r.stderr, 'new file')).toBe(BASIS.length);
    expect(field(r.stderr, 'matched')).toBe(BASIS.length);
    expect(field(r.stderr, 'literal')).toBe(0);
    expect(r.stderr).toMatch(/\d+ copy ops/);
    expect(r.stderr).toMatch(/[\d.]+ MB\/s/);
  });

  test('delta of unrelated data: everything literal', () => {
    writeFileSync(path('unrelated'), randomBytes(200_000, 1234));
    const r = ds(['delta', '-s', 'st.sig', 'unrelated', 'st-unrel.delta']);
    expect(r.status).toBe(0);
    expect(field(r.stderr, 'matched')).toBe(0);
    expect(field(r.stderr, 'literal')).toBe(200_000);
    expect(field(r.stderr, 'delta')).toBe(statSync(path('st-unrel.delta')).size);
  });

  test('edited file: matched + literal = new size, literal covers the edits', () => {
    const r = ds(['delta', '--stats', 'st.sig', 'new', '-']);
    expect(r.status).toBe(0);
    const matched = field(r.stderr, 'matched');
    const literal = field(r.stderr, 'literal');
    expect(matched + literal).toBe(NEW.length);
    // 1000 + 3333 + 777 new bytes must be literal; unchanged blocks must mostly match.
    expect(literal).toBeGreaterThanOrEqual(1000 + 3333 + 777);
    expect(matched).toBeGreaterThan(NEW.length * 0.8);
    expect(field(r.stderr, 'delta')).toBe(r.stdout.length);
  });

  test('signature and patch report sizes and speed', () => {
    const s = ds(['signature', '--stats', 'basis', 'st2.sig']);
    expect(s.status).toBe(0);
    expect(field(s.stderr, 'basis')).toBe(BASIS.length);
    expect(field(s.stderr, 'signature')).toBe(statSync(path('st2.sig')).size);
    expect(s.stderr).toMatch(/MB\/s/);

    expect(ds(['delta', 'st2.sig', 'new', 'st2.delta']).status).toBe(0);
    const p = ds(['patch', '--stats', 'basis', 'st2.delta', 'st2.out']);
    expect(p.status).toBe(0);
    expect(field(p.stderr, 'output')).toBe(NEW.length);
    expect(field(p.stderr, 'matched') + field(p.stderr, 'literal')).toBe(NEW.length);
    expect(p.stderr).toMatch(/MB\/s/);
  });
});

describe('help and version', () => {
  test('--version prints the package version', () => {
    for (const flag of ['--version', '-V']) {
      const r = ds([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout.toString()).toBe(`deltasync ${PKG.version}\n`);
    }
  });

  test('--help covers every mode', () => {
    for (const flag of ['--help', '-h']) {
      const r = ds([flag]);
      expect(r.status).toBe(0);
      const text = r.stdout.toString();
      for (const word of ['signature', 'delta', 'patch', 'SRC... DEST', '--block-size', '--stats', 'Exit codes']) {
        expect(text).toContain(word);
      }
    }
  });

  test('each command has its own --help', () => {
    for (const cmd of ['signature', 'delta', 'patch']) {
      const r = ds([cmd, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout.toString()).toMatch(new RegExp(`^Usage: deltasync ${cmd} `));
    }
  });
});

describe('usage errors exit 1 with one line', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown long option', ['signature', '--bogus', 'basis'], /unknown option '--bogus'/],
    ['unknown short option', ['delta', '-b', '1024', 'x.sig', 'new'], /unknown option '-b'/],
    ['missing operand', ['patch', 'basis'], /missing DELTA/],
    ['too many operands', ['signature', 'basis', 'a', 'b'], /too many arguments/],
    ['missing option value', ['signature', 'basis', '-b'], /'-b' needs a value/],
    ['flag given a value', ['signature', '--stats=yes', 'basis'], /does not take a value/],
    ['non-numeric block size', ['signature', '-b', 'abc', 'basis'], /invalid block size 'abc'/],
    ['negative block size', ['signature', '-b', '-5', 'basis'], /invalid block size '-5'/],
    ['huge block size', ['signature', '-b1000000000000', 'basis'], /invalid block size/],
    ['sum size over the hash length', ['signature', '-H', 'md4', '-S', '17', 'basis'], /invalid sum size '17'.*1 to 16/],
    ['unknown hash', ['signature', '-H', 'sha1', 'basis'], /unknown hash 'sha1'/],
    ['xxh3 in rdiff format', ['signature', '--format', 'rdiff', '-H', 'xxh3', 'basis'], /xxh3 is not available with --format rdiff/],
    ['ds64 in rdiff format', ['signature', '--format=rdiff', '-R', 'ds64', 'basis'], /ds64 is not available with --format rdiff/],
    ['unknown format', ['signature', '--format', 'zip', 'basis'], /unknown --format 'zip'/],
    ['two stdin inputs', ['delta', '-', '-'], /only one input can be stdin/],
    ['patch basis from stdin', ['patch', '-', 'x.delta'], /BASIS cannot be stdin/],
  ];
  for (const [name, args, pattern] of cases) {
    test(name, () => {
      const r = ds(args);
      expect(r.status).toBe(1);
      expect(r.stdout.length).toBe(0);
      expectOneLineError(r, pattern);
    });
  }

  test('no arguments prints usage and exits 1', () => {
    const r = ds([]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Usage:/);
  });
});

describe('files', () => {
  test('an existing output is kept unless --force', () => {
    writeFileSync(path('exists.sig'), 'precious');
    const r = ds(['signature', 'basis', 'exists.sig']);
    expect(r.status).not.toBe(0);
    expectOneLineError(r, /exists\.sig already exists.*--force/);
    expect(read('exists.sig').toString()).toBe('precious');

    expect(ds(['signature', '-f', 'basis', 'exists.sig']).status).toBe(0);
    expect(read('exists.sig').equals(ds(['signature', 'basis']).stdout)).toBe(true);
  });

  test('a missing input is an I/O error naming the path (exit 11)', () => {
    const r = ds(['signature', 'no-such-file', 'missing.sig']);
    expect(r.status).toBe(11);
    expectOneLineError(r, /no-such-file/);
    expect(existsSync(path('missing.sig'))).toBe(false);
  });

  test('an output in a missing directory is an I/O error (exit 11)', () => {
    expect(ds(['signature', 'basis', 'f.sig']).status).toBe(0);
    const r = ds(['delta', 'f.sig', '-', 'no-dir/out.delta'], NEW);
    expect(r.status).toBe(11);
    expectOneLineError(r, /no-dir/);
  });
});

describe('--fsync', () => {
  const hasStrace = spawnSync('strace', ['-V']).status === 0;

  /** fsync/fdatasync calls the command makes, counted by strace. */
  function fsyncCalls(args: string[]): number {
    const log = path(`strace-${args.join('-').replace(/[^a-z0-9]+/gi, '_')}.log`);
    const r = finish(
      spawnSync('strace', ['-f', '-qq', '-e', 'trace=fsync,fdatasync', '-o', log, process.execPath, BIN, ...args], { cwd: dir }),
    );
    expect(r.status, r.stderr).toBe(0);
    const calls = readFileSync(log, 'utf8').split('\n').filter((l) => /\b(fsync|fdatasync)\(/.test(l)).length;
    rmSync(log);
    return calls;
  }

  test('outputs equal those without it; no leftovers', () => {
    expect(ds(['signature', 'basis', 'nf.sig']).status).toBe(0);
    expect(ds(['signature', '--fsync', 'basis', 'fs.sig']).status).toBe(0);
    expect(read('fs.sig').equals(read('nf.sig'))).toBe(true);
    expect(ds(['delta', 'nf.sig', 'new', 'nf.delta']).status).toBe(0);
    expect(ds(['delta', '--fsync', 'nf.sig', 'new', 'fs.delta']).status).toBe(0);
    expect(read('fs.delta').equals(read('nf.delta'))).toBe(true);
    expect(ds(['patch', '--fsync', 'basis', 'fs.delta', 'fs.out']).status).toBe(0);
    expect(read('fs.out').equals(NEW)).toBe(true);
    expect(leftovers()).toEqual([]);
    expect(ds(['signature', '--help']).stdout.toString()).toMatch(/--fsync/);
  });

  test.skipIf(!hasStrace)('file outputs are fsynced only with --fsync (as rdiff, which never does)', () => {
    for (const cmd of [
      ['signature', '-f', 'basis', 'st.sig'],
      ['delta', '-f', 'nf.sig', 'new', 'st.delta'],
      ['patch', '-f', 'basis', 'nf.delta', 'st.out'],
    ]) {
      expect(fsyncCalls(cmd), cmd.join(' ')).toBe(0);
      expect(fsyncCalls([cmd[0]!, '--fsync', ...cmd.slice(1)]), `${cmd.join(' ')} --fsync`).toBeGreaterThan(0);
    }
    expect(read('st.out').equals(NEW)).toBe(true);
  });
});

describe('corrupted signatures and deltas are refused', () => {
  beforeAll(() => {
    for (const format of ['deltasync', 'rdiff']) {
      expect(ds(['signature', '--format', format, 'basis', `c-${format}.sig`]).status).toBe(0);
      expect(ds(['delta', `c-${format}.sig`, 'new', `c-${format}.delta`]).status).toBe(0);
    }
  });

  function refused(r: Run, output: string | undefined, pattern: RegExp): void {
    expect(r.status).toBe(2);
    expectOneLineError(r, pattern);
    if (output !== undefined) expect(existsSync(path(output))).toBe(false);
    expect(leftovers()).toEqual([]);
  }

  for (const format of ['deltasync', 'rdiff'] as const) {
    test(`signature with a wrong magic (${format})`, () => {
      const sig = Buffer.from(read(`c-${format}.sig`));
      sig[0] = (sig[0] as number) ^ 0xff;
      writeFileSync(path('bad-magic.sig'), sig);
      refused(ds(['delta', 'bad-magic.sig', 'new', 'bm.delta']), 'bm.delta', /magic/i);
    });

    test(`truncated signature (${format})`, () => {
      const sig = read(`c-${format}.sig`);
      writeFileSync(path('trunc.sig'), sig.subarray(0, sig.length - 5));
      refused(ds(['delta', 'trunc.sig', 'new', 'tr.delta']), 'tr.delta', /truncat|ends|short|incomplete/i);
      // Through stdin and to stdout as well.
      const r = ds(['delta', '-', 'new'], sig.subarray(0, 3));
      expect(r.status).toBe(2);
      expectOneLineError(r, /truncat|ends|short|incomplete|magic/i);
    });

    test(`truncated delta (${format})`, () => {
      const d = read(`c-${format}.delta`);
      writeFileSync(path('trunc.delta'), d.subarray(0, Math.floor(d.length / 2)));
      refused(ds(['patch', 'basis', 'trunc.delta', 'tr.out']), 'tr.out', /truncat|ends|short|incomplete|past the end/i);
    });

    test(`delta with a wrong magic (${format})`, () => {
      const d = Buffer.from(read(`c-${format}.delta`));
      d[1] = (d[1] as number) ^ 0x55;
      writeFileSync(path('bad-magic.delta'), d);
      refused(ds(['patch', 'basis', 'bad-magic.delta', 'bmd.out']), 'bmd.out', /magic/i);
    });
  }

  test('a flipped literal byte in a deltasync delta fails the hash check; nothing is written', () => {
    const d = Buffer.from(read('c-deltasync.delta'));
    // The inserted run is literal data in the delta; flip one of its bytes.
    const marker = randomBytes(3333, 7 + 2).subarray(100, 132);
    const at = d.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    d[at + 10] = (d[at + 10] as number) ^ 0x01;
    writeFileSync(path('flipped.delta'), d);
    refused(ds(['patch', 'basis', 'flipped.delta', 'fl.out']), 'fl.out', /hash|mismatch|verif/i);
    // To stdout the bytes may already be out, but the run still fails.
    const r = ds(['patch', 'basis', 'flipped.delta']);
    expect(r.status).toBe(2);
    expectOneLineError(r, /hash|mismatch|verif/i);
  });

  test('garbage instead of a delta', () => {
    writeFileSync(path('garbage.delta'), randomBytes(5000, 42));
    refused(ds(['patch', 'basis', 'garbage.delta', 'g.out']), 'g.out', /magic/i);
  });

  test('a COPY past the end of the basis', () => {
    // The delta was made against `basis`; a shorter basis makes its copies run past the end.
    writeFileSync(path('short-basis'), BASIS.subarray(0, 1000));
    const r = ds(['patch', 'short-basis', 'c-rdiff.delta', 'cp.out']);
    expect(r.status).toBe(2);
    expectOneLineError(r, /basis|copy|past|beyond|range/i);
    expect(existsSync(path('cp.out'))).toBe(false);
  });
});

describe('interop with the real rdiff', () => {
  const SIZES = [0, 1, 255, 256, 4096, 65_536, 65_537, 300_000, 1_500_000];

  test('signature --format rdiff equals rdiff signature with defaults', () => {
    for (const size of SIZES) {
      const name = `i-${size}`;
      writeFileSync(path(name), randomBytes(size, size + 11));
      expect(rdiff(['signature', name, `${name}.rdiff.sig`]).status).toBe(0);
      const ours = ds(['signature', '--format', 'rdiff', name]);
      expect(ours.status, ours.stderr).toBe(0);
      expect(ours.stdout.equals(read(`${name}.rdiff.sig`)), `size ${size}`).toBe(true);
    }
  });

  test('signature --format rdiff -b 1024 -S 8 -H md4 -R rollsum equals rdiff', () => {
    const opts = ['-b', '1024', '-S', '8', '-H', 'md4', '-R', 'rollsum'];
    for (const size of SIZES) {
      const name = `i-${size}`;
      if (!existsSync(path(name))) writeFileSync(path(name), randomBytes(size, size + 11));
      expect(rdiff(['signature', ...opts, name, `${name}.rdiff-md4.sig`]).status).toBe(0);
      const ours = ds(['signature', '--format', 'rdiff', ...opts, name]);
      expect(ours.status, ours.stderr).toBe(0);
      expect(ours.stdout.equals(read(`${name}.rdiff-md4.sig`)), `size ${size}`).toBe(true);
    }
  });

  test('other rdiff settings are byte-identical too', () => {
    const settings = [
      ['-H', 'blake2', '-R', 'rollsum'],
      ['-H', 'md4', '-R', 'rabinkarp', '-b', '700', '-S', '16'],
      ['-b', '4096', '-S', '12'],
    ];
    for (const opts of settings) {
      expect(rdiff(['signature', ...opts, 'basis', 'o.rdiff.sig']).status).toBe(0);
      const ours = ds(['signature', '--format', 'rdiff', ...opts, 'basis']);
      expect(ours.status, ours.stderr).toBe(0);
      expect(ours.stdout.equals(read('o.rdiff.sig')), opts.join(' ')).toBe(true);
      rmSync(path('o.rdiff.sig'));
    }
  });

  test('signatures from stdin match rdiff for a pipe and for a redirected file', () => {
    // From a pipe neither tool knows the size; from `< file` both use it.
    const piped = sh('cat basis | $DS signature --format rdiff - - > pipe-ours.sig && cat basis | rdiff signature - - > pipe-rdiff.sig');
    expect(piped.status, piped.stderr).toBe(0);
    expect(read('pipe-ours.sig').equals(read('pipe-rdiff.sig'))).toBe(true);
    const redirected = sh('$DS signature --format rdiff - - < basis > redir-ours.sig && rdiff signature - - < basis > redir-rdiff.sig');
    expect(redirected.status, redirected.stderr).toBe(0);
    expect(read('redir-ours.sig').equals(read('redir-rdiff.sig'))).toBe(true);
  });

  test('rdiff patch applies our rdiff-format delta', () => {
    for (const opts of [[], ['-H', 'md4', '-R', 'rollsum', '-b', '1024', '-S', '8']]) {
      expect(rdiff(['signature', ...opts, 'basis', 'x.rdiff.sig']).status).toBe(0);
      // Our delta from rdiff's signature and from our own rdiff-format signature.
      expect(ds(['delta', 'x.rdiff.sig', 'new', 'x-ours.delta']).status).toBe(0);
      expect(ds(['signature', '--format', 'rdiff', ...opts, 'basis', 'x-ours.sig']).status).toBe(0);
      expect(ds(['delta', 'x-ours.sig', 'new', 'x-ours2.delta']).status).toBe(0);
      for (const d of ['x-ours.delta', 'x-ours2.delta']) {
        const r = rdiff(['patch', 'basis', d, 'x.out']);
        expect(r.status, r.stderr).toBe(0);
        expect(read('x.out').equals(NEW), `${opts.join(' ')} ${d}`).toBe(true);
        rmSync(path('x.out'));
      }
      // Within 1% of rdiff's own delta for the same inputs.
      expect(rdiff(['delta', 'x.rdiff.sig', 'new', 'x-rdiff.delta']).status).toBe(0);
      expect(statSync(path('x-ours.delta')).size).toBeLessThanOrEqual(statSync(path('x-rdiff.delta')).size * 1.01);
      for (const f of ['x.rdiff.sig', 'x-ours.delta', 'x-ours.sig', 'x-ours2.delta', 'x-rdiff.delta']) rmSync(path(f));
    }
  });

  test("we apply rdiff delta's output, from a file and from stdin", () => {
    expect(rdiff(['signature', 'basis', 'y.sig']).status).toBe(0);
    expect(rdiff(['delta', 'y.sig', 'new', 'y.delta']).status).toBe(0);
    const r = ds(['patch', 'basis', 'y.delta', 'y.out']);
    expect(r.status, r.stderr).toBe(0);
    expect(read('y.out').equals(NEW)).toBe(true);
    const piped = ds(['patch', 'basis', '-'], read('y.delta'));
    expect(piped.status).toBe(0);
    expect(piped.stdout.equals(NEW)).toBe(true);
  });
});
