// What a client needs from the cluster for decoupled subtrees. The server
// answers over RPC (src/server/cudele.ts); an embedded mount calls the
// registry in its own process (src/cudele/local.ts).

import type { Ino } from '../common/types'
import type { ObjectWrite } from '../store/types'
import type { Policy } from './policy'
import type { ClaimGrant, PolicyEntry } from './registry'

export interface PolicyInfo {
  /** The directory whose policy applies (null: the defaults, set nowhere). */
  root: Ino | null
  path: string | null
  policy: Policy
  version: number
  /** Who owns (has decoupled) the subtree, if anyone. */
  owner: string | null
  /** The policymap epoch this answer is from. */
  epoch: number
}

/** What a merge of client journal segments did. */
export interface MergeResult {
  applied: number
  /** Events whose target was gone. */
  skipped: number
  /** The owner's journal is merged up to this segment. */
  mergedSeq: number
  /**
   * Other clients changed the subtree since the owner decoupled it (or last
   * merged): the owner's private copy does not show their changes, and should
   * be made afresh from the namespace.
   */
  refresh?: boolean
}

export interface PolicyCounts {
  epoch: number
  decoupled: number
  /** Strong subtrees with durability local (older servers do not say). */
  localStrong?: number
}

export interface SubtreeService {
  /** The policy in force for a directory. */
  policyOf (dir: Ino): Promise<PolicyInfo>
  /** The policymap epoch and how many decoupled and strong/local policies exist (a cheap "is there anything to do?"). */
  policyEpoch (): Promise<PolicyCounts>
  /** Check and commit a policy for a directory (through the monitor). */
  setPolicy (dir: Ino, yaml: string, path: string, by: string): Promise<PolicyEntry>
  /** Decouple the subtree holding dir for owner (or take back owner's claim). */
  claim (dir: Ino, owner: string): Promise<ClaimGrant>
  /** Merge client journal segments (seq, bytes) into the global namespace. */
  merge (root: Ino, owner: string, segments: Array<[number, Uint8Array]>): Promise<MergeResult>
  /** Let go of a subtree. */
  release (root: Ino, owner: string): Promise<void>
  /** global_persist: keep a segment in the object store until it is merged. */
  putSegment (root: Ino, owner: string, seq: number, bytes: Uint8Array): Promise<void>
  /** Drop stored segments up to seq (they are merged). */
  dropSegments (root: Ino, owner: string, upToSeq: number): Promise<void>
  /** Stored segments of an owner's subtree (after a crash of the client). */
  storedSegments (root: Ino, owner: string): Promise<Array<[number, Uint8Array]>>
  /** Data of files in a decoupled subtree: straight to the data pool, no MDS event. */
  writeData (writes: ObjectWrite[], durable: boolean): Promise<void>
  /** Be told when the policymap changes. */
  onPolicyChange (listener: (epoch: number) => void): void
}

/** Where global_persist keeps a client journal segment. */
export function segmentObject (owner: string, root: Ino, seq: number): string {
  return `cj.${owner}.${root.toString(16)}.${seq.toString(16).padStart(16, '0')}`
}

export function segmentPrefix (owner: string, root: Ino): string {
  return `cj.${owner}.${root.toString(16)}.`
}

/** A virtual extended attribute name of the control interface (not stored). */
export const VXATTR = {
  policy: 'user.cudele.policy',
  sync: 'user.cudele.sync',
  merge: 'user.cudele.merge',
  journal: 'user.cudele.journal'
} as const
