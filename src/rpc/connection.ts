// One RPC connection; both ends are the same class and either may call,
// notify and answer. connect() (connect.ts) and RpcServer (server.ts) make
// them; the handshake (hello → welcome, handshake.ts) happens before either
// hands one out. The peer's requests and notifies go to their handlers
// through dispatch.ts; what is sent goes through the outbox (outbox.ts:
// batching and outgoing backpressure); heartbeat.ts tells a silent peer from
// a live one.
//
// Pipelining: any number of calls may be in flight; replies carry the
// request's id and may come back in any order (handlers may be async).
// Incoming chunks are split into frames and all complete ones are handled in
// one go.
//
// Backpressure, incoming: when maxConcurrentRequests of the peer's requests
// are being handled or have replies waiting in the outbox, the connection
// stops reading until half of them are done, so a peer that sends requests
// without reading replies gets TCP backpressure instead of growing our
// memory. A connection never stops reading because of its own outgoing
// queue: if both ends did that, they could wait for each other forever.
// (Both ends serving more than maxConcurrentRequests of each other's
// requests with replies the other is not reading could still stall; our
// peers don't do that.)
//
// Closing: calls still waiting when the connection closes, for whatever
// reason, reject with FsError ENOTCONN saying why, so the caller can replay
// them on a new connection. There is no reconnect here.

import { EventEmitter } from 'events'
import type net from 'net'
import { ErrnoName, FsError } from '../common/errors'
import { Dispatcher } from './dispatch'
import { fromWire, isErrnoName } from './errors'
import { DEFAULT_MAX_FRAME, FrameError, FrameParser, FrameType, frameTypeName, PROTOCOL_MAJOR } from './frame'
import { AnyNotifyHandler, Handlers, MethodHandler, NotifyHandler, RequestHandler } from './handlers'
import { checkFirstFrameLength, greeting, type PeerInfo, readGreeting, versionMismatch } from './handshake'
import { Heartbeat } from './heartbeat'
import { MIN_QUEUED_BYTES, Outbox } from './outbox'
import { DecodeError, Reader } from './values'

export type { PeerInfo } from './handshake'

export interface ConnectionOptions {
  /** Largest frame sent or accepted (bytes after the length field). Default 64 MiB. */
  maxFrameBytes?: number
  /** Bound on encoded, unsent bytes before senders wait (see outbox.ts). Default 16 MiB; at least 64 KiB. */
  maxQueuedBytes?: number
  /** Peer requests handled at once before we stop reading. Default 1024. */
  maxConcurrentRequests?: number
  /** Send a ping when nothing arrived for this long; 0 (default) turns heartbeats off. */
  heartbeatMs?: number
  /** Close the connection when nothing arrived for this long. Default 3 × heartbeatMs. */
  heartbeatTimeoutMs?: number
  /** Our name in the handshake, for the peer's logs. */
  name?: string
  /** Where protocol problems and handler failures are reported. Default: stderr. */
  log?: (msg: string) => void
}

export interface CallOptions {
  /** Reject with ETIMEDOUT if no reply came in this time (a late reply is dropped). */
  timeoutMs?: number
}

export interface CloseReason {
  /** Why, as an errno name: ENOTCONN for an orderly close, EPROTO, EMSGSIZE, ETIMEDOUT, ECONNRESET... */
  code: ErrnoName
  message: string
  /** The peer closed, or the connection broke; false when this side decided to close. */
  remote: boolean
}

export interface ConnectionStats {
  pendingCalls: number
  activeRequests: number
  queuedBytes: number
  deferred: number
  framesSent: number
  framesReceived: number
  bytesSent: number
  bytesReceived: number
  /** socket.write() calls: fewer than framesSent when batching works. */
  writes: number
  reads: number
}

interface Pending {
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  method: string
  timer: NodeJS.Timeout | undefined
}

/** How long a closing connection waits for its last bytes to leave before destroying the socket. */
const LINGER_MS = 2000
const READ_PAUSED_BY_USER = 1
const READ_PAUSED_BY_LOAD = 2
const READ_PAUSED_BY_HANDSHAKE = 4

function defaultLog (msg: string): void {
  console.error(`cudele rpc: ${msg}`)
}

type State = 'handshake' | 'open' | 'closed'

export class RpcConnection extends EventEmitter {
  /** A slot for whoever owns the connection (the session layer keeps its session here). */
  data: unknown = undefined
  /** The peer's protocol version and identity, known once the handshake is done. */
  remoteVersion: PeerInfo | null = null
  closeReason: CloseReason | null = null

  private state: State = 'handshake'
  private readonly handlers: Handlers
  private readonly outbox: Outbox
  private readonly heartbeat: Heartbeat
  private readonly reader = new Reader(Buffer.alloc(0), 0, 0)
  private readonly parser: FrameParser
  private readonly dispatcher: Dispatcher
  private readonly log: (msg: string) => void

  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private pauseBits = 0
  private handshakeTimer: NodeJS.Timeout | undefined

  private framesReceived = 0
  private bytesReceived = 0
  private reads = 0

  /**
   * Use connect() or RpcServer instead. `opened` is called once: with null
   * when the handshake succeeded, with the error when it failed.
   */
  constructor (
    private readonly socket: net.Socket,
    readonly side: 'client' | 'server',
    /** The peer, for messages: the server's address, or the client's (with its name and pid once known). */
    public peer: string,
    private readonly opts: ConnectionOptions,
    parentHandlers: Handlers | undefined,
    private opened: ((err: Error | null) => void) | undefined,
    handshakeTimeoutMs = 10_000
  ) {
    super()
    this.handlers = new Handlers(parentHandlers)
    const maxFrame = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME
    this.log = opts.log ?? defaultLog
    this.dispatcher = new Dispatcher(this.handlers, this, Math.max(1, opts.maxConcurrentRequests ?? 1024), {
      send: (type, id, s, v) => this.outbox.send(type, id, s, v),
      isClosed: () => this.state === 'closed',
      overloaded: on => { if (on || (this.pauseBits & READ_PAUSED_BY_LOAD) !== 0) this.setPause(READ_PAUSED_BY_LOAD, on) },
      peer: () => this.peer,
      log: this.log
    })
    this.parser = new FrameParser(maxFrame, this.onFrame, this.checkLength)
    this.outbox = new Outbox(socket, maxFrame, Math.max(MIN_QUEUED_BYTES, opts.maxQueuedBytes ?? 16 * 1024 * 1024), {
      isOpen: () => this.state === 'open',
      isClosed: () => this.state === 'closed',
      awaitsReply: id => this.pending.has(id),
      requestFailed: (id, err) => this.settleFailed(id, err),
      replied: () => this.dispatcher.replied(),
      peer: () => this.peer,
      log: this.log
    })
    this.heartbeat = new Heartbeat({
      sendPing: id => this.outbox.control(FrameType.PING, id),
      reads: () => this.reads,
      paused: () => this.pauseBits !== 0,
      silent: quiet => {
        this.log(`closing the connection to ${this.peer}: nothing received for ${quiet} ms`)
        this.shutdown({ code: 'ETIMEDOUT', message: `heartbeat timeout: nothing received from ${this.peer} for ${quiet} ms`, remote: false }, 'abort')
      },
      peer: () => this.peer
    })

    socket.setNoDelay?.(true)
    socket.on('data', this.onData)
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.shutdown({ code: isErrnoName(err.code) ? err.code : 'EIO', message: err.message, remote: true }, 'abort')
    })
    socket.on('end', () => {
      this.shutdown({ code: 'ECONNRESET', message: 'the peer closed the connection', remote: true }, 'end')
    })
    socket.on('close', () => {
      this.shutdown({ code: 'ECONNRESET', message: 'the connection was lost', remote: true }, 'abort')
    })

    if (side === 'client') {
      this.outbox.control(FrameType.HELLO, 0, greeting(this.opts.name ?? 'cudele'))
      this.outbox.flush()
    } else {
      this.handshakeTimer = setTimeout(() => {
        this.protocolError('ETIMEDOUT', `no hello from ${peer} within ${handshakeTimeoutMs} ms`)
      }, handshakeTimeoutMs)
      this.handshakeTimer.unref()
    }
  }

  get closed (): boolean { return this.state === 'closed' }

  /** Open and reading. (A method, so that TypeScript does not narrow the state across calls that change it.) */
  private takingFrames (): boolean { return this.state === 'open' && this.pauseBits === 0 }

  /** Call a method on the peer. Rejects with the peer's FsError, or ENOTCONN if the connection closes first. */
  call<T = unknown> (method: string, args: unknown[] = [], opts?: CallOptions): Promise<T> {
    if (this.state !== 'open') return Promise.reject(this.notConnected(method))
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { resolve: resolve as (v: unknown) => void, reject, method, timer: undefined }
      this.pending.set(id, p)
      const ms = opts?.timeoutMs
      if (ms !== undefined && ms > 0) {
        p.timer = setTimeout(() => {
          if (this.pending.delete(id)) reject(new FsError('ETIMEDOUT', `${method}: no reply from ${this.peer} within ${ms} ms`))
        }, ms)
      }
      this.outbox.send(FrameType.REQUEST, id, method, args)
    })
  }

  /**
   * Send a one-way message. Returns false if the connection is closed (the
   * message is dropped). Throws EMSGSIZE or EINVAL if it cannot be encoded,
   * unless it had to wait in the FIFO, in which case that is logged.
   */
  notify (method: string, args: unknown[] = []): boolean {
    if (this.state !== 'open') return false
    this.outbox.send(FrameType.NOTIFY, 0, method, args)
    return true
  }

  /** Answer `method` on this connection (before the server-wide handler of the same name). */
  handle (method: string, fn: MethodHandler): this {
    this.handlers.methods.set(method, fn)
    return this
  }

  /** Answer every method that has no handler of its own. */
  onRequest (fn: RequestHandler): this {
    this.handlers.request = fn
    return this
  }

  /** Take notifies for `method`, or (with only a function) every notify without a handler of its own. */
  onNotify (method: string, fn: NotifyHandler): this
  onNotify (fn: AnyNotifyHandler): this
  onNotify (a: string | AnyNotifyHandler, fn?: NotifyHandler): this {
    if (typeof a === 'string') this.handlers.notifies.set(a, fn as NotifyHandler)
    else this.handlers.notify = a
    return this
  }

  /** Round trip time in ms. */
  ping (timeoutMs = 10_000): Promise<number> {
    if (this.state !== 'open') return Promise.reject(this.notConnected('ping'))
    return this.heartbeat.ping(timeoutMs)
  }

  /** False while senders wait for the socket to drain. */
  get writable (): boolean {
    return this.outbox.writable
  }

  /** Resolves when a new frame would be encoded at once rather than wait; rejects ENOTCONN when closed. */
  whenWritable (): Promise<void> {
    if (this.state === 'closed') return Promise.reject(this.notConnected('whenWritable'))
    return this.outbox.whenWritable()
  }

  /** Stop reading from the peer (it gets TCP backpressure); for flow control and tests. */
  pauseReading (): void { this.setPause(READ_PAUSED_BY_USER, true) }
  resumeReading (): void { this.setPause(READ_PAUSED_BY_USER, false) }

  stats (): ConnectionStats {
    return {
      pendingCalls: this.pending.size,
      activeRequests: this.dispatcher.activeRequests,
      queuedBytes: this.outbox.queuedBytes(),
      deferred: this.outbox.waiting,
      framesSent: this.outbox.framesSent,
      framesReceived: this.framesReceived,
      bytesSent: this.outbox.bytesSent,
      bytesReceived: this.bytesReceived,
      writes: this.outbox.writes,
      reads: this.reads
    }
  }

  /** Close: tell the peer why, send what is already encoded, reject what is pending. Idempotent. */
  close (reason = 'closed by this side'): void {
    this.shutdown({ code: 'ENOTCONN', message: reason, remote: false }, 'goodbye')
  }

  // ---- receiving --------------------------------------------------------

  private readonly onData = (chunk: Buffer): void => {
    this.reads++
    this.bytesReceived += chunk.length
    try {
      this.parser.push(chunk)
    } catch (err) {
      this.parseFailed(err)
    }
  }

  private parseFailed (err: unknown): void {
    if (err instanceof FrameError) this.protocolError(err.code, err.message)
    else if (err instanceof DecodeError) this.protocolError('EPROTO', `malformed frame: ${err.message}`)
    else this.protocolError('EPROTO', `failed to handle a frame: ${(err as Error)?.stack ?? String(err)}`)
  }

  private readonly checkLength = (length: number): void => {
    if (this.state === 'handshake') checkFirstFrameLength(length)
  }

  private readonly onFrame = (buf: Buffer, start: number, end: number): boolean => {
    if (this.state === 'closed') return false
    this.framesReceived++
    const version = buf[start]
    const type = buf[start + 1]
    const r = this.reader
    r.reset(buf, start + 2, end)
    const id = r.varint()
    if (this.state === 'handshake') {
      this.onHandshakeFrame(version, type, r)
      return this.takingFrames()
    }
    if (version !== PROTOCOL_MAJOR) throw new FrameError('EPROTO', `a ${frameTypeName(type)} frame of protocol version ${version} after agreeing on ${PROTOCOL_MAJOR}`)
    switch (type) {
      case FrameType.REQUEST: {
        const method = r.name()
        const args = r.value()
        if (!Array.isArray(args)) throw new FrameError('EPROTO', `malformed frame: the arguments of ${method} are not an array`)
        this.dispatcher.request(id, method, args)
        break
      }
      case FrameType.REPLY: {
        const p = this.pending.get(id)
        if (p === undefined) break // timed out, or a confused peer: nothing waits for it
        const v = r.value()
        this.pending.delete(id)
        if (p.timer !== undefined) clearTimeout(p.timer)
        p.resolve(v)
        break
      }
      case FrameType.ERROR: {
        const code = r.string()
        const message = r.string()
        this.settleFailed(id, fromWire(code, message))
        break
      }
      case FrameType.NOTIFY: {
        const method = r.name()
        const args = r.value()
        if (!Array.isArray(args)) throw new FrameError('EPROTO', `malformed frame: the arguments of notify ${method} are not an array`)
        this.dispatcher.notify(method, args)
        break
      }
      case FrameType.PING:
        this.outbox.control(FrameType.PONG, id)
        break
      case FrameType.PONG:
        this.heartbeat.pong(id)
        break
      case FrameType.GOODBYE:
        this.onGoodbye(r)
        return false
      default:
        throw new FrameError('EPROTO', `unexpected ${frameTypeName(type)} frame`)
    }
    return this.takingFrames()
  }

  private onGoodbye (r: Reader): void {
    const code = r.string()
    const message = r.string()
    if (code !== 'ENOTCONN') this.log(`${this.peer} closed the connection: ${code}: ${message}`)
    this.shutdown({ code: isErrnoName(code) ? code : 'EIO', message: `the peer closed the connection: ${message}`, remote: true }, 'end')
  }

  private onHandshakeFrame (version: number, type: number, r: Reader): void {
    if (type === FrameType.GOODBYE) {
      const code = r.string()
      const message = r.string()
      this.fail(fromWire(code, message))
      this.shutdown({ code: isErrnoName(code) ? code : 'EIO', message, remote: true }, 'end')
      return
    }
    const peer = readGreeting(this.side, version, type, r)
    const mismatch = versionMismatch(this.side, peer, this.peer)
    if (mismatch !== null) {
      this.protocolError('EPROTO', mismatch)
      return
    }
    this.remoteVersion = peer
    if (this.side === 'server') {
      this.peer = `${peer.name} pid ${peer.pid} (${this.peer})`
      this.outbox.control(FrameType.WELCOME, 0, greeting(this.opts.name ?? 'cudele'))
    }
    this.state = 'open'
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer)
    const every = this.opts.heartbeatMs ?? 0
    this.heartbeat.start(every, this.opts.heartbeatTimeoutMs ?? 3 * every)
    if (this.side === 'client') {
      // A server may notify right after its welcome, in the same read. Hold
      // those frames for a turn: the code awaiting connect() runs first and
      // can register its handlers.
      this.setPause(READ_PAUSED_BY_HANDSHAKE, true)
      setImmediate(() => this.setPause(READ_PAUSED_BY_HANDSHAKE, false))
    }
    const opened = this.opened
    this.opened = undefined
    try {
      opened?.(null)
    } catch (err) {
      this.protocolError('EIO', `the connection handler failed: ${(err as Error)?.stack ?? String(err)}`)
    }
  }

  /** A call failed: its error reply came, or its request could not be sent. */
  private settleFailed (id: number, err: Error): void {
    const p = this.pending.get(id)
    if (p === undefined) return // timed out, or a confused peer: nothing waits for it
    this.pending.delete(id)
    if (p.timer !== undefined) clearTimeout(p.timer)
    p.reject(err)
  }

  // ---- reading control --------------------------------------------------

  private setPause (bit: number, on: boolean): void {
    const before = this.pauseBits
    this.pauseBits = on ? before | bit : before & ~bit
    if (this.state === 'closed') return
    if (before === 0 && this.pauseBits !== 0) {
      this.socket.pause()
    } else if (before !== 0 && this.pauseBits === 0) {
      this.socket.resume()
      // The frames held back from the last chunk: not from here, which may be
      // deep inside the handling of another frame.
      setImmediate(this.resumeFrames)
    }
  }

  private readonly resumeFrames = (): void => {
    if (this.pauseBits !== 0 || this.state === 'closed') return
    try {
      this.parser.resume()
    } catch (err) {
      this.parseFailed(err)
    }
  }

  // ---- closing ----------------------------------------------------------

  private notConnected (method: string): FsError {
    const why = this.closeReason?.message ?? 'the handshake is not done'
    return new FsError('ENOTCONN', `${method}: the connection to ${this.peer} is closed (${why})`)
  }

  /** A protocol violation: log it, tell the peer, close. */
  private protocolError (code: ErrnoName, message: string): void {
    if (this.state === 'closed') return
    this.log(`closing the connection to ${this.peer}: ${message}`)
    this.fail(new FsError(code, message))
    this.shutdown({ code, message, remote: false }, 'goodbye')
  }

  /** Tell whoever waits for the handshake that it failed. */
  private fail (err: Error): void {
    const opened = this.opened
    this.opened = undefined
    opened?.(err)
  }

  private shutdown (reason: CloseReason, how: 'goodbye' | 'end' | 'abort'): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.closeReason = reason
    this.parser.stopped = true
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer)
    this.fail(new FsError(reason.code, reason.message))

    for (const p of this.pending.values()) {
      if (p.timer !== undefined) clearTimeout(p.timer)
      p.reject(new FsError('ENOTCONN', `${p.method}: the connection to ${this.peer} closed before the reply came (${reason.message})`))
    }
    this.pending.clear()
    this.heartbeat.stop(() => this.notConnected('ping'))
    this.outbox.close(() => this.notConnected('whenWritable'))

    const socket = this.socket
    if (how === 'abort' || socket.destroyed) {
      socket.destroy()
    } else {
      if (how === 'goodbye') this.outbox.goodbye(reason.code, reason.message)
      // What is already encoded goes out with the goodbye. Keep reading (and
      // ignoring) so that the peer's end arrives and the socket closes; a peer
      // that never ends gets destroyed after LINGER_MS.
      this.outbox.flush()
      socket.end()
      socket.resume()
      setTimeout(() => socket.destroy(), LINGER_MS).unref()
    }
    // Once, synchronously, after the pending calls have been rejected.
    try {
      this.emit('close', reason)
    } catch (err) {
      this.log(`a 'close' listener failed: ${(err as Error)?.stack ?? String(err)}`)
    }
  }
}

export interface RpcConnection {
  on (event: 'close', listener: (reason: CloseReason) => void): this
  once (event: 'close', listener: (reason: CloseReason) => void): this
}
