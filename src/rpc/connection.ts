// One RPC connection; both ends are the same class and either may call,
// notify and answer. connect() (connect.ts) and RpcServer (server.ts) make
// them; the handshake (hello → welcome) happens before either hands one out.
//
// Pipelining: any number of calls may be in flight; replies carry the
// request's id and may come back in any order (handlers may be async).
//
// Batching: frames are encoded into one output buffer and written with a
// single socket.write() at the end of the event-loop turn (setImmediate), so
// the replies to all the requests of one read, or a burst of calls, go out
// together. Incoming chunks are split into frames and all complete ones are
// handled in one go.
//
// Backpressure, outgoing: encoded but unsent bytes (our buffer plus what the
// socket still holds) are kept under maxQueuedBytes (plus at most one frame).
// Past that, calls, notifies and replies wait in a FIFO holding only
// references to their values, and are encoded as the socket drains; order is
// kept. Producers that make their own data can pace themselves with
// whenWritable(). Pings, pongs and goodbyes skip the FIFO (they are tiny).
//
// Backpressure, incoming: when maxConcurrentRequests of the peer's requests
// are being handled or have replies waiting in the FIFO, the connection stops
// reading until half of them are done, so a peer that sends requests without
// reading replies gets TCP backpressure instead of growing our memory. A
// connection never stops reading because of its own outgoing queue: if both
// ends did that, they could wait for each other forever. (Both ends serving
// more than maxConcurrentRequests of each other's requests with replies the
// other is not reading could still stall; our peers don't do that.)
//
// Closing: calls still waiting when the connection closes, for whatever
// reason, reject with FsError ENOTCONN saying why, so the caller can replay
// them on a new connection. There is no reconnect here.

import { EventEmitter } from 'events'
import type net from 'net'
import { ErrnoName, FsError } from '../common/errors'
import { fromWire, isErrnoName, toWireError } from './errors'
import {
  beginFrame, DEFAULT_MAX_FRAME, endFrame, FrameError, FrameParser, FrameType, frameTypeName,
  PROTOCOL_MAJOR, PROTOCOL_MINOR, PROTOCOL_NAME
} from './frame'
import { AnyNotifyHandler, Handlers, MethodHandler, NotifyHandler, RequestHandler } from './handlers'
import { DecodeError, EncodeError, Reader, Writer } from './values'

export interface ConnectionOptions {
  /** Largest frame sent or accepted (bytes after the length field). Default 64 MiB. */
  maxFrameBytes?: number
  /** Bound on encoded, unsent bytes before senders wait (see above). Default 16 MiB; at least 64 KiB. */
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

export interface PeerInfo {
  major: number
  minor: number
  name: string
  pid: number
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

/** A frame waiting in the FIFO: for requests and notifies s is the method, for errors the code. */
interface Deferred { type: number, id: number, s: string, v: unknown }

/** A frame bigger than this during the handshake is not a hello: the peer speaks something else. */
const HANDSHAKE_MAX_FRAME = 64 * 1024
const MIN_QUEUED_BYTES = 64 * 1024
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
  data: any = undefined
  /** The peer's protocol version and identity, known once the handshake is done. */
  remoteVersion: PeerInfo | null = null
  closeReason: CloseReason | null = null

  private state: State = 'handshake'
  private readonly handlers: Handlers
  private readonly w = new Writer()
  private readonly reader = new Reader(Buffer.alloc(0), 0, 0)
  private readonly parser: FrameParser
  private readonly maxFrame: number
  private readonly maxQueued: number
  private readonly maxActive: number
  private readonly log: (msg: string) => void

  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  private deferred: Array<Deferred | undefined> = []
  private deferHead = 0
  private writableWaiters: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  private readonly pings = new Map<number, { resolve: (ms: number) => void, reject: (e: Error) => void, sent: number, timer: NodeJS.Timeout }>()
  private pingSeq = 0
  private flushPending = false
  private activeRequests = 0
  private pauseBits = 0
  private heartbeat: NodeJS.Timeout | undefined
  private handshakeTimer: NodeJS.Timeout | undefined
  private readonly warnedNotifies = new Set<string>()

  private framesSent = 0
  private framesReceived = 0
  private bytesSent = 0
  private bytesReceived = 0
  private writes = 0
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
    this.maxFrame = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME
    this.maxQueued = Math.max(MIN_QUEUED_BYTES, opts.maxQueuedBytes ?? 16 * 1024 * 1024)
    this.maxActive = Math.max(1, opts.maxConcurrentRequests ?? 1024)
    this.log = opts.log ?? defaultLog
    this.parser = new FrameParser(this.maxFrame, this.onFrame, this.checkLength)

    socket.setNoDelay?.(true)
    socket.on('data', this.onData)
    socket.on('drain', this.onDrain)
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
      this.control(FrameType.HELLO, 0, this.helloPayload())
      this.flush()
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
      this.out(FrameType.REQUEST, id, method, args)
    })
  }

  /**
   * Send a one-way message. Returns false if the connection is closed (the
   * message is dropped). Throws EMSGSIZE or EINVAL if it cannot be encoded,
   * unless it had to wait in the FIFO, in which case that is logged.
   */
  notify (method: string, args: unknown[] = []): boolean {
    if (this.state !== 'open') return false
    this.out(FrameType.NOTIFY, 0, method, args)
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
    const id = ++this.pingSeq
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id)
        reject(new FsError('ETIMEDOUT', `ping: no pong from ${this.peer} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pings.set(id, { resolve, reject, sent: performance.now(), timer })
      this.control(FrameType.PING, id)
    })
  }

  /** False while senders wait for the socket to drain. */
  get writable (): boolean {
    return this.state === 'open' && this.deferHead === this.deferred.length && this.queuedBytes() < this.maxQueued
  }

  /** Resolves when a new frame would be encoded at once rather than wait; rejects ENOTCONN when closed. */
  whenWritable (): Promise<void> {
    if (this.state === 'closed') return Promise.reject(this.notConnected('whenWritable'))
    if (this.writable) return Promise.resolve()
    return new Promise((resolve, reject) => this.writableWaiters.push({ resolve, reject }))
  }

  /** Stop reading from the peer (it gets TCP backpressure); for flow control and tests. */
  pauseReading (): void { this.setPause(READ_PAUSED_BY_USER, true) }
  resumeReading (): void { this.setPause(READ_PAUSED_BY_USER, false) }

  stats (): ConnectionStats {
    return {
      pendingCalls: this.pending.size,
      activeRequests: this.activeRequests,
      queuedBytes: this.queuedBytes(),
      deferred: this.deferred.length - this.deferHead,
      framesSent: this.framesSent,
      framesReceived: this.framesReceived,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      writes: this.writes,
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
    if (this.state === 'handshake' && length > HANDSHAKE_MAX_FRAME) {
      throw new FrameError('EPROTO', `the first frame claims ${length} bytes; the peer does not speak ${PROTOCOL_NAME}`)
    }
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
        this.dispatch(id, method, args)
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
        const p = this.pending.get(id)
        if (p === undefined) break
        this.pending.delete(id)
        if (p.timer !== undefined) clearTimeout(p.timer)
        p.reject(fromWire(code, message))
        break
      }
      case FrameType.NOTIFY: {
        const method = r.name()
        const args = r.value()
        if (!Array.isArray(args)) throw new FrameError('EPROTO', `malformed frame: the arguments of notify ${method} are not an array`)
        this.dispatchNotify(method, args)
        break
      }
      case FrameType.PING:
        this.control(FrameType.PONG, id)
        break
      case FrameType.PONG: {
        const p = this.pings.get(id)
        if (p !== undefined) {
          this.pings.delete(id)
          clearTimeout(p.timer)
          p.resolve(performance.now() - p.sent)
        }
        break
      }
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

  private helloPayload (): object {
    return { proto: PROTOCOL_NAME, minor: PROTOCOL_MINOR, name: this.opts.name ?? 'cudele', pid: process.pid }
  }

  private onHandshakeFrame (version: number, type: number, r: Reader): void {
    if (type === FrameType.GOODBYE) {
      const code = r.string()
      const message = r.string()
      this.fail(fromWire(code, message))
      this.shutdown({ code: isErrnoName(code) ? code : 'EIO', message, remote: true }, 'end')
      return
    }
    const expected = this.side === 'client' ? FrameType.WELCOME : FrameType.HELLO
    if (type !== expected) {
      throw new FrameError('EPROTO', `expected a ${frameTypeName(expected)} frame, got ${frameTypeName(type)}; the peer does not speak ${PROTOCOL_NAME}`)
    }
    const info = r.value() as Record<string, unknown> | null
    if (info === null || typeof info !== 'object' || info.proto !== PROTOCOL_NAME) {
      throw new FrameError('EPROTO', `the ${frameTypeName(type)} frame is not ${PROTOCOL_NAME}'s; the peer speaks something else`)
    }
    const peer: PeerInfo = {
      major: version,
      minor: typeof info.minor === 'number' ? info.minor : 0,
      name: typeof info.name === 'string' ? info.name : '?',
      pid: typeof info.pid === 'number' ? info.pid : 0
    }
    if (version !== PROTOCOL_MAJOR) {
      const them = `${peer.name} pid ${peer.pid}`
      const msg = this.side === 'server'
        ? `protocol version mismatch: this server speaks ${PROTOCOL_NAME} ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}, the client (${them}) ${peer.major}.${peer.minor}; run the same major version on both sides`
        : `protocol version mismatch: the server at ${this.peer} (${them}) speaks ${PROTOCOL_NAME} ${peer.major}.${peer.minor}, this client ${PROTOCOL_MAJOR}.${PROTOCOL_MINOR}; run the same major version on both sides`
      this.protocolError('EPROTO', msg)
      return
    }
    this.remoteVersion = peer
    if (this.side === 'server') {
      this.peer = `${peer.name} pid ${peer.pid} (${this.peer})`
      this.control(FrameType.WELCOME, 0, this.helloPayload())
    }
    this.state = 'open'
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer)
    this.startHeartbeat()
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

  private dispatch (id: number, method: string, args: unknown[]): void {
    if (++this.activeRequests >= this.maxActive) this.setPause(READ_PAUSED_BY_LOAD, true)
    const h = this.handlers.method(method)
    // Only registered methods are counted (see Handlers.counts).
    const counted = h !== undefined
    const t0 = counted ? performance.now() : 0
    let result: unknown
    try {
      if (h !== undefined) {
        result = h(args, this)
      } else {
        const any = this.handlers.fallback()
        if (any === undefined) {
          this.out(FrameType.ERROR, id, 'EOPNOTSUPP', `unknown method '${method}'`)
          return
        }
        result = any(method, args, this)
      }
    } catch (err) {
      if (counted) this.handlers.count(method, performance.now() - t0, true)
      this.replyThrown(id, method, err)
      return
    }
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      Promise.resolve(result)
        .then(v => {
          if (counted) this.handlers.count(method, performance.now() - t0, false)
          this.reply(id, method, v)
        }, err => {
          if (counted) this.handlers.count(method, performance.now() - t0, true)
          this.replyThrown(id, method, err)
        })
        .catch(err => this.log(`replying to ${method} from ${this.peer} failed: ${(err as Error)?.stack ?? String(err)}`))
    } else {
      if (counted) this.handlers.count(method, performance.now() - t0, false)
      this.reply(id, method, result)
    }
  }

  private reply (id: number, method: string, v: unknown): void {
    if (this.state === 'closed') return
    this.out(FrameType.REPLY, id, method, v)
  }

  private replyThrown (id: number, method: string, err: unknown): void {
    const w = toWireError(err, method)
    if (w.internal) this.log(`${method} from ${this.peer} failed: ${(err as Error)?.stack ?? String(err)}`)
    if (this.state === 'closed') return
    this.out(FrameType.ERROR, id, w.code, w.message)
  }

  private dispatchNotify (method: string, args: unknown[]): void {
    try {
      const h = this.handlers.notifyHandler(method)
      if (h !== undefined) { h(args, this); return }
      const any = this.handlers.notifyFallback()
      if (any !== undefined) { any(method, args, this); return }
      if (!this.warnedNotifies.has(method)) {
        this.warnedNotifies.add(method)
        this.log(`no handler for notify '${method}' from ${this.peer}; dropped`)
      }
    } catch (err) {
      this.log(`notify ${method} from ${this.peer} failed: ${(err as Error)?.stack ?? String(err)}`)
    }
  }

  // ---- sending ----------------------------------------------------------

  /** Encoded bytes not yet taken by the kernel. */
  private queuedBytes (): number {
    return this.w.length + this.socket.writableLength
  }

  /** A request, reply, error or notify: encoded now, or queued behind others while the socket is backed up. */
  private out (type: number, id: number, s: string, v: unknown): void {
    if (this.deferHead < this.deferred.length || this.queuedBytes() >= this.maxQueued) {
      this.deferred.push({ type, id, s, v })
      return
    }
    this.encode(type, id, s, v, true)
  }

  private encode (type: number, id: number, s: string, v: unknown, direct: boolean): void {
    const w = this.w
    const mark = beginFrame(w, type, id)
    try {
      if (type === FrameType.REPLY) {
        w.value(v)
      } else if (type === FrameType.ERROR) {
        w.string(s)
        w.string(v as string)
      } else {
        w.string(s)
        w.value(v)
      }
      endFrame(w, mark, this.maxFrame)
    } catch (err) {
      w.rollback(mark)
      this.encodeFailed(type, id, s, v, err, direct)
      return
    }
    this.framesSent++
    if (type === FrameType.REPLY || type === FrameType.ERROR) this.replied()
    this.scheduleFlush()
  }

  private encodeFailed (type: number, id: number, s: string, v: unknown, err: unknown, direct: boolean): void {
    if (err instanceof EncodeError) err.refresh()
    const code: ErrnoName = err instanceof FrameError ? err.code : err instanceof EncodeError ? 'EINVAL' : 'EIO'
    const message = (err as Error)?.message ?? String(err)
    switch (type) {
      case FrameType.REQUEST: {
        const p = this.pending.get(id)
        if (p === undefined) return
        this.pending.delete(id)
        if (p.timer !== undefined) clearTimeout(p.timer)
        p.reject(new FsError(code, `${s}: ${message}`))
        return
      }
      case FrameType.REPLY:
        this.log(`the reply to ${s} from ${this.peer} cannot be sent: ${message}`)
        this.encode(FrameType.ERROR, id, code === 'EMSGSIZE' ? 'EMSGSIZE' : 'EIO', `${s}: the reply cannot be sent: ${message}`, direct)
        return
      case FrameType.ERROR: {
        // Only an enormous error message gets here: send a short one instead, once.
        const short = 'the error message was too long to send'
        if (v === short) {
          this.log(`the error reply to request ${id} from ${this.peer} cannot be sent: ${message}`)
          this.replied()
          return
        }
        this.encode(FrameType.ERROR, id, s, short, direct)
        return
      }
      default:
        if (direct) throw new FsError(code, `notify ${s}: ${message}`)
        this.log(`notify ${s} to ${this.peer} dropped: ${message}`)
    }
  }

  /** A reply left (or will never leave): one fewer peer request in progress. */
  private replied (): void {
    this.activeRequests--
    if ((this.pauseBits & READ_PAUSED_BY_LOAD) !== 0 && this.activeRequests <= this.maxActive >> 1) {
      this.setPause(READ_PAUSED_BY_LOAD, false)
    }
  }

  /** Control frames skip the FIFO. */
  private control (type: number, id: number, payload?: object): void {
    const w = this.w
    const mark = beginFrame(w, type, id)
    if (payload !== undefined) w.value(payload)
    endFrame(w, mark, this.maxFrame)
    this.framesSent++
    this.scheduleFlush()
  }

  private scheduleFlush (): void {
    if (this.flushPending) return
    this.flushPending = true
    setImmediate(this.flush)
  }

  private readonly flush = (): void => {
    this.flushPending = false
    while (this.w.length > 0) {
      const socket = this.socket
      const bytes = this.w.length
      const parts = this.w.takeAll()
      if (socket.destroyed || socket.writableEnded) return
      this.writes++
      this.bytesSent += bytes
      let ok = true
      if (parts.length === 1) {
        ok = socket.write(parts[0])
      } else {
        // One writev for all of them. (The last write's answer covers them all.)
        socket.cork()
        for (const p of parts) ok = socket.write(p)
        socket.uncork()
      }
      // false: the socket holds more than its high-water mark; 'drain' carries on.
      if (!ok) return
      // The kernel took it all at once: nothing will drain, so carry on here.
      if (!this.pumpDeferred()) break
    }
    this.wakeWriters()
  }

  private readonly onDrain = (): void => {
    this.pumpDeferred()
    this.flush()
  }

  /** Encode waiting frames while the queue is under its bound; true if any were. */
  private pumpDeferred (): boolean {
    let any = false
    while (this.deferHead < this.deferred.length && this.queuedBytes() < this.maxQueued && this.state !== 'closed') {
      const d = this.deferred[this.deferHead] as Deferred
      this.deferred[this.deferHead++] = undefined
      // A call that timed out while waiting is not worth sending.
      if (d.type === FrameType.REQUEST && !this.pending.has(d.id)) continue
      this.encode(d.type, d.id, d.s, d.v, false)
      any = true
    }
    if (this.deferHead === this.deferred.length) {
      if (this.deferHead > 0) {
        this.deferred = []
        this.deferHead = 0
      }
    } else if (this.deferHead > 1024 && this.deferHead > this.deferred.length >> 1) {
      this.deferred = this.deferred.slice(this.deferHead)
      this.deferHead = 0
    }
    return any
  }

  private wakeWriters (): void {
    if (this.writableWaiters.length === 0 || !this.writable) return
    const waiters = this.writableWaiters
    this.writableWaiters = []
    for (const x of waiters) x.resolve()
  }

  // ---- reading control and heartbeat ------------------------------------

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

  private startHeartbeat (): void {
    const every = this.opts.heartbeatMs ?? 0
    if (every <= 0) return
    const timeout = this.opts.heartbeatTimeoutMs ?? 3 * every
    let seen = this.reads
    let quietSince = Date.now()
    this.heartbeat = setInterval(() => {
      const now = Date.now()
      // While we are not reading, silence says nothing about the peer.
      if (this.reads !== seen || this.pauseBits !== 0) {
        seen = this.reads
        quietSince = now
        return
      }
      const quiet = now - quietSince
      if (quiet >= timeout) {
        this.log(`closing the connection to ${this.peer}: nothing received for ${quiet} ms`)
        this.shutdown({ code: 'ETIMEDOUT', message: `heartbeat timeout: nothing received from ${this.peer} for ${quiet} ms`, remote: false }, 'abort')
        return
      }
      this.control(FrameType.PING, ++this.pingSeq)
    }, every)
    this.heartbeat.unref()
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
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat)
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer)
    this.fail(new FsError(reason.code, reason.message))

    for (const p of this.pending.values()) {
      if (p.timer !== undefined) clearTimeout(p.timer)
      p.reject(new FsError('ENOTCONN', `${p.method}: the connection to ${this.peer} closed before the reply came (${reason.message})`))
    }
    this.pending.clear()
    this.deferred = []
    this.deferHead = 0
    for (const p of this.pings.values()) {
      clearTimeout(p.timer)
      p.reject(this.notConnected('ping'))
    }
    this.pings.clear()
    for (const x of this.writableWaiters) x.reject(this.notConnected('whenWritable'))
    this.writableWaiters = []

    const socket = this.socket
    if (how === 'abort' || socket.destroyed) {
      socket.destroy()
    } else {
      if (how === 'goodbye') {
        const w = this.w
        const mark = beginFrame(w, FrameType.GOODBYE, 0)
        w.string(reason.code)
        w.string(reason.message.length > 4096 ? reason.message.slice(0, 4096) : reason.message)
        endFrame(w, mark, 0xffffffff)
      }
      // What is already encoded goes out with the goodbye. Keep reading (and
      // ignoring) so that the peer's end arrives and the socket closes; a peer
      // that never ends gets destroyed after LINGER_MS.
      this.flush()
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
