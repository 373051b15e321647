// The shapes of the shared vocabulary (src/common/types.ts, the data path's
// object writes) as they cross the wire: what the server checks before an
// argument reaches the MDS, the store or the monitor. Each is tied to its
// TypeScript type, so a field added to the type without a check here fails
// to compile.

import type { Caller, SetAttr } from '../common/types'
import type { Timespec } from '../common/time'
import type { ObjectWrite } from '../store/types'
import { bool, bytes, either, int, listOf, literal, record, type Shape, str, tagged, tuple, uint } from './shape'

/** Every field of T, each with the shape of its type (optional fields too). */
type FieldShapes<T> = { readonly [K in keyof T]-?: Shape<Exclude<T[K], undefined>> }

/** Inode numbers: 0 is nobody's (the MDS answers ENOENT), so any non-negative integer. */
export const ino: Shape<number> = { ...uint, what: 'an inode number' }
/** A name in a directory, a link target, an xattr name: a byte string (src/common/codec.ts); the MDS checks its length and characters. */
export const name: Shape<string> = { ...str, what: 'a name (a string)' }
/** mode, rdev and flag words. */
export const bits: Shape<number> = { ...uint, what: 'a non-negative integer (bits)' }
/** A client's request (transaction) id. */
export const tid: Shape<number> = { what: 'a positive integer', is: (v): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0 }

const callerFields = { uid: uint, gid: uint, pid: uint } as const satisfies FieldShapes<Caller>
export const caller: Shape<Caller> = record('a caller {uid, gid, pid}', callerFields)

const timespecFields = { s: int, ns: uint } as const satisfies FieldShapes<Timespec>
export const timespec: Shape<Timespec> = record('a time {s, ns}', timespecFields)
const timeOrNow = either(timespec, literal('now'))

const setAttrFields = {
  mode: uint,
  uid: uint,
  gid: uint,
  size: uint,
  grow: bool,
  atime: timeOrNow,
  mtime: timeOrNow,
  ctime: timespec,
  relatime: bool
} as const satisfies FieldShapes<SetAttr>
export const setAttr: Shape<SetAttr> = record('an attribute change', {}, setAttrFields)

/**
 * The operations a client puts in a data object write: payload only (a file's
 * data objects have no omap or xattrs, and guards are the MDS's business).
 */
const dataOp = tagged('a data object operation', 'op', {
  create: record('create', { op: literal('create'), exclusive: bool }),
  write: record('write', { op: literal('write'), offset: uint, data: bytes }),
  writeFull: record('writeFull', { op: literal('writeFull'), data: bytes }),
  append: record('append', { op: literal('append'), data: bytes }),
  truncate: record('truncate', { op: literal('truncate'), size: uint }),
  zero: record('zero', { op: literal('zero'), offset: uint, length: uint }),
  remove: record('remove', { op: literal('remove') })
})

/** A write of a file's data objects (the handler checks the pool is the data pool). */
export const objectWrite: Shape<ObjectWrite> = record('an object write {pool, name, ops}', { pool: str, name: str, ops: listOf(dataOp) })
export const objectWrites = listOf(objectWrite)

/** Client journal segments: [sequence number, encoded events]. */
export const segments = listOf(tuple(uint, bytes))

/** What a client held before the server restarted: [inode, open handles] and [inode, capability bits]. */
export const reclaim = record('what to reclaim {opens, caps}', {}, { opens: listOf(tuple(ino, uint)), caps: listOf(tuple(ino, bits)) })
