// Crash safety: kill -9 of either end of a push at random points. The sender (the client) and
// the receiver (the server behind the fake remote shell) are separate processes; after every
// kill each destination file must be its old or its new version (with --partial also a prefix
// of the new one: that is what --partial keeps), and a normal rerun must finish the tree, leave
// no temp files behind and, with --partial, send less than a full transfer would.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededBytes, xorshift32 } from './helpers/bytes.js';
import { BIN, FAKE_RSH, TEST_CACHE_HOME, jsonStats, runCli, tempDir, treeDiff } from './helpers/trees.js';

const TRIALS = Number(process.env.DELTASYNC_KILL_TRIALS ?? 30);
const SEED = Number(process.env.DELTASYNC_KILL_SEED ?? 0x6b696c6c);

/** The tree: old versions at the destination, unrelated new versions at the source. */
const FILES: { path: string; oldSize: number | undefined; newSize: number }[] = [
  { path: 'big.bin', oldSize: 300_000, newSize: 2 * 1024 * 1024 },
  { path: 'mid.bin', oldSize: 1024 * 1024, newSize: 900_000 },
  { path: 'small.txt', oldSize: 4000, newSize: 5200 },
  { path: 'sub/deep.bin', oldSize: 100_000, newSize: 800_000 },
  { path: 'sub/tiny', oldSize: 10, newSize: 300 },
  { path: 'sub/added.bin', oldSize: undefined, newSize: 250_000 },
];
/** Temp names the receiver uses (lib/sync/receiver.ts tempPathFor): `.NAME.deltasync-XXXXXX`. */
const TEMP_RE = /^\.(.+)\.deltasync-[0-9a-f]{6}$/s;

let tmp: { path: string; cleanup: () => void };
let src: string;
let old: string;
let wrapper: string;
const oldData = new Map<string, Buffer>();
const newData = new Map<string, Buffer>();

beforeAll(() => {
  tmp = tempDir('faults');
  src = join(tmp.path, 'src');
  old = join(tmp.path, 'old');
  FILES.forEach((f, i) => {
    const n = seededBytes(f.newSize, 1000 + i);
    newData.set(f.path, n);
    mkdirSync(join(src, f.path, '..'), { recursive: true });
    writeFileSync(join(src, f.path), n);
    if (f.oldSize !== undefined) {
      const o = seededBytes(f.oldSize, 2000 + i);
      oldData.set(f.path, o);
      mkdirSync(join(old, f.path, '..'), { recursive: true });
      writeFileSync(join(old, f.path), o);
    }
  });
  // The remote program: records its pid (the receiver's) so the test can kill it, then becomes
  // the server (exec keeps the pid).
  wrapper = join(tmp.path, 'remote.sh');
  writeFileSync(
    wrapper,
    `#!/bin/sh\necho $$ > "$DS_PIDFILE"\nXDG_CACHE_HOME='${TEST_CACHE_HOME}' exec '${process.execPath}' '${BIN}' "$@"\n`,
  );
  chmodSync(wrapper, 0o755);
});

afterAll(() => tmp.cleanup());

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function waitGone(pid: number, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`${what} (pid ${pid}) did not exit within 15 s after the other end died`);
    await sleep(20);
  }
}

/** All non-directories below `dir`, as relative paths. */
function walkFiles(dir: string): string[] {
  const out: string[] = [];
  const rec = (d: string): void => {
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) rec(p);
      else out.push(relative(dir, p));
    }
  };
  rec(dir);
  return out.sort();
}

function isPrefixOf(part: Buffer, whole: Buffer): boolean {
  return part.length <= whole.length && whole.subarray(0, part.length).equals(part);
}

interface Inspection {
  /** Files already equal to their new version. */
  done: Set<string>;
  /** Bytes of new data kept for each file (a proper prefix at the destination or in a temp file). */
  kept: Map<string, number>;
}

/**
 * Checks the destination right after a kill: every file is old or new (with --partial also a
 * proper prefix of new); temp files hold prefixes of the new version. Returns what is reusable.
 */
function inspectAfterKill(dst: string, partial: boolean, label: string): Inspection {
  const done = new Set<string>();
  const kept = new Map<string, number>();
  for (const rel of walkFiles(dst)) {
    const name = rel.split('/').pop()!;
    const temp = TEMP_RE.exec(name);
    const data = readFileSync(join(dst, rel));
    if (temp) {
      const original = join(rel, '..', temp[1]!).replace(/^\.\//, '');
      const want = newData.get(original);
      expect(want, `${label}: temp file ${rel} for an unknown file`).toBeDefined();
      // A temp file is written front to back from the delta: a prefix of the new version.
      expect(isPrefixOf(data, want!), `${label}: temp file ${rel} is not a prefix of the new ${original}`).toBe(true);
      // Docs (SYNC.md "Interrupted runs"): with --partial a leftover temp file becomes the
      // basis only when it is larger than the destination file.
      const current = existsSync(join(dst, original)) ? readFileSync(join(dst, original)).length : -1;
      if (partial && data.length < want!.length && data.length > current) kept.set(original, Math.max(kept.get(original) ?? 0, data.length));
      continue;
    }
    const n = newData.get(rel);
    const o = oldData.get(rel);
    expect(n, `${label}: unexpected file ${rel} at the destination`).toBeDefined();
    if (data.equals(n!)) {
      done.add(rel);
      continue;
    }
    if (o !== undefined && data.equals(o)) continue;
    if (partial && data.length > 0 && isPrefixOf(data, n!)) {
      kept.set(rel, Math.max(kept.get(rel) ?? 0, data.length));
      continue;
    }
    throw new Error(
      `${label}: ${rel} is torn: ${data.length} bytes, neither the old (${o?.length ?? 'none'}) nor the new (${n!.length}) version` +
        (partial ? ' nor a prefix of the new one' : ''),
    );
  }
  // Files that were in the old tree are never lost.
  for (const rel of oldData.keys()) expect(existsSync(join(dst, rel)), `${label}: ${rel} disappeared`).toBe(true);
  return { done, kept };
}

function tempsIn(dir: string): string[] {
  return walkFiles(dir).filter((rel) => TEMP_RE.test(rel.split('/').pop()!));
}

interface KillOutcome {
  /** The victim was still running when it was killed (the kill landed mid-run). */
  midRun: boolean;
  clientCode: number | null;
}

/**
 * Starts a push of src/ to dst over the fake remote shell, kills the sender (the client) or
 * the receiver (the server) with SIGKILL when `when` says (a delay, or once a temp file holds
 * that many bytes), waits until both are gone.
 */
async function pushAndKill(
  dst: string,
  victim: 'sender' | 'receiver',
  when: { afterMs: number } | { tempBytes: number },
  partial: boolean,
  pidFile: string,
): Promise<KillOutcome> {
  const args = ['-a', '--bwlimit=6m', ...(partial ? ['--partial'] : []), '-e', FAKE_RSH, '--remote-path', wrapper, `${src}/`, `host:${dst}`];
  const child: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, XDG_CACHE_HOME: TEST_CACHE_HOME, DS_PIDFILE: pidFile },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  if ('afterMs' in when) await sleep(when.afterMs);
  else {
    const deadline = Date.now() + 20_000;
    const biggestTemp = (): number => {
      try {
        return Math.max(0, ...tempsIn(dst).map((rel) => statSync(join(dst, rel)).size));
      } catch {
        return 0; // a temp file renamed between listing and stat
      }
    };
    while (child.exitCode === null && biggestTemp() < when.tempBytes && Date.now() < deadline) await sleep(5);
  }
  const serverPid = (): number | undefined => {
    try {
      const n = Number(readFileSync(pidFile, 'utf8').trim());
      return n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  };
  let midRun = false;
  if (victim === 'sender') {
    if (child.exitCode === null && child.signalCode === null) {
      midRun = true;
      child.kill('SIGKILL');
    }
  } else {
    // The receiver may not have started yet: wait for its pid while the client still runs.
    let pid = serverPid();
    while (pid === undefined && child.exitCode === null) {
      await sleep(5);
      pid = serverPid();
    }
    if (pid !== undefined && alive(pid)) {
      midRun = true;
      process.kill(pid, 'SIGKILL');
    }
  }
  const clientCode = await exited;
  const pid = serverPid();
  if (pid !== undefined) await waitGone(pid, 'the receiver');
  if (victim === 'receiver' && midRun && clientCode === 0) {
    // The receiver may have been killed after it sent its last words: then the run is complete
    // and deltasync reports nothing; only the remote shell's own note of the kill may appear.
    expect(stderr.replace(/^remote: Killed\n/m, '')).toBe('');
  }
  return { midRun, clientCode };
}

describe('kill -9 of either end at random points', () => {
  it(`${TRIALS} trials: never a torn file; the rerun completes, cleans up and (with --partial) resumes`, async () => {
    const next = xorshift32(SEED);
    const fullBytes = [...newData.values()].reduce((a, b) => a + b.length, 0);
    let midRunKills = 0;
    let resumedTrials = 0;
    const victims = { sender: 0, receiver: 0 };
    for (let trial = 0; trial < TRIALS; trial++) {
      const victim = next() % 2 === 0 ? 'sender' : 'receiver';
      const partial = trial % 2 === 1;
      // Node start-up of both ends takes a few hundred ms; the transfer about a second more.
      // Every other trial kills at a random time; the rest once a temp file holds a random
      // amount of data, so that kills land inside files too (--partial has something to keep).
      const when = trial % 4 < 2 ? { afterMs: 150 + (next() % 1300) } : { tempBytes: 1 + (next() % (1536 * 1024)) };
      const at = 'afterMs' in when ? `after ${when.afterMs} ms` : `at ${when.tempBytes} temp bytes`;
      const label = `trial ${trial} (seed ${SEED}, kill ${victim} ${at}${partial ? ', --partial' : ''})`;
      const dst = join(tmp.path, `dst-${trial}`);
      cpSync(old, dst, { recursive: true, preserveTimestamps: true });
      const pidFile = join(tmp.path, `pid-${trial}`);
      const outcome = await pushAndKill(dst, victim, when, partial, pidFile);
      if (outcome.midRun) {
        midRunKills++;
        victims[victim]++;
      }
      const seen = inspectAfterKill(dst, partial, label);

      // The rerun: a normal push (no bandwidth limit) must finish the job.
      const rerun = await runCli([
        '-a',
        '--json',
        ...(partial ? ['--partial'] : []),
        '-e',
        FAKE_RSH,
        '--remote-path',
        `XDG_CACHE_HOME=${TEST_CACHE_HOME} ${process.execPath} ${BIN}`,
        `${src}/`,
        `host:${dst}`,
      ]);
      expect(rerun.code, `${label}: rerun failed: ${rerun.stderr}`).toBe(0);
      expect(treeDiff(src, dst), `${label}: tree differs after the rerun`).toEqual([]);
      expect(tempsIn(dst), `${label}: temp files left after the rerun`).toEqual([]);

      const stats = jsonStats(rerun);
      // What a full transfer of the files not yet done costs in literal data (all new data is
      // unrelated to the old, so nothing matches).
      let remaining = 0;
      let keptTotal = 0;
      for (const [rel, data] of newData) {
        if (seen.done.has(rel)) continue;
        remaining += data.length;
        keptTotal += seen.kept.get(rel) ?? 0;
      }
      // Never more than the files still to do, give or take the block sums' granularity.
      expect(stats.literalBytes as number, `${label}: literal bytes`).toBeLessThanOrEqual(remaining + 64 * 1024);
      if (partial && keptTotal > 128 * 1024) {
        // Resumed: the kept prefixes are matched, not sent again.
        resumedTrials++;
        expect(stats.literalBytes as number, `${label}: kept ${keptTotal} bytes but the rerun sent them again`).toBeLessThanOrEqual(
          remaining - keptTotal + 64 * 1024 * FILES.length,
        );
        expect(stats.literalBytes as number, `${label}: no fewer bytes than a full transfer`).toBeLessThan(remaining);
      }
      expect(remaining).toBeLessThanOrEqual(fullBytes);
      rmSync(dst, { recursive: true, force: true });
    }
    console.log(`kill trials: ${TRIALS}, mid-run ${midRunKills} (sender ${victims.sender}, receiver ${victims.receiver}), resumed ${resumedTrials}`);
    // The trials must really have interrupted runs, on both ends, and resumed some.
    expect(midRunKills, 'kills that landed while the victim was running').toBeGreaterThanOrEqual(Math.ceil(TRIALS / 2));
    expect(victims.sender, 'mid-run kills of the sender').toBeGreaterThan(0);
    expect(victims.receiver, 'mid-run kills of the receiver').toBeGreaterThan(0);
    if (TRIALS >= 10) expect(resumedTrials, 'trials where --partial kept data that the rerun reused').toBeGreaterThan(0);
  }, 600_000);
});
