// A small strict command-line parser shared by every deltasync mode.
// Semantics follow getopt_long, which rsync and rdiff users already know: `--opt=val`,
// `--opt val`, `-b 1024`, `-b1024`, grouped short flags (`-avz`, `-avb1024`), `--` ending the
// options, `-` as a positional (stdin/stdout), options and operands in any order. Unlike
// getopt, long options are never abbreviated: a typo is an error, not a guess.
import { DeltaSyncError } from '../errors.js';

/**
 * How an option consumes arguments.
 * - `flag`: present or not (`--no-<name>` also accepted when `negatable`).
 * - `count`: each occurrence adds one (`-vvv`).
 * - `value`: takes one value; a later occurrence replaces an earlier one.
 * - `list`: takes one value; every occurrence is kept in order (`--exclude A --exclude B`).
 */
export type OptionKind = 'flag' | 'count' | 'value' | 'list';

/** Declares one option. */
export interface OptionSpec {
  /** Long name without dashes; also the key the parsed value is stored under. */
  long: string;
  /** One-character short name, without the dash. */
  short?: string;
  /** Default `flag`. */
  kind?: OptionKind;
  /** Other long names that mean the same option (e.g. `statistics` for `stats`). */
  aliases?: readonly string[];
  /** For flags: accept `--no-<long>`, which sets the flag to false. */
  negatable?: boolean;
  /** Placeholder shown in help, e.g. `BYTES`. */
  valueName?: string;
  /** One-line help text. */
  description?: string;
}

/** Parser settings. */
export interface ParseSettings {
  /** Names the command in error messages, e.g. `deltasync delta`. */
  context?: string;
  /** Treat everything from the first operand on as operands (no interleaved options). */
  stopAtFirstOperand?: boolean;
}

/** Result of {@link parseArgs}. Values are read through typed accessors. */
export class ParsedArgs {
  /** Operands (non-option arguments), in order. */
  readonly operands: string[] = [];
  /** Every option occurrence in command-line order, for modes where order matters (filters). */
  readonly occurrences: Array<{ name: string; value: string | boolean }> = [];
  private readonly values = new Map<string, string | boolean | number | string[]>();

  /** True when the option was given at all (including `--no-x`). */
  has(name: string): boolean {
    return this.values.has(name);
  }

  /** A flag's state: true if given, false if absent or negated. */
  flag(name: string): boolean {
    return this.values.get(name) === true;
  }

  /** How many times a `count` option was given. */
  count(name: string): number {
    const v = this.values.get(name);
    return typeof v === 'number' ? v : 0;
  }

  /** A `value` option's last value, or undefined. */
  value(name: string): string | undefined {
    const v = this.values.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  /** All values of a `list` option, in order. */
  list(name: string): string[] {
    const v = this.values.get(name);
    return Array.isArray(v) ? [...v] : [];
  }

  /** @internal */
  set(spec: OptionSpec, value: string | boolean): void {
    const kind = spec.kind ?? 'flag';
    this.occurrences.push({ name: spec.long, value });
    if (kind === 'count') {
      this.values.set(spec.long, this.count(spec.long) + 1);
    } else if (kind === 'list') {
      const prev = this.values.get(spec.long);
      this.values.set(spec.long, [...(Array.isArray(prev) ? prev : []), String(value)]);
    } else {
      this.values.set(spec.long, value);
    }
  }
}

function usage(message: string, settings: ParseSettings): DeltaSyncError {
  const help = settings.context ? ` (see '${settings.context} --help')` : '';
  return new DeltaSyncError('ERR_USAGE', `${message}${help}`);
}

function takesValue(spec: OptionSpec): boolean {
  return spec.kind === 'value' || spec.kind === 'list';
}

function displayName(spec: OptionSpec): string {
  return spec.short ? `-${spec.short}/--${spec.long}` : `--${spec.long}`;
}

/**
 * Parses `argv` (without the node and script paths) against `specs`.
 * Throws a `DeltaSyncError` with code `ERR_USAGE` for unknown options, a missing value, or a
 * value given to an option that takes none.
 */
export function parseArgs(
  argv: readonly string[],
  specs: readonly OptionSpec[],
  settings: ParseSettings = {},
): ParsedArgs {
  const byLong = new Map<string, OptionSpec>();
  const byShort = new Map<string, OptionSpec>();
  for (const spec of specs) {
    for (const name of [spec.long, ...(spec.aliases ?? [])]) {
      if (byLong.has(name)) throw new Error(`duplicate option --${name}`);
      byLong.set(name, spec);
    }
    if (spec.short !== undefined) {
      if (spec.short.length !== 1 || byShort.has(spec.short)) {
        throw new Error(`bad or duplicate short option -${spec.short}`);
      }
      byShort.set(spec.short, spec);
    }
  }

  const parsed = new ParsedArgs();
  let i = 0;
  const nextValue = (shown: string): string => {
    if (i + 1 >= argv.length) throw usage(`option '${shown}' needs a value`, settings);
    i += 1;
    return argv[i] as string;
  };

  for (; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      parsed.operands.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-' || !arg.startsWith('-')) {
      parsed.operands.push(arg);
      if (settings.stopAtFirstOperand) {
        parsed.operands.push(...argv.slice(i + 1));
        break;
      }
      continue;
    }

    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const inline = eq === -1 ? undefined : arg.slice(eq + 1);
      let spec = byLong.get(name);
      if (spec === undefined && name.startsWith('no-')) {
        const positive = byLong.get(name.slice(3));
        if (positive?.negatable && (positive.kind ?? 'flag') === 'flag') {
          if (inline !== undefined) throw usage(`option '--${name}' does not take a value`, settings);
          parsed.set(positive, false);
          continue;
        }
      }
      if (spec === undefined) throw usage(`unknown option '--${name}'`, settings);
      if (takesValue(spec)) {
        parsed.set(spec, inline ?? nextValue(`--${name}`));
      } else {
        if (inline !== undefined) throw usage(`option '--${name}' does not take a value`, settings);
        parsed.set(spec, true);
      }
      continue;
    }

    // A group of short options: each letter is a flag until one takes a value, which then
    // consumes the rest of the group (`-b1024`) or, if the group ends there, the next argument.
    for (let j = 1; j < arg.length; j++) {
      const letter = arg[j] as string;
      const spec = byShort.get(letter);
      if (spec === undefined) {
        throw usage(`unknown option '-${letter}'${arg.length > 2 ? ` in '${arg}'` : ''}`, settings);
      }
      if (takesValue(spec)) {
        const rest = arg.slice(j + 1);
        parsed.set(spec, rest.length > 0 ? rest : nextValue(`-${letter}`));
        break;
      }
      parsed.set(spec, true);
    }
  }
  return parsed;
}

/**
 * Renders an aligned option list for help text, one option per line:
 * `  -b, --block-size=BYTES   Block size ...`.
 */
export function formatOptions(specs: readonly OptionSpec[], indent = 2): string {
  const left = specs.map((spec) => {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const value = takesValue(spec) ? `=${spec.valueName ?? 'VALUE'}` : '';
    return `${' '.repeat(indent)}${short}--${spec.long}${value}`;
  });
  const width = Math.max(0, ...left.map((l) => l.length)) + 2;
  return specs
    .map((spec, k) => {
      const l = left[k] as string;
      return spec.description ? `${l.padEnd(width)}${spec.description}` : l;
    })
    .join('\n');
}

/** Human name of an option for messages: `-b/--block-size` or `--format`. */
export function optionName(spec: OptionSpec): string {
  return displayName(spec);
}
