// rsync-style filter rules: --exclude, --include, --exclude-from, --include-from, --filter.
// Semantics follow rsync's "FILTER RULES" and "PATTERN MATCHING RULES" (see docs/SYNC.md):
// first matching rule wins; `*` stays within a path component, `**` crosses '/', `?` is one
// non-'/' character, `[...]` a class; a leading '/' anchors at the transfer root, a trailing
// '/' matches directories only, `dir/***` matches a directory and everything below it; a
// pattern with a '/' (other than a trailing one) or `**` is matched against the path (any
// trailing run of whole components when not anchored), otherwise against the last component.
import { readFileSync } from 'node:fs';
import { DeltaSyncError } from '../errors.js';

/** What a rule does when it matches. */
export type RuleAction = 'exclude' | 'include' | 'clear';

/** A parsed rule, also the form sent to the remote end. */
export interface FilterRule {
  action: RuleAction;
  pattern: string;
  /** Applies to the sender (hiding files from the list). */
  sender: boolean;
  /** Applies to the receiver (protecting files from --delete). */
  receiver: boolean;
  /** '!' modifier: the rule applies when the pattern does NOT match. */
  negate?: boolean;
}

interface CompiledRule {
  rule: FilterRule;
  regex: RegExp;
  dirOnly: boolean;
  /** Match against the whole relative path rather than the last component. */
  wholePath: boolean;
}

function usage(message: string): DeltaSyncError {
  return new DeltaSyncError('ERR_USAGE', message);
}

/** Translates one glob pattern (without anchoring '/' or trailing '/') into a regex body. */
function globToRegex(glob: string): string {
  let out = '';
  let i = 0;
  const literal = !/[*?[]/.test(glob);
  while (i < glob.length) {
    const c = glob[i]!;
    if (c === '\\' && !literal && i + 1 < glob.length) {
      out += escapeRegex(glob[i + 1]!);
      i += 2;
      continue;
    }
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // "dir/***" (at the end, after a '/') also matches "dir" itself.
        if (glob[i + 2] === '*' && i + 3 === glob.length && out.endsWith('/')) {
          out = `${out.slice(0, -1)}(?:/.*)?`;
          i += 3;
          continue;
        }
        out += '.*';
        i += 2;
        while (glob[i] === '*') i++;
        continue;
      }
      out += '[^/]*';
      i++;
      continue;
    }
    if (c === '?') {
      out += '[^/]';
      i++;
      continue;
    }
    if (c === '[') {
      const end = classEnd(glob, i);
      if (end === -1) {
        out += '\\[';
        i++;
        continue;
      }
      let body = glob.slice(i + 1, end);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      const cls = body.replace(/\\/g, '\\\\').replace(/\[(?!:)/g, '\\[').replace(/\]/g, '\\]');
      out += negate ? `(?!/)[^${cls}]` : `[${cls}]`;
      i = end + 1;
      continue;
    }
    out += escapeRegex(c);
    i++;
  }
  return out;
}

/** Index of the ']' closing the class that opens at `start`, or -1. */
function classEnd(glob: string, start: number): number {
  let j = start + 1;
  if (glob[j] === '!' || glob[j] === '^') j++;
  if (glob[j] === ']') j++; // a leading ']' is a member
  for (; j < glob.length; j++) if (glob[j] === ']') return j;
  return -1;
}

function escapeRegex(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function compile(rule: FilterRule): CompiledRule {
  let pattern = rule.pattern;
  let dirOnly = false;
  if (pattern.endsWith('/') && pattern.length > 1) {
    dirOnly = true;
    pattern = pattern.replace(/\/+$/, '');
  }
  const anchored = pattern.startsWith('/');
  if (anchored) pattern = pattern.replace(/^\/+/, '');
  const wholePath = anchored || pattern.includes('/') || pattern.includes('**');
  const body = globToRegex(pattern);
  let source: string;
  if (anchored) source = `^${body}$`;
  else if (wholePath) source = `(?:^|/)${body}$`;
  else source = `^${body}$`;
  return { rule, regex: new RegExp(source, 's'), dirOnly, wholePath };
}

/** An ordered rule list for one side of a transfer. */
export class FilterList {
  private readonly compiled: CompiledRule[];

  constructor(
    rules: readonly FilterRule[],
    readonly side: 'sender' | 'receiver',
  ) {
    const active: CompiledRule[] = [];
    for (const rule of rules) {
      if (rule.action === 'clear') {
        active.length = 0;
        continue;
      }
      if (side === 'sender' ? rule.sender : rule.receiver) active.push(compile(rule));
    }
    this.compiled = active;
  }

  get empty(): boolean {
    return this.compiled.length === 0;
  }

  /**
   * True when `path` (relative to the transfer root, '/'-separated, never ".") is excluded on
   * this side. The first rule that matches decides.
   */
  excluded(path: string, isDir: boolean): boolean {
    if (this.compiled.length === 0) return false;
    let base: string | undefined;
    for (const c of this.compiled) {
      let hit: boolean;
      if (c.dirOnly && !isDir) hit = false;
      else if (c.wholePath) hit = c.regex.test(path);
      else {
        base ??= path.slice(path.lastIndexOf('/') + 1);
        hit = c.regex.test(base);
      }
      if (c.rule.negate) hit = !hit;
      if (hit) return c.rule.action === 'exclude';
    }
    return false;
  }
}

const RULE_NAMES: Record<string, { action: RuleAction; sender: boolean; receiver: boolean } | 'merge' | 'dir-merge'> = {
  '-': { action: 'exclude', sender: true, receiver: true },
  exclude: { action: 'exclude', sender: true, receiver: true },
  '+': { action: 'include', sender: true, receiver: true },
  include: { action: 'include', sender: true, receiver: true },
  H: { action: 'exclude', sender: true, receiver: false },
  hide: { action: 'exclude', sender: true, receiver: false },
  S: { action: 'include', sender: true, receiver: false },
  show: { action: 'include', sender: true, receiver: false },
  P: { action: 'exclude', sender: false, receiver: true },
  protect: { action: 'exclude', sender: false, receiver: true },
  R: { action: 'include', sender: false, receiver: true },
  risk: { action: 'include', sender: false, receiver: true },
  '!': { action: 'clear', sender: true, receiver: true },
  clear: { action: 'clear', sender: true, receiver: true },
  '.': 'merge',
  merge: 'merge',
  ':': 'dir-merge',
  'dir-merge': 'dir-merge',
};

/**
 * Parses one `--filter` rule ("- *.o", "+ /src/", "exclude,! foo", "P keep/", ". rules.txt",
 * "!"). Merge files are read here (relative to the current directory) and expanded in place.
 */
export function parseFilterRule(text: string, depth = 0): FilterRule[] {
  const trimmed = text.replace(/^\s+/, '');
  if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return [];
  // The rule name ends at a space or '_', or (short forms) right after its letter/modifiers.
  const m =
    /^([-+.:!HSPR])([!/sr,]*)(?:[ _](.*))?$/s.exec(trimmed) ?? /^([a-z][a-z-]*)((?:,[!/sr]+)*)(?:[ _](.*))?$/s.exec(trimmed);
  if (!m) throw usage(`invalid filter rule: ${JSON.stringify(text)}`);
  const name = m[1]!;
  const modifiers = m[2]!.replace(/,/g, '');
  const arg = m[3] ?? '';
  const kind = RULE_NAMES[name];
  if (kind === undefined) throw usage(`unknown filter rule ${JSON.stringify(name)} in ${JSON.stringify(text)}`);
  if (kind === 'dir-merge') throw usage(`per-directory merge rules are not supported: ${JSON.stringify(text)}`);
  if (kind === 'merge') {
    if (arg === '') throw usage(`merge rule needs a file name: ${JSON.stringify(text)}`);
    return readRuleFile(arg, 'filter', depth + 1);
  }
  if (kind.action === 'clear') {
    if (arg.trim() !== '') throw usage(`the clear rule takes no pattern: ${JSON.stringify(text)}`);
    return [{ action: 'clear', pattern: '', sender: true, receiver: true }];
  }
  if (arg === '') throw usage(`filter rule has no pattern: ${JSON.stringify(text)}`);
  const rule: FilterRule = { action: kind.action, pattern: arg, sender: kind.sender, receiver: kind.receiver };
  for (const mod of modifiers) {
    if (mod === '!') rule.negate = true;
    else if (mod === 's') rule.receiver = false;
    else if (mod === 'r') rule.sender = false;
    // '/' (match against the absolute path) is accepted and treated as anchored matching.
    else if (mod === '/' && !rule.pattern.startsWith('/')) rule.pattern = `/${rule.pattern}`;
  }
  return [rule];
}

/**
 * A pattern given to --exclude/--include (or a line of --exclude-from/--include-from): "!"
 * clears the list, and a "- " or "+ " prefix overrides the default action, as in rsync.
 */
export function patternRule(pattern: string, action: 'exclude' | 'include'): FilterRule[] {
  if (pattern === '!') return [{ action: 'clear', pattern: '', sender: true, receiver: true }];
  let a: 'exclude' | 'include' = action;
  let p = pattern;
  if (p.startsWith('- ')) {
    a = 'exclude';
    p = p.slice(2);
  } else if (p.startsWith('+ ')) {
    a = 'include';
    p = p.slice(2);
  }
  if (p === '') throw usage(`empty ${action} pattern`);
  return [{ action: a, pattern: p, sender: true, receiver: true }];
}

/** Reads a rule file: one rule or pattern per line; blank lines and ';'/'#' comments skipped. */
export function readRuleFile(path: string, kind: 'exclude' | 'include' | 'filter', depth = 0): FilterRule[] {
  if (depth > 8) throw usage(`merge files nested too deeply at ${path}`);
  let text: string;
  try {
    text = path === '-' ? readFileSync(0, 'utf8') : readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DeltaSyncError('ERR_USAGE', `cannot read ${kind} file ${path}: ${e.code ?? e.message}`, { path });
  }
  const rules: FilterRule[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (kind === 'filter') rules.push(...parseFilterRule(line, depth));
    else rules.push(...patternRule(line, kind));
  }
  return rules;
}

/** Validates rules received from the remote end (they are untrusted input). */
export function validateRules(value: unknown): FilterRule[] {
  if (!Array.isArray(value)) throw new DeltaSyncError('ERR_PROTOCOL', 'protocol error: filter rules must be a list');
  if (value.length > 100_000) throw new DeltaSyncError('ERR_PROTOCOL', 'protocol error: too many filter rules');
  return value.map((r): FilterRule => {
    const o = r as Record<string, unknown>;
    if (
      o === null ||
      typeof o !== 'object' ||
      (o.action !== 'exclude' && o.action !== 'include' && o.action !== 'clear') ||
      typeof o.pattern !== 'string' ||
      o.pattern.length > 4096 ||
      typeof o.sender !== 'boolean' ||
      typeof o.receiver !== 'boolean'
    ) {
      throw new DeltaSyncError('ERR_PROTOCOL', 'protocol error: malformed filter rule');
    }
    const rule: FilterRule = { action: o.action, pattern: o.pattern, sender: o.sender, receiver: o.receiver };
    if (o.negate === true) rule.negate = true;
    return rule;
  });
}
