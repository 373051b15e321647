// The metadata server (one rank): owns the namespace.
//
// Every operation is synchronous up to the journal: it loads what it needs
// into the cache (store reads are local and synchronous), validates, builds an
// event, applies it (apply.ts) and appends it to the journal. So operations
// never interleave half-way, and the reply can go out before the journal
// commits (like CephFS's early reply); sync() waits for "safe".

import { fsError } from '../common/errors'
import { Health, type HealthCheck } from '../common/health'
import { METADATA_POOL } from '../common/layout'
import { compareTs, now, type Timespec } from '../common/time'
import {
  type Attr, type Caller, type DirEntry, type FsStats, type Ino, isDir, isReg, NAME_MAX,
  RENAME_EXCHANGE, RENAME_NOREPLACE, ROOT_INO, S_IFCHR, S_IFBLK, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
  S_IFSOCK, S_ISGID, type SetAttr, SYMLINK_MAX, XATTR_CREATE, XATTR_REPLACE
} from '../common/types'
import type { LocalStore, ObjectWrite } from '../store/types'
import { applyEvent } from './apply'
import { readAtimeEvent, setAttrEvent } from './attrs'
import { BlockCounter } from './blocks'
import { DEFAULT_CACHE_LIMITS, MetadataCache, type CacheLimits } from './cache'
import { checkName, checkNameLength, checkXattrName, checkXattrValue } from './checks'
import { describeEvent, EventType, SA, type Event, type SetAttrEvent } from './events'
import type { ApplyResult, ClaimInfo, MdsStats, MetadataServer, RequestContext, SafetyWatcher, SubtreeSnapshot } from './index'
import { attrOf, type Inode, UNKNOWN_BLOCKS } from './inode'
import type { Journal } from './journal'
import { INOTABLE_OBJECT } from './layout'
import { mergedListing, storedListing } from './listing'
import { applyClientEvents, type MergeHost, mergeSegments } from './merge'
import { type Claim, InoTable, Namespace, StraySet } from './namespace'
import { Purger } from './purge'
import { exportSubtree } from './subtree'
import { encodeInoTable } from './trim'
import { Trimmer } from './trimmer'
import { dirsOf, INO_BLOCK, touchedBy, UnstreamedChanges } from './unstreamed'

/** Health check of storing the inode table ahead of unjournaled creates. */
const INOTABLE_CHECK = 'mds.inotable'
/** Health check of taking back what a failed data commit set. */
const UNDO_CHECK = 'mds.datacommit'

export interface MdsOptions {
  cache: CacheLimits
  /** Trim once this many cache entries are dirty. */
  trimDirtyEntries: number
  /** Trim at least this often while anything is dirty. */
  trimIntervalMs: number
  /** Health of background work (trims, purges): listeners hear of failures and recoveries. */
  health?: Health
  /**
   * false: never write to the metadata store (a decoupled client's private
   * copy of its subtree: everything stays in memory and in the journal).
   */
  trimming?: boolean
}

export const DEFAULT_MDS_OPTIONS: MdsOptions = {
  cache: DEFAULT_CACHE_LIMITS,
  trimDirtyEntries: 20_000,
  trimIntervalMs: 1000
}

/** Rounds of trim-then-purge a close does at most (purges can wait for a trim, and a trim for nothing). */
const CLOSE_PURGE_ROUNDS = 10
/** Objects listed per store read while purging a file's data. */
const PURGE_LIST_LIMIT = 512
/** First retry of a failed trim or purge (ms), doubling up to the max. */
const RETRY_FIRST_MS = 1000
const RETRY_MAX_MS = 30_000

export class Mds implements MetadataServer {
  readonly ns: Namespace
  private readonly purger: Purger
  private readonly trimmer: Trimmer
  readonly health: Health
  private closed = false
  /** Problems met while replaying the journal at start-up (fsck reports them). */
  private readonly problems: string[] = []
  /**
   * Cudele's stream mechanism per subtree: is a change in this directory
   * journaled? null: everywhere. Changes that are not wait in memory for the
   * next trim (unstreamed.ts says how the namespace stays consistent).
   */
  private stream: ((dir: Ino) => boolean) | null = null
  readonly unstreamed = new UnstreamedChanges()
  /** Keeps each file's st_blocks as its data commits change it. */
  private readonly blockCounter: BlockCounter

  constructor (
    readonly store: LocalStore,
    readonly journal: Journal,
    nextIno: Ino,
    strays: Iterable<Ino>,
    options: MdsOptions = DEFAULT_MDS_OPTIONS,
    private readonly readOnly = false
  ) {
    this.blockCounter = new BlockCounter(store)
    this.health = options.health ?? new Health()
    const cache = new MetadataCache(store, options.cache)
    this.ns = new Namespace(cache, new InoTable(nextIno), new StraySet(), {
      linksGone: inode => this.purger.linksGone(inode.ino)
    })
    const background = !readOnly && options.trimming !== false
    // A private copy (no trimming) leaves purges to the MDS its journal is merged into.
    this.purger = new Purger(this, { listLimit: PURGE_LIST_LIMIT, retryFirstMs: RETRY_FIRST_MS, retryMaxMs: RETRY_MAX_MS }, this.health,
      () => background && !this.closed, ino => this.mutate({ type: EventType.Purge, ino }, undefined))
    this.trimmer = new Trimmer(this, { dirtyEntries: options.trimDirtyEntries, intervalMs: options.trimIntervalMs, retryFirstMs: RETRY_FIRST_MS, retryMaxMs: RETRY_MAX_MS },
      this.health, () => this.purger.trimmed())
    this.trimming = background
    for (const ino of strays) {
      this.ns.strays.members.add(ino)
      this.purger.linksGone(ino)
    }
    this.mergeHost = {
      ns: this.ns,
      journal,
      marker: req => { this.appendMarker(req) },
      changed: () => { if (this.trimming) this.trimmer.maybe() }
    }
  }

  /** Does this MDS write to the store in the background (not read-only, not a private copy)? */
  private readonly trimming: boolean
  private readonly mergeHost: MergeHost

  /** Replay journal events at start-up (the same path as live operations). */
  replay (seq: number, events: Event[]): void {
    for (const ev of events) {
      if (!applyEvent(this.ns, ev)) this.problems.push(`journal object ${seq}: ${describeEvent(ev)} could not be applied`)
    }
  }

  /** Begin background work: purges left over from before, periodic trims. */
  start (opts: { purgeDelayMs?: number } = {}): void {
    if (!this.trimming) return
    // Clients reconnecting after a restart reclaim their open files before unlinked ones are purged.
    if (opts.purgeDelayMs) this.purger.holdFor(opts.purgeDelayMs)
    this.trimmer.start()
    this.purger.kick()
  }

  private writable (): void {
    if (this.readOnly) throw fsError('EROFS', 'the store is open read-only')
  }

  // ---- helpers ----

  private inode (ino: Ino): Inode {
    const inode = this.ns.cache.getInode(ino)
    if (!inode) throw fsError('ENOENT', `inode ${ino} does not exist`)
    return inode
  }

  private dir (ino: Ino): Inode {
    const inode = this.inode(ino)
    if (!isDir(inode.mode)) throw fsError('ENOTDIR', `inode ${ino} is not a directory`)
    return inode
  }

  /** A directory that can still get entries (not removed). */
  private liveDir (ino: Ino): Inode {
    const d = this.dir(ino)
    if (d.nlink === 0) throw fsError('ENOENT', `directory ${ino} was removed`)
    return d
  }

  /**
   * Whether an event goes to the journal: null if it does; otherwise the
   * inodes it touches (its subtree does not stream, or it depends on a change
   * that was not journaled).
   */
  private unstreamedTouch (ev: Event): Ino[] | null {
    const stream = this.stream
    if (stream === null && this.unstreamed.empty) return null
    const dirs = dirsOf(ev)
    const byPolicy = stream !== null && dirs.some(d => !stream(d))
    if (!byPolicy && this.unstreamed.empty) return null
    const touched = touchedBy(this.ns, ev)
    if (byPolicy) return touched
    if (!this.unstreamed.touches(touched)) return null
    this.heldBack(dirs.length > 0)
    return touched
  }

  /**
   * A change that a streaming subtree would journal depends on one that was
   * not: it is held back from the journal too, so a trim must come soon (and
   * fsync waits for it). For a namespace change the trim starts at once.
   */
  private heldBack (namespaceChange: boolean): void {
    this.unstreamed.heldBack = true
    if (namespaceChange && this.trimming) this.trimmer.soon()
  }

  private mutate (ev: Event, req: RequestContext | undefined, unstreamed: Ino[] | null = this.unstreamedTouch(ev)): void {
    this.writable()
    if (this.closed) throw fsError('EIO', 'the metadata server is shut down')
    if (!applyEvent(this.ns, ev)) throw fsError('EIO', `${describeEvent(ev)} could not be applied`)
    if (unstreamed) {
      this.unstreamed.noted(unstreamed)
      // The record that the request was done reaches the store with the same trim as its changes.
      if (req && !req.unstored) {
        req.unstored = true
        this.ns.completed.add(req.client, req.tid)
      }
    } else if (req && !req.journaled) {
      this.appendMarker(req)
    }
    if (!unstreamed) this.journal.append(ev)
    if (this.trimming) this.trimmer.maybe()
  }

  /** The Request marker that precedes a request's first journaled event. */
  private appendMarker (req: RequestContext): Event {
    req.journaled = true
    const marker: Event = { type: EventType.Request, client: req.client, tid: req.tid }
    applyEvent(this.ns, marker)
    this.journal.append(marker)
    return marker
  }

  /** Set a block of inode numbers aside for unjournaled creates; its high-water mark goes to the store now. */
  private reserveInos (): Ino {
    const start = this.ns.inotable.reserve(INO_BLOCK)
    this.writeInoTable()
    return start
  }

  /**
   * The high-water mark of inode numbers, stored now (unjournaled creates
   * take numbers past it, and a crash must not hand them out again). If the
   * write fails, the next trim writes the table too.
   */
  private writeInoTable (): void {
    const data = encodeInoTable(this.ns.inotable.next)
    this.store.submit([{ pool: METADATA_POOL, name: INOTABLE_OBJECT, ops: [{ op: 'writeFull', data }] }], { durable: false }).then(
      () => this.health.ok(INOTABLE_CHECK),
      (err: Error) => {
        this.ns.inotable.dirty = true
        this.health.failed(INOTABLE_CHECK, new Error(`storing the inode table failed (the next trim stores it): ${err.message}`))
      })
  }

  /** The inode number a replayed create asked for, if it is free; null: allocate one. */
  private takeReplayIno (req: RequestContext | undefined, unstreamed: boolean): Ino | null {
    const ino = req?.replayIno ?? 0
    if (ino === 0) return null
    if (!Number.isSafeInteger(ino) || ino <= ROOT_INO) return null
    if (this.ns.cache.getInode(ino) || this.ns.claims.rangeOf(ino) || this.unstreamed.reservedUnused(ino)) return null
    if (ino >= this.ns.inotable.next) {
      this.ns.inotable.bump(ino)
      if (unstreamed) this.writeInoTable()
    }
    return ino
  }

  // ---- reads ----

  lookup (parent: Ino, name: string): Attr {
    const dir = this.dir(parent)
    if (name === '..') return attrOf(this.inode(dir.parent))
    checkNameLength(name)
    const d = this.ns.cache.getDentry(parent, name)
    if (!d) throw fsError('ENOENT', `no entry ${JSON.stringify(name)} in directory ${parent}`)
    return attrOf(this.inode(d.ino))
  }

  /** Like lookup, but null instead of ENOENT (cheap negative answers for the FUSE adapter). */
  lookupOrNull (parent: Ino, name: string): Attr | null {
    const dir = this.dir(parent)
    // The kernel resolves ".." itself; this answers readdir's ".." entry (and NFS-export lookups).
    if (name === '..') return attrOf(this.inode(dir.parent))
    checkNameLength(name)
    const d = this.ns.cache.getDentry(parent, name)
    return d ? attrOf(this.inode(d.ino)) : null
  }

  getattr (ino: Ino): Attr {
    return attrOf(this.inode(ino))
  }

  statOrNull (ino: Ino): Attr | null {
    const inode = this.ns.cache.getInode(ino)
    return inode ? attrOf(inode) : null
  }

  parentOrNull (ino: Ino): Ino | null {
    const inode = this.ns.cache.getInode(ino)
    return inode && isDir(inode.mode) ? inode.parent : null
  }

  /** A directory's parent (the root is its own parent). */
  parentOf (dir: Ino): Ino {
    return this.dir(dir).parent
  }

  readlink (ino: Ino): string {
    const inode = this.inode(ino)
    if ((inode.mode & S_IFMT) !== S_IFLNK) throw fsError('EINVAL', `inode ${ino} is not a symbolic link`)
    return inode.target
  }

  async readdir (ino: Ino, after: string | null, limit: number): Promise<DirEntry[]> {
    this.dir(ino)
    // The listing reads the store; entries changed since the last trim must get there first.
    if (this.ns.cache.hasUnstoredDentries(ino) && this.trimming) await this.trim()
    return this.listDir(ino, after, limit)
  }

  /** A page of a directory's entries in name order, without trimming first (unstored changes merged in). */
  listDir (ino: Ino, after: string | null, limit: number): DirEntry[] {
    if (this.ns.cache.hasUnstoredDentries(ino)) return mergedListing(this.store, this.ns.cache, ino, after, limit)
    return storedListing(this.store, ino, after, limit)
  }

  getxattr (ino: Ino, name: string): Buffer {
    const inode = this.inode(ino)
    checkXattrName(name)
    const v = inode.xattrs?.get(name)
    if (v === undefined) throw fsError('ENODATA', `no attribute ${name}`)
    return v
  }

  xattrOrNull (ino: Ino, name: string): Buffer | null {
    return this.ns.cache.getInode(ino)?.xattrs?.get(name) ?? null
  }

  listxattr (ino: Ino): string[] {
    const inode = this.inode(ino)
    return inode.xattrs ? [...inode.xattrs.keys()] : []
  }

  async statfs (): Promise<FsStats> {
    const u = await this.store.usage()
    const bsize = 4096
    return {
      blockSize: bsize,
      blocks: Math.floor(u.bytesTotal / bsize),
      // Both free counts of the disk under the store, so df's "used" is the disk's.
      blocksFree: Math.floor(u.bytesFreeTotal / bsize),
      blocksAvail: Math.floor(u.bytesFree / bsize),
      // Inodes cost store space only, so the limit is what the free space could hold.
      files: u.objects + Math.floor(u.bytesFree / 256),
      filesFree: Math.floor(u.bytesFree / 256),
      nameMax: NAME_MAX
    }
  }

  // ---- namespace changes ----

  private newNode (parent: Ino, name: string, mode: number, rdev: number, caller: Caller, target: string, req: RequestContext | undefined): Attr {
    checkName(name)
    const dir = this.liveDir(parent)
    if (this.ns.cache.getDentry(parent, name)) throw fsError('EEXIST', `${JSON.stringify(name)} exists`)
    let gid = caller.gid
    // BSD group semantics in a setgid directory; subdirectories inherit the bit.
    if (dir.mode & S_ISGID) {
      gid = dir.gid
      if (isDir(mode)) mode |= S_ISGID
    }
    // Unjournaled creates (their parent is not streamed, or not stored yet) take numbers from reserved blocks.
    let unstreamed = false
    if (this.unstreamed.has(parent)) {
      unstreamed = true
      if (this.stream === null || this.stream(parent)) this.heldBack(true)
    } else if (this.stream !== null) {
      unstreamed = !this.stream(parent)
    }
    const ino = this.takeReplayIno(req, unstreamed) ?? (unstreamed ? this.unstreamed.allocIno(() => this.reserveInos()) : this.ns.inotable.alloc())
    const time = now()
    this.mutate({ type: EventType.Mknod, parent, name, ino, mode, uid: caller.uid, gid, rdev, time, target }, req, unstreamed ? [parent, ino] : null)
    return attrOf(this.inode(ino))
  }

  mknod (parent: Ino, name: string, mode: number, rdev: number, caller: Caller, req?: RequestContext): Attr {
    const type = mode & S_IFMT
    if (type === 0) mode |= S_IFREG
    else if (![S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK].includes(type)) {
      throw fsError('EINVAL', `mknod cannot create file type ${type.toString(8)}`)
    }
    const isDev = type === S_IFCHR || type === S_IFBLK
    return this.newNode(parent, name, mode, isDev ? rdev : 0, caller, '', req)
  }

  mkdir (parent: Ino, name: string, mode: number, caller: Caller, req?: RequestContext): Attr {
    return this.newNode(parent, name, S_IFDIR | (mode & 0o7777), 0, caller, '', req)
  }

  symlink (parent: Ino, name: string, target: string, caller: Caller, req?: RequestContext): Attr {
    if (target.length === 0) throw fsError('ENOENT', 'a symbolic link needs a target')
    if (target.length > SYMLINK_MAX) throw fsError('ENAMETOOLONG', `symlink target is ${target.length} bytes; the limit is ${SYMLINK_MAX}`)
    return this.newNode(parent, name, S_IFLNK | 0o777, 0, caller, target, req)
  }

  link (ino: Ino, newParent: Ino, newName: string, req?: RequestContext): Attr {
    checkName(newName)
    const inode = this.inode(ino)
    if (isDir(inode.mode)) throw fsError('EPERM', 'hard links to directories are not allowed')
    this.liveDir(newParent)
    if (this.ns.cache.getDentry(newParent, newName)) throw fsError('EEXIST', `${JSON.stringify(newName)} exists`)
    if (inode.nlink === 0 && !this.purger.isOpen(ino)) throw fsError('ENOENT', `inode ${ino} has been removed`)
    this.mutate({ type: EventType.Link, ino, parent: newParent, name: newName, time: now() }, req)
    return attrOf(inode)
  }

  unlink (parent: Ino, name: string, req?: RequestContext): void {
    this.dir(parent)
    const d = this.ns.cache.getDentry(parent, name)
    if (!d) throw fsError('ENOENT', `no entry ${JSON.stringify(name)} in directory ${parent}`)
    if (d.type === S_IFDIR) throw fsError('EISDIR', `${JSON.stringify(name)} is a directory`)
    this.mutate({ type: EventType.Unlink, parent, name, time: now() }, req)
  }

  rmdir (parent: Ino, name: string, req?: RequestContext): void {
    this.dir(parent)
    if (name === '.') throw fsError('EINVAL', 'cannot remove "."')
    const d = this.ns.cache.getDentry(parent, name)
    if (!d) throw fsError('ENOENT', `no entry ${JSON.stringify(name)} in directory ${parent}`)
    if (d.type !== S_IFDIR) throw fsError('ENOTDIR', `${JSON.stringify(name)} is not a directory`)
    const target = this.inode(d.ino)
    if (target.nentries > 0) throw fsError('ENOTEMPTY', `directory ${JSON.stringify(name)} has ${target.nentries} entries`)
    this.mutate({ type: EventType.Unlink, parent, name, time: now() }, req)
  }

  rename (parent: Ino, name: string, newParent: Ino, newName: string, flags: number, req?: RequestContext): void {
    checkName(newName)
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) throw fsError('EINVAL', `unknown rename flags ${flags}`)
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) throw fsError('EINVAL', 'RENAME_NOREPLACE and RENAME_EXCHANGE together')
    this.dir(parent)
    const dstDir = this.liveDir(newParent)
    const src = this.ns.cache.getDentry(parent, name)
    if (!src) throw fsError('ENOENT', `no entry ${JSON.stringify(name)} in directory ${parent}`)
    const dst = this.ns.cache.getDentry(newParent, newName)
    if (parent === newParent && name === newName) return
    // Like the VFS: moving a directory into its own subtree fails before anything about the target.
    if (parent !== newParent && this.stream !== null && this.stream(parent) !== this.stream(newParent)) {
      throw fsError('EXDEV', 'one directory is in a subtree whose changes are journaled (stream), the other not: nothing moves across that edge (mv copies)')
    }
    if (src.type === S_IFDIR) this.checkNotAncestor(src.ino, dstDir.ino)
    if (flags & RENAME_NOREPLACE && dst) throw fsError('EEXIST', `${JSON.stringify(newName)} exists`)
    if (flags & RENAME_EXCHANGE) {
      if (!dst) throw fsError('ENOENT', `no entry ${JSON.stringify(newName)} to exchange with`)
      if (dst.type === S_IFDIR) this.checkNotAncestor(dst.ino, parent)
    } else if (dst && dst.ino !== src.ino) {
      if (src.type === S_IFDIR && dst.type !== S_IFDIR) throw fsError('ENOTDIR', `${JSON.stringify(newName)} is not a directory`)
      if (src.type !== S_IFDIR && dst.type === S_IFDIR) throw fsError('EISDIR', `${JSON.stringify(newName)} is a directory`)
      if (dst.type === S_IFDIR) {
        const t = this.inode(dst.ino)
        if (t.nentries > 0) throw fsError('ENOTEMPTY', `directory ${JSON.stringify(newName)} is not empty`)
      }
    }
    this.mutate({ type: EventType.Rename, parent, name, newParent, newName, flags: flags & RENAME_EXCHANGE, time: now() }, req)
  }

  /** EINVAL when dir is `target` or one of its ancestors (a directory cannot move into itself). */
  private checkNotAncestor (dir: Ino, target: Ino): void {
    let cur = target
    for (let depth = 0; depth < 4096; depth++) {
      if (cur === dir) throw fsError('EINVAL', 'cannot move a directory into its own subtree')
      if (cur === ROOT_INO) return
      const inode = this.inode(cur)
      if (inode.parent === cur) return
      cur = inode.parent
    }
    throw fsError('ELOOP', 'directory ancestry is too deep')
  }

  setattr (ino: Ino, change: SetAttr, req?: RequestContext): Attr {
    const inode = this.inode(ino)
    const ev = change.relatime ? readAtimeEvent(inode) : setAttrEvent(inode, change)
    if (ev && change.size !== undefined && isReg(inode.mode)) {
      // A size change outside commitData (a decoupled subtree's data commit, whose
      // objects this MDS does not see): the next data commit counts the blocks again.
      ev.mask |= SA.BLOCKS
      ev.blocks = UNKNOWN_BLOCKS
    }
    if (ev) this.mutate(ev, req)
    return attrOf(inode)
  }

  setxattr (ino: Ino, name: string, value: Buffer, flags: number, req?: RequestContext): void {
    const inode = this.inode(ino)
    checkXattrName(name)
    checkXattrValue(value)
    const exists = inode.xattrs?.has(name) === true
    if ((flags & XATTR_CREATE) && exists) throw fsError('EEXIST', `attribute ${name} exists`)
    if ((flags & XATTR_REPLACE) && !exists) throw fsError('ENODATA', `no attribute ${name}`)
    this.mutate({ type: EventType.SetXattr, ino, name, value: Buffer.from(value), time: now() }, req)
  }

  removexattr (ino: Ino, name: string, req?: RequestContext): void {
    const inode = this.inode(ino)
    checkXattrName(name)
    if (inode.xattrs?.has(name) !== true) throw fsError('ENODATA', `no attribute ${name}`)
    this.mutate({ type: EventType.RemoveXattr, ino, name, time: now() }, req)
  }

  // ---- decoupled subtrees (Cudele) ----

  /** Give `owner` the subtree at root, with `count` inode numbers set aside for it. */
  claim (root: Ino, owner: string, count: number, req?: RequestContext): ClaimInfo {
    this.dir(root)
    const inoStart = this.ns.inotable.reserve(count)
    this.mutate({ type: EventType.Claim, root, owner, inoStart, count }, req)
    return this.claimOf(root) as ClaimInfo
  }

  unclaim (root: Ino, req?: RequestContext): void {
    if (this.ns.claims.byRoot.has(root)) this.mutate({ type: EventType.Unclaim, root }, req)
  }

  claimOf (root: Ino): ClaimInfo | null {
    const c = this.ns.claims.byRoot.get(root)
    return c ? claimInfo(c) : null
  }

  claims (): ClaimInfo[] {
    return [...this.ns.claims.byRoot.values()].map(claimInfo)
  }

  exportSubtree (root: Ino, maxEntries: number): { snapshot: SubtreeSnapshot, nextIno: Ino } {
    this.inode(root)
    return exportSubtree(this.ns, (dir, after, limit) => this.listDir(dir, after, limit), root, maxEntries)
  }

  applyClientEvents (events: Event[], journal: boolean, merged?: { root: Ino, seq: number }, req?: RequestContext): ApplyResult {
    this.writable()
    return applyClientEvents(this.mergeHost, events, journal, merged, req)
  }

  mergeSegments (segments: Uint8Array[], merged: { root: Ino, seq: number }, req?: RequestContext): ApplyResult & { committed: Promise<unknown> } {
    this.writable()
    return mergeSegments(this.mergeHost, segments, merged, req)
  }

  // ---- open files and data ----

  open (ino: Ino): Attr {
    const inode = this.inode(ino)
    this.purger.open(ino)
    return attrOf(inode)
  }

  release (ino: Ino): void {
    this.purger.release(ino)
  }

  /**
   * Commit data writes together with the attribute change they imply (a new
   * size and mtime), atomically: the size a reader sees after a crash never
   * covers bytes that did not reach the store, and no data outlives a size
   * that excludes it.
   */
  commitData (ino: Ino, writes: ObjectWrite[], change: SetAttr, durable = false, req?: RequestContext): { attr: Attr, committed: Promise<unknown> } {
    const inode = this.inode(ino)
    // The change carries the time of the writes it commits; a metadata change
    // made while they were buffered (chmod, setxattr) has a later ctime, which stays.
    if (change.ctime !== undefined && compareTs(change.ctime, inode.ctime) < 0) change = { ...change, ctime: inode.ctime }
    let ev = setAttrEvent(inode, change)
    const counted = writes.length > 0 && isReg(inode.mode) ? this.blockCounter.commit(ino, inode.blocks, writes) : null
    if (counted && counted.blocks !== inode.blocks) {
      ev ??= { type: EventType.SetAttr, ino, mask: 0, mode: 0, uid: 0, gid: 0, size: 0, atime: inode.atime, mtime: inode.mtime, ctime: inode.ctime }
      ev.mask |= SA.BLOCKS
      ev.blocks = counted.blocks
    }
    const before = { size: inode.size, blocks: inode.blocks, mtime: inode.mtime }
    let committed: Promise<unknown>
    if (this.unstreamed.has(ino)) {
      // The store has not seen this inode as it is now: the data goes with the trim that stores it.
      if (ev) this.mutate(ev, req)
      committed = this.unstreamed.withTrim(writes, durable)
      if (this.trimming) this.trimmer.soon()
    } else {
      if (ev) this.mutate(ev, req)
      committed = this.journal.submit(writes, durable, req ?? null)
    }
    if (counted) committed.then(counted.settled, counted.settled)
    if (ev) {
      const change = ev
      committed.catch(() => this.undoFailedCommit(ino, change, before))
    }
    return { attr: attrOf(inode), committed }
  }

  /**
   * A data commit failed (the store is full, say): its data is not stored,
   * so the size, block count and mtime it set go back to what they were —
   * unless a later change moved them on. Otherwise the next trim would store
   * a size that covers bytes that never reached the store.
   */
  private undoFailedCommit (ino: Ino, ev: SetAttrEvent, before: { size: number, blocks: number, mtime: Timespec }): void {
    const inode = this.ns.cache.getInode(ino)
    if (!inode || this.closed) return
    const undo: SetAttrEvent = { type: EventType.SetAttr, ino, mask: 0, mode: 0, uid: 0, gid: 0, size: 0, atime: inode.atime, mtime: before.mtime, ctime: inode.ctime }
    if ((ev.mask & SA.SIZE) && inode.size === ev.size) {
      undo.mask |= SA.SIZE
      undo.size = before.size
    }
    if ((ev.mask & SA.BLOCKS) && inode.blocks === ev.blocks) {
      undo.mask |= SA.BLOCKS
      undo.blocks = before.blocks
    }
    if ((ev.mask & SA.MTIME) && compareTs(inode.mtime, ev.mtime) === 0) undo.mask |= SA.MTIME
    if (undo.mask === 0) return
    try {
      this.mutate(undo, undefined)
    } catch (err) {
      this.health.failed(UNDO_CHECK, new Error(`inode ${ino}: the size of a failed data commit could not be taken back: ${(err as Error).message}`))
    }
  }

  /**
   * Wait until everything so far is safe. Unjournaled changes of subtrees
   * without stream are left for the next trim (an fsync there does not make
   * them durable: that is their policy) unless `unstreamed` asks for them
   * too: a client that ends its session, or replays its request log, wants
   * to hear that all it did is stored.
   */
  async sync (durable: boolean, unstreamed = false): Promise<void> {
    await this.journal.sync(durable)
    // Changes held back from the journal are kept only once a trim has stored them.
    if (this.unstreamed.heldBack || (unstreamed && !this.unstreamed.empty)) {
      await this.trim()
      if (durable) await this.store.sync()
    }
  }

  // ---- trim and close ----

  /** Write the namespace changes so far into the metadata store and drop their journal objects. */
  async trim (): Promise<void> {
    if (this.trimming) await this.trimmer.run()
  }

  /** Finish purges and trims, then stop background work. */
  async close (): Promise<void> {
    this.trimmer.stop()
    if (!this.readOnly) {
      // Purges already due (a last close just before the stop, or purges
      // waiting for a trim to store their inode) are done before the store
      // closes: a removed file whose last user closed it is gone, data and
      // all, once the server has stopped. Purges held back for clients to
      // reclaim their open files after a restart stay queued (as strays).
      // Done when a round starts no purge (kickPurge starts none when nothing is
      // queued or purges are held back); bounded, so that a store failing every
      // purge does not hold the close forever.
      for (let round = 0; ; round++) {
        while (this.purger.busy) await new Promise(resolve => setTimeout(resolve, 5))
        if (round === CLOSE_PURGE_ROUNDS) break
        // Stores what purges wait for (they are queued again once it has).
        await this.trim()
        this.purger.kick()
        if (!this.purger.busy) break
      }
      await this.journal.sync(true)
    }
    this.closed = true
  }

  get openCount (): number { return this.purger.openCount }

  // ---- what servers and Cudele steer ----

  setStreamPolicy (stream: ((dir: Ino) => boolean) | null): void {
    this.stream = stream
    // A subtree that streams from now on may hold changes the journal never
    // saw: stored now, so its fsyncs cover everything in it from here on (a
    // failure is the trimmer's to record and retry).
    if (!this.unstreamed.empty) this.trim().catch(() => {})
  }

  async storeUnjournaled (): Promise<void> {
    if (!this.unstreamed.empty) await this.trim()
  }

  requestCompleted (client: string, tid: number): boolean {
    return this.ns.completed.has(client, tid)
  }

  completedFloor (client: string): number {
    return this.ns.completed.floorOf(client)
  }

  setCompletedFloor (client: string, floor: number): void {
    this.ns.completed.setFloor(client, floor)
  }

  forgetClient (client: string): void {
    this.ns.completed.forget(client)
  }

  watchSafety (watcher: SafetyWatcher): void {
    this.trimmer.watcher = watcher
    this.journal.watcher = {
      submitted: request => watcher.journalSubmitted(request),
      committed: token => watcher.journalCommitted(token)
    }
  }

  stats (): MdsStats {
    return { cache: this.ns.cache.size, journal: { ...this.journal.stats } }
  }

  replayProblems (): readonly string[] {
    return this.problems
  }

  healthChecks (): HealthCheck[] {
    return this.health.list()
  }
}

function claimInfo (c: Claim): ClaimInfo {
  return { root: c.root, owner: c.owner, inoStart: c.inoStart, count: c.count, mergedSeq: c.mergedSeq }
}
