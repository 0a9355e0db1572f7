// A throw-away OpenSSH server on 127.0.0.1 for the ssh tests: fresh host and client keys in a
// temp directory, a temp config, a free port, `sshd -D -e` in the foreground.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestSshd {
  port: number;
  /** The -e/--rsh command that logs in with the test key. */
  rsh: string;
  /** sshd's stderr so far (for failure messages). */
  log: () => string;
  /**
   * Authorizes one more fresh key with `options` in front of it in authorized_keys (e.g.
   * `command="...",restrict`: a forced command); returns the -e/--rsh command that logs in with it.
   */
  addKey: (options: string) => string;
  stop: () => Promise<void>;
}

const SSHD = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((p) => existsSync(p));

/** True when this machine can run the ssh tests. */
export function sshAvailable(): boolean {
  return SSHD !== undefined && spawnSync('ssh', ['-V']).status === 0 && spawnSync('ssh-keygen', ['--help']).error === undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function keygen(path: string): void {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
}

/** Starts sshd and waits until a login with the test key runs a command. */
export async function startSshd(): Promise<TestSshd> {
  if (!SSHD) throw new Error('sshd not found');
  const dir = mkdtempSync(join(tmpdir(), 'ds-sshd-'));
  keygen(join(dir, 'host_key'));
  keygen(join(dir, 'client_key'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  // sshd refuses to start without its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'StrictModes no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(SSHD, ['-f', config, '-D', '-e'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const rshFor = (key: string): string =>
    [
      'ssh',
      `-p ${port}`,
      `-i ${key}`,
      // Only this key: an agent or default keys would log in without the forced command.
      '-o IdentitiesOnly=yes',
      '-o IdentityAgent=none',
      '-o StrictHostKeyChecking=no',
      '-o UserKnownHostsFile=/dev/null',
      '-o BatchMode=yes',
      '-o LogLevel=ERROR',
    ].join(' ');
  const rsh = rshFor(join(dir, 'client_key'));
  let extraKeys = 0;
  const addKey = (options: string): string => {
    const key = join(dir, `client_key_${++extraKeys}`);
    keygen(key);
    appendFileSync(join(dir, 'authorized_keys'), `${options} ${readFileSync(`${key}.pub`, 'utf8').trim()}\n`);
    return rshFor(key);
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const probe = spawnSync('sh', ['-c', `${rsh} 127.0.0.1 true`], { encoding: 'utf8', timeout: 10_000 });
    if (probe.status === 0) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`sshd did not come up: ${log} ${probe.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, rsh, log: () => log, addKey, stop };
}
