// The MDS's bounded cache of inodes and dentries over the metadata store.
//
// The authoritative namespace is "metadata store + untrimmed journal". Every
// change is applied here first and marked dirty; dirty entries stay pinned in
// memory until a trim has written them to the store (flushing → committed).
// Clean entries are evicted in LRU order, so memory stays bounded by the limits
// plus whatever is dirty between trims (which the MDS bounds by trimming when
// the dirty count passes a threshold). A cache miss reads the store, which is
// then up to date for that entry, because nothing newer exists outside the
// pinned set.
//
// Eviction is second-chance (CLOCK) over the Map's insertion order: a hit
// only sets the entry's reference bit. Moving keys to the end on every hit
// would be plain LRU, but V8's ordered hash maps keep deleted entries in the
// bucket chain until the next rehash, so re-inserting a hot key (a parent
// directory) on every operation makes its lookups slower and slower.

import { u64Key } from '../common/codec'
import type { LocalReads } from '../store/types'
import { decodeDentry } from './dentry'
import { decodeInode, type Inode } from './inode'
import { dirObject, inodeShardObject, METADATA_POOL } from './layout'
import type { Ino } from './types'

export interface Dentry {
  parent: Ino
  name: string
  /** 0: known not to exist (a negative entry). */
  ino: Ino
  /** S_IF* type bits. */
  type: number
  /** Used since the eviction scan last passed (second chance). */
  ref?: boolean
}

interface InodeEntry {
  inode: Inode | null
  ref: boolean
}

export interface CacheLimits {
  /** Clean inodes kept in memory at most. */
  inodes: number
  /** Clean dentries (positive and negative) kept in memory at most. */
  dentries: number
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = { inodes: 100_000, dentries: 200_000 }

/** What a trim writes: the state of every entry changed since the previous trim. */
export interface DirtySnapshot {
  inodes: Array<[Ino, Inode | null]>
  dentries: Map<Ino, Dentry[]>
}

function dentryKey (parent: Ino, name: string): string {
  return parent + '/' + name
}

export class MetadataCache {
  private readonly inodes = new Map<Ino, InodeEntry>()
  private readonly dentries = new Map<string, Dentry>()
  /** Directories whose every dentry is cached: a miss there means "absent" without a store read. */
  private readonly completeDirs = new Set<Ino>()

  private dirtyInodes = new Set<Ino>()
  private dirtyDentries = new Map<Ino, Set<string>>()
  private dirtyDentryCount = 0
  private flushingInodes = new Set<Ino>()
  private flushingDentries = new Map<Ino, Set<string>>()

  /** Store reads caused by misses, for benchmarks and tests. */
  storeReads = 0
  private evictScheduled = false

  constructor (private readonly reads: LocalReads, private readonly limits: CacheLimits = DEFAULT_CACHE_LIMITS) {}

  get dirtyCount (): number {
    return this.dirtyInodes.size + this.dirtyDentryCount
  }

  get isFlushing (): boolean {
    return this.flushingInodes.size > 0 || this.flushingDentries.size > 0
  }

  get size (): { inodes: number, dentries: number } {
    return { inodes: this.inodes.size, dentries: this.dentries.size }
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
    this.inodes.set(ino, { inode, ref: false })
    this.scheduleEviction()
    return inode
  }

  /** Record a new or changed inode (the object itself may have been modified in place). */
  dirtyInode (inode: Inode): void {
    const e = this.inodes.get(inode.ino)
    if (e) {
      e.inode = inode
      e.ref = true
    } else {
      this.inodes.set(inode.ino, { inode, ref: false })
    }
    this.dirtyInodes.add(inode.ino)
  }

  removeInode (ino: Ino): void {
    const e = this.inodes.get(ino)
    if (e) e.inode = null
    else this.inodes.set(ino, { inode: null, ref: false })
    this.dirtyInodes.add(ino)
    this.completeDirs.delete(ino)
  }

  // ---- dentries ----

  getDentry (parent: Ino, name: string): Dentry | null {
    const key = dentryKey(parent, name)
    const hit = this.dentries.get(key)
    if (hit !== undefined) {
      hit.ref = true
      return hit.ino === 0 ? null : hit
    }
    // In a complete directory a miss means "absent"; no need to remember it.
    if (this.completeDirs.has(parent)) return null
    let d: Dentry = { parent, name, ino: 0, type: 0 }
    this.storeReads++
    const rows = this.reads.omapGetSync(METADATA_POOL, dirObject(parent), [Buffer.from(name, 'latin1')])
    if (rows.length > 0) {
      const v = decodeDentry(rows[0].value)
      d = { parent, name, ino: v.ino, type: v.type }
    }
    this.dentries.set(key, d)
    this.scheduleEviction()
    return d.ino === 0 ? null : d
  }

  setDentry (parent: Ino, name: string, ino: Ino, type: number): void {
    this.putDentry({ parent, name, ino, type })
  }

  removeDentry (parent: Ino, name: string): void {
    this.putDentry({ parent, name, ino: 0, type: 0 })
  }

  private putDentry (d: Dentry): void {
    const key = dentryKey(d.parent, d.name)
    // Replacing the value of an existing key keeps its place: no delete/insert churn.
    this.dentries.set(key, d)
    let names = this.dirtyDentries.get(d.parent)
    if (!names) {
      names = new Set()
      this.dirtyDentries.set(d.parent, names)
    }
    if (!names.has(d.name)) {
      names.add(d.name)
      this.dirtyDentryCount++
    }
  }

  /** A directory created here starts complete: all of its (zero) entries are cached. */
  markComplete (dir: Ino): void {
    this.completeDirs.add(dir)
  }

  /** True while some dentry of dir is not yet in the store. */
  hasUnstoredDentries (dir: Ino): boolean {
    return this.dirtyDentries.has(dir) || this.flushingDentries.has(dir)
  }

  /** Dentries of dir not yet in the store (created, changed or removed since the last committed trim). */
  unstoredDentries (dir: Ino): Dentry[] {
    const out: Dentry[] = []
    const seen = new Set<string>()
    for (const names of [this.dirtyDentries.get(dir), this.flushingDentries.get(dir)]) {
      if (!names) continue
      for (const name of names) {
        if (seen.has(name)) continue
        seen.add(name)
        const d = this.dentries.get(dentryKey(dir, name))
        if (d) out.push(d)
      }
    }
    return out
  }

  /** Inodes not yet in the store, with their state (null: removed). */
  unstoredInodes (): Array<[Ino, Inode | null]> {
    const out: Array<[Ino, Inode | null]> = []
    for (const set of [this.dirtyInodes, this.flushingInodes]) {
      for (const ino of set) {
        const v = this.inodes.get(ino)
        if (v !== undefined) out.push([ino, v.inode])
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
    const inodes: Array<[Ino, Inode | null]> = []
    for (const ino of this.dirtyInodes) {
      const v = this.inodes.get(ino)
      if (v === undefined) throw new Error(`dirty inode ${ino} is not cached`)
      inodes.push([ino, v.inode])
    }
    const dentries = new Map<Ino, Dentry[]>()
    for (const [parent, names] of this.dirtyDentries) {
      const list: Dentry[] = []
      for (const name of names) {
        const d = this.dentries.get(dentryKey(parent, name))
        if (d === undefined) throw new Error(`dirty dentry ${parent}/${name} is not cached`)
        list.push(d)
      }
      dentries.set(parent, list)
    }
    this.flushingInodes = this.dirtyInodes
    this.flushingDentries = this.dirtyDentries
    this.dirtyInodes = new Set()
    this.dirtyDentries = new Map()
    this.dirtyDentryCount = 0
    return { inodes, dentries }
  }

  /** The trim batch committed: its entries are clean now (unless dirtied again since). */
  flushDone (): void {
    this.flushingInodes = new Set()
    this.flushingDentries = new Map()
    this.scheduleEviction()
  }

  /** The trim batch failed: its entries are dirty again. */
  flushFailed (): void {
    for (const ino of this.flushingInodes) this.dirtyInodes.add(ino)
    for (const [parent, names] of this.flushingDentries) {
      for (const name of names) {
        const d = this.dentries.get(dentryKey(parent, name))
        if (d) this.putDentryDirtyOnly(d)
      }
    }
    this.flushingInodes = new Set()
    this.flushingDentries = new Map()
  }

  private putDentryDirtyOnly (d: Dentry): void {
    let names = this.dirtyDentries.get(d.parent)
    if (!names) {
      names = new Set()
      this.dirtyDentries.set(d.parent, names)
    }
    if (!names.has(d.name)) {
      names.add(d.name)
      this.dirtyDentryCount++
    }
  }

  // ---- eviction ----

  private inodePinned (ino: Ino): boolean {
    return this.dirtyInodes.has(ino) || this.flushingInodes.has(ino)
  }

  private dentryPinned (d: Dentry): boolean {
    return this.dirtyDentries.get(d.parent)?.has(d.name) === true ||
      this.flushingDentries.get(d.parent)?.has(d.name) === true
  }

  /**
   * Evict once the current operation is over. An operation holds references
   * to the inodes it works on; evicting one of them half-way would let a later
   * read load a second copy of the same inode, and one of the two updates
   * would be lost. Operations are synchronous, so a microtask runs after them.
   */
  private scheduleEviction (): void {
    if (this.evictScheduled) return
    if (this.inodes.size <= this.limits.inodes && this.dentries.size <= this.limits.dentries) return
    this.evictScheduled = true
    queueMicrotask(() => {
      this.evictScheduled = false
      this.evictInodes()
      this.evictDentries()
    })
  }

  // Scans start at the oldest entry. Pinned or recently used entries go back
  // to the young end (used ones lose their reference bit); the rest go. The
  // scan is bounded, so a cache full of pinned entries costs one pass.

  private evictInodes (): void {
    let budget = this.inodes.size
    for (const [ino, e] of this.inodes) {
      if (this.inodes.size <= this.limits.inodes || budget-- <= 0) return
      this.inodes.delete(ino)
      if (e.ref || this.inodePinned(ino)) {
        e.ref = false
        this.inodes.set(ino, e)
      }
    }
  }

  private evictDentries (): void {
    let budget = this.dentries.size
    for (const [key, d] of this.dentries) {
      if (this.dentries.size <= this.limits.dentries || budget-- <= 0) return
      this.dentries.delete(key)
      if (d.ref || this.dentryPinned(d)) {
        d.ref = false
        this.dentries.set(key, d)
      } else if (d.ino !== 0) {
        // Forgetting a positive entry means a miss in this directory must read the store again.
        this.completeDirs.delete(d.parent)
      }
    }
  }
}
