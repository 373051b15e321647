// Client sessions of a server.
//
// A client names itself (a random name chosen when it starts) and opens a
// session; if its connection drops it reconnects with the same name and gets
// the same session back, as long as the session was not evicted. A session
// that sends nothing (heartbeats included) for `timeoutMs` is evicted:
// everything it held (capabilities, open files) is released. After a server
// restart every session is new, and clients reclaim their open files and
// replay the requests they were not told were safe.

import type { RpcConnection } from '../rpc'
import type { Ino } from '../common/types'

export interface SessionOptions {
  /** A session silent this long is evicted. */
  timeoutMs: number
  /** How often clients should send heartbeats (told to them at open). */
  heartbeatMs: number
}

export const DEFAULT_SESSION_OPTIONS: SessionOptions = { timeoutMs: 30_000, heartbeatMs: 1_000 }

export class Session {
  conn: RpcConnection | null = null
  lastSeenMs = performance.now()
  readonly openedAtMs = Date.now()
  /** Open files: ino → handles. */
  readonly opens = new Map<Ino, number>()
  /** The latest mutating request carried out, and the latest one the client was told is safe. */
  appliedTid = 0
  safeTid = 0
  /** Every request up to this one has in the store what it journaled (or a trim stored what it changed). */
  committedTid = 0
  /** Requests whose changes were not journaled (Cudele: no stream) and wait for a trim, in tid order. */
  readonly unstored: number[] = []
  /** Where the client connects from, and its pid, for status. */
  peer = ''
  /** Who the client is as the owner of decoupled subtrees (stable across its restarts). */
  owner = ''

  constructor (readonly id: number, readonly name: string) {}
}

export interface SessionEvents {
  /** The session is gone (evicted, or closed by its client): release what it held. */
  ended (s: Session, why: string): void
}

export class SessionTable {
  private readonly byId = new Map<number, Session>()
  private readonly byName = new Map<string, Session>()
  private nextId = 1
  private readonly timer: NodeJS.Timeout

  constructor (private readonly events: SessionEvents, readonly options: SessionOptions = DEFAULT_SESSION_OPTIONS) {
    this.timer = setInterval(() => this.evictSilent(), Math.max(100, Math.min(options.timeoutMs / 4, 1000)))
    this.timer.unref()
  }

  /** Open (or take back, after a reconnect) the session of a client. */
  open (name: string, conn: RpcConnection): { session: Session, resumed: boolean } {
    const existing = this.byName.get(name)
    if (existing) {
      if (existing.conn && existing.conn !== conn) existing.conn.close('the client reconnected on another connection')
      existing.conn = conn
      existing.lastSeenMs = performance.now()
      return { session: existing, resumed: true }
    }
    const session = new Session(this.nextId++, name)
    session.conn = conn
    this.byId.set(session.id, session)
    this.byName.set(name, session)
    return { session, resumed: false }
  }

  get (id: number): Session | undefined {
    return this.byId.get(id)
  }

  isOpen (id: number): boolean {
    return this.byId.has(id)
  }

  all (): Session[] {
    return [...this.byId.values()]
  }

  touch (s: Session): void {
    s.lastSeenMs = performance.now()
  }

  /** The connection went away; the session waits for its client to come back (or for eviction). */
  detach (conn: RpcConnection): void {
    for (const s of this.byId.values()) if (s.conn === conn) s.conn = null
  }

  /** End a session now (its client closed it, or it is being evicted). */
  end (s: Session, why: string): void {
    if (!this.byId.delete(s.id)) return
    this.byName.delete(s.name)
    s.conn = null
    this.events.ended(s, why)
  }

  private evictSilent (): void {
    const now = performance.now()
    for (const s of [...this.byId.values()]) {
      const silentMs = now - s.lastSeenMs
      if (silentMs > this.options.timeoutMs) {
        const conn = s.conn
        this.end(s, `no word from it for ${Math.round(silentMs)} ms (timeout ${this.options.timeoutMs} ms)`)
        conn?.close('session evicted')
      }
    }
  }

  close (): void {
    clearInterval(this.timer)
  }
}
