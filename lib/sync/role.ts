// Pieces shared by the sender and receiver roles: wake-ups, fatal errors in both directions,
// abort handling, the summaries exchanged at the end of a session.
import { DeltaSyncError } from '../errors.js';
import type { Connection } from '../protocol/handshake.js';
import { Msg, decodeFatal, encodeFatal } from '../protocol/messages.js';

/** Wakes one waiting task when something it waits for changed. */
export class Notifier {
  private waiters: Array<() => void> = [];

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** An error that the other end reported in a FATAL message (not ours to report again). */
export class PeerError extends DeltaSyncError {
  readonly fromPeer = true;
}

/** Builds the error for a FATAL message received from the peer. */
export function peerFatal(conn: Connection, payload: Buffer): PeerError {
  const f = decodeFatal(payload);
  const code = f.code === 'ERR_ABORTED' ? 'ERR_ABORTED' : f.code === 'ERR_PARTIAL' ? 'ERR_PARTIAL' : 'ERR_REMOTE';
  const prefix = conn.peerName === 'remote' ? 'remote: ' : '';
  return new PeerError(code, `${prefix}${f.message}`, { exitCode: f.exitCode });
}

/** Tells the peer why we stop; best effort (the connection may already be gone). */
export function sendFatal(conn: Connection, err: unknown): void {
  if (err instanceof PeerError) return;
  const e = err instanceof DeltaSyncError ? err : undefined;
  const message = err instanceof Error ? err.message : String(err);
  try {
    conn.writer.sendNow(
      Msg.FATAL,
      encodeFatal({ code: e?.code ?? 'ERR_REMOTE', exitCode: e?.exitCode ?? 12, message }),
    );
  } catch {
    // Nothing more to do: the peer will see the connection close.
  }
}

/** The error for an aborted run. */
export function abortedError(): DeltaSyncError {
  return new DeltaSyncError('ERR_ABORTED', 'sync aborted');
}

/** Rejects as soon as `signal` aborts (never resolves otherwise). */
export function onAbort(signal: AbortSignal | undefined): { promise: Promise<never>; dispose: () => void } {
  if (!signal) return { promise: new Promise<never>(() => undefined), dispose: () => undefined };
  let listener: (() => void) | undefined;
  const promise = new Promise<never>((_, reject) => {
    if (signal.aborted) {
      reject(abortedError());
      return;
    }
    listener = () => reject(abortedError());
    signal.addEventListener('abort', listener, { once: true });
  });
  promise.catch(() => undefined);
  return {
    promise,
    dispose: () => {
      if (listener) signal.removeEventListener('abort', listener);
    },
  };
}

/** What the sender reports at the end (STATS). */
export interface SenderSummary {
  numFiles: number;
  regularFiles: number;
  dirs: number;
  symlinks: number;
  devices: number;
  specials: number;
  totalFileSize: number;
  fileListSize: number;
  fileListMs: number;
  literalBytes: number;
  matchedBytes: number;
  filesSent: number;
  ioErrors: number;
}

/** What the receiver reports at the end (DONE). */
export interface ReceiverSummary {
  filesTransferred: number;
  totalTransferredFileSize: number;
  createdFiles: number;
  createdDirs: number;
  createdLinks: number;
  deletedFiles: number;
  redone: number;
  errors: number;
  /** Basis signatures taken from the signature cache / recorded into it. */
  sigCacheHits: number;
  sigCacheStores: number;
}

export function emptySenderSummary(): SenderSummary {
  return {
    numFiles: 0,
    regularFiles: 0,
    dirs: 0,
    symlinks: 0,
    devices: 0,
    specials: 0,
    totalFileSize: 0,
    fileListSize: 0,
    fileListMs: 0,
    literalBytes: 0,
    matchedBytes: 0,
    filesSent: 0,
    ioErrors: 0,
  };
}

export function emptyReceiverSummary(): ReceiverSummary {
  return {
    filesTransferred: 0,
    totalTransferredFileSize: 0,
    createdFiles: 0,
    createdDirs: 0,
    createdLinks: 0,
    deletedFiles: 0,
    redone: 0,
    errors: 0,
    sigCacheHits: 0,
    sigCacheStores: 0,
  };
}

/** Reads a summary from a JSON message, keeping only numeric fields we know. */
export function parseSummary<T extends object>(template: T, value: Record<string, unknown>): T {
  const out = { ...template } as Record<string, number>;
  for (const key of Object.keys(template)) {
    const v = value[key];
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) out[key] = v;
  }
  return out as T;
}

/**
 * Runs a role's concurrent loops until all finish, the first one fails or `signal` aborts,
 * then `finish` (closing words to the peer). `fail` records the first error and wakes the
 * other loops (they check it and stop). On failure, `cleanup` runs, the peer gets FATAL and
 * the first error is thrown.
 */
export async function runLoops(
  conn: Connection,
  signal: AbortSignal | undefined,
  loops: (() => Promise<unknown>)[],
  hooks: {
    firstError: () => unknown;
    fail: (err: unknown) => void;
    finish: () => Promise<void>;
    cleanup?: () => Promise<void>;
  },
): Promise<void> {
  const abort = onAbort(signal);
  const stop = (err: unknown): never => {
    hooks.fail(err);
    throw err;
  };
  try {
    await Promise.race([Promise.all(loops.map((loop) => loop().catch(stop))), abort.promise]);
    await hooks.finish();
  } catch (err) {
    hooks.fail(err);
    const first = hooks.firstError() ?? err;
    await hooks.cleanup?.();
    sendFatal(conn, first);
    await conn.writer.close().catch(() => undefined);
    throw first;
  } finally {
    abort.dispose();
  }
}
