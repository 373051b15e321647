// The FUSE adapter: kernel requests in, client calls, replies (or errnos) out.
// It has no semantics of its own beyond the kernel's conventions: attribute
// layout, negative entries, readdir cookies, xattr size probes.

import { errnoOf, fsError } from '../common/errors'
import type { Client } from '../client/client'
import type { Attr, DirEntry as MdsDirEntry, Ino, SetAttr } from '../common/types'
import { S_IFDIR } from '../common/types'
import { ATTR, type Caller, type DirEntry, type Handlers, OPEN, type ReqId, SET_ATTR, type Session } from './native'

export interface AdapterOptions {
  /** How long the kernel may trust a name → inode mapping (seconds). */
  entryTimeout: number
  /** How long the kernel may trust attributes (seconds). */
  attrTimeout: number
  /** How long the kernel may remember that a name does not exist (seconds). */
  negativeTimeout: number
  /** Keep the kernel's page cache across opens (safe when this mount is the only writer). */
  keepCache: boolean
  /**
   * Names, negative entries and attributes of what only this client changes
   * (a decoupled subtree it owns) are kept at least this long (seconds), even
   * with the timeouts above at 0: otherwise every component of every path is
   * a request. When the subtree is let go the kernel may show it as it was for
   * up to this long.
   */
  ownedTimeout?: number
}

export const DEFAULT_ADAPTER_OPTIONS: AdapterOptions = {
  entryTimeout: 5,
  attrTimeout: 5,
  negativeTimeout: 5,
  keepCache: true
}

/** Directory entries fetched from the client per page. */
const DIR_PAGE = 512

interface DirHandle {
  ino: Ino
  /** Entries of the current page and the position (in the whole listing) of its first entry. */
  page: MdsDirEntry[]
  pageStart: number
  /** The listing has no entries after this page. */
  done: boolean
  /** The first listing moves the directory's atime (relatime said so at opendir). */
  atimeDue: boolean
}

export class FuseAdapter {
  session: Session | null = null
  private readonly dirs = new Map<number, DirHandle>()
  private nextDh = 1
  private readyResolve!: () => void
  private exitResolve!: () => void
  readonly ready = new Promise<void>(resolve => { this.readyResolve = resolve })
  readonly exited = new Promise<void>(resolve => { this.exitResolve = resolve })
  readonly handlers: Handlers

  constructor (private readonly client: Client, private readonly attr: Float64Array, private readonly opts: AdapterOptions = DEFAULT_ADAPTER_OPTIONS) {
    this.handlers = this.makeHandlers()
  }

  private s (): Session {
    if (!this.session) throw new Error('no FUSE session')
    return this.session
  }

  private fail (req: ReqId, err: unknown): void {
    const errno = errnoOf(err)
    if (errno === 5 && !(err as { code?: string })?.code) console.error('cudele: internal error:', err)
    this.s().replyErr(req, errno)
  }

  private fill (a: Attr): void {
    const t = this.attr
    t[ATTR.ino] = a.ino
    t[ATTR.mode] = a.mode
    t[ATTR.nlink] = a.nlink
    t[ATTR.uid] = a.uid
    t[ATTR.gid] = a.gid
    t[ATTR.rdev] = a.rdev
    t[ATTR.size] = a.size
    t[ATTR.blocks] = a.blocks
    t[ATTR.atimeSec] = a.atime.s
    t[ATTR.atimeNsec] = a.atime.ns
    t[ATTR.mtimeSec] = a.mtime.s
    t[ATTR.mtimeNsec] = a.mtime.ns
    t[ATTR.ctimeSec] = a.ctime.s
    t[ATTR.ctimeNsec] = a.ctime.ns
    t[ATTR.blksize] = 65536
    t[ATTR.generation] = 0
  }

  private entry (req: ReqId, parent: Ino, a: Attr): void {
    this.fill(a)
    this.s().replyEntry(req, this.timeout(parent, this.opts.entryTimeout), this.timeout(a.ino, this.opts.attrTimeout))
  }

  /**
   * How long the kernel may keep what it learns of ino (an inode's attributes;
   * for a name, its directory): `base`, or ownedTimeout where only this client changes it.
   */
  private timeout (ino: Ino, base: number): number {
    const owned = this.opts.ownedTimeout ?? 0
    return owned > base && this.client.changedOnlyHere(ino) ? owned : base
  }

  private openFlags (fh: number): number {
    // A file whose next read moves atime must not be read from the page cache.
    return this.opts.keepCache && this.client.keepsCache(fh) ? OPEN.KEEP_CACHE : 0
  }

  private makeHandlers (): Handlers {
    const c = this.client
    const ok = (req: ReqId) => () => { this.s().replyErr(req, 0) }
    const err = (req: ReqId) => (e: unknown) => this.fail(req, e)
    return {
      init: () => this.readyResolve(),
      exit: () => this.exitResolve(),
      forget: () => {},

      lookup: (req, parent, name) => {
        c.lookup(parent, name).then(a => {
          if (a) return this.entry(req, parent, a)
          this.attr.fill(0)
          this.s().replyEntry(req, this.timeout(parent, this.opts.negativeTimeout), 0)
        }, err(req))
      },
      getattr: (req, ino) => {
        c.getattr(ino).then(a => { this.fill(a); this.s().replyAttr(req, this.timeout(ino, this.opts.attrTimeout)) }, err(req))
      },
      setattr: (req, ino, toSet, mode, uid, gid, size, atimeSec, atimeNsec, mtimeSec, mtimeNsec, _fh, caller) => {
        const change: SetAttr = {}
        if (toSet & SET_ATTR.MODE) change.mode = mode
        if (toSet & SET_ATTR.UID) change.uid = uid
        if (toSet & SET_ATTR.GID) change.gid = gid
        if (toSet & SET_ATTR.SIZE) change.size = size
        if (toSet & SET_ATTR.ATIME_NOW) change.atime = 'now'
        else if (toSet & SET_ATTR.ATIME) change.atime = { s: atimeSec, ns: atimeNsec }
        if (toSet & SET_ATTR.MTIME_NOW) change.mtime = 'now'
        else if (toSet & SET_ATTR.MTIME) change.mtime = { s: mtimeSec, ns: mtimeNsec }
        c.setattr(ino, change, caller).then(a => { this.fill(a); this.s().replyAttr(req, this.timeout(ino, this.opts.attrTimeout)) }, err(req))
      },
      readlink: (req, ino) => {
        c.readlink(ino).then(t => { this.s().replyReadlink(req, t) }, err(req))
      },
      mknod: (req, parent, name, mode, rdev, caller) => {
        c.mknod(parent, name, mode, rdev, caller).then(a => this.entry(req, parent, a), err(req))
      },
      mkdir: (req, parent, name, mode, caller) => {
        c.mkdir(parent, name, mode, caller).then(a => this.entry(req, parent, a), err(req))
      },
      unlink: (req, parent, name) => { c.unlink(parent, name).then(ok(req), err(req)) },
      rmdir: (req, parent, name) => { c.rmdir(parent, name).then(ok(req), err(req)) },
      symlink: (req, target, parent, name, caller) => {
        c.symlink(parent, name, target, caller).then(a => this.entry(req, parent, a), err(req))
      },
      rename: (req, parent, name, newParent, newName, flags) => {
        c.rename(parent, name, newParent, newName, flags).then(ok(req), err(req))
      },
      link: (req, ino, newParent, newName) => {
        c.link(ino, newParent, newName).then(a => this.entry(req, newParent, a), err(req))
      },
      open: (req, ino, flags, caller) => {
        c.open(ino, flags, caller).then(({ fh }) => { this.s().replyOpen(req, fh, this.openFlags(fh)) }, err(req))
      },
      create: (req, parent, name, mode, flags, caller: Caller) => {
        c.create(parent, name, mode, flags, caller).then(({ attr, fh }) => {
          this.fill(attr)
          this.s().replyCreate(req, this.timeout(parent, this.opts.entryTimeout), this.timeout(attr.ino, this.opts.attrTimeout), fh, this.openFlags(fh))
        }, err(req))
      },
      read: (req, _ino, size, offset, fh) => {
        c.read(fh, offset, size).then(buf => { this.s().replyBuf(req, buf) }, err(req))
      },
      write: (req, _ino, data, offset, fh, _flags, caller) => {
        c.write(fh, offset, data, caller).then(n => { this.s().replyWrite(req, n) }, err(req))
      },
      flush: (req, _ino, fh) => { c.flush(fh).then(ok(req), err(req)) },
      release: (req, _ino, fh) => { c.release(fh).then(ok(req), err(req)) },
      fsync: (req, _ino, datasync, fh) => { c.fsync(fh, datasync).then(ok(req), err(req)) },
      fallocate: (req, _ino, mode, offset, length, fh) => {
        c.fallocate(fh, mode, offset, length).then(ok(req), err(req))
      },
      opendir: (req, ino) => {
        c.getattr(ino).then(async a => {
          if ((a.mode & S_IFDIR) !== S_IFDIR) throw fsError('ENOTDIR', `inode ${ino} is not a directory`)
          // Held open in the MDS like a file: removed while open, it stays until
          // releasedir (fstat and readdir of it keep working), not purged under it.
          await c.backend.open(ino)
          const dh = this.nextDh++
          this.dirs.set(dh, { ino, page: [], pageStart: 0, done: false, atimeDue: c.listingMovesAtime(a) })
          this.s().replyOpen(req, dh, 0)
        }).catch(err(req))
      },
      readdir: (req, ino, size, offset, fh) => {
        this.readdir(fh, ino, size, offset).then(entries => { this.s().replyReaddir(req, size, entries) }, err(req))
      },
      readdirplus: (req, ino, size, offset, fh) => {
        // Without per-entry attributes the kernel looks entries up itself.
        this.readdir(fh, ino, size, offset).then(entries => {
          this.s().replyReaddirPlus(req, size, entries, new Float64Array(entries.length * 16), 0, 0)
        }, err(req))
      },
      releasedir: (req, ino, fh) => {
        this.dirs.delete(fh)
        Promise.resolve(c.backend.release(ino)).then(ok(req), err(req))
      },
      fsyncdir: (req) => { c.backend.sync(true).then(ok(req), err(req)) },
      statfs: (req) => {
        c.statfs().then(st => {
          this.s().replyStatfs(req, st.blockSize, st.blockSize, st.blocks, st.blocksFree, st.blocksAvail,
            st.files, st.filesFree, st.filesFree, 0, st.nameMax)
        }, err(req))
      },
      setxattr: (req, ino, name, value, flags) => { c.setxattr(ino, name, value, flags).then(ok(req), err(req)) },
      getxattr: (req, ino, name, size) => {
        c.getxattr(ino, name).then(v => {
          if (size === 0) this.s().replyXattrSize(req, v.length)
          else if (v.length > size) this.s().replyErr(req, 34 /* ERANGE */)
          else this.s().replyBuf(req, v)
        }, err(req))
      },
      listxattr: (req, ino, size, caller) => {
        c.listxattr(ino).then(all => {
          // The VFS hides trusted.* values from unprivileged callers (ENODATA)
          // but passes listxattr through to us; hide the names too, as other
          // filesystems do. (CAP_SYS_ADMIN is what counts; uid 0 is what we can see.)
          const names = caller.uid === 0 ? all : all.filter(n => !n.startsWith('trusted.'))
          const buf = Buffer.from(names.map(n => n + '\0').join(''), 'latin1')
          if (size === 0) this.s().replyXattrSize(req, buf.length)
          else if (buf.length > size) this.s().replyErr(req, 34 /* ERANGE */)
          else this.s().replyBuf(req, buf)
        }, err(req))
      },
      removexattr: (req, ino, name) => { c.removexattr(ino, name).then(ok(req), err(req)) },
      access: (req) => { this.s().replyErr(req, 0) }
    }
  }

  /**
   * Entries from listing position `offset` on. Positions: 0 ".", 1 ".." (with
   * the parent's inode number, as getdents shows it on other filesystems), then
   * the directory's entries in name order; an entry's cookie is its position
   * + 1. Pages are fetched after the last name seen, so a listing stays stable
   * while entries are added or removed: untouched entries appear exactly once.
   */
  private async readdir (dh: number, ino: Ino, size: number, offset: number): Promise<DirEntry[]> {
    const h = this.dirs.get(dh)
    if (!h) throw fsError('EBADF', `no open directory handle ${dh}`)
    if (h.atimeDue) {
      h.atimeDue = false
      await this.client.accessed(ino).catch(() => {})
    }
    const want = Math.max(1, Math.floor(size / 32))
    const out: DirEntry[] = []
    let pos = offset
    if (pos === 0) out.push({ name: '.', ino, type: S_IFDIR, off: ++pos })
    if (pos === 1) {
      // A removed directory's parent may be gone too: then ".." shows the directory itself.
      const up = await this.client.lookup(ino, '..').catch(() => null)
      out.push({ name: '..', ino: up?.ino ?? ino, type: S_IFDIR, off: ++pos })
    }
    while (out.length < want) {
      const i = pos - 2
      if (i < h.pageStart || i > h.pageStart + h.page.length) await this.rewind(h, i)
      if (i === h.pageStart + h.page.length) {
        if (h.done) break
        await this.nextPage(h)
      }
      const e = h.page[i - h.pageStart]
      if (!e) break
      out.push({ name: e.name, ino: e.ino, type: e.type, off: ++pos })
    }
    return out
  }

  private async nextPage (h: DirHandle): Promise<void> {
    const after = h.page.length > 0 ? h.page[h.page.length - 1].name : null
    if (after === null && h.pageStart > 0) throw new Error('directory cursor lost')
    const page = await this.client.readdir(h.ino, after, DIR_PAGE)
    h.pageStart += h.page.length
    h.page = page
    h.done = page.length < DIR_PAGE
  }

  /** Seek to listing position i (seekdir, or the kernel re-reading): start over and skip. */
  private async rewind (h: DirHandle, i: number): Promise<void> {
    h.page = []
    h.pageStart = 0
    h.done = false
    await this.nextPage(h)
    while (i > h.pageStart + h.page.length && !h.done) await this.nextPage(h)
  }
}
