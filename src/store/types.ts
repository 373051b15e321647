// The object store interface: RADOS-like pools of named objects.
//
// An object has a byte payload (read/written at offsets, sparse: unwritten
// ranges read as zeros), an omap (sorted key/value pairs with range reads) and
// xattrs (small named values). Every object carries a version that grows with
// each batch that changes it.
//
// Writes are submitted as batches of compound operations. The guarantees every
// backend gives:
//   - the ops of one ObjectWrite apply atomically to that object, in order;
//   - batches commit in submission order (a later batch never becomes durable
//     while an earlier one is lost);
//   - a whole batch commits atomically (the SQLite backend commits it in one
//     transaction; a distributed backend must provide the same, e.g. by
//     two-phase commit, because the MDS trims its journal with one batch).
// Reads see everything committed; a read never sees part of a batch.
//
// Names are strings. Omap keys and values, xattr values and payloads are bytes.
//
// Refinements every backend keeps (so that replaying a journal twice is harmless):
//   - ops that store something (create, write, writeFull, append, truncate,
//     omapSet, setXattr) create the object when it is absent;
//   - ops that only take something away (remove, zero, omapRemove,
//     omapRemoveRange, omapClear, removeXattr) do nothing to an absent object;
//     put assertExists before them to make absence an error;
//   - an ObjectWrite with at least one op other than a guard bumps the object's
//     version by exactly one and sets its mtime, once, when it ends; a new
//     object has version 1; an object removed and recreated within one
//     ObjectWrite continues its version, one removed in an earlier batch starts
//     again at 1;
//   - guards see the object as the earlier ops of the same ObjectWrite left it,
//     and the version it had when that ObjectWrite began;
//   - names sort by their UTF-8 bytes; omap keys by unsigned bytes (memcmp).

import type { OmapEntries } from './omap'
import type { SnapshotReaderSpec } from './snapshot'

export type PoolName = string

/** One operation on one object; an ObjectWrite holds several, applied atomically. */
export type ObjectOp =
  /** Create the object if absent; with exclusive, fail with EEXIST if it exists. */
  | { op: 'create'; exclusive: boolean }
  /** Write bytes at an offset; the object grows as needed (a gap reads as zeros). */
  | { op: 'write'; offset: number; data: Uint8Array }
  /** Replace the whole payload. */
  | { op: 'writeFull'; data: Uint8Array }
  /** Write at the current end of the payload. */
  | { op: 'append'; data: Uint8Array }
  /** Set the payload size: shrinking drops bytes, growing adds a hole. */
  | { op: 'truncate'; size: number }
  /** Turn a range into a hole (reads as zeros) without changing the size. */
  | { op: 'zero'; offset: number; length: number }
  /** Remove the object with its payload, omap and xattrs (no error if absent; use assertExists to require it). Later ops in the same write recreate it. */
  | { op: 'remove' }
  /** Set omap keys (insert or replace). Like every write op, creates the object if absent. Entries may come packed (omap.ts). */
  | { op: 'omapSet'; entries: OmapEntries }
  /** Remove omap keys; absent keys are ignored. */
  | { op: 'omapRemove'; keys: Uint8Array[] }
  /** Remove omap keys in [start, end) (end undefined: to the last key). */
  | { op: 'omapRemoveRange'; start: Uint8Array; end?: Uint8Array }
  | { op: 'omapClear' }
  | { op: 'setXattr'; name: string; value: Uint8Array }
  | { op: 'removeXattr'; name: string }
  /** Guards: the whole batch fails (nothing applies) when a guard does not hold. */
  | { op: 'assertExists' }
  | { op: 'assertVersion'; version: number }

export interface ObjectWrite {
  pool: PoolName
  name: string
  ops: ObjectOp[]
}

export interface SubmitOptions {
  /**
   * true: the batch is on stable storage (fsync'd) when the promise resolves.
   * false: it is committed (survives a crash of this process) but may still be
   * in the OS page cache. Either way later batches wait behind it.
   */
  durable: boolean
}

export interface CommitInfo {
  /** Monotonic commit sequence number of the transaction that held the batch. */
  seq: number
}

export interface ObjectStat {
  size: number
  version: number
  /** Last modification, ms since the epoch. */
  mtimeMs: number
}

export interface OmapEntry {
  key: Uint8Array
  value: Uint8Array
}

export interface OmapRange {
  /** Only keys strictly greater than this. */
  after?: Uint8Array
  /** Only keys >= start. */
  start?: Uint8Array
  /** Only keys < end. */
  end?: Uint8Array
  /** Only keys beginning with these bytes. */
  prefix?: Uint8Array
  /** At most this many entries (required: every listing is bounded). */
  limit: number
}

export interface ListRange {
  /** Only names strictly greater than this. */
  after?: string
  /** Only names beginning with this. */
  prefix?: string
  limit: number
}

export interface StoreUsage {
  /** Bytes of the backend's files on disk. */
  bytesUsed: number
  /** Free bytes on the device that holds the store, for unprivileged users (statfs f_bavail). */
  bytesFree: number
  /** Free bytes on that device including the blocks reserved for root (f_bfree). */
  bytesFreeTotal: number
  /** Total bytes of that device. */
  bytesTotal: number
  objects: number
}

/** The narrow interface every backend implements. */
export interface ObjectStore {
  /** Create a pool (no-op if present). */
  createPool (pool: PoolName): Promise<void>
  listPools (): Promise<PoolName[]>

  /**
   * Apply a batch of compound writes, atomically, after every earlier batch.
   * A batch that fails (a guard, ENOSPC, EIO) applies nothing. After a batch
   * fails with ENOSPC or EIO, batches submitted before its rejection was
   * delivered fail too: they may depend on it.
   * The payload buffers of a batch belong to the store once submit is called:
   * a backend may move them (the SQLite backend detaches large ones that own
   * their whole ArrayBuffer) instead of copying. Submit a copy to keep using one.
   */
  submit (batch: ObjectWrite[], opts: SubmitOptions): Promise<CommitInfo>
  /** Resolve once everything submitted so far is on stable storage. */
  sync (): Promise<CommitInfo>

  /** null when the object does not exist. */
  stat (pool: PoolName, name: string): Promise<ObjectStat | null>
  /** Bytes [offset, offset+length) clipped to the object's size; holes read as zeros. null when absent. */
  read (pool: PoolName, name: string, offset: number, length: number): Promise<Uint8Array | null>
  /** Values of the given keys (absent keys are left out). */
  omapGet (pool: PoolName, name: string, keys: Uint8Array[]): Promise<OmapEntry[]>
  /** Entries in key order within the range. */
  omapList (pool: PoolName, name: string, range: OmapRange): Promise<OmapEntry[]>
  getXattr (pool: PoolName, name: string, xattr: string): Promise<Uint8Array | null>
  listXattrs (pool: PoolName, name: string): Promise<Array<[string, Uint8Array]>>
  /** Object names of a pool in name order. */
  list (pool: PoolName, range: ListRange): Promise<string[]>

  usage (): Promise<StoreUsage>
  /** Finish every submitted batch, then release the backend's files. */
  close (): Promise<void>

  /**
   * Optional: how another thread of this process opens its own reader of
   * this store (snapshot.ts); absent or null when it cannot, and such a
   * reader asks this thread instead.
   */
  snapshotReader? (): SnapshotReaderSpec | null
}

/** Synchronous reads for components that live in the store's own process. */
export interface LocalReads {
  statSync (pool: PoolName, name: string): ObjectStat | null
  readSync (pool: PoolName, name: string, offset: number, length: number): Uint8Array | null
  omapGetSync (pool: PoolName, name: string, keys: Uint8Array[]): OmapEntry[]
  omapListSync (pool: PoolName, name: string, range: OmapRange): OmapEntry[]
  listSync (pool: PoolName, range: ListRange): string[]
}

/**
 * The errnos a backend raises:
 *   ENOENT     object or pool absent (assertExists, assertVersion on a missing object)
 *   EEXIST     create exclusive on an existing object
 *   ECANCELED  assertVersion did not hold
 *   ENOSPC     the device holding the store is full
 *   EIO        the backend failed (I/O error, writer thread died, store closed)
 *   EINVAL     a malformed request (negative offset, bad op, not a store directory)
 *   EROFS      a write to a store opened read-only
 *   EBUSY      the store is held by another process
 *   EFBIG      a write or truncate past the largest object size the backend supports
 */
export type StoreErrno = 'ENOENT' | 'EEXIST' | 'ENOSPC' | 'EIO' | 'ECANCELED' | 'EINVAL' | 'EROFS' | 'EBUSY' | 'EFBIG'

/** Raised by backends; errno is the POSIX code a filesystem user would see. */
export class StoreError extends Error {
  constructor (readonly errno: StoreErrno, message: string) {
    super(message)
    this.name = 'StoreError'
  }
}

/** A store that can also be read synchronously (its backend lives in this process). */
export type LocalStore = ObjectStore & LocalReads
