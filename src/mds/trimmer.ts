// When and how the MDS trims: its dirty metadata (and changes that were not
// journaled) written into the metadata store in one batch, after which the
// journal objects they came from are no longer needed (trim.ts builds the
// batch). A trim runs on a timer while anything is dirty, as soon as a burst
// of work is done when unjournaled changes wait for it, and at once when the
// cache holds too many dirty entries; at most one is in flight.
//
// A trim that fails puts everything back as it was (the next one writes it
// again) and is retried with backoff; the failure goes to the MDS's health
// (and from there to the cluster log and `cudele status`), never nowhere.

import { invariant } from '../common/assert'
import { Backoff, type Health } from '../common/health'
import { isDir } from '../common/types'
import type { SafetyWatcher } from './index'
import type { Mds } from './mds'
import { buildTrimBatch } from './trim'
import { UnstreamedChanges } from './unstreamed'

export const TRIM_CHECK = 'mds.trim'

export interface TrimOptions {
  /** Trim once this many cache entries are dirty. */
  dirtyEntries: number
  /** Trim at least this often while anything is dirty (ms). */
  intervalMs: number
  /** First retry after a failed trim (ms); doubles with each failure in a row. */
  retryFirstMs: number
  retryMaxMs: number
}

export class Trimmer {
  private inflight: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  private scheduled = false
  private readonly backoff: Backoff
  /** After a failure, background trims wait until then (ms, monotonic). */
  private notBeforeMs = 0
  /** Told when a trim takes its snapshot and when it is stored. */
  watcher: Pick<SafetyWatcher, 'trimTaken' | 'trimStored'> | null = null

  constructor (
    private readonly mds: Mds,
    private readonly options: TrimOptions,
    private readonly health: Health,
    /** A trim was stored: purges that waited for it may go. */
    private readonly stored: () => void
  ) {
    this.backoff = new Backoff(options.retryFirstMs, options.retryMaxMs)
  }

  start (): void {
    this.timer = setInterval(() => {
      const { ns, journal, unstreamed } = this.mds
      if (ns.cache.dirtyCount > 0 || journal.lastSubmittedSeq > journal.trimmedSeq || unstreamed.pendingWrites > 0) this.background()
    }, this.options.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
  }

  /** After a change: trim now if the cache holds too many dirty entries. */
  maybe (): void {
    if (this.mds.ns.cache.dirtyCount >= this.options.dirtyEntries && !this.inflight) this.background()
  }

  /** Trim once the current burst of work is done (many data commits share one trim). */
  soon (): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.background()
    })
  }

  /** A trim nobody awaits: its failure is recorded and retried. */
  private background (): void {
    if (performance.now() < this.notBeforeMs) return
    this.run().catch(() => {
      // Recorded by run(); the retry comes with the next timer tick after the backoff.
    })
  }

  /** Write the namespace changes so far into the metadata store and drop their journal objects. */
  async run (): Promise<void> {
    while (this.inflight) await this.inflight
    const { ns, journal, unstreamed: pending, store } = this.mds
    const cache = ns.cache
    const previousTrimmedSeq = journal.trimmedSeq
    // Every change in the snapshot must be in a journal object at or before
    // upTo; a failure of that write is the journal's to report (at the next sync).
    if (journal.pendingEvents > 0) journal.submit([], false).catch(() => {})
    const upToSeq = journal.lastSubmittedSeq
    invariant(upToSeq >= previousTrimmedSeq, () => `a trim up to journal object ${upToSeq}, below the ${previousTrimmedSeq} trimmed already`)
    if (cache.dirtyCount === 0 && upToSeq === previousTrimmedSeq && !ns.inotable.dirty && pending.pendingWrites === 0) return
    const snapshot = cache.takeDirty()
    const unstreamed = pending.take()
    const data = UnstreamedChanges.batchOf(unstreamed.writes)
    const token = this.watcher?.trimTaken()
    const strayChanges = ns.strays.takeChanges()
    const completedChanges = ns.completed.takeChanges()
    const claimChanges = ns.claims.takeChanges()
    ns.inotable.dirty = false
    const batch = buildTrimBatch({
      snapshot,
      strayChanges,
      completedChanges,
      claimChanges,
      nextIno: ns.inotable.next,
      previousTrimmedSeq,
      upToSeq,
      dirExists: ino => { const i = cache.getInode(ino); return i !== null && isDir(i.mode) }
    })
    journal.trimmedSeq = upToSeq
    const p = store.submit(data.writes.length > 0 ? [...batch, ...data.writes] : batch, { durable: data.durable }).then(
      () => {
        cache.flushDone()
        for (const w of unstreamed.writes) w.resolve()
        if (token !== undefined) this.watcher?.trimStored(token)
        this.backoff.succeeded()
        this.notBeforeMs = 0
        this.health.ok(TRIM_CHECK)
        this.stored()
      },
      (err: Error) => {
        cache.flushFailed()
        pending.restore(unstreamed)
        for (const w of unstreamed.writes) w.reject(err)
        ns.strays.restoreChanges(strayChanges)
        ns.completed.restoreChanges(completedChanges)
        ns.claims.restoreChanges(claimChanges)
        ns.inotable.dirty = true
        journal.trimmedSeq = previousTrimmedSeq
        this.notBeforeMs = performance.now() + this.backoff.failed()
        this.health.failed(TRIM_CHECK, new Error(`trim of ${snapshot.inodes.length} inodes and the dentries of ${snapshot.dentries.size} directories failed (retried in ${this.backoff.delayMs} ms): ${err.message}`))
        throw err
      }
    ).finally(() => { this.inflight = null })
    this.inflight = p
    await p
  }
}
