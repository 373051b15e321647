// The MDS's namespace state: the metadata cache plus the small tables that
// travel with it (inode allocator, stray set). Events are applied to it by
// apply.ts; trims write its dirty parts to the store (trim.ts).

import type { Inode } from './inode'
import type { MetadataCache } from './cache'
import type { Ino } from './types'

/** Hands out inode numbers; the high-water mark survives restarts (it is written at trim). */
export class InoTable {
  dirty = false
  constructor (public next: Ino) {}

  alloc (): Ino {
    this.dirty = true
    return this.next++
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

export interface NamespaceHooks {
  /** An inode lost its last link (it is a stray now). */
  linksGone (inode: Inode): void
}

export class Namespace {
  constructor (
    readonly cache: MetadataCache,
    readonly inotable: InoTable,
    readonly strays: StraySet,
    readonly hooks: NamespaceHooks
  ) {}
}
