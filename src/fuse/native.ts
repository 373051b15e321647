// The contract of native/ (cudele_fuse.node): a thin binding to libfuse3's
// low-level, inode-based API.
//
// One native thread reads requests from /dev/fuse and hands each to the
// JavaScript thread without waiting; JavaScript answers later with one of the
// reply functions, in any order. So a slow request (an fsync waiting on a group
// commit) never holds up the others, and the reader never blocks on JS.
//
// Requests are identified by a ReqId (a small number). Every request except
// forget gets exactly one reply; replying twice, or to an unknown id, is a no-op
// that returns false.
//
// Names and symlink targets cross the boundary as "byte strings": one JS
// character per byte (latin1), so names that are not UTF-8 survive intact.
//
// Attributes cross through a shared Float64Array (ATTR_* indices below) that JS
// fills right before calling a reply that carries attributes; doubles hold
// integers exactly up to 2^53, enough for inode numbers, sizes and seconds.

import * as path from 'path'

export type ReqId = number

/** Indices into the shared attribute array. */
export const ATTR = {
  ino: 0,
  mode: 1,
  nlink: 2,
  uid: 3,
  gid: 4,
  rdev: 5,
  size: 6,
  blocks: 7, // 512-byte blocks
  atimeSec: 8,
  atimeNsec: 9,
  mtimeSec: 10,
  mtimeNsec: 11,
  ctimeSec: 12,
  ctimeNsec: 13,
  blksize: 14,
  generation: 15
} as const
export const ATTR_LENGTH = 16

/** FUSE_SET_ATTR_* bits of setattr's toSet. */
export const SET_ATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  CTIME: 1 << 10
} as const

/** Who sent a request (from fuse_req_ctx). */
export interface Caller {
  uid: number
  gid: number
  pid: number
  umask: number
}

/** The handlers JS gives to mount(). Each request calls one of them on the JS thread. */
export interface Handlers {
  lookup (req: ReqId, parent: number, name: string): void
  /** No reply. Delivered in batches to keep the crossing cheap: pairs of (ino, nlookup). */
  forget (pairs: Float64Array): void
  getattr (req: ReqId, ino: number, fh: number | null): void
  /** atime/mtime given when toSet has ATIME/MTIME; *_NOW bits mean "the current time". */
  setattr (req: ReqId, ino: number, toSet: number, mode: number, uid: number, gid: number, size: number,
    atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, fh: number | null, caller: Caller): void
  readlink (req: ReqId, ino: number): void
  mknod (req: ReqId, parent: number, name: string, mode: number, rdev: number, caller: Caller): void
  mkdir (req: ReqId, parent: number, name: string, mode: number, caller: Caller): void
  unlink (req: ReqId, parent: number, name: string): void
  rmdir (req: ReqId, parent: number, name: string): void
  symlink (req: ReqId, target: string, parent: number, name: string, caller: Caller): void
  /** flags: RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2. */
  rename (req: ReqId, parent: number, name: string, newParent: number, newName: string, flags: number): void
  link (req: ReqId, ino: number, newParent: number, newName: string): void
  open (req: ReqId, ino: number, flags: number, caller: Caller): void
  read (req: ReqId, ino: number, size: number, offset: number, fh: number): void
  /** data is a copy owned by JS (the native side does not reuse it). */
  write (req: ReqId, ino: number, data: Buffer, offset: number, fh: number, flags: number): void
  flush (req: ReqId, ino: number, fh: number): void
  release (req: ReqId, ino: number, fh: number, flags: number): void
  fsync (req: ReqId, ino: number, datasync: boolean, fh: number): void
  opendir (req: ReqId, ino: number, flags: number): void
  /** Reply with replyReaddir; offset is 0 or the `off` of an entry given earlier for this handle. */
  readdir (req: ReqId, ino: number, size: number, offset: number, fh: number): void
  /** Like readdir, but entries carry attributes (replyReaddirPlus). Only called when mounted with readdirplus. */
  readdirplus (req: ReqId, ino: number, size: number, offset: number, fh: number): void
  releasedir (req: ReqId, ino: number, fh: number): void
  fsyncdir (req: ReqId, ino: number, datasync: boolean, fh: number): void
  statfs (req: ReqId, ino: number): void
  /** flags: XATTR_CREATE = 1, XATTR_REPLACE = 2. */
  setxattr (req: ReqId, ino: number, name: string, value: Buffer, flags: number): void
  /** size 0: reply replyXattrSize with the value's length; otherwise replyBuf, or ERANGE if it does not fit. */
  getxattr (req: ReqId, ino: number, name: string, size: number): void
  /** Same size convention as getxattr; the list is names each followed by a NUL byte. */
  listxattr (req: ReqId, ino: number, size: number): void
  removexattr (req: ReqId, ino: number, name: string): void
  access (req: ReqId, ino: number, mask: number, caller: Caller): void
  create (req: ReqId, parent: number, name: string, mode: number, flags: number, caller: Caller): void
  /** mode: FALLOC_FL_* bits. */
  fallocate (req: ReqId, ino: number, mode: number, offset: number, length: number, fh: number): void
  /** The kernel finished INIT: the mount is live. */
  init (info: { protoMajor: number, protoMinor: number, maxWrite: number, maxReadahead: number, capable: number, want: number }): void
  /** The session ended (unmounted from outside, or unmount() was called). No more requests follow. */
  exit (): void
}

export interface MountOptions {
  /** -o options passed to libfuse (e.g. fsname=cudele, default_permissions, auto_unmount, allow_other). */
  options: string[]
  /** Largest write the kernel may send, bytes (max 1 MiB; sets max_pages). Default 1 MiB. */
  maxWrite?: number
  /** Kernel readahead, bytes. Default 1 MiB. */
  maxReadahead?: number
  /** Ask for readdirplus (kernel decides when, FUSE_CAP_READDIRPLUS_AUTO). Default false. */
  readdirplus?: boolean
  /** Kernel writeback cache (FUSE_CAP_WRITEBACK_CACHE). Default false. */
  writebackCache?: boolean
}

/** Flags for open/create replies. */
export const OPEN = {
  DIRECT_IO: 1,
  KEEP_CACHE: 2,
  NONSEEKABLE: 4,
  CACHE_READDIR: 8
} as const

/** One directory entry in a readdir reply. type is the S_IF* bits of the mode (e.g. 0o040000). */
export interface DirEntry {
  name: string
  ino: number
  type: number
  /** Cookie the kernel hands back as `offset` to continue after this entry; must be > 0 and unique per handle. */
  off: number
}

export interface Session {
  /** Unmount (lazily) and stop the reader thread; exit() follows. */
  unmount (): void
  /** Fill ATTR_LENGTH values in the array given to mount before each reply that carries attributes. */
  replyErr (req: ReqId, errno: number): boolean
  /** Attributes from the attr array; entryTimeout/attrTimeout in seconds. attr[ino] = 0 means a negative entry. */
  replyEntry (req: ReqId, entryTimeout: number, attrTimeout: number): boolean
  replyCreate (req: ReqId, entryTimeout: number, attrTimeout: number, fh: number, openFlags: number): boolean
  replyAttr (req: ReqId, attrTimeout: number): boolean
  replyReadlink (req: ReqId, target: string): boolean
  replyOpen (req: ReqId, fh: number, openFlags: number): boolean
  replyWrite (req: ReqId, count: number): boolean
  /** Data replies (read, getxattr, listxattr); several buffers go out as one reply without copying them together. */
  replyBuf (req: ReqId, data: Uint8Array | Uint8Array[]): boolean
  replyStatfs (req: ReqId, bsize: number, frsize: number, blocks: number, bfree: number, bavail: number,
    files: number, ffree: number, favail: number, fsid: number, namemax: number): boolean
  replyXattrSize (req: ReqId, size: number): boolean
  /** Packs entries until the kernel's buffer (size bytes of the request) is full; returns how many fit. */
  replyReaddir (req: ReqId, size: number, entries: DirEntry[]): number
  /**
   * Like replyReaddir, with attributes: for entry i, attrs holds ATTR_LENGTH values at i*ATTR_LENGTH.
   * An entry with attrs ino 0 goes out without an entry (the kernel will look it up).
   */
  replyReaddirPlus (req: ReqId, size: number, entries: DirEntry[], attrs: Float64Array, entryTimeout: number, attrTimeout: number): number
  /** Cache invalidation, queued to a native thread so the caller never blocks. */
  notifyInvalEntry (parent: number, name: string): void
  notifyInvalInode (ino: number, offset: number, length: number): void
  /** The fd of /dev/fuse for this session (for the fusectl connection id lookup in tests). */
  readonly fd: number
}

export interface NativeBinding {
  /**
   * Mount at mountpoint and start reading requests. Throws an Error with a
   * clear message (and errno) when the mount fails. attr is the shared attribute array.
   */
  mount (mountpoint: string, opts: MountOptions, handlers: Handlers, attr: Float64Array): Session
}

let binding: NativeBinding | null = null

export function loadBinding (): NativeBinding {
  if (binding) return binding
  const file = path.join(__dirname, '..', '..', '..', 'native', 'build', 'Release', 'cudele_fuse.node')
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  binding = require(file) as NativeBinding
  return binding
}
