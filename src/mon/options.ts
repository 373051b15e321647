// The monitor's options and the named limits that bound everything it holds.

import { fsError } from '../common/errors'

/** What a monitor commit round produced; told to MonitorOptions.onCommit. */
export interface CommitRecord {
  /** The new epoch of every map the round changed. */
  epochs: ReadonlyMap<string, number>
  /** performance.now() when the store batch resolved, before any subscriber was told. */
  committedAt: number
}

export interface MonitorOptions {
  /**
   * How long proposals are gathered before they are committed together, in
   * ms. Default 1 (Ceph's default is 1 s, because its rounds cost a Paxos
   * exchange between monitors; ours cost one local store batch). 0 commits
   * on the next turn of the event loop (setImmediate), which still gathers
   * every proposal made in the current one.
   */
  proposalIntervalMs?: number
  /** Epochs of each map kept readable (getEpoch); older ones are trimmed. Default 500. */
  historyEpochs?: number
  /** Proposals (and setWriters calls) waiting for a round; beyond it propose fails with EAGAIN. Default 10,000. */
  maxQueuedProposals?: number
  /** Cluster log entries held in memory (recentLog, followLog). Default 10,000. */
  logRingEntries?: number
  /** Cluster log entries kept in the store; older ones are trimmed. Default 10,000. */
  logPersistedEntries?: number
  /** Log entries not riding on a proposal round are written at most this long after they were logged. Default 100. */
  logFlushMs?: number
  /** Observer of each committed round (benchmarks, the RPC server's stats). Must not throw. */
  onCommit?: (record: CommitRecord) => void
}

export const DEFAULT_PROPOSAL_INTERVAL_MS = 1
export const DEFAULT_HISTORY_EPOCHS = 500
export const DEFAULT_MAX_QUEUED_PROPOSALS = 10_000
export const DEFAULT_LOG_RING_ENTRIES = 10_000
export const DEFAULT_LOG_PERSISTED_ENTRIES = 10_000
export const DEFAULT_LOG_FLUSH_MS = 100

/** Maps the monitor holds: the monitor is for a few named maps, not a key-value store. */
export const MAX_MAPS = 1024
export const MAX_MAP_NAME_CHARS = 256
/** Serialized size of one map value. The paper's guideline: keep map values small. */
export const MAX_MAP_VALUE_BYTES = 1024 * 1024
export const MAX_WRITERS = 256
export const MAX_WRITER_NAME_CHARS = 256
/** Subscribers of one map at a time. */
export const MAX_SUBSCRIBERS_PER_MAP = 10_000
/** Followers of the cluster log at a time. */
export const MAX_LOG_FOLLOWERS = 1_000
/** Longer messages are cut (and say so). */
export const MAX_LOG_MESSAGE_CHARS = 4096
export const MAX_LOG_WHO_CHARS = 128

/** Options with every default filled in and checked. */
export type ResolvedOptions = Required<Omit<MonitorOptions, 'onCommit'>> & Pick<MonitorOptions, 'onCommit'>

export function resolveOptions (opts: MonitorOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    proposalIntervalMs: opts.proposalIntervalMs ?? DEFAULT_PROPOSAL_INTERVAL_MS,
    historyEpochs: opts.historyEpochs ?? DEFAULT_HISTORY_EPOCHS,
    maxQueuedProposals: opts.maxQueuedProposals ?? DEFAULT_MAX_QUEUED_PROPOSALS,
    logRingEntries: opts.logRingEntries ?? DEFAULT_LOG_RING_ENTRIES,
    logPersistedEntries: opts.logPersistedEntries ?? DEFAULT_LOG_PERSISTED_ENTRIES,
    logFlushMs: opts.logFlushMs ?? DEFAULT_LOG_FLUSH_MS,
    onCommit: opts.onCommit
  }
  const whole = (name: keyof ResolvedOptions, min: number): void => {
    const v = r[name]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw fsError('EINVAL', `monitor option ${name} must be an integer >= ${min} (got ${String(v)})`)
    }
  }
  whole('proposalIntervalMs', 0)
  whole('historyEpochs', 1)
  whole('maxQueuedProposals', 1)
  whole('logRingEntries', 1)
  whole('logPersistedEntries', 1)
  whole('logFlushMs', 0)
  return r
}
