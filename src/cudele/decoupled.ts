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
import type { Caller, Ino } from '../common/types'
import { forkSubtree, type MetadataServer, type SubtreeCopy } from '../mds'
import { JournalFile, type JournalFileHeader, type Segment } from './journalfile'
import type { Policy } from './policy'
import type { ClaimGrant } from './registry'
import type { SubtreeService } from './service'

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
  /** Inodes of the subtree when it was claimed or last refreshed (the rest are in the claimed range). */
  private snapshotInos: Set<Ino>
  readonly inoEnd: Ino
  readonly stats = { merges: 0, mergedEvents: 0, segments: 0, journalBytes: 0 }

  private constructor (
    readonly root: Ino,
    readonly owner: string,
    readonly policy: Policy,
    readonly policyVersion: number,
    readonly inoStart: Ino,
    count: number,
    private copy: SubtreeCopy,
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
    if (global) {
      // Kept in both places (local_persist||global_persist): what either holds, once.
      const bySeq = new Map(leftover.map(s => [s.seq, s]))
      for (const [seq, bytes] of await service.storedSegments(grant.root, grant.owner)) if (!bySeq.has(seq)) bySeq.set(seq, { seq, bytes })
      leftover = [...bySeq.values()]
    }
    leftover = leftover.filter(s => s.seq > grant.mergedSeq).sort((a, b) => a.seq - b.seq)
    const lastSeq = Math.max(grant.mergedSeq, ...leftover.map(s => s.seq), 0)

    let tree: DecoupledSubtree | null = null
    const copy = await forkSubtree({
      root: grant.root,
      inoStart: grant.inoStart,
      count: grant.count,
      nextIno: grant.nextIno ?? 0,
      snapshot: grant.snapshot,
      leftover,
      lastSeq,
      exhausted: exhaustedReason(grant.count),
      // Segments come only from operations on the copy, once it is open.
      onSegment: (seq, bytes) => tree?.captured(seq, bytes)
    })
    tree = new DecoupledSubtree(grant.root, grant.owner, p, grant.policyVersion, grant.inoStart, grant.count, copy, service,
      new Set(grant.snapshot.inodes.map(([ino]) => ino)), grant.mergedSeq)
    tree.segments.push(...leftover)
    if (file) {
      const header: JournalFileHeader = { cudele: 'client-journal', version: 1, source: opts.source, root: grant.root, owner: grant.owner, inoStart: grant.inoStart, count: grant.count }
      tree.file = JournalFile.create(file, header, tree.segments)
    }
    const t = tree
    if (p.consistency === 'weak' && p.syncIntervalMs > 0) {
      tree.syncTimer = setInterval(() => { t.merge().catch(() => {}) }, p.syncIntervalMs)
      tree.syncTimer.unref()
    }
    return tree
  }

  /** The private copy, with every appended event applied. */
  get mds (): MetadataServer {
    return this.copy.ops
  }

  /** append_client_journal in its plain form (blind creates: see SubtreeCopy.appendCreates). */
  appendCreates (parent: Ino, names: string[], mode: number, caller: Caller): number {
    return this.copy.appendCreates(parent, names, mode, caller)
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
  get unmergedEvents (): number { return this.copy.pendingEvents + this.segments.length }

  /** Events appended to the client journal since the subtree was decoupled here. */
  get journalEvents (): number { return this.copy.journalEvents }

  /** Everything done so far is as durable as the policy makes it (fsync in the subtree). */
  async persist (): Promise<void> {
    await this.copy.flush()
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
    await this.copy.flush()
    const todo = this.segments.filter(s => s.seq > this.mergedSeq)
    if (todo.length === 0) return
    // Segments the store must hold first (global_persist) are put before the merge.
    await Promise.all([...this.globalPuts])
    const r = await this.service.merge(this.root, this.owner, todo.map(s => [s.seq, s.bytes]))
    this.stats.merges++
    this.stats.mergedEvents += r.applied
    this.mergedSeq = r.mergedSeq
    this.segments = this.segments.filter(s => s.seq > r.mergedSeq)
    if (r.refresh) await this.refresh()
    if (this.file) await this.file.rewrite(this.segments)
    if (this.policy.mechanisms.includes('global_persist')) await this.service.dropSegments(this.root, this.owner, r.mergedSeq)
  }

  /**
   * Others changed the subtree (interfere: allow) and the merge kept what of
   * theirs the owner did not overwrite: the private copy is made again from
   * the namespace as it is now, with what the owner appended since the merge
   * on top, so the owner sees what everyone else sees. Operations go on
   * meanwhile on the old copy; what they appended is carried over before the
   * new copy takes their place.
   */
  private async refresh (): Promise<void> {
    const grant = await this.service.claim(this.root, this.owner)
    const old = this.copy
    // Appends since the merge are segments now (a flush captures them at once).
    void old.flush()
    const carried = this.segments.filter(s => s.seq > this.mergedSeq)
    const fresh = await forkSubtree({
      root: this.root,
      inoStart: this.inoStart,
      count: this.inoEnd - this.inoStart,
      nextIno: Math.max(grant.nextIno, old.nextIno),
      snapshot: grant.snapshot,
      leftover: carried,
      lastSeq: old.lastSeq,
      exhausted: exhaustedReason(this.inoEnd - this.inoStart),
      onSegment: (seq, bytes) => this.captured(seq, bytes)
    })
    // What went to the old copy while the new one was made: carried over too, then the new one takes over.
    void old.flush()
    const lastCarried = carried.length > 0 ? carried[carried.length - 1].seq : this.mergedSeq
    fresh.replaySegments(this.segments.filter(s => s.seq > lastCarried), Math.max(old.nextIno, fresh.nextIno), old.lastSeq)
    this.copy = fresh
    this.snapshotInos = new Set(grant.snapshot.inodes.map(([ino]) => ino))
    await old.close()
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

/** Why a create in a decoupled subtree gets ENOSPC. */
function exhaustedReason (count: number): string {
  return `the ${count} inode numbers this client got for the decoupled subtree (allocated_inodes) are used up (a merge does not give them back); raise allocated_inodes in its policies.yml, or unmount (the subtree is merged and let go, and the next change claims a fresh range)`
}
