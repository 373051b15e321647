// Messages between the SqliteStore (caller's thread) and its writer thread.

import type { StoreErrno } from '../types'

/** What the writer needs to open the store. */
export interface WriterConfig {
  dir: string
  dbPath: string
  /** Run a PASSIVE checkpoint once the WAL holds this many bytes. */
  checkpointWalBytes: number
  /** Run a PASSIVE checkpoint after this long without work (if the WAL is not empty). */
  idleCheckpointMs: number
  /** How long a group that failed for lack of space is retried before its batches are rejected. */
  fullRetryMs: number
  /** Upper bounds of one group commit. */
  groupMaxBatches: number
  groupMaxBytes: number
}

/**
 * Requests carry an epoch: the number of failure notices (ENOSPC, EIO) the
 * caller's side had received when it sent them. A request sent before the
 * caller could know that an earlier batch failed may depend on that batch, so
 * the writer rejects it instead of committing it ahead of the lost one.
 */
export type WriterRequest =
  | { t: 'batch', id: number, epoch: number, durable: boolean, structure: ArrayBuffer, payloads: ArrayBuffer[], bytes: number }
  | { t: 'sync', id: number, epoch: number }
  | { t: 'createPool', id: number, epoch: number, name: string }
  | { t: 'close' }

export interface FailedRequest {
  id: number
  errno: StoreErrno
  message: string
}

export type WriterReply =
  | { t: 'ready', seq: number }
  /**
   * One group: done requests committed in transaction seq (or, for syncs, are
   * on stable storage); failed ones did not apply. failEpoch is set when the
   * group failed as a whole (ENOSPC/EIO): the caller's epoch becomes that.
   */
  | { t: 'group', seq: number, committed: boolean, done: number[], failed: FailedRequest[], failEpoch?: number }
  | { t: 'health', state: 'full' | 'ok' | 'ioerror', message: string, bytesFree: number }
  | { t: 'checkpoint', mode: string, walFrames: number, ms: number }
  | { t: 'closed' }
  | { t: 'fatal', message: string }
