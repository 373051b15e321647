// An object store in memory: the same contract as the SQLite backend
// (types.ts; test/store/suite.ts checks both), for state that must not
// outlive the process (a decoupled client's view of its subtree) and for
// tests.
//
// Batches apply atomically and synchronously: committed objects are never
// changed in place. An ObjectWrite works on a draft that shares the
// committed object's payload chunks, omap and xattrs until it changes one
// of them (then that one is copied), and the drafts replace the committed
// objects only once the whole batch has succeeded. Payloads are sparse: 64
// KiB chunks, where a missing chunk, or bytes past a short one, read as
// zeros, so a truncate to many GiB costs nothing.

import type {
  CommitInfo, ListRange, LocalReads, ObjectOp, ObjectStat, ObjectStore, ObjectWrite, OmapEntry, OmapRange, PoolName,
  StoreUsage, SubmitOptions
} from './types'
import { checkBatch, checkCount, checkPoolName } from './check'
import { forEachOmapEntry } from './omap'
import { StoreError } from './types'

/** Payload chunk size. Chunk buffers hold up to this many bytes and are never written once stored. */
const CHUNK = 64 * 1024
/** The largest object, as the SQLite backend's (2^20 chunks of 64 KiB). */
export const MEMORY_MAX_OBJECT_BYTES = CHUNK * 2 ** 20

interface MemObject {
  size: number
  chunks: Map<number, Buffer>
  /** Omap keys as byte strings (latin1: one char per byte), so string order is byte order. */
  omap: Map<string, Uint8Array>
  /** The omap's keys in order, made on demand. */
  sorted: string[] | null
  xattrs: Map<string, Uint8Array>
  version: number
  mtimeMs: number
}

interface Pool {
  objects: Map<string, MemObject>
  /** Object names in UTF-8 byte order, made on demand. */
  sorted: string[] | null
}

const key = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1')
/**
 * Names in UTF-8 byte order (SQLite's order for them). UTF-16 code units
 * compare the same way except where two units at or above the surrogates
 * differ; only then are the bytes compared.
 */
function utf8Order (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    if (x >= 0xd800 && y >= 0xd800) return Buffer.compare(Buffer.from(a), Buffer.from(b))
    return x - y
  }
  return a.length - b.length
}

/** An object being changed by one batch: copies what it changes, once. */
class Draft {
  private ownChunks: boolean
  private ownOmap: boolean
  private ownXattrs: boolean

  constructor (readonly o: MemObject, fresh: boolean) {
    this.ownChunks = this.ownOmap = this.ownXattrs = fresh
  }

  static create (version: number): Draft {
    return new Draft({ size: 0, chunks: new Map(), omap: new Map(), sorted: null, xattrs: new Map(), version, mtimeMs: 0 }, true)
  }

  static from (o: MemObject): Draft {
    return new Draft({ ...o }, false)
  }

  chunks (): Map<number, Buffer> {
    if (!this.ownChunks) { this.o.chunks = new Map(this.o.chunks); this.ownChunks = true }
    return this.o.chunks
  }

  omap (): Map<string, Uint8Array> {
    if (!this.ownOmap) { this.o.omap = new Map(this.o.omap); this.ownOmap = true }
    this.o.sorted = null
    return this.o.omap
  }

  xattrs (): Map<string, Uint8Array> {
    if (!this.ownXattrs) { this.o.xattrs = new Map(this.o.xattrs); this.ownXattrs = true }
    return this.o.xattrs
  }

  write (off: number, d: Uint8Array): void {
    const end = off + d.length
    if (d.length === 0) return
    const chunks = this.chunks()
    for (let i = Math.floor(off / CHUNK); i * CHUNK < end; i++) {
      const base = i * CHUNK
      const from = Math.max(off, base) - base
      const to = Math.min(end, base + CHUNK) - base
      const old = chunks.get(i)
      const buf = Buffer.alloc(Math.max(old?.length ?? 0, to))
      old?.copy(buf)
      buf.set(d.subarray(base + from - off, base + to - off), from)
      chunks.set(i, buf)
    }
    if (end > this.o.size) this.o.size = end
  }

  truncate (size: number): void {
    if (size < this.o.size) {
      const chunks = this.chunks()
      for (const [i, c] of chunks) {
        const base = i * CHUNK
        if (base >= size) chunks.delete(i)
        else if (base + c.length > size) chunks.set(i, c.subarray(0, size - base))
      }
    }
    this.o.size = size
  }

  zero (off: number, length: number): void {
    const end = Math.min(off + length, this.o.size)
    if (end <= off) return
    const chunks = this.chunks()
    for (let i = Math.floor(off / CHUNK); i * CHUNK < end; i++) {
      const c = chunks.get(i)
      if (c === undefined) continue
      const base = i * CHUNK
      const from = Math.max(off, base) - base
      const to = Math.min(end - base, c.length)
      if (from >= to) continue
      if (from === 0 && to === c.length) { chunks.delete(i); continue }
      const buf = Buffer.from(c)
      buf.fill(0, from, to)
      chunks.set(i, buf)
    }
  }
}

function readPayload (o: MemObject, offset: number, length: number): Buffer {
  const end = Math.min(offset + length, o.size)
  if (end <= offset) return Buffer.alloc(0)
  const out = Buffer.alloc(end - offset)
  for (let i = Math.floor(offset / CHUNK); i * CHUNK < end; i++) {
    const c = o.chunks.get(i)
    if (c === undefined) continue
    const base = i * CHUNK
    const from = Math.max(offset, base)
    const to = Math.min(end, base + c.length)
    if (to > from) c.copy(out, from - offset, from - base, to - base)
  }
  return out
}

function sortedKeys (o: MemObject): string[] {
  if (o.sorted === null) o.sorted = [...o.omap.keys()].sort()
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

interface Staged {
  pool: Pool
  name: string
  draft: Draft | null
}

export class MemoryStore implements ObjectStore, LocalReads {
  private readonly pools = new Map<PoolName, Pool>()
  private seq = 0
  private closed = false

  async createPool (pool: PoolName): Promise<void> {
    checkPoolName(pool)
    this.checkOpen()
    if (!this.pools.has(pool)) this.pools.set(pool, { objects: new Map(), sorted: null })
  }

  async listPools (): Promise<PoolName[]> {
    this.checkOpen()
    return [...this.pools.keys()].sort(utf8Order)
  }

  async submit (batch: ObjectWrite[], _opts: SubmitOptions): Promise<CommitInfo> {
    this.submitSync(batch)
    return { seq: this.seq }
  }

  /** Apply a batch now (all or nothing). */
  submitSync (batch: ObjectWrite[]): void {
    this.checkOpen()
    checkBatch(batch, MEMORY_MAX_OBJECT_BYTES)
    const staged = new Map<string, Staged>()
    const now = Date.now()
    for (const w of batch) {
      const pool = this.pools.get(w.pool)
      if (pool === undefined) throw new StoreError('ENOENT', `pool ${w.pool} does not exist`)
      const id = w.pool + '\0' + w.name
      let s = staged.get(id)
      if (s === undefined) {
        const committed = pool.objects.get(w.name)
        s = { pool, name: w.name, draft: committed === undefined ? null : Draft.from(committed) }
        staged.set(id, s)
      }
      this.applyWrite(w, s, now)
    }
    for (const { pool, name, draft } of staged.values()) {
      const had = pool.objects.has(name)
      if (draft !== null) pool.objects.set(name, draft.o)
      else pool.objects.delete(name)
      if (had !== (draft !== null)) pool.sorted = null
    }
    this.seq++
  }

  private applyWrite (w: ObjectWrite, s: Staged, now: number): void {
    const where = `${w.pool}/${w.name}`
    const startVersion = s.draft?.o.version ?? 0
    let mutated = false
    const ensure = (): Draft => {
      s.draft ??= Draft.create(startVersion)
      return s.draft
    }
    for (const op of w.ops) {
      if (op.op !== 'assertExists' && op.op !== 'assertVersion') mutated = true
      this.applyOp(op, s, ensure, startVersion, where)
    }
    if (mutated && s.draft !== null) {
      s.draft.o.version = startVersion + 1
      s.draft.o.mtimeMs = now
    }
  }

  private applyOp (op: ObjectOp, s: Staged, ensure: () => Draft, startVersion: number, where: string): void {
    const d = s.draft
    switch (op.op) {
      case 'create':
        if (d !== null && op.exclusive) throw new StoreError('EEXIST', `${where} already exists`)
        ensure()
        return
      case 'write': ensure().write(op.offset, op.data); return
      case 'writeFull': {
        const x = ensure()
        x.truncate(0)
        x.write(0, op.data)
        return
      }
      case 'append': {
        const x = ensure()
        if (x.o.size + op.data.length > MEMORY_MAX_OBJECT_BYTES) {
          throw new StoreError('EFBIG', `${where}: appending ${op.data.length} bytes would pass the largest object size (${MEMORY_MAX_OBJECT_BYTES} bytes)`)
        }
        x.write(x.o.size, op.data)
        return
      }
      case 'truncate': ensure().truncate(op.size); return
      case 'zero': d?.zero(op.offset, op.length); return
      case 'remove': s.draft = null; return
      case 'omapSet': {
        const omap = ensure().omap()
        forEachOmapEntry(op.entries, (k, v) => omap.set(key(k), v))
        return
      }
      case 'omapRemove':
        if (d !== null) {
          const omap = d.omap()
          for (const k of op.keys) omap.delete(key(k))
        }
        return
      case 'omapRemoveRange':
        if (d !== null) {
          const keys = sortedKeys(d.o)
          const start = lowerBound(keys, key(op.start))
          const end = op.end === undefined ? keys.length : lowerBound(keys, key(op.end))
          if (start >= end) return
          const omap = d.omap()
          for (let i = start; i < end; i++) omap.delete(keys[i])
        }
        return
      case 'omapClear': if (d !== null) d.omap().clear(); return
      case 'setXattr': ensure().xattrs().set(op.name, op.value); return
      case 'removeXattr': if (d !== null) d.xattrs().delete(op.name); return
      case 'assertExists': if (d === null) throw new StoreError('ENOENT', `${where} does not exist`); return
      case 'assertVersion':
        if (d === null) throw new StoreError('ENOENT', `${where} does not exist (expected version ${op.version})`)
        if (startVersion !== op.version) throw new StoreError('ECANCELED', `${where} is at version ${startVersion}, not ${op.version}`)
    }
  }

  async sync (): Promise<CommitInfo> {
    this.checkOpen()
    return { seq: this.seq }
  }

  private checkOpen (): void {
    if (this.closed) throw new StoreError('EIO', 'the memory store is closed')
  }

  private obj (pool: PoolName, name: string): MemObject | undefined {
    this.checkOpen()
    return this.pools.get(pool)?.objects.get(name)
  }

  statSync (pool: PoolName, name: string): ObjectStat | null {
    const o = this.obj(pool, name)
    return o === undefined ? null : { size: o.size, version: o.version, mtimeMs: o.mtimeMs }
  }

  readSync (pool: PoolName, name: string, offset: number, length: number): Uint8Array | null {
    checkCount(offset, 'read offset')
    checkCount(length, 'read length')
    const o = this.obj(pool, name)
    return o === undefined ? null : readPayload(o, offset, length)
  }

  omapGetSync (pool: PoolName, name: string, keys: Uint8Array[]): OmapEntry[] {
    const o = this.obj(pool, name)
    if (o === undefined) return []
    const out: OmapEntry[] = []
    for (const k of keys) {
      const v = o.omap.get(key(k))
      if (v !== undefined) out.push({ key: k, value: v })
    }
    return out
  }

  omapListSync (pool: PoolName, name: string, range: OmapRange): OmapEntry[] {
    checkCount(range.limit, 'omap list limit')
    const o = this.obj(pool, name)
    if (o === undefined) return []
    const keys = sortedKeys(o)
    let i = 0
    if (range.after !== undefined) i = Math.max(i, lowerBound(keys, key(range.after) + '\0'))
    if (range.start !== undefined) i = Math.max(i, lowerBound(keys, key(range.start)))
    const prefix = range.prefix !== undefined ? key(range.prefix) : null
    if (prefix !== null) i = Math.max(i, lowerBound(keys, prefix))
    const end = range.end !== undefined ? key(range.end) : null
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
    checkCount(range.limit, 'list limit')
    this.checkOpen()
    const p = this.pools.get(pool)
    if (p === undefined || range.limit === 0) return []
    p.sorted ??= [...p.objects.keys()].sort(utf8Order)
    const names = p.sorted
    // Names with the prefix are contiguous in byte order and start at the prefix itself.
    let lo = 0
    let hi = names.length
    const from = range.prefix !== undefined && (range.after === undefined || utf8Order(range.prefix, range.after) > 0) ? range.prefix : range.after
    if (from !== undefined) {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        const c = utf8Order(names[mid], from)
        if (c < 0 || (c === 0 && from === range.after)) lo = mid + 1
        else hi = mid
      }
    }
    const out: string[] = []
    for (let i = lo; i < names.length && out.length < range.limit; i++) {
      if (range.prefix !== undefined && !names[i].startsWith(range.prefix)) break
      out.push(names[i])
    }
    return out
  }

  async stat (pool: PoolName, name: string): Promise<ObjectStat | null> { return this.statSync(pool, name) }
  async read (pool: PoolName, name: string, offset: number, length: number): Promise<Uint8Array | null> { return this.readSync(pool, name, offset, length) }
  async omapGet (pool: PoolName, name: string, keys: Uint8Array[]): Promise<OmapEntry[]> { return this.omapGetSync(pool, name, keys) }
  async omapList (pool: PoolName, name: string, range: OmapRange): Promise<OmapEntry[]> { return this.omapListSync(pool, name, range) }
  async list (pool: PoolName, range: ListRange): Promise<string[]> { return this.listSync(pool, range) }

  async getXattr (pool: PoolName, name: string, xattr: string): Promise<Uint8Array | null> {
    return this.obj(pool, name)?.xattrs.get(xattr) ?? null
  }

  async listXattrs (pool: PoolName, name: string): Promise<Array<[string, Uint8Array]>> {
    const o = this.obj(pool, name)
    return o === undefined ? [] : [...o.xattrs].sort((a, b) => utf8Order(a[0], b[0]))
  }

  async usage (): Promise<StoreUsage> {
    this.checkOpen()
    let bytesUsed = 0
    let objects = 0
    for (const p of this.pools.values()) {
      for (const o of p.objects.values()) {
        objects++
        for (const c of o.chunks.values()) bytesUsed += c.length
        for (const [k, v] of o.omap) bytesUsed += k.length + v.length
      }
    }
    return { bytesUsed, bytesFree: 0, bytesFreeTotal: 0, bytesTotal: 0, objects }
  }

  async close (): Promise<void> { this.closed = true }
}
