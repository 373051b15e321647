// Model-based test: random op sequences against the store and against a tiny
// in-memory model of the same semantics; every read must agree.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CHUNK_BYTES, ObjectOp, ObjectWrite, OmapRange, StoreError } from '../../src/store'
import { compareBytes, prefixUpperBound } from '../../src/store/ranges'
import { freshStore, pattern } from './helpers'

interface ModelObject {
  data: Buffer
  omap: Map<string, Buffer> // hex key -> value
  xattrs: Map<string, Buffer>
  version: number
}

type Model = Map<string, ModelObject>

function cloneModel (m: Model): Model {
  const out: Model = new Map()
  for (const [k, o] of m) out.set(k, { data: Buffer.from(o.data), omap: new Map(o.omap), xattrs: new Map(o.xattrs), version: o.version })
  return out
}

/** Apply a batch to a copy of the model: the new model, or the errno the batch fails with. */
function applyModel (m: Model, batch: ObjectWrite[]): Model | string {
  const next = cloneModel(m)
  for (const w of batch) {
    let o = next.get(w.name)
    const startVersion = o?.version ?? 0
    let mutated = false
    const ensure = (): ModelObject => {
      if (o === undefined) { o = { data: Buffer.alloc(0), omap: new Map(), xattrs: new Map(), version: startVersion }; next.set(w.name, o) }
      return o
    }
    const writeAt = (x: ModelObject, off: number, d: Uint8Array): void => {
      if (d.length === 0) return
      if (off + d.length > x.data.length) x.data = Buffer.concat([x.data, Buffer.alloc(off + d.length - x.data.length)])
      x.data.set(d, off)
    }
    for (const op of w.ops) {
      if (op.op !== 'assertExists' && op.op !== 'assertVersion') mutated = true
      switch (op.op) {
        case 'create': if (o !== undefined && op.exclusive) return 'EEXIST'; ensure(); break
        case 'write': writeAt(ensure(), op.offset, op.data); break
        case 'writeFull': ensure().data = Buffer.from(op.data); break
        case 'append': { const x = ensure(); writeAt(x, x.data.length, op.data); break }
        case 'truncate': {
          const x = ensure()
          x.data = op.size <= x.data.length ? Buffer.from(x.data.subarray(0, op.size)) : Buffer.concat([x.data, Buffer.alloc(op.size - x.data.length)])
          break
        }
        case 'zero': if (o !== undefined) o.data.fill(0, Math.min(op.offset, o.data.length), Math.min(op.offset + op.length, o.data.length)); break
        case 'remove': if (o !== undefined) { next.delete(w.name); o = undefined } break
        case 'omapSet': { const x = ensure(); for (const [k, v] of op.entries) x.omap.set(Buffer.from(k).toString('hex'), Buffer.from(v)); break }
        case 'omapRemove': if (o !== undefined) for (const k of op.keys) o.omap.delete(Buffer.from(k).toString('hex')); break
        case 'omapRemoveRange':
          if (o !== undefined) {
            for (const k of [...o.omap.keys()]) {
              const kb = Buffer.from(k, 'hex')
              if (compareBytes(kb, op.start) >= 0 && (op.end === undefined || compareBytes(kb, op.end) < 0)) o.omap.delete(k)
            }
          }
          break
        case 'omapClear': if (o !== undefined) o.omap.clear(); break
        case 'setXattr': ensure().xattrs.set(op.name, Buffer.from(op.value)); break
        case 'removeXattr': if (o !== undefined) o.xattrs.delete(op.name); break
        case 'assertExists': if (o === undefined) return 'ENOENT'; break
        case 'assertVersion':
          if (o === undefined) return 'ENOENT'
          if (startVersion !== op.version) return 'ECANCELED'
          break
      }
    }
    if (mutated && o !== undefined) o.version = startVersion + 1
  }
  return next
}

/** A small deterministic PRNG so a failure can be replayed from its seed. */
function rng (seed: number): (n: number) => number {
  let s = seed >>> 0 || 1
  return (n: number) => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0
    return s % n
  }
}

const NAMES = ['a', 'b', 'c', 'dir']
const KEYS = ['', '00', '01', '0100', '02', 'ff', 'ff00', 'ffff', '7f'].map(h => Buffer.from(h, 'hex'))

function randomOffset (r: (n: number) => number): number {
  switch (r(4)) {
    case 0: return r(100)
    case 1: return Math.max(0, CHUNK_BYTES * r(4) + r(3) - 1)
    case 2: return r(4 * CHUNK_BYTES)
    default: return CHUNK_BYTES - 10 + r(20)
  }
}

function randomLength (r: (n: number) => number): number {
  return r(3) === 0 ? r(2 * CHUNK_BYTES + 100) : r(300)
}

function randomOp (r: (n: number) => number, m: Model, name: string, seed: number): ObjectOp {
  const key = (): Buffer => KEYS[r(KEYS.length)]
  switch (r(17)) {
    case 0: return { op: 'create', exclusive: r(2) === 0 }
    case 1: case 2: return { op: 'write', offset: randomOffset(r), data: pattern(randomLength(r), seed) }
    case 3: return { op: 'writeFull', data: pattern(randomLength(r), seed) }
    case 4: return { op: 'append', data: pattern(randomLength(r), seed) }
    case 5: return { op: 'truncate', size: randomOffset(r) }
    case 6: return { op: 'zero', offset: randomOffset(r), length: randomLength(r) }
    case 7: return { op: 'remove' }
    case 8: case 9: return { op: 'omapSet', entries: Array.from({ length: 1 + r(3) }, () => [key(), pattern(r(40), seed)] as [Buffer, Buffer]) }
    case 10: return { op: 'omapRemove', keys: [key(), key()] }
    case 11: return r(2) === 0 ? { op: 'omapRemoveRange', start: key() } : { op: 'omapRemoveRange', start: key(), end: key() }
    case 12: return { op: 'omapClear' }
    case 13: return { op: 'setXattr', name: ['user.x', 'user.y'][r(2)], value: pattern(r(20), seed) }
    case 14: return { op: 'removeXattr', name: ['user.x', 'user.y'][r(2)] }
    case 15: return { op: 'assertExists' }
    default: {
      const v = m.get(name)?.version ?? 0
      return { op: 'assertVersion', version: r(4) === 0 ? v + 1 : v }
    }
  }
}

function randomRange (r: (n: number) => number): OmapRange {
  const range: OmapRange = { limit: 1 + r(10) }
  if (r(3) === 0) range.after = KEYS[r(KEYS.length)]
  if (r(3) === 0) range.start = KEYS[r(KEYS.length)]
  if (r(3) === 0) range.end = KEYS[r(KEYS.length)]
  if (r(3) === 0) range.prefix = KEYS[r(KEYS.length)]
  return range
}

function modelOmapList (o: ModelObject | undefined, range: OmapRange): string[] {
  if (o === undefined) return []
  const keys = [...o.omap.keys()].map(h => Buffer.from(h, 'hex')).sort(compareBytes)
  const upper = range.prefix === undefined ? undefined : prefixUpperBound(range.prefix)
  return keys.filter(k =>
    (range.after === undefined || compareBytes(k, range.after) > 0) &&
    (range.start === undefined || compareBytes(k, range.start) >= 0) &&
    (range.end === undefined || compareBytes(k, range.end) < 0) &&
    (range.prefix === undefined || (k.length >= range.prefix.length && compareBytes(k.subarray(0, range.prefix.length), range.prefix) === 0)) &&
    (upper === undefined || compareBytes(k, upper) < 0)
  ).slice(0, range.limit).map(k => k.toString('hex'))
}

test('random op sequences agree with an in-memory model', async () => {
  const seeds = [1, 2, 3, 4]
  // What the runs covered, so a generator that drifts into trivia gets noticed.
  const seen = new Map<string, number>()
  const count = (what: string): void => { seen.set(what, (seen.get(what) ?? 0) + 1) }
  for (const seed of seeds) {
    const { store, done } = await freshStore(`model-${seed}`, { transferPayloads: seed % 2 === 0 })
    const r = rng(seed * 7919)
    let model: Model = new Map()
    try {
      for (let round = 0; round < 60; round++) {
        // A few batches submitted concurrently; the model applies them in submission order.
        const batches: ObjectWrite[][] = Array.from({ length: 1 + r(4) }, () =>
          Array.from({ length: 1 + r(2) }, () => {
            const name = NAMES[r(NAMES.length)]
            return { pool: 'p', name, ops: Array.from({ length: 1 + r(4) }, () => randomOp(r, model, name, r(1e6))) }
          }))
        const expected: Array<string | null> = []
        for (const batch of batches) {
          const res = applyModel(model, batch)
          if (typeof res === 'string') expected.push(res)
          else { model = res; expected.push(null) }
        }
        const results = await Promise.allSettled(batches.map(batch => store.submit(batch, { durable: r(10) === 0 })))
        results.forEach((res, i) => {
          count(expected[i] ?? 'ok')
          const got = res.status === 'fulfilled' ? null : (res.reason as StoreError).errno
          assert.equal(got, expected[i], `seed ${seed} round ${round} batch ${i}: ${JSON.stringify(batches[i].map(w => [w.name, w.ops.map(o => o.op)]))}`)
        })
        const where = `seed ${seed} round ${round}`
        for (const name of NAMES) {
          const o = model.get(name)
          if (o !== undefined && o.data.length > CHUNK_BYTES) count('multi-chunk object')
          if (o !== undefined && o.omap.size > 2) count('omap with 3+ keys')
          const st = store.statSync('p', name)
          assert.deepEqual(st === null ? null : [st.size, st.version], o === undefined ? null : [o.data.length, o.version], `${where}: stat ${name}`)
          const all = store.readSync('p', name, 0, 10 * CHUNK_BYTES)
          assert.ok(o === undefined ? all === null : Buffer.from(all as Uint8Array).equals(o.data), `${where}: payload of ${name}`)
          const off = randomOffset(r)
          const len = randomLength(r)
          const part = store.readSync('p', name, off, len)
          assert.ok(o === undefined ? part === null : Buffer.from(part as Uint8Array).equals(o.data.subarray(off, off + len)), `${where}: read ${name} ${off}+${len}`)
          const omap = store.omapListSync('p', name, { limit: 100 }).map(e => [Buffer.from(e.key).toString('hex'), Buffer.from(e.value).toString('hex')])
          assert.deepEqual(omap, o === undefined ? [] : [...o.omap.entries()].map(([k, v]) => [k, v.toString('hex')]).sort((x, y) => compareBytes(Buffer.from(x[0], 'hex'), Buffer.from(y[0], 'hex'))), `${where}: omap ${name}`)
          const range = randomRange(r)
          assert.deepEqual(store.omapListSync('p', name, range).map(e => Buffer.from(e.key).toString('hex')), modelOmapList(o, range), `${where}: omap range ${name} ${JSON.stringify(range)}`)
          const xattrs = (await store.listXattrs('p', name)).map(([n, v]) => [n, Buffer.from(v).toString('hex')])
          assert.deepEqual(xattrs, o === undefined ? [] : [...o.xattrs.entries()].sort().map(([n, v]) => [n, v.toString('hex')]), `${where}: xattrs ${name}`)
        }
        assert.deepEqual(store.listSync('p', { limit: 100 }), [...model.keys()].sort(), `${where}: list`)
        assert.equal((await store.usage()).objects, model.size, `${where}: object count`)
      }
    } finally { await done() }
  }
  for (const what of ['ok', 'EEXIST', 'ENOENT', 'ECANCELED', 'multi-chunk object', 'omap with 3+ keys']) {
    assert.ok((seen.get(what) ?? 0) >= 5, `the random runs covered ${what}: ${JSON.stringify([...seen])}`)
  }
})
