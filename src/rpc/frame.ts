// Frames on the wire. Every frame is
//
//   u32 BE   length of the rest of the frame (header + payload), at most the
//            receiver's maximum frame size (64 MiB unless configured)
//   u8       protocol major version (PROTOCOL_MAJOR)
//   u8       frame type (FrameType)
//   varint   id: the request id for request/reply/error, the ping number for
//            ping/pong, 0 otherwise
//   ...      payload, by type (values are encoded as in values.ts):
//
//   hello    {proto: 'cudele-rpc', minor, name, pid}  client → server, first frame
//   welcome  {proto: 'cudele-rpc', minor, name, pid}  server → client, the reply
//   request  method (string value), args (array value)
//   reply    result (one value)
//   error    code (string value: an errno name), message (string value)
//   notify   method (string value), args (array value); no reply, either direction
//   ping     (empty): the receiver answers pong with the same id
//   pong     (empty)
//   goodbye  code (string value), message (string value): the sender is
//            closing the connection and says why (sent before closing, best effort)
//
// The length, version and type bytes, hello, welcome and goodbye never change
// across major versions, so two different versions can always tell each other
// why they cannot talk. A minor version may add frame types and payload
// fields; a sender uses them only when the peer's minor says it knows them,
// and a receiver ignores payload bytes it does not know at the end of a frame.

import { ErrnoName } from '../common/errors'
import { Writer } from './values'

export const PROTOCOL_MAJOR = 1
export const PROTOCOL_MINOR = 0
export const PROTOCOL_NAME = 'cudele-rpc'

export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  REQUEST: 3,
  REPLY: 4,
  ERROR: 5,
  NOTIFY: 6,
  PING: 7,
  PONG: 8,
  GOODBYE: 9
} as const
export type FrameType = typeof FrameType[keyof typeof FrameType]

const NAMES: Record<number, string> = {}
for (const [k, v] of Object.entries(FrameType)) NAMES[v] = k.toLowerCase()

export function frameTypeName (t: number): string {
  return NAMES[t] ?? `unknown(0x${t.toString(16)})`
}

export const DEFAULT_MAX_FRAME = 64 * 1024 * 1024
export const LENGTH_BYTES = 4
/** version + type + a one-byte id. */
export const MIN_FRAME = 3

/** A framing problem; `code` is the errno the connection closes with. */
export class FrameError extends Error {
  constructor (readonly code: ErrnoName, message: string) {
    super(message)
    this.name = 'FrameError'
  }
}

/** Start a frame in w; returns its mark, for endFrame. */
export function beginFrame (w: Writer, type: number, id: number, version = PROTOCOL_MAJOR): number {
  const mark = w.mark()
  w.keepFrom = mark
  w.ensure(LENGTH_BYTES + 2 + 8)
  w.pos += LENGTH_BYTES
  w.buf[w.pos++] = version
  w.buf[w.pos++] = type
  w.varint(id)
  return mark
}

/**
 * Finish the frame begun at mark: fill in its length. A frame longer than
 * maxFrame is taken back out of w and FrameError EMSGSIZE thrown.
 */
export function endFrame (w: Writer, mark: number, maxFrame: number): number {
  const length = w.mark() - mark - LENGTH_BYTES
  if (length > maxFrame) {
    w.rollback(mark)
    throw new FrameError('EMSGSIZE', `a frame of ${length} bytes exceeds the limit of ${maxFrame} bytes`)
  }
  w.buf.writeUInt32BE(length, w.offset(mark))
  return length
}

/** Encode one whole frame into a buffer of its own (handshakes, tests, tools). */
export function encodeFrame (type: number, id: number, payload: (w: Writer) => void = () => {}, version = PROTOCOL_MAJOR): Buffer {
  const w = new Writer(256)
  const mark = beginFrame(w, type, id, version)
  payload(w)
  endFrame(w, mark, 0xffffffff)
  return w.take()
}

/**
 * Splits a byte stream into frames. push() hands every complete frame in a
 * chunk to onFrame at once, as (buf, start, end) with start at the version
 * byte; a frame split across chunks is assembled in a buffer of exactly its
 * size. Buffers given to onFrame are never written again, so values decoded
 * from them may be slices of them. Throws FrameError on a bad length.
 *
 * onFrame returns false to stop taking frames: the rest of the chunk is held
 * until resume() (reading paused), or dropped if `stopped` is set (closed).
 */
export class FrameParser {
  /** A frame being assembled across chunks, and how much of it has arrived. */
  private partial: Buffer | null = null
  private partialPos = 0
  /** Fewer than LENGTH_BYTES bytes left over from the last chunk. */
  private stash: Buffer | null = null
  /** The unparsed rest of a chunk, held while the owner does not take frames. */
  private held: Buffer | null = null
  stopped = false

  constructor (
    private readonly maxFrame: number,
    private readonly onFrame: (buf: Buffer, start: number, end: number) => boolean,
    /** Called with the length of the first frame before its body arrives: lets the owner refuse non-protocol peers early. */
    private readonly checkLength?: (length: number) => void
  ) {}

  push (chunk: Buffer): void {
    if (this.stopped) return
    if (this.held !== null) {
      chunk = Buffer.concat([this.held, chunk])
      this.held = null
    }
    let pos = 0
    if (this.partial !== null) {
      const p = this.partial
      const n = Math.min(p.length - this.partialPos, chunk.length)
      chunk.copy(p, this.partialPos, 0, n)
      this.partialPos += n
      if (this.partialPos < p.length) return
      this.partial = null
      pos = n
      if (!this.onFrame(p, 0, p.length)) { this.hold(chunk, pos); return }
    } else if (this.stash !== null) {
      chunk = Buffer.concat([this.stash, chunk])
      this.stash = null
    }
    const end = chunk.length
    while (pos < end) {
      if (end - pos < LENGTH_BYTES) {
        this.stash = Buffer.from(chunk.subarray(pos, end))
        return
      }
      const length = chunk.readUInt32BE(pos)
      this.check(length)
      const start = pos + LENGTH_BYTES
      if (end - start >= length) {
        pos = start + length
        if (!this.onFrame(chunk, start, pos)) { this.hold(chunk, pos); return }
      } else {
        const p = Buffer.allocUnsafe(length)
        chunk.copy(p, 0, start, end)
        this.partial = p
        this.partialPos = end - start
        return
      }
    }
  }

  private hold (chunk: Buffer, pos: number): void {
    if (!this.stopped && pos < chunk.length) this.held = chunk.subarray(pos)
  }

  /** Carry on with held bytes after onFrame returned false. */
  resume (): void {
    if (this.held === null || this.stopped) return
    const h = this.held
    this.held = null
    this.push(h)
  }

  private check (length: number): void {
    if (this.checkLength !== undefined) this.checkLength(length)
    if (length > this.maxFrame) throw new FrameError('EMSGSIZE', `peer sent a frame of ${length} bytes, over the limit of ${this.maxFrame} bytes`)
    if (length < MIN_FRAME) throw new FrameError('EPROTO', `peer sent a frame of ${length} bytes, too short for a header`)
  }

  /** Bytes held for an incomplete frame. */
  get buffered (): number {
    return (this.partial === null ? 0 : this.partialPos) + (this.stash?.length ?? 0) + (this.held?.length ?? 0)
  }
}
