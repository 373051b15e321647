// Applying one ObjectWrite to the write connection: the semantics of every
// ObjectOp on the SQLite tables. Runs inside the writer thread's transaction;
// a StoreError thrown here fails the batch (its savepoint is rolled back).
//
// Rules beyond types.ts (documented there too):
//   - ops that store something (create, write, writeFull, append, truncate,
//     omapSet, setXattr) create the object when it is absent;
//   - ops that only take something away (remove, zero, omapRemove,
//     omapRemoveRange, omapClear, removeXattr) do nothing to an absent object,
//     so replaying a journal that removes things twice cannot fail;
//   - an ObjectWrite with at least one non-guard op bumps the version by one
//     and sets mtime, once, at its end; a new object starts at version 1; an
//     object removed and recreated in the same write continues its version;
//   - guards see the object as the earlier ops of the same write left it, and
//     the version it had when the write began.

import Database from 'better-sqlite3'
import { forEachOmapEntry } from '../omap'
import { ObjectOp, ObjectWrite, StoreError } from '../types'
import { CHUNK_BYTES, CHUNKS_PER_OBJECT, MAX_OBJECT_BYTES } from './schema'

/** Object ids stay below this so chunk rowids (id * 2^20 + index) are exact doubles. */
const MAX_OBJECT_ID = Number.MAX_SAFE_INTEGER / CHUNKS_PER_OBJECT

interface ObjectRow {
  id: number
  size: number
  version: number
}

export class Applier {
  private readonly pools = new Map<string, number>()
  private readonly s: ReturnType<typeof prepare>

  constructor (db: Database.Database) {
    this.s = prepare(db)
  }

  /** Forget cached pool ids: a rolled-back transaction may have created some. */
  forgetPools (): void {
    this.pools.clear()
  }

  createPool (name: string): void {
    this.s.insertPool.run(name)
  }

  private poolId (name: string): number {
    let id = this.pools.get(name)
    if (id === undefined) {
      id = this.s.getPool.get(name) as number | undefined
      if (id === undefined) throw new StoreError('ENOENT', `pool ${name} does not exist`)
      this.pools.set(name, id)
    }
    return id
  }

  /** Apply one ObjectWrite. Returns the change in the number of objects (-1, 0, +1). */
  apply (w: ObjectWrite, nowMs: number): number {
    const pool = this.poolId(w.pool)
    const where = `${w.pool}/${w.name}`
    const before = this.s.getObject.get(pool, w.name) as ObjectRow | undefined
    let row = before
    const startVersion = before?.version ?? 0
    let mutated = false

    const ensure = (): ObjectRow => {
      if (row === undefined) {
        const id = Number(this.s.insertObject.run(pool, w.name, startVersion, nowMs).lastInsertRowid)
        if (id > MAX_OBJECT_ID) throw new StoreError('ENOSPC', `${where}: object ids are exhausted`)
        row = { id, size: 0, version: startVersion }
      }
      return row
    }

    for (const op of w.ops) {
      if (op.op !== 'assertExists' && op.op !== 'assertVersion') mutated = true
      row = this.applyOp(op, row, ensure, startVersion, where)
    }

    if (mutated && row !== undefined) {
      this.s.updateObject.run(row.size, startVersion + 1, nowMs, row.id)
    }
    if (before === undefined) return row === undefined ? 0 : 1
    return row === undefined ? -1 : 0
  }

  private applyOp (op: ObjectOp, row: ObjectRow | undefined, ensure: () => ObjectRow, startVersion: number, where: string): ObjectRow | undefined {
    switch (op.op) {
      case 'create':
        if (row !== undefined && op.exclusive) throw new StoreError('EEXIST', `${where} already exists`)
        return ensure()
      case 'write': {
        const r = ensure()
        this.writeRange(r, op.offset, op.data)
        return r
      }
      case 'writeFull': {
        const r = ensure()
        this.dropChunksFrom(r.id, 0)
        r.size = 0
        this.writeRange(r, 0, op.data)
        return r
      }
      case 'append': {
        const r = ensure()
        if (r.size + op.data.byteLength > MAX_OBJECT_BYTES) {
          throw new StoreError('EFBIG', `${where}: appending ${op.data.byteLength} bytes would pass the largest object size (${MAX_OBJECT_BYTES} bytes)`)
        }
        this.writeRange(r, r.size, op.data)
        return r
      }
      case 'truncate': {
        const r = ensure()
        if (op.size < r.size) this.shrink(r, op.size)
        r.size = op.size
        return r
      }
      case 'zero':
        if (row !== undefined) this.zeroRange(row, op.offset, op.length)
        return row
      case 'remove':
        if (row !== undefined) {
          this.dropChunksFrom(row.id, 0)
          this.s.clearOmap.run(row.id)
          this.s.clearXattrs.run(row.id)
          this.s.deleteObject.run(row.id)
        }
        return undefined
      case 'omapSet': {
        const r = ensure()
        const set = this.s.setOmap
        forEachOmapEntry(op.entries, (k, v) => set.run(r.id, k, v))
        return r
      }
      case 'omapRemove':
        if (row !== undefined) for (const k of op.keys) this.s.removeOmap.run(row.id, k)
        return row
      case 'omapRemoveRange':
        if (row !== undefined) {
          if (op.end === undefined) this.s.removeOmapFrom.run(row.id, op.start)
          else this.s.removeOmapRange.run(row.id, op.start, op.end)
        }
        return row
      case 'omapClear':
        if (row !== undefined) this.s.clearOmap.run(row.id)
        return row
      case 'setXattr': {
        const r = ensure()
        this.s.setXattr.run(r.id, op.name, op.value)
        return r
      }
      case 'removeXattr':
        if (row !== undefined) this.s.removeXattr.run(row.id, op.name)
        return row
      case 'assertExists':
        if (row === undefined) throw new StoreError('ENOENT', `${where} does not exist`)
        return row
      case 'assertVersion':
        if (row === undefined) throw new StoreError('ENOENT', `${where} does not exist (expected version ${op.version})`)
        if (startVersion !== op.version) throw new StoreError('ECANCELED', `${where} is at version ${startVersion}, not ${op.version}`)
        return row
    }
  }

  private writeRange (r: ObjectRow, offset: number, data: Uint8Array): void {
    const end = offset + data.byteLength
    if (data.byteLength === 0) return
    for (let idx = Math.floor(offset / CHUNK_BYTES); idx * CHUNK_BYTES < end; idx++) {
      const base = idx * CHUNK_BYTES
      const s = Math.max(offset, base) - base
      const e = Math.min(end, base + CHUNK_BYTES) - base
      const part = data.subarray(base + s - offset, base + e - offset)
      const id = r.id * CHUNKS_PER_OBJECT + idx
      if (s === 0 && e === CHUNK_BYTES) {
        this.s.putChunk.run(id, part)
        continue
      }
      const old = this.s.getChunk.get(id) as Buffer | undefined
      const oldLen = old === undefined ? 0 : old.length
      if (old !== undefined && e <= oldLen) {
        old.set(part, s)
        this.s.putChunk.run(id, old)
      } else {
        const buf = Buffer.alloc(Math.max(oldLen, e))
        if (old !== undefined) buf.set(old, 0)
        buf.set(part, s)
        this.s.putChunk.run(id, buf)
      }
    }
    if (end > r.size) r.size = end
  }

  /** Drop every chunk from index first on (payload bytes past first * CHUNK_BYTES). */
  private dropChunksFrom (oid: number, first: number): void {
    this.s.deleteChunks.run(oid * CHUNKS_PER_OBJECT + first, oid * CHUNKS_PER_OBJECT + CHUNKS_PER_OBJECT - 1)
  }

  private shrink (r: ObjectRow, size: number): void {
    this.dropChunksFrom(r.id, Math.ceil(size / CHUNK_BYTES))
    const keep = size % CHUNK_BYTES
    if (keep !== 0) this.s.trimChunk.run(keep, r.id * CHUNKS_PER_OBJECT + Math.floor(size / CHUNK_BYTES), keep)
  }

  private zeroRange (r: ObjectRow, offset: number, length: number): void {
    const end = Math.min(offset + length, r.size)
    if (end <= offset) return
    const firstWhole = Math.ceil(offset / CHUNK_BYTES)
    const endWhole = Math.floor(end / CHUNK_BYTES)
    if (firstWhole < endWhole) {
      this.s.deleteChunks.run(r.id * CHUNKS_PER_OBJECT + firstWhole, r.id * CHUNKS_PER_OBJECT + endWhole - 1)
    }
    const headIdx = Math.floor(offset / CHUNK_BYTES)
    if (offset % CHUNK_BYTES !== 0) this.zeroInChunk(r.id, headIdx, offset, end)
    const tailIdx = Math.floor(end / CHUNK_BYTES)
    if (end % CHUNK_BYTES !== 0 && !(offset % CHUNK_BYTES !== 0 && tailIdx === headIdx)) {
      this.zeroInChunk(r.id, tailIdx, offset, end)
    }
  }

  /** Zero [offset, end) where it falls in chunk idx: trim when it reaches the chunk's data end. */
  private zeroInChunk (oid: number, idx: number, offset: number, end: number): void {
    const base = idx * CHUNK_BYTES
    const s = Math.max(offset, base) - base
    const e = Math.min(end, base + CHUNK_BYTES) - base
    const id = oid * CHUNKS_PER_OBJECT + idx
    const old = this.s.getChunk.get(id) as Buffer | undefined
    if (old === undefined || s >= old.length) return
    if (e >= old.length) {
      if (s === 0) this.s.deleteChunks.run(id, id)
      else this.s.putChunk.run(id, old.subarray(0, s))
      return
    }
    old.fill(0, s, e)
    this.s.putChunk.run(id, old)
  }
}

function prepare (db: Database.Database) {
  return {
    getPool: db.prepare('SELECT id FROM pools WHERE name = ?').pluck(),
    insertPool: db.prepare('INSERT OR IGNORE INTO pools (name) VALUES (?)'),
    getObject: db.prepare('SELECT id, size, version FROM objects WHERE pool = ? AND name = ?'),
    insertObject: db.prepare('INSERT INTO objects (pool, name, size, version, mtime) VALUES (?, ?, 0, ?, ?)'),
    updateObject: db.prepare('UPDATE objects SET size = ?, version = ?, mtime = ? WHERE id = ?'),
    deleteObject: db.prepare('DELETE FROM objects WHERE id = ?'),
    getChunk: db.prepare('SELECT data FROM chunks WHERE id = ?').pluck(),
    putChunk: db.prepare('INSERT OR REPLACE INTO chunks (id, data) VALUES (?, ?)'),
    deleteChunks: db.prepare('DELETE FROM chunks WHERE id BETWEEN ? AND ?'),
    trimChunk: db.prepare('UPDATE chunks SET data = substr(data, 1, ?) WHERE id = ? AND length(data) > ?'),
    setOmap: db.prepare('INSERT OR REPLACE INTO omap (oid, key, value) VALUES (?, ?, ?)'),
    removeOmap: db.prepare('DELETE FROM omap WHERE oid = ? AND key = ?'),
    removeOmapFrom: db.prepare('DELETE FROM omap WHERE oid = ? AND key >= ?'),
    removeOmapRange: db.prepare('DELETE FROM omap WHERE oid = ? AND key >= ? AND key < ?'),
    clearOmap: db.prepare('DELETE FROM omap WHERE oid = ?'),
    setXattr: db.prepare('INSERT OR REPLACE INTO xattrs (oid, name, value) VALUES (?, ?, ?)'),
    removeXattr: db.prepare('DELETE FROM xattrs WHERE oid = ? AND name = ?'),
    clearXattrs: db.prepare('DELETE FROM xattrs WHERE oid = ?')
  }
}
