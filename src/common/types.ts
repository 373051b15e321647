// The shared vocabulary of the filesystem: what crosses the boundaries between
// the FUSE adapter, the client, the protocol and the MDS (inode numbers,
// attributes, callers, the namespace operations), importable by every layer
// without importing any of them.

import type { Timespec } from './time'

export type Ino = number

export const ROOT_INO = 1

/** File type bits (S_IFMT) and types. */
export const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
export const S_IFIFO = 0o010000
export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000
export const S_IFSOCK = 0o140000
export const S_ISUID = 0o4000
export const S_ISGID = 0o2000
export const S_ISVTX = 0o1000

export const NAME_MAX = 255
export const SYMLINK_MAX = 4095

export function isDir (mode: number): boolean { return (mode & S_IFMT) === S_IFDIR }
export function isReg (mode: number): boolean { return (mode & S_IFMT) === S_IFREG }
export function isLnk (mode: number): boolean { return (mode & S_IFMT) === S_IFLNK }

/** An inode's attributes as a client sees them (stat). */
export interface Attr {
  ino: Ino
  mode: number
  nlink: number
  uid: number
  gid: number
  rdev: number
  size: number
  /** 512-byte blocks the file's data takes in the store (st_blocks). */
  blocks: number
  atime: Timespec
  mtime: Timespec
  ctime: Timespec
}

/** Who asks: used for ownership of new inodes. */
export interface Caller {
  uid: number
  gid: number
  pid: number
}

/** A setattr request: only the present fields change. */
export interface SetAttr {
  mode?: number
  uid?: number
  gid?: number
  size?: number
  /**
   * The size is a lower bound (a data write reaching that far), not a
   * truncate: a file another writer has already made longer keeps its size.
   */
  grow?: boolean
  /** A time, or 'now'. */
  atime?: Timespec | 'now'
  mtime?: Timespec | 'now'
  /** Set by the client when a data write or truncate changed the file. */
  ctime?: Timespec
  /**
   * A read or a directory listing happened (nothing else in the change counts):
   * atime moves to now if relatime says it is due, and ctime stays.
   */
  relatime?: boolean
}

export interface DirEntry {
  name: string
  ino: Ino
  /** S_IF* bits of the entry's type. */
  type: number
}

export const RENAME_NOREPLACE = 1
export const RENAME_EXCHANGE = 2

export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2

export interface FsStats {
  blockSize: number
  blocks: number
  blocksFree: number
  blocksAvail: number
  files: number
  filesFree: number
  nameMax: number
}

/**
 * The MDS operations a client uses. In embedded mode the client calls the MDS
 * directly (results may be plain values); over RPC they are promises. Either
 * way the client awaits them. Failures throw FsError with the user's errno.
 */
export interface MdsApi {
  lookup (parent: Ino, name: string): Attr | Promise<Attr>
  getattr (ino: Ino): Attr | Promise<Attr>
  setattr (ino: Ino, change: SetAttr): Attr | Promise<Attr>
  mknod (parent: Ino, name: string, mode: number, rdev: number, caller: Caller): Attr | Promise<Attr>
  mkdir (parent: Ino, name: string, mode: number, caller: Caller): Attr | Promise<Attr>
  symlink (parent: Ino, name: string, target: string, caller: Caller): Attr | Promise<Attr>
  link (ino: Ino, newParent: Ino, newName: string): Attr | Promise<Attr>
  unlink (parent: Ino, name: string): void | Promise<void>
  rmdir (parent: Ino, name: string): void | Promise<void>
  rename (parent: Ino, name: string, newParent: Ino, newName: string, flags: number): void | Promise<void>
  readlink (ino: Ino): string | Promise<string>
  /** Entries after `after` (null: from the start), in name order, at most limit. */
  readdir (ino: Ino, after: string | null, limit: number): DirEntry[] | Promise<DirEntry[]>
  setxattr (ino: Ino, name: string, value: Buffer, flags: number): void | Promise<void>
  getxattr (ino: Ino, name: string): Buffer | Promise<Buffer>
  listxattr (ino: Ino): string[] | Promise<string[]>
  removexattr (ino: Ino, name: string): void | Promise<void>
  /** An open file keeps an unlinked inode (and its data) alive until release. */
  open (ino: Ino): Attr | Promise<Attr>
  release (ino: Ino): void | Promise<void>
  /** Resolves when every change made so far is committed (durable: on stable storage). */
  sync (durable: boolean): Promise<void>
  statfs (): FsStats | Promise<FsStats>
}
