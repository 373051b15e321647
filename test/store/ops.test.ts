// Every ObjectOp against a real SQLite store, with the edge cases the
// filesystem depends on: holes, truncation, chunk boundaries, omap ranges.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CHUNK_BYTES, ObjectWrite, StoreError } from '../../src/store'
import { b, freshStore, pattern, str } from './helpers'

const C = CHUNK_BYTES

function w (name: string, ...ops: ObjectWrite['ops']): ObjectWrite {
  return { pool: 'p', name, ops }
}

test('payload: write, read back, holes, clipping, missing objects', async () => {
  const { store, done } = await freshStore('ops-payload')
  try {
    await store.submit([w('a', { op: 'write', offset: 0, data: b('hello world') })], { durable: false })
    assert.equal(str(store.readSync('p', 'a', 0, 100)), 'hello world', 'a read past the end is clipped')
    assert.equal(str(store.readSync('p', 'a', 6, 5)), 'world')
    assert.equal(store.readSync('p', 'a', 11, 10)?.length, 0, 'a read at the end is empty')
    assert.equal(store.readSync('p', 'a', 500, 10)?.length, 0, 'a read beyond the end is empty')
    assert.equal(store.readSync('p', 'missing', 0, 10), null)
    assert.equal(store.readSync('nopool', 'a', 0, 10), null)
    assert.equal(store.statSync('p', 'missing'), null)

    // Sparse: a write far beyond the end leaves a hole that reads as zeros.
    const far = 5 * C + 123
    await store.submit([w('a', { op: 'write', offset: far, data: b('tail') })], { durable: false })
    assert.equal(store.statSync('p', 'a')?.size, far + 4)
    const all = Buffer.from(store.readSync('p', 'a', 0, far + 4) as Uint8Array)
    assert.equal(all.subarray(0, 11).toString(), 'hello world')
    assert.ok(all.subarray(11, far).every(x => x === 0), 'the hole reads as zeros')
    assert.equal(all.subarray(far).toString(), 'tail')

    // A write of nothing changes nothing but the version.
    const v = store.statSync('p', 'a')?.version as number
    await store.submit([w('a', { op: 'write', offset: 10 * C, data: Buffer.alloc(0) })], { durable: false })
    assert.deepEqual([store.statSync('p', 'a')?.size, store.statSync('p', 'a')?.version], [far + 4, v + 1])

    assert.equal((await store.read('p', 'a', 0, 5)) !== null, true, 'async read wraps the sync one')
  } finally { await done() }
})

test('payload: writes spanning chunk boundaries and partial chunk rewrites', async () => {
  const { store, done } = await freshStore('ops-chunks')
  try {
    const data = pattern(3 * C + 100, 7)
    // Submit a copy: payloads this large are moved to the writer thread (detached here).
    await store.submit([w('x', { op: 'write', offset: C - 50, data: Buffer.from(data) })], { durable: false })
    const expect = Buffer.concat([Buffer.alloc(C - 50), data])
    assert.deepEqual(Buffer.from(store.readSync('p', 'x', 0, expect.length) as Uint8Array), expect)
    // Overwrite across a boundary inside the existing data.
    const patch = pattern(200, 9)
    await store.submit([w('x', { op: 'write', offset: 2 * C - 100, data: patch })], { durable: false })
    patch.copy(expect, 2 * C - 100)
    assert.deepEqual(Buffer.from(store.readSync('p', 'x', 0, expect.length) as Uint8Array), expect)
    // Reads at odd offsets and lengths across boundaries.
    for (const [o, n] of [[0, 1], [C - 1, 2], [C, C], [C - 51, C + 2], [3 * C - 7, 200], [expect.length - 1, 5]]) {
      assert.deepEqual(Buffer.from(store.readSync('p', 'x', o, n) as Uint8Array), expect.subarray(o, o + n), `read ${o}+${n}`)
    }
    // Exactly aligned whole chunks.
    const whole = pattern(2 * C, 11)
    await store.submit([w('y', { op: 'write', offset: C, data: Buffer.from(whole) })], { durable: false })
    assert.deepEqual(Buffer.from(store.readSync('p', 'y', C, 2 * C) as Uint8Array), whole)
    assert.ok(Buffer.from(store.readSync('p', 'y', 0, C) as Uint8Array).every(x => x === 0))
  } finally { await done() }
})

test('payload: writeFull, append, truncate shrink and grow, zero', async () => {
  const { store, done } = await freshStore('ops-trunc')
  try {
    await store.submit([w('f', { op: 'writeFull', data: pattern(2 * C + 10, 1) })], { durable: false })
    await store.submit([w('f', { op: 'writeFull', data: b('short') })], { durable: false })
    assert.equal(store.statSync('p', 'f')?.size, 5, 'writeFull replaces the whole payload')
    assert.equal(str(store.readSync('p', 'f', 0, 100)), 'short')
    await store.submit([w('f', { op: 'append', data: b('+more') }, { op: 'append', data: b('!') })], { durable: false })
    assert.equal(str(store.readSync('p', 'f', 0, 100)), 'short+more!')
    await store.submit([w('f', { op: 'writeFull', data: Buffer.alloc(0) })], { durable: false })
    assert.equal(store.statSync('p', 'f')?.size, 0)

    // Shrink inside a chunk, then grow: the cut bytes must come back as zeros.
    const data = pattern(C + 1000, 3)
    await store.submit([w('t', { op: 'writeFull', data: Buffer.from(data) })], { durable: false })
    await store.submit([w('t', { op: 'truncate', size: C + 10 })], { durable: false })
    assert.equal(store.statSync('p', 't')?.size, C + 10)
    await store.submit([w('t', { op: 'truncate', size: C + 1000 })], { durable: false })
    const back = Buffer.from(store.readSync('p', 't', 0, C + 1000) as Uint8Array)
    assert.deepEqual(back.subarray(0, C + 10), data.subarray(0, C + 10))
    assert.ok(back.subarray(C + 10).every(x => x === 0), 'grown range is a hole')
    // Shrink to a chunk boundary and to zero.
    await store.submit([w('t', { op: 'truncate', size: C })], { durable: false })
    await store.submit([w('t', { op: 'truncate', size: 3 * C })], { durable: false })
    assert.ok(Buffer.from(store.readSync('p', 't', C, 2 * C) as Uint8Array).every(x => x === 0))
    assert.deepEqual(Buffer.from(store.readSync('p', 't', 0, C) as Uint8Array), data.subarray(0, C))
    await store.submit([w('t', { op: 'truncate', size: 0 }, { op: 'truncate', size: 100 })], { durable: false })
    assert.ok(Buffer.from(store.readSync('p', 't', 0, 100) as Uint8Array).every(x => x === 0))
    // truncate creates an absent object with that size.
    await store.submit([w('new', { op: 'truncate', size: 4096 })], { durable: false })
    assert.equal(store.statSync('p', 'new')?.size, 4096)

    // zero: inside a chunk, across boundaries, whole chunks, past the end; size never changes.
    const z = pattern(4 * C, 5)
    const expect = Buffer.from(z)
    await store.submit([w('z', { op: 'writeFull', data: z })], { durable: false })
    const ranges: Array<[number, number]> = [[10, 20], [C - 5, 10], [C + 100, 2 * C], [4 * C - 3, 100], [0, 0]]
    for (const [o, n] of ranges) {
      await store.submit([w('z', { op: 'zero', offset: o, length: n })], { durable: false })
      expect.fill(0, o, Math.min(o + n, expect.length))
      assert.equal(store.statSync('p', 'z')?.size, 4 * C)
      assert.deepEqual(Buffer.from(store.readSync('p', 'z', 0, 4 * C) as Uint8Array), expect, `after zero ${o}+${n}`)
    }
    await store.submit([w('z', { op: 'zero', offset: 10 * C, length: 10 })], { durable: false })
    assert.equal(store.statSync('p', 'z')?.size, 4 * C, 'zero past the end does not grow')
    await store.submit([w('nz', { op: 'zero', offset: 0, length: 10 })], { durable: false })
    assert.equal(store.statSync('p', 'nz'), null, 'zero does not create an object')
  } finally { await done() }
})

test('remove, and remove then recreate in one write', async () => {
  const { store, done } = await freshStore('ops-remove')
  try {
    await store.submit([w('r', { op: 'write', offset: 0, data: pattern(2 * C, 1) }, { op: 'omapSet', entries: [[b('k'), b('v')]] }, { op: 'setXattr', name: 'x', value: b('1') })], { durable: false })
    const v1 = store.statSync('p', 'r')?.version as number
    await store.submit([w('r', { op: 'remove' }, { op: 'create', exclusive: true }, { op: 'write', offset: 5, data: b('new') })], { durable: false })
    const st = store.statSync('p', 'r')
    assert.equal(st?.size, 8)
    assert.equal(st?.version, v1 + 1, 'recreated in the same write: the version goes on')
    assert.deepEqual(Buffer.from(store.readSync('p', 'r', 0, 8) as Uint8Array), Buffer.from([0, 0, 0, 0, 0, 110, 101, 119]), 'old payload is gone')
    assert.deepEqual(store.omapListSync('p', 'r', { limit: 10 }), [], 'old omap is gone')
    assert.deepEqual(store.listXattrs ? await store.listXattrs('p', 'r') : [], [], 'old xattrs are gone')
    await store.submit([w('r', { op: 'remove' })], { durable: false })
    assert.equal(store.statSync('p', 'r'), null)
    assert.equal(store.readSync('p', 'r', 0, 1), null)
    // Removing an absent object is a no-op, so a replayed removal cannot fail.
    await store.submit([w('r', { op: 'remove' }, { op: 'omapClear' }, { op: 'removeXattr', name: 'x' }, { op: 'omapRemove', keys: [b('k')] })], { durable: false })
    assert.equal(store.statSync('p', 'r'), null)
    assert.equal((await store.usage()).objects, 0)
  } finally { await done() }
})

test('omap: set, replace, remove, ranges, prefixes, limits', async () => {
  const { store, done } = await freshStore('ops-omap')
  try {
    const keys = ['a', 'ab', 'abc', 'abd', 'b', 'ba', 'c']
    await store.submit([w('m', { op: 'omapSet', entries: keys.map(k => [b(k), b(k.toUpperCase())]) })], { durable: false })
    const list = (r: Parameters<typeof store.omapListSync>[2]): string[] => store.omapListSync('p', 'm', r).map(e => Buffer.from(e.key).toString())
    assert.deepEqual(list({ limit: 100 }), keys)
    assert.deepEqual(list({ limit: 3 }), ['a', 'ab', 'abc'])
    assert.deepEqual(list({ limit: 0 }), [])
    assert.deepEqual(list({ after: b('ab'), limit: 100 }), ['abc', 'abd', 'b', 'ba', 'c'])
    assert.deepEqual(list({ start: b('ab'), limit: 100 }), ['ab', 'abc', 'abd', 'b', 'ba', 'c'])
    assert.deepEqual(list({ start: b('ab'), end: b('b'), limit: 100 }), ['ab', 'abc', 'abd'])
    assert.deepEqual(list({ prefix: b('ab'), limit: 100 }), ['ab', 'abc', 'abd'])
    assert.deepEqual(list({ prefix: b('ab'), after: b('ab'), limit: 100 }), ['abc', 'abd'])
    assert.deepEqual(list({ prefix: b('ab'), after: b('a'), limit: 100 }), ['ab', 'abc', 'abd'])
    assert.deepEqual(list({ prefix: b('ab'), end: b('abd'), limit: 100 }), ['ab', 'abc'])
    assert.deepEqual(list({ prefix: b('b'), limit: 1 }), ['b'])
    assert.deepEqual(list({ prefix: b('z'), limit: 100 }), [])
    assert.deepEqual(list({ start: b('c'), end: b('a'), limit: 100 }), [])
    assert.deepEqual(list({ after: b('c'), limit: 100 }), [])

    const got = store.omapGetSync('p', 'm', [b('b'), b('zz'), b('a')])
    assert.deepEqual(got.map(e => [Buffer.from(e.key).toString(), Buffer.from(e.value).toString()]), [['b', 'B'], ['a', 'A']])
    assert.deepEqual(store.omapGetSync('p', 'missing', [b('a')]), [])

    await store.submit([w('m', { op: 'omapSet', entries: [[b('a'), b('new')]] }, { op: 'omapRemove', keys: [b('ab'), b('nothere')] })], { durable: false })
    assert.equal(str(store.omapGetSync('p', 'm', [b('a')])[0].value), 'new')
    await store.submit([w('m', { op: 'omapRemoveRange', start: b('abc'), end: b('ba') })], { durable: false })
    assert.deepEqual(list({ limit: 100 }), ['a', 'ba', 'c'])
    await store.submit([w('m', { op: 'omapRemoveRange', start: b('b') })], { durable: false })
    assert.deepEqual(list({ limit: 100 }), ['a'])
    await store.submit([w('m', { op: 'omapClear' })], { durable: false })
    assert.deepEqual(list({ limit: 100 }), [])
    assert.notEqual(store.statSync('p', 'm'), null, 'an object with an empty omap still exists')

    // Binary keys: 0x00, 0xff, empty key and empty values; prefix of all-0xff.
    const bin: Array<[Buffer, Buffer]> = [[Buffer.alloc(0), Buffer.alloc(0)], [Buffer.from([0]), b('z')], [Buffer.from([0xff]), b('f')], [Buffer.from([0xff, 0xff]), b('ff')], [Buffer.from([0xff, 0x00]), b('f0')]]
    await store.submit([w('bin', { op: 'omapSet', entries: bin })], { durable: false })
    const all = store.omapListSync('p', 'bin', { limit: 100 })
    assert.deepEqual(all.map(e => Buffer.from(e.key).toString('hex')), ['', '00', 'ff', 'ff00', 'ffff'])
    assert.equal(all[0].value.length, 0)
    assert.deepEqual(store.omapListSync('p', 'bin', { prefix: Buffer.from([0xff]), limit: 100 }).map(e => Buffer.from(e.key).toString('hex')), ['ff', 'ff00', 'ffff'])
    assert.deepEqual(store.omapListSync('p', 'bin', { prefix: Buffer.from([0xff, 0xff]), limit: 100 }).map(e => Buffer.from(e.key).toString('hex')), ['ffff'])
    assert.deepEqual(store.omapListSync('p', 'bin', { prefix: Buffer.alloc(0), limit: 2 }).map(e => Buffer.from(e.key).toString('hex')), ['', '00'])
    // Keys given as plain Uint8Array views into a larger buffer.
    const big = new Uint8Array([9, 9, 0xff, 0x00, 9])
    assert.equal(str(store.omapGetSync('p', 'bin', [big.subarray(2, 4)])[0]?.value ?? null), 'f0')
  } finally { await done() }
})

test('xattrs and listing objects', async () => {
  const { store, done } = await freshStore('ops-xattr')
  try {
    await store.submit([w('o', { op: 'setXattr', name: 'user.b', value: b('2') }, { op: 'setXattr', name: 'user.a', value: b('1') })], { durable: false })
    assert.equal(str(await store.getXattr('p', 'o', 'user.a')), '1')
    assert.equal(await store.getXattr('p', 'o', 'user.none'), null)
    assert.equal(await store.getXattr('p', 'none', 'user.a'), null)
    assert.deepEqual((await store.listXattrs('p', 'o')).map(([n, v]) => [n, str(v)]), [['user.a', '1'], ['user.b', '2']])
    await store.submit([w('o', { op: 'removeXattr', name: 'user.a' }, { op: 'setXattr', name: 'user.b', value: Buffer.alloc(0) })], { durable: false })
    assert.deepEqual((await store.listXattrs('p', 'o')).map(([n, v]) => [n, str(v)]), [['user.b', '']])

    const names = ['dir.1', 'dir.10', 'dir.2', 'file', 'dis', 'dir', 'é', 'z']
    await store.submit(names.map(n => w(n, { op: 'create', exclusive: false })), { durable: false })
    const sorted = [...names, 'o'].sort((x, y) => Buffer.compare(b(x), b(y)))
    assert.deepEqual(store.listSync('p', { limit: 100 }), sorted)
    assert.deepEqual(store.listSync('p', { prefix: 'dir', limit: 100 }), ['dir', 'dir.1', 'dir.10', 'dir.2'])
    assert.deepEqual(store.listSync('p', { prefix: 'dir.', limit: 2 }), ['dir.1', 'dir.10'])
    assert.deepEqual(store.listSync('p', { prefix: 'dir.', after: 'dir.10', limit: 100 }), ['dir.2'])
    assert.deepEqual(store.listSync('p', { after: 'file', limit: 100 }), ['o', 'z', 'é'])
    assert.deepEqual(store.listSync('p', { prefix: 'q', limit: 100 }), [])
    assert.deepEqual(store.listSync('nopool', { limit: 100 }), [])
    assert.deepEqual(await store.list('p', { prefix: 'é', limit: 10 }), ['é'])
    assert.deepEqual(await store.listPools(), ['p'])
  } finally { await done() }
})

test('versions and mtimes: one bump per write, guards alone change nothing', async () => {
  const { store, done } = await freshStore('ops-version')
  try {
    const t0 = Date.now()
    await store.submit([w('v', { op: 'create', exclusive: true }, { op: 'write', offset: 0, data: b('x') }, { op: 'omapSet', entries: [[b('k'), b('v')]] })], { durable: false })
    const s1 = store.statSync('p', 'v')
    assert.equal(s1?.version, 1, 'a new object starts at version 1, once per write')
    assert.ok((s1?.mtimeMs ?? 0) >= t0 - 5 && (s1?.mtimeMs ?? 0) <= Date.now() + 5)
    await store.submit([w('v', { op: 'append', data: b('y') }), w('v', { op: 'append', data: b('z') })], { durable: false })
    assert.equal(store.statSync('p', 'v')?.version, 3, 'two writes in one batch: two bumps')
    await store.submit([w('v', { op: 'assertExists' }, { op: 'assertVersion', version: 3 })], { durable: false })
    assert.equal(store.statSync('p', 'v')?.version, 3, 'guards only: no bump')
    await store.submit([w('v', { op: 'assertVersion', version: 3 }, { op: 'create', exclusive: false })], { durable: false })
    assert.equal(store.statSync('p', 'v')?.version, 4)
  } finally { await done() }
})

test('malformed requests fail with EINVAL/EFBIG on the caller side', async () => {
  const { store, done } = await freshStore('ops-invalid')
  try {
    const bad: Array<[unknown, string]> = [
      [[w('a', { op: 'write', offset: -1, data: b('x') })], 'EINVAL'],
      [[w('a', { op: 'write', offset: 1.5, data: b('x') })], 'EINVAL'],
      [[w('a', { op: 'write', offset: 0, data: 'x' as unknown as Uint8Array })], 'EINVAL'],
      [[w('a', { op: 'frobnicate' } as unknown as ObjectWrite['ops'][0])], 'EINVAL'],
      [[{ pool: 'p', name: '', ops: [] }], 'EINVAL'],
      [[w('a', { op: 'truncate', size: 2 ** 40 })], 'EFBIG'],
      [[w('a', { op: 'write', offset: 64 * 2 ** 30, data: b('x') })], 'EFBIG'],
      ['not a batch', 'EINVAL']
    ]
    for (const [batch, errno] of bad) {
      await assert.rejects(store.submit(batch as ObjectWrite[], { durable: false }), (e: StoreError) => e.errno === errno, JSON.stringify(batch))
    }
    assert.throws(() => store.readSync('p', 'a', -1, 1), (e: StoreError) => e.errno === 'EINVAL')
    assert.throws(() => store.omapListSync('p', 'a', { limit: -1 }), (e: StoreError) => e.errno === 'EINVAL')
    await assert.rejects(store.submit([{ pool: 'nopool', name: 'a', ops: [{ op: 'create', exclusive: false }] }], { durable: false }), (e: StoreError) => e.errno === 'ENOENT' && /pool nopool/.test(e.message))
    // A write right at the largest size is fine; one byte more is EFBIG.
    await store.submit([w('big', { op: 'truncate', size: 64 * 2 ** 30 })], { durable: false })
    await assert.rejects(store.submit([w('big', { op: 'append', data: b('x') })], { durable: false }), (e: StoreError) => e.errno === 'EFBIG')
    assert.equal(store.readSync('p', 'big', 64 * 2 ** 30 - 2, 10)?.length, 2)
    assert.equal(store.readSync('p', 'big', 70 * 2 ** 30, 10)?.length, 0)
  } finally { await done() }
})
