#!/usr/bin/env node
// A remote shell for benchmarks that counts the bytes crossing it, like a network would see
// them. Used as `-e bench/count-rsh.js`: drops ssh-style options and the host, runs the remote
// command locally with `sh -c` (as bench/fake-rsh.sh does), relays stdin/stdout through pipes
// and counts both directions. When the command has exited, writes to $SEED_WIRE_FILE:
//   { "toRemote": bytes, "fromRemote": bytes, "exitCode": n, "io": "<this process's /proc/self/io>" }
// The io counters include the remote command's (this process reaps it), so the caller can
// subtract this whole subtree from the local side's totals.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const argv = process.argv.slice(2);
let i = 0;
while (i < argv.length && argv[i].startsWith('-')) i += argv[i] === '-l' ? 2 : 1;
i++; // host
const command = argv.slice(i).join(' ');
if (!command) {
  process.stderr.write('count-rsh: no remote command\n');
  process.exit(255);
}

let toRemote = 0;
let fromRemote = 0;
const child = spawn('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'inherit'] });
process.stdin.on('data', (chunk) => {
  toRemote += chunk.length;
  if (!child.stdin.write(chunk)) {
    process.stdin.pause();
    child.stdin.once('drain', () => process.stdin.resume());
  }
});
process.stdin.on('end', () => child.stdin.end());
child.stdin.on('error', () => undefined); // the remote end went away first: its exit says why
child.stdout.on('data', (chunk) => {
  fromRemote += chunk.length;
  if (!process.stdout.write(chunk)) {
    child.stdout.pause();
    process.stdout.once('drain', () => child.stdout.resume());
  }
});
process.stdout.on('error', () => undefined);
child.on('close', (code, signal) => {
  const exitCode = code ?? (signal ? 128 : 255);
  const out = process.env.SEED_WIRE_FILE;
  if (out) {
    let io = '';
    try {
      io = readFileSync('/proc/self/io', 'utf8');
    } catch {
      // not Linux: no counters
    }
    writeFileSync(out, JSON.stringify({ toRemote, fromRemote, exitCode, io }));
  }
  const finish = () => process.exit(exitCode);
  if (process.stdout.writableLength > 0) process.stdout.once('drain', finish);
  else finish();
});
child.on('error', (err) => {
  process.stderr.write(`count-rsh: ${err.message}\n`);
  process.exit(255);
});
