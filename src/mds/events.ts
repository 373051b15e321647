// Journal events: the one format for metadata updates.
//
// The MDS journal, client journals (decoupled subtrees) and `cudele journal`
// all use it, and one function (apply.ts) applies an event to the metadata, so
// recovery, merges and live operations share a code path. Events carry
// everything needed to apply them deterministically (times are resolved, new
// inode numbers chosen) and are varint-packed: a create is about 30 bytes plus
// the name.

import { Decoder, Encoder } from '../common/codec'
import type { Timespec } from '../common/time'
import type { Ino } from '../common/types'

export const enum EventType {
  Mknod = 1,
  Link = 2,
  Unlink = 3,
  Rename = 4,
  SetAttr = 5,
  SetXattr = 6,
  RemoveXattr = 7,
  Purge = 8,
  Request = 9,
  Claim = 10,
  Unclaim = 11,
  Merged = 12
}

/** SetAttr mask bits: which fields the event sets. */
export const SA = {
  MODE: 1,
  UID: 2,
  GID: 4,
  SIZE: 8,
  ATIME: 16,
  MTIME: 32,
  /** The data's block count (a data commit); absent from events written before it existed. */
  BLOCKS: 64
} as const

export interface MknodEvent {
  type: EventType.Mknod
  parent: Ino
  name: string
  ino: Ino
  mode: number
  uid: number
  gid: number
  rdev: number
  time: Timespec
  /** Symlinks: the target. */
  target: string
}

export interface LinkEvent {
  type: EventType.Link
  ino: Ino
  parent: Ino
  name: string
  time: Timespec
}

/** Removes a dentry (unlink and rmdir). */
export interface UnlinkEvent {
  type: EventType.Unlink
  parent: Ino
  name: string
  time: Timespec
}

export interface RenameEvent {
  type: EventType.Rename
  parent: Ino
  name: string
  newParent: Ino
  newName: string
  /** RENAME_EXCHANGE swaps; otherwise an existing target is replaced. */
  flags: number
  time: Timespec
}

export interface SetAttrEvent {
  type: EventType.SetAttr
  ino: Ino
  mask: number
  mode: number
  uid: number
  gid: number
  size: number
  atime: Timespec
  mtime: Timespec
  /** With SA.BLOCKS: the new block count, UNKNOWN_BLOCKS (-1) when not counted. */
  blocks?: number
  /** The change time: always set. */
  ctime: Timespec
}

export interface SetXattrEvent {
  type: EventType.SetXattr
  ino: Ino
  name: string
  value: Buffer
  time: Timespec
}

export interface RemoveXattrEvent {
  type: EventType.RemoveXattr
  ino: Ino
  name: string
  time: Timespec
}

/** The inode (no links, no opens) and its data are gone. */
export interface PurgeEvent {
  type: EventType.Purge
  ino: Ino
}

/**
 * Marks that a client's request (its session name and transaction id) was
 * carried out by the events that follow it. After a server restart a client
 * replays the requests it was not told were safe; this is how the MDS knows
 * which of them it has already done.
 */
export interface RequestEvent {
  type: EventType.Request
  client: string
  tid: number
}

/**
 * A client decoupled a subtree (Cudele): it owns it and may create inodes
 * numbered [inoStart, inoStart+count) there until it lets go.
 */
export interface ClaimEvent {
  type: EventType.Claim
  root: Ino
  owner: string
  inoStart: Ino
  count: number
}

export interface UnclaimEvent {
  type: EventType.Unclaim
  root: Ino
}

/** The owner's client journal of a subtree is merged up to segment seq. */
export interface MergedEvent {
  type: EventType.Merged
  root: Ino
  seq: number
}

export type Event = MknodEvent | LinkEvent | UnlinkEvent | RenameEvent | SetAttrEvent | SetXattrEvent | RemoveXattrEvent | PurgeEvent | RequestEvent | ClaimEvent | UnclaimEvent | MergedEvent

const ZERO: Timespec = { s: 0, ns: 0 }

function ts (enc: Encoder, t: Timespec): void {
  enc.sint(t.s).uint(t.ns)
}

function readTs (d: Decoder): Timespec {
  return { s: d.sint(), ns: d.uint() }
}

export function encodeEvent (enc: Encoder, ev: Event): void {
  enc.u8(ev.type)
  switch (ev.type) {
    case EventType.Mknod:
      enc.uint(ev.parent).str(ev.name).uint(ev.ino).uint(ev.mode).uint(ev.uid).uint(ev.gid).uint(ev.rdev)
      ts(enc, ev.time)
      enc.str(ev.target)
      break
    case EventType.Link:
      enc.uint(ev.ino).uint(ev.parent).str(ev.name)
      ts(enc, ev.time)
      break
    case EventType.Unlink:
      enc.uint(ev.parent).str(ev.name)
      ts(enc, ev.time)
      break
    case EventType.Rename:
      enc.uint(ev.parent).str(ev.name).uint(ev.newParent).str(ev.newName).uint(ev.flags)
      ts(enc, ev.time)
      break
    case EventType.SetAttr:
      enc.uint(ev.ino).uint(ev.mask)
      if (ev.mask & SA.MODE) enc.uint(ev.mode)
      if (ev.mask & SA.UID) enc.uint(ev.uid)
      if (ev.mask & SA.GID) enc.uint(ev.gid)
      if (ev.mask & SA.SIZE) enc.uint(ev.size)
      if (ev.mask & SA.ATIME) ts(enc, ev.atime)
      if (ev.mask & SA.MTIME) ts(enc, ev.mtime)
      // +1: 0 stands for "not counted".
      if (ev.mask & SA.BLOCKS) enc.uint((ev.blocks ?? -1) + 1)
      ts(enc, ev.ctime)
      break
    case EventType.SetXattr:
      enc.uint(ev.ino).str(ev.name).bytes(ev.value)
      ts(enc, ev.time)
      break
    case EventType.RemoveXattr:
      enc.uint(ev.ino).str(ev.name)
      ts(enc, ev.time)
      break
    case EventType.Purge:
      enc.uint(ev.ino)
      break
    case EventType.Request:
      enc.str(ev.client).uint(ev.tid)
      break
    case EventType.Claim:
      enc.uint(ev.root).str(ev.owner).uint(ev.inoStart).uint(ev.count)
      break
    case EventType.Unclaim:
      enc.uint(ev.root)
      break
    case EventType.Merged:
      enc.uint(ev.root).uint(ev.seq)
      break
    default:
      throw new RangeError(`unknown event type ${(ev as Event).type}`)
  }
}

/**
 * Mknod events for names[i] with inode firstIno + i, everything else shared,
 * exactly as encodeEvent encodes them one by one: the bytes before the name
 * and after the inode number are the same for all of them, so they are
 * encoded once (a decoupled client's createMany).
 */
export function encodeCreates (enc: Encoder, parent: Ino, names: string[], firstIno: Ino, mode: number, uid: number, gid: number, time: Timespec): void {
  const head = new Encoder(16).u8(EventType.Mknod).uint(parent).finish()
  const tailEnc = new Encoder(32).uint(mode).uint(uid).uint(gid).uint(0)
  ts(tailEnc, time)
  const tail = tailEnc.str('').finish()
  for (let i = 0; i < names.length; i++) enc.raw(head).str(names[i]).uint(firstIno + i).raw(tail)
}

export function decodeEvent (d: Decoder): Event {
  const type = d.u8()
  switch (type) {
    case EventType.Mknod: {
      const parent = d.uint(); const name = d.str(); const ino = d.uint(); const mode = d.uint()
      const uid = d.uint(); const gid = d.uint(); const rdev = d.uint(); const time = readTs(d)
      return { type, parent, name, ino, mode, uid, gid, rdev, time, target: d.str() }
    }
    case EventType.Link: {
      const ino = d.uint(); const parent = d.uint(); const name = d.str()
      return { type, ino, parent, name, time: readTs(d) }
    }
    case EventType.Unlink: {
      const parent = d.uint(); const name = d.str()
      return { type, parent, name, time: readTs(d) }
    }
    case EventType.Rename: {
      const parent = d.uint(); const name = d.str(); const newParent = d.uint(); const newName = d.str()
      const flags = d.uint()
      return { type, parent, name, newParent, newName, flags, time: readTs(d) }
    }
    case EventType.SetAttr: {
      const ino = d.uint(); const mask = d.uint()
      const mode = mask & SA.MODE ? d.uint() : 0
      const uid = mask & SA.UID ? d.uint() : 0
      const gid = mask & SA.GID ? d.uint() : 0
      const size = mask & SA.SIZE ? d.uint() : 0
      const atime = mask & SA.ATIME ? readTs(d) : ZERO
      const mtime = mask & SA.MTIME ? readTs(d) : ZERO
      if (mask & SA.BLOCKS) {
        const blocks = d.uint() - 1
        return { type, ino, mask, mode, uid, gid, size, atime, mtime, blocks, ctime: readTs(d) }
      }
      return { type, ino, mask, mode, uid, gid, size, atime, mtime, ctime: readTs(d) }
    }
    case EventType.SetXattr: {
      const ino = d.uint(); const name = d.str(); const value = d.bytes()
      return { type, ino, name, value, time: readTs(d) }
    }
    case EventType.RemoveXattr: {
      const ino = d.uint(); const name = d.str()
      return { type, ino, name, time: readTs(d) }
    }
    case EventType.Purge:
      return { type, ino: d.uint() }
    case EventType.Request: {
      const client = d.str()
      return { type, client, tid: d.uint() }
    }
    case EventType.Claim: {
      const root = d.uint(); const owner = d.str(); const inoStart = d.uint()
      return { type, root, owner, inoStart, count: d.uint() }
    }
    case EventType.Unclaim:
      return { type, root: d.uint() }
    case EventType.Merged: {
      const root = d.uint()
      return { type, root, seq: d.uint() }
    }
    default:
      throw new RangeError(`unknown event type ${type} at byte ${d.pos - 1}`)
  }
}

/** Decode a journal object's payload: events back to back. */
export function decodeEvents (payload: Uint8Array): Event[] {
  const d = new Decoder(payload)
  const out: Event[] = []
  while (!d.done) out.push(decodeEvent(d))
  return out
}

export function eventName (ev: Event): string {
  switch (ev.type) {
    case EventType.Mknod: return 'mknod'
    case EventType.Link: return 'link'
    case EventType.Unlink: return 'unlink'
    case EventType.Rename: return 'rename'
    case EventType.SetAttr: return 'setattr'
    case EventType.SetXattr: return 'setxattr'
    case EventType.RemoveXattr: return 'removexattr'
    case EventType.Purge: return 'purge'
    case EventType.Request: return 'request'
    case EventType.Claim: return 'claim'
    case EventType.Unclaim: return 'unclaim'
    case EventType.Merged: return 'merged'
  }
}

/**
 * Marks the MDS writes about requests, claims and merges: they say how the
 * journal came to be, not what the namespace holds, so an apply of a
 * client journal file leaves them behind.
 */
export function isMarkerEvent (ev: Event): boolean {
  return ev.type === EventType.Request || ev.type === EventType.Claim || ev.type === EventType.Unclaim || ev.type === EventType.Merged
}

/** An event in words, for messages (replay problems, refused journals). */
export function describeEvent (ev: Event): string {
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
