// Reads of a store from another thread of its process, in snapshots: what
// an object-class worker reads an object through (classes/host.ts).
//
// A backend that can be read from any thread says how (ObjectStore's
// snapshotReader(): a module and options that survive postMessage), and the
// other thread opens its own reader with openSnapshotReader: SQLite's is a
// read transaction on the thread's own connection (sqlite/snapshot.ts),
// about 5 µs for a stat and an omap get. A backend that cannot (the memory
// store, a remote one) is read through its ObjectStore on the thread that
// owns it, by a relayed reader (relay.ts) that asks that thread, about 60
// µs a read.
//
// Between begin() and end(), every read sees one committed state of the
// store, or, where the reader cannot hold one, throws SnapshotMoved: what
// was read since begin() may mix two states and must be thrown away (a
// relayed reader detects that an object it already read has changed).

import type { ObjectStat, OmapEntry, OmapRange, PoolName } from './types'

export interface SnapshotReader {
  /** Start a snapshot (ending any open one). */
  begin (): void
  end (): void
  stat (pool: PoolName, name: string): ObjectStat | null
  read (pool: PoolName, name: string, offset: number, length: number): Uint8Array | null
  omapGet (pool: PoolName, name: string, keys: Uint8Array[]): OmapEntry[]
  omapList (pool: PoolName, name: string, range: OmapRange): OmapEntry[]
  getXattr (pool: PoolName, name: string, xattr: string): Uint8Array | null
  /** Release what the reader holds (a connection). */
  close (): void
}

/** How another thread opens a backend's own snapshot reader. */
export interface SnapshotReaderSpec {
  /** Absolute path of a module exporting openSnapshotReader(options): SnapshotReader. */
  module: string
  /** Passed to it; must survive postMessage. */
  options: unknown
}

/** The object changed under a reader that could not hold the snapshot: run again what read it. */
export class SnapshotMoved extends Error {
  constructor (readonly pool: PoolName, readonly object: string) {
    super(`${pool}/${object} changed while it was being read`)
    this.name = 'SnapshotMoved'
  }
}

/** Open a backend's own reader (in the thread that will use it). */
export function openSnapshotReader (spec: SnapshotReaderSpec): SnapshotReader {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mod = require(spec.module) as { openSnapshotReader?: (options: unknown) => SnapshotReader }
  if (typeof mod.openSnapshotReader !== 'function') throw new Error(`${spec.module} does not export openSnapshotReader`)
  return mod.openSnapshotReader(spec.options)
}
