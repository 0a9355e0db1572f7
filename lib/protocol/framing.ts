// Frames over a byte stream: [type u8][length u32 BE][payload]. The writer batches small frames
// into large writes, honours the stream's backpressure, counts wire bytes, can rate-limit
// (--bwlimit) and can switch to a raw-deflate stream (-z) at a frame boundary; the reader is
// pull-based (the stream is only read while someone asks for frames), so a slow consumer slows
// the peer down through the pipe instead of buffering without bound. Frame headers are parsed by
// the native splitter (native/protocol/frames.h), once per received chunk: payloads are
// subarrays of the chunk, and only a frame that straddles chunks is copied (once).
import type { Readable, Writable } from 'node:stream';
import type * as Zlib from 'node:zlib';
import { zlib } from '../builtins.js';
import { DeltaSyncError } from '../errors.js';
import { native } from '../native.js';

/** Bytes in a frame header. */
export const FRAME_HEADER_BYTES = 5;
/** Largest payload a peer may send; anything bigger is a protocol violation. */
export const MAX_FRAME_PAYLOAD = 1024 * 1024 + 1024;
/** Payload size the sync roles aim for in data-carrying frames. */
export const DATA_CHUNK_BYTES = 256 * 1024;

/** One decoded frame. */
export interface Frame {
  type: number;
  payload: Buffer;
}

function protocolError(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_PROTOCOL', `protocol error: ${message}`);
}

/** Pieces at least this big are written as chunks of their own (see RawSink.take). */
const WRITE_BY_REFERENCE = 64 * 1024;

/** Wire byte counters for one connection, shared by its reader and writer. */
export interface WireCounters {
  bytesSent: number;
  bytesReceived: number;
}

/**
 * Queue in front of a Writable: coalesces small chunks into writes of up to 256 KiB, waits for
 * 'drain', applies an optional bandwidth limit, counts bytes handed to the stream.
 */
class RawSink {
  private queue: Buffer[] = [];
  private queued = 0;
  private pumping = false;
  private failure: Error | undefined;
  private roomWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private idleWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private readonly highWater = 1024 * 1024;
  private tokens = 0;
  private lastRefill = Date.now();

  constructor(
    private readonly out: Writable,
    private readonly counters: WireCounters,
    private bytesPerSecond: number | undefined,
  ) {
    out.on('error', (err) => this.fail(err));
    out.on('close', () => {
      if (this.queued > 0 || this.pumping) this.fail(new Error('connection closed while sending'));
    });
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.queue = [];
    this.queued = 0;
    for (const w of [...this.roomWaiters, ...this.idleWaiters]) w.reject(err);
    this.roomWaiters = [];
    this.idleWaiters = [];
  }

  get error(): Error | undefined {
    return this.failure;
  }

  setRate(bytesPerSecond: number | undefined): void {
    this.bytesPerSecond = bytesPerSecond && bytesPerSecond > 0 ? bytesPerSecond : undefined;
    this.tokens = 0;
    this.lastRefill = Date.now();
  }

  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (!this.pumping) void this.pump();
  }

  /** Resolves when the queue is below its high-water mark. */
  room(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.queued < this.highWater) return Promise.resolve();
    return new Promise((resolve, reject) => this.roomWaiters.push({ resolve, reject }));
  }

  /** Resolves when everything queued has been handed to the stream. */
  idle(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.queued === 0 && !this.pumping) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }

  /**
   * Up to `max` bytes as one chunk. Without a rate limit (`whole`), a big piece goes out by
   * itself and uncut: it is neither copied here nor split across the peer's chunks, so a
   * reader in this process (local sync) gets the payload as a view instead of gathering it.
   */
  private take(max: number, whole: boolean): Buffer {
    const parts: Buffer[] = [];
    let size = 0;
    while (this.queue.length > 0 && size < max) {
      const head = this.queue[0]!;
      if (whole && head.length >= WRITE_BY_REFERENCE) {
        if (size === 0) {
          parts.push(head);
          size = head.length;
          this.queue.shift();
        }
        break;
      }
      if (size + head.length <= max) {
        parts.push(head);
        size += head.length;
        this.queue.shift();
      } else {
        const cut = max - size;
        parts.push(head.subarray(0, cut));
        this.queue[0] = head.subarray(cut);
        size += cut;
      }
    }
    this.queued -= size;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
  }

  /** Token bucket: waits until `n` bytes may go out. */
  private async throttle(n: number): Promise<void> {
    const rate = this.bytesPerSecond!;
    for (;;) {
      const now = Date.now();
      // Burst capacity of a quarter second keeps the rate smooth at small limits.
      this.tokens = Math.min(rate / 4 + n, this.tokens + ((now - this.lastRefill) * rate) / 1000);
      this.lastRefill = now;
      if (this.tokens >= n) {
        this.tokens -= n;
        return;
      }
      const waitMs = Math.max(1, Math.ceil(((n - this.tokens) * 1000) / rate));
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.failure) {
        // With a rate limit, small pieces keep the pacing even.
        const limit = this.bytesPerSecond ? Math.max(512, Math.min(16 * 1024, Math.floor(this.bytesPerSecond / 8))) : 256 * 1024;
        const chunk = this.take(limit, !this.bytesPerSecond);
        if (this.bytesPerSecond) await this.throttle(chunk.length);
        if (this.failure) break;
        // A stream already closed would never emit 'drain' or 'close' again: fail now.
        if (this.out.destroyed || this.out.writableEnded) throw new Error('connection closed while sending');
        this.counters.bytesSent += chunk.length;
        const ok = this.out.write(chunk);
        if (this.queued < this.highWater) this.releaseRoom();
        if (!ok) await this.waitDrain();
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.pumping = false;
    }
    if (this.failure) return;
    this.releaseRoom();
    if (this.queue.length > 0) {
      void this.pump();
      return;
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private releaseRoom(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) w.resolve();
  }

  private waitDrain(): Promise<void> {
    return new Promise((resolve) => {
      if (this.out.destroyed) return resolve();
      const done = (): void => {
        this.out.off('drain', done);
        this.out.off('close', done);
        this.out.off('error', done);
        resolve();
      };
      this.out.on('drain', done);
      this.out.on('close', done);
      this.out.on('error', done);
    });
  }

  async end(): Promise<void> {
    await this.idle();
    await new Promise<void>((resolve) => {
      if (this.out.writableFinished || this.out.destroyed) return resolve();
      this.out.end(() => resolve());
      this.out.once('error', () => resolve());
    });
  }
}

/** Writes frames; see the module comment. */
export class FrameWriter {
  private readonly sink: RawSink;
  private deflate: Zlib.DeflateRaw | undefined;
  private flushScheduled = false;
  private closed = false;

  constructor(out: Writable, counters: WireCounters, options: { bytesPerSecond?: number } = {}) {
    this.sink = new RawSink(out, counters, options.bytesPerSecond);
  }

  /** Limits the bytes written per second from now on (0 or undefined: no limit). */
  setRate(bytesPerSecond: number | undefined): void {
    this.sink.setRate(bytesPerSecond);
  }

  /** Writes raw bytes outside any frame (the preamble). */
  writeRaw(data: Buffer): void {
    this.sink.push(data);
  }

  /**
   * Queues one frame. Resolves once the connection can take more, so a producer that awaits
   * every send never runs ahead of the peer by more than about a megabyte.
   */
  async send(type: number, payload: Uint8Array = Buffer.alloc(0)): Promise<void> {
    this.sendNow(type, payload);
    await this.sink.room();
    if (this.deflate?.writableNeedDrain) {
      const d = this.deflate;
      await new Promise<void>((resolve) => d.once('drain', resolve));
    }
  }

  /** Queues one frame without waiting for room (small control messages only). */
  sendNow(type: number, payload: Uint8Array = Buffer.alloc(0)): void {
    if (this.closed) throw protocolError('frame sent after the connection was closed');
    if (this.sink.error) throw this.sink.error;
    if (payload.length > MAX_FRAME_PAYLOAD) throw new RangeError(`frame payload too large: ${payload.length}`);
    const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    header[0] = type;
    header.writeUInt32BE(payload.length, 1);
    // Small frames are copied into one buffer; big payloads go by reference (the sink
    // coalesces small pieces into large writes anyway). Callers never reuse payload buffers.
    const parts: Buffer[] =
      payload.length <= 4096
        ? [Buffer.concat([header, payload])]
        : [header, Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.length)];
    if (this.deflate) {
      for (const part of parts) this.deflate.write(part);
      this.scheduleFlush();
    } else {
      for (const part of parts) this.sink.push(part);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One sync flush per turn of the event loop: the peer can always decode everything sent so
    // far (no deadlock waiting on deflate's internal buffer), while many small frames written
    // in the same turn share one flush.
    setImmediate(() => {
      this.flushScheduled = false;
      this.deflate?.flush(zlib().constants.Z_SYNC_FLUSH);
    });
  }

  /** From now on every byte written goes through raw deflate (level as zlib's). */
  enableDeflate(level: number): void {
    const deflate = zlib().createDeflateRaw({ level, memLevel: 9 });
    deflate.on('data', (chunk: Buffer) => {
      try {
        this.sink.push(chunk);
      } catch {
        // The sink already failed; the error surfaces on the next send.
      }
    });
    this.deflate = deflate;
  }

  /** Flushes everything and ends the stream. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.deflate) {
      const d = this.deflate;
      await new Promise<void>((resolve) => d.end(() => resolve()));
      // 'end' of the readable side means all output reached the sink.
      if (!d.readableEnded) await new Promise<void>((resolve) => d.once('end', resolve));
    }
    await this.sink.end();
  }

  /** Resolves when everything written so far has been handed to the stream. */
  async flushed(): Promise<void> {
    if (this.deflate) {
      const d = this.deflate;
      await new Promise<void>((resolve) => d.flush(zlib().constants.Z_SYNC_FLUSH, () => resolve()));
    }
    await this.sink.idle();
  }
}

/** Source of bytes for the reader: the raw stream, or an inflater fed from it. */
class ByteQueue {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private failure: Error | undefined;
  private waiter: (() => void) | undefined;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  fail(err: Error): void {
    if (!this.failure) this.failure = err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  get length(): number {
    return this.size;
  }

  /** Removes and returns everything buffered. */
  drainAll(): Buffer[] {
    const out = this.chunks;
    this.chunks = [];
    this.size = 0;
    return out;
  }

  /**
   * Waits until `n` bytes are buffered. Resolves false at end of stream with fewer bytes.
   */
  async want(n: number, onStarve: () => void): Promise<boolean> {
    while (this.size < n) {
      if (this.failure) throw this.failure;
      if (this.ended) return false;
      onStarve();
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    return true;
  }

  /** The oldest buffered chunk (undefined when empty). */
  head(): Buffer | undefined {
    return this.chunks[0];
  }

  /** The chunk after the oldest (undefined when there is none). */
  second(): Buffer | undefined {
    return this.chunks[1];
  }

  /** Puts bytes back in front of the queue. */
  unshift(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.unshift(chunk);
    this.size += chunk.length;
  }

  /** Takes exactly `n` bytes (they must be buffered). */
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const head = this.chunks[0]!;
    if (head.length >= n) {
      const out = head.subarray(0, n);
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
      this.size -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const use = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, use);
      filled += use;
      if (use === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(use);
    }
    this.size -= n;
    return out;
  }

  peekAll(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

/** Reads frames; see the module comment. */
export class FrameReader {
  private readonly raw = new ByteQueue();
  private inflated: ByteQueue | undefined;
  private inflate: Zlib.InflateRaw | undefined;
  private readonly highWater = 4 * 1024 * 1024;
  private paused = false;
  // The last chunk split: its frames as [type, offset, length] triples, the next one to return,
  // where the frames end in it, and the error at that point (raised only when reached).
  private splitChunk: Buffer | undefined;
  private splitFrames: Float64Array | undefined;
  private frameIndex = 0;
  private frameCount = 0;
  private splitEnd = 0;
  private splitError: string | undefined;

  constructor(
    private readonly input: Readable,
    private readonly counters: WireCounters,
  ) {
    input.on('data', (chunk: Buffer) => {
      this.counters.bytesReceived += chunk.length;
      if (this.inflate) {
        if (!this.inflate.write(chunk)) this.pauseInput();
      } else {
        this.raw.push(chunk);
        if (this.raw.length > this.highWater) this.pauseInput();
      }
    });
    input.on('end', () => {
      if (this.inflate) this.inflate.end();
      else this.raw.end();
    });
    input.on('error', (err) => {
      this.raw.fail(err);
      this.inflated?.fail(err);
    });
    input.on('close', () => {
      // A close without 'end' (peer process died, socket reset) is the end of the data too.
      if (this.inflate) {
        if (!this.inflate.writableEnded) this.inflate.end();
      } else this.raw.end();
    });
  }

  private pauseInput(): void {
    if (!this.paused) {
      this.paused = true;
      this.input.pause();
    }
  }

  private resumeInput(): void {
    if (this.paused) {
      this.paused = false;
      this.input.resume();
    }
  }

  private get source(): ByteQueue {
    return this.inflated ?? this.raw;
  }

  /**
   * Reads exactly `n` raw bytes before framing starts (the preamble). Resolves with fewer at
   * end of stream; callers show those bytes in their error message.
   */
  async readRaw(n: number): Promise<Buffer> {
    const ok = await this.raw.want(n, () => this.resumeInput());
    return ok ? this.raw.take(n) : this.raw.peekAll();
  }

  /** Collects whatever else arrives until end of stream or `limit` bytes (diagnostics). */
  async readRest(limit: number, timeoutMs: number): Promise<Buffer> {
    const timer = new Promise<void>((r) => setTimeout(r, timeoutMs).unref());
    await Promise.race([this.raw.want(limit, () => this.resumeInput()).catch(() => false), timer]);
    return this.raw.peekAll().subarray(0, limit);
  }

  /** The next frame, or null at a clean end of stream (between frames). */
  async next(): Promise<Frame | null> {
    if (this.frameIndex < this.frameCount) return this.takeSplitFrame();
    if (this.splitError !== undefined) throw protocolError(this.splitError);
    const src = this.source;
    const onStarve = (): void => {
      if (this.inflate) this.inflate.resume();
      this.resumeInput();
    };
    for (;;) {
      const head = src.head();
      // Bytes the first frame needs in all (5 until its header is known).
      let need = FRAME_HEADER_BYTES;
      if (head !== undefined) {
        const split = native.splitFrames(head, MAX_FRAME_PAYLOAD);
        if (split.frames.length > 0 || split.error !== undefined) {
          // The frames found (and the bad header, if any) are removed from the queue as one
          // piece; their payloads stay views of it.
          this.splitChunk = src.take(split.error !== undefined ? head.length : split.consumed);
          this.splitFrames = split.frames;
          this.frameIndex = 0;
          this.frameCount = split.frames.length / 3;
          this.splitEnd = split.consumed;
          this.splitError = split.error;
          if (src.length < this.highWater) onStarve();
          return this.next();
        }
        // The first frame straddles chunks: gather exactly its bytes, then split those.
        need = split.need;
        const next = src.second();
        if (head.length === FRAME_HEADER_BYTES && next !== undefined && next.length >= need - FRAME_HEADER_BYTES) {
          // A header alone, its payload at the start of the next chunk (a big payload the
          // writer sent by reference): the payload is a view of that chunk, not a copy.
          const type = src.take(FRAME_HEADER_BYTES)[0]!;
          const payload = src.take(need - FRAME_HEADER_BYTES);
          if (src.length < this.highWater) onStarve();
          return { type, payload };
        }
        if (src.length >= need) {
          src.unshift(src.take(need));
          continue;
        }
      }
      if (!(await src.want(need, onStarve))) {
        if (src.length === 0) return null;
        if (src.length < FRAME_HEADER_BYTES) throw protocolError('connection closed in the middle of a frame header');
        const header = src.peekAll();
        throw protocolError(
          `connection closed in the middle of a frame (type ${header[0]}, ${header.readUInt32BE(1)} bytes)`,
        );
      }
    }
  }

  private takeSplitFrame(): Frame {
    const i = 3 * this.frameIndex++;
    const frames = this.splitFrames!;
    const offset = frames[i + 1]!;
    const frame = { type: frames[i]!, payload: this.splitChunk!.subarray(offset, offset + frames[i + 2]!) };
    if (this.frameIndex === this.frameCount && this.splitError === undefined) this.releaseSplit();
    return frame;
  }

  private releaseSplit(): void {
    this.splitChunk = undefined;
    this.splitFrames = undefined;
    this.frameIndex = 0;
    this.frameCount = 0;
    this.splitEnd = 0;
  }

  /** Bytes split off the queue but not yet returned as frames (the tail after a switch). */
  private unreadSplitBytes(): Buffer {
    if (!this.splitChunk) return Buffer.alloc(0);
    const from = this.frameIndex < this.frameCount ? this.splitFrames![3 * this.frameIndex + 1]! - FRAME_HEADER_BYTES : this.splitEnd;
    return this.splitChunk.subarray(from);
  }

  /**
   * From the current position on, the peer's bytes are raw deflate. Bytes already buffered
   * past the last frame read belong to the compressed stream.
   */
  enableInflate(): void {
    const inflated = new ByteQueue();
    const inflate = zlib().createInflateRaw();
    inflate.on('data', (chunk: Buffer) => {
      inflated.push(chunk);
      if (inflated.length > this.highWater) inflate.pause();
    });
    inflate.on('end', () => inflated.end());
    inflate.on('error', (err) => inflated.fail(protocolError(`bad compressed data from the peer (${err.message})`)));
    inflate.on('drain', () => this.resumeInput());
    this.inflated = inflated;
    this.inflate = inflate;
    // Bytes already split into "frames" after the switch point are compressed data.
    const unread = this.unreadSplitBytes();
    this.releaseSplit();
    this.splitError = undefined;
    if (unread.length > 0) inflate.write(unread);
    for (const chunk of this.raw.drainAll()) inflate.write(chunk);
    if (this.input.readableEnded) inflate.end();
  }
}
