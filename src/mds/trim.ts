// Trim: write what the journal says into the metadata store, then drop the
// journal objects that said it — in one batch, so the store plus the remaining
// journal always describe the namespace exactly once (replay never applies an
// event twice).

import { Encoder, nameToBytes, u64Key } from '../common/codec'
import type { ObjectOp, ObjectWrite } from '../store/types'
import type { DirtySnapshot } from './cache'
import { encodeDentryInto } from './dentry'
import { encodeInodeInto } from './inode'
import {
  dirObject, inodeShardObject, INOTABLE_OBJECT, JOURNAL_HEADER, journalObject, METADATA_POOL, SESSIONS_OBJECT, STRAY_OBJECT, CLAIMS_OBJECT
} from './layout'
import type { Ino } from './types'

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

/**
 * The keys and values of one trim, cut from large buffers: a trim after a big
 * merge writes millions of them, and a buffer (or an encoder) of its own for
 * each made a good part of the MDS's garbage.
 */
class Slab {
  private static readonly BYTES = 256 * 1024
  private buf = Buffer.allocUnsafe(Slab.BYTES)
  private pos = 0

  private take (n: number): Buffer {
    if (this.pos + n > this.buf.length) {
      this.buf = Buffer.allocUnsafe(Math.max(Slab.BYTES, n))
      this.pos = 0
    }
    const b = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return b
  }

  copy (bytes: Uint8Array): Buffer {
    const b = this.take(bytes.length)
    b.set(bytes)
    return b
  }

  /** As nameToBytes. */
  name (name: string): Buffer {
    const b = this.take(name.length)
    b.write(name, 0, name.length, 'latin1')
    return b
  }

  /** As u64Key. */
  u64 (n: number): Buffer {
    const b = this.take(8)
    b.writeUInt32BE(Math.floor(n / 0x100000000), 0)
    b.writeUInt32BE(n >>> 0, 4)
    return b
  }
}

export function buildTrimBatch (t: TrimInput): ObjectWrite[] {
  const batch: ObjectWrite[] = []
  const slab = new Slab()
  const enc = new Encoder(128)

  for (const [parent, dentries] of t.snapshot.dentries) {
    if (!t.dirExists(parent)) continue
    const set: Array<[Uint8Array, Uint8Array]> = []
    const remove: Uint8Array[] = []
    for (const d of dentries) {
      if (d.ino === 0) remove.push(slab.name(d.name))
      else {
        encodeDentryInto(enc, d.ino, d.type)
        set.push([slab.name(d.name), slab.copy(enc.view())])
      }
    }
    const ops: ObjectOp[] = [{ op: 'create', exclusive: false }]
    if (remove.length > 0) ops.push({ op: 'omapRemove', keys: remove })
    if (set.length > 0) ops.push({ op: 'omapSet', entries: set })
    batch.push({ pool: METADATA_POOL, name: dirObject(parent), ops })
  }

  const shards = new Map<string, { set: Array<[Uint8Array, Uint8Array]>, remove: Uint8Array[] }>()
  for (const { ino, inode } of t.snapshot.inodes) {
    const shard = inodeShardObject(ino)
    let s = shards.get(shard)
    if (!s) {
      s = { set: [], remove: [] }
      shards.set(shard, s)
    }
    if (inode) {
      encodeInodeInto(enc, inode)
      s.set.push([slab.u64(ino), slab.copy(enc.view())])
    } else {
      s.remove.push(slab.u64(ino))
    }
  }
  for (const [shard, s] of shards) {
    const ops: ObjectOp[] = [{ op: 'create', exclusive: false }]
    if (s.remove.length > 0) ops.push({ op: 'omapRemove', keys: s.remove })
    if (s.set.length > 0) ops.push({ op: 'omapSet', entries: s.set })
    batch.push({ pool: METADATA_POOL, name: shard, ops })
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
