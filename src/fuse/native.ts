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
// that returns false. A reply whose other arguments are unusable (wrong types)
// throws a TypeError and fails that request with EIO, so the caller in the kernel
// is not left waiting. If a handler throws, its request (when still unanswered)
// fails with EIO and the exception goes to process 'uncaughtException'.
//
// A handler that is missing from the handlers object means "not implemented":
// the op is not registered with libfuse and its default applies: ENOSYS, after
// which the kernel stops sending most ops (flush, fsync and access then simply
// succeed); plain success for open, opendir, release and releasedir; without
// create the kernel falls back to mknod + open.
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

/**
 * The handlers JS gives to mount(). Each request calls one of them on the JS
 * thread, with `this` set to the handlers object.
 *
 * Lookup counting: every successful replyEntry and replyCreate, and every entry
 * replyReaddirPlus sent with attributes (attrs ino != 0, other than '.' and '..'),
 * is one lookup of that inode; forget returns them.
 */
export interface Handlers {
  lookup (req: ReqId, parent: number, name: string): void
  /**
   * No reply. Delivered in batches to keep the crossing cheap: pairs of (ino, nlookup).
   * A batch is handed over when it holds 512 pairs, before any other request, or
   * when no further request is waiting in the kernel.
   */
  forget (pairs: Float64Array): void
  getattr (req: ReqId, ino: number, fh: number | null): void
  /** atime/mtime given when toSet has ATIME/MTIME; *_NOW bits mean "the current time". */
  setattr (req: ReqId, ino: number, toSet: number, mode: number, uid: number, gid: number, size: number,
    atimeSec: number, atimeNsec: number, mtimeSec: number, mtimeNsec: number, fh: number | null, caller: Caller): void
  readlink (req: ReqId, ino: number): void
  /** mode includes the file type bits; the kernel has already applied the caller's umask. */
  mknod (req: ReqId, parent: number, name: string, mode: number, rdev: number, caller: Caller): void
  /** mode is the permission bits only (no S_IFDIR), umask already applied. */
  mkdir (req: ReqId, parent: number, name: string, mode: number, caller: Caller): void
  unlink (req: ReqId, parent: number, name: string): void
  rmdir (req: ReqId, parent: number, name: string): void
  symlink (req: ReqId, target: string, parent: number, name: string, caller: Caller): void
  /** flags: RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2. */
  rename (req: ReqId, parent: number, name: string, newParent: number, newName: string, flags: number): void
  link (req: ReqId, ino: number, newParent: number, newName: string): void
  /**
   * flags are the open(2) flags. The mount asks for atomic O_TRUNC, so O_TRUNC
   * arrives here (truncate the file) instead of as a setattr before the open.
   */
  open (req: ReqId, ino: number, flags: number, caller: Caller): void
  read (req: ReqId, ino: number, size: number, offset: number, fh: number): void
  /**
   * data is a copy owned by JS (the native side does not reuse it; it may be
   * kept without copying). flags are the file's open flags.
   */
  /** caller: who writes (the client clears setgid bits the kernel leaves). */
  write (req: ReqId, ino: number, data: Buffer, offset: number, fh: number, flags: number, caller: Caller): void
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
  /**
   * Same size convention as getxattr; the list is names each followed by a NUL
   * byte. The caller is there because the list depends on who asks (trusted.*).
   */
  listxattr (req: ReqId, ino: number, size: number, caller: Caller): void
  removexattr (req: ReqId, ino: number, name: string): void
  access (req: ReqId, ino: number, mask: number, caller: Caller): void
  create (req: ReqId, parent: number, name: string, mode: number, flags: number, caller: Caller): void
  /** mode: FALLOC_FL_* bits. */
  fallocate (req: ReqId, ino: number, mode: number, offset: number, length: number, fh: number): void
  /** The kernel finished INIT: the mount is live. */
  init (info: { protoMajor: number, protoMinor: number, maxWrite: number, maxReadahead: number, capable: number, want: number }): void
  /**
   * The session ended (unmounted from outside, or unmount() was called). No more
   * requests follow; requests still unanswered are dropped and replies become no-ops.
   */
  exit (): void
}

/**
 * Besides these, the mount always asks for async reads and atomic O_TRUNC, and
 * leaves the umask and clearing setuid/setgid bits on write to the kernel (but
 * for one case the client handles: src/client/killpriv.ts).
 */
export interface MountOptions {
  /**
   * -o options passed to libfuse (e.g. fsname=cudele, default_permissions, auto_unmount, allow_other),
   * one option per element (commas inside an element are kept, not split).
   */
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
  /**
   * Unmount (lazily) and stop the reader thread; exit() follows. Never blocks on
   * the reader. If processes still use the filesystem (a cwd or open file inside),
   * the kernel keeps the connection open: requests already delivered can still be
   * answered, and exit() comes once they let go or send another request (which,
   * like any request unanswered at exit, fails with ECONNABORTED). The session
   * keeps the process alive until exit().
   */
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
  /**
   * Packs entries until the kernel's buffer (size bytes of the request, never more
   * than the kernel asked for) is full; returns how many fit, or -1 for an unknown
   * req. Names longer than 1022 bytes are not supported.
   */
  replyReaddir (req: ReqId, size: number, entries: DirEntry[]): number
  /**
   * Like replyReaddir, with attributes: for entry i, attrs holds ATTR_LENGTH values at i*ATTR_LENGTH.
   * An entry with attrs ino 0 goes out without an entry (the kernel will look it up).
   * Each entry sent with attributes except '.' and '..' counts as a lookup (see Handlers).
   */
  replyReaddirPlus (req: ReqId, size: number, entries: DirEntry[], attrs: Float64Array, entryTimeout: number, attrTimeout: number): number
  /**
   * Cache invalidation, queued to a native thread so the caller never blocks. Sent
   * in order; dropped once the session ends. For notifyInvalInode, offset < 0
   * invalidates attributes only and length 0 means "to the end of the file".
   */
  notifyInvalEntry (parent: number, name: string): void
  notifyInvalInode (ino: number, offset: number, length: number): void
  /**
   * The fd of /dev/fuse for this session as libfuse opened it (for the fusectl
   * connection id lookup in tests). It is closed by unmount() and when the session ends.
   */
  readonly fd: number
}

export interface NativeBinding {
  /**
   * Mount at mountpoint and start reading requests. Throws an Error with a
   * clear message when the mount fails, with code (e.g. 'ENOENT', 'ENOTDIR',
   * 'EBUSY' for an existing mount point, 'ENODEV' without /dev/fuse, 'EACCES',
   * 'EPERM', 'EINVAL' for bad options), errno (negative, like Node's), syscall
   * 'mount' and path. attr is the shared attribute array (at least ATTR_LENGTH).
   * Handlers that are missing are not implemented (see the top of this file).
   */
  mount (mountpoint: string, opts: MountOptions, handlers: Partial<Handlers>, attr: Float64Array): Session
  /** getxattr(2) of a path (not following a final symlink): the value, or null when absent. Throws with code = errno name. */
  xattrGet (path: string, name: string): Buffer | null
  /** setxattr(2) of a path. Throws with code = errno name. */
  xattrSet (path: string, name: string, value: Buffer | string): void
}

let binding: NativeBinding | null = null

export function loadBinding (): NativeBinding {
  if (binding) return binding
  const file = path.join(__dirname, '..', '..', '..', 'native', 'build', 'Release', 'cudele_fuse.node')
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  binding = require(file) as NativeBinding
  return binding
}
