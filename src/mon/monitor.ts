// The monitor (Malacology §4.1): named maps with epochs, changed by proposals
// that are gathered into rounds, committed durably to the object store in
// one batch per round, and then pushed to subscribers.
//
// A round, in order:
//   1. take every queued proposal; run each map's change functions in
//      proposal order against the evolving value (a change that throws, or a
//      proposer who may not write the map, rejects only that proposal);
//   2. write one new epoch per changed map, the index, and the pending cluster
//      log entries in ONE durable store batch;
//   3. install the new states, tell every subscriber of each changed map,
//      then resolve the proposals.
// One round is in flight at a time: the next one starts from committed
// values, so a failed batch (EIO, ENOSPC) leaves nothing half-applied behind
// it; its proposals are rejected with the store's error.

import { performance } from 'perf_hooks'
import { fsError } from '../common/errors'
import type { ObjectStore, ObjectWrite } from '../store/types'
import type { JsonValue, LogEntry, LogLevel, MapChange, MapState, MonitorApi, Proposer } from './types'
import { ClusterLog } from './clusterlog'
import { frozenValue, mutableValue, serializeValue } from './json'
import { MAX_MAP_NAME_CHARS, MAX_MAPS, MonitorOptions, ResolvedOptions, resolveOptions } from './options'
import { epochWrite, indexWrite, loadLog, loadMaps, logWrite, MON_POOL, readEpoch } from './persist'
import { Subscribers } from './subscribers'
import { accessDenied, checkWriters } from './writers'

/** A map as committed. */
interface Committed {
  state: MapState
  /** The value as JSON text: change functions get a fresh parse of it. */
  valueText: string
  writers: readonly string[] | null
}

type Proposal =
  | { kind: 'change', map: string, by: string, change: MapChange, resolve: (s: MapState) => void, reject: (e: unknown) => void }
  | { kind: 'writers', map: string, by: string, writers: readonly string[] | null, resolve: () => void, reject: (e: unknown) => void }

/** A map while a round applies its proposals. */
interface Working {
  name: string
  epoch: number
  valueText: string
  writers: readonly string[] | null
  valueChanged: boolean
  writersChanged: boolean
}

/** Stores with an open monitor: the monitor must be the only writer of pool mon. */
const openOn = new WeakSet<ObjectStore>()

export class Monitor implements MonitorApi {
  private readonly committed = new Map<string, Committed>()
  private readonly subscribers: Subscribers
  private readonly clusterLog: ClusterLog
  private queue: Proposal[] = []
  /** performance.now() when the oldest queued proposal arrived. */
  private firstQueuedAt = 0
  private roundTimer: NodeJS.Timeout | NodeJS.Immediate | null = null
  /** Set from the moment a round starts (its change functions may propose). */
  private roundRunning = false
  private roundDone: Promise<void> | null = null
  private logTimer: NodeJS.Timeout | null = null
  private logFlushing: Promise<void> | null = null
  private closing = false
  private closePromise: Promise<void> | null = null

  private constructor (private readonly store: ObjectStore, private readonly opts: ResolvedOptions, loadedLog: LogEntry[]) {
    this.subscribers = new Subscribers((map, epoch, err) => {
      this.log('error', 'mon', `a subscriber of map ${map} threw on epoch ${epoch}: ${describe(err)}`)
    })
    this.clusterLog = new ClusterLog(loadedLog, opts.logRingEntries, opts.logPersistedEntries, () => this.scheduleLogFlush())
  }

  /** Open the monitor on a store: creates pool mon, loads every map and the cluster log. */
  static async open (store: ObjectStore, options: MonitorOptions = {}): Promise<Monitor> {
    const opts = resolveOptions(options)
    if (openOn.has(store)) throw fsError('EBUSY', 'a monitor is already open on this store (it must be the only writer of pool mon)')
    openOn.add(store)
    try {
      await store.createPool(MON_POOL)
      const [maps, log] = await Promise.all([loadMaps(store), loadLog(store, opts.logRingEntries)])
      const mon = new Monitor(store, opts, log)
      for (const m of maps) mon.install(m.name, m.epoch, m.valueText, m.committedAtMs, m.writers)
      return mon
    } catch (err) {
      openOn.delete(store)
      throw err
    }
  }

  // ---- reads ----

  get (map: string): MapState {
    return this.committed.get(map)?.state ?? { name: map, epoch: 0, value: null, committedAtMs: 0 }
  }

  maps (): string[] {
    const out: string[] = []
    for (const [name, c] of this.committed) if (c.state.epoch > 0) out.push(name)
    return out.sort()
  }

  writers (map: string): string[] | null {
    const w = this.committed.get(map)?.writers ?? null
    return w === null ? null : [...w]
  }

  async getEpoch (map: string, epoch: number): Promise<MapState | null> {
    const current = this.get(map)
    if (!Number.isInteger(epoch) || epoch < 1 || epoch > current.epoch) return null
    if (epoch === current.epoch) return current
    const stored = await readEpoch(this.store, map, epoch)
    if (stored === null) return null
    return Object.freeze({ name: map, epoch, value: frozenValue(stored.valueText), committedAtMs: stored.committedAtMs })
  }

  // ---- changes ----

  propose (map: string, change: MapChange, by: Proposer): Promise<MapState> {
    return new Promise<MapState>((resolve, reject) => {
      if (typeof change !== 'function') throw fsError('EINVAL', `map ${map}: a proposal needs a change function`)
      this.enqueue({ kind: 'change', map, by: proposerName(by), change, resolve, reject })
    })
  }

  setWriters (map: string, writers: string[] | null, by: Proposer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.enqueue({ kind: 'writers', map, by: proposerName(by), writers: checkWriters(map, writers), resolve, reject })
    })
  }

  subscribe (map: string, fromEpoch: number, listener: (state: MapState) => void): () => void {
    checkMapName(map)
    if (typeof listener !== 'function') throw fsError('EINVAL', `map ${map}: a subscriber needs a listener function`)
    return this.subscribers.add(map, Number.isFinite(fromEpoch) ? fromEpoch : 0, listener, this.get(map))
  }

  // ---- cluster log ----

  log (level: LogLevel, who: string, message: string): void {
    this.clusterLog.append(level, who, message)
  }

  recentLog (limit: number, afterSeq?: number): LogEntry[] {
    return this.clusterLog.recent(Math.max(0, Math.floor(limit)), afterSeq)
  }

  followLog (afterSeq: number, listener: (entry: LogEntry) => void): () => void {
    if (typeof listener !== 'function') throw fsError('EINVAL', 'followLog needs a listener function')
    return this.clusterLog.follow(afterSeq, listener)
  }

  /**
   * Commit every queued proposal, write the pending log entries, and stop
   * taking proposals (they fail with EIO). Reads and subscriptions keep
   * working on the last state. The store stays open: it belongs to the caller.
   */
  async close (): Promise<void> {
    this.closePromise ??= this.shutDown()
    return await this.closePromise
  }

  private async shutDown (): Promise<void> {
    this.closing = true
    while (this.queue.length > 0 || this.roundDone !== null) {
      if (this.roundDone === null) this.startRound()
      await this.roundDone
    }
    if (this.logTimer !== null) clearTimeout(this.logTimer)
    this.logTimer = null
    await this.logFlushing
    await this.flushLog()
    openOn.delete(this.store)
  }

  // ---- rounds ----

  private enqueue (p: Proposal): void {
    checkMapName(p.map)
    if (this.closing) throw fsError('EIO', `map ${p.map}: the monitor is closed`)
    if (this.queue.length >= this.opts.maxQueuedProposals) {
      throw fsError('EAGAIN', `map ${p.map}: ${this.queue.length} proposals are already waiting, the limit (maxQueuedProposals)`)
    }
    if (this.queue.length === 0) this.firstQueuedAt = performance.now()
    this.queue.push(p)
    this.scheduleRound()
  }

  private scheduleRound (): void {
    if (this.roundTimer !== null || this.roundRunning || this.queue.length === 0) return
    const waitMs = this.firstQueuedAt + this.opts.proposalIntervalMs - performance.now()
    this.roundTimer = waitMs <= 0
      ? setImmediate(() => this.startRound())
      : setTimeout(() => this.startRound(), waitMs)
  }

  private startRound (): void {
    if (this.roundTimer !== null) {
      clearTimeout(this.roundTimer as NodeJS.Timeout)
      clearImmediate(this.roundTimer as NodeJS.Immediate)
      this.roundTimer = null
    }
    this.roundRunning = true
    // Swapped before the change functions run: one that proposes queues for the next round.
    const proposals = this.queue
    this.queue = []
    this.roundDone = this.runRound(proposals).catch(err => {
      // A bug, not a store failure (runRound handles those): settle everyone
      // rather than leave them waiting; rejecting a settled proposal does nothing.
      for (const p of proposals) p.reject(err)
      this.log('error', 'mon', `a proposal round failed: ${describe(err)}`)
    }).finally(() => {
      this.roundRunning = false
      this.roundDone = null
      this.scheduleRound()
    })
  }

  private async runRound (proposals: Proposal[]): Promise<void> {
    const accepted: Proposal[] = []
    const work = this.applyProposals(proposals, accepted)
    // Stored with the epoch, so taken before the batch: when the round was
    // sealed, a durable commit (a few ms at most) before it is on disk.
    const committedAtMs = Date.now()
    const writes: ObjectWrite[] = []
    const index: Array<{ name: string, epoch: number, writers: string[] | null }> = []
    const changed: Working[] = []
    for (const w of work.values()) {
      if (!w.valueChanged && !w.writersChanged) continue
      if (w.valueChanged) {
        w.epoch++
        writes.push(epochWrite(w.name, w.epoch, w.valueText, committedAtMs, this.opts.historyEpochs))
      }
      index.push({ name: w.name, epoch: w.epoch, writers: w.writers === null ? null : [...w.writers] })
      changed.push(w)
    }
    if (index.length === 0) return // every proposal was rejected: nothing to commit
    writes.push(indexWrite(index))
    const logEntries = this.clusterLog.takePending()
    if (logEntries.length > 0) writes.push(logWrite(logEntries, this.opts.logPersistedEntries))

    try {
      await this.store.submit(writes, { durable: true })
    } catch (err) {
      this.clusterLog.restorePending(logEntries)
      for (const p of accepted) p.reject(err)
      this.log('error', 'mon', `a proposal round could not be committed, ${accepted.length} proposal(s) rejected: ${describe(err)}`)
      return
    }
    const committedAt = performance.now()

    const epochs = new Map<string, number>()
    for (const w of changed) {
      const before = this.committed.get(w.name)
      const valueText = w.valueChanged ? w.valueText : (before?.valueText ?? 'null')
      this.install(w.name, w.epoch, valueText, w.valueChanged ? committedAtMs : (before?.state.committedAtMs ?? 0), w.writers)
      if (w.valueChanged) epochs.set(w.name, w.epoch)
    }
    try {
      this.opts.onCommit?.({ epochs, committedAt })
    } catch (err) {
      this.log('error', 'mon', `the onCommit observer threw: ${describe(err)}`)
    }
    for (const name of epochs.keys()) this.subscribers.publish(this.get(name))
    for (const w of changed) {
      if (w.writersChanged) this.log('info', 'mon', `map ${w.name}: writers are now ${w.writers === null ? 'anyone' : `[${w.writers.join(', ')}]`}`)
    }
    for (const p of accepted) {
      if (p.kind === 'change') p.resolve(this.get(p.map))
      else p.resolve()
    }
  }

  /** Step 1 of a round: run the proposals in order; the rejected ones are rejected here. */
  private applyProposals (proposals: Proposal[], accepted: Proposal[]): Map<string, Working> {
    const work = new Map<string, Working>()
    let newMaps = 0
    for (const p of proposals) {
      let w = work.get(p.map)
      if (w === undefined) {
        const c = this.committed.get(p.map)
        if (c === undefined && this.committed.size + newMaps >= MAX_MAPS) {
          p.reject(fsError('ENOSPC', `map ${p.map}: the monitor already holds ${MAX_MAPS} maps, the limit`))
          continue
        }
        if (c === undefined) newMaps++
        w = {
          name: p.map,
          epoch: c?.state.epoch ?? 0,
          valueText: c?.valueText ?? 'null',
          writers: c?.writers ?? null,
          valueChanged: false,
          writersChanged: false
        }
        work.set(p.map, w)
      }
      const denied = accessDenied(p.map, w.writers, p.by)
      if (denied !== null) {
        p.reject(denied)
        continue
      }
      if (p.kind === 'writers') {
        w.writers = p.writers
        w.writersChanged = true
        accepted.push(p)
        continue
      }
      try {
        w.valueText = serializeValue(p.map, p.change(mutableValue(w.valueText)))
        w.valueChanged = true
        accepted.push(p)
      } catch (err) {
        p.reject(err)
      }
    }
    return work
  }

  private install (name: string, epoch: number, valueText: string, committedAtMs: number, writers: readonly string[] | null): void {
    const value: JsonValue = frozenValue(valueText)
    this.committed.set(name, {
      state: Object.freeze({ name, epoch, value, committedAtMs }),
      valueText,
      writers: writers === null ? null : Object.freeze([...writers])
    })
  }

  // ---- cluster log persistence ----

  private scheduleLogFlush (): void {
    if (this.logTimer !== null || this.closing) return
    this.logTimer = setTimeout(() => {
      this.logTimer = null
      void this.flushLog()
    }, this.opts.logFlushMs)
    this.logTimer.unref()
  }

  private async flushLog (): Promise<void> {
    if (!this.clusterLog.hasPending) return
    const entries = this.clusterLog.takePending()
    const flushed = (async () => {
      try {
        // Not durable: the log promises no more than "within logFlushMs"; a durable round behind it syncs it anyway.
        await this.store.submit([logWrite(entries, this.opts.logPersistedEntries)], { durable: false })
      } catch (err) {
        this.clusterLog.restorePending(entries)
        // Not into the cluster log: that is what failed to be written.
        console.error(`cudele mon: cluster log entries ${entries[0].seq}-${entries[entries.length - 1].seq} could not be written: ${describe(err)}`)
      }
    })()
    this.logFlushing = flushed
    await flushed
    if (this.logFlushing === flushed) this.logFlushing = null
  }
}

function describe (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function proposerName (by: Proposer): string {
  const name = (by as Proposer | undefined)?.name
  if (typeof name !== 'string' || name.length === 0) throw fsError('EINVAL', 'a proposal needs a proposer with a non-empty name')
  return name
}

function checkMapName (map: string): void {
  if (typeof map !== 'string' || map.length === 0 || map.length > MAX_MAP_NAME_CHARS || /[\x00-\x1f\x7f]/.test(map)) {
    throw fsError('EINVAL', `map name ${JSON.stringify(map)}: must be 1 to ${MAX_MAP_NAME_CHARS} characters without control characters`)
  }
}
