// Changes the MDS does not journal: subtrees whose policy leaves out Cudele's
// stream mechanism (strong consistency with durability none or local). Their
// events are applied to the cache like any other, and reach the metadata
// store only with the next trim; a crash before it loses them.
//
// The namespace must stay consistent whatever a crash loses, so the journal
// (what replay applies on top of the store) may never need what was not
// journaled. Three rules keep it so:
//
//   - an event that touches an inode an unjournaled event changed since the
//     last trim snapshot is not journaled either (it would refer to an inode
//     or dentry the store may never see, or count on an emptiness or a link
//     count it never had); changes to a directory's entries always touch the
//     directory, so this covers dentries too;
//   - data commits of such an inode go with the trim that stores the inode
//     (never data for a file the store does not have, or past its size), and
//     purges of it wait for that trim (a file whose unlink is lost keeps its data);
//   - unjournaled creates take inode numbers from blocks whose reservation is
//     written to the store ahead of use, so a number a client saw is never
//     handed out again after a crash (a client that replays its requests
//     would otherwise reach another file).
//
// The trim takes its snapshot and submits its batch in one synchronous step,
// and the store commits batches in order; so everything journaled after the
// snapshot lands after the trim, and the set can start afresh at the snapshot.

import type { ObjectWrite } from '../store/types'
import { EventType, type Event } from './events'
import type { Namespace } from './namespace'
import type { Ino } from '../common/types'

/** Inode numbers reserved at a time for unjournaled creates. */
export const INO_BLOCK = 4096

interface TrimWrite {
  writes: ObjectWrite[]
  durable: boolean
  resolve: () => void
  reject: (err: Error) => void
}

/** The inodes an event changes, seen before it is applied (the dentries it removes or replaces still point at theirs). */
export function touchedBy (ns: Namespace, ev: Event): Ino[] {
  switch (ev.type) {
    case EventType.Mknod: return [ev.parent, ev.ino]
    case EventType.Link: return [ev.parent, ev.ino]
    case EventType.Unlink: {
      const d = ns.cache.getDentry(ev.parent, ev.name)
      return d ? [ev.parent, d.ino] : [ev.parent]
    }
    case EventType.Rename: {
      const out = [ev.parent, ev.newParent]
      const src = ns.cache.getDentry(ev.parent, ev.name)
      const dst = ns.cache.getDentry(ev.newParent, ev.newName)
      if (src) out.push(src.ino)
      if (dst) out.push(dst.ino)
      return out
    }
    case EventType.SetAttr: case EventType.SetXattr: case EventType.RemoveXattr: case EventType.Purge:
      return [ev.ino]
    default:
      return []
  }
}

/** The directories whose policy decides whether an event is streamed (none: it always is, unless it depends on an unjournaled one). */
export function dirsOf (ev: Event): Ino[] {
  switch (ev.type) {
    case EventType.Mknod: case EventType.Link: case EventType.Unlink: return [ev.parent]
    case EventType.Rename: return ev.parent === ev.newParent ? [ev.parent] : [ev.parent, ev.newParent]
    default: return []
  }
}

export class UnstreamedChanges {
  /** Inodes changed by unjournaled events since the last trim snapshot. */
  private inodes = new Set<Ino>()
  /** Since the last trim snapshot, a change in a streaming subtree was held back from the journal (it depended on unjournaled ones). */
  heldBack = false
  /** Data commits of unstreamed inodes, waiting for the trim that stores them. */
  private writes: TrimWrite[] = []
  /** Inode numbers for unjournaled creates: [next, end) per reserved block, in order. */
  private readonly blocks: Array<{ next: Ino, end: Ino }> = []
  /** Unjournaled events since start-up (status, tests). */
  events = 0

  get empty (): boolean { return this.inodes.size === 0 && this.writes.length === 0 }
  get pendingWrites (): number { return this.writes.length }

  has (ino: Ino): boolean { return this.inodes.has(ino) }

  /** Does any of these inodes carry an unjournaled change? */
  touches (inodes: Ino[]): boolean {
    if (this.inodes.size === 0) return false
    for (const ino of inodes) if (this.inodes.has(ino)) return true
    return false
  }

  /** An event was applied without being journaled. */
  noted (inodes: Ino[]): void {
    for (const ino of inodes) this.inodes.add(ino)
    this.events++
  }

  /** Keep data writes for the trim; resolves once that trim has committed. */
  withTrim (writes: ObjectWrite[], durable: boolean): Promise<void> {
    return new Promise((resolve, reject) => this.writes.push({ writes, durable, resolve, reject }))
  }

  /** The trim takes its snapshot: what it covers from now on is its to store. */
  take (): { inodes: Set<Ino>, heldBack: boolean, writes: TrimWrite[] } {
    const taken = { inodes: this.inodes, heldBack: this.heldBack, writes: this.writes }
    this.inodes = new Set()
    this.heldBack = false
    this.writes = []
    return taken
  }

  /** The trim failed: its changes are unstored again (its data commits fail with it). */
  restore (taken: { inodes: Set<Ino>, heldBack: boolean }): void {
    for (const ino of taken.inodes) this.inodes.add(ino)
    if (taken.heldBack) this.heldBack = true
  }

  /** Is ino set aside for an unjournaled create and not handed out yet? */
  reservedUnused (ino: Ino): boolean {
    for (const b of this.blocks) if (ino >= b.next && ino < b.end) return true
    return false
  }

  /**
   * The next number for an unjournaled create. `reserve` sets a block aside
   * and writes the allocator's new high-water mark to the store; the next
   * block is reserved while half of the current one is left, so its write has
   * long committed when the first number is taken from it.
   */
  allocIno (reserve: () => Ino): Ino {
    while (this.blocks.length > 0 && this.blocks[0].next >= this.blocks[0].end) this.blocks.shift()
    if (this.blocks.length === 0) this.reserveBlock(reserve)
    const b = this.blocks[0]
    if (this.blocks.length === 1 && b.end - b.next <= INO_BLOCK / 2) this.reserveBlock(reserve)
    return b.next++
  }

  private reserveBlock (reserve: () => Ino): void {
    const start = reserve()
    this.blocks.push({ next: start, end: start + INO_BLOCK })
  }

  /** Data writes the trim takes with it, and whether any asked for stable storage. */
  static batchOf (writes: TrimWrite[]): { writes: ObjectWrite[], durable: boolean } {
    return { writes: writes.flatMap(w => w.writes), durable: writes.some(w => w.durable) }
  }
}
