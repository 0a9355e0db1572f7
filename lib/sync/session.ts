// The client side of a sync: decides local/push/pull, starts the other end (in process, or
// through the remote shell), negotiates the session, runs its own role and gathers the stats.
// A local sync is a push to an in-process server over a stream pair: one code path for all.
import type { ChildProcess } from 'node:child_process';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { nowMs, spawn } from '../builtins.js';
import { DeltaSyncError } from '../errors.js';
import { Connection } from '../protocol/handshake.js';
import { Msg, decodeJson, encodeJson, msgName } from '../protocol/messages.js';
import type { ClientSink } from './client-sink.js';
import type { FilterRule } from './filter.js';
import { parseLocation, remoteCommand, type Location } from './location.js';
import { resolveTransferOptions, type SyncOptions, type TransferOptions } from './options.js';
import { Receiver } from './receiver.js';
import { PeerError, peerFatal, type ReceiverSummary, type SenderSummary } from './role.js';
import { Sender } from './sender.js';
import { serveSession, type SessionRequest } from './server.js';
import { SOFTWARE } from './version.js';

/** Statistics of a finished sync (what `--json` prints). */
export interface SyncStats {
  /** Regular files whose content was transferred (or would be, with dryRun). */
  filesTransferred: number;
  /** Bytes sent as literal data. */
  literalBytes: number;
  /** Bytes reconstructed from the receiver's basis files. */
  matchedBytes: number;
  /** Bytes the client wrote to the connection (after compression). */
  bytesSent: number;
  /** Bytes the client read from the connection (after compression). */
  bytesReceived: number;
  /** Total size of the regular files in the file list. */
  totalFileSize: number;
  /** Wall-clock duration of the run in milliseconds. */
  elapsedMs: number;
  /** Entries in the file list, all kinds. */
  numFiles: number;
  /** Regular files in the file list. */
  regularFiles: number;
  /** Directories in the file list. */
  dirs: number;
  /** Symlinks in the file list. */
  symlinks: number;
  /** Device nodes in the file list. */
  devices: number;
  /** FIFOs and other special files in the file list. */
  specials: number;
  /** Regular files the receiver transferred that did not exist before. */
  createdFiles: number;
  /** Directories the receiver created. */
  createdDirs: number;
  /** Entries removed by `delete`. */
  deletedFiles: number;
  /** Size of the transferred files. */
  totalTransferredFileSize: number;
  /** Bytes of the encoded file list. */
  fileListSize: number;
  /** totalFileSize / (bytesSent + bytesReceived), as rsync's "speedup". */
  speedup: number;
  /** Files that failed (each reported through onMessage). */
  errors: number;
  /** Source files that vanished between listing and sending (exit 24 in the CLI). */
  vanished: number;
  /** Files redone after a whole-file hash mismatch. */
  redone: number;
  /** Basis signatures the receiver took from its signature cache instead of reading the file. */
  sigCacheHits: number;
  /** Signatures the receiver stored in its signature cache. */
  sigCacheStores: number;
  /** Compression in use on the connection. */
  compress: 'zlib' | null;
  /** Where the destination was: this machine (local), the remote end (push), or here from a remote source (pull). */
  direction: 'local' | 'push' | 'pull';
  /** The run changed nothing (SyncOptions.dryRun). */
  dryRun: boolean;
}

/** Raised when some files could not be transferred; carries the stats of the run. */
export class SyncPartialError extends DeltaSyncError {
  constructor(
    message: string,
    /** Statistics of the run, as a successful run would have returned them. */
    readonly stats: SyncStats,
    exitCode: number,
  ) {
    super('ERR_PARTIAL', message, { exitCode });
    this.name = 'SyncPartialError';
  }
}

/** Where the ends are. */
export interface SyncPlan {
  direction: 'local' | 'push' | 'pull';
  /** The remote location (push/pull). */
  remote?: Location;
  sources: string[];
  dest: string;
}

function usage(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_USAGE', message);
}

/** Classifies the arguments: local, push (remote DEST) or pull (remote SRCs on one host). */
export function planSync(sources: readonly string[], dest: string): SyncPlan {
  if (sources.length === 0) throw usage('no source given');
  const destLoc = parseLocation(dest);
  const srcLocs = sources.map(parseLocation);
  const remoteSrc = srcLocs.some((l) => l.host !== undefined);
  if (remoteSrc && destLoc.host !== undefined) throw usage('the source and destination cannot both be remote');
  if (remoteSrc) {
    const first = srcLocs[0]!;
    if (first.host === undefined || first.host === '') throw usage('mixing local and remote sources is not supported');
    for (const l of srcLocs) {
      if (l.host === undefined) throw usage('mixing local and remote sources is not supported');
      if (l.host !== '' && (l.host !== first.host || l.user !== first.user)) throw usage('all remote sources must be on the same host');
    }
    return { direction: 'pull', remote: first, sources: srcLocs.map((l) => l.path || '.'), dest };
  }
  if (destLoc.host !== undefined) {
    if (destLoc.host === '') throw usage(`missing host name in ${dest}`);
    return { direction: 'push', remote: destLoc, sources: [...sources], dest: destLoc.path || '.' };
  }
  return { direction: 'local', sources: [...sources], dest };
}

/** The other end of the connection and how to wait for it. */
interface Peer {
  input: Readable;
  output: Writable;
  /** Resolves when the peer is gone; rejects with its failure (remote start-up problems). */
  finished: () => Promise<{ code: number | null; stderr: string }>;
  /** Error of an in-process server, preferred over the client's view of it. */
  localError: () => unknown;
  kill: () => void;
}

function startLocalPeer(signal: AbortSignal | undefined): Peer {
  const toServer = new PassThrough({ highWaterMark: 1024 * 1024 });
  const toClient = new PassThrough({ highWaterMark: 1024 * 1024 });
  let serverError: unknown;
  const onError = (err: unknown): void => {
    serverError = err;
  };
  const done = serveSession(toServer, toClient, { signal, peerName: 'sender', onError }).then(
    (code) => ({ code, stderr: '' }),
    (err: unknown) => {
      serverError = err;
      return { code: 1, stderr: '' };
    },
  );
  return {
    input: toClient,
    output: toServer,
    finished: () => done,
    localError: () => serverError,
    kill: () => {
      toServer.destroy();
      toClient.destroy();
    },
  };
}

function startRemotePeer(rsh: string, remotePath: string, loc: Location, role: 'sender' | 'receiver', onStderr: (line: string) => void): Peer {
  const { file, args } = remoteCommand(rsh, remotePath, loc, role);
  let child: ChildProcess;
  try {
    child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    throw new DeltaSyncError('ERR_REMOTE', `cannot start the remote shell ${file}: ${(err as Error).message}`, { exitCode: 14 });
  }
  let stderrTail = '';
  let pending = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    stderrTail = (stderrTail + text).slice(-4096);
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      onStderr(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
  });
  let spawnError: Error | undefined;
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      resolve({ code: null, stderr: stderrTail });
    });
    child.once('close', (code, sig) => {
      if (pending) onStderr(pending);
      pending = '';
      resolve({ code: code ?? (sig ? 128 : null), stderr: stderrTail });
    });
  });
  // Writing to a remote shell that died must not crash the process.
  child.stdin!.on('error', () => undefined);
  return {
    input: child.stdout!,
    output: child.stdin!,
    finished: async () => {
      const r = await exited;
      if (spawnError) {
        throw new DeltaSyncError('ERR_REMOTE', `cannot run the remote shell ${file}: ${spawnError.message}`, { exitCode: 14 });
      }
      return r;
    },
    localError: () => undefined,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

async function waitWithTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The error to report when the remote end failed before or during the protocol: the remote
 * shell's exit status and its last words on stderr say more than "connection closed".
 */
async function remoteFailure(peer: Peer, err: unknown): Promise<unknown> {
  const r = await waitWithTimeout(peer.finished().catch((e: unknown) => ({ error: e })), 3000);
  if (r && 'error' in r) return r.error;
  if (err instanceof PeerError) return err;
  const isStartup = err instanceof DeltaSyncError && (err.code === 'ERR_REMOTE' || err.code === 'ERR_PROTOCOL');
  // A plain error (EPIPE, a stream closed while sending) after the remote command failed is
  // the lost connection, not a bug of ours: report it with the remote's status.
  const lostConnection = !(err instanceof DeltaSyncError) && r !== undefined && r.code !== 0;
  if (!r || !(isStartup || lostConnection)) return err;
  const said = r.stderr.trim().split('\n').slice(-3).join(' | ');
  const status = r.code === null ? 'was killed' : `exited with status ${r.code}`;
  const message = `${(err as Error).message}; the remote command ${status}${said ? `: ${said}` : ''}`;
  // ssh reports its own failures (unreachable host, refused key) with 255, as rsync does.
  const exitCode = r.code === 255 ? 255 : err instanceof DeltaSyncError ? err.exitCode : 12;
  return new DeltaSyncError('ERR_REMOTE', message, { exitCode, cause: err });
}

/** Runs a sync described by `plan`. */
export async function runSync(plan: SyncPlan, options: SyncOptions, sink: ClientSink, rules?: FilterRule[]): Promise<SyncStats> {
  const started = nowMs();
  const opts: TransferOptions = resolveTransferOptions(options, plan.direction !== 'local', rules);
  opts.wantItems = options.onItem !== undefined;
  opts.wantProgress = options.onProgress !== undefined;
  if (options.signal?.aborted) throw new DeltaSyncError('ERR_ABORTED', 'sync aborted');

  const serverRole: 'sender' | 'receiver' = plan.direction === 'pull' ? 'sender' : 'receiver';
  const peer =
    plan.direction === 'local'
      ? startLocalPeer(options.signal)
      : startRemotePeer(
          options.rsh ?? process.env.DELTASYNC_RSH ?? 'ssh',
          options.remotePath ?? 'deltasync',
          plan.remote!,
          serverRole,
          (line) => sink.log(1, `remote: ${line}`),
        );
  const peerName = plan.direction === 'local' ? 'receiver' : 'remote';

  let conn: Connection | undefined;
  let compress: 'zlib' | null = null;
  try {
    conn = await Connection.open(peer.input, peer.output, { software: SOFTWARE, peerName });
    const request: SessionRequest = {
      role: serverRole,
      paths: plan.direction === 'pull' ? plan.sources : [plan.dest],
      options: opts,
      compress: options.compress ? { algorithm: 'zlib', level: options.compressLevel ?? 6 } : null,
    };
    conn.writer.sendNow(Msg.SESSION, encodeJson(request));
    const frame = await conn.reader.next();
    if (frame === null) throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${peerName} closed the connection after SESSION`);
    if (frame.type === Msg.FATAL) throw peerFatal(conn, frame.payload);
    if (frame.type !== Msg.ACCEPT) throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: expected ACCEPT, got ${msgName(frame.type)}`);
    const accept = decodeJson(frame.payload, 'ACCEPT');
    if (accept.compress === 'zlib') {
      if (!request.compress) throw new DeltaSyncError('ERR_PROTOCOL', 'protocol error: compression accepted without being asked for');
      compress = 'zlib';
      conn.reader.enableInflate();
      conn.writer.enableDeflate(request.compress.level);
    } else if (request.compress) {
      sink.log(1, `${peerName} does not support compression; continuing without it`);
    }

    let sender: SenderSummary;
    let receiver: ReceiverSummary;
    if (plan.direction === 'pull') {
      ({ sender, receiver } = await new Receiver({ conn, dest: plan.dest, opts, sink, signal: options.signal }).run());
    } else {
      conn.writer.setRate(opts.bwlimit);
      ({ sender, receiver } = await new Sender({ conn, sources: plan.sources, opts, sink, signal: options.signal }).run());
    }
    const ended = await waitWithTimeout(peer.finished(), 10_000);
    if (ended === undefined) peer.kill();

    const wire = conn.counters;
    const total = wire.bytesSent + wire.bytesReceived;
    return {
      filesTransferred: receiver.filesTransferred,
      literalBytes: sender.literalBytes,
      matchedBytes: sender.matchedBytes,
      bytesSent: wire.bytesSent,
      bytesReceived: wire.bytesReceived,
      totalFileSize: sender.totalFileSize,
      elapsedMs: nowMs() - started,
      numFiles: sender.numFiles,
      regularFiles: sender.regularFiles,
      dirs: sender.dirs,
      symlinks: sender.symlinks,
      devices: sender.devices,
      specials: sender.specials,
      createdFiles: receiver.createdFiles,
      createdDirs: receiver.createdDirs,
      deletedFiles: receiver.deletedFiles,
      totalTransferredFileSize: receiver.totalTransferredFileSize,
      fileListSize: sender.fileListSize,
      speedup: total > 0 ? sender.totalFileSize / total : 0,
      errors: sink.errors,
      vanished: sink.vanished,
      redone: receiver.redone,
      sigCacheHits: receiver.sigCacheHits,
      sigCacheStores: receiver.sigCacheStores,
      compress,
      direction: plan.direction,
      dryRun: opts.dryRun,
    };
  } catch (err) {
    const local = peer.localError();
    if (local !== undefined && (err instanceof PeerError || !(err instanceof DeltaSyncError))) throw local;
    if (plan.direction === 'local') {
      await waitWithTimeout(peer.finished(), 5000);
      peer.kill();
      throw err;
    }
    const reported = await remoteFailure(peer, err);
    peer.kill();
    throw reported;
  }
}
