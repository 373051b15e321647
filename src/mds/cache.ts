// The MDS's bounded cache of inodes and dentries over the metadata store.
//
// The authoritative namespace is "metadata store + untrimmed journal". Every
// change is applied here first and marked dirty; dirty entries stay pinned in
// memory until a trim has written them to the store (flushing → committed).
// Clean entries are evicted, so memory stays bounded by the limits plus
// whatever is dirty between trims (which the MDS bounds by trimming when the
// dirty count passes a threshold). A cache miss reads the store, which is then
// up to date for that entry, because nothing newer exists outside the pinned
// set.
//
// Shaped for the create path, which touches a parent inode, a new inode and a
// new dentry: dentries live in per-directory maps keyed by name (no key
// strings to build), and dirty state is a flag on the entry plus an
// append-only list (no large sets to insert into — a big Set or Map insert
// costs about a microsecond here, several times the rest of a create).
//
// Eviction is second-chance (CLOCK): a hit only sets the entry's reference
// bit; the scan gives referenced entries another round. Moving keys to the
// end on every hit would be plain LRU, but V8's ordered hash maps keep deleted
// entries in the bucket chain until the next rehash, so re-inserting a hot
// key (a parent directory) on every operation makes it slower and slower.

import { u64Key } from '../common/codec'
import type { LocalReads } from '../store/types'
import { decodeDentry } from './dentry'
import { decodeInode, type Inode } from './inode'
import { dirObject, inodeShardObject } from './layout'
import { METADATA_POOL } from '../common/layout'
import type { Ino } from '../common/types'

/** Entry state bits. */
const DIRTY = 1
const FLUSHING = 2

export interface Dentry {
  parent: Ino
  name: string
  /** 0: known not to exist (a negative entry). */
  ino: Ino
  /** S_IF* type bits. */
  type: number
  /** Used since the eviction scan last passed (second chance). */
  ref?: boolean
  /** DIRTY / FLUSHING bits: pinned while non-zero. */
  state?: number
  /** The entry that replaced this one while it was in a state list. */
  moved?: Dentry
}

interface InodeEntry {
  ino: Ino
  inode: Inode | null
  ref: boolean
  state: number
}

interface DirEntries {
  dentries: Map<string, Dentry>
  /** Every dentry of the directory is cached: a miss means "absent" without a store read. */
  complete: boolean
  /** Dentries not yet in the store (DIRTY or FLUSHING). */
  unstored: number
}

export interface CacheLimits {
  /** Clean inodes kept in memory at most. */
  inodes: number
  /** Clean dentries (positive and negative) kept in memory at most. */
  dentries: number
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = { inodes: 50_000, dentries: 100_000 }

/**
 * What a trim writes: the state of every entry changed since the previous
 * trim. It holds the cache's own entries, not copies (a trim can hold a
 * million of them), so it must be used before anything changes again: the
 * trim encodes it at once. (Dentries are replaced, never changed, on a
 * change; inodes are changed in place.)
 */
export interface DirtySnapshot {
  inodes: ReadonlyArray<{ readonly ino: Ino, readonly inode: Inode | null }>
  dentries: Map<Ino, Dentry[]>
}

export class MetadataCache {
  private readonly inodes = new Map<Ino, InodeEntry>()
  private readonly dirs = new Map<Ino, DirEntries>()
  private dentryCount = 0

  private dirtyInodes: InodeEntry[] = []
  private dirtyDentries: Dentry[] = []
  private flushingInodes: InodeEntry[] = []
  private flushingDentries: Dentry[] = []

  /** Store reads caused by misses, for benchmarks and tests. */
  storeReads = 0
  private evictScheduled = false

  constructor (private readonly reads: LocalReads, private readonly limits: CacheLimits = DEFAULT_CACHE_LIMITS) {}

  get dirtyCount (): number {
    return this.dirtyInodes.length + this.dirtyDentries.length
  }

  get isFlushing (): boolean {
    return this.flushingInodes.length > 0 || this.flushingDentries.length > 0
  }

  get size (): { inodes: number, dentries: number } {
    return { inodes: this.inodes.size, dentries: this.dentryCount }
  }

  // ---- inodes ----

  /** The inode, or null when it does not exist. */
  getInode (ino: Ino): Inode | null {
    const hit = this.inodes.get(ino)
    if (hit !== undefined) {
      hit.ref = true
      return hit.inode
    }
    this.storeReads++
    const rows = this.reads.omapGetSync(METADATA_POOL, inodeShardObject(ino), [u64Key(ino)])
    const inode = rows.length > 0 ? decodeInode(ino, rows[0].value) : null
    this.inodes.set(ino, { ino, inode, ref: false, state: 0 })
    this.scheduleEviction()
    return inode
  }

  private markInode (e: InodeEntry): void {
    if ((e.state & DIRTY) === 0) {
      e.state |= DIRTY
      this.dirtyInodes.push(e)
    }
  }

  /** Record a new or changed inode (the object itself may have been modified in place). */
  dirtyInode (inode: Inode): void {
    let e = this.inodes.get(inode.ino)
    if (e) {
      e.inode = inode
      e.ref = true
    } else {
      e = { ino: inode.ino, inode, ref: false, state: 0 }
      this.inodes.set(inode.ino, e)
    }
    this.markInode(e)
  }

  removeInode (ino: Ino): void {
    let e = this.inodes.get(ino)
    if (e) e.inode = null
    else {
      e = { ino, inode: null, ref: false, state: 0 }
      this.inodes.set(ino, e)
    }
    this.markInode(e)
    const d = this.dirs.get(ino)
    if (d) d.complete = false
  }

  // ---- dentries ----

  private dir (parent: Ino): DirEntries {
    let d = this.dirs.get(parent)
    if (!d) {
      d = { dentries: new Map(), complete: false, unstored: 0 }
      this.dirs.set(parent, d)
    }
    return d
  }

  getDentry (parent: Ino, name: string): Dentry | null {
    const dir = this.dirs.get(parent)
    const hit = dir?.dentries.get(name)
    if (hit !== undefined) {
      hit.ref = true
      return hit.ino === 0 ? null : hit
    }
    // In a complete directory a miss means "absent"; no need to remember it.
    if (dir?.complete) return null
    const d: Dentry = { parent, name, ino: 0, type: 0, ref: false, state: 0 }
    this.storeReads++
    const rows = this.reads.omapGetSync(METADATA_POOL, dirObject(parent), [Buffer.from(name, 'latin1')])
    if (rows.length > 0) {
      const v = decodeDentry(rows[0].value)
      d.ino = v.ino
      d.type = v.type
    }
    this.dir(parent).dentries.set(name, d)
    this.dentryCount++
    this.scheduleEviction()
    return d.ino === 0 ? null : d
  }

  setDentry (parent: Ino, name: string, ino: Ino, type: number): void {
    this.putDentry(parent, name, ino, type)
  }

  removeDentry (parent: Ino, name: string): void {
    this.putDentry(parent, name, 0, 0)
  }

  private putDentry (parent: Ino, name: string, ino: Ino, type: number): void {
    const dir = this.dir(parent)
    const old = dir.dentries.get(name)
    // A new object, never an update in place: callers hold dentries they got
    // from getDentry across changes (a rename reads the source after removing it).
    const state = old?.state ?? 0
    const d: Dentry = { parent, name, ino, type, ref: old !== undefined, state }
    dir.dentries.set(name, d)
    if (!old) this.dentryCount++
    else if (state !== 0) old.moved = d
    if ((state & DIRTY) === 0) {
      if (state === 0) dir.unstored++
      d.state = state | DIRTY
      this.dirtyDentries.push(d)
    }
  }

  /**
   * The live entry for a dentry in one of the state lists (which may hold an
   * older object for the same name): listed entries are never evicted, and
   * every replacement of one leaves a pointer to its successor.
   */
  private live (d: Dentry): Dentry {
    while (d.moved !== undefined) d = d.moved
    return d
  }

  /** A directory created here starts complete: all of its (zero) entries are cached. */
  markComplete (dir: Ino): void {
    this.dir(dir).complete = true
  }

  /** True while some dentry of dir is not yet in the store. */
  hasUnstoredDentries (dir: Ino): boolean {
    return (this.dirs.get(dir)?.unstored ?? 0) > 0
  }

  /** Dentries of dir not yet in the store (created, changed or removed since the last committed trim). */
  unstoredDentries (dir: Ino): Dentry[] {
    const d = this.dirs.get(dir)
    if (!d || d.unstored === 0) return []
    const out: Dentry[] = []
    for (const e of d.dentries.values()) if (e.state) out.push(e)
    return out
  }

  /** Inodes not yet in the store, with their state (null: removed). */
  unstoredInodes (): Array<[Ino, Inode | null]> {
    const out: Array<[Ino, Inode | null]> = []
    const seen = new Set<Ino>()
    for (const list of [this.dirtyInodes, this.flushingInodes]) {
      for (const e of list) {
        if (seen.has(e.ino)) continue
        seen.add(e.ino)
        out.push([e.ino, e.inode])
      }
    }
    return out
  }

  // ---- trim support ----

  /**
   * Move everything dirty to "flushing" and return its current state, for the
   * trim batch. Only one snapshot may be in flight.
   */
  takeDirty (): DirtySnapshot {
    if (this.isFlushing) throw new Error('a trim is already in flight')
    const inodes = this.dirtyInodes
    for (const e of inodes) e.state = (e.state & ~DIRTY) | FLUSHING
    const dentries = new Map<Ino, Dentry[]>()
    const flushing: Dentry[] = []
    for (const old of this.dirtyDentries) {
      const d = this.live(old)
      if (((d.state ?? 0) & DIRTY) === 0) continue // listed twice under two objects: taken already
      d.state = ((d.state ?? 0) & ~DIRTY) | FLUSHING
      flushing.push(d)
      let list = dentries.get(d.parent)
      if (!list) {
        list = []
        dentries.set(d.parent, list)
      }
      list.push(d)
    }
    this.flushingInodes = this.dirtyInodes
    this.flushingDentries = flushing
    this.dirtyInodes = []
    this.dirtyDentries = []
    return { inodes, dentries }
  }

  /** The trim batch committed: its entries are clean now (unless dirtied again since). */
  flushDone (): void {
    for (const e of this.flushingInodes) e.state &= ~FLUSHING
    for (const old of this.flushingDentries) {
      const d = this.live(old)
      d.state = (d.state ?? 0) & ~FLUSHING
      if (d.state === 0) {
        const dir = this.dirs.get(d.parent)
        if (dir) dir.unstored--
      }
    }
    this.flushingInodes = []
    this.flushingDentries = []
    this.scheduleEviction()
  }

  /** The trim batch failed: its entries are dirty again. */
  flushFailed (): void {
    for (const e of this.flushingInodes) {
      e.state &= ~FLUSHING
      this.markInode(e)
    }
    for (const old of this.flushingDentries) {
      const d = this.live(old)
      const state = (d.state ?? 0) & ~FLUSHING
      d.state = state | DIRTY
      if ((state & DIRTY) === 0) this.dirtyDentries.push(d)
    }
    this.flushingInodes = []
    this.flushingDentries = []
  }

  // ---- eviction ----

  /**
   * Evict once the current operation is over. An operation holds references
   * to the inodes it works on; evicting one of them half-way would let a later
   * read load a second copy of the same inode, and one of the two updates
   * would be lost. Operations are synchronous, so a microtask runs after them.
   */
  private scheduleEviction (): void {
    if (this.evictScheduled) return
    if (!this.overInodes() && !this.overDentries()) return
    this.evictScheduled = true
    queueMicrotask(() => {
      this.evictScheduled = false
      this.evictInodes()
      this.evictDentries()
    })
  }

  // Pinned entries cannot go, and a merge of a big client journal pins a
  // million of them until its trim commits: a limit on all entries would
  // start a full scan after every store read while they wait. So clean
  // entries are evicted down to the limit less what is pinned, but never
  // below half the limit: the cache holds at most the limit while up to half
  // of it is pinned (the steady state of a create-heavy mount, whose memory
  // must stay bounded), and pinned + half the limit beyond. The state lists
  // may name an entry twice (dirty again while flushing), so the pinned count
  // is an upper bound.

  private static cleanRoom (limit: number, pinned: number): number {
    return Math.max(limit - pinned, limit >> 1)
  }

  private overInodes (): boolean {
    const pinned = this.dirtyInodes.length + this.flushingInodes.length
    return this.inodes.size - pinned > MetadataCache.cleanRoom(this.limits.inodes, pinned)
  }

  private overDentries (): boolean {
    const pinned = this.dirtyDentries.length + this.flushingDentries.length
    return this.dentryCount - pinned > MetadataCache.cleanRoom(this.limits.dentries, pinned)
  }

  // Scans start at the oldest entry. Recently used entries go back to the
  // young end and lose their reference bit; pinned ones are passed over where
  // they are (moving each of a million pinned entries costs more than the
  // eviction is worth); the rest go. The scan is bounded to one pass.

  private evictInodes (): void {
    let budget = this.inodes.size
    for (const [ino, e] of this.inodes) {
      if (!this.overInodes() || budget-- <= 0) return
      if (e.state !== 0) continue
      this.inodes.delete(ino)
      if (e.ref) {
        e.ref = false
        this.inodes.set(ino, e)
      }
    }
  }

  private evictDentries (): void {
    let budget = this.dentryCount
    for (const [parent, dir] of this.dirs) {
      if (!this.overDentries() || budget <= 0) return
      for (const [name, d] of dir.dentries) {
        if (!this.overDentries() || budget-- <= 0) break
        if (d.state) continue
        if (d.ref) {
          d.ref = false
          continue
        }
        dir.dentries.delete(name)
        this.dentryCount--
        // Forgetting a positive entry means a miss in this directory must read the store again.
        if (d.ino !== 0) dir.complete = false
      }
      if (dir.dentries.size === 0 && dir.unstored === 0) this.dirs.delete(parent)
      else {
        // The directory goes to the young end: the next scan starts with others.
        this.dirs.delete(parent)
        this.dirs.set(parent, dir)
      }
    }
  }
}
