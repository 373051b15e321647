// The sending side of a connection: encoding frames, batching them into few
// socket writes, and holding senders back when the socket does not drain.
//
// Batching: frames are encoded into one output buffer and written with a
// single socket.write() at the end of the event-loop turn (setImmediate), so
// the replies to all the requests of one read, or a burst of calls, go out
// together.
//
// Backpressure: encoded but unsent bytes (our buffer plus what the socket
// still holds) are kept under maxQueuedBytes (plus at most one frame). Past
// that, calls, notifies and replies wait in a FIFO holding only references
// to their values, and are encoded as the socket drains; order is kept.
// Producers that make their own data can pace themselves with
// whenWritable(). Pings, pongs and goodbyes skip the FIFO (they are tiny).

import type net from 'net'
import { type ErrnoName, FsError } from '../common/errors'
import { beginFrame, endFrame, FrameError, FrameType } from './frame'
import { EncodeError, Writer } from './values'

export const MIN_QUEUED_BYTES = 64 * 1024

/** What the outbox needs to know of its connection. */
export interface OutboxOwner {
  /** Open (handshake done, not closed): frames may be sent. */
  isOpen (): boolean
  isClosed (): boolean
  /** Does a call still wait for the reply to this request? (One that timed out while queued is not sent.) */
  awaitsReply (id: number): boolean
  /** A request could not be encoded: its call fails with err. */
  requestFailed (id: number, err: FsError): void
  /** A reply or error reply was encoded (or never will be): one fewer peer request in progress. */
  replied (): void
  peer (): string
  log (msg: string): void
}

/** A frame waiting in the FIFO: for requests and notifies s is the method, for errors the code. */
interface Deferred { type: number, id: number, s: string, v: unknown }

export class Outbox {
  private readonly w = new Writer()
  private deferred: Array<Deferred | undefined> = []
  private deferHead = 0
  private writableWaiters: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  private flushPending = false

  framesSent = 0
  bytesSent = 0
  /** socket.write() calls: fewer than framesSent when batching works. */
  writes = 0

  constructor (
    private readonly socket: net.Socket,
    private readonly maxFrame: number,
    private readonly maxQueued: number,
    private readonly owner: OutboxOwner
  ) {
    socket.on('drain', this.onDrain)
  }

  /** Encoded bytes not yet taken by the kernel. */
  queuedBytes (): number {
    return this.w.length + this.socket.writableLength
  }

  /** Frames waiting in the FIFO. */
  get waiting (): number {
    return this.deferred.length - this.deferHead
  }

  /** Nobody waits and the queue is under its bound: a new frame would be encoded at once. */
  get writable (): boolean {
    return this.owner.isOpen() && this.deferHead === this.deferred.length && this.queuedBytes() < this.maxQueued
  }

  /** Resolves when writable; rejects when the connection closes first (see close()). */
  whenWritable (): Promise<void> {
    if (this.writable) return Promise.resolve()
    return new Promise((resolve, reject) => this.writableWaiters.push({ resolve, reject }))
  }

  /** A request, reply, error or notify: encoded now, or queued behind others while the socket is backed up. */
  send (type: number, id: number, s: string, v: unknown): void {
    if (this.deferHead < this.deferred.length || this.queuedBytes() >= this.maxQueued) {
      this.deferred.push({ type, id, s, v })
      return
    }
    this.encode(type, id, s, v, true)
  }

  /** Control frames (hello, welcome, ping, pong) skip the FIFO. */
  control (type: number, id: number, payload?: object): void {
    const w = this.w
    const mark = beginFrame(w, type, id)
    if (payload !== undefined) w.value(payload)
    endFrame(w, mark, this.maxFrame)
    this.framesSent++
    this.scheduleFlush()
  }

  /** The last frame: why this side closes (a long message is cut; the frame is never refused). */
  goodbye (code: ErrnoName, message: string): void {
    const w = this.w
    const mark = beginFrame(w, FrameType.GOODBYE, 0)
    w.string(code)
    w.string(message.length > 4096 ? message.slice(0, 4096) : message)
    endFrame(w, mark, 0xffffffff)
  }

  /** The connection closed: what waits in the FIFO is dropped, and whoever waits to write hears err. */
  close (err: () => Error): void {
    this.deferred = []
    this.deferHead = 0
    for (const x of this.writableWaiters) x.reject(err())
    this.writableWaiters = []
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
    if (type === FrameType.REPLY || type === FrameType.ERROR) this.owner.replied()
    this.scheduleFlush()
  }

  private encodeFailed (type: number, id: number, s: string, v: unknown, err: unknown, direct: boolean): void {
    if (err instanceof EncodeError) err.refresh()
    const code: ErrnoName = err instanceof FrameError ? err.code : err instanceof EncodeError ? 'EINVAL' : 'EIO'
    const message = (err as Error)?.message ?? String(err)
    switch (type) {
      case FrameType.REQUEST:
        this.owner.requestFailed(id, new FsError(code, `${s}: ${message}`))
        return
      case FrameType.REPLY:
        this.owner.log(`the reply to ${s} from ${this.owner.peer()} cannot be sent: ${message}`)
        this.encode(FrameType.ERROR, id, code === 'EMSGSIZE' ? 'EMSGSIZE' : 'EIO', `${s}: the reply cannot be sent: ${message}`, direct)
        return
      case FrameType.ERROR: {
        // Only an enormous error message gets here: send a short one instead, once.
        const short = 'the error message was too long to send'
        if (v === short) {
          this.owner.log(`the error reply to request ${id} from ${this.owner.peer()} cannot be sent: ${message}`)
          this.owner.replied()
          return
        }
        this.encode(FrameType.ERROR, id, s, short, direct)
        return
      }
      default:
        if (direct) throw new FsError(code, `notify ${s}: ${message}`)
        this.owner.log(`notify ${s} to ${this.owner.peer()} dropped: ${message}`)
    }
  }

  private scheduleFlush (): void {
    if (this.flushPending) return
    this.flushPending = true
    setImmediate(this.flush)
  }

  /** Hand what is encoded to the socket now. */
  readonly flush = (): void => {
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
    while (this.deferHead < this.deferred.length && this.queuedBytes() < this.maxQueued && !this.owner.isClosed()) {
      const d = this.deferred[this.deferHead] as Deferred
      this.deferred[this.deferHead++] = undefined
      // A call that timed out while waiting is not worth sending.
      if (d.type === FrameType.REQUEST && !this.owner.awaitsReply(d.id)) continue
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
}
