// Where the namespace lives in the object store (CephFS-style names). File
// data objects and the pools are shared with the client: src/common/layout.ts.

import type { Ino } from '../common/types'

/** Inodes per inode-table object. */
export const INODES_PER_SHARD = 4096

/** A directory's dentries: the omap of `<ino hex>.00000000` (one fragment). */
export function dirObject (ino: Ino): string {
  return `${ino.toString(16)}.00000000`
}

/** The inode-table shard that holds ino. */
export function inodeShard (ino: Ino): number {
  return Math.floor(ino / INODES_PER_SHARD)
}

export function inodeShardObject (ino: Ino): string {
  return `inodes.${inodeShard(ino).toString(16)}`
}

export const JOURNAL_PREFIX = 'mds0.journal.'
export const JOURNAL_HEADER = 'mds0.journal.header'
export const INOTABLE_OBJECT = 'mds0.inotable'
/** Inodes with no links left, waiting for their last close and purge. */
export const STRAY_OBJECT = 'mds0.stray'
/** Each client's completed requests (for replay after a restart): omap session name → floor and tids. */
export const SESSIONS_OBJECT = 'mds0.sessions'
/** Decoupled subtrees and their owners: omap root inode → owner and inode range. */
export const CLAIMS_OBJECT = 'mds0.claims'
/** Marks a formatted store: its payload says the format version. */
export const FORMAT_OBJECT = 'cudele.format'
// 2: timestamps' seconds are signed (zigzag) in inode records and events, so
// times before 1970 survive; format-1 stores read them as unsigned.
export const FORMAT_VERSION = 2

export function journalObject (seq: number): string {
  return JOURNAL_PREFIX + seq.toString(16).padStart(16, '0')
}

export function parseJournalObject (name: string): number | null {
  if (!name.startsWith(JOURNAL_PREFIX)) return null
  const rest = name.slice(JOURNAL_PREFIX.length)
  if (!/^[0-9a-f]{16}$/.test(rest)) return null
  return parseInt(rest, 16)
}

/** First inode number handed out; lower numbers are reserved. */
export const FIRST_INO = 0x1000
