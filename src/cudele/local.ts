// The subtree service of an embedded mount: the registry is in this process.

import type { Ino } from '../common/types'
import { DATA_POOL, METADATA_POOL } from '../common/layout'
import type { LocalStore, ObjectWrite } from '../store/types'
import { fsError } from '../common/errors'
import type { SubtreeRegistry } from './registry'
import { type PolicyCounts, type PolicyInfo, segmentObject, segmentPrefix, type SubtreeService } from './service'

export class LocalSubtreeService implements SubtreeService {
  private readonly listeners: Array<(epoch: number) => void> = []

  constructor (private readonly registry: SubtreeRegistry, private readonly store: LocalStore, subscribe: (fn: (epoch: number) => void) => void) {
    subscribe(epoch => { for (const l of this.listeners) l(epoch) })
  }

  async policyOf (dir: Ino): Promise<PolicyInfo> {
    return policyInfo(this.registry, dir)
  }

  async policyEpoch (): Promise<PolicyCounts> {
    return policyCounts(this.registry)
  }

  setPolicy (dir: Ino, yaml: string, path: string, by: string) { return this.registry.setPolicy(dir, yaml, path, by) }
  claim (dir: Ino, owner: string) { return this.registry.claim(dir, owner) }
  merge (root: Ino, owner: string, segments: Array<[number, Uint8Array]>) { return this.registry.merge(root, owner, segments) }
  release (root: Ino, owner: string): Promise<void> { return this.registry.letGo(root, owner) }

  async putSegment (root: Ino, owner: string, seq: number, bytes: Uint8Array): Promise<void> {
    await this.store.submit([{ pool: METADATA_POOL, name: segmentObject(owner, root, seq), ops: [{ op: 'writeFull', data: bytes }] }], { durable: true })
  }

  async dropSegments (root: Ino, owner: string, upToSeq: number): Promise<void> {
    await dropStoredSegments(this.store, owner, root, upToSeq)
  }

  async storedSegments (root: Ino, owner: string): Promise<Array<[number, Uint8Array]>> {
    return readStoredSegments(this.store, owner, root)
  }

  async writeData (writes: ObjectWrite[], durable: boolean): Promise<void> {
    checkDataWrites(writes)
    await this.store.submit(writes, { durable })
  }

  onPolicyChange (listener: (epoch: number) => void): void {
    this.listeners.push(listener)
  }
}

export function policyCounts (registry: SubtreeRegistry): PolicyCounts {
  return { epoch: registry.epoch, decoupled: registry.decoupledCount, localStrong: registry.localStrongCount }
}

export function policyInfo (registry: SubtreeRegistry, dir: Ino): PolicyInfo {
  const eff = registry.effective(dir)
  const owner = eff.root === null ? null : registry.ownerOf(dir)?.owner ?? null
  return { root: eff.root, path: eff.entry?.path ?? null, policy: eff.policy, version: eff.entry?.version ?? 0, owner, epoch: registry.epoch }
}

export function checkDataWrites (writes: ObjectWrite[]): void {
  for (const w of writes) if (w.pool !== DATA_POOL) throw fsError('EINVAL', `data writes go to the ${DATA_POOL} pool only`)
}

export function readStoredSegments (store: LocalStore, owner: string, root: Ino): Array<[number, Uint8Array]> {
  const prefix = segmentPrefix(owner, root)
  const out: Array<[number, Uint8Array]> = []
  let after: string | undefined
  for (;;) {
    const names = store.listSync(METADATA_POOL, { prefix, after, limit: 512 })
    for (const name of names) {
      const seq = parseInt(name.slice(prefix.length), 16)
      const st = store.statSync(METADATA_POOL, name)
      const bytes = store.readSync(METADATA_POOL, name, 0, st?.size ?? 0)
      if (bytes && Number.isFinite(seq)) out.push([seq, bytes])
    }
    if (names.length < 512) return out.sort((a, b) => a[0] - b[0])
    after = names[names.length - 1]
  }
}

export async function dropStoredSegments (store: LocalStore, owner: string, root: Ino, upToSeq: number): Promise<void> {
  const removes: ObjectWrite[] = readStoredSegments(store, owner, root)
    .filter(([seq]) => seq <= upToSeq)
    .map(([seq]) => ({ pool: METADATA_POOL, name: segmentObject(owner, root, seq), ops: [{ op: 'remove' }] }))
  if (removes.length > 0) await store.submit(removes, { durable: false })
}
