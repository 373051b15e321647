// Batch encoding for the crossing from the caller's thread to the writer thread.
//
// Structured clone of a batch would copy each small Buffer's whole 8 KiB pool
// slab and build one JS object per op on the other side twice over. Instead the
// batch's structure (pools, names, ops, small byte strings) goes into ONE
// ArrayBuffer, and large payloads that own their whole ArrayBuffer travel as
// transferables, zero-copy. Everything else is copied into the structure buffer.
//
// Encoding also validates the batch (check.ts, in the same pass), so a
// malformed request fails on the caller's thread with EINVAL/EFBIG and never
// reaches the writer.

import { PackedOmap } from '../omap'
import { checkWrite } from '../check'
import { ObjectOp, ObjectWrite, StoreError } from '../types'
import { MAX_OBJECT_BYTES } from './schema'

/** Payloads at least this large that own their whole ArrayBuffer are transferred, not copied. */
export const TRANSFER_MIN_BYTES = 32 * 1024

const OP = {
  create: 0,
  write: 1,
  writeFull: 2,
  append: 3,
  truncate: 4,
  zero: 5,
  remove: 6,
  omapSet: 7,
  omapRemove: 8,
  omapRemoveRange: 9,
  omapClear: 10,
  setXattr: 11,
  removeXattr: 12,
  assertExists: 13,
  assertVersion: 14
} as const

/** Marks a byte string as "payload number N of the transfer list" instead of inline bytes. */
const TRANSFERRED = 0xffffffff
const MAX_INLINE_BYTES = 0xfffffffe

export interface EncodedBatch {
  /** The structure; always transferred. */
  structure: ArrayBuffer
  /** Payload buffers moved to the writer (detached on this side once posted). */
  payloads: ArrayBuffer[]
}

/**
 * Encode (and validate) a batch. transfer=false copies every payload, for
 * callers that keep using their buffers, or after a transfer was refused.
 */
export function encodeBatch (batch: ObjectWrite[], transfer: boolean): EncodedBatch {
  if (!Array.isArray(batch)) throw new StoreError('EINVAL', 'invalid batch: a batch must be an array of object writes')
  const payloads: ArrayBuffer[] = []
  const payloadIndex = new Map<ArrayBuffer, number>()
  // Decide per byte string whether it is inline (its length) or transferred (-1 - index).
  const plan: number[] = []
  let size = 4

  const sizeBytes = (data: Uint8Array, what: string): void => {
    const ab = data.buffer
    if (transfer && data.byteLength >= TRANSFER_MIN_BYTES && ab instanceof ArrayBuffer &&
        data.byteOffset === 0 && data.byteLength === ab.byteLength) {
      let index = payloadIndex.get(ab)
      if (index === undefined) {
        index = payloads.length
        payloads.push(ab)
        payloadIndex.set(ab, index)
      }
      plan.push(-1 - index)
      size += 8
      return
    }
    if (data.byteLength > MAX_INLINE_BYTES) throw new StoreError('EINVAL', `invalid batch: ${what} is too large (${data.byteLength} bytes)`)
    plan.push(data.byteLength)
    size += 4 + data.byteLength
  }
  const sizeString = (s: string): void => {
    size += 4 + Buffer.byteLength(s)
  }

  for (const w of batch) {
    checkWrite(w, MAX_OBJECT_BYTES, sizeBytes, sizeString)
    size += 4
    for (const op of w.ops) size += fixedBytes(op)
  }

  const structure = new ArrayBuffer(size)
  const out = new Cursor(Buffer.from(structure))
  let next = 0
  const putBytes = (data: Uint8Array): void => {
    const p = plan[next++]
    if (p < 0) {
      out.u32(TRANSFERRED)
      out.u32(-1 - p)
    } else {
      out.u32(p)
      out.bytes(data)
    }
  }
  out.u32(batch.length)
  for (const w of batch) {
    out.string(w.pool)
    out.string(w.name)
    out.u32(w.ops.length)
    for (const op of w.ops) putOp(op, out, putBytes)
  }
  if (out.pos !== size) throw new Error(`batch encoding: wrote ${out.pos} of ${size} bytes`)
  return { structure, payloads }
}

/** Bytes of an op's encoding besides its byte strings and names (those were counted by sizeBytes and sizeString). */
function fixedBytes (op: ObjectOp): number {
  switch (op.op) {
    case 'create': return 2
    case 'write': case 'truncate': case 'assertVersion': return 9
    case 'zero': return 17
    // Packed entries are in the wire layout already (omap.ts): copied in one piece.
    case 'omapSet': return op.entries instanceof PackedOmap ? 5 + op.entries.bytes.byteLength : 5
    case 'omapRemove': return 5
    case 'omapRemoveRange': return 2
    default: return 1
  }
}

function putOp (op: ObjectOp, out: Cursor, putBytes: (d: Uint8Array) => void): void {
  out.u8(OP[op.op])
  switch (op.op) {
    case 'create': out.u8(op.exclusive ? 1 : 0); break
    case 'write': out.f64(op.offset); putBytes(op.data); break
    case 'writeFull': case 'append': putBytes(op.data); break
    case 'truncate': out.f64(op.size); break
    case 'zero': out.f64(op.offset); out.f64(op.length); break
    case 'remove': case 'omapClear': case 'assertExists': break
    case 'omapSet':
      if (op.entries instanceof PackedOmap) {
        out.u32(op.entries.count)
        out.bytes(op.entries.bytes)
        break
      }
      out.u32(op.entries.length)
      for (const [k, v] of op.entries) { putBytes(k); putBytes(v) }
      break
    case 'omapRemove':
      out.u32(op.keys.length)
      for (const k of op.keys) putBytes(k)
      break
    case 'omapRemoveRange':
      putBytes(op.start)
      out.u8(op.end === undefined ? 0 : 1)
      if (op.end !== undefined) putBytes(op.end)
      break
    case 'setXattr': out.string(op.name); putBytes(op.value); break
    case 'removeXattr': out.string(op.name); break
    case 'assertVersion': out.f64(op.version); break
  }
}

/**
 * Decode on the writer's side. Byte strings come back as Buffers that view the
 * structure or a transferred payload: nothing is copied.
 */
export function decodeBatch (structure: ArrayBuffer, payloads: ArrayBuffer[]): ObjectWrite[] {
  const buf = Buffer.from(structure)
  const inp = new Cursor(buf)
  const getBytes = (): Buffer => {
    const n = inp.u32()
    if (n === TRANSFERRED) return Buffer.from(payloads[inp.u32()])
    return inp.slice(n)
  }
  const writes: ObjectWrite[] = []
  const nWrites = inp.u32()
  for (let i = 0; i < nWrites; i++) {
    const pool = inp.string()
    const name = inp.string()
    const nOps = inp.u32()
    const ops: ObjectOp[] = []
    for (let j = 0; j < nOps; j++) {
      const code = inp.u8()
      switch (code) {
        case OP.create: ops.push({ op: 'create', exclusive: inp.u8() === 1 }); break
        case OP.write: { const offset = inp.f64(); ops.push({ op: 'write', offset, data: getBytes() }); break }
        case OP.writeFull: ops.push({ op: 'writeFull', data: getBytes() }); break
        case OP.append: ops.push({ op: 'append', data: getBytes() }); break
        case OP.truncate: ops.push({ op: 'truncate', size: inp.f64() }); break
        case OP.zero: { const offset = inp.f64(); ops.push({ op: 'zero', offset, length: inp.f64() }); break }
        case OP.remove: ops.push({ op: 'remove' }); break
        case OP.omapSet: {
          const n = inp.u32()
          // Inline entries are walked in place by the applier (no pair per entry).
          // (A transferred payload's marker reads as a length past the end: no view.)
          const packed = PackedOmap.view(buf, inp.pos, n)
          if (packed !== null) {
            inp.pos = packed.end
            ops.push({ op: 'omapSet', entries: packed.entries })
            break
          }
          const entries: Array<[Uint8Array, Uint8Array]> = []
          for (let k = 0; k < n; k++) { const key = getBytes(); entries.push([key, getBytes()]) }
          ops.push({ op: 'omapSet', entries })
          break
        }
        case OP.omapRemove: {
          const n = inp.u32()
          const keys: Uint8Array[] = []
          for (let k = 0; k < n; k++) keys.push(getBytes())
          ops.push({ op: 'omapRemove', keys })
          break
        }
        case OP.omapRemoveRange: {
          const start = getBytes()
          ops.push(inp.u8() === 1 ? { op: 'omapRemoveRange', start, end: getBytes() } : { op: 'omapRemoveRange', start })
          break
        }
        case OP.omapClear: ops.push({ op: 'omapClear' }); break
        case OP.setXattr: { const xname = inp.string(); ops.push({ op: 'setXattr', name: xname, value: getBytes() }); break }
        case OP.removeXattr: ops.push({ op: 'removeXattr', name: inp.string() }); break
        case OP.assertExists: ops.push({ op: 'assertExists' }); break
        case OP.assertVersion: ops.push({ op: 'assertVersion', version: inp.f64() }); break
        default: throw new Error(`batch decoding: unknown op code ${code}`)
      }
    }
    writes.push({ pool, name, ops })
  }
  return writes
}

class Cursor {
  pos = 0
  constructor (private readonly buf: Buffer) {}
  u8 (v?: number): number {
    if (v === undefined) return this.buf[this.pos++]
    this.buf[this.pos++] = v
    return v
  }

  u32 (v?: number): number {
    if (v === undefined) { const r = this.buf.readUInt32LE(this.pos); this.pos += 4; return r }
    this.buf.writeUInt32LE(v, this.pos)
    this.pos += 4
    return v
  }

  f64 (v?: number): number {
    if (v === undefined) { const r = this.buf.readDoubleLE(this.pos); this.pos += 8; return r }
    this.buf.writeDoubleLE(v, this.pos)
    this.pos += 8
    return v
  }

  bytes (data: Uint8Array): void {
    this.buf.set(data, this.pos)
    this.pos += data.byteLength
  }

  slice (n: number): Buffer {
    const r = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return r
  }

  string (s?: string): string {
    if (s === undefined) {
      const n = this.u32()
      const r = this.buf.toString('utf8', this.pos, this.pos + n)
      this.pos += n
      return r
    }
    const n = this.buf.write(s, this.pos + 4)
    this.u32(n)
    this.pos += n
    return s
  }
}
