// A protocol connection over any pair of byte streams: preamble, HELLO exchange (version and
// capability negotiation), then frames. See docs/PROTOCOL.md.
import type { Readable, Writable } from 'node:stream';
import { DeltaSyncError } from '../errors.js';
import { FrameReader, FrameWriter, type Frame, type WireCounters } from './framing.js';
import { Msg, decodeFatal, decodeJson, encodeJson, msgName } from './messages.js';

/** Protocol versions this build speaks. */
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;

/** "DSYNC", NUL, then the highest protocol version as u16 BE. */
export const PREAMBLE_MAGIC = Buffer.from('DSYNC\0', 'latin1');
export const PREAMBLE_BYTES = 8;

/** Capabilities this build offers (docs/PROTOCOL.md lists their meaning). */
export const CAPABILITIES: readonly string[] = [
  'compress:zlib',
  'strong:xxh3',
  'strong:md4',
  'strong:blake2b',
  'rolling:ds64',
  'rolling:rollsum',
  'rolling:rabinkarp',
  'mode:delta',
  'mode:whole',
  'mode:append',
  'progress',
  'sig:sparse',
];

/** What each side announces in HELLO. */
export interface Hello {
  software: string;
  minProtocol: number;
  maxProtocol: number;
  capabilities: string[];
}

function preamble(): Buffer {
  const b = Buffer.alloc(PREAMBLE_BYTES);
  PREAMBLE_MAGIC.copy(b, 0);
  b.writeUInt16BE(PROTOCOL_VERSION, 6);
  return b;
}

/** Shows bytes that were not our protocol as readable text for an error message. */
export function describeForeignBytes(bytes: Buffer): string {
  const text = bytes
    .toString('utf8')
    .replace(/\r?\n/g, ' | ')
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '.')
    .trim();
  return text.length > 0 ? text.slice(0, 300) : '(nothing)';
}

/** Options of {@link Connection.open}. */
export interface ConnectionOptions {
  software: string;
  /** Limit for bytes this side sends, bytes per second. */
  bytesPerSecond?: number;
  /** Capabilities to announce (default: all of {@link CAPABILITIES}). */
  capabilities?: readonly string[];
  /** Protocol version range to announce (tests use this to simulate old or future peers). */
  minProtocol?: number;
  maxProtocol?: number;
  /** Name of the peer in error messages ("remote", "receiver" ...). */
  peerName?: string;
}

/** A connection after the HELLO exchange. */
export class Connection {
  readonly counters: WireCounters;
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
  /** Negotiated protocol version. */
  version = 0;
  peer: Hello | undefined;
  readonly peerName: string;

  private constructor(input: Readable, output: Writable, options: ConnectionOptions) {
    this.counters = { bytesSent: 0, bytesReceived: 0 };
    this.reader = new FrameReader(input, this.counters);
    const writerOptions = options.bytesPerSecond ? { bytesPerSecond: options.bytesPerSecond } : {};
    this.writer = new FrameWriter(output, this.counters, writerOptions);
    this.peerName = options.peerName ?? 'peer';
  }

  /** Sends our preamble and HELLO, reads and checks the peer's, agrees on a version. */
  static async open(input: Readable, output: Writable, options: ConnectionOptions): Promise<Connection> {
    const conn = new Connection(input, output, options);
    const mine: Hello = {
      software: options.software,
      minProtocol: options.minProtocol ?? MIN_PROTOCOL_VERSION,
      maxProtocol: options.maxProtocol ?? PROTOCOL_VERSION,
      capabilities: [...(options.capabilities ?? CAPABILITIES)],
    };
    conn.writer.writeRaw(preamble());
    conn.writer.sendNow(Msg.HELLO, encodeJson(mine));

    const head = await conn.reader.readRaw(PREAMBLE_BYTES);
    if (head.length < PREAMBLE_BYTES || !head.subarray(0, 6).equals(PREAMBLE_MAGIC)) {
      const rest = head.length < PREAMBLE_BYTES ? head : Buffer.concat([head, await conn.reader.readRest(512, 300)]);
      throw new DeltaSyncError(
        'ERR_REMOTE',
        rest.length === 0
          ? `${conn.peerName} closed the connection before the protocol started`
          : `${conn.peerName} does not speak the deltasync protocol; it sent: ${describeForeignBytes(rest)}`,
      );
    }
    const frame = await conn.reader.next();
    if (frame === null) throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${conn.peerName} closed the connection during the handshake`);
    if (frame.type === Msg.FATAL) {
      const f = decodeFatal(frame.payload);
      throw new DeltaSyncError('ERR_REMOTE', `${conn.peerName}: ${f.message}`, { exitCode: f.exitCode });
    }
    if (frame.type !== Msg.HELLO) throw new DeltaSyncError('ERR_PROTOCOL', `protocol error: expected HELLO, got ${msgName(frame.type)}`);
    const peer = parseHello(frame);
    conn.peer = peer;
    const version = Math.min(mine.maxProtocol, peer.maxProtocol);
    if (version < Math.max(mine.minProtocol, peer.minProtocol)) {
      throw new DeltaSyncError(
        'ERR_PROTOCOL',
        `protocol version mismatch: we speak ${mine.minProtocol}..${mine.maxProtocol}, ${conn.peerName} (${peer.software}) speaks ${peer.minProtocol}..${peer.maxProtocol}`,
        { exitCode: 2 },
      );
    }
    conn.version = version;
    return conn;
  }

  /** True when both sides announced `capability`. */
  shared(capability: string): boolean {
    return CAPABILITIES.includes(capability) && (this.peer?.capabilities.includes(capability) ?? false);
  }
}

function parseHello(frame: Frame): Hello {
  const j = decodeJson(frame.payload, 'HELLO');
  const intIn = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 65536;
  if (!intIn(j.minProtocol) || !intIn(j.maxProtocol) || j.minProtocol > j.maxProtocol) {
    throw new DeltaSyncError('ERR_PROTOCOL', 'protocol error: HELLO has an invalid protocol version range');
  }
  const caps = Array.isArray(j.capabilities) ? j.capabilities.filter((c): c is string => typeof c === 'string') : [];
  return {
    software: typeof j.software === 'string' ? j.software.slice(0, 200) : 'unknown',
    minProtocol: j.minProtocol,
    maxProtocol: j.maxProtocol,
    capabilities: caps,
  };
}
