// The monitor: service metadata as named, versioned maps.
//
// A map has a name (mdsmap, policymap, classmap, balancermap, ...) and a
// value (any JSON value). Every committed change makes a new epoch, which is
// persisted in the object store before anyone sees it, and then pushed to
// every subscriber. Subscribers (MDS ranks, clients, the store's class
// runtime) never read local files for service metadata: they get it here.
//
// Proposals are not committed one by one: the monitor gathers them for
// `proposalIntervalMs` and commits each touched map once (one new epoch per
// map per round), the way Ceph's Paxos batches proposals.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

export interface MapState {
  name: string
  epoch: number
  value: JsonValue
  /** When this epoch was committed (ms since the epoch). */
  committedAtMs: number
}

/** Who proposes a change: checked against the map's writers. */
export interface Proposer {
  /** A client name (session name) or a component ('mds.0', 'cli', 'mon'). */
  name: string
}

/**
 * A change to a map: a function from the current value to the new value, run
 * at commit time (so concurrent proposals compose instead of overwriting each
 * other). Throwing rejects the proposal with that error.
 */
export type MapChange = (current: JsonValue) => JsonValue

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export interface LogEntry {
  /** Monotonic sequence number of the entry. */
  seq: number
  timeMs: number
  level: LogLevel
  /** Who logged it: 'mds.0', 'mon', 'store', 'client.<name>', 'lua', ... */
  who: string
  message: string
}

export interface MonitorApi {
  /**
   * The current state of a map (epoch 0 and value null if it never existed).
   * The value is frozen: it is the one every subscriber got, so nobody may
   * change it in place.
   */
  get (map: string): MapState
  /** Names of all maps that have at least one epoch, sorted. */
  maps (): string[]
  /**
   * Propose a change; resolves with the committed state once it is durable
   * (and has been pushed to subscribers). Rejects with EACCES if the proposer
   * may not write this map, or with the error the change function threw.
   * Every accepted proposal makes a new epoch, even when the value it
   * returns equals the current one: an epoch then means "a change was
   * committed", and a proposer always learns the epoch that holds its change.
   * The change function gets its own copy of the current value (it may
   * change it in place and return it).
   */
  propose (map: string, change: MapChange, by: Proposer): Promise<MapState>
  /**
   * Be told of every epoch of a map from now on (and at once of the current
   * one, if fromEpoch is below it). Returns an unsubscribe function.
   * "At once" is synchronous: the listener has the current state before
   * subscribe returns. Each epoch reaches a listener once, in epoch order.
   */
  subscribe (map: string, fromEpoch: number, listener: (state: MapState) => void): () => void
  /**
   * Restrict who may change a map (null: anyone). Itself a committed, persisted
   * change, ordered with the proposals around it; only someone who may write
   * the map may change its writers. It does not make a new epoch: writers are
   * not part of the map's value.
   */
  setWriters (map: string, writers: string[] | null, by: Proposer): Promise<void>
  /** Who may change a map (null: anyone), as committed. */
  writers (map: string): string[] | null
  /**
   * An older epoch of a map, while it is still in the kept history (the
   * monitor trims old epochs); null once trimmed or if it never existed.
   */
  getEpoch (map: string, epoch: number): Promise<MapState | null>
  /** Add an entry to the cluster log (persisted, bounded). */
  log (level: LogLevel, who: string, message: string): void
  /**
   * The most recent entries, oldest first (at most `limit`), optionally only
   * those after seq (still the most recent `limit` of them).
   */
  recentLog (limit: number, afterSeq?: number): LogEntry[]
  /**
   * Follow the cluster log (`cudele log --follow`): the listener gets every
   * entry still in memory with a seq above afterSeq, synchronously, then each
   * new entry as it is logged, in seq order. Returns a function that stops it.
   * A listener that throws is stopped (and that is logged).
   */
  followLog (afterSeq: number, listener: (entry: LogEntry) => void): () => void
}
