// Trim: write what the journal says into the metadata store, then drop the
// journal objects that said it — in one batch, so the store plus the remaining
// journal always describe the namespace exactly once (replay never applies an
// event twice).

import { Encoder, nameToBytes, u64Key } from '../common/codec'
import { OmapPacker } from '../store'
import type { ObjectOp, ObjectWrite } from '../store/types'
import type { DirtySnapshot } from './cache'
import { encodeDentryInto } from './dentry'
import { encodeInodeInto, type Inode } from './inode'
import { dirObject, inodeShard, inodeShardObject, INOTABLE_OBJECT, JOURNAL_HEADER, journalObject, SESSIONS_OBJECT, STRAY_OBJECT, CLAIMS_OBJECT } from './layout'
import { METADATA_POOL } from '../common/layout'
import type { Ino } from '../common/types'

export interface TrimInput {
  snapshot: DirtySnapshot
  strayChanges: Map<Ino, boolean>
  /** Clients whose completed requests changed (null: forget the client). */
  completedChanges: Map<string, { floor: number, tids: number[] } | null>
  /** Claims made or dropped since the last trim (null: dropped). */
  claimChanges: Map<Ino, { owner: string, inoStart: Ino, count: number, mergedSeq: number, used: Ino } | null>
  /** The inode allocator's high-water mark. */
  nextIno: Ino
  /** Journal objects (previousTrimmedSeq, upToSeq] are covered by this trim. */
  previousTrimmedSeq: number
  upToSeq: number
  /** Directories that no longer exist: their dentry changes are dropped (their object is gone). */
  dirExists: (ino: Ino) => boolean
}

export function buildTrimBatch (t: TrimInput): ObjectWrite[] {
  const batch: ObjectWrite[] = []
  // A trim after a big merge sets millions of entries: packed (omap.ts), not as pairs.
  const packer = new OmapPacker()
  const enc = new Encoder(128)

  for (const [parent, dentries] of t.snapshot.dentries) {
    if (!t.dirExists(parent)) continue
    const remove: Uint8Array[] = []
    packer.begin()
    for (const d of dentries) {
      if (d.ino === 0) remove.push(nameToBytes(d.name))
      else {
        encodeDentryInto(enc, d.ino, d.type)
        packer.addNamed(d.name, enc.view())
      }
    }
    const ops: ObjectOp[] = [{ op: 'create', exclusive: false }]
    if (remove.length > 0) ops.push({ op: 'omapRemove', keys: remove })
    if (packer.entries > 0) ops.push({ op: 'omapSet', entries: packer.finish() })
    batch.push({ pool: METADATA_POOL, name: dirObject(parent), ops })
  }

  // Inodes by shard, in the order the snapshot lists them within each.
  const shards = new Map<number, Array<{ ino: Ino, inode: Inode | null }>>()
  for (const e of t.snapshot.inodes) {
    const shard = inodeShard(e.ino)
    let list = shards.get(shard)
    if (!list) {
      list = []
      shards.set(shard, list)
    }
    list.push(e)
  }
  for (const list of shards.values()) {
    const remove: Uint8Array[] = []
    packer.begin()
    for (const { ino, inode } of list) {
      if (inode) {
        encodeInodeInto(enc, inode)
        packer.addU64(ino, enc.view())
      } else {
        remove.push(u64Key(ino))
      }
    }
    const ops: ObjectOp[] = [{ op: 'create', exclusive: false }]
    if (remove.length > 0) ops.push({ op: 'omapRemove', keys: remove })
    if (packer.entries > 0) ops.push({ op: 'omapSet', entries: packer.finish() })
    batch.push({ pool: METADATA_POOL, name: inodeShardObject(list[0].ino), ops })
  }

  if (t.strayChanges.size > 0) {
    const set: Array<[Uint8Array, Uint8Array]> = []
    const remove: Uint8Array[] = []
    for (const [ino, added] of t.strayChanges) {
      if (added) set.push([u64Key(ino), new Uint8Array(0)])
      else remove.push(u64Key(ino))
    }
    const ops: ObjectOp[] = [{ op: 'create', exclusive: false }]
    if (remove.length > 0) ops.push({ op: 'omapRemove', keys: remove })
    if (set.length > 0) ops.push({ op: 'omapSet', entries: set })
    batch.push({ pool: METADATA_POOL, name: STRAY_OBJECT, ops })
  }

  if (t.completedChanges.size > 0) {
    const set: Array<[Uint8Array, Uint8Array]> = []
    const remove: Uint8Array[] = []
    for (const [client, c] of t.completedChanges) {
      if (c === null) {
        remove.push(nameToBytes(client))
        continue
      }
      const e = new Encoder(16).uint(c.floor).uint(c.tids.length)
      for (const tid of c.tids) e.uint(tid)
      set.push([nameToBytes(client), e.finish()])
    }
    const ops: ObjectOp[] = [{ op: 'create', exclusive: false }]
    if (remove.length > 0) ops.push({ op: 'omapRemove', keys: remove })
    if (set.length > 0) ops.push({ op: 'omapSet', entries: set })
    batch.push({ pool: METADATA_POOL, name: SESSIONS_OBJECT, ops })
  }

  if (t.claimChanges.size > 0) {
    const set: Array<[Uint8Array, Uint8Array]> = []
    const remove: Uint8Array[] = []
    for (const [root, c] of t.claimChanges) {
      if (c === null) remove.push(u64Key(root))
      else set.push([u64Key(root), new Encoder(32).str(c.owner).uint(c.inoStart).uint(c.count).uint(c.mergedSeq).uint(c.used).finish()])
    }
    const ops: ObjectOp[] = [{ op: 'create', exclusive: false }]
    if (remove.length > 0) ops.push({ op: 'omapRemove', keys: remove })
    if (set.length > 0) ops.push({ op: 'omapSet', entries: set })
    batch.push({ pool: METADATA_POOL, name: CLAIMS_OBJECT, ops })
  }

  batch.push({ pool: METADATA_POOL, name: INOTABLE_OBJECT, ops: [{ op: 'writeFull', data: encodeInoTable(t.nextIno) }] })
  for (let seq = t.previousTrimmedSeq + 1; seq <= t.upToSeq; seq++) {
    batch.push({ pool: METADATA_POOL, name: journalObject(seq), ops: [{ op: 'remove' }] })
  }
  batch.push({ pool: METADATA_POOL, name: JOURNAL_HEADER, ops: [{ op: 'writeFull', data: encodeJournalHeader(t.upToSeq) }] })
  return batch
}

export function encodeInoTable (nextIno: Ino): Buffer {
  return new Encoder(12).uint(1).uint(nextIno).finish()
}

export function encodeJournalHeader (trimmedSeq: number): Buffer {
  return new Encoder(12).uint(1).uint(trimmedSeq).finish()
}
