// What the control interface reads (the virtual extended attributes of a
// directory, VXATTR in service.ts, and `cudele policy show`): the policy in
// force and where it comes from, and the state of a decoupled subtree's
// client journal.

import type { Ino } from '../common/types'
import type { DecoupledSubtree } from './decoupled'
import { describePolicy, policyMeaning } from './policy'
import type { PolicyInfo } from './service'

/** What `cudele policy show` prints (user.cudele.policy). */
export function policyReport (dir: Ino, info: PolicyInfo, tree: DecoupledSubtree | undefined, localIsStore: boolean): Record<string, unknown> {
  return {
    directory: dir,
    source: info.root === null ? 'default (no policies.yml in this directory or above it)' : `${info.path} (inode ${info.root})`,
    version: info.version,
    epoch: info.epoch,
    consistency: info.policy.consistency,
    durability: info.policy.durability,
    consistency_mechanisms: info.policy.consistencyExpr,
    durability_mechanisms: info.policy.durabilityExpr || 'none',
    allocated_inodes: info.policy.allocatedInodes,
    interfere: info.policy.interfere,
    sync_interval_ms: info.policy.syncIntervalMs,
    summary: describePolicy(info.policy),
    means: policyMeaning(info.policy, localIsStore),
    owner: info.owner,
    owned_here: tree !== undefined,
    unmerged_segments: tree?.unmergedSegments ?? 0
  }
}

/** The client journal of the decoupled subtree holding an inode (user.cudele.journal). */
export function journalReport (t: DecoupledSubtree | null): Record<string, unknown> {
  if (!t) return { decoupled: false }
  return {
    decoupled: true,
    root: t.root,
    owner: t.owner,
    inodes: `${t.inoStart}..${t.inoEnd - 1}`,
    unmerged_segments: t.unmergedSegments,
    journal_events: t.journalEvents,
    journal_bytes: t.stats.journalBytes,
    merges: t.stats.merges,
    merged_events: t.stats.mergedEvents
  }
}
