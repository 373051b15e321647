// The object store: the interface (types.ts) and its backends. Code outside
// src/store uses what this file exports (and the object-class runtime in
// classes/), never a backend's insides.
//
//   const store = await openStore('/var/lib/cudele', { create: true })   // SQLite, on disk
//   const scratch = new MemoryStore()                                    // in memory, for this process only
//
// A SQLite store directory holds store.db (+ -wal, -shm), LOCK and
// LOCK.owner. One writer holds it at a time; a second opener gets EBUSY
// naming the holder.

import { SqliteStore, SqliteStoreOptions } from './sqlite/store'

export * from './types'
export { SqliteStore } from './sqlite/store'
export type { SqliteStoreOptions, StoreHealth, StoreHealthEvent, StoreStats } from './sqlite/store'
export { CHUNK_BYTES, DB_FILE, MAX_OBJECT_BYTES } from './sqlite/schema'
export { MemoryStore, MEMORY_MAX_OBJECT_BYTES } from './memory'
export { OmapPacker, PackedOmap } from './omap'
export type { OmapEntries } from './omap'
export { SnapshotMoved } from './snapshot'
export type { SnapshotReader, SnapshotReaderSpec } from './snapshot'

/**
 * Open the store in dir. create: make the directory and an empty store when
 * missing. readOnly: reads only (fsck without repair); refused while a writer
 * holds the store, and shares it with other read-only openers.
 */
export async function openStore (dir: string, opts: SqliteStoreOptions = {}): Promise<SqliteStore> {
  return await SqliteStore.open(dir, opts)
}
