// The MDS journal: events streamed to journal objects in the store.
//
// Events are encoded into a buffer as they are applied. The buffer goes to the
// store as one journal object `mds0.journal.<seq>` per flush. At most one
// background flush is in flight: while it commits, new events pile up and go
// out together in the next one, so the write rate adapts to load (group commit
// on top of the store's own). Callers that need more (fsync, a data write that
// must commit with the size change it implies) submit the pending events
// together with their own writes in one batch.
//
// Journal objects are deleted by the trim that writes their effects into the
// metadata store; at start-up the ones left are replayed.

import { Encoder } from '../common/codec'
import type { CommitInfo, LocalReads, ObjectStore, ObjectWrite } from '../store/types'
import { decodeEvents, encodeCreates, encodeEvent, type Event } from './events'
import type { Timespec } from '../common/time'
import type { Ino } from '../common/types'
import type { RequestContext } from './index'
import { JOURNAL_PREFIX, journalObject, parseJournalObject } from './layout'
import { METADATA_POOL } from '../common/layout'

/** A buffer larger than this is flushed at once rather than waiting for the flush in flight. */
const EAGER_FLUSH_BYTES = 1024 * 1024

export interface JournalStats {
  /** Events appended since start-up. */
  events: number
  /** Events replayed from journal objects at start-up. */
  replayed: number
  bytes: number
  objects: number
}

export class Journal {
  private enc = new Encoder(64 * 1024)
  private pending = 0
  private backgroundInflight = false
  private scheduled = false
  /** The last batch submitted (the store commits in order, so waiting for it waits for all). */
  private lastSubmit: Promise<unknown> = Promise.resolve()
  private lastSubmitDurable = true
  /** Set when a flush failed: the next sync reports it. */
  private failure: Error | null = null
  readonly stats: JournalStats = { events: 0, replayed: 0, bytes: 0, objects: 0 }
  /**
   * Told around every submit: `submitted` runs when a batch goes to the store
   * (after its events were taken) and returns a token; `committed` gets the
   * token back once the batch is in the store. The server uses it to tell
   * clients which of their requests are safe; `request` is the one whose own
   * writes ride in the batch (a data commit), not applied yet.
   */
  watcher: { submitted (request: RequestContext | null): unknown, committed (token: unknown): void } | null = null

  /**
   * @param nextSeq sequence number of the next journal object
   * @param trimmedSeq every journal object up to this one is already in the metadata store
   */
  constructor (private readonly store: ObjectStore, public nextSeq: number, public trimmedSeq: number) {}

  /** Events appended but not yet handed to the store. */
  get pendingEvents (): number { return this.pending }

  /** Sequence number of the last journal object handed to the store. */
  get lastSubmittedSeq (): number { return this.nextSeq - 1 }

  /** While positive, appended events stay together (no eager flush splits them). */
  private holding = 0

  /** Append several events so that they land in the same journal object. */
  together<T> (fn: () => T): T {
    this.holding++
    try {
      return fn()
    } finally {
      this.holding--
    }
  }

  append (ev: Event): void {
    const before = this.enc.length
    encodeEvent(this.enc, ev)
    this.appended(1, before)
  }

  /** Count n events encoded since the buffer held `before` bytes, and see that they get written. */
  private appended (n: number, before: number): void {
    this.pending += n
    this.stats.events += n
    this.stats.bytes += this.enc.length - before
    if (this.enc.length >= EAGER_FLUSH_BYTES && this.holding === 0) {
      this.submit([], false)
    } else if (!this.backgroundInflight && !this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.backgroundFlush())
    }
  }

  /** Take the pending events as the write of a new journal object (null when none). */
  private takePending (): ObjectWrite | null {
    if (this.pending === 0) return null
    const data = this.enc.finish()
    this.enc.reset()
    this.pending = 0
    this.stats.objects++
    return { pool: METADATA_POOL, name: journalObject(this.nextSeq++), ops: [{ op: 'writeFull', data }] }
  }

  /**
   * Append create events for many names in one directory (inode numbers
   * firstIno, firstIno+1, ...), encoded straight into the buffer: the blind
   * creates of a decoupled client, where building an event object per name
   * would cost more than encoding it.
   */
  appendCreates (parent: Ino, names: string[], firstIno: Ino, mode: number, uid: number, gid: number, time: Timespec): void {
    const before = this.enc.length
    encodeCreates(this.enc, parent, names, firstIno, mode, uid, gid, time)
    this.appended(names.length, before)
  }

  /**
   * Append already-encoded events (a client journal's segments are in this
   * very format) as one journal object of their own, after the pending
   * events: no decoding and re-encoding of what may be millions of events.
   */
  appendEncoded (bytes: Uint8Array, events: number): Promise<CommitInfo> {
    const own = this.takePending()
    this.stats.events += events
    this.stats.bytes += bytes.length
    this.stats.objects++
    const obj: ObjectWrite = { pool: METADATA_POOL, name: journalObject(this.nextSeq++), ops: [{ op: 'writeFull', data: bytes }] }
    return this.submit(own ? [own, obj] : [obj], false)
  }

  /**
   * Submit the pending events and `extra` writes in one batch: they commit
   * atomically, in order after everything submitted before.
   */
  submit (extra: ObjectWrite[], durable: boolean, request: RequestContext | null = null): Promise<CommitInfo> {
    const own = this.takePending()
    const batch = own ? [own, ...extra] : extra
    const p = this.store.submit(batch, { durable })
    this.lastSubmit = p
    this.lastSubmitDurable = durable
    const w = this.watcher
    if (w) {
      const token = w.submitted(request)
      p.then(() => w.committed(token), () => {})
    }
    p.catch((err: Error) => { this.failure = err })
    return p
  }

  private backgroundFlush (): void {
    this.scheduled = false
    if (this.pending === 0 || this.backgroundInflight) return
    this.backgroundInflight = true
    this.submit([], false).then(() => {}, () => {}).finally(() => {
      this.backgroundInflight = false
      if (this.pending > 0) this.backgroundFlush()
    })
  }

  /**
   * Resolves when every batch submitted so far has committed or failed; unlike
   * sync it reports nothing (a failure stays for the next sync to report).
   */
  async settled (): Promise<void> {
    await this.lastSubmit.then(() => {}, () => {})
  }

  /** Resolves when every event appended so far is committed (durable: on stable storage). */
  async sync (durable: boolean): Promise<void> {
    if (this.failure) {
      const err = this.failure
      this.failure = null
      throw err
    }
    if (this.pending > 0) {
      await this.submit([], durable)
      return
    }
    await this.lastSubmit
    if (durable && !this.lastSubmitDurable) {
      await this.store.sync()
      this.lastSubmitDurable = true
    }
  }
}

/** Journal objects not yet trimmed, in order, with their decoded events. */
export function * readJournal (reads: LocalReads, trimmedSeq: number): Generator<{ seq: number, name: string, events: Event[] }> {
  let after: string | undefined
  for (;;) {
    const names = reads.listSync(METADATA_POOL, { prefix: JOURNAL_PREFIX, after, limit: 256 })
    if (names.length === 0) return
    for (const name of names) {
      after = name
      const seq = parseJournalObject(name)
      if (seq === null || seq <= trimmedSeq) continue
      const st = reads.statSync(METADATA_POOL, name)
      const payload = reads.readSync(METADATA_POOL, name, 0, st ? st.size : 0) ?? new Uint8Array(0)
      yield { seq, name, events: decodeEvents(payload) }
    }
  }
}
