// Waiting class calls, one queue per object, and the order objects get served.
//
// An object is in at most one batch at a time, from the moment its calls
// leave for a worker until their writes commit (or fail). So a batch always
// reads a snapshot that holds every earlier batch's writes to its objects,
// and guards fail only when someone outside the runtime changed an object.
// Within a batch, one object's calls chain (host.ts), so many concurrent
// callers of one object cost one worker round trip and one commit per batch.

import { Fifo } from '../../lua/queue'

export interface Queued {
  key: string
  /**
   * How much company the call tolerates in its next batch:
   *   'any'     the normal case;
   *   'object'  only calls of its own object (after a conflict: one object's
   *             conflict must not fail other objects' calls again, but its
   *             own chain may stay together);
   *   'none'    alone (after a commit failed for another reason, so the call
   *             at fault fails by itself).
   */
  company: 'any' | 'object' | 'none'
}

interface ObjectQueue<C extends Queued> {
  key: string
  calls: Fifo<C>
  /** In a batch now (running or committing). */
  busy: boolean
  /** In the ready list. */
  listed: boolean
}

export class ObjectQueues<C extends Queued> {
  private readonly objects = new Map<string, ObjectQueue<C>>()
  private readonly ready = new Fifo<ObjectQueue<C>>()
  private waiting = 0

  constructor (private readonly maxPerBatch: number, private readonly maxPerObject: number) {}

  /** Calls not yet in a batch. */
  get pending (): number {
    return this.waiting
  }

  get hasReady (): boolean {
    return this.ready.length > 0
  }

  /** Objects with calls queued or in a batch. */
  get objectsActive (): number {
    return this.objects.size
  }

  add (call: C): void {
    const q = this.queueOf(call.key)
    q.calls.push(call)
    this.waiting++
    this.list(q)
  }

  /** Put calls back at the front of their objects' queues, keeping their order. */
  putBack (calls: C[]): void {
    for (let i = calls.length - 1; i >= 0; i--) {
      const q = this.queueOf(calls[i].key)
      q.calls.unshift(calls[i])
      this.waiting++
    }
  }

  /** The next batch: whole runs of calls per object, objects in arrival order. Marks its objects busy. */
  take (): C[] {
    const batch: C[] = []
    while (batch.length < this.maxPerBatch && this.ready.length > 0) {
      const q = this.ready.peek() as ObjectQueue<C>
      const head = q.calls.peek()
      if (head === undefined) { this.ready.shift(); q.listed = false; continue }
      if (head.company !== 'any' && batch.length > 0) break
      this.ready.shift()
      q.listed = false
      q.busy = true
      let n = 0
      while (n < this.maxPerObject && batch.length < this.maxPerBatch) {
        const c = q.calls.peek()
        if (c === undefined || (n > 0 && c.company === 'none')) break
        batch.push(q.calls.shift() as C)
        this.waiting--
        n++
        if (c.company === 'none') break
      }
      if (head.company !== 'any') break
    }
    return batch
  }

  /** A batch is over: its objects may go again. */
  release (keys: Iterable<string>): void {
    for (const key of keys) {
      const q = this.objects.get(key)
      if (q === undefined) continue
      q.busy = false
      if (q.calls.length === 0) this.objects.delete(key)
      else this.list(q)
    }
  }

  private queueOf (key: string): ObjectQueue<C> {
    let q = this.objects.get(key)
    if (q === undefined) {
      q = { key, calls: new Fifo<C>(), busy: false, listed: false }
      this.objects.set(key, q)
    }
    return q
  }

  private list (q: ObjectQueue<C>): void {
    if (q.busy || q.listed) return
    q.listed = true
    this.ready.push(q)
  }
}
