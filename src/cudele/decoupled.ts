// A decoupled subtree on its owner client.
//
// The client runs the MDS's own code on a private copy of the subtree (the
// snapshot it got when it claimed it), in memory: every operation there is
// validated, turned into events, applied and appended to the client journal
// (append_client_journal) — no round trip. The journal's segments then go
// where the policy says: a local file (local_persist), the object store
// (global_persist), nowhere (none); and they are merged into the global
// namespace by the MDS (volatile_apply / nonvolatile_apply) on sync_interval,
// `cudele sync`, unmount — or, for invisible consistency, only on `cudele merge`.

import { fsError } from '../common/errors'
import { u64Key, nameToBytes } from '../common/codec'
import { encodeDentry } from '../mds/dentry'
import { applyEvent } from '../mds/apply'
import { decodeEvents, EventType } from '../mds/events'
import { now, type Timespec } from '../common/time'
import { decodeInode, encodeInode } from '../mds/inode'
import { dirObject, FORMAT_OBJECT, FORMAT_VERSION, inodeShardObject, INOTABLE_OBJECT, JOURNAL_HEADER, parseJournalObject } from '../mds/layout'
import { METADATA_POOL } from '../common/layout'
import type { Mds } from '../mds/mds'
import { openMds } from '../mds/open'
import { encodeInoTable, encodeJournalHeader } from '../mds/trim'
import { type Caller, type Ino, isDir, NAME_MAX, S_IFREG } from '../common/types'
import { MemoryStore } from '../store/memory'
import type { CommitInfo, ObjectWrite, SubmitOptions } from '../store/types'
import { JournalFile, type JournalFileHeader, type Segment } from './journalfile'
import type { Policy } from './policy'
import type { ClaimGrant } from './registry'
import type { SubtreeService } from './service'

/** Keeps the journal objects the private MDS writes: they are the client journal. */
class JournalTap extends MemoryStore {
  onSegment: (seq: number, bytes: Uint8Array) => void = () => {}

  override async submit (batch: ObjectWrite[], opts: SubmitOptions): Promise<CommitInfo> {
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

export interface DecoupledOptions {
  /** Where local_persist files go (null: this client cannot persist locally). */
  journalDir: string | null
  /** Where the subtree lives (the server address or the store directory), for the journal file header. */
  source: string
}

/** File name of the local journal of a subtree. */
export function journalFileName (dir: string, owner: string, root: Ino): string {
  return `${dir}/${owner}.${root.toString(16)}.cj`
}

export class DecoupledSubtree {
  /** Client journal segments not merged yet, in order. */
  private segments: Segment[] = []
  private mergedSeq: number
  private file: JournalFile | null = null
  private readonly globalPuts = new Set<Promise<void>>()
  private persistFailure: Error | null = null
  private merging: Promise<void> | null = null
  private syncTimer: NodeJS.Timeout | null = null
  /** Inodes of the subtree when it was claimed (the rest are in the claimed range). */
  private readonly snapshotInos: Set<Ino>
  readonly inoEnd: Ino
  readonly stats = { merges: 0, mergedEvents: 0, segments: 0, journalBytes: 0 }

  private constructor (
    readonly root: Ino,
    readonly owner: string,
    readonly policy: Policy,
    readonly policyVersion: number,
    readonly inoStart: Ino,
    count: number,
    private readonly copy: Mds,
    private readonly service: SubtreeService,
    snapshotInos: Set<Ino>,
    mergedSeq: number
  ) {
    this.inoEnd = inoStart + count
    this.snapshotInos = snapshotInos
    this.mergedSeq = mergedSeq
  }

  /** Build the private copy from a claim, and pick up what a previous run of this client left unmerged. */
  static async open (grant: ClaimGrant, service: SubtreeService, opts: DecoupledOptions): Promise<DecoupledSubtree> {
    const p = grant.policy
    const local = p.mechanisms.includes('local_persist')
    const global = p.mechanisms.includes('global_persist')
    if (local && opts.journalDir === null) throw fsError('EINVAL', 'this subtree\'s policy persists the client journal locally, but the client has no journal directory')
    // Segments a previous run left: in the local file, or in the object store.
    let leftover: Segment[] = []
    const file = local ? journalFileName(opts.journalDir as string, grant.owner, grant.root) : null
    if (file) {
      try {
        const read = JournalFile.read(file)
        if (read.header.root === grant.root && read.header.owner === grant.owner) leftover = read.segments
      } catch {}
    }
    if (global) leftover = (await service.storedSegments(grant.root, grant.owner)).map(([seq, bytes]) => ({ seq, bytes }))
    leftover = leftover.filter(s => s.seq > grant.mergedSeq).sort((a, b) => a.seq - b.seq)
    const lastSeq = Math.max(grant.mergedSeq, ...leftover.map(s => s.seq), 0)

    const tap = new JournalTap()
    tap.submitSync(snapshotWrites(grant, lastSeq))
    const mds = await openMds(tap, {
      mds: { cache: { inodes: Number.MAX_SAFE_INTEGER, dentries: Number.MAX_SAFE_INTEGER }, trimDirtyEntries: Number.MAX_SAFE_INTEGER, trimIntervalMs: 2 ** 31 - 1, trimming: false }
    })
    mds.ns.inotable.limit = grant.inoStart + grant.count
    mds.ns.inotable.limitReason = `the ${grant.count} inode numbers this client got for the decoupled subtree (allocated_inodes) are used up (a merge does not give them back); raise allocated_inodes in its policies.yml, or unmount (the subtree is merged and let go, and the next change claims a fresh range)`
    const tree = new DecoupledSubtree(grant.root, grant.owner, p, grant.policyVersion, grant.inoStart, grant.count, mds, service,
      new Set(grant.snapshot.inodes.map(([ino]) => ino)), grant.mergedSeq)
    for (const s of leftover) {
      mds.replay(s.seq, decodeEvents(s.bytes))
      tree.segments.push(s)
    }
    mds.journal.nextSeq = lastSeq + 1
    mds.journal.trimmedSeq = lastSeq
    if (file) {
      const header: JournalFileHeader = { cudele: 'client-journal', version: 1, source: opts.source, root: grant.root, owner: grant.owner, inoStart: grant.inoStart, count: grant.count }
      tree.file = JournalFile.create(file, header, tree.segments)
    }
    tap.onSegment = (seq, bytes) => tree.captured(seq, bytes)
    if (p.consistency === 'weak' && p.syncIntervalMs > 0) {
      tree.syncTimer = setInterval(() => { tree.merge().catch(() => {}) }, p.syncIntervalMs)
      tree.syncTimer.unref()
    }
    return tree
  }

  /** Creates appended blind (createMany) that the private copy has not applied yet. */
  private unapplied: Array<{ parent: Ino, names: string[], firstIno: Ino, mode: number, uid: number, gid: number, time: Timespec }> = []

  /** The private copy, with every appended event applied. */
  get mds (): Mds {
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
   * private copy applies them before the next operation that looks at it.
   */
  appendCreates (parent: Ino, names: string[], mode: number, caller: Caller): number {
    const copy = this.copy
    // Directories are never created blind, so the parent is in the copy without catching up.
    const dir = copy.ns.cache.getInode(parent)
    if (!dir) throw fsError('ENOENT', `directory ${parent} does not exist`)
    if (!isDir(dir.mode)) throw fsError('ENOTDIR', `inode ${parent} is not a directory`)
    for (const name of names) {
      if (name.length === 0 || name.length > NAME_MAX || name.includes('/') || name === '.' || name === '..') {
        throw fsError(name.length > NAME_MAX ? 'ENAMETOOLONG' : 'EINVAL', `invalid name ${JSON.stringify(name)}`)
      }
    }
    const inotable = copy.ns.inotable
    if (inotable.next + names.length > inotable.limit) throw fsError('ENOSPC', inotable.limitReason)
    const firstIno = inotable.reserve(names.length)
    const batch = { parent, names, firstIno, mode: (mode & 0o7777) | S_IFREG, uid: caller.uid, gid: caller.gid, time: now() }
    copy.journal.appendCreates(parent, names, firstIno, batch.mode, batch.uid, batch.gid, batch.time)
    this.unapplied.push(batch)
    return names.length
  }

  /** Does this subtree hold the inode (from the snapshot, or created here)? */
  has (ino: Ino): boolean {
    return this.snapshotInos.has(ino) || (ino >= this.inoStart && ino < this.inoEnd)
  }

  /** A new segment of the client journal: persist it as the policy says. */
  private captured (seq: number, bytes: Uint8Array): void {
    const seg = { seq, bytes }
    this.segments.push(seg)
    this.stats.segments++
    this.stats.journalBytes += bytes.length
    if (this.file) this.file.append(seg).catch(err => { this.persistFailure = err as Error })
    if (this.policy.mechanisms.includes('global_persist')) {
      const p = this.service.putSegment(this.root, this.owner, seq, bytes)
      this.globalPuts.add(p)
      p.catch(err => { this.persistFailure = err as Error }).finally(() => this.globalPuts.delete(p))
    }
  }

  get unmergedSegments (): number { return this.segments.length }
  get unmergedEvents (): number { return this.copy.journal.pendingEvents + this.segments.length }

  /** Everything done so far is as durable as the policy makes it (fsync in the subtree). */
  async persist (): Promise<void> {
    await this.copy.journal.sync(false)
    if (this.file) await this.file.flushed()
    await Promise.all([...this.globalPuts])
    if (this.persistFailure) {
      const err = this.persistFailure
      this.persistFailure = null
      throw err
    }
  }

  /** Merge the client journal into the global namespace now. */
  merge (): Promise<void> {
    if (!this.merging) {
      this.merging = this.doMerge().finally(() => { this.merging = null })
    }
    return this.merging
  }

  private async doMerge (): Promise<void> {
    await this.copy.journal.sync(false)
    const todo = this.segments.filter(s => s.seq > this.mergedSeq)
    if (todo.length === 0) return
    // Segments the store must hold first (global_persist) are put before the merge.
    await Promise.all([...this.globalPuts])
    const r = await this.service.merge(this.root, this.owner, todo.map(s => [s.seq, s.bytes]))
    this.stats.merges++
    this.stats.mergedEvents += r.applied
    this.mergedSeq = r.mergedSeq
    this.segments = this.segments.filter(s => s.seq > r.mergedSeq)
    if (this.file) await this.file.rewrite(this.segments)
    if (this.policy.mechanisms.includes('global_persist')) await this.service.dropSegments(this.root, this.owner, r.mergedSeq)
  }

  /**
   * Done with the subtree (unmount, or its policy changed). Weak: merge, then
   * let go. Invisible: what is persisted stays for next time (local/global);
   * with no durability it is gone.
   */
  async close (how: 'unmount' | 'policy-change'): Promise<void> {
    if (this.syncTimer) clearInterval(this.syncTimer)
    this.syncTimer = null
    const keep = this.policy.consistency === 'invisible' && how === 'unmount' && this.policy.durability !== 'none'
    if (keep) {
      await this.persist().catch(() => {})
      this.file?.close()
      await this.copy.close()
      return
    }
    if (this.policy.consistency !== 'invisible' || how === 'policy-change') await this.merge()
    await this.service.release(this.root, this.owner)
    await this.file?.remove()
    await this.copy.close()
  }
}

/** The store writes that make a private copy of a claimed subtree. */
function snapshotWrites (grant: ClaimGrant, journalSeq: number): ObjectWrite[] {
  // A claim taken back (a remount after a merge) has used part of its range
  // already, and not only for what is in the snapshot (files deleted but not
  // yet purged, moved or linked out): new inodes come after all of them.
  let nextIno = Math.max(grant.inoStart, grant.nextIno ?? 0)
  for (const [ino] of grant.snapshot.inodes) if (ino >= nextIno && ino < grant.inoStart + grant.count) nextIno = ino + 1
  const writes: ObjectWrite[] = [
    { pool: METADATA_POOL, name: FORMAT_OBJECT, ops: [{ op: 'writeFull', data: Buffer.from(`cudele ${FORMAT_VERSION}\n`) }] },
    { pool: METADATA_POOL, name: INOTABLE_OBJECT, ops: [{ op: 'writeFull', data: encodeInoTable(nextIno) }] },
    { pool: METADATA_POOL, name: JOURNAL_HEADER, ops: [{ op: 'writeFull', data: encodeJournalHeader(journalSeq) }] }
  ]
  const shards = new Map<string, Array<[Uint8Array, Uint8Array]>>()
  for (const [ino, rec] of grant.snapshot.inodes) {
    let record = rec
    if (ino === grant.root) {
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
  for (const [dir, name, ino, type] of grant.snapshot.dentries) {
    if (!dirs.has(dir)) dirs.set(dir, [])
    dirs.get(dir)!.push([nameToBytes(name), encodeDentry(ino, type)])
  }
  for (const [dir, entries] of dirs) writes.push({ pool: METADATA_POOL, name: dirObject(dir), ops: [{ op: 'omapSet', entries }] })
  return writes
}
