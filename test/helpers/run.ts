// spawnSync's result shape without blocking the test worker: a long synchronous build or qemu
// run starves vitest's worker RPC ("Timeout calling onTaskUpdate").
import { spawn } from 'node:child_process';

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

export function run(
  command: string,
  args: string[],
  options: { timeout?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env });
    let stdout = '';
    let stderr = '';
    let error: Error | undefined;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = options.timeout
      ? setTimeout(() => {
          error = new Error(`${command} timed out after ${options.timeout} ms`);
          child.kill('SIGKILL');
        }, options.timeout)
      : undefined;
    child.on('error', (err) => (error = err));
    child.on('close', (status) => {
      if (timer) clearTimeout(timer);
      resolve({ status, stdout, stderr, error });
    });
  });
}
