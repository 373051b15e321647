// Who answers a request or takes a notify. A connection has its own table;
// a server's table is the parent of every connection it accepts, so methods
// registered once on the server serve all connections, and a connection can
// add or override methods of its own (per-session state, say).

import type { ErrnoName } from '../common/errors'
import type { RpcConnection } from './connection'

// Arguments are whatever the peer sent: a handler checks what it relies on
// (src/protocol does, for cudele's methods).
/** Answers one method: the value (or promise) it returns is the reply; what it throws, the error reply. */
export type MethodHandler = (args: unknown[], conn: RpcConnection) => unknown
/** Answers any method without a handler of its own. */
export type RequestHandler = (method: string, args: unknown[], conn: RpcConnection) => unknown
export type NotifyHandler = (args: unknown[], conn: RpcConnection) => void
export type AnyNotifyHandler = (method: string, args: unknown[], conn: RpcConnection) => void
/** Told of every error reply to a registered method, with the errno it carried. */
export type ErrorReplyListener = (method: string, code: ErrnoName) => void

/** The requests for one method that were answered, since the table was made. */
export interface MethodCount {
  calls: number
  /** Answered with an error. */
  errors: number
  /** From the request's arrival to its reply being queued. */
  totalMs: number
  maxMs: number
}

export class Handlers {
  readonly methods = new Map<string, MethodHandler>()
  readonly notifies = new Map<string, NotifyHandler>()
  request: RequestHandler | undefined
  notify: AnyNotifyHandler | undefined
  errorReply: ErrorReplyListener | undefined
  /**
   * Requests answered per registered method (never per name a peer made up:
   * the map stays as small as the method table). Shared with the parent, so
   * a server's counts cover every connection it accepted.
   */
  readonly counts: Map<string, MethodCount>

  constructor (readonly parent?: Handlers) {
    this.counts = parent?.counts ?? new Map()
  }

  /** Count one answered request of a registered method. */
  count (method: string, ms: number, failed: boolean): void {
    let c = this.counts.get(method)
    if (c === undefined) {
      c = { calls: 0, errors: 0, totalMs: 0, maxMs: 0 }
      this.counts.set(method, c)
    }
    c.calls++
    if (failed) c.errors++
    c.totalMs += ms
    if (ms > c.maxMs) c.maxMs = ms
  }

  method (name: string): MethodHandler | undefined {
    return this.methods.get(name) ?? this.parent?.method(name)
  }

  fallback (): RequestHandler | undefined {
    return this.request ?? this.parent?.fallback()
  }

  notifyHandler (name: string): NotifyHandler | undefined {
    return this.notifies.get(name) ?? this.parent?.notifyHandler(name)
  }

  notifyFallback (): AnyNotifyHandler | undefined {
    return this.notify ?? this.parent?.notifyFallback()
  }

  errorListener (): ErrorReplyListener | undefined {
    return this.errorReply ?? this.parent?.errorListener()
  }
}
