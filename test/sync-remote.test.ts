// Push and pull over a remote shell: a fake one that runs the remote command locally (as
// rsync's own test suite does) and a real OpenSSH sshd on 127.0.0.1 with a throw-away key.
// Results are compared with rsync -a on the same input.
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, sshAvailable, type TestSshd } from './helpers/sshd.js';
import { FAKE_RSH, REMOTE_PATH, buildAwkwardTree, copySystemTree, jsonStats, rsync, runCli, tempDir, treeDiff } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
let src: string;
let ref: string;
let sshd: TestSshd | undefined;

beforeAll(async () => {
  tmp = tempDir('remote');
  src = join(tmp.path, 'src');
  buildAwkwardTree(src, 32 * 1024 * 1024);
  copySystemTree(join(src, 'doc'));
  ref = join(tmp.path, 'ref');
  rsync(['-a', `${src}/`, ref]);
  if (sshAvailable()) sshd = await startSshd();
});

afterAll(async () => {
  await sshd?.stop();
  tmp.cleanup();
});

interface Transport {
  name: string;
  rsh: () => string;
  host: string;
}

const transports: Transport[] = [
  { name: 'fake remote shell', rsh: () => FAKE_RSH, host: 'somehost' },
  { name: 'OpenSSH', rsh: () => sshd!.rsh, host: '127.0.0.1' },
];

for (const t of transports) {
  describe(`over ${t.name}`, () => {
    const remoteArgs = (): string[] => ['-e', t.rsh(), '--remote-path', REMOTE_PATH];
    const dir = (name: string): string => join(tmp.path, `${t.name.replace(/\W/g, '')}-${name}`);

    it('push and pull produce the same tree as rsync -a', async () => {
      if (t.name === 'OpenSSH' && !sshd) return;
      const pushed = dir('pushed');
      const push = await runCli(['-a', '--json', ...remoteArgs(), `${src}/`, `${t.host}:${pushed}`]);
      expect(push.code, push.stderr).toBe(0);
      expect(treeDiff(pushed, ref)).toEqual([]);
      const pulled = dir('pulled');
      const pull = await runCli(['-a', '--json', ...remoteArgs(), `root@${t.host}:${src}/`, pulled]);
      expect(pull.code, pull.stderr).toBe(0);
      expect(treeDiff(pulled, ref)).toEqual([]);
      const ps = jsonStats(push);
      const ls = jsonStats(pull);
      expect(ps.direction).toBe('push');
      expect(ls.direction).toBe('pull');
      // The data goes out in a push and comes in in a pull.
      expect(ps.bytesSent as number).toBeGreaterThan(ps.totalFileSize as number);
      expect(ls.bytesReceived as number).toBeGreaterThan(ls.totalFileSize as number);
      expect(ps.literalBytes).toBe(ls.literalBytes);
    });

    it('push and pull of the same change move the same literal and matched bytes', async () => {
      if (t.name === 'OpenSSH' && !sshd) return;
      const base = dir('change-src');
      rsync(['-a', '--exclude=doc', `${src}/`, base]);
      const a = dir('change-a');
      const b = dir('change-b');
      rsync(['-a', `${base}/`, a]);
      rsync(['-a', `${base}/`, b]);
      appendFileSync(join(base, 'big.bin'), 'x');
      writeFileSync(join(base, 'plain.txt'), 'changed\n');
      mkdirSync(join(base, 'added'));
      writeFileSync(join(base, 'added/file'), 'added\n');
      const push = await runCli(['-a', '--json', ...remoteArgs(), `${base}/`, `${t.host}:${a}`]);
      const pull = await runCli(['-a', '--json', ...remoteArgs(), `${t.host}:${base}/`, b]);
      expect(push.code, push.stderr).toBe(0);
      expect(pull.code, pull.stderr).toBe(0);
      const ps = jsonStats(push);
      const ls = jsonStats(pull);
      expect(ps.literalBytes).toBe(ls.literalBytes);
      expect(ps.matchedBytes).toBe(ls.matchedBytes);
      expect(ps.filesTransferred).toBe(3);
      expect(ls.filesTransferred).toBe(3);
      // A delta transfer by default over a remote shell: the big file is almost all matched.
      expect(ps.matchedBytes as number).toBeGreaterThanOrEqual(32 * 1024 * 1024);
      expect(ps.literalBytes as number).toBeLessThan(64 * 1024);
      expect(ps.bytesSent as number).toBeLessThan(256 * 1024);
      expect(ls.bytesReceived as number).toBeLessThan(256 * 1024);
      expect(treeDiff(a, base)).toEqual([]);
      expect(treeDiff(b, base)).toEqual([]);
    });

    it('a remote failure is reported with the remote message and the right exit code', async () => {
      if (t.name === 'OpenSSH' && !sshd) return;
      const missing = await runCli(['-a', ...remoteArgs(), `${t.host}:${dir('no-such-dir')}/x`, dir('missing-out')]);
      expect(missing.code).toBe(23);
      expect(missing.stderr).toContain(`${dir('no-such-dir')}/x`);
      expect(missing.stderr).toMatch(/no such file or directory/i);

      const noParent = await runCli(['-a', ...remoteArgs(), `${src}/sub/`, `${t.host}:${dir('nope')}/deeper/dest`]);
      expect(noParent.code).toBe(11);
      expect(noParent.stderr).toContain(`${dir('nope')}/deeper/dest`);

      const badProgram = await runCli(['-a', '-e', t.rsh(), '--remote-path', '/nonexistent/deltasync', `${src}/sub/`, `${t.host}:${dir('x')}`]);
      expect(badProgram.code).toBe(12);
      expect(badProgram.stderr).toMatch(/nonexistent\/deltasync.*(not found|No such file)/);
    });
  });
}

describe('compression', () => {
  it('-z is negotiated and shrinks compressible data on the wire', async () => {
    const text = join(tmp.path, 'z-src');
    mkdirSync(text);
    for (let i = 0; i < 20; i++) writeFileSync(join(text, `t${i}.txt`), `line ${i} of some very repetitive text\n`.repeat(5000));
    const remote = ['-e', FAKE_RSH, '--remote-path', REMOTE_PATH];
    const plain = await runCli(['-a', '--json', ...remote, `${text}/`, `h:${join(tmp.path, 'z-plain')}`]);
    const packed = await runCli(['-a', '-z', '--json', ...remote, `${text}/`, `h:${join(tmp.path, 'z-packed')}`]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(packed.code, packed.stderr).toBe(0);
    const ps = jsonStats(plain);
    const zs = jsonStats(packed);
    expect(ps.compress).toBe(null);
    expect(zs.compress).toBe('zlib');
    expect(zs.literalBytes).toBe(ps.literalBytes);
    expect(zs.bytesSent as number).toBeLessThan((ps.bytesSent as number) / 10);
    expect(treeDiff(join(tmp.path, 'z-packed'), text)).toEqual([]);
  });
});

describe('remote shell selection', () => {
  it('passes -l USER and the host to the remote shell', async () => {
    const logFile = join(tmp.path, 'rsh-args');
    const wrapper = join(tmp.path, 'logging-rsh.sh');
    writeFileSync(wrapper, `#!/bin/sh\necho "$@" > '${logFile}'\nexec '${FAKE_RSH}' "$@"\n`, { mode: 0o755 });
    const r = await runCli(['-a', '-e', wrapper, '--remote-path', REMOTE_PATH, `${src}/sub/`, `alice@example.org:${join(tmp.path, 'user-dest')}`]);
    expect(r.code, r.stderr).toBe(0);
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(logFile, 'utf8')).toMatch(/^-l alice example\.org .*--server --receiver\n$/);
  });

  it('refuses two remote ends and reports an unreachable host with ssh exit status 255', async () => {
    const both = await runCli(['-a', 'h1:/a', 'h2:/b']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/cannot both be remote/);
    const unreachable = await runCli(['-a', '-e', 'ssh -p 1 -o BatchMode=yes -o ConnectTimeout=5', `${src}/sub/`, '127.0.0.1:/tmp/x']);
    expect(unreachable.code).toBe(255);
    expect(unreachable.stderr).toMatch(/refused|closed/i);
  });
});
