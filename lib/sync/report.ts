// Human output of the sync CLI: rsync-style summary and --stats, --progress lines and the
// overall progress bar on a terminal.
import { escapeName } from './itemize.js';
import type { SyncProgress } from './options.js';
import type { SyncStats } from './session.js';

/** 1234567 → "1,234,567". */
export function commas(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function rate(bytesPerSec: number): string {
  if (bytesPerSec >= 1024 * 1024 * 1024) return `${(bytesPerSec / (1024 * 1024 * 1024)).toFixed(2)}GB/s`;
  if (bytesPerSec >= 1024 * 1024) return `${(bytesPerSec / (1024 * 1024)).toFixed(2)}MB/s`;
  if (bytesPerSec >= 1024) return `${(bytesPerSec / 1024).toFixed(2)}kB/s`;
  return `${bytesPerSec.toFixed(2)}B/s`;
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** rsync's closing lines of -v: bytes sent/received, rate, total size, speedup. */
export function summaryLines(s: SyncStats): string {
  const secs = Math.max(s.elapsedMs, 1) / 1000;
  const perSec = (s.bytesSent + s.bytesReceived) / secs;
  const dry = s.dryRun ? ' (DRY RUN)' : '';
  return (
    `sent ${commas(s.bytesSent)} bytes  received ${commas(s.bytesReceived)} bytes  ${commas(perSec)}.00 bytes/sec\n` +
    `total size is ${commas(s.totalFileSize)}  speedup is ${s.speedup.toFixed(2)}${dry}`
  );
}

/** The --stats block (rsync's layout, plus the literal/matched split and compression). */
export function statsBlock(s: SyncStats): string {
  const kinds = [`reg: ${commas(s.regularFiles)}`, `dir: ${commas(s.dirs)}`];
  if (s.symlinks) kinds.push(`link: ${commas(s.symlinks)}`);
  if (s.devices) kinds.push(`dev: ${commas(s.devices)}`);
  if (s.specials) kinds.push(`special: ${commas(s.specials)}`);
  const lines = [
    `Number of files: ${commas(s.numFiles)} (${kinds.join(', ')})`,
    `Number of created files: ${commas(s.createdFiles + s.createdDirs)}`,
    `Number of deleted files: ${commas(s.deletedFiles)}`,
    `Number of regular files transferred: ${commas(s.filesTransferred)}`,
    `Total file size: ${commas(s.totalFileSize)} bytes`,
    `Total transferred file size: ${commas(s.totalTransferredFileSize)} bytes`,
    `Literal data: ${commas(s.literalBytes)} bytes`,
    `Matched data: ${commas(s.matchedBytes)} bytes`,
    `File list size: ${commas(s.fileListSize)}`,
    `Compression: ${s.compress ?? 'none'}`,
    `Total bytes sent: ${commas(s.bytesSent)}`,
    `Total bytes received: ${commas(s.bytesReceived)}`,
    `Elapsed time: ${(s.elapsedMs / 1000).toFixed(3)} s`,
    `Speed-up (total size / bytes on the wire): ${s.speedup.toFixed(2)}`,
  ];
  return lines.join('\n');
}

/** The object `--json` prints. */
export function statsJson(s: SyncStats, exitCode: number): Record<string, unknown> {
  return { ...s, elapsedMs: Math.round(s.elapsedMs * 1000) / 1000, speedup: Math.round(s.speedup * 1000) / 1000, exitCode };
}

/**
 * --progress: one line per file (rsync's columns), rewritten in place on a terminal, with an
 * overall bar after it; on a pipe only each file's final line is printed.
 */
export class ProgressPrinter {
  private fileStart = Date.now();
  private currentPath: string | undefined;
  private readonly startedAt = Date.now();
  private lastDraw = 0;
  private transferred = 0;

  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
    private readonly columns: number,
  ) {}

  update(p: SyncProgress): void {
    if (p.path !== this.currentPath) {
      // Several files can be in flight; the line follows one until it is done.
      if (this.currentPath !== undefined && !p.fileDone) return;
      this.currentPath = p.path;
      this.fileStart = Date.now();
      const name = escapeName(p.path);
      this.write(this.tty ? `\r\x1b[K${name}\n` : `${name}\n`);
    }
    const now = Date.now();
    if (!p.fileDone && (!this.tty || now - this.lastDraw < 100)) return;
    this.lastDraw = now;
    const secs = Math.max(0.001, (now - this.fileStart) / 1000);
    const pct = p.fileSize > 0 ? Math.floor((100 * p.fileBytes) / p.fileSize) : 100;
    const speed = p.fileBytes / secs;
    const eta = p.fileDone ? secs : speed > 0 ? (p.fileSize - p.fileBytes) / speed : 0;
    let line = `${commas(p.fileBytes).padStart(15)} ${String(pct).padStart(3)}% ${rate(speed).padStart(11)} ${clock(eta).padStart(9)}`;
    if (p.fileDone) {
      this.transferred++;
      line += ` (xfr#${this.transferred}, ${p.filesDone}/${p.filesTotal} files)`;
      this.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
      this.currentPath = undefined;
      if (this.tty) this.drawOverall(p);
      return;
    }
    this.write(`\r\x1b[K${line}  ${this.overallText(p)}`);
  }

  private overallText(p: SyncProgress): string {
    const width = Math.max(10, Math.min(30, this.columns - 75));
    const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 1;
    const filled = Math.round(frac * width);
    const elapsed = (Date.now() - this.startedAt) / 1000;
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(frac * 100)}% ${rate(p.bytesDone / Math.max(elapsed, 0.001))}`;
  }

  private drawOverall(p: SyncProgress): void {
    this.write(`\r\x1b[K${this.overallText(p)}`);
  }

  /** Clears the bar line at the end. */
  finish(): void {
    if (this.tty) this.write('\r\x1b[K');
  }
}
