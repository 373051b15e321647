// Snapshot reads relayed to the thread that owns a store (snapshot.ts), for
// backends another thread cannot read directly (the memory store; later a
// remote one). The reading thread sends each read as a request; the owning
// thread answers it through the store's ObjectStore interface.
//
// The owning thread cannot hold a snapshot open while the reader works, so
// the reader checks instead: the first read of an object in a snapshot
// records the object's state (size, version, mtime), every answer carries
// the object's state as it was just after the read, and an answer whose
// state differs means the object changed since the snapshot's first look at
// it: the reader throws SnapshotMoved. Versions only grow while an object
// exists, so an unchanged state after the read means the read saw that
// state too (a removal and re-creation that lands on the same version in
// the same millisecond would pass unseen; a guarded write still catches
// any change since the first look, so only a read-only call could see it).

import { SnapshotMoved, SnapshotReader } from './snapshot'
import type { ObjectStat, ObjectStore, OmapEntry, OmapRange, PoolName } from './types'

export type RelayRequest =
  | { op: 'stat', pool: PoolName, name: string }
  | { op: 'read', pool: PoolName, name: string, offset: number, length: number }
  | { op: 'omapGet', pool: PoolName, name: string, keys: Uint8Array[] }
  | { op: 'omapList', pool: PoolName, name: string, range: OmapRange }
  | { op: 'getXattr', pool: PoolName, name: string, xattr: string }

export interface RelayReply {
  /** The object's state right after the read. */
  stat: ObjectStat | null
  data?: Uint8Array | null
  entries?: OmapEntry[]
}

/** The owning thread's side: answer one request from the store. */
export async function answerRelayed (store: ObjectStore, req: RelayRequest): Promise<RelayReply> {
  const after = async (): Promise<ObjectStat | null> => await store.stat(req.pool, req.name)
  switch (req.op) {
    case 'stat': return { stat: await after() }
    case 'read': { const data = await store.read(req.pool, req.name, req.offset, req.length); return { stat: await after(), data } }
    case 'omapGet': { const entries = await store.omapGet(req.pool, req.name, req.keys); return { stat: await after(), entries } }
    case 'omapList': { const entries = await store.omapList(req.pool, req.name, req.range); return { stat: await after(), entries } }
    case 'getXattr': { const data = await store.getXattr(req.pool, req.name, req.xattr); return { stat: await after(), data } }
  }
}

function sameState (a: ObjectStat | null, b: ObjectStat | null): boolean {
  if (a === null || b === null) return a === b
  return a.version === b.version && a.size === b.size && a.mtimeMs === b.mtimeMs
}

/** The reading thread's side, given a way to ask the owning thread (synchronously). */
export class RelayedReader implements SnapshotReader {
  /** Each object's state at the snapshot's first look at it. */
  private readonly seen = new Map<string, ObjectStat | null>()

  constructor (private readonly ask: (req: RelayRequest) => RelayReply) {}

  begin (): void { this.seen.clear() }
  end (): void { this.seen.clear() }
  close (): void { this.seen.clear() }

  stat (pool: PoolName, name: string): ObjectStat | null {
    const id = `${pool}\u0000${name}`
    if (this.seen.has(id)) return this.seen.get(id) as ObjectStat | null
    const { stat } = this.ask({ op: 'stat', pool, name })
    this.seen.set(id, stat)
    return stat
  }

  read (pool: PoolName, name: string, offset: number, length: number): Uint8Array | null {
    return this.checked({ op: 'read', pool, name, offset, length }).data ?? null
  }

  omapGet (pool: PoolName, name: string, keys: Uint8Array[]): OmapEntry[] {
    return this.checked({ op: 'omapGet', pool, name, keys }).entries ?? []
  }

  omapList (pool: PoolName, name: string, range: OmapRange): OmapEntry[] {
    return this.checked({ op: 'omapList', pool, name, range }).entries ?? []
  }

  getXattr (pool: PoolName, name: string, xattr: string): Uint8Array | null {
    return this.checked({ op: 'getXattr', pool, name, xattr }).data ?? null
  }

  /** Ask, and check the answer against the snapshot's first look (taken first: a read must not be that look). */
  private checked (req: Exclude<RelayRequest, { op: 'stat' }>): RelayReply {
    const first = this.stat(req.pool, req.name)
    const r = this.ask(req)
    if (!sameState(first, r.stat)) throw new SnapshotMoved(req.pool, req.name)
    return r
  }
}
