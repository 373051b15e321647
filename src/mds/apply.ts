// Applying a journal event to the namespace: the one code path shared by live
// operations (the MDS validates, builds the event, then applies it), journal
// replay at start-up, and merges of client journals.
//
// Application is deterministic: the event carries its times and inode numbers.
// It is also forgiving, because merged client journals are applied blindly
// (the decoupled client's updates win): creating over an existing name replaces
// it, removing an absent name does nothing. Returns false when the event could
// not apply (a missing parent, for instance), so replay can report it.

import { now } from '../common/time'
import { EventType, SA, type Event, type LinkEvent, type MknodEvent, type RenameEvent, type SetAttrEvent } from './events'
import { type Inode, UNKNOWN_BLOCKS } from './inode'
import type { Namespace } from './namespace'
import { type Ino, isDir, isLnk, RENAME_EXCHANGE, S_IFMT } from '../common/types'
import type { Timespec } from '../common/time'

export function applyEvent (ns: Namespace, ev: Event): boolean {
  switch (ev.type) {
    case EventType.Mknod: return applyMknod(ns, ev)
    case EventType.Link: return applyLink(ns, ev)
    case EventType.Unlink: return removeEntry(ns, ev.parent, ev.name, ev.time)
    case EventType.Rename: return applyRename(ns, ev)
    case EventType.SetAttr: return applySetAttr(ns, ev)
    case EventType.SetXattr: {
      const inode = ns.cache.getInode(ev.ino)
      if (!inode) return false
      if (!inode.xattrs) inode.xattrs = new Map()
      inode.xattrs.set(ev.name, ev.value)
      inode.ctime = ev.time
      ns.cache.dirtyInode(inode)
      return true
    }
    case EventType.RemoveXattr: {
      const inode = ns.cache.getInode(ev.ino)
      if (!inode) return false
      inode.xattrs?.delete(ev.name)
      if (inode.xattrs?.size === 0) inode.xattrs = null
      inode.ctime = ev.time
      ns.cache.dirtyInode(inode)
      return true
    }
    case EventType.Purge: {
      const inode = ns.cache.getInode(ev.ino)
      if (!inode) return false
      ns.cache.removeInode(ev.ino)
      ns.strays.remove(ev.ino)
      return true
    }
    case EventType.Request:
      ns.completed.add(ev.client, ev.tid)
      return true
    case EventType.Claim:
      ns.claims.set({ root: ev.root, owner: ev.owner, inoStart: ev.inoStart, count: ev.count, mergedSeq: 0, used: ev.inoStart })
      if (ev.count > 0) ns.inotable.bump(ev.inoStart + ev.count - 1)
      return true
    case EventType.Unclaim:
      ns.claims.delete(ev.root)
      return true
    case EventType.Merged:
      ns.claims.setMerged(ev.root, ev.seq)
      return true
  }
}

function dirOf (ns: Namespace, ino: Ino): Inode | null {
  const inode = ns.cache.getInode(ino)
  return inode && isDir(inode.mode) ? inode : null
}

/**
 * The inode a create or link finds under its name, if any (0: none). An
 * empty directory (its inode counts its entries exactly; rmdir's ENOTEMPTY
 * relies on that too) has none to find: it is marked complete instead of
 * asking the store, so a merge that fills a directory whose cached state was
 * evicted meanwhile does not read the store, and remember a negative entry,
 * for every name it creates.
 */
function entryIno (ns: Namespace, parent: Inode, name: string): Ino {
  if (parent.nentries === 0) {
    ns.cache.markComplete(parent.ino)
    return 0
  }
  return ns.cache.getDentry(parent.ino, name)?.ino ?? 0
}

function touchDir (ns: Namespace, dir: Inode, time: Timespec): void {
  dir.mtime = time
  dir.ctime = time
  ns.cache.dirtyInode(dir)
}

function applyMknod (ns: Namespace, ev: MknodEvent): boolean {
  const parent = dirOf(ns, ev.parent)
  if (!parent) return false
  const found = entryIno(ns, parent, ev.name)
  // The same create applied again (a client journal applied with the journal
  // tool, then merged by its owner): the inode is there already, with its
  // links, entries and data.
  if (found === ev.ino) return true
  if (found !== 0) removeEntry(ns, ev.parent, ev.name, ev.time)
  const dir = isDir(ev.mode)
  const inode: Inode = {
    ino: ev.ino,
    mode: ev.mode,
    uid: ev.uid,
    gid: ev.gid,
    nlink: dir ? 2 : 1,
    size: isLnk(ev.mode) ? ev.target.length : 0,
    rdev: ev.rdev,
    atime: ev.time,
    mtime: ev.time,
    ctime: ev.time,
    parent: dir ? ev.parent : 0,
    nentries: 0,
    target: ev.target,
    xattrs: null,
    blocks: 0
  }
  ns.cache.dirtyInode(inode)
  // A create applied again after its file was removed brings it back: it is
  // no stray waiting for purge any more.
  ns.strays.remove(ev.ino)
  ns.cache.setDentry(ev.parent, ev.name, ev.ino, ev.mode & S_IFMT)
  if (dir) {
    ns.cache.markComplete(ev.ino)
    parent.nlink++
  }
  parent.nentries++
  touchDir(ns, parent, ev.time)
  ns.inotable.bump(ev.ino)
  ns.claims.noteCreated(ev.ino)
  return true
}

function applyLink (ns: Namespace, ev: LinkEvent): boolean {
  const parent = dirOf(ns, ev.parent)
  const inode = ns.cache.getInode(ev.ino)
  if (!parent || !inode || isDir(inode.mode)) return false
  const found = entryIno(ns, parent, ev.name)
  // The same link applied again: the name is there already.
  if (found === ev.ino) return true
  if (found !== 0) removeEntry(ns, ev.parent, ev.name, ev.time)
  if (inode.nlink === 0) ns.strays.remove(inode.ino)
  inode.nlink++
  inode.ctime = ev.time
  ns.cache.dirtyInode(inode)
  ns.cache.setDentry(ev.parent, ev.name, ev.ino, inode.mode & S_IFMT)
  parent.nentries++
  touchDir(ns, parent, ev.time)
  return true
}

/** Remove a dentry and drop a link of its inode (unlink, rmdir, and replacement by create/rename). */
function removeEntry (ns: Namespace, parentIno: Ino, name: string, time: Timespec): boolean {
  const parent = dirOf(ns, parentIno)
  const d = ns.cache.getDentry(parentIno, name)
  if (!parent || !d) return false
  ns.cache.removeDentry(parentIno, name)
  parent.nentries = Math.max(0, parent.nentries - 1)
  const inode = ns.cache.getInode(d.ino)
  if (inode) {
    if (isDir(inode.mode)) {
      parent.nlink = Math.max(2, parent.nlink - 1)
      inode.nlink = 0
    } else {
      inode.nlink = Math.max(0, inode.nlink - 1)
    }
    inode.ctime = time
    ns.cache.dirtyInode(inode)
    if (inode.nlink === 0) {
      ns.strays.add(inode.ino)
      ns.hooks.linksGone(inode)
    }
  }
  touchDir(ns, parent, time)
  return true
}

function applyRename (ns: Namespace, ev: RenameEvent): boolean {
  const src = ns.cache.getDentry(ev.parent, ev.name)
  const oldParent = dirOf(ns, ev.parent)
  const newParent = dirOf(ns, ev.newParent)
  if (!src || !oldParent || !newParent) return false
  const inode = ns.cache.getInode(src.ino)
  if (!inode) return false
  const dst = ns.cache.getDentry(ev.newParent, ev.newName)

  if (ev.flags & RENAME_EXCHANGE) {
    if (!dst) return false
    const other = ns.cache.getInode(dst.ino)
    if (!other) return false
    ns.cache.setDentry(ev.parent, ev.name, dst.ino, dst.type)
    ns.cache.setDentry(ev.newParent, ev.newName, src.ino, src.type)
    if (oldParent !== newParent) {
      moveDirLink(inode, oldParent, newParent)
      moveDirLink(other, newParent, oldParent)
    }
    inode.ctime = ev.time
    other.ctime = ev.time
    ns.cache.dirtyInode(inode)
    ns.cache.dirtyInode(other)
  } else {
    // Renaming a name onto another link of the same inode does nothing (POSIX).
    if (dst && dst.ino === src.ino) return true
    if (dst) removeEntry(ns, ev.newParent, ev.newName, ev.time)
    ns.cache.removeDentry(ev.parent, ev.name)
    ns.cache.setDentry(ev.newParent, ev.newName, src.ino, src.type)
    oldParent.nentries = Math.max(0, oldParent.nentries - 1)
    newParent.nentries++
    if (oldParent !== newParent) moveDirLink(inode, oldParent, newParent)
    inode.ctime = ev.time
    ns.cache.dirtyInode(inode)
  }
  touchDir(ns, oldParent, ev.time)
  if (newParent !== oldParent) touchDir(ns, newParent, ev.time)
  return true
}

/** A directory moved between parents takes its ".." link along. */
function moveDirLink (inode: Inode, from: Inode, to: Inode): void {
  if (!isDir(inode.mode)) return
  from.nlink = Math.max(2, from.nlink - 1)
  to.nlink++
  inode.parent = to.ino
}

function applySetAttr (ns: Namespace, ev: SetAttrEvent): boolean {
  const inode = ns.cache.getInode(ev.ino)
  if (!inode) return false
  if (ev.mask & SA.MODE) inode.mode = (inode.mode & S_IFMT) | (ev.mode & ~S_IFMT)
  if (ev.mask & SA.UID) inode.uid = ev.uid
  if (ev.mask & SA.GID) inode.gid = ev.gid
  if (ev.mask & SA.SIZE) inode.size = ev.size
  if (ev.mask & SA.ATIME) inode.atime = ev.atime
  if (ev.mask & SA.MTIME) inode.mtime = ev.mtime
  if (ev.mask & SA.BLOCKS) inode.blocks = ev.blocks ?? UNKNOWN_BLOCKS
  inode.ctime = ev.ctime
  ns.cache.dirtyInode(inode)
  return true
}

/** The current time, for building events. */
export const eventTime = now
