// Change records produced by the receiver and their rsync-compatible renderings:
// `-i/--itemize-changes` (YXcstpoguax) and `-v` names.

/** rsync's file type letter: f file, d directory, L symlink, D device, S special. */
export type ItemType = 'f' | 'd' | 'L' | 'D' | 'S';

/** One change the receiver made (or would make with --dry-run). */
export interface SyncItem {
  /** Path relative to the destination root, '/'-separated ("." for the root directory). */
  path: string;
  /** Kind of entry, as rsync's itemize letter. */
  type: ItemType;
  /**
   * transfer: file content sent; create: made or changed locally (directory, symlink, device);
   * attrs: only attributes changed; delete: removed by --delete; none: unchanged (-ii).
   */
  update: 'transfer' | 'create' | 'attrs' | 'delete' | 'none';
  /** Newly created item (all attribute columns '+'). */
  created: boolean;
  /** Attribute columns, the `cstpoguax` part: each char or '.' (ignored when created). */
  checksum?: boolean;
  /** Size differs (`s`). */
  size?: boolean;
  /** 't' mtime differs and is set; 'T' mtime set to the transfer time (without -t). */
  time?: 't' | 'T';
  /** Permissions differ and are set (`p`). */
  perms?: boolean;
  /** Owner differs and is set (`o`). */
  owner?: boolean;
  /** Group differs and is set (`g`). */
  group?: boolean;
  /** For a symlink: its target (shown by `-v` as `name -> target`). */
  linkTarget?: string;
}

/** The 11-character itemize string. `direction` is '>' when the client receives, '<' when it sends. */
export function itemizeString(item: SyncItem, direction: '<' | '>'): string {
  if (item.update === 'delete') return '*deleting  ';
  const y = item.update === 'transfer' ? direction : item.update === 'create' ? 'c' : '.';
  if (item.created) return `${y}${item.type}+++++++++`;
  const cols = [
    item.checksum ? 'c' : '.',
    item.size ? 's' : '.',
    item.time ?? '.',
    item.perms ? 'p' : '.',
    item.owner ? 'o' : '.',
    item.group ? 'g' : '.',
    '.',
    '.',
    '.',
  ];
  return `${y}${item.type}${cols.join('')}`;
}

/** True when the item changed anything (what `-i` prints). */
export function itemChanged(item: SyncItem): boolean {
  return (
    item.update !== 'none' ||
    item.created ||
    !!item.checksum ||
    !!item.size ||
    !!item.time ||
    !!item.perms ||
    !!item.owner ||
    !!item.group
  );
}

/** True when `-v` lists the item: content, creation, deletion, or attributes other than the time. */
export function itemVerbose(item: SyncItem): boolean {
  if (item.update === 'transfer' || item.update === 'create' || item.update === 'delete' || item.created) return true;
  return !!(item.perms || item.owner || item.group);
}

/**
 * Control characters (except tab) as rsync shows them, `\#ooo` (octal), so a name cannot
 * break an output line or send escape sequences to the terminal; a literal `\#ooo` in a name
 * gets its backslash escaped the same way, so the output stays unambiguous.
 */
export function escapeName(name: string): string {
  const octal = (c: string): string => `\\#${c.charCodeAt(0).toString(8).padStart(3, '0')}`;
  // eslint-disable-next-line no-control-regex
  return name.replace(/\\(?=#[0-9]{3})|[\x00-\x08\x0a-\x1f]/g, octal);
}

/** The name as rsync shows it: directories with a trailing '/', symlinks with their target. */
export function displayName(item: SyncItem): string {
  const path = escapeName(item.path);
  const base = item.path === '.' ? './' : item.type === 'd' ? `${path}/` : path;
  return item.type === 'L' && item.linkTarget !== undefined && item.update !== 'delete' ? `${base} -> ${escapeName(item.linkTarget)}` : base;
}

/** One output line for the item: `-i` form or `-v` form. */
export function formatItem(item: SyncItem, itemize: boolean, direction: '<' | '>'): string {
  if (itemize) return `${itemizeString(item, direction)} ${displayName(item)}`;
  return item.update === 'delete' ? `deleting ${displayName(item)}` : displayName(item);
}
