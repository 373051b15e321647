// The MDS's namespace state: the metadata cache plus the small tables that
// travel with it (inode allocator, stray set). Events are applied to it by
// apply.ts; trims write its dirty parts to the store (trim.ts).

import { invariant } from '../common/assert'
import { fsError } from '../common/errors'
import type { Inode } from './inode'
import type { MetadataCache } from './cache'
import { type Ino, ROOT_INO } from '../common/types'

/** Hands out inode numbers; the high-water mark survives restarts (it is written at trim). */
export class InoTable {
  dirty = false
  /**
   * Numbers at or past this one are not ours to hand out (a decoupled client
   * allocates only from the range its server set aside for it).
   */
  limit = Infinity
  /** Why the limit exists, for the ENOSPC message. */
  limitReason = ''

  constructor (public next: Ino) {}

  alloc (): Ino {
    if (this.next >= this.limit) throw fsError('ENOSPC', this.limitReason || 'no inode numbers left')
    invariant(Number.isSafeInteger(this.next) && this.next > ROOT_INO, () => `inode allocator at ${this.next}`)
    this.dirty = true
    return this.next++
  }

  /** Set aside `count` numbers (for a decoupled client); returns the first. */
  reserve (count: number): Ino {
    invariant(Number.isSafeInteger(count) && count >= 0, () => `a reservation of ${count} inode numbers`)
    const first = this.next
    this.next += count
    this.dirty = true
    return first
  }

  /** An event used ino (replay, or a range handed to a client): never hand it out again. */
  bump (ino: Ino): void {
    if (ino >= this.next) {
      this.next = ino + 1
      this.dirty = true
    }
  }
}

/**
 * Inodes with no links left that are waiting for purge (still open, or not yet
 * purged). Persisted as the omap of the stray object so a restart can finish
 * their purge.
 */
export class StraySet {
  readonly members = new Set<Ino>()
  /** Changes since the last trim: true = added, false = removed. */
  private changes = new Map<Ino, boolean>()

  add (ino: Ino): void {
    this.members.add(ino)
    this.changes.set(ino, true)
  }

  remove (ino: Ino): void {
    if (!this.members.delete(ino)) return
    this.changes.set(ino, false)
  }

  takeChanges (): Map<Ino, boolean> {
    const c = this.changes
    this.changes = new Map()
    return c
  }

  restoreChanges (c: Map<Ino, boolean>): void {
    for (const [ino, added] of c) if (!this.changes.has(ino)) this.changes.set(ino, added)
  }
}

/**
 * Requests of each client (by session name) that the MDS has carried out and
 * the client may not yet know are safe. A client tells the MDS the oldest
 * transaction it still keeps for replay (its floor); everything below goes.
 */
export class CompletedRequests {
  private readonly byClient = new Map<string, { floor: number, tids: Set<number> }>()
  /** Clients whose set changed since the last trim. */
  private changed = new Set<string>()

  add (client: string, tid: number): void {
    let c = this.byClient.get(client)
    if (!c) {
      c = { floor: 0, tids: new Set() }
      this.byClient.set(client, c)
    }
    if (tid >= c.floor) c.tids.add(tid)
    this.changed.add(client)
  }

  has (client: string, tid: number): boolean {
    return this.byClient.get(client)?.tids.has(tid) === true
  }

  /** The oldest transaction the client still keeps (0: nothing known of it). */
  floorOf (client: string): number {
    return this.byClient.get(client)?.floor ?? 0
  }

  setFloor (client: string, floor: number): void {
    const c = this.byClient.get(client)
    if (!c || floor <= c.floor) return
    c.floor = floor
    for (const t of c.tids) if (t < floor) c.tids.delete(t)
    this.changed.add(client)
  }

  /** A client that ended its session for good needs nothing kept. */
  forget (client: string): void {
    if (this.byClient.delete(client)) this.changed.add(client)
  }

  load (client: string, floor: number, tids: number[]): void {
    this.byClient.set(client, { floor, tids: new Set(tids) })
  }

  /** State of the clients changed since the last call (null: forgotten). */
  takeChanges (): Map<string, { floor: number, tids: number[] } | null> {
    const out = new Map<string, { floor: number, tids: number[] } | null>()
    for (const client of this.changed) {
      const c = this.byClient.get(client)
      out.set(client, c ? { floor: c.floor, tids: [...c.tids] } : null)
    }
    this.changed = new Set()
    return out
  }

  restoreChanges (changes: Map<string, unknown>): void {
    for (const client of changes.keys()) this.changed.add(client)
  }

  get clients (): number { return this.byClient.size }
}

/** A decoupled subtree's owner and the inode numbers set aside for it. */
export interface Claim {
  root: Ino
  owner: string
  inoStart: Ino
  count: number
  /** The owner's client journal is merged up to this segment (0: nothing yet). */
  mergedSeq: number
  /**
   * Numbers of the range below this one have been used by creates that
   * reached the namespace (merged, or done through the MDS): taken back after
   * a merge, the claim hands out numbers from here on. Files of the range may
   * have gone from the subtree (deleted but still open or not yet purged,
   * moved or linked out), so the subtree alone cannot tell.
   */
  used: Ino
}

/** Decoupled subtrees and who owns them; persisted at trim, rebuilt by replay. */
export class ClaimTable {
  readonly byRoot = new Map<Ino, Claim>()
  private changed = new Set<Ino>()

  set (c: Claim): void {
    // Ranges of inode numbers handed to decoupled clients never overlap: a number is one client's to use.
    invariant(c.count === 0 || ![...this.byRoot.values()].some(o => o.root !== c.root && o.count > 0 && o.inoStart < c.inoStart + c.count && c.inoStart < o.inoStart + o.count),
      () => `the inode range ${c.inoStart}+${c.count} of subtree ${c.root} overlaps another claim's`)
    this.byRoot.set(c.root, c)
    this.changed.add(c.root)
  }

  delete (root: Ino): void {
    if (this.byRoot.delete(root)) this.changed.add(root)
  }

  /** A create gave out ino: if a claim's range holds it, numbers up to it are used. */
  noteCreated (ino: Ino): void {
    if (this.byRoot.size === 0) return
    for (const c of this.byRoot.values()) {
      if (ino >= c.used && ino >= c.inoStart && ino < c.inoStart + c.count) {
        c.used = ino + 1
        this.changed.add(c.root)
      }
    }
  }

  setMerged (root: Ino, seq: number): void {
    const c = this.byRoot.get(root)
    if (!c || seq <= c.mergedSeq) return
    c.mergedSeq = seq
    this.changed.add(root)
  }

  load (c: Claim): void {
    this.byRoot.set(c.root, c)
  }

  /** The claim whose inode range holds ino, if any. */
  rangeOf (ino: Ino): Claim | undefined {
    for (const c of this.byRoot.values()) if (ino >= c.inoStart && ino < c.inoStart + c.count) return c
    return undefined
  }

  takeChanges (): Map<Ino, Claim | null> {
    const out = new Map<Ino, Claim | null>()
    for (const root of this.changed) out.set(root, this.byRoot.get(root) ?? null)
    this.changed = new Set()
    return out
  }

  restoreChanges (changes: Map<Ino, unknown>): void {
    for (const root of changes.keys()) this.changed.add(root)
  }
}

export interface NamespaceHooks {
  /** An inode lost its last link (it is a stray now). */
  linksGone (inode: Inode): void
}

export class Namespace {
  constructor (
    readonly cache: MetadataCache,
    readonly inotable: InoTable,
    readonly strays: StraySet,
    readonly hooks: NamespaceHooks,
    readonly completed: CompletedRequests = new CompletedRequests(),
    readonly claims: ClaimTable = new ClaimTable()
  ) {}
}
