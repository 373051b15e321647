// Where file data lives in the object store: the names every layer that
// touches file data agrees on (the client writes and reads these objects, the
// MDS purges them, fsck accounts for them). The MDS's own objects (journal,
// inode table, dentries) are its business: src/mds/layout.ts.

import type { Ino } from './types'

export const METADATA_POOL = 'metadata'
export const DATA_POOL = 'data'

/** Objects per file: data is striped over objects of this size. */
export const STRIPE_BYTES = 4 * 1024 * 1024

export function dataObject (ino: Ino, stripe: number): string {
  return `${ino.toString(16)}.${stripe.toString(16).padStart(8, '0')}`
}

/** Prefix shared by all data objects of one file. */
export function dataObjectPrefix (ino: Ino): string {
  return `${ino.toString(16)}.`
}

export function parseDataObject (name: string): { ino: Ino, stripe: number } | null {
  const m = /^([0-9a-f]+)\.([0-9a-f]{8})$/.exec(name)
  if (!m) return null
  return { ino: parseInt(m[1], 16), stripe: parseInt(m[2], 16) }
}

/** st_blocks of a data object of `bytes` bytes: 4 KiB pages, in 512-byte units. */
export function objectBlocks (bytes: number): number {
  return Math.ceil(bytes / 4096) * 8
}
