// The client's end of the event stream: counts errors for the exit code, keeps progress
// totals, and hands items, messages and progress to the caller's callbacks.
import { LogLevel, type FileEntry } from '../protocol/messages.js';
import type { SyncEventSink } from './events.js';
import type { SyncItem } from './itemize.js';
import type { SyncMessage, SyncOptions, SyncProgress } from './options.js';

export class ClientSink implements SyncEventSink {
  errors = 0;
  vanished = 0;
  private bytesTotal = 0;
  private filesTotal = 0;
  private bytesDoneFinished = 0;
  private filesDone = 0;

  constructor(private readonly options: Pick<SyncOptions, 'onItem' | 'onMessage' | 'onProgress'>) {}

  item(item: SyncItem): void {
    this.options.onItem?.(item);
  }

  log(level: LogLevel, message: string, path?: string): void {
    if (level === LogLevel.ERROR) this.errors++;
    if (level === LogLevel.VANISHED) this.vanished++;
    const m: SyncMessage = {
      level: level === LogLevel.INFO ? 'info' : level === LogLevel.WARNING ? 'warning' : 'error',
      message,
    };
    if (path !== undefined) m.path = path;
    this.options.onMessage?.(m);
  }

  requested(_index: number, entry: FileEntry): void {
    this.filesTotal++;
    this.bytesTotal += entry.size;
  }

  progress(_index: number, entry: FileEntry, bytes: number, done: boolean): void {
    if (done) {
      this.filesDone++;
      this.bytesDoneFinished += bytes;
    }
    if (!this.options.onProgress) return;
    const p: SyncProgress = {
      path: entry.path,
      fileBytes: bytes,
      fileSize: entry.size,
      fileDone: done,
      bytesDone: this.bytesDoneFinished + (done ? 0 : bytes),
      bytesTotal: Math.max(this.bytesTotal, this.bytesDoneFinished),
      filesDone: this.filesDone,
      filesTotal: Math.max(this.filesTotal, this.filesDone),
    };
    this.options.onProgress(p);
  }
}
