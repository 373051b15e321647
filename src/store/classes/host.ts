// The object-class host: runs inside each Lua worker and gives class
// scripts `cls.*` against one object (Ceph's cls_lua, in spirit).
//
// Reads go through a snapshot reader of the store (../snapshot.ts): the
// backend's own when it has one (SQLite: the worker's own read-only
// connection, ~5 µs for a stat and an omap get), else one that relays each
// read to the main thread's ObjectStore (~60 µs). A group of calls runs in
// one snapshot, so every call of the group sees one state of the store;
// calls on the same object chain on top of each other (overlay.ts). When a
// relayed reader finds that an object changed under the snapshot, that
// object's calls in the group go back to the runtime to run again.
//
// Writes never touch the store here: they are buffered as ObjectOps and go
// back to the main thread with the call's outcome; the runtime commits them
// guarded by the version this snapshot saw.

import { HostError, HostLine, LuaArgs, LuaHost, LuaReturns } from '../../lua/host'
import { RelayReply, RelayRequest, RelayedReader } from '../relay'
import { openSnapshotReader, SnapshotMoved, SnapshotReader, SnapshotReaderSpec } from '../snapshot'
import type { ObjectOp } from '../types'
import { ObjectOverlay, ObjectState, ObjectView } from './overlay'

export interface ClassHostOptions {
  /** The store's own reader for other threads; null: relay reads to the main thread. */
  reader: SnapshotReaderSpec | null
  /** The largest object the store takes (a write past it fails here with EFBIG, before it is buffered). */
  maxObjectBytes: number
}

/** What a call context names: the object the method runs against. */
export interface ClassCallCtx {
  pool: string
  object: string
}

/** What goes back to the main thread with each outcome. */
export interface ClassCallEffects {
  /** The store ops of this call, guard first when it is the first write of its chain. */
  ops?: ObjectOp[]
  /** The object's version once this call's write commits (null: absent). */
  version?: number | null
  logs?: string[]
  /** The object changed under the group's snapshot (a relayed reader saw it): what the call did is void; run it again. */
  stale?: true
}

/** The most a single read, write or listing moves (the memory budget bounds it further). */
export const MAX_IO_BYTES = 64 * 1024 * 1024
export const MAX_LIST_ENTRIES = 100_000
/** Data one call may buffer (its writes, until they commit). */
export const MAX_CALL_BYTES = 64 * 1024 * 1024
/** Data a group may buffer before further calls wait for the next group. */
export const GROUP_MAX_BYTES = 32 * 1024 * 1024
const MAX_LOG_LINES = 16
const MAX_LOG_CHARS = 1024

/** The object in the group's snapshot; every read is one read of the snapshot reader. */
export class SnapshotObject implements ObjectView {
  private st: ObjectState | null | undefined
  /** The reader found that the object changed under the snapshot: nothing read of it in this group counts. */
  moved = false

  constructor (private readonly reader: SnapshotReader, private readonly pool: string, private readonly name: string) {}

  stat (): ObjectState | null {
    if (this.st === undefined) {
      const s = this.reader.stat(this.pool, this.name)
      this.st = s === null ? null : { size: s.size, version: s.version, mtimeMs: s.mtimeMs }
    }
    return this.st
  }

  read (offset: number, length: number): Buffer {
    try {
      return asBuffer(this.reader.read(this.pool, this.name, offset, length)) ?? Buffer.alloc(0)
    } catch (err) { throw this.note(err) }
  }

  omapGet (key: string): Buffer | null {
    try {
      // Measured inside the group's SQLite read transaction: ~2 µs, against ~10 µs for a one-key range listing.
      const r = this.reader.omapGet(this.pool, this.name, [Buffer.from(key, 'latin1')])
      return r.length === 0 ? null : asBuffer(r[0].value)
    } catch (err) { throw this.note(err) }
  }

  omapList (after: string | null, limit: number): Array<[string, Buffer]> {
    try {
      const range = after === null ? { limit } : { after: Buffer.from(after, 'latin1'), limit }
      return this.reader.omapList(this.pool, this.name, range).map(e => [asBuffer(e.key).toString('latin1'), asBuffer(e.value)])
    } catch (err) { throw this.note(err) }
  }

  getXattr (name: string): Buffer | null {
    try {
      return asBuffer(this.reader.getXattr(this.pool, this.name, name))
    } catch (err) { throw this.note(err) }
  }

  private note (err: unknown): unknown {
    if (err instanceof SnapshotMoved) this.moved = true
    return err
  }
}

/** Readers mostly return Buffers already; only wrap what is not one. */
function asBuffer<T extends Uint8Array | null> (u: T): T extends null ? Buffer | null : Buffer {
  if (u === null) return null as never
  return (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength)) as never
}

/** One object's calls in a group: the snapshot, what earlier calls left, whether the guard was sent. */
interface Chain {
  base: SnapshotObject
  acc: ObjectOverlay | null
  guarded: boolean
  /** A call of this chain was deferred: the later ones are too, so one object's calls keep their order. */
  deferred: boolean
}

interface Current {
  ctx: ClassCallCtx
  chain: Chain
  view: ObjectOverlay
  logs: string[]
}

export class ClassHost implements LuaHost {
  private readonly reader: SnapshotReader
  private readonly maxObjectBytes: number
  private readonly chains = new Map<string, Chain>()
  private current: Current | null = null
  private groupBytes = 0
  private groupCalls = 0
  readonly functions: LuaHost['functions']
  readonly globals = CLS_GLOBALS

  constructor (opts: ClassHostOptions, line: HostLine | null) {
    if (opts.reader !== null) {
      this.reader = openSnapshotReader(opts.reader)
    } else {
      if (line === null) throw new Error('a class host without a reader of its own needs a line to the main thread')
      this.reader = new RelayedReader(req => line.ask(req satisfies RelayRequest) as RelayReply)
    }
    this.maxObjectBytes = opts.maxObjectBytes
    this.functions = this.makeFunctions()
  }

  beginGroup (): void {
    this.chains.clear()
    this.groupBytes = 0
    this.groupCalls = 0
    this.reader.begin()
  }

  close (): void {
    this.reader.close()
  }

  endGroup (): void {
    this.chains.clear()
    this.current = null
    this.reader.end()
  }

  beginCall (ctx: unknown): boolean {
    const c = ctx as ClassCallCtx
    const key = `${c.pool}\u0000${c.object}`
    let chain = this.chains.get(key)
    if (chain === undefined) {
      chain = { base: new SnapshotObject(this.reader, c.pool, c.object), acc: null, guarded: false, deferred: false }
      this.chains.set(key, chain)
    }
    if (chain.deferred || chain.base.moved || (this.groupCalls > 0 && this.groupBytes > GROUP_MAX_BYTES)) {
      chain.deferred = true
      return false
    }
    this.groupCalls++
    this.current = { ctx: c, chain, view: new ObjectOverlay(chain.acc ?? chain.base), logs: [] }
    return true
  }

  endCall (ok: boolean): ClassCallEffects | undefined {
    const cur = this.current
    this.current = null
    if (cur === null) return undefined
    const logs = cur.logs.length > 0 ? cur.logs : undefined
    if (cur.chain.base.moved) return { stale: true, logs }
    if (!ok || cur.view.ops.length === 0) return logs === undefined ? undefined : { logs }
    const { chain, view } = cur
    const ops: ObjectOp[] = []
    if (!chain.guarded) {
      // Guard the chain's first write with what the snapshot saw; later writes of the chain ride in the same batch.
      const st = chain.base.stat()
      ops.push(st === null ? { op: 'create', exclusive: true } : { op: 'assertVersion', version: st.version })
      chain.guarded = true
    }
    ops.push(...view.ops)
    chain.acc ??= new ObjectOverlay(chain.base)
    chain.acc.absorb(view, Date.now())
    this.groupBytes += view.bytes
    return { ops, version: chain.acc.stat()?.version ?? null, logs }
  }

  private view (): ObjectOverlay {
    if (this.current === null) throw new HostError('EINVAL', 'cls functions can only be used inside a method call')
    return this.current.view
  }

  private makeFunctions (): LuaHost['functions'] {
    const v = (): ObjectOverlay => this.view()
    const checkData = (b: Buffer, what: string): Buffer => {
      if (b.length > MAX_IO_BYTES) throw new HostError('EFBIG', `${what}: ${b.length} bytes is more than ${MAX_IO_BYTES} in one call`)
      // What a call buffers lives in the worker's JS heap, outside the Lua memory budget: bound it too.
      const buffered = (this.current?.view.bytes ?? 0) + b.length
      if (buffered > MAX_CALL_BYTES) throw new HostError('EFBIG', `${what}: the call would buffer ${buffered} bytes of writes, more than ${MAX_CALL_BYTES}`)
      return b
    }
    const max = this.maxObjectBytes
    const checkEnd = (offset: number, len: number, what: string): void => {
      if (offset + len > max) throw new HostError('EFBIG', `${what}: the object would pass the largest size (${max} bytes)`)
    }
    return {
      read: (a: LuaArgs, r: LuaReturns) => {
        const view = v()
        const st = view.stat()
        if (st === null) return r.nil()
        const offset = a.optInt(1, 'cls.read offset', 0)
        const length = a.optInt(2, 'cls.read length', Math.max(0, st.size - offset))
        if (Math.min(length, st.size - offset) > MAX_IO_BYTES) throw new HostError('EFBIG', `cls.read: more than ${MAX_IO_BYTES} bytes in one call`)
        r.bytes(view.read(offset, length))
      },
      write: (a, _r) => {
        const offset = a.int(1, 'cls.write offset')
        const data = checkData(a.bytes(2, 'cls.write data'), 'cls.write')
        checkEnd(offset, data.length, 'cls.write')
        v().record({ op: 'write', offset, data })
      },
      write_full: (a, _r) => {
        const data = checkData(a.bytes(1, 'cls.write_full data'), 'cls.write_full')
        v().record({ op: 'writeFull', data })
      },
      append: (a, _r) => {
        const view = v()
        const data = checkData(a.bytes(1, 'cls.append data'), 'cls.append')
        const offset = view.stat()?.size ?? 0
        checkEnd(offset, data.length, 'cls.append')
        view.record({ op: 'write', offset, data })
      },
      truncate: (a, _r) => {
        const size = a.int(1, 'cls.truncate size', 0, max)
        v().record({ op: 'truncate', size })
      },
      stat: (_a, r) => {
        const st = v().stat()
        if (st === null) return r.nil()
        r.int(st.size)
        r.int(st.mtimeMs)
        r.int(st.version)
      },
      create: (a, _r) => { v().create(a.bool(1)) },
      remove: (_a, _r) => { v().remove() },
      map_get_val: (a, r) => {
        const val = v().omapGet(a.latin1(1, 'cls.map_get_val key'))
        if (val === null) r.nil()
        else r.bytes(val)
      },
      map_set_val: (a, _r) => {
        const key = a.bytes(1, 'cls.map_set_val key')
        const value = checkData(a.bytes(2, 'cls.map_set_val value'), 'cls.map_set_val')
        v().record({ op: 'omapSet', entries: [[key, value]] })
      },
      map_remove_key: (a, _r) => {
        v().record({ op: 'omapRemove', keys: [a.bytes(1, 'cls.map_remove_key key')] })
      },
      map_clear: (_a, _r) => { v().record({ op: 'omapClear' }) },
      map_get_keys: (a, r) => {
        const entries = list(v(), a, 'cls.map_get_keys')
        r.array(entries.map(e => e[0]))
      },
      map_get_vals: (a, r) => {
        const entries = list(v(), a, 'cls.map_get_vals')
        r.map(entries)
        r.array(entries.map(e => e[0]))
      },
      getxattr: (a, r) => {
        const val = v().getXattr(a.text(1, 'cls.getxattr name'))
        if (val === null) r.nil()
        else r.bytes(val)
      },
      setxattr: (a, _r) => {
        const name = xattrName(a.text(1, 'cls.setxattr name'))
        v().record({ op: 'setXattr', name, value: checkData(a.bytes(2, 'cls.setxattr value'), 'cls.setxattr') })
      },
      rmxattr: (a, _r) => {
        v().record({ op: 'removeXattr', name: xattrName(a.text(1, 'cls.rmxattr name')) })
      },
      object: (_a, r) => {
        const ctx = this.current?.ctx
        if (ctx === undefined) throw new HostError('EINVAL', 'cls.object can only be used inside a method call')
        r.bytes(Buffer.from(ctx.pool, 'utf8'))
        r.bytes(Buffer.from(ctx.object, 'utf8'))
      },
      log: (a, _r) => {
        const cur = this.current
        if (cur === null) throw new HostError('EINVAL', 'cls.log can only be used inside a method call')
        if (cur.logs.length >= MAX_LOG_LINES) return
        const text = a.text(1, 'cls.log message')
        cur.logs.push(text.length > MAX_LOG_CHARS ? text.slice(0, MAX_LOG_CHARS) + '…' : text)
      }
    }
  }
}

function list (view: ObjectView, a: LuaArgs, what: string): Array<[string, Buffer]> {
  const after = a.type(1) === 'nil' ? null : a.latin1(1, `${what} after`)
  const max = a.optInt(2, `${what} max`, 1000, 0, MAX_LIST_ENTRIES)
  return view.omapList(after, max)
}

function xattrName (name: string): string {
  if (name.length === 0 || name.includes('\u0000')) throw new HostError('EINVAL', 'an xattr name must be non-empty and contain no NUL')
  return name
}

/** What class scripts see: `cls`, with cls.log joining its arguments like print. */
const CLS_GLOBALS = String.raw`
local H = ...
local cls = {}
for k, v in pairs(H) do cls[k] = v end
local raw_log, tostring, select, concat = H.log, tostring, select, table.concat
function cls.log (...)
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  raw_log(concat(parts, ' '))
end
return { cls = cls }
`

export function createLuaHost (options: unknown, line: HostLine | null): LuaHost {
  return new ClassHost(options as ClassHostOptions, line)
}
