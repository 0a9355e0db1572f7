// Failures that must not stop a run: missing sources, permission problems, vanished files,
// failures on the remote end; and failures that must stop it cleanly: a peer that does not
// speak the protocol, an incompatible protocol version.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, FAKE_RSH, REMOTE_PATH, REPO, runCli, tempDir, writeRandomFile } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

beforeAll(() => {
  tmp = tempDir('errors');
  // The permission tests run the CLI as nobody, who must reach the test files.
  chmodSync(tmp.path, 0o777);
});

afterAll(() => tmp.cleanup());

function tree(name: string): string {
  const root = join(tmp.path, name);
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'ok1'), 'one\n');
  writeFileSync(join(root, 'sub/ok2'), 'two\n');
  return root;
}

describe('per-file failures: reported, the run goes on, exit 23/24', () => {
  it('a missing source among others', async () => {
    const src = tree('missing');
    const dst = join(tmp.path, 'missing-dst');
    const r = await runCli(['-a', `${src}/ok1`, join(tmp.path, 'no-such-file'), `${src}/sub`, dst]);
    expect(r.code).toBe(23);
    expect(r.stderr).toContain(join(tmp.path, 'no-such-file'));
    expect(r.stderr).toMatch(/no such file or directory/);
    expect(r.stderr).toMatch(/some files\/attrs were not transferred.*\(code 23\)/);
    expect(existsSync(join(dst, 'ok1'))).toBe(true);
    expect(existsSync(join(dst, 'sub/ok2'))).toBe(true);
  });

  it.skipIf(!isRoot)('unreadable files and directories on the sender (run as nobody)', async () => {
    const src = tree('perm-src');
    writeFileSync(join(src, 'secret'), 'no\n');
    chmodSync(join(src, 'secret'), 0o000);
    mkdirSync(join(src, 'closed'));
    writeFileSync(join(src, 'closed/inside'), 'x');
    chmodSync(join(src, 'closed'), 0o000);
    const dst = join(tmp.path, 'perm-dst');
    mkdirSync(dst);
    chownSync(dst, NOBODY, NOBODY);
    writeFileSync(join(dst, 'extraneous'), 'kept: deletion is skipped after an I/O error');
    chownSync(join(dst, 'extraneous'), NOBODY, NOBODY);
    const r = await runCli(['-r', '--delete', `${src}/`, dst], { uid: NOBODY, gid: NOBODY });
    expect(r.code).toBe(23);
    expect(r.stderr).toContain(join(src, 'secret'));
    expect(r.stderr).toContain(join(src, 'closed'));
    expect(r.stderr).toMatch(/permission denied/);
    expect(r.stderr).toMatch(/IO error encountered -- skipping file deletion/);
    expect(existsSync(join(dst, 'extraneous'))).toBe(true);
    expect(existsSync(join(dst, 'ok1'))).toBe(true);
    expect(existsSync(join(dst, 'sub/ok2'))).toBe(true);
    expect(existsSync(join(dst, 'secret'))).toBe(false);
  });

  it.skipIf(!isRoot)('an unwritable destination directory on the remote end (run as nobody)', async () => {
    const src = tree('rperm-src');
    const dst = join(tmp.path, 'rperm-dst');
    mkdirSync(join(dst, 'sub'), { recursive: true });
    chownSync(dst, NOBODY, NOBODY);
    // sub/ stays root's: nobody cannot create files in it.
    const r = await runCli(['-r', '-e', FAKE_RSH, '--remote-path', REMOTE_PATH, `${src}/`, `host:${dst}`], { uid: NOBODY, gid: NOBODY });
    expect(r.code).toBe(23);
    expect(r.stderr).toContain(join(dst, 'sub/ok2'));
    expect(r.stderr).toMatch(/permission denied/);
    expect(existsSync(join(dst, 'ok1'))).toBe(true);
    expect(readdirSync(join(dst, 'sub'))).toEqual([]);
  });

  it('a source file that vanishes before its turn: exit 24', async () => {
    const src = join(tmp.path, 'vanish-src');
    const dst = join(tmp.path, 'vanish-dst');
    mkdirSync(src);
    writeRandomFile(join(src, 'a-first'), 4 * 1024 * 1024);
    writeRandomFile(join(src, 'b-vanishes'), 1024 * 1024);
    writeFileSync(join(src, 'c-last'), 'last\n');
    const child = spawn(process.execPath, [BIN, '-a', '--bwlimit=2m', `${src}/`, dst], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const deadline = Date.now() + 20_000;
    while (!(existsSync(dst) && readdirSync(dst).some((n) => n.startsWith('.a-first.'))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    rmSync(join(src, 'b-vanishes'));
    expect(await exited).toBe(24);
    expect(stderr).toContain(`file has vanished: ${join(src, 'b-vanishes')}`);
    expect(existsSync(join(dst, 'b-vanishes'))).toBe(false);
    expect(existsSync(join(dst, 'c-last'))).toBe(true);
    // (The source directory's mtime changed after the file list went out: compare the files.)
    expect(readFileSync(join(dst, 'a-first')).equals(readFileSync(join(src, 'a-first')))).toBe(true);
  });
});

describe('fatal failures: clean stop with a clear message', () => {
  it('a remote end that does not speak the protocol', async () => {
    const fake = join(tmp.path, 'chatty-rsh.sh');
    writeFileSync(fake, '#!/bin/sh\necho "Welcome to the machine!"\necho "motd line 2"\n', { mode: 0o755 });
    const r = await runCli(['-a', '-e', fake, `${tmp.path}/`, 'host:/somewhere']);
    expect(r.code).toBe(12);
    expect(r.stderr).toMatch(/does not speak the deltasync protocol; it sent: Welcome to the machine!/);
  });

  it('an incompatible protocol version', async () => {
    const peer = join(tmp.path, 'future-peer.mjs');
    writeFileSync(
      peer,
      `import { Connection } from '${join(REPO, 'dist/lib/protocol/handshake.js')}';
import { Socket } from 'node:net';
const input = new Socket({ fd: 0, readable: true, writable: false });
const output = new Socket({ fd: 1, readable: false, writable: true });
try { await Connection.open(input, output, { software: 'deltasync 9.0', minProtocol: 7, maxProtocol: 9 }); }
catch (e) { process.stderr.write(String(e.message) + '\\n'); }
output.end(); input.destroy();
`,
    );
    const r = await runCli(['-a', '-e', FAKE_RSH, '--remote-path', `${process.execPath} ${peer}`, `${tmp.path}/`, 'host:/x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/protocol version mismatch: we speak 1\.\.1, remote \(deltasync 9\.0\) speaks 7\.\.9/);
  });

  it('a server whose input is not a client (a file, /dev/null, garbage) says so and exits 12', async () => {
    const run = (stdin: 'ignore' | 'pipe', feed?: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, '--server', '--receiver'], { stdio: [stdin, 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        if (stdin === 'pipe') child.stdin!.end(feed);
        child.on('close', (code) => resolve({ code, stderr }));
      });
    const devNull = await run('ignore');
    expect(devNull.code).toBe(12);
    expect(devNull.stderr).toMatch(/^deltasync: client closed the connection before the protocol started\n$/);
    const garbage = await run('pipe', 'GET / HTTP/1.0\r\n\r\n');
    expect(garbage.code).toBe(12);
    expect(garbage.stderr).toMatch(/does not speak the deltasync protocol/);
    expect(garbage.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
  });

  it('usage errors exit 1 before anything starts', async () => {
    const bad = await runCli(['-a', '--block-size=abc', 'a', 'b']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--block-size/);
    const one = await runCli(['-a', 'only-one']);
    expect(one.code).toBe(1);
    const unknown = await runCli(['--frobnicate', 'a', 'b']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown option '--frobnicate'/);
  });
});
