// Node built-ins that only some runs need, loaded on first use, and stand-ins for the ones a
// sync need not load at all. Each built-in module costs start-up time to load (crypto, zlib,
// child_process, perf_hooks: 2-10 ms apiece here), and every sync starts a process, two for a
// remote one: a small sync is mostly start-up.
import { createRequire } from 'node:module';
import type * as ChildProcessModule from 'node:child_process';
import type * as NetModule from 'node:net';
import type * as ZlibModule from 'node:zlib';
import { native } from './native.js';

const require = createRequire(import.meta.url);

// require() keeps each module once loaded: these cost a lookup after the first call.

/** node:zlib, for compressed sessions (-z) only. */
export function zlib(): typeof ZlibModule {
  return require('node:zlib') as typeof ZlibModule;
}

/** child_process.spawn, for the remote shell and mknod/mkfifo only. */
export const spawn: typeof ChildProcessModule.spawn = ((...args: Parameters<typeof ChildProcessModule.spawn>) =>
  (require('node:child_process') as typeof ChildProcessModule).spawn(...args)) as typeof ChildProcessModule.spawn;

/** net.Socket, for a server on inherited pipes or sockets only. */
export function netSocket(): typeof NetModule.Socket {
  return (require('node:net') as typeof NetModule).Socket;
}

/** `n` random bytes from the kernel (getrandom), without loading node:crypto. */
export function randomBytes(n: number): Buffer {
  return native.randomFill(Buffer.allocUnsafe(n));
}

/** Milliseconds on a monotonic clock, as performance.now() (whose global loads perf_hooks). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
