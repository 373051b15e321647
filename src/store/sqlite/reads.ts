// The read connection: serves every read on the caller's thread from a
// read-only connection. In WAL mode it sees the last committed state and never
// blocks the writer. Each read is ONE statement (or one read transaction), so
// it sees one snapshot and never part of a batch.

import Database from 'better-sqlite3'
import { ListRange, ObjectStat, OmapEntry, OmapRange } from '../types'
import { CHUNK_BYTES, CHUNKS_PER_OBJECT } from './schema'
import { compareBytes, prefixUpperBound } from '../ranges'
import { checkCount } from '../check'

interface Bound { key: Uint8Array, inclusive: boolean }

export class Reader {
  private readonly pools = new Map<string, number>()
  private readonly s: ReturnType<typeof prepare>
  private readonly omapLists = new Map<string, Database.Statement>()
  private readonly omapGetMany: (pool: number, name: string, keys: Uint8Array[]) => OmapEntry[]

  constructor (private readonly db: Database.Database) {
    this.s = prepare(db)
    // One read transaction: the object id and every value come from the same snapshot.
    this.omapGetMany = db.transaction((pool: number, name: string, keys: Uint8Array[]) => {
      const oid = this.s.objectId.get(pool, name) as number | undefined
      const out: OmapEntry[] = []
      if (oid === undefined) return out
      for (const key of keys) {
        const value = this.s.omapValue.get(oid, key) as Buffer | undefined
        if (value !== undefined) out.push({ key, value })
      }
      return out
    })
  }

  /** Pools are never deleted, so a known id stays valid; unknown names are asked again. */
  poolId (name: string): number | undefined {
    let id = this.pools.get(name)
    if (id === undefined) {
      id = this.s.poolId.get(name) as number | undefined
      if (id !== undefined) this.pools.set(name, id)
    }
    return id
  }

  listPools (): string[] {
    return this.s.pools.all() as string[]
  }

  stat (pool: string, name: string): ObjectStat | null {
    const p = this.poolId(pool)
    if (p === undefined) return null
    const r = this.s.stat.get(p, name) as { size: number, version: number, mtime: number } | undefined
    return r === undefined ? null : { size: r.size, version: r.version, mtimeMs: r.mtime }
  }

  read (pool: string, name: string, offset: number, length: number): Uint8Array | null {
    checkCount(offset, 'read offset')
    checkCount(length, 'read length')
    const p = this.poolId(pool)
    if (p === undefined) return null
    // Chunk indexes to fetch; an empty range when nothing can overlap (it still finds the object).
    let first = Math.floor(offset / CHUNK_BYTES)
    let last = Math.min(Math.floor((offset + length - 1) / CHUNK_BYTES), CHUNKS_PER_OBJECT - 1)
    if (length === 0 || first >= CHUNKS_PER_OBJECT) { first = 1; last = 0 }
    const rows = this.s.read.all(first, last, p, name) as Array<[number, number, number | null, Buffer | null]>
    if (rows.length === 0) return null
    const [oid, size] = rows[0]
    const end = Math.min(offset + length, size)
    if (end <= offset) return Buffer.alloc(0)
    const out = Buffer.alloc(end - offset)
    for (const [, , cid, data] of rows) {
      if (cid === null || data === null) continue
      const base = (cid - oid * CHUNKS_PER_OBJECT) * CHUNK_BYTES
      const from = Math.max(offset, base)
      const to = Math.min(end, base + data.length)
      if (to > from) data.copy(out, from - offset, from - base, to - base)
    }
    return out
  }

  omapGet (pool: string, name: string, keys: Uint8Array[]): OmapEntry[] {
    const p = this.poolId(pool)
    if (p === undefined || keys.length === 0) return []
    return this.omapGetMany(p, name, keys)
  }

  omapList (pool: string, name: string, range: OmapRange): OmapEntry[] {
    checkCount(range.limit, 'omap list limit')
    const p = this.poolId(pool)
    if (p === undefined || range.limit === 0) return []
    let lower: Bound | undefined
    const raise = (key: Uint8Array | undefined, inclusive: boolean): void => {
      if (key === undefined) return
      const c = lower === undefined ? 1 : compareBytes(key, lower.key)
      if (c > 0 || (c === 0 && !inclusive)) lower = { key, inclusive }
    }
    raise(range.start, true)
    raise(range.prefix, true)
    raise(range.after, false)
    let upper = range.end
    if (range.prefix !== undefined) {
      const pu = prefixUpperBound(range.prefix)
      if (pu !== undefined && (upper === undefined || compareBytes(pu, upper) < 0)) upper = pu
    }
    if (lower !== undefined && upper !== undefined && compareBytes(lower.key, upper) >= 0) return []
    const params: unknown[] = [p, name]
    let shape = ''
    if (lower !== undefined) { shape += lower.inclusive ? 'ge' : 'gt'; params.push(lower.key) }
    if (upper !== undefined) { shape += 'lt'; params.push(upper) }
    params.push(range.limit)
    const rows = this.omapListStatement(shape).all(...params) as Array<[Buffer, Buffer]>
    return rows.map(([key, value]) => ({ key, value }))
  }

  private omapListStatement (shape: string): Database.Statement {
    let st = this.omapLists.get(shape)
    if (st === undefined) {
      let where = ''
      if (shape.startsWith('ge')) where += ' AND key >= ?'
      if (shape.startsWith('gt')) where += ' AND key > ?'
      if (shape.endsWith('lt')) where += ' AND key < ?'
      st = this.db.prepare(`SELECT key, value FROM omap WHERE oid = (SELECT id FROM objects WHERE pool = ? AND name = ?)${where} ORDER BY key LIMIT ?`).raw()
      this.omapLists.set(shape, st)
    }
    return st
  }

  getXattr (pool: string, name: string, xattr: string): Uint8Array | null {
    const p = this.poolId(pool)
    if (p === undefined) return null
    return (this.s.xattr.get(p, name, xattr) as Buffer | undefined) ?? null
  }

  listXattrs (pool: string, name: string): Array<[string, Uint8Array]> {
    const p = this.poolId(pool)
    if (p === undefined) return []
    return this.s.xattrs.all(p, name) as Array<[string, Buffer]>
  }

  list (pool: string, range: ListRange): string[] {
    checkCount(range.limit, 'list limit')
    const p = this.poolId(pool)
    if (p === undefined || range.limit === 0) return []
    let names: string[]
    const { after, prefix } = range
    if (prefix !== undefined && prefix !== '' && (after === undefined || compareBytes(Buffer.from(prefix), Buffer.from(after)) > 0)) {
      names = this.s.listFrom.all(p, prefix, range.limit) as string[]
    } else if (after !== undefined) {
      names = this.s.listAfter.all(p, after, range.limit) as string[]
    } else {
      names = this.s.listAll.all(p, range.limit) as string[]
    }
    if (prefix === undefined || prefix === '') return names
    // Names with the prefix are contiguous in name order: stop at the first one past it.
    let n = 0
    while (n < names.length && names[n].startsWith(prefix)) n++
    return n === names.length ? names : names.slice(0, n)
  }

  /** Database bytes in the main file, and the live object count. */
  footprint (): { dbBytes: number, objects: number } {
    const pageCount = this.db.pragma('page_count', { simple: true }) as number
    const pageSize = this.db.pragma('page_size', { simple: true }) as number
    return { dbBytes: pageCount * pageSize, objects: this.s.objects.get() as number }
  }

}

function prepare (db: Database.Database) {
  return {
    poolId: db.prepare('SELECT id FROM pools WHERE name = ?').pluck(),
    pools: db.prepare('SELECT name FROM pools ORDER BY name').pluck(),
    objectId: db.prepare('SELECT id FROM objects WHERE pool = ? AND name = ?').pluck(),
    stat: db.prepare('SELECT size, version, mtime FROM objects WHERE pool = ? AND name = ?'),
    // One statement: the size and the chunks come from the same snapshot.
    read: db.prepare(`SELECT o.id, o.size, c.id, c.data FROM objects o
      LEFT JOIN chunks c ON c.id BETWEEN o.id * ${CHUNKS_PER_OBJECT} + ? AND o.id * ${CHUNKS_PER_OBJECT} + ?
      WHERE o.pool = ? AND o.name = ? ORDER BY c.id`).raw(),
    omapValue: db.prepare('SELECT value FROM omap WHERE oid = ? AND key = ?').pluck(),
    xattr: db.prepare('SELECT x.value FROM objects o JOIN xattrs x ON x.oid = o.id WHERE o.pool = ? AND o.name = ? AND x.name = ?').pluck(),
    xattrs: db.prepare('SELECT x.name, x.value FROM objects o JOIN xattrs x ON x.oid = o.id WHERE o.pool = ? AND o.name = ? ORDER BY x.name').raw(),
    listAll: db.prepare('SELECT name FROM objects WHERE pool = ? ORDER BY name LIMIT ?').pluck(),
    listAfter: db.prepare('SELECT name FROM objects WHERE pool = ? AND name > ? ORDER BY name LIMIT ?').pluck(),
    listFrom: db.prepare('SELECT name FROM objects WHERE pool = ? AND name >= ? ORDER BY name LIMIT ?').pluck(),
    objects: db.prepare('SELECT objects FROM counters WHERE id = 0').pluck()
  }
}
