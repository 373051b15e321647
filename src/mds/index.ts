// The MDS as the rest of cudele sees it: one interface (MetadataServer) and
// the functions that bring one up, fork a subtree off it, check it, and read
// or extend its journal. Nothing outside src/mds imports anything but this
// file, and nothing outside reads or writes an MDS's fields: what a server,
// Cudele's registry or a decoupled client needs is a method here.
//
// The interface speaks of namespaces, requests and claims, not of one
// process: a second rank answers it over the protocol the same way.

import type { HealthCheck } from '../common/health'
import type { Attr, Caller, Ino, MdsApi, SetAttr } from '../common/types'
import type { LocalStore, ObjectWrite } from '../store/types'
import { checkNamespace as check, type FsckOptions, type FsckReport } from './fsck'
import type { Event } from './events'
import type { JournalStats } from './journal'
import { Mds } from './mds'
import { openMds as open, type OpenMdsOptions } from './open'

export type { OpenMdsOptions } from './open'
export { DEFAULT_MDS_OPTIONS, type MdsOptions } from './mds'
export type { FsckOptions, FsckProblem, FsckReport } from './fsck'
export { forkSubtree, type ForkSpec, type SubtreeCopy } from './fork'
export { readJournalSegments, appendJournalSegments, type JournalSegment } from './journalstore'
export { decodeEvents, decodeEvent, eventName, EventType, isMarkerEvent, type Event } from './events'
export { CapTable } from './caps'
export { CompletedRequests } from './namespace'
export type { JournalStats } from './journal'

/** Bring an MDS up on a store: format it if new (unless read-only), then replay its journal. */
export async function openMds (store: LocalStore, opts: OpenMdsOptions = {}): Promise<MetadataServer> {
  return await open(store, opts)
}

/** Check a store's namespace and data as this MDS (opened on it, journal replayed) sees them. */
export function checkNamespace (mds: MetadataServer, store: LocalStore, opts: FsckOptions = {}): FsckReport {
  if (!(mds instanceof Mds)) throw new TypeError('fsck checks an MDS opened on the store by openMds')
  return check(mds, store, opts)
}

/**
 * One client request being carried out, passed to every change it makes.
 * Its events are preceded by a Request marker in the same journal object, so
 * that a replay of the request after a restart is recognised; the MDS notes
 * in it what became of the request.
 */
export interface RequestContext {
  /** The session (client) name and the request's transaction id. */
  readonly client: string
  readonly tid: number
  /**
   * A replayed create asks for the inode number its first run handed out (0:
   * none): if that number is free, the client's later requests that name it
   * find the same file again.
   */
  readonly replayIno: number
  /** Set by the MDS: the request's changes are in the journal (behind its marker). */
  journaled: boolean
  /** Set by the MDS: some of its changes are not journaled; the next trim stores them. */
  unstored: boolean
}

export function requestContext (client: string, tid: number, replayIno = 0): RequestContext {
  return { client, tid, replayIno, journaled: false, unstored: false }
}

/** A decoupled subtree's owner and the inode numbers set aside for it. */
export interface ClaimInfo {
  readonly root: Ino
  readonly owner: string
  readonly inoStart: Ino
  readonly count: number
  /** The owner's client journal is merged up to this segment (0: nothing yet). */
  readonly mergedSeq: number
}

/** Everything under a directory, as the MDS has it, in its own encoding (opaque outside src/mds). */
export interface SubtreeSnapshot {
  /** [directory, name, inode, type] for every entry of the subtree. */
  dentries: Array<[Ino, string, Ino, number]>
  /** [inode, encoded inode record] for the root and everything under it. */
  inodes: Array<[Ino, Uint8Array]>
}

/** What a merge or an apply of client journal events did. */
export interface ApplyResult {
  applied: number
  /** Events whose target was gone (the decoupled client's view was older). */
  skipped: number
}

/**
 * Told how far requests are safe: around every journal batch (committed in
 * the store) and around every trim (unjournaled changes stored).
 */
export interface SafetyWatcher {
  /** A journal batch goes to the store; `request` rode in it with its own writes (data.commit). */
  journalSubmitted (request: RequestContext | null): unknown
  /** The batch of that token is in the store. */
  journalCommitted (token: unknown): void
  /** A trim took its snapshot. */
  trimTaken (): unknown
  /** The trim of that token is in the store. */
  trimStored (token: unknown): void
}

export interface MdsStats {
  cache: { inodes: number, dentries: number }
  journal: JournalStats
}

/**
 * The metadata server: the namespace operations clients use (MdsApi), each
 * change optionally carried out for a client request, plus what servers and
 * Cudele need. Failures throw FsError with the errno a user sees.
 */
export interface MetadataServer extends MdsApi {
  // ---- namespace (synchronous up to the journal) ----
  lookup (parent: Ino, name: string): Attr
  /** Like lookup, but null instead of ENOENT (negative answers are common and must be cheap). */
  lookupOrNull (parent: Ino, name: string): Attr | null
  getattr (ino: Ino): Attr
  /** An inode's attributes, or null if it does not exist. */
  statOrNull (ino: Ino): Attr | null
  /** A directory's parent (the root is its own), or null if ino is not a directory. */
  parentOrNull (ino: Ino): Ino | null
  setattr (ino: Ino, change: SetAttr, req?: RequestContext): Attr
  mknod (parent: Ino, name: string, mode: number, rdev: number, caller: Caller, req?: RequestContext): Attr
  mkdir (parent: Ino, name: string, mode: number, caller: Caller, req?: RequestContext): Attr
  symlink (parent: Ino, name: string, target: string, caller: Caller, req?: RequestContext): Attr
  link (ino: Ino, newParent: Ino, newName: string, req?: RequestContext): Attr
  unlink (parent: Ino, name: string, req?: RequestContext): void
  rmdir (parent: Ino, name: string, req?: RequestContext): void
  rename (parent: Ino, name: string, newParent: Ino, newName: string, flags: number, req?: RequestContext): void
  readlink (ino: Ino): string
  setxattr (ino: Ino, name: string, value: Buffer, flags: number, req?: RequestContext): void
  getxattr (ino: Ino, name: string): Buffer
  /** Like getxattr, but null when the inode or the attribute is not there. */
  xattrOrNull (ino: Ino, name: string): Buffer | null
  listxattr (ino: Ino): string[]
  removexattr (ino: Ino, name: string, req?: RequestContext): void
  open (ino: Ino): Attr
  release (ino: Ino): void
  /**
   * Commit data writes together with the attribute change they imply,
   * atomically. `attr` is the new state at once; `committed` resolves when
   * the batch is in the store.
   */
  commitData (ino: Ino, writes: ObjectWrite[], change: SetAttr, durable: boolean, req?: RequestContext): { attr: Attr, committed: Promise<unknown> }
  /**
   * Wait until everything so far is safe; `unstored`: changes of subtrees
   * that do not stream too (a client ending its session wants all it did stored).
   */
  sync (durable: boolean, unstored?: boolean): Promise<void>

  // ---- Cudele: streams, claims, merges ----
  /**
   * Cudele's stream mechanism per subtree: is a change in this directory
   * journaled? null: everywhere. Changes that are not wait for the next trim.
   */
  setStreamPolicy (stream: ((dir: Ino) => boolean) | null): void
  /** Store now what was not journaled (a client journal must merge on top of what the store has). */
  storeUnjournaled (): Promise<void>
  /** Give `owner` the subtree at root, with `count` inode numbers set aside for it. */
  claim (root: Ino, owner: string, count: number, req?: RequestContext): ClaimInfo
  unclaim (root: Ino, req?: RequestContext): void
  claimOf (root: Ino): ClaimInfo | null
  claims (): ClaimInfo[]
  /**
   * Everything under root, and the first inode number of root's claim not
   * used yet (a claim taken back goes on from there: never a number a file of
   * the namespace has, or had before its purge). Throws EFBIG past maxEntries.
   */
  exportSubtree (root: Ino, maxEntries: number): { snapshot: SubtreeSnapshot, nextIno: Ino }
  /**
   * Merge client journal segments (volatile apply): applied in memory, the
   * segments themselves journaled as they are, behind the request's marker
   * and followed by a Merged mark, in one journal object.
   */
  mergeSegments (segments: Uint8Array[], merged: { root: Ino, seq: number }, req?: RequestContext): ApplyResult & { committed: Promise<unknown> }
  /**
   * Apply client journal events blindly (the decoupled client wins): an
   * administrator's apply, or nonvolatile apply. journal: stream them into
   * the MDS journal too; otherwise the next trim stores them.
   */
  applyClientEvents (events: Event[], journal: boolean, merged?: { root: Ino, seq: number }, req?: RequestContext): ApplyResult

  // ---- sessions ----
  /** Has the MDS carried out this request of this client (so a replay must not do it again)? */
  requestCompleted (client: string, tid: number): boolean
  /** The oldest request the client still keeps for replay (0: nothing known of it). */
  completedFloor (client: string): number
  setCompletedFloor (client: string, floor: number): void
  /** A client that ended its session for good needs nothing kept. */
  forgetClient (client: string): void
  watchSafety (watcher: SafetyWatcher): void

  // ---- operation ----
  stats (): MdsStats
  /** Problems met while replaying the journal at start-up. */
  replayProblems (): readonly string[]
  /** Background work that is failing (trims, purges, the inode table), retried with backoff. */
  healthChecks (): HealthCheck[]
  /** Finish purges and trims, then stop background work. */
  close (): Promise<void>
}
