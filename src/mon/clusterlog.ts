// The cluster log (Malacology §5.1.3): components send their important
// events to the monitor, so a user watches one log instead of one per server.
//
// Entries live in a bounded ring in memory (recentLog, followLog) and wait in
// `pending` until the monitor writes them to the store, on the next proposal
// round or after logFlushMs, whichever comes first. Entries logged in the last
// moments before a crash may be lost; entries logged before a proposal that
// was acknowledged are not (they rode in its batch).

import { fsError } from '../common/errors'
import type { LogEntry, LogLevel } from './types'
import { MAX_LOG_FOLLOWERS, MAX_LOG_MESSAGE_CHARS, MAX_LOG_WHO_CHARS } from './options'

const LEVELS: ReadonlySet<string> = new Set<LogLevel>(['debug', 'info', 'warn', 'error'])

interface Follower {
  listener: (entry: LogEntry) => void
  /** Seq of the last entry it got: each entry reaches it once, in order. */
  lastSeq: number
  active: boolean
}

/** A fixed-capacity ring of entries in seq order. */
class Ring {
  private readonly slots: Array<LogEntry | undefined>
  private start = 0
  size = 0

  constructor (readonly capacity: number) {
    this.slots = new Array<LogEntry | undefined>(capacity)
  }

  push (e: LogEntry): void {
    if (this.size < this.capacity) {
      this.slots[(this.start + this.size++) % this.capacity] = e
    } else {
      this.slots[this.start] = e
      this.start = (this.start + 1) % this.capacity
    }
  }

  /** i = 0 is the oldest. */
  at (i: number): LogEntry {
    return this.slots[(this.start + i) % this.capacity] as LogEntry
  }
}

export class ClusterLog {
  private readonly ring: Ring
  private lastSeq: number
  /** Logged, not yet handed to a store batch; at most persistedEntries (older ones would be trimmed anyway). */
  private pending: LogEntry[] = []
  private readonly followers = new Set<Follower>()
  /** Entries waiting to reach followers: delivery is in seq order even when a follower logs. */
  private readonly toDeliver: LogEntry[] = []
  private delivering = false

  /**
   * loaded: the entries reloaded from the store, oldest first. onPending is
   * called on every new entry (the monitor arms its flush timer once).
   */
  constructor (loaded: readonly LogEntry[], ringEntries: number, private readonly persistedEntries: number, private readonly onPending: () => void) {
    this.ring = new Ring(ringEntries)
    for (const e of loaded.slice(-ringEntries)) this.ring.push(e)
    this.lastSeq = loaded.length > 0 ? loaded[loaded.length - 1].seq : 0
  }

  append (level: LogLevel, who: string, message: string): LogEntry {
    if (!LEVELS.has(level)) throw fsError('EINVAL', `cluster log: unknown level ${JSON.stringify(level)} (debug, info, warn or error)`)
    const entry: LogEntry = Object.freeze({
      seq: ++this.lastSeq,
      timeMs: Date.now(),
      level,
      who: cut(String(who), MAX_LOG_WHO_CHARS),
      message: cut(String(message), MAX_LOG_MESSAGE_CHARS)
    })
    this.ring.push(entry)
    this.pending.push(entry)
    if (this.pending.length > this.persistedEntries) this.pending.splice(0, this.pending.length - this.persistedEntries)
    this.onPending()
    if (this.followers.size > 0) {
      this.toDeliver.push(entry)
      this.deliver()
    }
    return entry
  }

  recent (limit: number, afterSeq = 0): LogEntry[] {
    const out: LogEntry[] = []
    for (let i = this.ring.size - 1; i >= 0 && out.length < limit; i--) {
      const e = this.ring.at(i)
      if (e.seq <= afterSeq) break
      out.push(e)
    }
    return out.reverse()
  }

  follow (afterSeq: number, listener: (entry: LogEntry) => void): () => void {
    if (this.followers.size >= MAX_LOG_FOLLOWERS) throw fsError('EAGAIN', `cluster log: already ${MAX_LOG_FOLLOWERS} followers, the limit`)
    const f: Follower = { listener, lastSeq: afterSeq, active: true }
    this.followers.add(f)
    // The backlog first, synchronously. Entries logged meanwhile (by f itself)
    // wait in toDeliver behind it, as entries logged by any follower do.
    const outer = this.delivering
    this.delivering = true
    try {
      for (const e of this.recent(this.ring.size, afterSeq)) {
        if (!f.active) break
        this.tell(f, e)
      }
    } finally {
      if (!outer) {
        this.delivering = false
        if (this.toDeliver.length > 0) this.deliver()
      }
    }
    return () => { f.active = false; this.followers.delete(f) }
  }

  /** Entries to write now (the caller puts them in a batch). */
  takePending (): LogEntry[] {
    const out = this.pending
    this.pending = []
    return out
  }

  /**
   * A batch with these entries failed: they go back in front of anything
   * logged since, and ride with the next round or flush (no retry timer of
   * their own: a failing store would be retried forever).
   */
  restorePending (entries: LogEntry[]): void {
    if (entries.length === 0) return
    this.pending = entries.concat(this.pending)
    if (this.pending.length > this.persistedEntries) this.pending.splice(0, this.pending.length - this.persistedEntries)
  }

  get hasPending (): boolean {
    return this.pending.length > 0
  }

  private deliver (): void {
    if (this.delivering) return // a follower logged: the outer loop delivers it, after what came before
    this.delivering = true
    try {
      for (let i = 0; i < this.toDeliver.length; i++) {
        const e = this.toDeliver[i]
        for (const f of [...this.followers]) {
          if (f.active && e.seq > f.lastSeq) this.tell(f, e)
        }
      }
    } finally {
      this.toDeliver.length = 0
      this.delivering = false
    }
  }

  private tell (f: Follower, e: LogEntry): void {
    f.lastSeq = e.seq
    try {
      f.listener(e)
    } catch (err) {
      // Stopped, or it would throw again on the entry that says it threw.
      f.active = false
      this.followers.delete(f)
      this.append('warn', 'mon', `a cluster log follower threw and was stopped: ${(err as Error)?.message ?? String(err)}`)
    }
  }
}

function cut (s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}... (${s.length - max} more characters cut)`
}
