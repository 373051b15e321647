// Answering the peer: each request goes to the handler registered for its
// method (on the connection, else the server's), and what the handler
// returns or throws becomes the reply or the error reply; each notify goes
// to its handler, and what that throws is logged, never answered.
//
// The dispatcher also counts the peer's requests in progress (handled, or
// with replies still waiting in the outbox): at maxConcurrentRequests the
// connection stops reading until half of them are done (connection.ts says
// why that is the only backpressure on incoming requests).

import { FrameType } from './frame'
import { toWireError } from './errors'
import type { Handlers } from './handlers'
import type { RpcConnection } from './connection'

/** What the dispatcher needs of its connection. */
export interface DispatchOwner {
  /** Queue a reply or an error reply (see Outbox.send). */
  send (type: number, id: number, s: string, v: unknown): void
  isClosed (): boolean
  /** Too many requests in progress (true): stop reading; few enough again (false): read on. */
  overloaded (on: boolean): void
  peer (): string
  log (msg: string): void
}

export class Dispatcher {
  private active = 0
  private readonly warnedNotifies = new Set<string>()

  constructor (
    private readonly handlers: Handlers,
    private readonly conn: RpcConnection,
    private readonly maxActive: number,
    private readonly owner: DispatchOwner
  ) {}

  /** The peer's requests in progress. */
  get activeRequests (): number { return this.active }

  request (id: number, method: string, args: unknown[]): void {
    if (++this.active >= this.maxActive) this.owner.overloaded(true)
    const h = this.handlers.method(method)
    // Only registered methods are counted (see Handlers.counts).
    const counted = h !== undefined
    const t0 = counted ? performance.now() : 0
    let result: unknown
    try {
      if (h !== undefined) {
        result = h(args, this.conn)
      } else {
        const any = this.handlers.fallback()
        if (any === undefined) {
          this.owner.send(FrameType.ERROR, id, 'EOPNOTSUPP', `unknown method '${method}'`)
          return
        }
        result = any(method, args, this.conn)
      }
    } catch (err) {
      if (counted) this.handlers.count(method, performance.now() - t0, true)
      this.replyThrown(id, method, err, counted)
      return
    }
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      Promise.resolve(result)
        .then(v => {
          if (counted) this.handlers.count(method, performance.now() - t0, false)
          this.reply(id, method, v)
        }, err => {
          if (counted) this.handlers.count(method, performance.now() - t0, true)
          this.replyThrown(id, method, err, counted)
        })
        .catch(err => this.owner.log(`replying to ${method} from ${this.owner.peer()} failed: ${(err as Error)?.stack ?? String(err)}`))
    } else {
      if (counted) this.handlers.count(method, performance.now() - t0, false)
      this.reply(id, method, result)
    }
  }

  /** A reply left (or will never leave): one fewer peer request in progress. */
  replied (): void {
    this.active--
    if (this.active <= this.maxActive >> 1) this.owner.overloaded(false)
  }

  notify (method: string, args: unknown[]): void {
    try {
      const h = this.handlers.notifyHandler(method)
      if (h !== undefined) { h(args, this.conn); return }
      const any = this.handlers.notifyFallback()
      if (any !== undefined) { any(method, args, this.conn); return }
      if (!this.warnedNotifies.has(method)) {
        this.warnedNotifies.add(method)
        this.owner.log(`no handler for notify '${method}' from ${this.owner.peer()}; dropped`)
      }
    } catch (err) {
      this.owner.log(`notify ${method} from ${this.owner.peer()} failed: ${(err as Error)?.stack ?? String(err)}`)
    }
  }

  private reply (id: number, method: string, v: unknown): void {
    if (this.owner.isClosed()) return
    this.owner.send(FrameType.REPLY, id, method, v)
  }

  private replyThrown (id: number, method: string, err: unknown, registered: boolean): void {
    const w = toWireError(err, method)
    if (w.internal) this.owner.log(`${method} from ${this.owner.peer()} failed: ${(err as Error)?.stack ?? String(err)}`)
    if (registered) this.handlers.errorListener()?.(method, w.code)
    if (this.owner.isClosed()) return
    this.owner.send(FrameType.ERROR, id, w.code, w.message)
  }
}
