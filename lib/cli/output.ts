// Where the CLI's words and bytes go: one-line errors and --stats reports on stderr, data on
// stdout. Kept apart from the commands so every mode reports the same way.
import type { Writable } from 'node:stream';
import type { DeltaStats } from '../delta.js';
import type { PatchStats } from '../patch.js';

/** Program name used as the prefix of every diagnostic line. */
export const PROGRAM = 'deltasync';

/** Writes `text` to stderr as-is (a trailing newline is added if missing). */
export function printErr(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Writes `text` to stdout (a trailing newline is added if missing). */
export function printOut(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/**
 * Prints `deltasync: <message>` as exactly one line: embedded newlines would let a hostile
 * file name or remote message forge extra diagnostic lines, so they are escaped.
 */
export function printError(message: string): void {
  printErr(`${PROGRAM}: ${oneLine(message)}`);
}

/** Collapses a message to one line, showing control characters escaped. */
export function oneLine(message: string): string {
  // eslint-disable-next-line no-control-regex
  return message.replace(/\r?\n/g, ' | ').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => {
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** Writes a buffer to a stream and resolves once it has been handed to the OS. */
export function writeAll(stream: Writable, data: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    stream.once('error', onError);
    stream.write(data, (err) => {
      stream.removeListener('error', onError);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** `bytes` over `ms` in decimal megabytes per second, like rdiff's statistics. */
export function throughput(bytes: number, ms: number): string {
  // A run too fast to time still gets a finite figure: clamp to a microsecond.
  const seconds = Math.max(ms, 0.001) / 1000;
  const mbps = bytes / 1e6 / seconds;
  return `${mbps >= 100 ? mbps.toFixed(0) : mbps.toFixed(1)} MB/s`;
}

function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(2)}%` : '0.00%';
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}

/** Aligns `label value` rows under a heading; the report goes to stderr. */
function report(heading: string, rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return [`${PROGRAM} ${heading}:`, ...rows.map(([label, value]) => `  ${label.padEnd(width)}${value}`)].join('\n');
}

/** Facts about a signature run (the core API returns a Signature, not statistics). */
export interface SignatureRunStats {
  inputBytes: number;
  blockCount: number;
  blockLen: number;
  strongLen: number;
  strong: string;
  rolling: string;
  format: string;
  signatureBytes: number;
  elapsedMs: number;
}

/** The `--stats` report of `deltasync signature`. */
export function formatSignatureStats(s: SignatureRunStats): string {
  return report('signature statistics', [
    ['format', `${s.format} (${s.rolling} rolling, ${s.strong} strong)`],
    ['basis', `${s.inputBytes} bytes`],
    ['blocks', `${s.blockCount} of ${s.blockLen} bytes, ${s.strongLen}-byte strong sums`],
    ['signature', `${s.signatureBytes} bytes`],
    ['time', `${seconds(s.elapsedMs)} (${throughput(s.inputBytes, s.elapsedMs)})`],
  ]);
}

/** The `--stats` report of `deltasync delta`. */
export function formatDeltaStats(s: DeltaStats): string {
  return report('delta statistics', [
    ['new file', `${s.newBytes} bytes`],
    ['matched', `${s.matchedBytes} bytes (${percent(s.matchedBytes, s.newBytes)}) in ${s.copyOps} copy ops`],
    ['literal', `${s.literalBytes} bytes (${percent(s.literalBytes, s.newBytes)}) in ${s.literalOps} literal ops`],
    ['delta', `${s.deltaBytes} bytes`],
    ['time', `${seconds(s.elapsedMs)} (${throughput(s.newBytes, s.elapsedMs)})`],
  ]);
}

/** The `--stats` report of `deltasync patch`. */
export function formatPatchStats(stats: PatchStats): string {
  // Op counts are printed when the core reports them (not part of PatchStats yet).
  const s = stats as PatchStats & { copyOps?: number; literalOps?: number };
  const copyOps = s.copyOps === undefined ? '' : ` in ${s.copyOps} copy ops`;
  const literalOps = s.literalOps === undefined ? '' : ` in ${s.literalOps} literal ops`;
  return report('patch statistics', [
    ['output', `${s.outBytes} bytes`],
    ['matched', `${s.copiedBytes} bytes (${percent(s.copiedBytes, s.outBytes)}) copied from the basis${copyOps}`],
    ['literal', `${s.literalBytes} bytes (${percent(s.literalBytes, s.outBytes)}) from the delta${literalOps}`],
    ['verified', s.verified ? 'yes (result digest matches)' : 'no (this format carries no result digest)'],
    ['time', `${seconds(s.elapsedMs)} (${throughput(s.outBytes, s.elapsedMs)})`],
  ]);
}
