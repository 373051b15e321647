// The subtree service of a client mount: the server's registry over RPC.

import type { Ino } from '../common/types'
import type { ObjectWrite } from '../store/types'
import type { RemoteBackend } from '../client/remote'
import type { ClaimGrant, PolicyEntry } from './registry'
import type { MergeResult, PolicyCounts, PolicyInfo, SubtreeService } from './service'

export class RemoteSubtreeService implements SubtreeService {
  constructor (private readonly backend: RemoteBackend) {}

  policyOf (dir: Ino): Promise<PolicyInfo> { return this.backend.query('cudele.policyOf', [dir]) }
  policyEpoch (): Promise<PolicyCounts> { return this.backend.query('cudele.policyEpoch', []) }
  setPolicy (dir: Ino, yaml: string, path: string, by: string): Promise<PolicyEntry> { return this.backend.query('cudele.setPolicy', [dir, yaml, path, by]) }
  claim (dir: Ino, owner: string): Promise<ClaimGrant> { return this.backend.query('cudele.claim', [dir, owner]) }
  /** A merge is a request like any change: replayed after a reconnect, recognised if already done. */
  merge (root: Ino, owner: string, segments: Array<[number, Uint8Array]>): Promise<MergeResult> {
    return this.backend.mutate('cudele.merge', [root, owner, segments])
  }

  async release (root: Ino, owner: string): Promise<void> { await this.backend.query('cudele.release', [root, owner]) }
  async putSegment (root: Ino, owner: string, seq: number, bytes: Uint8Array): Promise<void> { await this.backend.query('cudele.putSegment', [root, owner, seq, bytes]) }
  async dropSegments (root: Ino, owner: string, upToSeq: number): Promise<void> { await this.backend.query('cudele.dropSegments', [root, owner, upToSeq]) }
  storedSegments (root: Ino, owner: string): Promise<Array<[number, Uint8Array]>> { return this.backend.query('cudele.storedSegments', [root, owner]) }
  async writeData (writes: ObjectWrite[], durable: boolean): Promise<void> { await this.backend.query('data.write', [writes, durable]) }

  onPolicyChange (listener: (epoch: number) => void): void {
    this.backend.subscribeMap('policymap', state => listener(state.epoch))
  }
}
