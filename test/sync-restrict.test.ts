// `deltasync --server` as a forced command with --root, --read-only, --write-only and
// --no-delete. A wrapper script plays sshd's forced command: whatever the client asked to run
// ends up in SSH_ORIGINAL_COMMAND, and the wrapper runs the restricted server instead.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOriginalCommand, resolveUnderRoot } from '../lib/sync/restrict.js';
import { BIN, FAKE_RSH, TEST_CACHE_HOME, runCli, tempDir, treeDiff, writeRandomFile } from './helpers/trees.js';

let tmp: { path: string; cleanup: () => void };
let root: string;
let outside: string;
let src: string;
const SECRET = 'secret outside the root\n';

/** Writes a forced-command wrapper running `deltasync --server --root ROOT FLAGS`. */
function forced(name: string, flags: string[]): string {
  const path = join(tmp.path, `forced-${name}.sh`);
  const quoted = flags.map((f) => `'${f}'`).join(' ');
  writeFileSync(
    path,
    `#!/bin/sh\n# The client's words arrive as arguments; sshd would put them in SSH_ORIGINAL_COMMAND.\n` +
      `SSH_ORIGINAL_COMMAND="$0 $*" XDG_CACHE_HOME='${TEST_CACHE_HOME}' exec '${process.execPath}' '${BIN}' --server --root '${root}' ${quoted}\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

function client(wrapper: string, args: string[]): ReturnType<typeof runCli> {
  return runCli(['-e', FAKE_RSH, '--remote-path', wrapper, ...args]);
}

beforeAll(() => {
  tmp = tempDir('restrict');
  root = join(tmp.path, 'root');
  outside = join(tmp.path, 'outside');
  src = join(tmp.path, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'hello\n');
  writeRandomFile(join(src, 'sub', 'b.bin'), 300_000);
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), SECRET);
  // The tree served from the root: plain data, a link out, and links inside a served tree.
  mkdirSync(join(root, 'data', 'sub'), { recursive: true });
  writeFileSync(join(root, 'data', 'a.txt'), 'served\n');
  writeRandomFile(join(root, 'data', 'sub', 'c.bin'), 200_000);
  symlinkSync(outside, join(root, 'out'));
  mkdirSync(join(root, 'links'));
  writeFileSync(join(root, 'links', 'plain.txt'), 'plain\n');
  symlinkSync(join(outside, 'secret.txt'), join(root, 'links', 'escape'));
  // Links to directories: one inside the root, one out.
  mkdirSync(join(root, 'dirlinks'));
  symlinkSync(outside, join(root, 'dirlinks', 'out'));
  symlinkSync('../data', join(root, 'dirlinks', 'in'));
  mkdirSync(join(root, 'safe'));
  symlinkSync('../data/a.txt', join(root, 'safe', 'inside'));
});

afterAll(() => tmp.cleanup());

describe('parsing the forced command request', () => {
  it('takes the role from SSH_ORIGINAL_COMMAND and refuses anything else', () => {
    expect(parseOriginalCommand('deltasync --server --sender').role).toBe('sender');
    expect(parseOriginalCommand("'node' /opt/ds.js --server --receiver").role).toBe('receiver');
    expect(() => parseOriginalCommand('ls /')).toThrow(/only runs the deltasync server/);
    expect(() => parseOriginalCommand('deltasync --server --receiver --root /')).toThrow(/unexpected argument "--root"/);
    expect(() => parseOriginalCommand('deltasync --server --sender --receiver')).toThrow(/both/);
  });

  it('resolves paths beneath the root', async () => {
    expect(await resolveUnderRoot(root, 'data/a.txt', false)).toBe(join(root, 'data', 'a.txt'));
    expect(await resolveUnderRoot(root, `${root}/data/`, false)).toBe(`${join(root, 'data')}/`);
    expect(await resolveUnderRoot(root, 'new/dir', true)).toBe(join(root, 'new', 'dir'));
    await expect(resolveUnderRoot(root, 'data/../../outside', true)).rejects.toThrow(/"\.\." is not allowed/);
    await expect(resolveUnderRoot(root, outside, true)).rejects.toThrow(/outside the server's root/);
    await expect(resolveUnderRoot(root, 'out/secret.txt', false)).rejects.toThrow(/symlink out leads outside/);
    await expect(resolveUnderRoot(root, 'out', true)).rejects.toThrow(/symlink out leads outside/);
  });
});

describe('restricted server over the fake remote shell', () => {
  it('pulls from the root with a read-only key, byte for byte', async () => {
    const w = forced('ro', ['--read-only']);
    const dest = join(tmp.path, 'pulled');
    const r = await client(w, ['-a', 'somehost:data/', dest]);
    expect(r.code, r.stderr).toBe(0);
    expect(treeDiff(join(root, 'data'), dest)).toEqual([]);
    // An absolute path inside the root is accepted too.
    const dest2 = join(tmp.path, 'pulled-abs');
    const r2 = await client(w, ['-a', `somehost:${root}/data/`, dest2]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(treeDiff(join(root, 'data'), dest2)).toEqual([]);
  });

  it('pushes into the root with a write-only key, byte for byte', async () => {
    const w = forced('wo', ['--write-only']);
    const r = await client(w, ['-a', `${src}/`, 'somehost:backup']);
    expect(r.code, r.stderr).toBe(0);
    expect(treeDiff(src, join(root, 'backup'))).toEqual([]);
    const r2 = await client(w, ['-a', `${src}/`, `somehost:${root}/backup-abs`]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(treeDiff(src, join(root, 'backup-abs'))).toEqual([]);
  });

  it('refuses ".." in both directions', async () => {
    const pull = await client(forced('ro', ['--read-only']), ['-a', 'somehost:../outside/', join(tmp.path, 'dotdot-pull')]);
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toMatch(/"\.\." is not allowed/);
    expect(existsSync(join(tmp.path, 'dotdot-pull', 'secret.txt'))).toBe(false);
    const push = await client(forced('wo', ['--write-only']), ['-a', `${src}/`, 'somehost:data/../../evil']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/"\.\." is not allowed/);
    expect(existsSync(join(tmp.path, 'evil'))).toBe(false);
  });

  it('refuses absolute paths outside the root', async () => {
    const pull = await client(forced('ro', ['--read-only']), ['-a', `somehost:${outside}/`, join(tmp.path, 'abs-pull')]);
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toMatch(/outside the server's root/);
    expect(existsSync(join(tmp.path, 'abs-pull', 'secret.txt'))).toBe(false);
    const push = await client(forced('wo', ['--write-only']), ['-a', `${src}/`, `somehost:${outside}/pushed`]);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/outside the server's root/);
    expect(existsSync(join(outside, 'pushed'))).toBe(false);
  });

  it('refuses a symlink in the requested path that leads out of the root', async () => {
    const pull = await client(forced('ro', ['--read-only']), ['-a', 'somehost:out/', join(tmp.path, 'link-pull')]);
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toMatch(/symlink out leads outside/);
    expect(existsSync(join(tmp.path, 'link-pull', 'secret.txt'))).toBe(false);
    const push = await client(forced('wo', ['--write-only']), ['-a', `${src}/`, 'somehost:out/pushed']);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/symlink out leads outside/);
    expect(existsSync(join(outside, 'pushed'))).toBe(false);
  });

  it('with -L skips just a symlink in the tree that leads out (exit 23); without -L sends it as a link', async () => {
    const w = forced('ro', ['--read-only']);
    const followed = join(tmp.path, 'follow-pull');
    const r = await client(w, ['-rL', 'somehost:links/', followed]);
    expect(r.code, r.stderr).toBe(23);
    expect(r.stderr).toMatch(/symlink \S*links\/escape leads outside the server's root: not followed \(-L\), skipped/);
    expect(existsSync(join(followed, 'escape'))).toBe(false);
    // The rest of the tree still arrives.
    expect(readFileSync(join(followed, 'plain.txt'), 'utf8')).toBe('plain\n');
    // A link to a directory outside is skipped too: nothing beneath it is listed or read.
    const dirOut = join(tmp.path, 'follow-dir-pull');
    const r1 = await client(w, ['-rL', 'somehost:dirlinks/', dirOut]);
    expect(r1.code, r1.stderr).toBe(23);
    expect(r1.stderr).toMatch(/symlink \S*dirlinks\/out leads outside the server's root/);
    expect(existsSync(join(dirOut, 'out'))).toBe(false);
    expect(readFileSync(join(dirOut, 'in', 'a.txt'), 'utf8')).toBe('served\n');
    // As a link (-a): the target text travels, never the file it names.
    const asLink = join(tmp.path, 'link-as-link');
    const r2 = await client(w, ['-a', 'somehost:links/', asLink]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(treeDiff(join(root, 'links'), asLink)).toEqual([]);
    // -L over links that stay inside the root still works.
    const safe = join(tmp.path, 'safe-follow');
    const r3 = await client(w, ['-rL', 'somehost:safe/', safe]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(readFileSync(join(safe, 'inside'), 'utf8')).toBe('served\n');
  });

  it('a directory swapped for a symlink out after listing does not redirect the read (open files are checked)', async () => {
    const w = forced('ro', ['--read-only']);
    const race = join(root, 'race');
    mkdirSync(join(race, 'sub'), { recursive: true });
    writeRandomFile(join(race, 'a-big'), 3_000_000);
    // Over the read-ahead size: opened only when its turn comes, after the swap.
    writeRandomFile(join(race, 'sub', 'secret.bin'), 400_000);
    mkdirSync(join(outside, 'race-sub'));
    writeRandomFile(join(outside, 'race-sub', 'secret.bin'), 400_000);
    const secret = readFileSync(join(outside, 'race-sub', 'secret.bin'));
    const dest = join(tmp.path, 'race-pull');
    const child = spawn(process.execPath, [BIN, '-a', '--bwlimit=2m', '-e', FAKE_RSH, '--remote-path', w, 'somehost:race/', dest], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, XDG_CACHE_HOME: TEST_CACHE_HOME },
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    // Once the big file is on its way the list is complete: swap sub for a link out.
    const deadline = Date.now() + 20_000;
    while (!(existsSync(dest) && readdirSync(dest).some((n) => n.startsWith('.a-big.'))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    renameSync(join(race, 'sub'), join(race, 'sub-orig'));
    symlinkSync(join(outside, 'race-sub'), join(race, 'sub'));
    expect(await code, stderr).toBe(23);
    expect(stderr).toMatch(/sub\/secret\.bin now resolves outside the server's root/);
    const got = join(dest, 'sub', 'secret.bin');
    expect(existsSync(got) && readFileSync(got).equals(secret), 'the file outside the root was sent').toBe(false);
    expect(readFileSync(join(dest, 'a-big')).equals(readFileSync(join(race, 'a-big')))).toBe(true);
  });

  it('a read-only server refuses to receive', async () => {
    const r = await client(forced('ro', ['--read-only']), ['-a', `${src}/`, 'somehost:ro-push']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/read-only: it only sends files/);
    expect(existsSync(join(root, 'ro-push'))).toBe(false);
  });

  it('a write-only server refuses to send', async () => {
    const dest = join(tmp.path, 'wo-pull');
    const r = await client(forced('wo', ['--write-only']), ['-a', 'somehost:data/', dest]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/write-only: it only receives files/);
    expect(existsSync(join(dest, 'a.txt'))).toBe(false);
  });

  it('--no-delete refuses a --delete push and deletes nothing', async () => {
    const w = forced('nodel', ['--write-only', '--no-delete']);
    const first = await client(w, ['-a', `${src}/`, 'somehost:nodel']);
    expect(first.code, first.stderr).toBe(0);
    writeFileSync(join(root, 'nodel', 'extra.txt'), 'keep me\n');
    const r = await client(w, ['-a', '--delete', `${src}/`, 'somehost:nodel']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--delete is not allowed/);
    expect(readFileSync(join(root, 'nodel', 'extra.txt'), 'utf8')).toBe('keep me\n');
  });

  it('the client cannot lift the restrictions through its remote command', async () => {
    // Extra words before --server are the program's name to the forced command: ignored.
    const w = forced('wo', ['--write-only']);
    const r = await client(`${w} --root / --read-only`, ['-a', `${src}/`, `somehost:${outside}/lifted`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/outside the server's root/);
    expect(existsSync(join(outside, 'lifted'))).toBe(false);
  });

  it('a forced command refuses a request that is not a deltasync server command', async () => {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [BIN, '--server', '--root', root, '--read-only'], {
      env: { ...process.env, SSH_ORIGINAL_COMMAND: 'cat /etc/passwd' },
      input: '',
      encoding: 'utf8',
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/only runs the deltasync server/);
  });
});
