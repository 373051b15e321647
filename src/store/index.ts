// The object store: the interface (types.ts) and its embedded backend.
//
//   const store = await openStore('/var/lib/cudele', { create: true })
//
// A store directory holds store.db (+ -wal, -shm), LOCK and LOCK.owner. One
// writer holds it at a time; a second opener gets EBUSY naming the holder.

import { SqliteStore, SqliteStoreOptions } from './sqlite/store'

export * from './types'
export { SqliteStore } from './sqlite/store'
export type { SqliteStoreOptions, StoreHealth, StoreHealthEvent, StoreStats } from './sqlite/store'
export { CHUNK_BYTES, MAX_OBJECT_BYTES } from './sqlite/schema'

/**
 * Open the store in dir. create: make the directory and an empty store when
 * missing. readOnly: reads only (fsck without repair); refused while a writer
 * holds the store, and shares it with other read-only openers.
 */
export async function openStore (dir: string, opts: SqliteStoreOptions = {}): Promise<SqliteStore> {
  return await SqliteStore.open(dir, opts)
}
