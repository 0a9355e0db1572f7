// Typed errors with stable codes; the CLI maps them to exit codes.

/** Stable error codes. See docs/FORMAT.md and the CLI documentation for the exit codes. */
export type ErrorCode =
  | 'ERR_USAGE' // bad CLI usage / invalid option values
  | 'ERR_BAD_MAGIC' // not a signature/delta we know
  | 'ERR_BAD_PARAMS' // absurd block size / sum length / counts
  | 'ERR_TRUNCATED' // input ended early
  | 'ERR_CORRUPT' // garbled content (bad opcode, bad varint, literal longer than stream, COPY past basis ...)
  | 'ERR_HASH_MISMATCH' // the patched result does not match the delta's result digest / whole-file hash
  | 'ERR_IO' // file system errors (ENOENT, EACCES, ENOSPC ...); message names the path
  | 'ERR_PROTOCOL' // sync protocol violation
  | 'ERR_PARTIAL' // sync: some files failed
  | 'ERR_ABORTED' // AbortSignal
  | 'ERR_REMOTE' // remote end failed / remote shell exited
  | 'ERR_NO_ADDON'; // no usable native addon (no matching prebuild, no local build)

const EXIT_CODES: Record<ErrorCode, number> = {
  ERR_USAGE: 1,
  ERR_BAD_MAGIC: 2,
  ERR_BAD_PARAMS: 2,
  ERR_TRUNCATED: 2,
  ERR_CORRUPT: 2,
  ERR_HASH_MISMATCH: 2,
  ERR_IO: 11,
  ERR_PROTOCOL: 12,
  ERR_PARTIAL: 23,
  ERR_ABORTED: 20,
  ERR_REMOTE: 12,
  ERR_NO_ADDON: 1,
};

/** Options accepted by the {@link DeltaSyncError} constructor. */
export interface DeltaSyncErrorOptions {
  /** File the error is about, when there is one. */
  path?: string;
  /** Overrides the exit code derived from the error code (e.g. 255 for an ssh failure). */
  exitCode?: number;
  /** The underlying error. */
  cause?: unknown;
}

/** The one error type deltasync throws on purpose. `code` is stable; `message` is one line. */
export class DeltaSyncError extends Error {
  /** Stable machine-readable code; test this, not the message. */
  readonly code: ErrorCode;
  /** Exit status the CLI uses for this error (see the README's exit code table). */
  readonly exitCode: number;
  /** File the error is about (always set for ERR_IO). */
  readonly path?: string;

  constructor(code: ErrorCode, message: string, options: DeltaSyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DeltaSyncError';
    this.code = code;
    this.exitCode = options.exitCode ?? EXIT_CODES[code];
    if (options.path !== undefined) this.path = options.path;
  }
}

/** Exit code for any thrown value: a DeltaSyncError's own exit code, anything else 1. */
export function exitCodeFor(err: unknown): number {
  return err instanceof DeltaSyncError ? err.exitCode : 1;
}

/** True when `err` is a DeltaSyncError (optionally with the given code). */
export function isDeltaSyncError(err: unknown, code?: ErrorCode): err is DeltaSyncError {
  return err instanceof DeltaSyncError && (code === undefined || err.code === code);
}

/**
 * Wraps a file system error as ERR_IO naming the path; DeltaSyncErrors pass through unchanged.
 * `action` says what was being done ("open", "read", "write", "rename" ...).
 */
export function ioError(err: unknown, path: string, action: string): DeltaSyncError {
  if (err instanceof DeltaSyncError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  const errno = e && typeof e.code === 'string' ? e.code : undefined;
  const reason = describeErrno(errno) ?? (e instanceof Error ? e.message : String(err));
  const detail = errno && !reason.includes(errno) ? `${reason} (${errno})` : reason;
  return new DeltaSyncError('ERR_IO', `cannot ${action} ${path}: ${detail}`, { path, cause: err });
}

function describeErrno(code: string | undefined): string | undefined {
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOSPC':
      return 'no space left on device';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'not a directory';
    case 'EEXIST':
      return 'file exists';
    case 'EROFS':
      return 'read-only file system';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files';
    case 'EDQUOT':
      return 'disk quota exceeded';
    default:
      return undefined;
  }
}
