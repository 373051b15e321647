// Directory listings: pages of a directory's entries in name order, from
// its dentry object in the store, with the changes not stored yet on top.

import { METADATA_POOL } from '../common/layout'
import type { DirEntry, Ino } from '../common/types'
import type { LocalReads } from '../store/types'
import type { MetadataCache } from './cache'
import { decodeDentry } from './dentry'
import { dirObject } from './layout'

/** A page of a directory's entries as the store has them. */
export function storedListing (store: LocalReads, ino: Ino, after: string | null, limit: number): DirEntry[] {
  const rows = store.omapListSync(METADATA_POOL, dirObject(ino), {
    after: after === null ? undefined : Buffer.from(after, 'latin1'),
    limit
  })
  return rows.map(r => {
    const v = decodeDentry(r.value)
    return { name: Buffer.from(r.key).toString('latin1'), ino: v.ino, type: v.type }
  })
}

/** The store's listing with the unstored changes on top (read-only MDS: fsck after replay). */
export function mergedListing (store: LocalReads, cache: MetadataCache, ino: Ino, after: string | null, limit: number): DirEntry[] {
  const overlay = new Map<string, DirEntry | null>()
  for (const d of cache.unstoredDentries(ino)) {
    if (after === null || d.name > after) overlay.set(d.name, d.ino === 0 ? null : { name: d.name, ino: d.ino, type: d.type })
  }
  const out: DirEntry[] = []
  let cursor = after
  for (;;) {
    const page = storedListing(store, ino, cursor, limit)
    for (const e of page) if (!overlay.has(e.name)) out.push(e)
    if (page.length < limit) break
    cursor = page[page.length - 1].name
    if (out.length >= limit) break
  }
  const last = out.length >= limit ? out[limit - 1].name : null
  for (const e of overlay.values()) if (e && (last === null || e.name < last)) out.push(e)
  out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return out.slice(0, limit)
}
