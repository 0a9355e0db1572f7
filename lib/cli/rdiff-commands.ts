// `deltasync signature|delta|patch`: rdiff's three commands over files and pipes.
// The core (and with it the native addon) is imported only when a command runs, so help and
// usage errors work on a machine where the addon failed to build; each command imports only
// its own module (not lib/index.ts, which pulls in the sync engine): startup is part of the
// wall time users compare with rdiff.
import { access, constants as fsConstants, createReadStream, fstat as fstatCb } from 'node:fs';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DeltaSyncError, ioError } from '../errors.js';
import { InputSource, outputTarget, writeAtomically, type AtomicFileOptions } from '../io.js';
import {
  FORMAT_KINDS,
  MAX_BLOCK_LEN,
  STRONG_FULL_LEN,
  type Format,
  type RollingKind,
  type SignatureOptions,
  type StrongKind,
} from '../params.js';
import type { DeltaStats } from '../delta.js';
import type { Signature } from '../signature.js';
import type { PatchStats } from '../patch.js';
import { formatOptions, parseArgs, type OptionSpec, type ParsedArgs } from './args.js';
import {
  PROGRAM,
  formatDeltaStats,
  formatPatchStats,
  formatSignatureStats,
  printErr,
  printOut,
  writeAll,
} from './output.js';

/** The three rdiff-compatible commands. */
export type RdiffCommand = 'signature' | 'delta' | 'patch';

/** Read size for file inputs: large chunks keep the native matcher busy (see GUIDE.md). */
const READ_CHUNK = 4 * 1024 * 1024;

const COMMON_OPTIONS: OptionSpec[] = [
  { long: 'stats', short: 's', aliases: ['statistics'], description: 'Print literal/matched bytes, ops and speed to stderr' },
  { long: 'force', short: 'f', description: 'Overwrite an existing output file; allow binary output to a terminal' },
  { long: 'fsync', description: 'fsync the output file before renaming it into place (durable on power loss; slower)' },
  { long: 'help', short: 'h', description: 'Show this help' },
];

const SIGNATURE_OPTIONS: OptionSpec[] = [
  { long: 'format', kind: 'value', valueName: 'FMT', description: 'deltasync (default) or rdiff (librsync, byte-identical to rdiff)' },
  { long: 'block-size', short: 'b', kind: 'value', valueName: 'BYTES', description: `Block size, 1..${MAX_BLOCK_LEN}; 0 (default) for recommended` },
  { long: 'sum-size', short: 'S', kind: 'value', valueName: 'BYTES', description: 'Strong sum bytes kept per block; 0 (default) for the format default' },
  { long: 'hash', short: 'H', kind: 'value', valueName: 'ALG', description: 'Strong hash: xxh3 (deltasync default), blake2 (rdiff default), md4' },
  { long: 'rollsum', short: 'R', kind: 'value', valueName: 'ALG', description: 'Rolling sum: ds64 (deltasync default), rabinkarp (rdiff default), rollsum' },
  ...COMMON_OPTIONS,
];

const USAGE: Record<RdiffCommand, { synopsis: string; what: string; options: OptionSpec[] }> = {
  signature: {
    synopsis: `${PROGRAM} signature [OPTIONS] BASIS [SIGNATURE]`,
    what: 'Write the signature of BASIS (block checksums) to SIGNATURE.',
    options: SIGNATURE_OPTIONS,
  },
  delta: {
    synopsis: `${PROGRAM} delta [OPTIONS] SIGNATURE NEWFILE [DELTA]`,
    what: "Write the delta that turns the signature's basis into NEWFILE (format follows the signature).",
    options: COMMON_OPTIONS,
  },
  patch: {
    synopsis: `${PROGRAM} patch [OPTIONS] BASIS DELTA [NEWFILE]`,
    what: 'Apply DELTA to BASIS, writing NEWFILE (format detected from the magic; deltasync deltas are verified).',
    options: COMMON_OPTIONS,
  },
};

const PIPES_NOTE = `'-' or an omitted output means stdin/stdout; at most one input may be stdin.
File outputs are written to a temporary file and renamed: no partial output is left on error.
Like rdiff, they are not fsynced unless --fsync is given.`;

function commandHelp(command: RdiffCommand): string {
  const u = USAGE[command];
  const basisNote = command === 'patch' ? '\nBASIS must be a regular file (it is read at random offsets).' : '';
  return `Usage: ${u.synopsis}\n${u.what}\n\nOptions:\n${formatOptions(u.options)}\n\n${PIPES_NOTE}${basisNote}\n`;
}

/** The rdiff-compatible commands' section of `deltasync --help`. */
export function rdiffHelp(): string {
  const lines = (Object.keys(USAGE) as RdiffCommand[]).map((c) => `  ${USAGE[c].synopsis}\n      ${USAGE[c].what}`);
  return `rdiff-compatible commands:
${lines.join('\n')}
  signature options:
${formatOptions(SIGNATURE_OPTIONS.slice(0, 5), 4)}
  options of all three:
${formatOptions(COMMON_OPTIONS, 4)}
  ${PIPES_NOTE.replace(/\n/g, '\n  ')}`;
}

function usage(command: RdiffCommand, message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_USAGE', `${command}: ${message} (see '${PROGRAM} ${command} --help')`);
}

/** Runs one rdiff-compatible command; resolves to the exit code. Throws DeltaSyncError. */
export async function runRdiffCommand(command: RdiffCommand, argv: string[]): Promise<number> {
  const args = parseArgs(argv, USAGE[command].options, { context: `${PROGRAM} ${command}` });
  if (args.flag('help')) {
    printOut(commandHelp(command));
    return 0;
  }
  switch (command) {
    case 'signature':
      return runSignature(args);
    case 'delta':
      return runDelta(args);
    case 'patch':
      return runPatch(args);
  }
}

// ---------------------------------------------------------------------------------------------
// Operands and option values

interface Operands {
  inputs: string[];
  output: string | undefined; // undefined: stdout
}

function operands(command: RdiffCommand, args: ParsedArgs, inputNames: string[], outputName: string): Operands {
  const ops = args.operands;
  if (ops.length < inputNames.length) {
    throw usage(command, `missing ${inputNames.slice(ops.length).join(' and ')}`);
  }
  if (ops.length > inputNames.length + 1) {
    throw usage(command, `too many arguments (expected ${inputNames.join(' ')} [${outputName}])`);
  }
  const inputs = ops.slice(0, inputNames.length);
  if (inputs.filter((p) => p === '-').length > 1) {
    throw usage(command, 'only one input can be stdin (-)');
  }
  for (const [k, p] of inputs.entries()) {
    if (p === '') throw usage(command, `empty ${inputNames[k] as string} path`);
  }
  const out = ops[inputNames.length];
  if (out === '') throw usage(command, `empty ${outputName} path`);
  return { inputs, output: out === undefined || out === '-' ? undefined : out };
}

/** Parses a non-negative whole number written in decimal; undefined when malformed. */
function wholeNumber(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

const HASH_NAMES: Record<string, StrongKind> = { xxh3: 'xxh3', blake2: 'blake2b', blake2b: 'blake2b', md4: 'md4' };
const ROLLING_NAMES: Record<string, RollingKind> = { ds64: 'ds64', rollsum: 'rollsum', rabinkarp: 'rabinkarp' };

/** Turns the signature command's options into core options, with CLI-level messages. */
export function signatureOptionsFrom(args: ParsedArgs): SignatureOptions {
  const cmd = 'signature';
  const formatText = args.value('format') ?? 'deltasync';
  if (formatText !== 'deltasync' && formatText !== 'rdiff') {
    throw usage(cmd, `unknown --format '${formatText}' (deltasync or rdiff)`);
  }
  const format: Format = formatText;

  const hashText = args.value('hash');
  const strong = hashText === undefined ? undefined : HASH_NAMES[hashText.toLowerCase()];
  if (hashText !== undefined && strong === undefined) {
    throw usage(cmd, `unknown hash '${hashText}' (xxh3, blake2, md4)`);
  }
  if (strong !== undefined && !FORMAT_KINDS[format].strong.includes(strong)) {
    throw usage(cmd, `hash ${hashText as string} is not available with --format ${format} (use blake2 or md4)`);
  }

  const rollText = args.value('rollsum');
  const rolling = rollText === undefined ? undefined : ROLLING_NAMES[rollText.toLowerCase()];
  if (rollText !== undefined && rolling === undefined) {
    throw usage(cmd, `unknown rolling sum '${rollText}' (ds64, rabinkarp, rollsum)`);
  }
  if (rolling !== undefined && !FORMAT_KINDS[format].rolling.includes(rolling)) {
    throw usage(cmd, `rolling sum ${rollText as string} is not available with --format ${format} (use rabinkarp or rollsum)`);
  }

  const options: SignatureOptions = { format };
  if (strong !== undefined) options.strong = strong;
  if (rolling !== undefined) options.rolling = rolling;

  const blockText = args.value('block-size');
  if (blockText !== undefined) {
    const n = wholeNumber(blockText);
    if (n === undefined || n > MAX_BLOCK_LEN) {
      throw usage(cmd, `invalid block size '${blockText}': expected a whole number of bytes from 1 to ${MAX_BLOCK_LEN} (0 for the default)`);
    }
    if (n > 0) options.blockLen = n;
  }

  const sumText = args.value('sum-size');
  if (sumText !== undefined) {
    const effectiveStrong = strong ?? (format === 'rdiff' ? 'blake2b' : 'xxh3');
    const full = STRONG_FULL_LEN[effectiveStrong];
    if (sumText === '-1') {
      throw usage(cmd, `sum size -1 (rdiff's minimum) is not supported; give a length from 1 to ${full}`);
    }
    const n = wholeNumber(sumText);
    if (n === undefined || n > full) {
      throw usage(cmd, `invalid sum size '${sumText}': expected a whole number from 1 to ${full} for ${effectiveStrong} (0 for the default)`);
    }
    if (n > 0) options.strongLen = n;
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Inputs and outputs

/** Commit options of file outputs: fsync only on request, as rdiff never does. */
function outputOptions(args: ParsedArgs): AtomicFileOptions {
  return { fsync: args.flag('fsync') };
}

/** Counts bytes flowing from stdin, for --stats. */
async function* countingStdin(counter: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of process.stdin as AsyncIterable<Uint8Array>) {
    counter.bytes += chunk.length;
    yield chunk;
  }
}

/** Size of stdin when it is a regular file (`< file`), as rdiff uses it for its defaults. */
async function stdinFileSize(): Promise<number | undefined> {
  try {
    const st = await promisify(fstatCb)(0);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

async function inputStat(path: string): Promise<import('node:fs').Stats> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    return st;
  } catch (err) {
    throw ioError(err, path, 'read');
  }
}

function fileReadStream(path: string): Readable {
  return createReadStream(path, { highWaterMark: READ_CHUNK });
}

/** rdiff refuses to replace an existing file unless forced; so do we. */
async function checkOutput(path: string | undefined, force: boolean, binary: string | undefined): Promise<void> {
  if (path === undefined) {
    if (binary !== undefined && process.stdout.isTTY && !force) {
      throw new DeltaSyncError(
        'ERR_USAGE',
        `refusing to write a binary ${binary} to a terminal; give an output file or redirect stdout (or use --force)`,
      );
    }
    return;
  }
  // A device or pipe is written into, not replaced (/dev/null needs no --force); a block
  // device, socket or directory is refused here, before any work.
  if ((await outputTarget(path)).stream || force) return;
  const exists = await new Promise<boolean>((resolve) => access(path, fsConstants.F_OK, (err) => resolve(!err)));
  if (exists) {
    throw new DeltaSyncError('ERR_IO', `output file ${path} already exists (use --force to overwrite)`, { path });
  }
}

/** Writes `data` to a file atomically (temp + rename), via the core's I/O helpers. */
async function writeFileAtomic(path: string, data: Uint8Array, options: AtomicFileOptions): Promise<void> {
  await writeAtomically(path, (file) => file.write(data), options);
}

/** Streams `source` through `transform` to stdout, leaving stdout open. */
async function streamToStdout(source: AsyncIterable<Uint8Array> | Readable, transform: Transform): Promise<void> {
  await pipeline(source, transform, process.stdout, { end: false });
}

// ---------------------------------------------------------------------------------------------
// Commands

async function runSignature(args: ParsedArgs): Promise<number> {
  const { inputs, output } = operands('signature', args, ['BASIS'], 'SIGNATURE');
  const basis = inputs[0] as string;
  const options = signatureOptionsFrom(args);
  const force = args.flag('force');
  await checkOutput(output, force, 'signature');
  const { signature } = await import('../signature.js');

  const started = performance.now();
  let inputBytes: number;
  let sig: Signature;
  if (basis === '-') {
    const counter = { bytes: 0 };
    const size = await stdinFileSize();
    if (size !== undefined) options.fileSize = size;
    sig = await signature(countingStdin(counter), options);
    inputBytes = counter.bytes;
  } else {
    inputBytes = (await inputStat(basis)).size;
    sig = await signature(basis, options);
  }
  const serialized = sig.toBuffer();
  if (output === undefined) await writeAll(process.stdout, serialized);
  else await writeFileAtomic(output, serialized, outputOptions(args));
  const elapsedMs = performance.now() - started;

  if (args.flag('stats')) {
    printErr(
      formatSignatureStats({
        inputBytes,
        blockCount: sig.blockCount,
        blockLen: sig.blockLen,
        strongLen: sig.strongLen,
        strong: sig.strong,
        rolling: sig.rolling,
        format: sig.format,
        signatureBytes: serialized.length,
        elapsedMs,
      }),
    );
  }
  return 0;
}

async function runDelta(args: ParsedArgs): Promise<number> {
  const { inputs, output } = operands('delta', args, ['SIGNATURE', 'NEWFILE'], 'DELTA');
  const [sigPath, newPath] = inputs as [string, string];
  const force = args.flag('force');
  await checkOutput(output, force, 'delta');
  if (newPath !== '-') await inputStat(newPath);
  if (sigPath !== '-') await inputStat(sigPath);
  const { Signature } = await import('../signature.js');

  const sig = await Signature.read(sigPath === '-' ? process.stdin : sigPath);
  const stats = await deltaToSink(sig, newPath === '-' ? process.stdin : newPath, output, outputOptions(args));
  if (args.flag('stats')) printErr(formatDeltaStats(stats));
  return 0;
}

/**
 * Makes the delta of `input` and sends it to stdout or to an atomic file. Same engine and
 * same bytes as the core's deltaFile (the new file's size is recorded when it is known), so
 * `delta SIG NEW` and `delta SIG NEW OUT` agree.
 */
async function deltaToSink(
  sig: Signature,
  input: string | NodeJS.ReadableStream,
  output: string | undefined,
  options: AtomicFileOptions,
): Promise<DeltaStats> {
  const { DeltaEngine, pipeDelta, DELTA_FILE_CHUNK } = await import('../delta.js');
  const src = await InputSource.open(input, typeof input === 'string' ? input : 'stdin', DELTA_FILE_CHUNK);
  try {
    const engine = new DeltaEngine(sig, src.size);
    // Reading, matching and writing overlap; each write has finished when it resolves.
    const run = (write: (parts: Buffer[]) => Promise<void>): Promise<void> => pipeDelta(engine, src, write);
    if (output === undefined) {
      // One write per engine call: the encoder hands back many small pieces.
      await run((parts) => {
        const data = Buffer.concat(parts);
        return data.length > 0 ? writeAll(process.stdout, data) : Promise.resolve();
      });
    } else {
      // The file batches the pieces itself (writev): no copy of the literal data here.
      await writeAtomically(
        output,
        (file) =>
          run(async (parts) => {
            for (const part of parts) await file.write(part);
            await file.flush();
          }),
        options,
      );
    }
    return engine.stats;
  } finally {
    await src.close();
  }
}

async function runPatch(args: ParsedArgs): Promise<number> {
  const { inputs, output } = operands('patch', args, ['BASIS', 'DELTA'], 'NEWFILE');
  const [basis, deltaPath] = inputs as [string, string];
  if (basis === '-') {
    throw usage('patch', 'BASIS cannot be stdin: patch reads it at random offsets, give a file');
  }
  const force = args.flag('force');
  await checkOutput(output, force, undefined);
  const basisStat = await inputStat(basis);
  if (!basisStat.isFile() && !basisStat.isBlockDevice()) {
    throw usage('patch', `BASIS ${basis} is not a regular file (patch reads it at random offsets)`);
  }
  if (deltaPath !== '-') await inputStat(deltaPath);
  const { patchFile, createPatchStream } = await import('../patch.js');

  const deltaInput = deltaPath === '-' ? process.stdin : deltaPath;
  let stats: PatchStats;
  if (output !== undefined) {
    // The core's patchFile, with the CLI's commit options.
    stats = await patchFile(basis, deltaInput, output, outputOptions(args));
  } else {
    // Bytes reach stdout before the end-of-delta hash check; a mismatch still fails the run.
    const patchStream = createPatchStream(basis);
    const source = typeof deltaInput === 'string' ? fileReadStream(deltaInput) : deltaInput;
    await streamToStdout(source, patchStream);
    stats = patchStream.stats;
  }
  if (args.flag('stats')) printErr(formatPatchStats(stats));
  return 0;
}
