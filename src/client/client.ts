// The client: the inode-based filesystem API that the FUSE adapter (and the
// library client) call. It owns file handles and the data path (buffered
// writes, striped reads) and asks the MDS for everything else.

import { fsError } from '../common/errors'
import { compareTs, now, relatimeDue, type Timespec } from '../common/time'
import { objectBlocks, dataObject, dataObjectPrefix, parseDataObject, STRIPE_BYTES } from '../common/layout'
import { type Attr, type Caller, type DirEntry, type FsStats, type Ino, isDir, isReg, type SetAttr, S_IFREG } from '../common/types'
import type { ObjectWrite } from '../store/types'
import { CAP_BUFFER, CAP_CACHE } from '../common/caps'
import type { ClientBackend } from './backend'
import { FileData } from './filedata'
import { mayDropSgid, modeAfterChange } from './killpriv'

export interface ClientOptions {
  /** Flush all files once this much written data is buffered. */
  dirtyLimitBytes: number
  /** Hold back writers while this much data is committing. */
  inflightLimitBytes: number
  /** Buffered writes older than this are flushed in the background. */
  flushAgeMs: number
}

export const DEFAULT_CLIENT_OPTIONS: ClientOptions = {
  dirtyLimitBytes: 64 * 1024 * 1024,
  inflightLimitBytes: 256 * 1024 * 1024,
  flushAgeMs: 1000
}

const O_ACCMODE = 3
const O_RDONLY = 0
const O_WRONLY = 1
const O_TRUNC = 0o1000

interface Handle {
  ino: Ino
  flags: number
  file: FileData | null
  /** Written through this handle (close then tells the backend: policies.yml is checked then). */
  wrote: boolean
  /** The first read through this handle moves atime (relatime said so at open). */
  atimeDue: boolean
  /** The writer (pid) for whom the setgid bit was last checked (killpriv.ts). */
  sgidCheckedFor: number
  /** A write through this handle was refused by the backend's vetting (the close then refuses too). */
  refused: boolean
}

/** Which accesses move atime (the mount's noatime / nodiratime turn them off). */
export interface AtimeUpdates {
  files: boolean
  dirs: boolean
}

export class Client {
  private readonly handles = new Map<number, Handle>()
  private nextFh = 1
  /** Data state of inodes that are open, or still have writes committing. */
  private readonly files = new Map<Ino, FileData>()
  private dirtyBytes = 0
  private inflightBytes = 0
  private roomWaiters: Array<() => void> = []
  private readonly sweepTimer: NodeJS.Timeout

  /** Drop what the kernel caches of an inode (set by the FUSE adapter). */
  onInvalidate: ((ino: Ino) => void) | null = null
  /** Drop the kernel's entry for a name in a directory (set by the FUSE adapter). */
  onInvalidateEntry: ((parent: Ino, name: string) => void) | null = null
  /** relatime by default; a mount with noatime or nodiratime turns updates off. */
  atime: AtimeUpdates = { files: true, dirs: true }

  constructor (readonly backend: ClientBackend, private readonly options: ClientOptions = DEFAULT_CLIENT_OPTIONS) {
    backend.setCapListener({ revoke: (ino, bits) => this.revoke(ino, bits) })
    backend.setInvalidator?.({ entry: (parent, name) => this.onInvalidateEntry?.(parent, name), inode: ino => this.onInvalidate?.(ino) })
    this.sweepTimer = setInterval(() => this.flushOld(), Math.max(50, options.flushAgeMs / 2))
    this.sweepTimer.unref()
  }

  // ---- attributes ----

  /**
   * Is this client's idea of a file's size the size? Yes while it holds BUFFER
   * (nobody else may change the file) or has writes not yet committed; else
   * another client may have written or truncated it, and the MDS knows best.
   */
  private sizeIsLocal (f: FileData): boolean {
    return (f.caps & CAP_BUFFER) !== 0 || f.hasDirty || f.inflight.length > 0
  }

  /** The MDS's attributes, with this client's unflushed size and mtime on top. */
  private withLocal (attr: Attr): Attr {
    const f = this.files.get(attr.ino)
    if (!f) return attr
    const out = { ...attr }
    if (f.size !== attr.size) {
      if (this.sizeIsLocal(f)) out.size = f.size
      else f.size = attr.size
    }
    f.mode = attr.mode
    f.gid = attr.gid
    // Buffered data counts (like delayed allocation) until its commit counts it.
    if (f.dirtyBytes > 0) out.blocks = Math.min(attr.blocks + objectBlocks(f.dirtyBytes), Math.max(attr.blocks, objectBlocks(out.size)))
    if (f.mtime) {
      out.mtime = f.mtime
      // A metadata change after the last buffered write keeps its later ctime.
      if (compareTs(f.mtime, attr.ctime) > 0) out.ctime = f.mtime
    }
    return out
  }

  async lookup (parent: Ino, name: string): Promise<Attr | null> {
    const a = await this.backend.lookupOrNull(parent, name)
    return a ? this.withLocal(a) : null
  }

  async getattr (ino: Ino): Promise<Attr> {
    return this.withLocal(await this.backend.getattr(ino))
  }

  async setattr (ino: Ino, change: SetAttr, caller?: Caller): Promise<Attr> {
    if (caller && change.mode === undefined && (change.uid !== undefined || change.gid !== undefined)) {
      // chown by someone outside the file's group drops setgid (as the size change below does).
      const a = await this.getattr(ino)
      const mode = await this.sgidKept(a, caller)
      if (mode !== undefined) change = { ...change, mode }
    }
    if (change.size === undefined) {
      // Times set explicitly (tar and cp -a set them before close) must win over
      // the write time that buffered writes carry: commit those writes first.
      const f = this.files.get(ino)
      if (f?.hasDirty && change.mtime !== undefined) this.flushFile(f).catch(() => {})
      // Every setattr the kernel sends changes ctime, even one that changes
      // nothing else (chown(f, -1, -1)).
      return this.withLocal(await this.backend.setattr(ino, { ...change, ctime: change.ctime ?? now() }))
    }
    const current = await this.getattr(ino)
    if (isDir(current.mode)) throw fsError('EISDIR', 'cannot truncate a directory')
    if (!isReg(current.mode)) throw fsError('EINVAL', 'only regular files can be truncated')
    if (change.mode === undefined) {
      const mode = await this.sgidKept(current, caller)
      if (mode !== undefined) change = { ...change, mode }
    }
    return this.truncate(ino, current.size, change)
  }

  /**
   * A write, truncate or chown by caller: the mode without S_ISGID if Linux
   * drops it there and the kernel leaves it to us (killpriv.ts); undefined: no change.
   */
  private async sgidKept (attr: Attr, caller: Caller | undefined): Promise<number | undefined> {
    if (!isReg(attr.mode) || !mayDropSgid(attr.mode, attr.gid, caller)) return undefined
    const mode = await modeAfterChange(attr.mode, attr.gid, caller)
    return mode === attr.mode ? undefined : mode & 0o7777
  }

  /** Before a write by caller: drop the file's setgid bit if that write must (checked once per handle and writer). */
  private async dropSgidForWrite (h: Handle, f: FileData, caller: Caller): Promise<void> {
    h.sgidCheckedFor = caller.pid
    const mode = await this.sgidKept(await this.getattr(h.ino), caller)
    if (mode === undefined) return
    const a = await this.backend.setattr(h.ino, { mode, ctime: now() })
    f.mode = a.mode
    this.onInvalidate?.(h.ino)
  }

  /** Change a file's size: cut buffered and stored data past it, then commit the size with those cuts. */
  private async truncate (ino: Ino, oldSize: number, change: SetAttr): Promise<Attr> {
    const size = change.size as number
    const f = this.files.get(ino)
    if (f) {
      // Buffered writes below the new size commit first, the rest is dropped;
      // then wait for every commit of this file, so the listing below sees all its objects.
      f.truncate(Math.min(size, f.size))
      this.flushFile(f).catch(() => {})
      await Promise.allSettled(f.inflight.map(r => r.done))
    }
    const writes: ObjectWrite[] = []
    if (size < oldSize) {
      const keepStripe = Math.floor(size / STRIPE_BYTES)
      const within = size - keepStripe * STRIPE_BYTES
      let after: string | undefined
      for (;;) {
        const names = await this.backend.listData(dataObjectPrefix(ino), after, 512)
        for (const name of names) {
          const p = parseDataObject(name)
          if (!p || p.ino !== ino) continue
          if (p.stripe > keepStripe || (p.stripe === keepStripe && within === 0)) {
            writes.push({ pool: 'data', name, ops: [{ op: 'remove' }] })
          } else if (p.stripe === keepStripe) {
            writes.push({ pool: 'data', name, ops: [{ op: 'truncate', size: within }] })
          }
        }
        if (names.length < 512) break
        after = names[names.length - 1]
      }
    }
    const time = now()
    const { attr, committed } = this.backend.commitData(ino, writes, { ...change, mtime: change.mtime ?? time, ctime: time }, false)
    // Track the commit even when the file is not open: a read that comes before
    // it lands (open with O_TRUNC, then read) must wait, not read the cut data.
    const g = this.fileFor(ino, size)
    g.size = size
    g.mtime = null
    this.track(g, 0, Infinity, committed, 0)
    return this.withLocal(await attr)
  }

  // ---- namespace ----

  async mknod (parent: Ino, name: string, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    return this.backend.mknod(parent, name, mode, rdev, caller)
  }

  async mkdir (parent: Ino, name: string, mode: number, caller: Caller): Promise<Attr> {
    return this.backend.mkdir(parent, name, mode, caller)
  }

  async symlink (parent: Ino, name: string, target: string, caller: Caller): Promise<Attr> {
    return this.backend.symlink(parent, name, target, caller)
  }

  async link (ino: Ino, newParent: Ino, newName: string): Promise<Attr> {
    return this.withLocal(await this.backend.link(ino, newParent, newName))
  }

  async unlink (parent: Ino, name: string): Promise<void> {
    await this.backend.unlink(parent, name)
  }

  async rmdir (parent: Ino, name: string): Promise<void> {
    await this.backend.rmdir(parent, name)
  }

  async rename (parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    await this.backend.rename(parent, name, newParent, newName, flags)
  }

  async readlink (ino: Ino): Promise<string> {
    return this.backend.readlink(ino)
  }

  async readdir (ino: Ino, after: string | null, limit: number): Promise<DirEntry[]> {
    return this.backend.readdir(ino, after, limit)
  }

  async statfs (): Promise<FsStats> {
    return this.backend.statfs()
  }

  async setxattr (ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    await this.backend.setxattr(ino, name, value, flags)
  }

  async getxattr (ino: Ino, name: string): Promise<Buffer> {
    return this.backend.getxattr(ino, name)
  }

  async listxattr (ino: Ino): Promise<string[]> {
    return this.backend.listxattr(ino)
  }

  async removexattr (ino: Ino, name: string): Promise<void> {
    await this.backend.removexattr(ino, name)
  }

  // ---- open files ----

  private fileFor (ino: Ino, size: number): FileData {
    let f = this.files.get(ino)
    if (!f) {
      f = new FileData(ino, size)
      this.files.set(ino, f)
    }
    return f
  }

  private newHandle (attr: Attr, flags: number): number {
    const file = isReg(attr.mode) ? this.fileFor(attr.ino, attr.size) : null
    if (file) {
      file.refs++
      file.mode = attr.mode
      file.gid = attr.gid
    }
    const fh = this.nextFh++
    const readable = (flags & O_ACCMODE) !== O_WRONLY
    const atimeDue = file !== null && readable && this.atime.files && relatimeDue(attr, now())
    this.handles.set(fh, { ino: attr.ino, flags, file, wrote: false, atimeDue, sgidCheckedFor: 0, refused: false })
    return fh
  }

  private handle (fh: number): Handle {
    const h = this.handles.get(fh)
    if (!h) throw fsError('EBADF', `no open file handle ${fh}`)
    return h
  }

  async create (parent: Ino, name: string, mode: number, flags: number, caller: Caller): Promise<{ attr: Attr, fh: number }> {
    const attr = await this.backend.mknod(parent, name, (mode & 0o7777) | S_IFREG, 0, caller)
    const r = await this.backend.openFile(attr.ino, flags)
    const fh = this.newHandle(attr, flags)
    this.granted(attr.ino, r.caps, r.leaseMs)
    return { attr, fh }
  }

  async open (ino: Ino, flags: number, caller?: Caller): Promise<{ attr: Attr, fh: number }> {
    const r = await this.backend.openFile(ino, flags)
    let attr = this.withLocal(r.attr)
    try {
      // Linux truncates on O_TRUNC whatever the access mode (O_RDONLY|O_TRUNC
      // too); the kernel has already checked write permission for it.
      if ((flags & O_TRUNC) && isReg(attr.mode)) {
        const mode = await this.sgidKept(attr, caller)
        attr = await this.truncate(ino, attr.size, mode === undefined ? { size: 0 } : { size: 0, mode })
      }
    } catch (err) {
      await this.backend.release(ino)
      throw err
    }
    const fh = this.newHandle(attr, flags)
    this.granted(ino, r.caps, r.leaseMs)
    return { attr, fh }
  }

  // ---- capabilities ----

  /** Record capabilities granted on an open file; a lease is renewed before it runs out. */
  private granted (ino: Ino, caps: number, leaseMs: number): void {
    const f = this.files.get(ino)
    if (!f) return
    f.caps |= caps
    f.leaseExpiresAtMs = leaseMs > 0 ? performance.now() + leaseMs : Infinity
    if (leaseMs > 0 && f.refs > 0 && !f.renewTimer) {
      f.renewTimer = setTimeout(() => {
        f.renewTimer = null
        this.renewLease(f).catch(() => {})
      }, Math.max(1, leaseMs / 2))
      f.renewTimer.unref()
    }
  }

  /** Before a lease runs out: flush what it covered, then ask for it again. */
  private async renewLease (f: FileData): Promise<void> {
    if (f.refs === 0) return
    await this.flushFile(f).catch(() => {})
    const r = await this.backend.acquireCaps(f.ino, f.caps)
    this.granted(f.ino, r.caps, r.leaseMs)
  }

  /** May this file's writes be buffered here right now? */
  private canBuffer (f: FileData): boolean {
    return (f.caps & CAP_BUFFER) !== 0 && performance.now() < f.leaseExpiresAtMs
  }

  /** The server takes capabilities back: flush what they covered first. */
  private async revoke (ino: Ino, bits: number): Promise<void> {
    const f = this.files.get(ino)
    if (!f) return
    f.caps &= ~bits
    if (bits & CAP_BUFFER) {
      this.flushFile(f).catch(() => {})
      await Promise.allSettled(f.inflight.map(r => r.done))
    }
    if (bits & CAP_CACHE) this.onInvalidate?.(ino)
  }

  /** Does only this client change ino's metadata (a decoupled subtree it owns)? */
  changedOnlyHere (ino: Ino): boolean {
    return this.backend.changedOnlyHere?.(ino) ?? false
  }

  /** May the kernel keep its cached pages of this open file? Not when the next read must reach us to move atime. */
  keepsCache (fh: number): boolean {
    return this.handles.get(fh)?.atimeDue !== true
  }

  /** Should a listing of this directory (attributes as opendir saw them) move its atime? */
  listingMovesAtime (attr: Attr): boolean {
    return this.atime.dirs && relatimeDue(attr, now())
  }

  /** A read or a listing happened: atime moves if relatime says so (the MDS decides with what it knows). */
  async accessed (ino: Ino): Promise<void> {
    await this.backend.setattr(ino, { relatime: true })
  }

  async read (fh: number, offset: number, length: number): Promise<Buffer> {
    const h = this.handle(fh)
    if (h.atimeDue) {
      h.atimeDue = false
      const [out] = await Promise.all([this.readHandle(h, offset, length), this.accessed(h.ino).catch(() => {})])
      return out
    }
    return this.readHandle(h, offset, length)
  }

  private async readHandle (h: Handle, offset: number, length: number): Promise<Buffer> {
    const f = h.file ?? this.files.get(h.ino)
    let size = f ? f.size : (await this.backend.getattr(h.ino)).size
    // Past the size known here, another client may have written more since.
    if (f && offset + length > size && !this.sizeIsLocal(f)) size = (await this.getattr(h.ino)).size
    if (offset >= size || length === 0) return Buffer.alloc(0)
    const end = Math.min(size, offset + length)
    if (f) {
      const pending = f.pendingCommits(offset, end)
      if (pending.length > 0) await Promise.allSettled(pending)
    }
    const out = await this.readStored(h.ino, offset, end - offset)
    if (f) f.overlayDirty(offset, out)
    return out
  }

  /** Read [offset, offset+length) from the data objects; holes and missing objects read as zeros. */
  private async readStored (ino: Ino, offset: number, length: number): Promise<Buffer> {
    const first = Math.floor(offset / STRIPE_BYTES)
    const last = Math.floor((offset + length - 1) / STRIPE_BYTES)
    if (first === last) {
      const within = offset - first * STRIPE_BYTES
      const got = await this.backend.readData(dataObject(ino, first), within, length)
      if (got && got.length === length) return Buffer.from(got.buffer, got.byteOffset, got.length)
      const out = Buffer.alloc(length)
      if (got) out.set(got, 0)
      return out
    }
    const out = Buffer.alloc(length)
    const reads: Array<Promise<void>> = []
    for (let s = first; s <= last; s++) {
      const start = Math.max(offset, s * STRIPE_BYTES)
      const end = Math.min(offset + length, (s + 1) * STRIPE_BYTES)
      reads.push(this.backend.readData(dataObject(ino, s), start - s * STRIPE_BYTES, end - start).then(got => {
        if (got) out.set(got, start - offset)
      }))
    }
    await Promise.all(reads)
    return out
  }

  async write (fh: number, offset: number, data: Buffer, caller?: Caller): Promise<number> {
    const h = this.handle(fh)
    if ((h.flags & O_ACCMODE) === O_RDONLY) throw fsError('EBADF', 'file is not open for writing')
    const f = h.file
    if (!f) throw fsError('EINVAL', 'not a regular file')
    if (mayDropSgid(f.mode, f.gid, caller) && h.sgidCheckedFor !== caller.pid) await this.dropSgidForWrite(h, f, caller)
    if (offset + data.length > Number.MAX_SAFE_INTEGER) throw fsError('EFBIG', 'write past the largest file size')
    if (this.inflightBytes > this.options.inflightLimitBytes) await this.waitForRoom()
    if (this.backend.vetsWrites?.(h.ino)) await this.vet(h, f, offset, data)
    const before = f.dirtyBytes
    h.wrote = true
    const flushNow = f.write(offset, data, now(), performance.now())
    this.dirtyBytes += f.dirtyBytes - before
    if (!this.canBuffer(f)) {
      // Without the BUFFER capability another client may look at this file at
      // any moment: the write goes to the server before it returns.
      await this.flushFile(f)
      this.takeError(f)
      return data.length
    }
    if (flushNow) this.flushFile(f).catch(() => {})
    if (this.dirtyBytes > this.options.dirtyLimitBytes) this.flushAll()
    return data.length
  }

  /** Show the backend the content a write would leave; a refusal fails the write and, later, the close. */
  private async vet (h: Handle, f: FileData, offset: number, data: Buffer): Promise<void> {
    const end = Math.max(f.size, offset + data.length)
    const content = Buffer.alloc(end)
    content.set(await this.readHandle(h, 0, f.size), 0)
    content.set(data, offset)
    try {
      this.backend.vetWrite?.(h.ino, content)
    } catch (err) {
      h.refused = true
      throw err
    }
  }

  private waitForRoom (): Promise<void> {
    return new Promise(resolve => this.roomWaiters.push(resolve))
  }

  private track (f: FileData, start: number, end: number, committed: Promise<unknown>, bytes: number): void {
    const range = { start, end, done: committed }
    f.inflight.push(range)
    this.inflightBytes += bytes
    committed.then(() => {}, (err: Error) => { f.error = err }).finally(() => {
      f.inflight.splice(f.inflight.indexOf(range), 1)
      this.inflightBytes -= bytes
      if (this.inflightBytes <= this.options.inflightLimitBytes) {
        const waiters = this.roomWaiters
        this.roomWaiters = []
        for (const w of waiters) w()
      }
      this.maybeForget(f)
    })
  }

  /** Send a file's buffered writes (with its new size and mtime) to be committed. */
  private flushFile (f: FileData, durable = false): Promise<unknown> {
    if (!f.hasDirty) return Promise.resolve()
    const mtime = f.mtime as Timespec
    const size = f.size
    const { writes, start, end, bytes } = f.takeWrites()
    this.dirtyBytes -= bytes
    f.mtime = null
    const change: SetAttr = { size, grow: true, mtime, ctime: mtime }
    const { committed } = this.backend.commitData(f.ino, writes, change, durable)
    this.track(f, start, end, committed, bytes)
    return committed
  }

  private flushAll (): void {
    for (const f of this.files.values()) if (f.hasDirty) this.flushFile(f).catch(() => {})
  }

  private flushOld (): void {
    const limit = performance.now() - this.options.flushAgeMs
    for (const f of this.files.values()) {
      if (f.hasDirty && f.dirtySinceMs !== 0 && f.dirtySinceMs <= limit) this.flushFile(f).catch(() => {})
    }
  }

  private takeError (f: FileData): void {
    if (!f.error) return
    const err = f.error
    f.error = null
    throw err
  }

  /** close(): buffered writes go to the store; a failed earlier commit is reported here. */
  async flush (fh: number): Promise<void> {
    const h = this.handle(fh)
    if (!h.file) return
    this.flushFile(h.file).catch(() => {})
    this.takeError(h.file)
    if ((h.wrote || h.refused) && this.backend.closedAfterWrite) {
      const refused = h.refused
      h.wrote = false
      h.refused = false
      const f = h.file
      await this.backend.closedAfterWrite(h.ino, async () => {
        await Promise.allSettled(f.inflight.map(r => r.done))
        return await this.read(fh, 0, f.size)
      }, async data => {
        await this.truncate(h.ino, f.size, { size: 0 })
        await this.write(fh, 0, data)
        await this.flushFile(f)
        this.takeError(f)
        h.wrote = false
      }, refused)
    }
  }

  async fsync (fh: number, _datasync: boolean): Promise<void> {
    const h = this.handle(fh)
    if (h.file) {
      await Promise.allSettled([this.flushFile(h.file), ...h.file.inflight.map(r => r.done)])
      this.takeError(h.file)
    }
    await this.backend.sync(true)
  }

  async release (fh: number): Promise<void> {
    const h = this.handle(fh)
    this.handles.delete(fh)
    const f = h.file
    if (f) {
      f.refs--
      if (f.refs === 0) {
        if (f.renewTimer) clearTimeout(f.renewTimer)
        f.renewTimer = null
        // The capabilities go with the last close: the data they covered must be in first.
        this.flushFile(f).catch(() => {})
        await Promise.allSettled(f.inflight.map(r => r.done))
        f.caps = 0
      }
      this.maybeForget(f)
    }
    await this.backend.release(h.ino)
  }

  private maybeForget (f: FileData): void {
    if (f.refs === 0 && f.inflight.length === 0 && !f.hasDirty && this.files.get(f.ino) === f) this.files.delete(f.ino)
  }

  /** fallocate: mode 0 grows the file; punching holes zeroes a range without changing the size. */
  async fallocate (fh: number, mode: number, offset: number, length: number): Promise<void> {
    const FALLOC_FL_KEEP_SIZE = 1
    const FALLOC_FL_PUNCH_HOLE = 2
    const h = this.handle(fh)
    if (!h.file) throw fsError('ENODEV', 'fallocate needs a regular file')
    if (offset < 0 || length <= 0) throw fsError('EINVAL', 'fallocate needs offset >= 0 and length > 0')
    if (mode === 0 || mode === FALLOC_FL_KEEP_SIZE) {
      if (mode === 0 && offset + length > h.file.size) await this.setattr(h.ino, { size: offset + length })
      return
    }
    if (mode !== (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) throw fsError('EOPNOTSUPP', `fallocate mode ${mode} is not supported`)
    await this.flushFile(h.file)
    const end = Math.min(offset + length, h.file.size)
    const writes: ObjectWrite[] = []
    for (let pos = offset; pos < end;) {
      const stripe = Math.floor(pos / STRIPE_BYTES)
      const n = Math.min(end, (stripe + 1) * STRIPE_BYTES) - pos
      writes.push({ pool: 'data', name: dataObject(h.ino, stripe), ops: [{ op: 'zero', offset: pos - stripe * STRIPE_BYTES, length: n }] })
      pos += n
    }
    const time = now()
    const { committed } = this.backend.commitData(h.ino, writes, { mtime: time, ctime: time }, false)
    this.track(h.file, offset, end, committed, 0)
    await committed
  }

  /** Flush everything and wait for it to be on stable storage. */
  async syncAll (): Promise<void> {
    const pending: Array<Promise<unknown>> = []
    for (const f of this.files.values()) {
      pending.push(this.flushFile(f), ...f.inflight.map(r => r.done))
    }
    await Promise.allSettled(pending)
    await this.backend.sync(true)
  }

  get openFiles (): number { return this.handles.size }

  close (): void {
    clearInterval(this.sweepTimer)
  }
}
