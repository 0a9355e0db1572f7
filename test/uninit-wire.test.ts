// CVE-2024-12085 class: uninitialised memory reaching the wire. rsync sent stack bytes of a
// checksum buffer it had not filled. Here both ends of a real push and a real pull run under
// valgrind memcheck, which reports any write() of bytes that were never initialised — in the
// addon (signatures, match results, decoded deltas) or in the TypeScript layer (Buffers from
// allocUnsafe that were not filled before being framed).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes } from './helpers/bytes.js';
import { run } from './helpers/run.js';
import { BIN, FAKE_RSH, TEST_CACHE_HOME, tempDir, treeDiff } from './helpers/trees.js';

function hasValgrind(): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// valgrind cannot run a process that has ASan's runtime preloaded (scripts/sanitize-test.sh).
const underAsan = (process.env.LD_PRELOAD ?? '').includes('libasan');
const enabled = hasValgrind() && !underAsan;

const VALGRIND = ['valgrind', '--quiet', '--error-exitcode=99', '--undef-value-errors=yes', '--track-origins=no'];

let tmp: { path: string; cleanup: () => void };

function buildPair(root: string): { src: string; dst: string } {
  const src = join(root, 'src');
  const dst = join(root, 'dst');
  mkdirSync(join(src, 'sub'), { recursive: true });
  mkdirSync(join(dst, 'sub'), { recursive: true });
  // The old version differs in scattered places, so the transfer carries a signature one way
  // and copies plus literals the other way.
  const next = seededBytes(1536 * 1024, 7);
  const old = Buffer.from(next);
  for (let k = 0; k < 12; k++) old.fill(k, k * 120_000, k * 120_000 + 700);
  writeFileSync(join(src, 'big.bin'), next);
  writeFileSync(join(dst, 'big.bin'), old);
  // Same size: an older mtime makes the quick check send it.
  utimesSync(join(dst, 'big.bin'), 1_000_000_000, 1_000_000_000);
  writeFileSync(join(src, 'sub', 'small.txt'), 'small file\n');
  writeFileSync(join(src, 'sub', 'odd name \u00e9.txt'), seededBytes(5000, 3));
  symlinkSync('small.txt', join(src, 'sub', 'link'));
  return { src, dst };
}

beforeAll(() => {
  tmp = tempDir('uninit');
});

afterAll(() => tmp.cleanup());

describe.skipIf(!enabled)('no uninitialised byte reaches the wire (valgrind memcheck on both ends)', () => {
  for (const direction of ['push', 'pull'] as const) {
    it(`${direction}`, async () => {
      const root = join(tmp.path, direction);
      const { src, dst } = buildPair(root);
      const remoteLog = join(root, 'remote-valgrind.log');
      const remotePath = `XDG_CACHE_HOME=${TEST_CACHE_HOME} ${VALGRIND.join(' ')} --log-file=${remoteLog} ${process.execPath} ${BIN}`;
      const args = ['-a', '--no-sig-cache', '-e', FAKE_RSH, '--remote-path', remotePath];
      const paths = direction === 'push' ? [`${src}/`, `somehost:${dst}`] : [`somehost:${src}/`, dst];
      const r = await run(VALGRIND[0]!, [...VALGRIND.slice(1), process.execPath, BIN, ...args, ...paths], {
        timeout: 600_000,
        env: { ...process.env, XDG_CACHE_HOME: TEST_CACHE_HOME },
      });
      const remote = existsSync(remoteLog) ? readFileSync(remoteLog, 'utf8') : '';
      expect(r.error, r.stderr).toBeUndefined();
      expect(r.stderr).not.toMatch(/uninitialised|Invalid (read|write)/);
      expect(remote).not.toMatch(/uninitialised|Invalid (read|write)/);
      expect(r.status, `${r.stderr}\n${remote}`).toBe(0);
      // The remote ran under valgrind for real (its log exists), and the sync did its job.
      expect(existsSync(remoteLog)).toBe(true);
      expect(treeDiff(dst, src)).toEqual([]);
    }, 700_000);
  }
});
