// Where the roles report what they do. On the client the reports go to the user (printer,
// callbacks, counters); on a server they travel to the client as ITEM/LOG/PROGRESS frames.
import type { Connection } from '../protocol/handshake.js';
import { LogLevel, Msg, encodeJson, encodeLog, encodeProgress, type FileEntry } from '../protocol/messages.js';
import type { SyncItem } from './itemize.js';

/** Reports from the sender and receiver roles. */
export interface SyncEventSink {
  /** A change made (or, with --dry-run, that would be made). */
  item(item: SyncItem): void;
  /** A message; ERROR and VANISHED make the run's exit code non-zero. */
  log(level: LogLevel, message: string, path?: string): void;
  /** The receiver asked for a file's data. */
  requested(index: number, entry: FileEntry): void;
  /** Bytes of a file written by the receiver so far. */
  progress(index: number, entry: FileEntry, bytes: number, done: boolean): void;
}

/** Sink of a server: everything goes to the client over the connection. */
export class RemoteSink implements SyncEventSink {
  private lastProgress = 0;

  constructor(
    private readonly conn: Connection,
    private readonly wantItems: boolean,
    private readonly wantProgress: boolean,
  ) {}

  item(item: SyncItem): void {
    if (this.wantItems) this.conn.writer.sendNow(Msg.ITEM, encodeJson(item));
  }

  log(level: LogLevel, message: string, path?: string): void {
    const m = path === undefined ? { level, message } : { level, message, path };
    this.conn.writer.sendNow(Msg.LOG, encodeLog(m));
  }

  requested(): void {
    // The client sees the requests itself when it is the sender.
  }

  progress(index: number, _entry: FileEntry, bytes: number, done: boolean): void {
    if (!this.wantProgress) return;
    const now = Date.now();
    // A few reports a second are plenty for a progress display.
    if (!done && now - this.lastProgress < 200) return;
    this.lastProgress = now;
    this.conn.writer.sendNow(Msg.PROGRESS, encodeProgress({ index, bytes, done }));
  }
}

export { LogLevel };
