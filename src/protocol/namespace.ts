// The protocol's methods of sessions, the namespace, file data and
// capabilities: what a client mount and the library call for every
// operation (src/client/remote.ts), answered by src/server/methods.ts.

import type { ErrnoName } from '../common/errors'
import type { Attr, DirEntry, FsStats } from '../common/types'
import { arg, mutation, query, reply } from './method'
import { bool, bytes, nullable, optional, shortStr, str, uint } from './shape'
import { bits, caller, ino, name, objectWrites, reclaim, setAttr } from './vocabulary'

/** What session.open answers. */
export interface SessionOpened {
  session: number
  /** The server still had this client's session (a reconnect, not a restart or an eviction). */
  resumed: boolean
  /** Changes at every server start: a client that sees a new one reclaims and replays. */
  bootId: string
  /** How often the client should say it is alive (notify hb). */
  heartbeatMs: number
  /** A session silent this long is evicted. */
  timeoutMs: number
}

/** The capabilities granted on a file, and for how long. */
export interface CapsGrant {
  /** CAP_CACHE / CAP_BUFFER bits (src/common/caps.ts). */
  caps: number
  /** The grant runs out after this many ms unless renewed (0: no lease). */
  leaseMs: number
}

export interface OpenReply extends CapsGrant {
  attr: Attr
}

/** Every method that needs a session: it has none yet (ENOTCONN), or it ended or moved to another connection (ESTALE). */
export const SESSION_ERRNOS: readonly ErrnoName[] = ['ENOTCONN', 'ESTALE']
/**
 * Every change: the store is read-only (EROFS), the subtree is owned by
 * another client with interfere: block (EBUSY), no inode numbers or space
 * left (ENOSPC).
 */
export const CHANGE_ERRNOS: readonly ErrnoName[] = [...SESSION_ERRNOS, 'EROFS', 'EBUSY', 'ENOSPC']
const CREATE_ERRNOS: readonly ErrnoName[] = [...CHANGE_ERRNOS, 'ENOENT', 'ENOTDIR', 'EEXIST', 'ENAMETOOLONG']
const XATTR_NAME_ERRNOS: readonly ErrnoName[] = ['ERANGE', 'EOPNOTSUPP']

/** Longest client name a session takes. */
export const SESSION_NAME_MAX = 128

export const namespaceMethods = {
  'session.open': query({
    doc: 'Open the session of a client, or take it back after a reconnect (same name); a new session reclaims the open files and capabilities the client still holds',
    args: [arg('client name', shortStr(SESSION_NAME_MAX)), arg('reclaim', optional(nullable(reclaim))), arg('owner', optional(nullable(str)))],
    reply: reply<SessionOpened>(),
    errnos: []
  }),
  'session.close': query({
    doc: 'End the session: the server forgets which requests it did for the client and releases what the client held',
    args: [],
    reply: reply<null>(),
    errnos: SESSION_ERRNOS
  }),

  // ---- reads ----
  lookup: query({
    doc: 'The attributes of an entry of a directory (a BUFFER holder of the file flushes first)',
    args: [arg('parent', ino), arg('name', name)],
    reply: reply<Attr>(),
    errnos: [...SESSION_ERRNOS, 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG']
  }),
  lookupOrNull: query({
    doc: 'Like lookup, but null for no such entry (negative answers are common and must be cheap)',
    args: [arg('parent', ino), arg('name', name)],
    reply: reply<Attr | null>(),
    errnos: [...SESSION_ERRNOS, 'ENOENT', 'ENOTDIR', 'ENAMETOOLONG']
  }),
  getattr: query({
    doc: "An inode's attributes (a BUFFER holder of the file flushes first)",
    args: [arg('ino', ino)],
    reply: reply<Attr>(),
    errnos: [...SESSION_ERRNOS, 'ENOENT']
  }),
  readlink: query({
    doc: "A symbolic link's target",
    args: [arg('ino', ino)],
    reply: reply<string>(),
    errnos: [...SESSION_ERRNOS, 'ENOENT']
  }),
  readdir: query({
    doc: 'Entries of a directory after a name (null: from the start), in name order, at most limit (at most 4096; 0: 512)',
    args: [arg('ino', ino), arg('after', nullable(name)), arg('limit', uint)],
    reply: reply<DirEntry[]>(),
    errnos: [...SESSION_ERRNOS, 'ENOENT', 'ENOTDIR']
  }),
  getxattr: query({
    doc: 'The value of an extended attribute',
    args: [arg('ino', ino), arg('name', name)],
    reply: reply<Uint8Array>(),
    errnos: [...SESSION_ERRNOS, 'ENOENT', 'ENODATA', ...XATTR_NAME_ERRNOS]
  }),
  listxattr: query({
    doc: "An inode's extended attribute names",
    args: [arg('ino', ino)],
    reply: reply<string[]>(),
    errnos: [...SESSION_ERRNOS, 'ENOENT']
  }),
  statfs: query({
    doc: 'Space and inode counts of the filesystem',
    args: [],
    reply: reply<FsStats>(),
    errnos: SESSION_ERRNOS
  }),
  sync: query({
    doc: 'Answer once every change so far is committed (durable: on stable storage; unstored: changes of subtrees that do not stream are stored too)',
    args: [arg('durable', bool), arg('unstored', optional(bool))],
    reply: reply<null>(),
    errnos: SESSION_ERRNOS
  }),
  'data.read': query({
    doc: 'Bytes of a data object (null: no such object); at most 64 MiB',
    args: [arg('object', str), arg('offset', uint), arg('length', uint)],
    reply: reply<Uint8Array | null>(),
    errnos: SESSION_ERRNOS
  }),
  'data.list': query({
    doc: 'Names of data objects with a prefix, after a name (null: from the start), at most limit (at most 4096; 0: 512)',
    args: [arg('prefix', str), arg('after', nullable(str)), arg('limit', uint)],
    reply: reply<string[]>(),
    errnos: SESSION_ERRNOS
  }),

  // ---- open files and capabilities ----
  open: mutation({
    doc: 'Open a file for open(2) flags, with the capabilities they allow (another holder of BUFFER gives it back first)',
    args: [arg('ino', ino), arg('flags', bits)],
    reply: reply<OpenReply>(),
    errnos: [...SESSION_ERRNOS, 'EROFS', 'ENOENT']
  }),
  release: mutation({
    doc: 'Close one handle of a file; the last close gives back its capabilities',
    args: [arg('ino', ino)],
    reply: reply<null>(),
    errnos: [...SESSION_ERRNOS, 'EROFS', 'EBADF', 'ENOENT']
  }),
  'caps.acquire': query({
    doc: 'Ask (again) for capability bits on an open file, e.g. to renew a lease',
    args: [arg('ino', ino), arg('bits', bits)],
    reply: reply<CapsGrant>(),
    errnos: SESSION_ERRNOS
  }),
  'caps.release': query({
    doc: 'Give back capability bits (after a revoke)',
    args: [arg('ino', ino), arg('bits', bits)],
    reply: reply<null>(),
    errnos: SESSION_ERRNOS
  }),

  // ---- changes ----
  mknod: mutation({
    doc: 'Create a regular file, device node, FIFO or socket',
    args: [arg('parent', ino), arg('name', name), arg('mode', bits), arg('rdev', bits), arg('caller', caller)],
    reply: reply<Attr>(),
    creates: true,
    errnos: [...CREATE_ERRNOS, 'EINVAL']
  }),
  mkdir: mutation({
    doc: 'Create a directory',
    args: [arg('parent', ino), arg('name', name), arg('mode', bits), arg('caller', caller)],
    reply: reply<Attr>(),
    creates: true,
    errnos: CREATE_ERRNOS
  }),
  symlink: mutation({
    doc: 'Create a symbolic link',
    args: [arg('parent', ino), arg('name', name), arg('target', name), arg('caller', caller)],
    reply: reply<Attr>(),
    creates: true,
    errnos: CREATE_ERRNOS
  }),
  link: mutation({
    doc: 'Make another name for an inode',
    args: [arg('ino', ino), arg('new parent', ino), arg('new name', name)],
    reply: reply<Attr>(),
    errnos: [...CREATE_ERRNOS, 'EPERM', 'EXDEV']
  }),
  unlink: mutation({
    doc: 'Remove a name (not a directory); an open file lives on until its last release',
    args: [arg('parent', ino), arg('name', name)],
    reply: reply<null>(),
    errnos: [...CHANGE_ERRNOS, 'ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG']
  }),
  rmdir: mutation({
    doc: 'Remove an empty directory',
    args: [arg('parent', ino), arg('name', name)],
    reply: reply<null>(),
    errnos: [...CHANGE_ERRNOS, 'ENOENT', 'ENOTDIR', 'ENOTEMPTY', 'ENAMETOOLONG']
  }),
  rename: mutation({
    doc: 'Move a name (flags: RENAME_NOREPLACE, RENAME_EXCHANGE)',
    args: [arg('parent', ino), arg('name', name), arg('new parent', ino), arg('new name', name), arg('flags', bits)],
    reply: reply<null>(),
    errnos: [...CHANGE_ERRNOS, 'ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOTEMPTY', 'ENAMETOOLONG', 'EXDEV', 'ELOOP']
  }),
  setattr: mutation({
    doc: 'Change attributes (only the fields present)',
    args: [arg('ino', ino), arg('change', setAttr)],
    reply: reply<Attr>(),
    errnos: [...CHANGE_ERRNOS, 'ENOENT', 'EISDIR', 'EFBIG']
  }),
  setxattr: mutation({
    doc: 'Set an extended attribute (flags: XATTR_CREATE, XATTR_REPLACE)',
    args: [arg('ino', ino), arg('name', name), arg('value', bytes), arg('flags', bits)],
    reply: reply<null>(),
    errnos: [...CHANGE_ERRNOS, 'ENOENT', 'EEXIST', 'ENODATA', 'E2BIG', ...XATTR_NAME_ERRNOS]
  }),
  removexattr: mutation({
    doc: 'Remove an extended attribute',
    args: [arg('ino', ino), arg('name', name)],
    reply: reply<null>(),
    errnos: [...CHANGE_ERRNOS, 'ENOENT', 'ENODATA', ...XATTR_NAME_ERRNOS]
  }),
  'data.commit': mutation({
    doc: "Write a file's data objects (data pool only) together with the attribute change they imply, atomically; answers once the data is in the store",
    args: [arg('ino', ino), arg('writes', objectWrites), arg('change', setAttr), arg('durable', bool)],
    reply: reply<Attr>(),
    errnos: [...CHANGE_ERRNOS, 'ENOENT', 'EISDIR', 'EFBIG']
  })
} as const
