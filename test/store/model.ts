// Model-based test of a store backend: random runs of batches (fast-check
// arbitraries) go to the store and to a tiny in-memory model of the contract
// in types.ts; every batch's outcome and every read after each round must
// agree. A failing run shrinks to a minimal one, which fast-check prints
// with the seed and path that replay it.
//
// Environment, for longer runs than the default test command's:
//   CUDELE_MODEL_SEED=N   the seed of the random runs (default 1; fixed, so a
//                         default run is the same every time)
//   CUDELE_MODEL_RUNS=N   how many runs per backend (default 20)
// e.g. CUDELE_MODEL_SEED=$RANDOM CUDELE_MODEL_RUNS=500 node --test dist/test/store/

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { ObjectOp, ObjectStore, ObjectWrite, OmapRange, StoreError } from '../../src/store'
import { compareBytes, prefixUpperBound } from '../../src/store/ranges'
import type { Backend } from './backends'
import { pattern } from './helpers'

const SEED = Number(process.env.CUDELE_MODEL_SEED ?? 1)
const RUNS = Number(process.env.CUDELE_MODEL_RUNS ?? 20)
const C = 64 * 1024

// ---- the model ----

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

// ---- what fast-check generates: plain values, turned into batches (with fresh buffers) per run ----

const NAMES = ['a', 'b', 'c', 'dir']
const KEYS = ['', '00', '01', '0100', '02', 'ff', 'ff00', 'ffff', '7f']
const XATTRS = ['user.x', 'user.y']

/** Offsets near the start, at and around 64 KiB boundaries, anywhere in four chunks. */
const offsetArb = fc.oneof(
  fc.nat({ max: 99 }),
  fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: 2 })).map(([k, d]) => Math.max(0, C * k + d - 1)),
  fc.nat({ max: 4 * C - 1 }),
  fc.nat({ max: 19 }).map(d => C - 10 + d)
)
const lengthArb = fc.oneof({ weight: 2, arbitrary: fc.nat({ max: 299 }) }, { weight: 1, arbitrary: fc.nat({ max: 2 * C + 99 }) })
const dataArb = fc.record({ length: lengthArb, seed: fc.nat() })
const keyArb = fc.constantFrom(...KEYS)

type DataSpec = { length: number, seed: number }
type OpSpec =
  | { op: 'create', exclusive: boolean }
  | { op: 'write', offset: number, data: DataSpec }
  | { op: 'writeFull' | 'append', data: DataSpec }
  | { op: 'truncate', size: number }
  | { op: 'zero', offset: number, length: number }
  | { op: 'remove' | 'omapClear' | 'assertExists' }
  | { op: 'omapSet', entries: Array<[string, DataSpec]> }
  | { op: 'omapRemove', keys: string[] }
  | { op: 'omapRemoveRange', start: string, end?: string }
  | { op: 'setXattr', name: string, value: DataSpec }
  | { op: 'removeXattr', name: string }
  /** Asserts the version the object has when the round starts, plus delta (1: a guard that fails). */
  | { op: 'assertVersion', delta: number }

const smallData = fc.record({ length: fc.nat({ max: 39 }), seed: fc.nat() })
const opArb: fc.Arbitrary<OpSpec> = fc.oneof(
  fc.record({ op: fc.constant('create' as const), exclusive: fc.boolean() }),
  { weight: 2, arbitrary: fc.record({ op: fc.constant('write' as const), offset: offsetArb, data: dataArb }) },
  fc.record({ op: fc.constantFrom('writeFull' as const, 'append' as const), data: dataArb }),
  fc.record({ op: fc.constant('truncate' as const), size: offsetArb }),
  fc.record({ op: fc.constant('zero' as const), offset: offsetArb, length: lengthArb }),
  fc.record({ op: fc.constantFrom('remove' as const, 'omapClear' as const, 'assertExists' as const) }),
  { weight: 2, arbitrary: fc.record({ op: fc.constant('omapSet' as const), entries: fc.array(fc.tuple(keyArb, smallData), { minLength: 1, maxLength: 3 }) }) },
  fc.record({ op: fc.constant('omapRemove' as const), keys: fc.array(keyArb, { minLength: 2, maxLength: 2 }) }),
  fc.record({ op: fc.constant('omapRemoveRange' as const), start: keyArb, end: fc.option(keyArb, { nil: undefined }) }, { requiredKeys: ['op', 'start'] }),
  fc.record({ op: fc.constant('setXattr' as const), name: fc.constantFrom(...XATTRS), value: fc.record({ length: fc.nat({ max: 19 }), seed: fc.nat() }) }),
  fc.record({ op: fc.constant('removeXattr' as const), name: fc.constantFrom(...XATTRS) }),
  fc.record({ op: fc.constant('assertVersion' as const), delta: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }) })
)

const writeArb = fc.record({ name: fc.constantFrom(...NAMES), ops: fc.array(opArb, { minLength: 1, maxLength: 4 }) })
const rangeArb: fc.Arbitrary<{ limit: number, after?: string, start?: string, end?: string, prefix?: string }> = fc.record({
  limit: fc.integer({ min: 1, max: 10 }),
  after: fc.option(keyArb, { nil: undefined, freq: 2 }),
  start: fc.option(keyArb, { nil: undefined, freq: 2 }),
  end: fc.option(keyArb, { nil: undefined, freq: 2 }),
  prefix: fc.option(keyArb, { nil: undefined, freq: 2 })
}, { requiredKeys: ['limit'] })
/** One round: a few batches submitted at once (applied in submission order), then reads of every object. */
const roundArb = fc.record({
  batches: fc.array(fc.record({ writes: fc.array(writeArb, { minLength: 1, maxLength: 2 }), durable: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }) }), { minLength: 1, maxLength: 4 }),
  reads: fc.array(fc.record({ offset: offsetArb, length: lengthArb, range: rangeArb }), { minLength: NAMES.length, maxLength: NAMES.length })
})
const runArb = fc.array(roundArb, { minLength: 1, maxLength: 40, size: 'max' })

type RoundSpec = typeof roundArb extends fc.Arbitrary<infer T> ? T : never

const hex = (h: string): Buffer => Buffer.from(h, 'hex')
const data = (d: DataSpec): Buffer => pattern(d.length, d.seed)

function toOp (s: OpSpec, version: number): ObjectOp {
  switch (s.op) {
    case 'create': return { op: 'create', exclusive: s.exclusive }
    case 'write': return { op: 'write', offset: s.offset, data: data(s.data) }
    case 'writeFull': case 'append': return { op: s.op, data: data(s.data) }
    case 'truncate': return { op: 'truncate', size: s.size }
    case 'zero': return { op: 'zero', offset: s.offset, length: s.length }
    case 'remove': case 'omapClear': case 'assertExists': return { op: s.op }
    case 'omapSet': return { op: 'omapSet', entries: s.entries.map(([k, v]) => [hex(k), data(v)]) }
    case 'omapRemove': return { op: 'omapRemove', keys: s.keys.map(hex) }
    case 'omapRemoveRange': return s.end === undefined ? { op: 'omapRemoveRange', start: hex(s.start) } : { op: 'omapRemoveRange', start: hex(s.start), end: hex(s.end) }
    case 'setXattr': return { op: 'setXattr', name: s.name, value: data(s.value) }
    case 'removeXattr': return { op: 'removeXattr', name: s.name }
    case 'assertVersion': return { op: 'assertVersion', version: version + s.delta }
  }
}

function toRange (r: RoundSpec['reads'][number]['range']): OmapRange {
  const range: OmapRange = { limit: r.limit }
  if (r.after !== undefined) range.after = hex(r.after)
  if (r.start !== undefined) range.start = hex(r.start)
  if (r.end !== undefined) range.end = hex(r.end)
  if (r.prefix !== undefined) range.prefix = hex(r.prefix)
  return range
}

/** One run: every round's batches to the store and the model, then every read compared. */
async function runRounds (store: ObjectStore, rounds: RoundSpec[], count: (what: string) => void): Promise<void> {
  let model: Model = new Map()
  for (const [round, spec] of rounds.entries()) {
    const batches: ObjectWrite[][] = spec.batches.map(bs => bs.writes.map(ws => ({
      pool: 'p', name: ws.name, ops: ws.ops.map(op => toOp(op, model.get(ws.name)?.version ?? 0))
    })))
    const expected: Array<string | null> = []
    for (const batch of batches) {
      const res = applyModel(model, batch)
      if (typeof res === 'string') expected.push(res)
      else { model = res; expected.push(null) }
    }
    const results = await Promise.allSettled(batches.map((batch, i) => store.submit(batch, { durable: spec.batches[i].durable })))
    results.forEach((res, i) => {
      count(expected[i] ?? 'ok')
      const got = res.status === 'fulfilled' ? null : (res.reason as StoreError).errno ?? String(res.reason)
      assert.equal(got, expected[i], `round ${round} batch ${i}`)
    })
    const where = `after round ${round}`
    for (const [n, name] of NAMES.entries()) {
      const o = model.get(name)
      if (o !== undefined && o.data.length > C) count('multi-chunk object')
      if (o !== undefined && o.omap.size > 2) count('omap with 3+ keys')
      const st = await store.stat('p', name)
      assert.deepEqual(st === null ? null : [st.size, st.version], o === undefined ? null : [o.data.length, o.version], `${where}: stat ${name}`)
      const all = await store.read('p', name, 0, 10 * C)
      assert.ok(o === undefined ? all === null : Buffer.from(all as Uint8Array).equals(o.data), `${where}: payload of ${name}`)
      const { offset, length, range } = spec.reads[n]
      const part = await store.read('p', name, offset, length)
      assert.ok(o === undefined ? part === null : Buffer.from(part as Uint8Array).equals(o.data.subarray(offset, offset + length)), `${where}: read ${name} ${offset}+${length}`)
      const omap = (await store.omapList('p', name, { limit: 100 })).map(e => [Buffer.from(e.key).toString('hex'), Buffer.from(e.value).toString('hex')])
      const want = o === undefined ? [] : [...o.omap.entries()].map(([k, v]) => [k, v.toString('hex')]).sort((x, y) => compareBytes(hex(x[0]), hex(y[0])))
      assert.deepEqual(omap, want, `${where}: omap ${name}`)
      const r = toRange(range)
      assert.deepEqual((await store.omapList('p', name, r)).map(e => Buffer.from(e.key).toString('hex')), modelOmapList(o, r), `${where}: omap range ${name} ${JSON.stringify(range)}`)
      const got = (await store.omapGet('p', name, KEYS.map(hex))).map(e => Buffer.from(e.key).toString('hex'))
      assert.deepEqual(got, o === undefined ? [] : KEYS.filter(k => o.omap.has(k)), `${where}: omap get ${name}`)
      const xattrs = (await store.listXattrs('p', name)).map(([x, v]) => [x, Buffer.from(v).toString('hex')])
      assert.deepEqual(xattrs, o === undefined ? [] : [...o.xattrs.entries()].sort().map(([x, v]) => [x, v.toString('hex')]), `${where}: xattrs ${name}`)
    }
    assert.deepEqual(await store.list('p', { limit: 100 }), [...model.keys()].sort(), `${where}: list`)
    assert.equal((await store.usage()).objects, model.size, `${where}: object count`)
  }
}

export function modelTest (backend: Backend): void {
  test(`${backend.name}: random batches agree with an in-memory model (seed ${SEED}, ${RUNS} runs)`, async () => {
    // What the runs covered, so a generator that drifts into trivia gets noticed.
    const seen = new Map<string, number>()
    const count = (what: string): void => { seen.set(what, (seen.get(what) ?? 0) + 1) }
    await fc.assert(fc.asyncProperty(runArb, async rounds => {
      const { store, done } = await backend.open()
      try { await runRounds(store, rounds, count) } finally { await done() }
    }), { seed: SEED, numRuns: RUNS, includeErrorInReport: true })
    for (const what of ['ok', 'EEXIST', 'ENOENT', 'ECANCELED', 'multi-chunk object', 'omap with 3+ keys']) {
      assert.ok((seen.get(what) ?? 0) >= 5, `the random runs covered ${what}: ${JSON.stringify([...seen])}`)
    }
  })
}
