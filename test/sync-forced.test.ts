// The restricted server as a real forced command: an OpenSSH sshd on 127.0.0.1 whose
// authorized_keys pins each test key to `deltasync --server --root DIR` with --read-only or
// --write-only --no-delete (docs/SYNC.md "Restricted server"). Pull backups work, pushes are
// refused, escapes from the root are refused, other commands are refused — through real ssh.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, sshAvailable, type TestSshd } from './helpers/sshd.js';
import { BIN, TEST_CACHE_HOME, runCli, tempDir, treeDiff, writeRandomFile } from './helpers/trees.js';

const available = sshAvailable();
let tmp: { path: string; cleanup: () => void };
let sshd: TestSshd | undefined;
let root: string;
let outside: string;
let readOnlyRsh: string;
let writeOnlyRsh: string;
const SECRET = 'outside the root\n';

/** The forced command of a key: this checkout's server, restricted to `root`. */
function forcedKey(flags: string): string {
  const command = `XDG_CACHE_HOME=${TEST_CACHE_HOME} ${process.execPath} ${BIN} --server --root ${root} ${flags}`;
  return `command="${command}",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding`;
}

beforeAll(async () => {
  if (!available) return;
  tmp = tempDir('forced');
  root = join(tmp.path, 'root');
  outside = join(tmp.path, 'outside');
  mkdirSync(join(root, 'www', 'img'), { recursive: true });
  writeFileSync(join(root, 'www', 'index.html'), '<h1>served</h1>\n');
  writeRandomFile(join(root, 'www', 'img', 'logo.bin'), 400_000);
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), SECRET);
  symlinkSync(outside, join(root, 'escape'));
  sshd = await startSshd();
  readOnlyRsh = sshd.addKey(forcedKey('--read-only'));
  writeOnlyRsh = sshd.addKey(forcedKey('--write-only --no-delete'));
});

afterAll(async () => {
  await sshd?.stop();
  tmp?.cleanup();
});

function localTree(name: string): string {
  const dir = join(tmp.path, name);
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'a.txt'), `${name}\n`);
  writeRandomFile(join(dir, 'sub', 'b.bin'), 150_000);
  return dir;
}

describe.skipIf(!available)('forced command over a real sshd', () => {
  it('a read-only key: the pull backup works, byte for byte', async () => {
    const dest = join(tmp.path, 'backup');
    const r = await runCli(['-a', '-e', readOnlyRsh, '127.0.0.1:www/', dest]);
    expect(r.code, `${r.stderr}\n${sshd!.log()}`).toBe(0);
    expect(treeDiff(join(root, 'www'), dest)).toEqual([]);
    // A second run sends nothing new.
    const again = await runCli(['-a', '--json', '-e', readOnlyRsh, '127.0.0.1:www/', dest]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout.trim().split('\n').pop()!).literalBytes).toBe(0);
  });

  it('a read-only key: a push is refused and writes nothing', async () => {
    const src = localTree('push-src');
    const before = readdirSync(root).sort();
    const r = await runCli(['-a', '-e', readOnlyRsh, `${src}/`, '127.0.0.1:incoming']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/remote: refused by the server: this server is read-only/);
    expect(readdirSync(root).sort()).toEqual(before);
  });

  it('a read-only key: escaping the root is refused (.., absolute paths, a symlink out)', async () => {
    for (const path of ['../outside/', `${outside}/`, '/etc/', 'escape/', 'www/../../outside/']) {
      const dest = join(tmp.path, `escape-${readdirSync(tmp.path).length}`);
      const r = await runCli(['-a', '-e', readOnlyRsh, `127.0.0.1:${path}`, dest]);
      expect(r.code, `${path}: ${r.stderr}`).toBe(1);
      expect(r.stderr, path).toMatch(/remote: refused by the server: .*(outside the server's root|"\.\." is not allowed)/);
      expect(existsSync(join(dest, 'secret.txt')), path).toBe(false);
      expect(existsSync(join(dest, 'passwd')), path).toBe(false);
    }
  });

  it('a write-only key: the push backup works, a pull and a --delete push are refused', async () => {
    const src = localTree('laptop');
    const r = await runCli(['-a', '-e', writeOnlyRsh, `${src}/`, '127.0.0.1:laptop']);
    expect(r.code, `${r.stderr}\n${sshd!.log()}`).toBe(0);
    expect(treeDiff(src, join(root, 'laptop'))).toEqual([]);

    const pull = await runCli(['-a', '-e', writeOnlyRsh, '127.0.0.1:laptop/', join(tmp.path, 'stolen')]);
    expect(pull.code).toBe(1);
    expect(pull.stderr).toMatch(/remote: refused by the server: this server is write-only/);
    expect(existsSync(join(tmp.path, 'stolen', 'a.txt'))).toBe(false);

    writeFileSync(join(root, 'laptop', 'old-only-on-server'), 'keep me\n');
    const prune = await runCli(['-a', '--delete', '-e', writeOnlyRsh, `${src}/`, '127.0.0.1:laptop']);
    expect(prune.code).toBe(1);
    expect(prune.stderr).toMatch(/--delete is not allowed/);
    expect(existsSync(join(root, 'laptop', 'old-only-on-server'))).toBe(true);

    const out = await runCli(['-a', '-e', writeOnlyRsh, `${src}/`, `127.0.0.1:${outside}`]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/outside the server's root/);
    expect(readdirSync(outside)).toEqual(['secret.txt']);
  });

  it('a forced key runs nothing but the deltasync server', () => {
    for (const command of ['cat /etc/passwd', 'sh -c id', `${process.execPath} ${BIN} --server --sender --root /`]) {
      const r = spawnSync('sh', ['-c', `${readOnlyRsh} 127.0.0.1 '${command}'`], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, command).not.toBe(0);
      expect(r.stdout, command).not.toMatch(/root:x:0:0|uid=0/);
      expect(r.stderr, command).toMatch(/refused by the server/);
    }
  });
});
