// What a class method sees of its object, and the writes it buffers.
//
// A method reads the object as it was when its call started (a snapshot:
// nobody else's later changes) plus its own writes so far, and its writes
// become ObjectOps that the main thread commits in one guarded batch.
//
// Calls on the same object that run in the same group form a chain: each
// sees the object as the earlier successful calls of the chain left it, as
// if they had committed (they commit together, or not at all, and a failed
// commit runs the whole group again). So an overlay sits on top of either the
// store snapshot or the chain's accumulated overlay, and absorbing a call's
// overlay into the chain replays its ops there.
//
// Keys and xattr names are latin1 strings (one char per byte) so they sort
// like the bytes, the order the store keeps omap keys in.

import type { ObjectOp } from '../types'
import { HostError } from '../../lua/host'

export interface ObjectState {
  size: number
  /** The object's version when the current store write begins (0 for a new object). */
  version: number
  mtimeMs: number
}

/** A readable object: the store snapshot, or an overlay. */
export interface ObjectView {
  stat (): ObjectState | null
  /** Bytes [offset, offset+length) clipped to the size; the object exists. */
  read (offset: number, length: number): Buffer
  omapGet (key: string): Buffer | null
  /** Entries with keys > after (null: from the first), in key order, at most limit. */
  omapList (after: string | null, limit: number): Array<[string, Buffer]>
  getXattr (name: string): Buffer | null
}

type PayloadOp =
  | { k: 'write', offset: number, data: Uint8Array }
  | { k: 'truncate', size: number }

/** Shared empty containers, never written: replaced by fresh ones on first write. */
const EMPTY: Map<string, Buffer | null> = new Map()
const NONE: PayloadOp[] = []

export class ObjectOverlay implements ObjectView {
  private exists: boolean
  private size: number
  private version: number
  private mtimeMs: number
  /** False once the payload was replaced or removed here: below's bytes are gone. */
  private payloadBelow = true
  private payloadOps: PayloadOp[] = NONE
  // Allocated on first write: most calls touch one or two of these, and an
  // overlay is made per call.
  private omap: Map<string, Buffer | null> = EMPTY
  private omapBelow = true
  private xattrs: Map<string, Buffer | null> = EMPTY
  private xattrsBelow = true
  /** The ops, in order, as the store will apply them. */
  readonly ops: ObjectOp[] = []
  /** Bytes of data the ops carry. */
  bytes = 0

  constructor (private readonly below: ObjectView) {
    const st = below.stat()
    this.exists = st !== null
    this.size = st?.size ?? 0
    this.version = st?.version ?? 0
    this.mtimeMs = st?.mtimeMs ?? 0
  }

  // ---- reads ----

  stat (): ObjectState | null {
    return this.exists ? { size: this.size, version: this.version, mtimeMs: this.mtimeMs } : null
  }

  read (offset: number, length: number): Buffer {
    const end = Math.min(offset + length, this.size)
    if (end <= offset) return Buffer.alloc(0)
    const out = Buffer.alloc(end - offset)
    if (this.payloadBelow) out.set(this.below.read(offset, end - offset))
    // Invariant: bytes at or past the current size read as zeros, so a
    // truncate only has to clear what lies past its new size.
    for (const op of this.payloadOps) {
      if (op.k === 'write') {
        const from = Math.max(offset, op.offset)
        const to = Math.min(end, op.offset + op.data.length)
        if (to > from) out.set(op.data.subarray(from - op.offset, to - op.offset), from - offset)
      } else if (op.size < end) {
        out.fill(0, Math.max(op.size, offset) - offset)
      }
    }
    return out
  }

  omapGet (key: string): Buffer | null {
    if (!this.exists) return null
    const v = this.omap.get(key)
    if (v !== undefined) return v
    return this.omapBelow ? this.below.omapGet(key) : null
  }

  omapList (after: string | null, limit: number): Array<[string, Buffer]> {
    const out: Array<[string, Buffer]> = []
    if (!this.exists || limit <= 0) return out
    const mine = [...this.omap.entries()]
      .filter((e): e is [string, Buffer] => e[1] !== null && (after === null || e[0] > after))
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    let m = 0
    let pending: Array<[string, Buffer]> = []
    let p = 0
    let cursor = after
    let belowDone = !this.omapBelow
    while (out.length < limit) {
      if (!belowDone && p >= pending.length) {
        // Enough for the rest even if every entry we shadow is in this page.
        const want = limit - out.length + this.omap.size
        const page = this.below.omapList(cursor, want)
        if (page.length < want) belowDone = true
        if (page.length > 0) cursor = page[page.length - 1][0]
        pending = page.filter(([k]) => !this.omap.has(k))
        p = 0
        if (pending.length === 0 && !belowDone) continue
      }
      const a = m < mine.length ? mine[m] : null
      const b = p < pending.length ? pending[p] : null
      if (a === null && b === null) break
      if (b === null || (a !== null && a[0] < b[0])) { out.push(a as [string, Buffer]); m++ } else { out.push(b); p++ }
    }
    return out
  }

  getXattr (name: string): Buffer | null {
    if (!this.exists) return null
    const v = this.xattrs.get(name)
    if (v !== undefined) return v
    return this.xattrsBelow ? this.below.getXattr(name) : null
  }

  // ---- writes (checked, as the method asked for them) ----

  create (exclusive: boolean): void {
    if (exclusive && this.exists) throw new HostError('EEXIST', 'cls.create: the object already exists')
    if (this.exists) return
    this.record({ op: 'create', exclusive: false })
  }

  remove (): void {
    if (!this.exists) throw new HostError('ENOENT', 'cls.remove: the object does not exist')
    this.record({ op: 'remove' })
  }

  // ---- the one place state changes: every op goes through here, also when a chain replays them ----

  record (op: ObjectOp): void {
    switch (op.op) {
      case 'create':
        this.materialize()
        break
      case 'remove':
        this.exists = false
        this.size = 0
        this.resetPayload()
        this.omap = EMPTY
        this.omapBelow = false
        this.xattrs = EMPTY
        this.xattrsBelow = false
        break
      case 'write':
        this.materialize()
        // An empty write creates the object but, as in the store, does not move its size.
        if (op.data.length > 0) {
          this.payloadList().push({ k: 'write', offset: op.offset, data: op.data })
          this.size = Math.max(this.size, op.offset + op.data.length)
        }
        this.bytes += op.data.length
        break
      case 'writeFull':
        this.materialize()
        this.resetPayload()
        this.payloadList().push({ k: 'write', offset: 0, data: op.data })
        this.size = op.data.length
        this.bytes += op.data.length
        break
      case 'truncate':
        this.materialize()
        this.payloadList().push({ k: 'truncate', size: op.size })
        this.size = op.size
        break
      case 'omapSet':
        this.materialize()
        for (const [k, v] of op.entries) {
          this.omapMap().set(latin1(k), asBuffer(v))
          this.bytes += k.length + v.length
        }
        break
      case 'omapRemove':
        if (!this.exists) return // nothing to take away: the op would do nothing, leave it out
        for (const k of op.keys) this.omapMap().set(latin1(k), null)
        break
      case 'omapClear':
        if (!this.exists) return
        this.omap = EMPTY
        this.omapBelow = false
        break
      case 'setXattr':
        this.materialize()
        this.xattrsMap().set(op.name, asBuffer(op.value))
        this.bytes += op.name.length + op.value.length
        break
      case 'removeXattr':
        if (!this.exists) return
        this.xattrsMap().set(op.name, null)
        break
      default:
        throw new Error(`overlay: op ${op.op} is not used by object classes`)
    }
    this.pushOp(op)
  }

  /** A store op creates the object when absent: it starts empty, nothing below shows through. */
  private materialize (): void {
    if (this.exists) return
    this.exists = true
    this.size = 0
    this.resetPayload()
    this.omap = EMPTY
    this.omapBelow = false
    this.xattrs = EMPTY
    this.xattrsBelow = false
  }

  private resetPayload (): void {
    this.payloadBelow = false
    this.payloadOps = NONE
  }

  private payloadList (): PayloadOp[] {
    if (this.payloadOps === NONE) this.payloadOps = []
    return this.payloadOps
  }

  private omapMap (): Map<string, Buffer | null> {
    if (this.omap === EMPTY) this.omap = new Map()
    return this.omap
  }

  private xattrsMap (): Map<string, Buffer | null> {
    if (this.xattrs === EMPTY) this.xattrs = new Map()
    return this.xattrs
  }

  /** Consecutive omap sets (or removes) travel as one op. */
  private pushOp (op: ObjectOp): void {
    const last = this.ops[this.ops.length - 1]
    if (last?.op === 'omapSet' && op.op === 'omapSet' && Array.isArray(last.entries)) { last.entries.push(...op.entries); return }
    if (last?.op === 'omapRemove' && op.op === 'omapRemove') { last.keys.push(...op.keys); return }
    this.ops.push(op.op === 'omapSet' ? { op: 'omapSet', entries: [...op.entries] } : op.op === 'omapRemove' ? { op: 'omapRemove', keys: [...op.keys] } : op)
  }

  /**
   * Take in a later call's overlay (built on top of this one): replay its ops
   * and, if it changed anything, advance version and mtime the way the store
   * will when that call's write commits.
   */
  absorb (call: ObjectOverlay, nowMs: number): void {
    if (call.ops.length === 0) return
    const startVersion = this.exists ? this.version : 0
    for (const op of call.ops) this.record(op)
    this.ops.length = 0
    if (this.exists) {
      this.version = startVersion + 1
      this.mtimeMs = nowMs
    } else {
      this.version = 0
    }
  }
}

function latin1 (k: Uint8Array): string {
  return (Buffer.isBuffer(k) ? k : Buffer.from(k.buffer, k.byteOffset, k.byteLength)).toString('latin1')
}

/** The bytes as a Buffer without copying (ops are never changed once recorded). */
function asBuffer (v: Uint8Array): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}
