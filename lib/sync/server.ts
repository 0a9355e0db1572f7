// The server end of a session: `deltasync --server` on the far side of a remote shell, or the
// in-process peer of a local sync. It answers the HELLO, takes the client's SESSION (role,
// paths, options), agrees on compression, and runs the sender or receiver role.
import { fstatSync } from 'node:fs';
import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { netSocket } from '../builtins.js';
import { DeltaSyncError, exitCodeFor } from '../errors.js';
import { Connection } from '../protocol/handshake.js';
import { Msg, decodeJson, encodeJson, msgName } from '../protocol/messages.js';
import { RemoteSink } from './events.js';
import { validateTransferOptions } from './options.js';
import { Receiver } from './receiver.js';
import { chooseRole, hasRestrictions, parseOriginalCommand, restrictSession, rootFollowGuard, rootOpenGuard, validateRestrictions, type ServerRestrictions } from './restrict.js';
import { sendFatal } from './role.js';
import { Sender } from './sender.js';
import { SOFTWARE } from './version.js';

/** What the client asks for in SESSION. */
export interface SessionRequest {
  /** Role of the server. */
  role: 'sender' | 'receiver';
  /** Sources (server is sender) or [destination] (server is receiver). */
  paths: string[];
  options: unknown;
  /** Requested compression, or null. */
  compress: { algorithm: 'zlib'; level: number } | null;
}

export interface ServerOptions {
  /** Role required by the command line (`--sender` / `--receiver`), if any. */
  role?: 'sender' | 'receiver' | undefined;
  signal?: AbortSignal | undefined;
  /** Name of the client in error messages. */
  peerName?: string;
  /** Called with the error that ended the session, if one did. */
  onError?: (err: unknown) => void;
  /** Called instead when no client completed the handshake: there is nobody to send FATAL to. */
  onNoPeer?: (err: unknown) => void;
  /** `--root`, `--read-only`, `--write-only`, `--no-delete` (lib/sync/restrict.ts). */
  restrictions?: ServerRestrictions | undefined;
  /**
   * An error to send the client in place of serving (a forced command refusing the request):
   * sent after the handshake so the client shows it as the server's message.
   */
  refusal?: DeltaSyncError | undefined;
}

function protocolError(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${message}`);
}

function parseSession(payload: Buffer): SessionRequest {
  const j = decodeJson(payload, 'SESSION');
  if (j.role !== 'sender' && j.role !== 'receiver') throw protocolError('SESSION has no valid role');
  if (!Array.isArray(j.paths) || j.paths.length === 0 || j.paths.length > 100_000 || !j.paths.every((p) => typeof p === 'string' && !p.includes('\0'))) {
    throw protocolError('SESSION has no valid paths');
  }
  if (j.role === 'receiver' && j.paths.length !== 1) throw protocolError('a receiver takes exactly one destination');
  let compress: SessionRequest['compress'] = null;
  if (j.compress !== null && j.compress !== undefined) {
    const c = j.compress as Record<string, unknown>;
    const level = typeof c.level === 'number' && Number.isInteger(c.level) && c.level >= 1 && c.level <= 9 ? c.level : 6;
    if (c.algorithm !== 'zlib') throw protocolError('SESSION asks for an unknown compression');
    compress = { algorithm: 'zlib', level };
  }
  return { role: j.role, paths: j.paths as string[], options: j.options, compress };
}

/**
 * Serves one session over `input`/`output`. Resolves to the exit status (0, or 23/24 when some
 * files failed); fatal errors are sent to the client in a FATAL message.
 */
export async function serveSession(input: Readable, output: Writable, options: ServerOptions = {}): Promise<number> {
  let conn: Connection | undefined;
  try {
    conn = await Connection.open(input, output, { software: SOFTWARE, peerName: options.peerName ?? 'client' });
    const frame = await conn.reader.next();
    if (frame === null) throw protocolError('the client closed the connection before SESSION');
    if (frame.type !== Msg.SESSION) throw protocolError(`expected SESSION, got ${msgName(frame.type)}`);
    const session = parseSession(frame.payload);
    if (options.refusal) throw options.refusal;
    if (options.role !== undefined && options.role !== session.role) {
      throw new DeltaSyncError('ERR_PROTOCOL', `this server was started as the ${options.role}, the client asked for the ${session.role}`);
    }
    const opts = validateTransferOptions(session.options);
    // Before ACCEPT: a refused request touches no file.
    if (options.restrictions) session.paths = await restrictSession(session.role, session.paths, opts, options.restrictions);
    const compress = session.compress !== null && conn.shared('compress:zlib') ? session.compress : null;
    conn.writer.sendNow(Msg.ACCEPT, encodeJson({ compress: compress ? 'zlib' : null }));
    if (compress) {
      conn.reader.enableInflate();
      conn.writer.enableDeflate(compress.level);
    }
    const sink = new RemoteSink(conn, opts.wantItems, opts.wantProgress);
    if (session.role === 'sender') {
      conn.writer.setRate(opts.bwlimit);
      // Under --root, -L may follow only links that stay inside the root (others are skipped),
      // and every file is checked again once open.
      const root = options.restrictions?.root;
      const followGuard = root !== undefined && opts.copyLinks ? rootFollowGuard(root) : undefined;
      const openGuard = root !== undefined ? rootOpenGuard(root) : undefined;
      await new Sender({ conn, sources: session.paths, opts, sink, signal: options.signal, followGuard, openGuard }).run();
    } else {
      const result = await new Receiver({ conn, dest: session.paths[0]!, opts, sink, signal: options.signal }).run();
      if (result.receiver.errors > 0) return 23;
    }
    return 0;
  } catch (err) {
    options.onError?.(err);
    if (conn) {
      sendFatal(conn, err);
      await conn.writer.close().catch(() => undefined);
    } else {
      options.onNoPeer?.(err);
    }
    return exitCodeFor(err);
  }
}

/** A stream on an inherited descriptor that never blocks the event loop (pipes and sockets). */
function descriptorStream(fd: number, direction: 'in' | 'out'): Readable | Writable {
  // net.Socket takes only pipes and sockets; files, ttys and devices such as /dev/null go
  // through fs streams.
  let pipeOrSocket = true;
  try {
    const st = fstatSync(fd);
    pipeOrSocket = st.isFIFO() || st.isSocket();
  } catch {
    pipeOrSocket = true;
  }
  if (!pipeOrSocket) return direction === 'in' ? createReadStream('', { fd, autoClose: false }) : createWriteStream('', { fd, autoClose: false });
  // process.stdout is synchronous on pipes: a full pipe would stall the whole server,
  // including the reader that must keep draining the client. A Socket on the fd is async.
  const Socket = netSocket();
  return new Socket({ fd, readable: direction === 'in', writable: direction === 'out' });
}

/**
 * `deltasync --server [--sender|--receiver] [restrictions]`: serves one session on stdin/stdout.
 * With restrictions (or without a role) under a forced command, the client's request is read
 * from SSH_ORIGINAL_COMMAND (`originalCommand`) and the restrictions are enforced on it.
 */
export async function runServerProcess(
  ownRole: 'sender' | 'receiver' | undefined,
  restrictions: ServerRestrictions = {},
  originalCommand: string | undefined = process.env.SSH_ORIGINAL_COMMAND,
): Promise<number> {
  try {
    validateRestrictions(restrictions, ownRole);
  } catch (err) {
    process.stderr.write(`deltasync: ${(err as Error).message}\n`);
    return exitCodeFor(err);
  }
  if (originalCommand !== undefined && (hasRestrictions(restrictions) || ownRole === undefined)) {
    try {
      parseOriginalCommand(originalCommand);
    } catch (err) {
      // Not a deltasync client (e.g. a login attempt with the key): it would not read FATAL.
      process.stderr.write(`deltasync: ${(err as Error).message}\n`);
      return exitCodeFor(err);
    }
  }
  let role = ownRole;
  let refusal: DeltaSyncError | undefined;
  try {
    role = chooseRole(ownRole, restrictions, originalCommand);
  } catch (err) {
    if (!(err instanceof DeltaSyncError)) throw err;
    refusal = err;
  }
  const input = descriptorStream(0, 'in') as Readable;
  const output = descriptorStream(1, 'out') as Writable;
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);
  try {
    return await serveSession(input, output, {
      role,
      signal: controller.signal,
      restrictions: hasRestrictions(restrictions) ? restrictions : undefined,
      refusal,
      onNoPeer: (err) => process.stderr.write(`deltasync: ${err instanceof Error ? err.message : String(err)}\n`),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    input.destroy();
  }
}
