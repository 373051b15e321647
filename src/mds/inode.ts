// The in-memory inode and its record in the inode table.
//
// Inodes live in an inode table (omap of `inodes.<shard>` objects keyed by the
// 8-byte inode number) rather than inside their dentries, so hard links are
// plain extra dentries. The record is varint-packed: an empty file costs about
// 30 bytes.

import { Decoder, Encoder } from '../common/codec'
import type { Timespec } from '../common/time'
import { type Attr, type Ino, isDir, isLnk, isReg } from '../common/types'
import { objectBlocks } from '../common/layout'

export interface Inode {
  ino: Ino
  mode: number
  uid: number
  gid: number
  nlink: number
  size: number
  rdev: number
  atime: Timespec
  mtime: Timespec
  ctime: Timespec
  /** Directories: the parent directory (root: itself). */
  parent: Ino
  /** Directories: number of entries (files and subdirectories), for rmdir's ENOTEMPTY. */
  nentries: number
  /** Symlinks: the target, as a byte string. */
  target: string
  /** Extended attributes, null when none. */
  xattrs: Map<string, Buffer> | null
  /**
   * Regular files: 512-byte blocks its data objects hold (each object's length
   * rounded up to 4 KiB), what stat's st_blocks and du report. UNKNOWN_BLOCKS
   * when not counted (records from before the count, or changed where the store
   * could not be asked); the next data commit counts it again.
   */
  blocks: number
}

export const UNKNOWN_BLOCKS = -1


/** What stat reports: the count, or (not counted) the blocks the size would cover. */
export function reportedBlocks (inode: { blocks: number, size: number }): number {
  return inode.blocks >= 0 ? inode.blocks : objectBlocks(inode.size)
}

/** Version 2 added the block count; version 1 records (no count) still decode. */
const RECORD_VERSION = 2
const RECORD_VERSION_UNCOUNTED = 1
const HAS_XATTRS = 1
const HAS_RDEV = 2
const HAS_BLOCKS = 4
const BLOCKS_UNKNOWN = 8

export function encodeInode (inode: Inode, enc = new Encoder(64)): Buffer {
  encodeInodeInto(enc, inode)
  return enc.finish()
}

/** The record into enc (reset first): its view() holds it. */
export function encodeInodeInto (enc: Encoder, inode: Inode): void {
  enc.reset()
  let flags = 0
  if (inode.xattrs && inode.xattrs.size > 0) flags |= HAS_XATTRS
  if (inode.rdev !== 0) flags |= HAS_RDEV
  if (inode.blocks > 0) flags |= HAS_BLOCKS
  else if (inode.blocks < 0) flags |= BLOCKS_UNKNOWN
  enc.u8(RECORD_VERSION).u8(flags)
    .uint(inode.mode).uint(inode.uid).uint(inode.gid).uint(inode.nlink).uint(inode.size)
    .sint(inode.atime.s).uint(inode.atime.ns)
    .sint(inode.mtime.s).uint(inode.mtime.ns)
    .sint(inode.ctime.s).uint(inode.ctime.ns)
  if (flags & HAS_RDEV) enc.uint(inode.rdev)
  if (flags & HAS_BLOCKS) enc.uint(inode.blocks)
  if (isDir(inode.mode)) enc.uint(inode.parent).uint(inode.nentries)
  if (isLnk(inode.mode)) enc.str(inode.target)
  if (flags & HAS_XATTRS) {
    const x = inode.xattrs as Map<string, Buffer>
    enc.uint(x.size)
    for (const [k, v] of x) enc.str(k).bytes(v)
  }
}

export function decodeInode (ino: Ino, rec: Uint8Array): Inode {
  const d = new Decoder(rec)
  const version = d.u8()
  if (version !== RECORD_VERSION && version !== RECORD_VERSION_UNCOUNTED) throw new RangeError(`inode ${ino}: unknown record version ${version}`)
  const flags = d.u8()
  const mode = d.uint()
  const inode: Inode = {
    ino,
    mode,
    uid: d.uint(),
    gid: d.uint(),
    nlink: d.uint(),
    size: d.uint(),
    atime: { s: d.sint(), ns: d.uint() },
    mtime: { s: d.sint(), ns: d.uint() },
    ctime: { s: d.sint(), ns: d.uint() },
    rdev: 0,
    parent: 0,
    nentries: 0,
    target: '',
    xattrs: null,
    blocks: 0
  }
  if (flags & HAS_RDEV) inode.rdev = d.uint()
  if (flags & HAS_BLOCKS) inode.blocks = d.uint()
  else if (flags & BLOCKS_UNKNOWN) inode.blocks = UNKNOWN_BLOCKS
  else if (version === RECORD_VERSION_UNCOUNTED && isReg(mode) && inode.size > 0) inode.blocks = UNKNOWN_BLOCKS
  if (isDir(mode)) {
    inode.parent = d.uint()
    inode.nentries = d.uint()
  }
  if (isLnk(mode)) inode.target = d.str()
  if (flags & HAS_XATTRS) {
    const n = d.uint()
    inode.xattrs = new Map()
    for (let i = 0; i < n; i++) inode.xattrs.set(d.str(), d.bytes())
  }
  return inode
}

export function attrOf (inode: Inode): Attr {
  return {
    ino: inode.ino,
    mode: inode.mode,
    nlink: inode.nlink,
    uid: inode.uid,
    gid: inode.gid,
    rdev: inode.rdev,
    size: inode.size,
    blocks: reportedBlocks(inode),
    atime: inode.atime,
    mtime: inode.mtime,
    ctime: inode.ctime
  }
}
