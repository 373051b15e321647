// What every backend refuses before it applies anything: a malformed batch
// (EINVAL) and a payload past the backend's largest object (EFBIG), with the
// same messages whatever the backend. One walk of the batch that also hands
// each byte string and name to the caller, in op order, so the SQLite
// encoder plans its encoding in the same pass (codec.ts).

import { PackedOmap } from './omap'
import { ObjectOp, ObjectWrite, StoreError } from './types'

/** Told of each byte string of a batch once it is known to be a Uint8Array. */
export type OnBytes = (data: Uint8Array, what: string) => void
/** Told of each name (pool, object, xattr) once it is known to be a non-empty string. */
export type OnString = (s: string, what: string) => void

const ignore = (): void => {}

/** Check a whole batch; throws StoreError EINVAL or EFBIG. */
export function checkBatch (batch: unknown, maxObjectBytes: number, onBytes: OnBytes = ignore, onString: OnString = ignore): asserts batch is ObjectWrite[] {
  if (!Array.isArray(batch)) throw invalid('a batch must be an array of object writes')
  for (const w of batch) checkWrite(w, maxObjectBytes, onBytes, onString)
}

export function checkWrite (w: unknown, maxObjectBytes: number, onBytes: OnBytes = ignore, onString: OnString = ignore): asserts w is ObjectWrite {
  if (w === null || typeof w !== 'object') throw invalid('each object write must be an object')
  const x = w as ObjectWrite
  checkString(x.pool, 'pool name', onString)
  checkString(x.name, 'object name', onString)
  if (!Array.isArray(x.ops)) throw invalid(`ops of ${x.pool}/${x.name} must be an array`)
  const where = `${x.pool}/${x.name}`
  for (const op of x.ops) checkOp(op, where, maxObjectBytes, onBytes, onString)
}

function checkBytes (data: unknown, what: string, onBytes: OnBytes): void {
  if (!(data instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`)
  onBytes(data, what)
}

function checkOp (op: ObjectOp, where: string, max: number, onBytes: OnBytes, onString: OnString): void {
  if (op === null || typeof op !== 'object') throw invalid(`an op of ${where} is not an object`)
  switch (op.op) {
    case 'create': return
    case 'write':
      checkInteger(op.offset, 'write offset', where)
      checkBytes(op.data, `write data of ${where}`, onBytes)
      if (op.offset + op.data.byteLength > max) throw tooBig(where, op.offset + op.data.byteLength, max)
      return
    case 'writeFull':
    case 'append':
      checkBytes(op.data, `${op.op} data of ${where}`, onBytes)
      if (op.data.byteLength > max) throw tooBig(where, op.data.byteLength, max)
      return
    case 'truncate':
      checkInteger(op.size, 'truncate size', where)
      if (op.size > max) throw tooBig(where, op.size, max)
      return
    case 'zero':
      checkInteger(op.offset, 'zero offset', where)
      checkInteger(op.length, 'zero length', where)
      return
    case 'remove': case 'omapClear': case 'assertExists': return
    case 'omapSet':
      // Packed entries were laid out by OmapPacker: well-formed by construction.
      if (op.entries instanceof PackedOmap) return
      if (!Array.isArray(op.entries)) throw invalid(`omapSet entries of ${where} must be an array`)
      if (op.entries.length > 0) {
        const key = `omap key of ${where}`
        const value = `omap value of ${where}`
        for (const e of op.entries) {
          if (!Array.isArray(e) || e.length !== 2) throw invalid(`an omapSet entry of ${where} is not a [key, value] pair`)
          checkBytes(e[0], key, onBytes)
          checkBytes(e[1], value, onBytes)
        }
      }
      return
    case 'omapRemove': {
      if (!Array.isArray(op.keys)) throw invalid(`omapRemove keys of ${where} must be an array`)
      const key = `omap key of ${where}`
      for (const k of op.keys) checkBytes(k, key, onBytes)
      return
    }
    case 'omapRemoveRange':
      checkBytes(op.start, `omapRemoveRange start of ${where}`, onBytes)
      if (op.end !== undefined) checkBytes(op.end, `omapRemoveRange end of ${where}`, onBytes)
      return
    case 'setXattr':
      checkString(op.name, `xattr name of ${where}`, onString)
      checkBytes(op.value, `xattr value of ${where}`, onBytes)
      return
    case 'removeXattr':
      checkString(op.name, `xattr name of ${where}`, onString)
      return
    case 'assertVersion':
      checkInteger(op.version, 'asserted version', where)
      return
    default:
      throw invalid(`unknown op ${JSON.stringify((op as { op?: unknown }).op)} on ${where}`)
  }
}

function checkString (s: unknown, what: string, onString: OnString): void {
  if (typeof s !== 'string' || s.length === 0) throw invalid(`${what} must be a non-empty string`)
  onString(s, what)
}

function checkInteger (v: unknown, what: string, where: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(`${what} of ${where} must be a non-negative integer (got ${String(v)})`)
  }
}

/** A read's offset, length or limit: a non-negative integer, or EINVAL. */
export function checkCount (v: unknown, what: string): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new StoreError('EINVAL', `${what} must be a non-negative integer (got ${String(v)})`)
  }
}

/** A pool name given to createPool. */
export function checkPoolName (pool: unknown): void {
  if (typeof pool !== 'string' || pool.length === 0) throw new StoreError('EINVAL', 'a pool name must be a non-empty string')
}

function invalid (message: string): StoreError {
  return new StoreError('EINVAL', `invalid batch: ${message}`)
}

function tooBig (where: string, bytes: number, max: number): StoreError {
  return new StoreError('EFBIG', `${where}: ${bytes} bytes is past the largest object size (${max} bytes)`)
}
