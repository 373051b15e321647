// The backends the store suite (suite.ts) runs against. A new backend is one
// more entry here and a test file that hands it to storeSuite.

import { MAX_OBJECT_BYTES, MEMORY_MAX_OBJECT_BYTES, MemoryStore, ObjectStore, openStore, SqliteStoreOptions } from '../../src/store'
import { rmDir, tmpDir } from './helpers'

export interface OpenedStore {
  store: ObjectStore
  /** Close the store (if still open) and remove whatever it left behind. */
  done: () => Promise<void>
}

export interface Backend {
  name: string
  /** A fresh, empty store that has pool 'p'. */
  open: () => Promise<OpenedStore>
  /** The largest object the backend takes; writes past it fail with EFBIG. */
  maxObjectBytes: number
}

export const memoryBackend: Backend = {
  name: 'memory',
  maxObjectBytes: MEMORY_MAX_OBJECT_BYTES,
  open: async () => {
    const store = new MemoryStore()
    await store.createPool('p')
    return { store, done: async () => { await store.close() } }
  }
}

export function sqliteBackend (opts: SqliteStoreOptions = {}, name = 'sqlite'): Backend {
  return {
    name,
    maxObjectBytes: MAX_OBJECT_BYTES,
    open: async () => {
      const dir = tmpDir('suite')
      const store = await openStore(dir, { create: true, ...opts })
      await store.createPool('p')
      return { store, done: async () => { await store.close(); rmDir(dir) } }
    }
  }
}

export const BACKENDS: Backend[] = [memoryBackend, sqliteBackend()]
