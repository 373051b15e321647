// A private copy of a subtree, for the client that decoupled it (Cudele).
//
// The copy is an MDS of its own, in memory, built from the snapshot the
// client got with its claim: every operation on it runs the MDS's own code
// (checks, events, apply) and appends to its journal, and each journal
// object it writes is a segment of the client journal, handed to the owner
// as it is written. It never trims: what it holds reaches the global
// namespace only when the owner merges its journal.

import { u64Key, nameToBytes } from '../common/codec'
import { fsError } from '../common/errors'
import { METADATA_POOL } from '../common/layout'
import { now, type Timespec } from '../common/time'
import { type Caller, type Ino, isDir, S_IFREG } from '../common/types'
import { MemoryStore } from '../store'
import type { CommitInfo, ObjectWrite, SubmitOptions } from '../store/types'
import { applyEvent } from './apply'
import { checkName } from './checks'
import { encodeDentry } from './dentry'
import { decodeEvents, EventType } from './events'
import type { MetadataServer, SubtreeSnapshot } from './index'
import { decodeInode, encodeInode } from './inode'
import { dirObject, FORMAT_OBJECT, FORMAT_VERSION, inodeShardObject, INOTABLE_OBJECT, JOURNAL_HEADER, parseJournalObject } from './layout'
import type { Mds } from './mds'
import { openMds } from './open'
import { encodeInoTable, encodeJournalHeader } from './trim'

export interface ForkSpec {
  root: Ino
  /** The inode numbers set aside for the owner: [inoStart, inoStart + count). */
  inoStart: Ino
  count: number
  /** The first number of the range not used yet. */
  nextIno: Ino
  snapshot: SubtreeSnapshot
  /** Segments an earlier run of the owner left unmerged, in order: replayed into the copy. */
  leftover: Array<{ seq: number, bytes: Uint8Array }>
  /** The copy's journal goes on after this segment. */
  lastSeq: number
  /** The reason given with ENOSPC once the range is used up. */
  exhausted: string
  /** Each new segment of the client journal, as the copy writes it. */
  onSegment: (seq: number, bytes: Uint8Array) => void
}

/** Keeps the journal objects the copy writes: they are the client journal. */
class JournalTap extends MemoryStore {
  constructor (private readonly onSegment: (seq: number, bytes: Uint8Array) => void) {
    super()
  }

  override async submit (batch: ObjectWrite[], _opts: SubmitOptions): Promise<CommitInfo> {
    const rest: ObjectWrite[] = []
    for (const w of batch) {
      const seq = w.pool === METADATA_POOL ? parseJournalObject(w.name) : null
      const full = w.ops.length === 1 && w.ops[0].op === 'writeFull' ? w.ops[0] : null
      if (seq !== null && full && full.op === 'writeFull') this.onSegment(seq, full.data)
      else if (seq === null) rest.push(w)
    }
    if (rest.length > 0) this.submitSync(rest)
    return { seq: 0 }
  }
}

/** Creates appended blind that the copy has not applied yet. */
interface BlindCreates {
  parent: Ino
  names: string[]
  firstIno: Ino
  mode: number
  uid: number
  gid: number
  time: Timespec
}

export class SubtreeCopy {
  private unapplied: BlindCreates[] = []

  constructor (private readonly copy: Mds) {}

  /** The copy's operations, with every appended event applied. */
  get ops (): MetadataServer {
    if (this.unapplied.length > 0) this.catchUp()
    return this.copy
  }

  private catchUp (): void {
    const batches = this.unapplied
    this.unapplied = []
    for (const b of batches) {
      for (let i = 0; i < b.names.length; i++) {
        applyEvent(this.copy.ns, { type: EventType.Mknod, parent: b.parent, name: b.names[i], ino: b.firstIno + i, mode: b.mode, uid: b.uid, gid: b.gid, rdev: 0, time: b.time, target: '' })
      }
    }
  }

  /**
   * append_client_journal in its plain form: create events for these names go
   * straight into the client journal, with inode numbers from the subtree's
   * range and no checks against the namespace (as the paper's clients do; the
   * MDS applies them blindly at merge, so an existing name is replaced). The
   * copy applies them before the next operation that looks at it.
   */
  appendCreates (parent: Ino, names: string[], mode: number, caller: Caller): number {
    const copy = this.copy
    // Directories are never created blind, so the parent is in the copy without catching up.
    const dir = copy.ns.cache.getInode(parent)
    if (!dir) throw fsError('ENOENT', `directory ${parent} does not exist`)
    if (!isDir(dir.mode)) throw fsError('ENOTDIR', `inode ${parent} is not a directory`)
    for (const name of names) checkName(name)
    const inotable = copy.ns.inotable
    if (inotable.next + names.length > inotable.limit) throw fsError('ENOSPC', inotable.limitReason)
    const firstIno = inotable.reserve(names.length)
    const batch = { parent, names, firstIno, mode: (mode & 0o7777) | S_IFREG, uid: caller.uid, gid: caller.gid, time: now() }
    copy.journal.appendCreates(parent, names, firstIno, batch.mode, batch.uid, batch.gid, batch.time)
    this.unapplied.push(batch)
    return names.length
  }

  /**
   * Segments another copy of the same subtree wrote after this one was made
   * from its snapshot: applied here, and the journal and inode numbers go on
   * after them (the owner's copy is being replaced by this one).
   */
  replaySegments (segments: Array<{ seq: number, bytes: Uint8Array }>, nextIno: Ino, lastSeq: number): void {
    if (this.unapplied.length > 0) this.catchUp()
    for (const s of segments) this.copy.replay(s.seq, decodeEvents(s.bytes))
    this.copy.ns.inotable.bump(nextIno - 1)
    this.copy.journal.nextSeq = lastSeq + 1
    this.copy.journal.trimmedSeq = lastSeq
  }

  /** Hand what is appended so far to onSegment. */
  async flush (): Promise<void> {
    await this.copy.journal.sync(false)
  }

  /** Events appended and not yet in a segment. */
  get pendingEvents (): number { return this.copy.journal.pendingEvents }

  /** Events appended since the copy was made. */
  get journalEvents (): number { return this.copy.journal.stats.events }

  /** The next inode number the copy hands out. */
  get nextIno (): Ino { return this.copy.ns.inotable.next }

  /** The last segment of the client journal the copy has written. */
  get lastSeq (): number { return this.copy.journal.nextSeq - 1 }

  async close (): Promise<void> {
    await this.copy.close()
  }
}

/** Build the private copy of a claimed subtree. */
export async function forkSubtree (spec: ForkSpec): Promise<SubtreeCopy> {
  const tap = new JournalTap(spec.onSegment)
  await tap.createPool(METADATA_POOL)
  tap.submitSync(snapshotWrites(spec))
  const mds = await openMds(tap, {
    mds: { cache: { inodes: Number.MAX_SAFE_INTEGER, dentries: Number.MAX_SAFE_INTEGER }, trimDirtyEntries: Number.MAX_SAFE_INTEGER, trimIntervalMs: 2 ** 31 - 1, trimming: false }
  })
  mds.ns.inotable.limit = spec.inoStart + spec.count
  mds.ns.inotable.limitReason = spec.exhausted
  for (const s of spec.leftover) mds.replay(s.seq, decodeEvents(s.bytes))
  mds.journal.nextSeq = spec.lastSeq + 1
  mds.journal.trimmedSeq = spec.lastSeq
  return new SubtreeCopy(mds)
}

/** The store writes that make the copy: the snapshot in the MDS's own layout. */
function snapshotWrites (spec: ForkSpec): ObjectWrite[] {
  // A claim taken back (a remount after a merge) has used part of its range
  // already, and not only for what is in the snapshot (files deleted but not
  // yet purged, moved or linked out): new inodes come after all of them.
  let nextIno = Math.max(spec.inoStart, spec.nextIno)
  for (const [ino] of spec.snapshot.inodes) if (ino >= nextIno && ino < spec.inoStart + spec.count) nextIno = ino + 1
  const writes: ObjectWrite[] = [
    { pool: METADATA_POOL, name: FORMAT_OBJECT, ops: [{ op: 'writeFull', data: Buffer.from(`cudele ${FORMAT_VERSION}\n`) }] },
    { pool: METADATA_POOL, name: INOTABLE_OBJECT, ops: [{ op: 'writeFull', data: encodeInoTable(nextIno) }] },
    { pool: METADATA_POOL, name: JOURNAL_HEADER, ops: [{ op: 'writeFull', data: encodeJournalHeader(spec.lastSeq) }] }
  ]
  const shards = new Map<string, Array<[Uint8Array, Uint8Array]>>()
  for (const [ino, rec] of spec.snapshot.inodes) {
    let record = rec
    if (ino === spec.root) {
      // The copy's root is its own parent: nothing above it exists here.
      const inode = decodeInode(ino, rec)
      inode.parent = ino
      record = encodeInode(inode)
    }
    const inode = decodeInode(ino, record)
    if (isDir(inode.mode)) writes.push({ pool: METADATA_POOL, name: dirObject(ino), ops: [{ op: 'create', exclusive: false }] })
    const shard = inodeShardObject(ino)
    if (!shards.has(shard)) shards.set(shard, [])
    shards.get(shard)!.push([u64Key(ino), record])
  }
  for (const [shard, entries] of shards) writes.push({ pool: METADATA_POOL, name: shard, ops: [{ op: 'omapSet', entries }] })
  const dirs = new Map<Ino, Array<[Uint8Array, Uint8Array]>>()
  for (const [dir, name, ino, type] of spec.snapshot.dentries) {
    if (!dirs.has(dir)) dirs.set(dir, [])
    dirs.get(dir)!.push([nameToBytes(name), encodeDentry(ino, type)])
  }
  for (const [dir, entries] of dirs) writes.push({ pool: METADATA_POOL, name: dirObject(dir), ops: [{ op: 'omapSet', entries }] })
  return writes
}
