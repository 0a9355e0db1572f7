// Public sync API: sync(sources, destination, options) → stats.
import { DeltaSyncError } from '../errors.js';
import { ClientSink } from './client-sink.js';
import type { SyncOptions } from './options.js';
import { SyncPartialError, planSync, runSync, type SyncStats } from './session.js';

export type { SyncOptions, SyncProgress, SyncMessage } from './options.js';
export type { SyncItem, ItemType } from './itemize.js';
export { itemizeString, formatItem } from './itemize.js';
export type { SyncStats } from './session.js';
export { SyncPartialError } from './session.js';

/**
 * Synchronises `sources` into `destination` the way `rsync` does (trailing slash on a source
 * directory = its contents; `[user@]host:path` on either side reaches a remote end through
 * `options.rsh`, default `ssh`, running `options.remotePath`, default `deltasync`).
 *
 * Resolves with the statistics of the run. When some files failed but the run went on, it
 * rejects with a {@link SyncPartialError} (code `ERR_PARTIAL`, exit code 23, or 24 when the
 * only problem was source files that vanished) carrying the stats; the per-file messages went
 * to `options.onMessage`. Other failures reject with a DeltaSyncError (`ERR_USAGE`, `ERR_IO`,
 * `ERR_PROTOCOL`, `ERR_REMOTE`, `ERR_ABORTED` when `options.signal` aborted).
 *
 * @example
 * const stats = await sync('src/', 'backup:/srv/copy', { archive: true, delete: true });
 * console.log(stats.literalBytes, stats.matchedBytes);
 */
export async function sync(sources: string | string[], destination: string, options: SyncOptions = {}): Promise<SyncStats> {
  const list = typeof sources === 'string' ? [sources] : sources;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && s !== '')) {
    throw new DeltaSyncError('ERR_USAGE', 'sync: sources must be a non-empty path or a list of them');
  }
  if (typeof destination !== 'string' || destination === '') throw new DeltaSyncError('ERR_USAGE', 'sync: destination must be a path');
  const plan = planSync(list, destination);
  const sink = new ClientSink(options);
  const stats = await runSync(plan, options, sink);
  if (stats.errors > 0 || stats.vanished > 0) {
    const onlyVanished = stats.errors === 0;
    throw new SyncPartialError(
      onlyVanished
        ? 'some source files vanished before they could be transferred'
        : `some files/attrs were not transferred (${stats.errors} error${stats.errors === 1 ? '' : 's'}, see previous messages)`,
      stats,
      onlyVanished ? 24 : 23,
    );
  }
  return stats;
}
