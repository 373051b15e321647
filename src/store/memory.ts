// An object store in memory: the same interface as the SQLite backend, for
// state that must not outlive the process (a decoupled client's view of its
// subtree) and for tests. Batches apply atomically: every ObjectWrite works
// on a copy of its object, and the copies replace the originals only if the
// whole batch succeeded.

import type {
  CommitInfo, ListRange, LocalReads, ObjectOp, ObjectStat, ObjectStore, ObjectWrite, OmapEntry, OmapRange, PoolName,
  StoreUsage, SubmitOptions
} from './types'
import { forEachOmapEntry } from './omap'
import { StoreError } from './types'

interface MemObject {
  data: Buffer
  /** Omap keys as byte strings (latin1: one char per byte), so string order is byte order. */
  omap: Map<string, Uint8Array>
  sorted: string[] | null
  xattrs: Map<string, Uint8Array>
  version: number
  mtimeMs: number
}

const key = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1')

function clone (o: MemObject): MemObject {
  return { data: o.data, omap: new Map(o.omap), sorted: null, xattrs: new Map(o.xattrs), version: o.version, mtimeMs: o.mtimeMs }
}

function fresh (): MemObject {
  return { data: Buffer.alloc(0), omap: new Map(), sorted: null, xattrs: new Map(), version: 0, mtimeMs: Date.now() }
}

function writeAt (o: MemObject, off: number, d: Uint8Array): void {
  if (d.length === 0) return
  const end = off + d.length
  if (end > o.data.length) {
    const grown = Buffer.alloc(end)
    o.data.copy(grown)
    o.data = grown
  } else {
    o.data = Buffer.from(o.data)
  }
  o.data.set(d, off)
}

function sortedKeys (o: MemObject): string[] {
  if (!o.sorted) o.sorted = [...o.omap.keys()].sort()
  return o.sorted
}

/** Index of the first key >= k (binary search). */
function lowerBound (keys: string[], k: string): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (keys[mid] < k) lo = mid + 1
    else hi = mid
  }
  return lo
}

export class MemoryStore implements ObjectStore, LocalReads {
  private readonly pools = new Map<PoolName, Map<string, MemObject>>()
  private seq = 0
  private closed = false

  private pool (name: PoolName): Map<string, MemObject> {
    let p = this.pools.get(name)
    if (!p) {
      p = new Map()
      this.pools.set(name, p)
    }
    return p
  }

  async createPool (pool: PoolName): Promise<void> { this.pool(pool) }
  async listPools (): Promise<PoolName[]> { return [...this.pools.keys()] }

  async submit (batch: ObjectWrite[], _opts: SubmitOptions): Promise<CommitInfo> {
    this.submitSync(batch)
    return { seq: this.seq }
  }

  /** Apply a batch now (all or nothing). */
  submitSync (batch: ObjectWrite[]): void {
    if (this.closed) throw new StoreError('EIO', 'the memory store is closed')
    const staged = new Map<string, { pool: Map<string, MemObject>, name: string, obj: MemObject | null }>()
    for (const w of batch) {
      const pool = this.pool(w.pool)
      const id = w.pool + '\0' + w.name
      const before = staged.has(id) ? staged.get(id)!.obj : (pool.get(w.name) ?? null)
      const startVersion = before?.version ?? 0
      let o: MemObject | null = before ? clone(before) : null
      let mutated = false
      const ensure = (): MemObject => {
        if (!o) o = { ...fresh(), version: startVersion }
        return o
      }
      for (const op of w.ops) {
        mutated ||= op.op !== 'assertExists' && op.op !== 'assertVersion'
        this.applyOp(op, w.name, () => o, ensure, () => { o = null }, startVersion)
      }
      if (mutated && o !== null) {
        const x = o as MemObject
        x.version = startVersion + 1
        x.mtimeMs = Date.now()
      }
      staged.set(id, { pool, name: w.name, obj: o })
    }
    for (const { pool, name, obj } of staged.values()) {
      if (obj) pool.set(name, obj)
      else pool.delete(name)
    }
    this.seq++
  }

  private applyOp (op: ObjectOp, name: string, get: () => MemObject | null, ensure: () => MemObject, drop: () => void, startVersion: number): void {
    const o = get()
    switch (op.op) {
      case 'create':
        if (o && op.exclusive) throw new StoreError('EEXIST', `object ${name} exists`)
        ensure()
        return
      case 'write': writeAt(ensure(), op.offset, op.data); return
      case 'writeFull': ensure().data = Buffer.from(op.data); return
      case 'append': { const x = ensure(); writeAt(x, x.data.length, op.data); return }
      case 'truncate': {
        const x = ensure()
        if (op.size <= x.data.length) x.data = Buffer.from(x.data.subarray(0, op.size))
        else { const g = Buffer.alloc(op.size); x.data.copy(g); x.data = g }
        return
      }
      case 'zero':
        if (o) { o.data = Buffer.from(o.data); o.data.fill(0, Math.min(op.offset, o.data.length), Math.min(op.offset + op.length, o.data.length)) }
        return
      case 'remove': drop(); return
      case 'omapSet': { const x = ensure(); forEachOmapEntry(op.entries, (k, v) => x.omap.set(key(k), v)); x.sorted = null; return }
      case 'omapRemove': if (o) { for (const k of op.keys) o.omap.delete(key(k)); o.sorted = null } return
      case 'omapRemoveRange':
        if (o) {
          const s = key(op.start)
          const e = op.end ? key(op.end) : null
          for (const k of [...o.omap.keys()]) if (k >= s && (e === null || k < e)) o.omap.delete(k)
          o.sorted = null
        }
        return
      case 'omapClear': if (o) { o.omap.clear(); o.sorted = null } return
      case 'setXattr': ensure().xattrs.set(op.name, op.value); return
      case 'removeXattr': if (o) o.xattrs.delete(op.name); return
      case 'assertExists': if (!o) throw new StoreError('ENOENT', `object ${name} does not exist`); return
      case 'assertVersion':
        if (!o) throw new StoreError('ENOENT', `object ${name} does not exist`)
        if (startVersion !== op.version) throw new StoreError('ECANCELED', `object ${name} is at version ${startVersion}, not ${op.version}`)
    }
  }

  async sync (): Promise<CommitInfo> { return { seq: this.seq } }

  private obj (pool: PoolName, name: string): MemObject | undefined {
    return this.pools.get(pool)?.get(name)
  }

  statSync (pool: PoolName, name: string): ObjectStat | null {
    const o = this.obj(pool, name)
    return o ? { size: o.data.length, version: o.version, mtimeMs: o.mtimeMs } : null
  }

  readSync (pool: PoolName, name: string, offset: number, length: number): Uint8Array | null {
    const o = this.obj(pool, name)
    if (!o) return null
    return Buffer.from(o.data.subarray(Math.min(offset, o.data.length), Math.min(offset + length, o.data.length)))
  }

  omapGetSync (pool: PoolName, name: string, keys: Uint8Array[]): OmapEntry[] {
    const o = this.obj(pool, name)
    if (!o) return []
    const out: OmapEntry[] = []
    for (const k of keys) {
      const v = o.omap.get(key(k))
      if (v !== undefined) out.push({ key: k, value: v })
    }
    return out
  }

  omapListSync (pool: PoolName, name: string, range: OmapRange): OmapEntry[] {
    const o = this.obj(pool, name)
    if (!o) return []
    const keys = sortedKeys(o)
    let i = 0
    if (range.after) i = Math.max(i, lowerBound(keys, key(range.after) + '\0'))
    if (range.start) i = Math.max(i, lowerBound(keys, key(range.start)))
    const prefix = range.prefix ? key(range.prefix) : null
    if (prefix) i = Math.max(i, lowerBound(keys, prefix))
    const end = range.end ? key(range.end) : null
    const out: OmapEntry[] = []
    for (; i < keys.length && out.length < range.limit; i++) {
      const k = keys[i]
      if (end !== null && k >= end) break
      if (prefix !== null && !k.startsWith(prefix)) break
      out.push({ key: bytes(k), value: o.omap.get(k) as Uint8Array })
    }
    return out
  }

  listSync (pool: PoolName, range: ListRange): string[] {
    const p = this.pools.get(pool)
    if (!p) return []
    const names = [...p.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    const out: string[] = []
    for (const n of names) {
      if (range.after !== undefined && Buffer.compare(Buffer.from(n), Buffer.from(range.after)) <= 0) continue
      if (range.prefix !== undefined && !n.startsWith(range.prefix)) continue
      out.push(n)
      if (out.length >= range.limit) break
    }
    return out
  }

  async stat (pool: PoolName, name: string): Promise<ObjectStat | null> { return this.statSync(pool, name) }
  async read (pool: PoolName, name: string, offset: number, length: number): Promise<Uint8Array | null> { return this.readSync(pool, name, offset, length) }
  async omapGet (pool: PoolName, name: string, keys: Uint8Array[]): Promise<OmapEntry[]> { return this.omapGetSync(pool, name, keys) }
  async omapList (pool: PoolName, name: string, range: OmapRange): Promise<OmapEntry[]> { return this.omapListSync(pool, name, range) }
  async getXattr (pool: PoolName, name: string, xattr: string): Promise<Uint8Array | null> { return this.obj(pool, name)?.xattrs.get(xattr) ?? null }
  async listXattrs (pool: PoolName, name: string): Promise<Array<[string, Uint8Array]>> { return [...(this.obj(pool, name)?.xattrs ?? [])] }
  async list (pool: PoolName, range: ListRange): Promise<string[]> { return this.listSync(pool, range) }

  async usage (): Promise<StoreUsage> {
    let bytesUsed = 0
    let objects = 0
    for (const p of this.pools.values()) {
      for (const o of p.values()) {
        objects++
        bytesUsed += o.data.length
        for (const [k, v] of o.omap) bytesUsed += k.length + v.length
      }
    }
    return { bytesUsed, bytesFree: 0, bytesFreeTotal: 0, bytesTotal: 0, objects }
  }

  async close (): Promise<void> { this.closed = true }
}
