// Message types of the deltasync sync protocol and their payload codecs (docs/PROTOCOL.md).
// Control messages that happen once per session are JSON; per-file messages are binary.
import { DeltaSyncError } from '../errors.js';
import { native } from '../native.js';
import { PayloadWriter } from './codec.js';

/** Frame types. The numeric values are part of the wire format. */
export const Msg = {
  HELLO: 0x01,
  SESSION: 0x02,
  ACCEPT: 0x03,
  FLIST: 0x10,
  FLIST_END: 0x11,
  FLIST_BEGIN: 0x12,
  REQUEST: 0x20,
  SIG: 0x21,
  FILE_BEGIN: 0x30,
  DATA: 0x31,
  FILE_END: 0x32,
  FILE_ERROR: 0x33,
  ITEM: 0x40,
  LOG: 0x41,
  PROGRESS: 0x42,
  DONE: 0x50,
  STATS: 0x51,
  FATAL: 0x7f,
} as const;

/** Name of a frame type, for error messages. */
export function msgName(type: number): string {
  for (const [name, value] of Object.entries(Msg)) if (value === type) return name;
  return `0x${type.toString(16).padStart(2, '0')}`;
}

function protocolError(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${message}`);
}

/** JSON payloads: UTF-8 JSON object. */
export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function decodeJson(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw protocolError(`${what} message is not valid JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw protocolError(`${what} message is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// File list entries

/** Kinds of file list entries. Values are part of the wire format. */
export const EntryType = {
  FILE: 1,
  DIR: 2,
  SYMLINK: 3,
  DEVICE: 4,
  SPECIAL: 5,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One file list entry as sent by the sender. */
export interface FileEntry {
  /** Path relative to the transfer root, '/'-separated; "." is the root directory itself. */
  path: string;
  type: EntryType;
  /** Full st_mode (type and permission bits). */
  mode: number;
  /** Size in bytes (regular files; 0 otherwise). */
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  uid: number;
  gid: number;
  /** Symlink target. */
  linkTarget?: string;
  /** Device number (devices). */
  rdev?: number;
  /** Whole-file checksum (with --checksum). */
  checksum?: Buffer;
  /** Directory whose contents the sender listed (so the receiver may delete extraneous names in it). */
  listed?: boolean;
}

const F_LINK = 1;
const F_RDEV = 2;
const F_CHECKSUM = 4;
const F_LISTED = 8;

/** Longest path accepted in a file list entry (enforced natively: native/protocol/file_list.h). */
export const MAX_PATH_BYTES = 64 * 1024;

/**
 * Encodes a batch of entries. Paths are prefix-compressed against the previous entry of the
 * whole list (`prev`), which the caller threads from batch to batch.
 */
export function encodeFileEntries(entries: readonly FileEntry[], prev: { path: Buffer }): Buffer {
  const w = new PayloadWriter(64 * entries.length + 64);
  w.uint(entries.length);
  for (const e of entries) {
    const path = Buffer.from(e.path, 'utf8');
    let common = 0;
    const max = Math.min(path.length, prev.path.length);
    while (common < max && path[common] === prev.path[common]) common++;
    prev.path = path;
    let flags = 0;
    if (e.linkTarget !== undefined) flags |= F_LINK;
    if (e.rdev !== undefined) flags |= F_RDEV;
    if (e.checksum !== undefined) flags |= F_CHECKSUM;
    if (e.listed) flags |= F_LISTED;
    w.u8(e.type).u8(flags).uint(common).bytes(path.subarray(common));
    w.uint(e.mode).uint(e.size).int(e.mtimeSec).uint(e.mtimeNsec).uint(e.uid).uint(e.gid);
    if (e.linkTarget !== undefined) w.string(e.linkTarget);
    if (e.rdev !== undefined) w.uint(e.rdev);
    if (e.checksum !== undefined) w.bytes(e.checksum);
  }
  return Buffer.from(w.finish());
}

/**
 * Checks a path from the wire: relative, no empty, "." or ".." components, no NUL. The FLIST
 * decoder applies the same rule natively (native/protocol/file_list.h).
 */
export function isSafeRelativePath(path: string): boolean {
  if (path === '.') return true;
  if (path.length === 0 || path.startsWith('/') || path.includes('\0')) return false;
  for (const part of path.split('/')) {
    if (part === '' || part === '.' || part === '..') return false;
  }
  return true;
}

// Layout of decodeFileList's `fields`: ENTRY_FIELDS numbers per entry (native/protocol/binding.cc).
const ENTRY_FIELDS = 15;

/**
 * Decodes a batch written by {@link encodeFileEntries}; validates every field. The bytes are
 * parsed and checked in native code (native/protocol/file_list.h: counts and lengths bounded,
 * paths checked as by {@link isSafeRelativePath}); `prev` is threaded as for encoding.
 *
 * @throws DeltaSyncError ERR_PROTOCOL naming what is wrong.
 */
export function decodeFileEntries(payload: Buffer, prev: { path: Buffer }): FileEntry[] {
  const r = native.decodeFileList(payload, prev.path);
  if (r.error !== undefined) {
    const path = 'path' in r && r.path !== undefined ? JSON.stringify(r.path.toString('utf8')) : '';
    // A function, not a string: a path holding `$&` or `$$` must not act as a replacement pattern.
    throw protocolError(r.error.replace('{path}', () => path));
  }
  const { fields, paths } = r;
  const count = fields.length / ENTRY_FIELDS;
  const out: FileEntry[] = new Array(count);
  for (let i = 0, f = 0; i < count; i++, f += ENTRY_FIELDS) {
    const flags = fields[f + 1]!;
    const pathStart = fields[f + 9]!;
    const entry: FileEntry = {
      path: paths.toString('utf8', pathStart, pathStart + fields[f + 10]!),
      type: fields[f]! as EntryType,
      mode: fields[f + 2]!,
      size: fields[f + 3]!,
      mtimeSec: fields[f + 4]!,
      mtimeNsec: fields[f + 5]!,
      uid: fields[f + 6]!,
      gid: fields[f + 7]!,
    };
    if (flags & F_LINK) entry.linkTarget = payload.toString('utf8', fields[f + 11]!, fields[f + 11]! + fields[f + 12]!);
    if (flags & F_RDEV) entry.rdev = fields[f + 8]!;
    if (flags & F_CHECKSUM) entry.checksum = Buffer.from(payload.subarray(fields[f + 13]!, fields[f + 13]! + fields[f + 14]!));
    if (flags & F_LISTED) entry.listed = true;
    out[i] = entry;
  }
  if (count > 0) {
    const last = (count - 1) * ENTRY_FIELDS;
    prev.path = paths.subarray(fields[last + 9]!, fields[last + 9]! + fields[last + 10]!);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Requests and file transfers

/** How the receiver wants a file. Values are part of the wire format. */
export const RequestMode = {
  /** Delta against the signature that follows in SIG frames. */
  DELTA: 0,
  /** Whole file, raw bytes (no basis). */
  WHOLE: 1,
  /** Raw bytes from `offset` on; FILE_END's hash covers the bytes sent. */
  APPEND: 2,
  /** Raw bytes from `offset` on; FILE_END's hash covers the whole file. */
  APPEND_VERIFY: 3,
} as const;
export type RequestMode = (typeof RequestMode)[keyof typeof RequestMode];

export interface Request {
  index: number;
  mode: RequestMode;
  /** DELTA: size of the serialized signature sent in SIG frames; APPEND*: the offset. */
  length: number;
}

export function encodeRequest(q: Request): Buffer {
  return Buffer.from(new PayloadWriter(24).uint(q.index).u8(q.mode).uint(q.length).finish());
}

/**
 * The fields of a small binary message, decoded and checked natively
 * (native/protocol/messages.h): numbers in wire order, strings as offset and length.
 */
function messageFields(type: number, payload: Buffer): Float64Array {
  const f = native.decodeMessage(type, payload);
  if (typeof f === 'string') throw protocolError(f);
  return f;
}

/** @throws DeltaSyncError ERR_PROTOCOL when the payload is not exactly one REQUEST. */
export function decodeRequest(payload: Buffer): Request {
  const f = messageFields(Msg.REQUEST, payload);
  return { index: f[0]!, mode: f[1]! as RequestMode, length: f[2]! };
}

export interface FileBegin {
  index: number;
  mode: RequestMode;
}

export function encodeFileBegin(b: FileBegin): Buffer {
  return Buffer.from(new PayloadWriter(16).uint(b.index).u8(b.mode).finish());
}

/** @throws DeltaSyncError ERR_PROTOCOL when the payload is not exactly one FILE_BEGIN. */
export function decodeFileBegin(payload: Buffer): FileBegin {
  const f = messageFields(Msg.FILE_BEGIN, payload);
  return { index: f[0]!, mode: f[1]! as RequestMode };
}

export interface FileEnd {
  index: number;
  /** Size of the new file. */
  size: number;
  literalBytes: number;
  matchedBytes: number;
  /** Raw modes: the xxh3-128 hash the receiver checks. Empty for DELTA (the delta carries its own). */
  hash: Buffer;
}

export function encodeFileEnd(e: FileEnd): Buffer {
  return Buffer.from(
    new PayloadWriter(64).uint(e.index).uint(e.size).uint(e.literalBytes).uint(e.matchedBytes).bytes(e.hash).finish(),
  );
}

/** @throws DeltaSyncError ERR_PROTOCOL when the payload is not exactly one FILE_END. */
export function decodeFileEnd(payload: Buffer): FileEnd {
  const f = messageFields(Msg.FILE_END, payload);
  return {
    index: f[0]!,
    size: f[1]!,
    literalBytes: f[2]!,
    matchedBytes: f[3]!,
    hash: Buffer.from(payload.subarray(f[4]!, f[4]! + f[5]!)),
  };
}

export interface FileError {
  index: number;
  /** 'vanished' for a source that disappeared, else 'io'. */
  kind: 'vanished' | 'io';
  message: string;
}

export function encodeFileError(e: FileError): Buffer {
  return Buffer.from(new PayloadWriter(128).uint(e.index).u8(e.kind === 'vanished' ? 1 : 0).string(e.message).finish());
}

/** @throws DeltaSyncError ERR_PROTOCOL when the payload is not exactly one FILE_ERROR. */
export function decodeFileError(payload: Buffer): FileError {
  const f = messageFields(Msg.FILE_ERROR, payload);
  return { index: f[0]!, kind: f[1] === 1 ? 'vanished' : 'io', message: payload.toString('utf8', f[2]!, f[2]! + f[3]!) };
}

export interface Progress {
  index: number;
  bytes: number;
  /** Last report for the file. */
  done: boolean;
}

export function encodeProgress(p: Progress): Buffer {
  return Buffer.from(new PayloadWriter(16).uint(p.index).uint(p.bytes).u8(p.done ? 1 : 0).finish());
}

/** @throws DeltaSyncError ERR_PROTOCOL when the payload is not exactly one PROGRESS. */
export function decodeProgress(payload: Buffer): Progress {
  const f = messageFields(Msg.PROGRESS, payload);
  return { index: f[0]!, bytes: f[1]!, done: f[2] === 1 };
}

/** Log levels of LOG messages. */
export const LogLevel = { INFO: 0, WARNING: 1, ERROR: 2, VANISHED: 3 } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

export interface LogMessage {
  level: LogLevel;
  message: string;
  path?: string;
}

export function encodeLog(m: LogMessage): Buffer {
  const w = new PayloadWriter(128).u8(m.level).string(m.message);
  if (m.path !== undefined) w.string(m.path);
  return Buffer.from(w.finish());
}

/** @throws DeltaSyncError ERR_PROTOCOL when the payload is not exactly one LOG. */
export function decodeLog(payload: Buffer): LogMessage {
  const f = messageFields(Msg.LOG, payload);
  const m: LogMessage = { level: f[0]! as LogLevel, message: payload.toString('utf8', f[1]!, f[1]! + f[2]!) };
  if (f.length > 3) m.path = payload.toString('utf8', f[3]!, f[3]! + f[4]!);
  return m;
}

export interface Fatal {
  code: string;
  exitCode: number;
  message: string;
}

export function encodeFatal(f: Fatal): Buffer {
  return encodeJson(f);
}

export function decodeFatal(payload: Buffer): Fatal {
  const j = decodeJson(payload, 'FATAL');
  return {
    code: typeof j.code === 'string' ? j.code : 'ERR_REMOTE',
    exitCode: typeof j.exitCode === 'number' && Number.isInteger(j.exitCode) ? j.exitCode : 12,
    message: typeof j.message === 'string' ? j.message : 'remote failure',
  };
}
