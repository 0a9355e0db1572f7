// A received file's bytes, written behind the stream that brings them.
//
// Why: the receiver got DATA frames of 256 KiB and wrote each one on the JS thread (small writes
// are synchronous there, see fd-handle). For a big file that put every write's kernel time (1 GiB:
// 0.25-3 s on this VM) on the one thread that also reads the connection, and in a local sync also
// runs the sender. Here the bytes of a file are gathered into batches of at least BATCH_BYTES,
// each written with writev on the thread pool while the next one gathers. One batch is in flight
// at a time: two writers on one file only contend for its inode lock, and at most two batches
// are held. A file smaller than a batch is written once, at flush, on the JS thread as before.
import { dropBytes } from '../io.js';
import { SYNC_IO_MAX, type FdHandle } from '../fd-handle.js';

/** Bytes gathered before a batch goes to the thread pool. */
export const BATCH_BYTES = 1024 * 1024;
/** writev's IOV_MAX. */
const MAX_PARTS = 1024;

export class WriteBehind {
  private parts: Buffer[] = [];
  private bytes = 0;
  private inFlight: Promise<void> | undefined;

  /** `position`: where the first byte goes. `written(n)`: called as each batch lands. */
  constructor(
    private readonly fh: FdHandle,
    private position: number,
    private readonly written: (n: number) => void = () => undefined,
  ) {}

  /** Where the next byte goes. */
  get next(): number {
    return this.position + this.bytes;
  }

  /**
   * Queues `data` for the position after everything queued so far. Resolves once it is queued;
   * waits only while a full batch cannot start because the previous one is still being written.
   * A failed write rejects the next add() or flush().
   */
  async add(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    this.parts.push(data);
    this.bytes += data.length;
    if (this.bytes >= BATCH_BYTES || this.parts.length >= MAX_PARTS) {
      await this.inFlight;
      this.inFlight = this.writeBatch();
      this.inFlight.catch(() => undefined); // surfaced by the next add() or flush()
    }
  }

  /** Writes everything queued and waits until it is written. */
  async flush(): Promise<void> {
    const previous = this.inFlight;
    this.inFlight = undefined;
    await previous;
    if (this.bytes === 0) return;
    if (this.parts.length === 1 && this.bytes <= SYNC_IO_MAX) {
      // A small file's only piece: one write on this thread (see fd-handle).
      const data = this.parts[0]!;
      const at = this.position;
      this.take();
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.fh.write(data, done, data.length - done, at + done);
        done += bytesWritten;
      }
      this.written(data.length);
      return;
    }
    await this.writeBatch();
  }

  /**
   * Waits for the write on the pool, if any, then writes what is queued (`writeQueued`) or drops
   * it. Rejects with the first write error.
   */
  async stop(writeQueued: boolean): Promise<void> {
    if (writeQueued) return this.flush();
    const previous = this.inFlight;
    this.inFlight = undefined;
    this.take();
    await previous;
  }

  private take(): { parts: Buffer[]; at: number; bytes: number } {
    const batch = { parts: this.parts, at: this.position, bytes: this.bytes };
    this.position += this.bytes;
    this.parts = [];
    this.bytes = 0;
    return batch;
  }

  private async writeBatch(): Promise<void> {
    const batch = this.take();
    let parts = batch.parts;
    let at = batch.at;
    while (parts.length > 0) {
      const n = await this.fh.writev(parts, at);
      if (n === 0) throw Object.assign(new Error('write wrote nothing'), { code: 'EIO', syscall: 'writev' });
      at += n;
      parts = dropBytes(parts, n);
    }
    this.written(batch.bytes);
  }
}
