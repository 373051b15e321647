// A file's client-side data state: the write buffer and what is in flight.
//
// Writes land in sorted, non-overlapping dirty extents. Sequential writes
// append into one extent whose buffer is sized to the end of the current
// stripe, so a stripe's worth of 1 MiB writes becomes one 4 MiB object write
// (handed to the store without another copy). A flush turns the extents into
// object writes and commits them together with the new size and mtime; until
// the commit, reads of those ranges wait for it.

import type { Timespec } from '../common/time'
import { dataObject, DATA_POOL, STRIPE_BYTES } from '../common/layout'
import type { Ino } from '../common/types'
import type { ObjectOp, ObjectWrite } from '../store/types'

/** Writes at least this large get a stripe-sized buffer; smaller ones keep their own. */
const LARGE_WRITE_BYTES = 64 * 1024

interface Extent {
  off: number
  buf: Buffer
  len: number
}

export interface InflightRange {
  start: number
  end: number
  done: Promise<unknown>
}

export class FileData {
  /** Open handles on this inode through this client. */
  refs = 0
  /** Size including buffered writes. */
  size: number
  /** Mode and group as last seen (a write checks them for the setgid bit). */
  mode = 0
  gid = 0
  /** Times of the last buffered write, to report with the data. */
  mtime: Timespec | null = null
  private extents: Extent[] = []
  dirtyBytes = 0
  /** When the oldest unflushed write arrived (ms, monotonic), 0 when clean. */
  dirtySinceMs = 0
  readonly inflight: InflightRange[] = []
  /** A failed commit, reported by the next flush/fsync (then cleared). */
  error: Error | null = null
  /** Capabilities held on the file (CAP_CACHE / CAP_BUFFER), and until when (a lease). */
  caps = 0
  leaseExpiresAtMs = Infinity
  renewTimer: NodeJS.Timeout | null = null

  constructor (readonly ino: Ino, size: number) {
    this.size = size
  }

  get hasDirty (): boolean { return this.extents.length > 0 || this.mtime !== null }

  /** Buffer a write. Returns true when the file should be flushed now (a stripe filled up). */
  write (off: number, data: Buffer, time: Timespec, nowMs: number): boolean {
    const end = off + data.length
    if (this.dirtyBytes === 0) this.dirtySinceMs = nowMs
    const last = this.extents[this.extents.length - 1]
    let stripeFull = false
    if (last && last.off + last.len === off) {
      if (last.len + data.length > last.buf.length) grow(last, last.len + data.length)
      data.copy(last.buf, last.len)
      last.len += data.length
      stripeFull = last.len === last.buf.length && (last.off + last.len) % STRIPE_BYTES === 0
    } else {
      if (!last || off > last.off + last.len) {
        this.extents.push(newExtent(off, data))
      } else {
        this.extents = overlay(this.extents, off, end, newExtent(off, data))
      }
      const e = this.extents.find(x => x.off === off) as Extent
      stripeFull = e.len === e.buf.length && (e.off + e.len) % STRIPE_BYTES === 0 && e.len >= LARGE_WRITE_BYTES
    }
    this.dirtyBytes += data.length
    if (end > this.size) this.size = end
    this.mtime = time
    return stripeFull || this.extents.length > 64 || this.dirtyBytes >= STRIPE_BYTES
  }

  /** Drop buffered bytes at or beyond size (a truncate). */
  truncate (size: number): void {
    this.extents = this.extents.filter(e => e.off < size)
    for (const e of this.extents) if (e.off + e.len > size) e.len = size - e.off
    this.dirtyBytes = this.extents.reduce((n, e) => n + e.len, 0)
    this.size = size
  }

  /**
   * Take the buffered writes as object writes (split at stripe boundaries).
   * The buffers go to the store; the FileData no longer references them.
   */
  takeWrites (): { writes: ObjectWrite[], start: number, end: number, bytes: number } {
    const byObject = new Map<string, ObjectOp[]>()
    let start = Infinity
    let end = 0
    let bytes = 0
    for (const e of this.extents) {
      start = Math.min(start, e.off)
      end = Math.max(end, e.off + e.len)
      bytes += e.len
      let pos = e.off
      while (pos < e.off + e.len) {
        const stripe = Math.floor(pos / STRIPE_BYTES)
        const stripeEnd = (stripe + 1) * STRIPE_BYTES
        const n = Math.min(e.off + e.len, stripeEnd) - pos
        const name = dataObject(this.ino, stripe)
        let ops = byObject.get(name)
        if (!ops) {
          ops = []
          byObject.set(name, ops)
        }
        const from = pos - e.off
        const data = from === 0 && n === e.buf.length ? e.buf : e.buf.subarray(from, from + n)
        ops.push({ op: 'write', offset: pos - stripe * STRIPE_BYTES, data })
        pos += n
      }
    }
    this.extents = []
    this.dirtyBytes = 0
    this.dirtySinceMs = 0
    const writes: ObjectWrite[] = []
    for (const [name, ops] of byObject) writes.push({ pool: DATA_POOL, name, ops })
    return { writes, start: start === Infinity ? 0 : start, end, bytes }
  }

  /** Copy buffered bytes that overlap [off, off+out.length) into out. */
  overlayDirty (off: number, out: Buffer): void {
    const end = off + out.length
    for (const e of this.extents) {
      const s = Math.max(off, e.off)
      const t = Math.min(end, e.off + e.len)
      if (s < t) e.buf.copy(out, s - off, s - e.off, t - e.off)
    }
  }

  /** Commits still in flight that cover part of [start, end). */
  pendingCommits (start: number, end: number): Array<Promise<unknown>> {
    return this.inflight.filter(r => r.start < end && r.end > start).map(r => r.done)
  }
}

function newExtent (off: number, data: Buffer): Extent {
  if (data.length < LARGE_WRITE_BYTES) return { off, buf: data, len: data.length }
  const stripeEnd = (Math.floor(off / STRIPE_BYTES) + 1) * STRIPE_BYTES
  const capacity = Math.max(data.length, stripeEnd - off)
  // allocUnsafeSlow: the buffer owns its memory, so the store can take it without copying.
  const buf = Buffer.allocUnsafeSlow(capacity)
  data.copy(buf, 0)
  return { off, buf, len: data.length }
}

/** Make room for `needed` bytes, growing geometrically but not past the stripe's end unless needed. */
function grow (e: Extent, needed: number): void {
  const stripeEnd = (Math.floor(e.off / STRIPE_BYTES) + 1) * STRIPE_BYTES
  const capacity = Math.min(Math.max(needed, e.buf.length * 2, LARGE_WRITE_BYTES), Math.max(needed, stripeEnd - e.off))
  const buf = Buffer.allocUnsafeSlow(capacity)
  e.buf.copy(buf, 0, 0, e.len)
  e.buf = buf
}

/** Insert a new extent over [off, end), cutting what it overwrites out of the others. */
function overlay (extents: Extent[], off: number, end: number, added: Extent): Extent[] {
  const out: Extent[] = []
  for (const e of extents) {
    const eEnd = e.off + e.len
    if (eEnd <= off || e.off >= end) {
      out.push(e)
      continue
    }
    if (e.off < off) out.push({ off: e.off, buf: e.buf, len: off - e.off })
    if (eEnd > end) {
      const tail = Buffer.from(e.buf.subarray(end - e.off, e.len))
      out.push({ off: end, buf: tail, len: tail.length })
    }
  }
  out.push(added)
  out.sort((a, b) => a.off - b.off)
  return out
}
