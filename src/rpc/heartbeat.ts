// Telling a live peer from a silent one: heartbeats and pings.
//
// With heartbeatMs set, a connection sends a ping whenever nothing arrived
// for that long, and closes (ETIMEDOUT) when nothing at all arrived for
// heartbeatTimeoutMs: the peer is hung or the network dropped it silently.
// Any frame counts as a sign of life, not only pongs. While the connection
// does not read (its own backpressure), silence says nothing about the peer.
//
// ping() measures one round trip on demand; its pongs are told apart from the
// heartbeat's by their id.

import { FsError } from '../common/errors'

/** What the heartbeat needs to know of its connection. */
export interface HeartbeatOwner {
  sendPing (id: number): void
  /** Reads so far (a changing count means the peer said something). */
  reads (): number
  /** Not reading at the moment (paused). */
  paused (): boolean
  /** Nothing arrived for quietMs, past the timeout: close. */
  silent (quietMs: number): void
  peer (): string
}

interface Ping { resolve: (ms: number) => void, reject: (e: Error) => void, sent: number, timer: NodeJS.Timeout }

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined
  private readonly pings = new Map<number, Ping>()
  private seq = 0

  constructor (private readonly owner: HeartbeatOwner) {}

  /** Start watching (every <= 0: no heartbeats; pings still work). */
  start (everyMs: number, timeoutMs: number): void {
    if (everyMs <= 0) return
    let seen = this.owner.reads()
    let quietSince = Date.now()
    this.timer = setInterval(() => {
      const now = Date.now()
      const reads = this.owner.reads()
      if (reads !== seen || this.owner.paused()) {
        seen = reads
        quietSince = now
        return
      }
      const quiet = now - quietSince
      if (quiet >= timeoutMs) {
        this.owner.silent(quiet)
        return
      }
      this.owner.sendPing(++this.seq)
    }, everyMs)
    this.timer.unref()
  }

  /** Round trip time in ms. */
  ping (timeoutMs: number): Promise<number> {
    const id = ++this.seq
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id)
        reject(new FsError('ETIMEDOUT', `ping: no pong from ${this.owner.peer()} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pings.set(id, { resolve, reject, sent: performance.now(), timer })
      this.owner.sendPing(id)
    })
  }

  /** A pong came back. */
  pong (id: number): void {
    const p = this.pings.get(id)
    if (p === undefined) return // a heartbeat's, or one that timed out
    this.pings.delete(id)
    clearTimeout(p.timer)
    p.resolve(performance.now() - p.sent)
  }

  /** The connection closed: no more heartbeats, and pings in flight fail with err. */
  stop (err: () => Error): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    for (const p of this.pings.values()) {
      clearTimeout(p.timer)
      p.reject(err())
    }
    this.pings.clear()
  }
}
