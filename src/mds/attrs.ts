// The events of attribute changes: what a setattr, a data commit or a read
// (relatime) turns into, checked against the inode as it is.

import { fsError } from '../common/errors'
import { now, relatimeDue } from '../common/time'
import { isDir, isReg, type SetAttr } from '../common/types'
import { EventType, SA, type SetAttrEvent } from './events'
import type { Inode } from './inode'

/** A read or a listing: atime moves to now if relatime says it is due; ctime stays. */
export function readAtimeEvent (inode: Inode): SetAttrEvent | null {
  const time = now()
  if (!relatimeDue(inode, time)) return null
  return {
    type: EventType.SetAttr, ino: inode.ino, mask: SA.ATIME, mode: 0, uid: 0, gid: 0, size: 0,
    atime: time, mtime: time, ctime: inode.ctime
  }
}

/** The event of a setattr (null: nothing changes); EISDIR/EINVAL for a size that cannot be set. */
export function setAttrEvent (inode: Inode, change: SetAttr): SetAttrEvent | null {
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
