// The metadata server (one rank): owns the namespace.
//
// Every operation is synchronous up to the journal: it loads what it needs
// into the cache (store reads are local and synchronous), validates, builds an
// event, applies it (apply.ts) and appends it to the journal. So operations
// never interleave half-way, and the reply can go out before the journal
// commits (like CephFS's early reply); sync() waits for "safe".

import { fsError } from '../common/errors'
import { Encoder } from '../common/codec'
import { compareTs, now, relatimeDue } from '../common/time'
import type { ObjectWrite, LocalStore } from '../store/types'
import { applyEvent } from './apply'
import { DEFAULT_CACHE_LIMITS, MetadataCache, type CacheLimits } from './cache'
import { encodeEvent, EventType, SA, type Event, type SetAttrEvent } from './events'
import { BlockCounter } from './blocks'
import { attrOf, type Inode, UNKNOWN_BLOCKS } from './inode'
import type { Journal } from './journal'
import { dirObject, INOTABLE_OBJECT } from './layout'
import { DATA_POOL, dataObjectPrefix, METADATA_POOL } from '../common/layout'
import { type Claim, InoTable, Namespace, StraySet } from './namespace'
import { buildTrimBatch, encodeInoTable } from './trim'
import { dirsOf, INO_BLOCK, touchedBy, UnstreamedChanges } from './unstreamed'
import {
  type Attr, type Caller, type DirEntry, type FsStats, type Ino, isDir, isReg, NAME_MAX,
  RENAME_EXCHANGE, RENAME_NOREPLACE, ROOT_INO, S_IFCHR, S_IFBLK, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
  S_IFSOCK, S_ISGID, type SetAttr, SYMLINK_MAX, XATTR_CREATE, XATTR_REPLACE
} from '../common/types'
import { decodeDentry } from './dentry'
import { checkName, checkNameLength, checkXattrName, checkXattrValue } from './checks'
import { encodeInode } from './inode'
import { decodeEvents } from './events'
import type { ApplyResult, ClaimInfo, MdsStats, MetadataServer, RequestContext, SafetyWatcher, SubtreeSnapshot } from './index'

export interface MdsOptions {
  cache: CacheLimits
  /** Trim once this many cache entries are dirty. */
  trimDirtyEntries: number
  /** Trim at least this often while anything is dirty. */
  trimIntervalMs: number
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
/** Entries read per listing while exporting a subtree. */
const SNAPSHOT_PAGE = 1024

export class Mds implements MetadataServer {
  readonly ns: Namespace
  private readonly opens = new Map<Ino, number>()
  private readonly purgeQueue = new Set<Ino>()
  /** Purges of inodes with unjournaled changes: queued again once a trim has stored them. */
  private readonly purgeAfterTrim = new Set<Ino>()
  private purging = false
  private trimInflight: Promise<void> | null = null
  private trimTimer: NodeJS.Timeout | null = null
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
  /** Told how far requests are safe (a server's sessions). */
  private safety: SafetyWatcher | null = null
  private trimScheduled = false
  /** Keeps each file's st_blocks as its data commits change it. */
  private readonly blockCounter: BlockCounter

  constructor (
    readonly store: LocalStore,
    readonly journal: Journal,
    nextIno: Ino,
    strays: Iterable<Ino>,
    private readonly options: MdsOptions = DEFAULT_MDS_OPTIONS,
    private readonly readOnly = false
  ) {
    this.blockCounter = new BlockCounter(store)
    const cache = new MetadataCache(store, options.cache)
    this.ns = new Namespace(cache, new InoTable(nextIno), new StraySet(), {
      linksGone: inode => { if (!this.opens.has(inode.ino)) this.purgeQueue.add(inode.ino) }
    })
    for (const ino of strays) {
      this.ns.strays.members.add(ino)
      this.purgeQueue.add(ino)
    }
  }

  /** Replay journal events at start-up (the same path as live operations). */
  replay (seq: number, events: Event[]): void {
    for (const ev of events) {
      if (!applyEvent(this.ns, ev)) this.problems.push(`journal object ${seq}: ${describe(ev)} could not be applied`)
    }
  }

  /** Purges wait until then (ms, monotonic): clients reconnecting after a restart reclaim their open files first. */
  private purgeNotBeforeMs = 0

  /** Begin background work: purges left over from before, periodic trims. */
  start (opts: { purgeDelayMs?: number } = {}): void {
    if (this.readOnly || this.options.trimming === false) return
    if (opts.purgeDelayMs) {
      this.purgeNotBeforeMs = performance.now() + opts.purgeDelayMs
      setTimeout(() => this.kickPurge(), opts.purgeDelayMs).unref()
    }
    this.trimTimer = setInterval(() => {
      if (this.ns.cache.dirtyCount > 0 || this.journal.lastSubmittedSeq > this.journal.trimmedSeq || this.unstreamed.pendingWrites > 0) this.trim().catch(() => {})
    }, this.options.trimIntervalMs)
    this.trimTimer.unref()
    this.kickPurge()
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
    if (namespaceChange) this.trimSoon()
  }

  private mutate (ev: Event, req: RequestContext | undefined, unstreamed: Ino[] | null = this.unstreamedTouch(ev)): void {
    if (this.readOnly) throw fsError('EROFS', 'the store is open read-only')
    if (this.closed) throw fsError('EIO', 'the metadata server is shut down')
    if (!applyEvent(this.ns, ev)) throw fsError('EIO', `${describe(ev)} could not be applied`)
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
    if (this.ns.cache.dirtyCount >= this.options.trimDirtyEntries && !this.trimInflight && this.options.trimming !== false) this.trim().catch(() => {})
  }

  /** The Request marker that precedes a request's first journaled event. */
  private appendMarker (req: RequestContext): Event {
    req.journaled = true
    const marker: Event = { type: EventType.Request, client: req.client, tid: req.tid }
    applyEvent(this.ns, marker)
    this.journal.append(marker)
    return marker
  }

  /** Trim once the current burst of work is done (many data commits share one trim). */
  private trimSoon (): void {
    if (this.trimScheduled || this.readOnly || this.options.trimming === false) return
    this.trimScheduled = true
    setImmediate(() => {
      this.trimScheduled = false
      this.trim().catch(() => {})
    })
  }

  /** Set a block of inode numbers aside for unjournaled creates; its high-water mark goes to the store now. */
  private reserveInos (): Ino {
    const start = this.ns.inotable.reserve(INO_BLOCK)
    this.writeInoTable()
    return start
  }

  private writeInoTable (): void {
    const data = encodeInoTable(this.ns.inotable.next)
    this.store.submit([{ pool: METADATA_POOL, name: INOTABLE_OBJECT, ops: [{ op: 'writeFull', data }] }], { durable: false }).catch(() => {})
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
    if (this.ns.cache.hasUnstoredDentries(ino) && !this.readOnly && this.options.trimming !== false) await this.trim()
    return this.listDir(ino, after, limit)
  }

  /** A page of a directory's entries in name order, without trimming first (unstored changes merged in). */
  listDir (ino: Ino, after: string | null, limit: number): DirEntry[] {
    if (this.ns.cache.hasUnstoredDentries(ino)) return this.mergedListing(ino, after, limit)
    return this.storedListing(ino, after, limit)
  }

  private storedListing (ino: Ino, after: string | null, limit: number): DirEntry[] {
    const rows = this.store.omapListSync(METADATA_POOL, dirObject(ino), {
      after: after === null ? undefined : Buffer.from(after, 'latin1'),
      limit
    })
    return rows.map(r => {
      const v = decodeDentry(r.value)
      return { name: Buffer.from(r.key).toString('latin1'), ino: v.ino, type: v.type }
    })
  }

  /** The store's listing with the unstored changes on top (read-only MDS: fsck after replay). */
  private mergedListing (ino: Ino, after: string | null, limit: number): DirEntry[] {
    const overlay = new Map<string, DirEntry | null>()
    for (const d of this.ns.cache.unstoredDentries(ino)) {
      if (after === null || d.name > after) overlay.set(d.name, d.ino === 0 ? null : { name: d.name, ino: d.ino, type: d.type })
    }
    const out: DirEntry[] = []
    let cursor = after
    for (;;) {
      const page = this.storedListing(ino, cursor, limit)
      for (const e of page) if (!overlay.has(e.name)) out.push(e)
      if (page.length < limit) break
      cursor = page[page.length - 1].name
      if (out.length >= limit) break
    }
    const last = out.length >= limit ? out[limit - 1].name : null
    for (const e of overlay.values()) if (e && (last === null || e.name < last)) out.push(e)
    out.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    return out.slice(0, limit)
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
    if (inode.nlink === 0 && !this.opens.has(ino)) throw fsError('ENOENT', `inode ${ino} has been removed`)
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
    const ev = change.relatime ? this.readAtimeEvent(inode) : this.setAttrEvent(inode, change)
    if (ev && change.size !== undefined && isReg(inode.mode)) {
      // A size change outside commitData (a decoupled subtree's data commit, whose
      // objects this MDS does not see): the next data commit counts the blocks again.
      ev.mask |= SA.BLOCKS
      ev.blocks = UNKNOWN_BLOCKS
    }
    if (ev) this.mutate(ev, req)
    return attrOf(inode)
  }

  /** A read or a listing: atime moves to now if relatime says it is due; ctime stays. */
  private readAtimeEvent (inode: Inode): SetAttrEvent | null {
    const time = now()
    if (!relatimeDue(inode, time)) return null
    return {
      type: EventType.SetAttr, ino: inode.ino, mask: SA.ATIME, mode: 0, uid: 0, gid: 0, size: 0,
      atime: time, mtime: time, ctime: inode.ctime
    }
  }

  private setAttrEvent (inode: Inode, change: SetAttr): SetAttrEvent | null {
    const time = now()
    const ev: SetAttrEvent = {
      type: EventType.SetAttr, ino: inode.ino, mask: 0, mode: 0, uid: 0, gid: 0, size: 0,
      atime: time, mtime: time, ctime: change.ctime ?? time
    }
    if (change.size !== undefined) {
      if (isDir(inode.mode)) throw fsError('EISDIR', 'cannot truncate a directory')
      if (!isReg(inode.mode)) throw fsError('EINVAL', 'only regular files have a settable size')
      if (change.size < 0 || !Number.isSafeInteger(change.size)) throw fsError('EINVAL', `invalid size ${change.size}`)
      if (!change.grow || change.size > inode.size) {
        ev.mask |= SA.SIZE
        ev.size = change.size
      }
    }
    if (change.mode !== undefined) {
      ev.mask |= SA.MODE
      ev.mode = change.mode & 0o7777
    }
    if (change.uid !== undefined && change.uid !== 0xffffffff) {
      ev.mask |= SA.UID
      ev.uid = change.uid
    }
    if (change.gid !== undefined && change.gid !== 0xffffffff) {
      ev.mask |= SA.GID
      ev.gid = change.gid
    }
    if (change.atime !== undefined) {
      ev.mask |= SA.ATIME
      ev.atime = change.atime === 'now' ? time : change.atime
    }
    if (change.mtime !== undefined) {
      ev.mask |= SA.MTIME
      ev.mtime = change.mtime === 'now' ? time : change.mtime
    }
    if (ev.mask === 0 && change.ctime === undefined) return null
    return ev
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
    const dentries: SubtreeSnapshot['dentries'] = []
    const inodes: SubtreeSnapshot['inodes'] = []
    inodes.push([root, encodeInode(this.inode(root))])
    const queue = [root]
    const seen = new Set<Ino>([root])
    while (queue.length > 0) {
      const dir = queue.shift() as Ino
      let after: string | null = null
      for (;;) {
        const page = this.listDir(dir, after, SNAPSHOT_PAGE)
        for (const e of page) {
          dentries.push([dir, e.name, e.ino, e.type])
          if (dentries.length > maxEntries) throw fsError('EFBIG', `the subtree has more than ${maxEntries} entries: too large to decouple`)
          if (seen.has(e.ino)) continue
          seen.add(e.ino)
          const inode = this.ns.cache.getInode(e.ino)
          if (!inode) continue
          inodes.push([e.ino, encodeInode(inode)])
          if (isDir(inode.mode)) queue.push(e.ino)
        }
        if (page.length < SNAPSHOT_PAGE) break
        after = page[page.length - 1].name
      }
    }
    let nextIno = 0
    const c = this.ns.claims.byRoot.get(root)
    if (c) {
      const end = c.inoStart + c.count
      nextIno = Math.max(c.inoStart, c.used)
      // Claims stored before the used mark was kept: what the subtree and the strays hold.
      for (const [ino] of inodes) if (ino >= nextIno && ino < end) nextIno = ino + 1
      for (const ino of this.ns.strays.members) if (ino >= nextIno && ino < end) nextIno = ino + 1
    }
    return { snapshot: { dentries, inodes }, nextIno }
  }

  /**
   * Apply a client journal's events blindly (the decoupled client's updates
   * win over what others did meanwhile). journal: also stream them into the
   * MDS journal; otherwise they live in memory until the next trim.
   */
  applyClientEvents (events: Event[], journal: boolean, merged?: { root: Ino, seq: number }, req?: RequestContext): ApplyResult {
    if (this.readOnly) throw fsError('EROFS', 'the store is open read-only')
    refuseServerEvents(events)
    let applied = 0
    let skipped = 0
    this.journal.together(() => {
      // The marker shares the journal object with the events it covers.
      if (req && journal) this.appendMarker(req)
      for (const ev of events) {
        if (applyEvent(this.ns, ev)) {
          applied++
          if (journal) this.journal.append(ev)
        } else {
          skipped++
        }
      }
      if (merged) {
        const m: Event = { type: EventType.Merged, root: merged.root, seq: merged.seq }
        applyEvent(this.ns, m)
        if (journal) this.journal.append(m)
      }
    })
    // Unjournaled events reach the store with the next trim, and so does the
    // record that this request was done: the two stay together.
    if (req && !journal) this.ns.completed.add(req.client, req.tid)
    return { applied, skipped }
  }

  /**
   * Merge client journal segments (volatile apply): their events are applied
   * to the in-memory metadata and the segments themselves go into the MDS
   * journal as they are, wrapped by the request marker and the Merged event,
   * in one journal object: replay after a crash sees them in the same order
   * as everything journaled after them, and the trim writes the result to the
   * metadata store in the background.
   */
  mergeSegments (segments: Uint8Array[], merged: { root: Ino, seq: number }, req?: RequestContext): ApplyResult & { committed: Promise<unknown> } {
    if (this.readOnly) throw fsError('EROFS', 'the store is open read-only')
    const events = segments.flatMap(bytes => decodeEvents(bytes))
    refuseServerEvents(events)
    let applied = 0
    let skipped = 0
    for (const ev of events) {
      if (applyEvent(this.ns, ev)) applied++
      else skipped++
    }
    const head = new Encoder(64)
    if (req) {
      req.journaled = true
      const marker: Event = { type: EventType.Request, client: req.client, tid: req.tid }
      applyEvent(this.ns, marker)
      encodeEvent(head, marker)
    }
    const tail = new Encoder(32)
    const m: Event = { type: EventType.Merged, root: merged.root, seq: merged.seq }
    applyEvent(this.ns, m)
    encodeEvent(tail, m)
    const bytes = Buffer.concat([head.view(), ...segments, tail.view()])
    const committed = this.journal.appendEncoded(bytes, events.length + 2)
    if (this.ns.cache.dirtyCount >= this.options.trimDirtyEntries && !this.trimInflight && this.options.trimming !== false) this.trim().catch(() => {})
    return { applied, skipped, committed }
  }

  // ---- open files and data ----

  open (ino: Ino): Attr {
    const inode = this.inode(ino)
    this.opens.set(ino, (this.opens.get(ino) ?? 0) + 1)
    return attrOf(inode)
  }

  release (ino: Ino): void {
    const n = (this.opens.get(ino) ?? 0) - 1
    if (n > 0) {
      this.opens.set(ino, n)
      return
    }
    this.opens.delete(ino)
    const inode = this.ns.cache.getInode(ino)
    if (inode && inode.nlink === 0) {
      this.purgeQueue.add(ino)
      this.kickPurge()
    }
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
    let ev = this.setAttrEvent(inode, change)
    const counted = writes.length > 0 && isReg(inode.mode) ? this.blockCounter.commit(ino, inode.blocks, writes) : null
    if (counted && counted.blocks !== inode.blocks) {
      ev ??= { type: EventType.SetAttr, ino, mask: 0, mode: 0, uid: 0, gid: 0, size: 0, atime: inode.atime, mtime: inode.mtime, ctime: inode.ctime }
      ev.mask |= SA.BLOCKS
      ev.blocks = counted.blocks
    }
    if (this.unstreamed.has(ino)) {
      // The store has not seen this inode as it is now: the data goes with the trim that stores it.
      if (ev) this.mutate(ev, req)
      const committed = this.unstreamed.withTrim(writes, durable)
      if (counted) committed.then(counted.settled, counted.settled)
      this.trimSoon()
      return { attr: attrOf(inode), committed }
    }
    if (ev) this.mutate(ev, req)
    const committed = this.journal.submit(writes, durable, req ?? null)
    if (counted) committed.then(counted.settled, counted.settled)
    return { attr: attrOf(inode), committed }
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

  // ---- trim and purge ----

  /** Write the namespace changes so far into the metadata store and drop their journal objects. */
  async trim (): Promise<void> {
    if (this.readOnly || this.options.trimming === false) return
    while (this.trimInflight) await this.trimInflight
    const cache = this.ns.cache
    const previousTrimmedSeq = this.journal.trimmedSeq
    // Every change in the snapshot must be in a journal object at or before upTo.
    if (this.journal.pendingEvents > 0) this.journal.submit([], false).catch(() => {})
    const upToSeq = this.journal.lastSubmittedSeq
    if (cache.dirtyCount === 0 && upToSeq === previousTrimmedSeq && !this.ns.inotable.dirty && this.unstreamed.pendingWrites === 0) return
    const snapshot = cache.takeDirty()
    const unstreamed = this.unstreamed.take()
    const data = UnstreamedChanges.batchOf(unstreamed.writes)
    const token = this.safety?.trimTaken()
    const strayChanges = this.ns.strays.takeChanges()
    const completedChanges = this.ns.completed.takeChanges()
    const claimChanges = this.ns.claims.takeChanges()
    this.ns.inotable.dirty = false
    const batch = buildTrimBatch({
      snapshot,
      strayChanges,
      completedChanges,
      claimChanges,
      nextIno: this.ns.inotable.next,
      previousTrimmedSeq,
      upToSeq,
      dirExists: ino => { const i = cache.getInode(ino); return i !== null && isDir(i.mode) }
    })
    this.journal.trimmedSeq = upToSeq
    const p = this.store.submit(data.writes.length > 0 ? [...batch, ...data.writes] : batch, { durable: data.durable }).then(
      () => {
        cache.flushDone()
        for (const w of unstreamed.writes) w.resolve()
        if (token !== undefined) this.safety?.trimStored(token)
        if (this.purgeAfterTrim.size > 0) {
          for (const ino of this.purgeAfterTrim) this.purgeQueue.add(ino)
          this.purgeAfterTrim.clear()
          this.kickPurge()
        }
      },
      (err: Error) => {
        cache.flushFailed()
        this.unstreamed.restore(unstreamed)
        for (const w of unstreamed.writes) w.reject(err)
        this.ns.strays.restoreChanges(strayChanges)
        this.ns.completed.restoreChanges(completedChanges)
        this.ns.claims.restoreChanges(claimChanges)
        this.ns.inotable.dirty = true
        this.journal.trimmedSeq = previousTrimmedSeq
        throw err
      }
    ).finally(() => { this.trimInflight = null })
    this.trimInflight = p
    await p
  }

  private kickPurge (): void {
    // A private copy (no trimming) leaves purges to the MDS its journal is merged into.
    if (this.purging || this.purgeQueue.size === 0 || this.readOnly || this.closed || this.options.trimming === false) return
    if (performance.now() < this.purgeNotBeforeMs) return
    this.purging = true
    this.purgeAll().catch(() => {}).finally(() => {
      this.purging = false
      if (this.purgeQueue.size > 0) setImmediate(() => this.kickPurge())
    })
  }

  private async purgeAll (): Promise<void> {
    for (const ino of [...this.purgeQueue]) {
      this.purgeQueue.delete(ino)
      if (this.opens.has(ino)) continue
      const inode = this.ns.cache.getInode(ino)
      if (!inode || inode.nlink > 0) {
        this.ns.strays.remove(ino)
        continue
      }
      await this.purgeInode(inode)
    }
  }

  /** Drop an unreferenced inode: its data objects and the inode go in one batch. */
  private async purgeInode (inode: Inode): Promise<void> {
    // An unlink that was not journaled is kept only once a trim stores it: purged
    // before, a crash would bring the file back without its data. The purge
    // waits for the next trim rather than forcing one (unlinks in a subtree
    // without stream would otherwise each cost a trim).
    if (this.unstreamed.has(inode.ino)) {
      this.purgeAfterTrim.add(inode.ino)
      return
    }
    const removals: ObjectWrite[] = []
    if (isDir(inode.mode)) {
      removals.push({ pool: METADATA_POOL, name: dirObject(inode.ino), ops: [{ op: 'remove' }] })
    } else if (isReg(inode.mode)) {
      // Data committed by the last close (the client flushes at release) may
      // still be on its way to the store: listed too early, it would outlive the inode.
      await this.journal.settled()
      // Linked again (linkat) or reopened meanwhile: not ours to remove (a later release queues it again).
      const current = this.ns.cache.getInode(inode.ino)
      if (!current || current.nlink > 0 || this.opens.has(inode.ino)) return
      const prefix = dataObjectPrefix(inode.ino)
      let after: string | undefined
      for (;;) {
        const names = this.store.listSync(DATA_POOL, { prefix, after, limit: PURGE_LIST_LIMIT })
        for (const name of names) removals.push({ pool: DATA_POOL, name, ops: [{ op: 'remove' }] })
        if (names.length < PURGE_LIST_LIMIT) break
        after = names[names.length - 1]
      }
    }
    this.mutate({ type: EventType.Purge, ino: inode.ino }, undefined)
    await this.journal.submit(removals, false)
  }

  /** Finish purges and trims, then stop background work. */
  async close (): Promise<void> {
    if (this.trimTimer) clearInterval(this.trimTimer)
    this.trimTimer = null
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
        while (this.purging) await new Promise(resolve => setTimeout(resolve, 5))
        if (round === CLOSE_PURGE_ROUNDS) break
        // Stores what purges wait for (they are queued again once it has).
        await this.trim()
        this.kickPurge()
        if (!this.purging) break
      }
      await this.journal.sync(true)
    }
    this.closed = true
  }

  get openCount (): number { return this.opens.size }

  // ---- what servers and Cudele steer ----

  setStreamPolicy (stream: ((dir: Ino) => boolean) | null): void {
    this.stream = stream
    // A subtree that streams from now on may hold changes the journal never
    // saw: stored now, so its fsyncs cover everything in it from here on.
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
    this.safety = watcher
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
}

function claimInfo (c: Claim): ClaimInfo {
  return { root: c.root, owner: c.owner, inoStart: c.inoStart, count: c.count, mergedSeq: c.mergedSeq }
}

function describe (ev: Event): string {
  switch (ev.type) {
    case EventType.Mknod: return `create of ${JSON.stringify(ev.name)} (inode ${ev.ino}) in ${ev.parent}`
    case EventType.Link: return `link of inode ${ev.ino} as ${JSON.stringify(ev.name)} in ${ev.parent}`
    case EventType.Unlink: return `removal of ${JSON.stringify(ev.name)} from ${ev.parent}`
    case EventType.Rename: return `rename of ${JSON.stringify(ev.name)} in ${ev.parent} to ${JSON.stringify(ev.newName)} in ${ev.newParent}`
    case EventType.SetAttr: return `setattr of inode ${ev.ino}`
    case EventType.SetXattr: return `setxattr ${ev.name} of inode ${ev.ino}`
    case EventType.RemoveXattr: return `removexattr ${ev.name} of inode ${ev.ino}`
    case EventType.Purge: return `purge of inode ${ev.ino}`
    case EventType.Request: return `request ${ev.tid} of client ${ev.client}`
    case EventType.Claim: return `claim of subtree ${ev.root} by ${ev.owner}`
    case EventType.Unclaim: return `release of subtree ${ev.root}`
    case EventType.Merged: return `merge of subtree ${ev.root} up to segment ${ev.seq}`
  }
}

/** Events only the MDS writes (claims, request markers, purges, merge marks) have no place in a client journal. */
function refuseServerEvents (events: Event[]): void {
  for (const ev of events) {
    if (ev.type === EventType.Claim || ev.type === EventType.Unclaim || ev.type === EventType.Request || ev.type === EventType.Purge || ev.type === EventType.Merged) {
      throw fsError('EINVAL', `a client journal may not hold ${describe(ev)}`)
    }
  }
}
