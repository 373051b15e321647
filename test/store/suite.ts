// The store suite: the contract of src/store/types.ts, checked through the
// ObjectStore interface alone, for any backend (backends.ts). Each backend's
// test file calls storeSuite once; what only one backend has (SQLite's
// writer thread, WAL, lock file, full disk) is tested in that backend's own
// files.
//
// Every op with the edge cases the filesystem depends on (holes,
// truncation, 64 KiB boundaries, omap ranges, byte order), batches
// (atomicity, guards, order), malformed requests, close, and the model test
// (model.ts): random batches against an in-memory model of the contract.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { OmapPacker } from '../../src/store'
import type { LocalReads, ObjectStore, ObjectWrite, OmapRange, StoreError } from '../../src/store'
import type { Backend } from './backends'
import { modelTest } from './model'
import { b, pattern, str } from './helpers'

/** A payload size around which backends split payloads (SQLite's chunk, the memory store's too). */
const C = 64 * 1024

function w (name: string, ...ops: ObjectWrite['ops']): ObjectWrite {
  return { pool: 'p', name, ops }
}

async function bytesOf (store: ObjectStore, name: string, offset: number, length: number): Promise<Buffer> {
  const got = await store.read('p', name, offset, length)
  assert.notEqual(got, null, `p/${name} exists`)
  return Buffer.from(got as Uint8Array)
}

function hasLocalReads (s: ObjectStore): s is ObjectStore & LocalReads {
  return typeof (s as Partial<LocalReads>).readSync === 'function'
}

export function storeSuite (backend: Backend): void {
  /** Run fn on a fresh store of this backend; the store is cleaned up whatever happens. */
  const withStore = async (fn: (store: ObjectStore) => Promise<void>): Promise<void> => {
    const { store, done } = await backend.open()
    try { await fn(store) } finally { await done() }
  }
  const put = (store: ObjectStore, ...writes: ObjectWrite[]): Promise<unknown> => store.submit(writes, { durable: false })

  describe(`store suite: ${backend.name}`, () => {
    test('payload: write, read back, holes, clipping, missing objects', () => withStore(async store => {
      await put(store, w('a', { op: 'write', offset: 0, data: b('hello world') }))
      assert.equal(str(await store.read('p', 'a', 0, 100)), 'hello world', 'a read past the end is clipped')
      assert.equal(str(await store.read('p', 'a', 6, 5)), 'world')
      assert.equal((await store.read('p', 'a', 11, 10))?.length, 0, 'a read at the end is empty')
      assert.equal((await store.read('p', 'a', 500, 10))?.length, 0, 'a read beyond the end is empty')
      assert.equal(await store.read('p', 'missing', 0, 10), null)
      assert.equal(await store.read('nopool', 'a', 0, 10), null)
      assert.equal(await store.stat('p', 'missing'), null)
      assert.equal(await store.stat('nopool', 'a'), null)

      // Sparse: a write far beyond the end leaves a hole that reads as zeros.
      const far = 5 * C + 123
      await put(store, w('a', { op: 'write', offset: far, data: b('tail') }))
      assert.equal((await store.stat('p', 'a'))?.size, far + 4)
      const all = await bytesOf(store, 'a', 0, far + 4)
      assert.equal(all.subarray(0, 11).toString(), 'hello world')
      assert.ok(all.subarray(11, far).every(x => x === 0), 'the hole reads as zeros')
      assert.equal(all.subarray(far).toString(), 'tail')

      // A write of nothing changes nothing but the version.
      const v = (await store.stat('p', 'a'))?.version as number
      await put(store, w('a', { op: 'write', offset: 10 * C, data: Buffer.alloc(0) }))
      const st = await store.stat('p', 'a')
      assert.deepEqual([st?.size, st?.version], [far + 4, v + 1])
    }))

    test('payload: writes spanning 64 KiB boundaries and partial rewrites', () => withStore(async store => {
      const data = pattern(3 * C + 100, 7)
      // Submit copies: a backend may take over (detach) large payload buffers.
      await put(store, w('x', { op: 'write', offset: C - 50, data: Buffer.from(data) }))
      const expect = Buffer.concat([Buffer.alloc(C - 50), data])
      assert.deepEqual(await bytesOf(store, 'x', 0, expect.length), expect)
      const patch = pattern(200, 9)
      await put(store, w('x', { op: 'write', offset: 2 * C - 100, data: Buffer.from(patch) }))
      patch.copy(expect, 2 * C - 100)
      assert.deepEqual(await bytesOf(store, 'x', 0, expect.length), expect)
      for (const [o, n] of [[0, 1], [C - 1, 2], [C, C], [C - 51, C + 2], [3 * C - 7, 200], [expect.length - 1, 5]]) {
        assert.deepEqual(await bytesOf(store, 'x', o, n), expect.subarray(o, o + n), `read ${o}+${n}`)
      }
      const whole = pattern(2 * C, 11)
      await put(store, w('y', { op: 'write', offset: C, data: Buffer.from(whole) }))
      assert.deepEqual(await bytesOf(store, 'y', C, 2 * C), whole)
      assert.ok((await bytesOf(store, 'y', 0, C)).every(x => x === 0))
    }))

    test('payload: writeFull, append, truncate shrink and grow, zero', () => withStore(async store => {
      await put(store, w('f', { op: 'writeFull', data: pattern(2 * C + 10, 1) }))
      await put(store, w('f', { op: 'writeFull', data: b('short') }))
      assert.equal((await store.stat('p', 'f'))?.size, 5, 'writeFull replaces the whole payload')
      assert.equal(str(await store.read('p', 'f', 0, 100)), 'short')
      await put(store, w('f', { op: 'append', data: b('+more') }, { op: 'append', data: b('!') }))
      assert.equal(str(await store.read('p', 'f', 0, 100)), 'short+more!')
      await put(store, w('f', { op: 'writeFull', data: Buffer.alloc(0) }))
      assert.equal((await store.stat('p', 'f'))?.size, 0)

      // Shrink inside a chunk, then grow: the cut bytes must come back as zeros.
      const data = pattern(C + 1000, 3)
      await put(store, w('t', { op: 'writeFull', data: Buffer.from(data) }))
      await put(store, w('t', { op: 'truncate', size: C + 10 }))
      assert.equal((await store.stat('p', 't'))?.size, C + 10)
      await put(store, w('t', { op: 'truncate', size: C + 1000 }))
      const back = await bytesOf(store, 't', 0, C + 1000)
      assert.deepEqual(back.subarray(0, C + 10), data.subarray(0, C + 10))
      assert.ok(back.subarray(C + 10).every(x => x === 0), 'grown range is a hole')
      await put(store, w('t', { op: 'truncate', size: C }))
      await put(store, w('t', { op: 'truncate', size: 3 * C }))
      assert.ok((await bytesOf(store, 't', C, 2 * C)).every(x => x === 0))
      assert.deepEqual(await bytesOf(store, 't', 0, C), data.subarray(0, C))
      await put(store, w('t', { op: 'truncate', size: 0 }, { op: 'truncate', size: 100 }))
      assert.ok((await bytesOf(store, 't', 0, 100)).every(x => x === 0))
      await put(store, w('new', { op: 'truncate', size: 4096 }))
      assert.equal((await store.stat('p', 'new'))?.size, 4096, 'truncate creates an absent object with that size')

      // zero: inside a chunk, across boundaries, whole chunks, past the end; size never changes.
      const z = pattern(4 * C, 5)
      const expect = Buffer.from(z)
      await put(store, w('z', { op: 'writeFull', data: z }))
      for (const [o, n] of [[10, 20], [C - 5, 10], [C + 100, 2 * C], [4 * C - 3, 100], [0, 0]]) {
        await put(store, w('z', { op: 'zero', offset: o, length: n }))
        expect.fill(0, o, Math.min(o + n, expect.length))
        assert.equal((await store.stat('p', 'z'))?.size, 4 * C)
        assert.deepEqual(await bytesOf(store, 'z', 0, 4 * C), expect, `after zero ${o}+${n}`)
      }
      await put(store, w('z', { op: 'zero', offset: 10 * C, length: 10 }))
      assert.equal((await store.stat('p', 'z'))?.size, 4 * C, 'zero past the end does not grow')
      await put(store, w('nz', { op: 'zero', offset: 0, length: 10 }))
      assert.equal(await store.stat('p', 'nz'), null, 'zero does not create an object')
    }))

    test('remove, and remove then recreate in one write', () => withStore(async store => {
      await put(store, w('r', { op: 'write', offset: 0, data: pattern(2 * C, 1) }, { op: 'omapSet', entries: [[b('k'), b('v')]] }, { op: 'setXattr', name: 'x', value: b('1') }))
      const v1 = (await store.stat('p', 'r'))?.version as number
      await put(store, w('r', { op: 'remove' }, { op: 'create', exclusive: true }, { op: 'write', offset: 5, data: b('new') }))
      const st = await store.stat('p', 'r')
      assert.equal(st?.size, 8)
      assert.equal(st?.version, v1 + 1, 'recreated in the same write: the version goes on')
      assert.deepEqual(await bytesOf(store, 'r', 0, 8), Buffer.from([0, 0, 0, 0, 0, 110, 101, 119]), 'old payload is gone')
      assert.deepEqual(await store.omapList('p', 'r', { limit: 10 }), [], 'old omap is gone')
      assert.deepEqual(await store.listXattrs('p', 'r'), [], 'old xattrs are gone')
      await put(store, w('r', { op: 'remove' }))
      assert.equal(await store.stat('p', 'r'), null)
      assert.equal(await store.read('p', 'r', 0, 1), null)
      // Removing an absent object is a no-op, so a replayed removal cannot fail.
      await put(store, w('r', { op: 'remove' }, { op: 'omapClear' }, { op: 'removeXattr', name: 'x' }, { op: 'omapRemove', keys: [b('k')] }))
      assert.equal(await store.stat('p', 'r'), null)
      assert.equal((await store.usage()).objects, 0)
      // Removed in an earlier batch: a new object starts again at version 1.
      await put(store, w('r', { op: 'create', exclusive: true }))
      assert.equal((await store.stat('p', 'r'))?.version, 1)
    }))

    test('omap: set, replace, remove, ranges, prefixes, limits, binary keys', () => withStore(async store => {
      const keys = ['a', 'ab', 'abc', 'abd', 'b', 'ba', 'c']
      await put(store, w('m', { op: 'omapSet', entries: keys.map(k => [b(k), b(k.toUpperCase())]) }))
      const list = async (r: OmapRange, name = 'm'): Promise<string[]> => (await store.omapList('p', name, r)).map(e => Buffer.from(e.key).toString())
      assert.deepEqual(await list({ limit: 100 }), keys)
      assert.deepEqual(await list({ limit: 3 }), ['a', 'ab', 'abc'])
      assert.deepEqual(await list({ limit: 0 }), [])
      assert.deepEqual(await list({ after: b('ab'), limit: 100 }), ['abc', 'abd', 'b', 'ba', 'c'])
      assert.deepEqual(await list({ start: b('ab'), limit: 100 }), ['ab', 'abc', 'abd', 'b', 'ba', 'c'])
      assert.deepEqual(await list({ start: b('ab'), end: b('b'), limit: 100 }), ['ab', 'abc', 'abd'])
      assert.deepEqual(await list({ prefix: b('ab'), limit: 100 }), ['ab', 'abc', 'abd'])
      assert.deepEqual(await list({ prefix: b('ab'), after: b('ab'), limit: 100 }), ['abc', 'abd'])
      assert.deepEqual(await list({ prefix: b('ab'), after: b('a'), limit: 100 }), ['ab', 'abc', 'abd'])
      assert.deepEqual(await list({ prefix: b('ab'), end: b('abd'), limit: 100 }), ['ab', 'abc'])
      assert.deepEqual(await list({ prefix: b('b'), limit: 1 }), ['b'])
      assert.deepEqual(await list({ prefix: b('z'), limit: 100 }), [])
      assert.deepEqual(await list({ start: b('c'), end: b('a'), limit: 100 }), [])
      assert.deepEqual(await list({ after: b('c'), limit: 100 }), [])
      assert.deepEqual(await list({ limit: 10 }, 'missing'), [])

      const got = await store.omapGet('p', 'm', [b('b'), b('zz'), b('a')])
      assert.deepEqual(got.map(e => [Buffer.from(e.key).toString(), Buffer.from(e.value).toString()]), [['b', 'B'], ['a', 'A']])
      assert.deepEqual(await store.omapGet('p', 'missing', [b('a')]), [])
      assert.deepEqual(await store.omapGet('nopool', 'm', [b('a')]), [])

      await put(store, w('m', { op: 'omapSet', entries: [[b('a'), b('new')]] }, { op: 'omapRemove', keys: [b('ab'), b('nothere')] }))
      assert.equal(str((await store.omapGet('p', 'm', [b('a')]))[0].value), 'new')
      await put(store, w('m', { op: 'omapRemoveRange', start: b('abc'), end: b('ba') }))
      assert.deepEqual(await list({ limit: 100 }), ['a', 'ba', 'c'])
      await put(store, w('m', { op: 'omapRemoveRange', start: b('b') }))
      assert.deepEqual(await list({ limit: 100 }), ['a'])
      await put(store, w('m', { op: 'omapClear' }))
      assert.deepEqual(await list({ limit: 100 }), [])
      assert.notEqual(await store.stat('p', 'm'), null, 'an object with an empty omap still exists')

      // Binary keys: 0x00, 0xff, the empty key and empty values; the prefix of all-0xff.
      const bin: Array<[Buffer, Buffer]> = [[Buffer.alloc(0), Buffer.alloc(0)], [Buffer.from([0]), b('z')], [Buffer.from([0xff]), b('f')], [Buffer.from([0xff, 0xff]), b('ff')], [Buffer.from([0xff, 0x00]), b('f0')]]
      await put(store, w('bin', { op: 'omapSet', entries: bin }))
      const hex = async (r: OmapRange): Promise<string[]> => (await store.omapList('p', 'bin', r)).map(e => Buffer.from(e.key).toString('hex'))
      const all = await store.omapList('p', 'bin', { limit: 100 })
      assert.deepEqual(all.map(e => Buffer.from(e.key).toString('hex')), ['', '00', 'ff', 'ff00', 'ffff'])
      assert.equal(all[0].value.length, 0)
      assert.deepEqual(await hex({ prefix: Buffer.from([0xff]), limit: 100 }), ['ff', 'ff00', 'ffff'])
      assert.deepEqual(await hex({ prefix: Buffer.from([0xff, 0xff]), limit: 100 }), ['ffff'])
      assert.deepEqual(await hex({ prefix: Buffer.alloc(0), limit: 2 }), ['', '00'])
      assert.deepEqual(await hex({ after: Buffer.alloc(0), limit: 1 }), ['00'], 'after the empty key')
      // Keys given as plain Uint8Array views into a larger buffer.
      const big = new Uint8Array([9, 9, 0xff, 0x00, 9])
      assert.equal(str((await store.omapGet('p', 'bin', [big.subarray(2, 4)]))[0]?.value ?? null), 'f0')
    }))

    test('packed omap entries set the same keys as pairs, across slabs and next to a large value', () => withStore(async store => {
      const packer = new OmapPacker()
      // Enough entries to spill over the packer's first slab, in two objects.
      const names = Array.from({ length: 40_000 }, (_, i) => `name-${i}`)
      packer.begin()
      for (const n of names) packer.addNamed(n, b(`v${n}`))
      const dir = packer.finish()
      packer.begin()
      for (let i = 0; i < 3000; i++) packer.addU64(0x1_0000_0000 + i, b(String(i)))
      const shard = packer.finish()
      assert.equal(dir.count, names.length)
      assert.equal(shard.count, 3000)
      await put(store,
        w('dir', { op: 'omapSet', entries: dir }),
        w('shard', { op: 'omapSet', entries: shard }, { op: 'omapSet', entries: [[b('big'), pattern(64 * 1024, 9)]] }))
      assert.equal((await store.omapList('p', 'dir', { limit: 100_000 })).length, names.length)
      assert.deepEqual((await store.omapGet('p', 'dir', [b('name-39999')])).map(r => str(r.value)), ['vname-39999'])
      const inodes = await store.omapList('p', 'shard', { limit: 100_000 })
      assert.equal(inodes.length, 3001)
      // u64 keys are big-endian: they sort by number.
      assert.deepEqual(Buffer.from(inodes[0].key), Buffer.from([0, 0, 0, 1, 0, 0, 0, 0]))
      assert.equal(str(inodes[2999].value), '2999')
      assert.equal(inodes[3000].value.length, 64 * 1024)
      assert.deepEqual([...shard].slice(0, 1).map(([k, v]) => [Buffer.from(k).readUInt32BE(4), str(v)]), [[0, '0']], 'iterating gives the pairs')
    }))

    test('xattrs, listing objects and pools', () => withStore(async store => {
      await put(store, w('o', { op: 'setXattr', name: 'user.b', value: b('2') }, { op: 'setXattr', name: 'user.a', value: b('1') }))
      assert.equal(str(await store.getXattr('p', 'o', 'user.a')), '1')
      assert.equal(await store.getXattr('p', 'o', 'user.none'), null)
      assert.equal(await store.getXattr('p', 'none', 'user.a'), null)
      assert.deepEqual((await store.listXattrs('p', 'o')).map(([n, v]) => [n, str(v)]), [['user.a', '1'], ['user.b', '2']], 'in name order')
      await put(store, w('o', { op: 'removeXattr', name: 'user.a' }, { op: 'setXattr', name: 'user.b', value: Buffer.alloc(0) }))
      assert.deepEqual((await store.listXattrs('p', 'o')).map(([n, v]) => [n, str(v)]), [['user.b', '']])
      assert.deepEqual(await store.listXattrs('p', 'none'), [])

      // Past the BMP: UTF-16 puts 😀 (a surrogate pair) before Ａ (U+FF21), UTF-8 bytes after it.
      const names = ['dir.1', 'dir.10', 'dir.2', 'file', 'dis', 'dir', 'é', 'z', '\uff21', '\u{1f600}']
      await store.submit(names.map(n => w(n, { op: 'create', exclusive: false })), { durable: false })
      const sorted = [...names, 'o'].sort((x, y) => Buffer.compare(b(x), b(y)))
      assert.deepEqual(await store.list('p', { limit: 100 }), sorted, 'names in UTF-8 byte order')
      assert.deepEqual(await store.list('p', { limit: 3 }), sorted.slice(0, 3))
      assert.deepEqual(await store.list('p', { limit: 0 }), [])
      assert.deepEqual(await store.list('p', { prefix: 'dir', limit: 100 }), ['dir', 'dir.1', 'dir.10', 'dir.2'])
      assert.deepEqual(await store.list('p', { prefix: 'dir.', limit: 2 }), ['dir.1', 'dir.10'])
      assert.deepEqual(await store.list('p', { prefix: 'dir.', after: 'dir.10', limit: 100 }), ['dir.2'])
      assert.deepEqual(await store.list('p', { prefix: 'dir.', after: 'dis', limit: 100 }), [])
      assert.deepEqual(await store.list('p', { prefix: 'dis', after: 'dir.2', limit: 100 }), ['dis'])
      assert.deepEqual(await store.list('p', { after: 'file', limit: 100 }), ['o', 'z', 'é', '\uff21', '\u{1f600}'])
      assert.deepEqual(await store.list('p', { after: '\uff21', limit: 100 }), ['\u{1f600}'])
      assert.deepEqual(await store.list('p', { prefix: 'q', limit: 100 }), [])
      assert.deepEqual(await store.list('nopool', { limit: 100 }), [])
      assert.deepEqual(await store.list('p', { prefix: 'é', limit: 10 }), ['é'])

      await store.createPool('p')
      await store.createPool('b-pool')
      assert.deepEqual(await store.listPools(), ['b-pool', 'p'], 'createPool of an existing pool changes nothing; pools in name order')
      await store.submit([{ pool: 'b-pool', name: 'o', ops: [{ op: 'create', exclusive: true }] }], { durable: false })
      assert.deepEqual(await store.list('b-pool', { limit: 10 }), ['o'], 'pools are separate name spaces')
      await assert.rejects(store.createPool(''), (e: StoreError) => e.errno === 'EINVAL')
    }))

    test('versions and mtimes: one bump per write, guards alone change nothing', () => withStore(async store => {
      const t0 = Date.now()
      await put(store, w('v', { op: 'create', exclusive: true }, { op: 'write', offset: 0, data: b('x') }, { op: 'omapSet', entries: [[b('k'), b('v')]] }))
      const s1 = await store.stat('p', 'v')
      assert.equal(s1?.version, 1, 'a new object starts at version 1, once per write')
      assert.ok((s1?.mtimeMs ?? 0) >= t0 - 5 && (s1?.mtimeMs ?? 0) <= Date.now() + 5)
      await put(store, w('v', { op: 'append', data: b('y') }), w('v', { op: 'append', data: b('z') }))
      assert.equal((await store.stat('p', 'v'))?.version, 3, 'two writes in one batch: two bumps')
      await put(store, w('v', { op: 'assertExists' }, { op: 'assertVersion', version: 3 }))
      assert.equal((await store.stat('p', 'v'))?.version, 3, 'guards only: no bump')
      await put(store, w('v', { op: 'assertVersion', version: 3 }, { op: 'create', exclusive: false }))
      assert.equal((await store.stat('p', 'v'))?.version, 4)
      // Guards see the version the write began with, even after its own ops.
      await put(store, w('v', { op: 'append', data: b('!') }, { op: 'assertVersion', version: 4 }))
      assert.equal((await store.stat('p', 'v'))?.version, 5)
      assert.equal(str(await store.read('p', 'v', 0, 10)), 'xyz!')
    }))

    test('a failing guard fails its batch alone, and nothing of that batch applies', () => withStore(async store => {
      await put(store, w('a', { op: 'create', exclusive: true }, { op: 'omapSet', entries: [[b('k'), b('1')]] }))
      const cases: Array<[ObjectWrite['ops'], string]> = [
        [[{ op: 'create', exclusive: true }], 'EEXIST'],
        [[{ op: 'assertVersion', version: 99 }], 'ECANCELED'],
        [[{ op: 'omapSet', entries: [[b('k'), b('bad')]] }, { op: 'assertVersion', version: 99 }], 'ECANCELED']
      ]
      for (const [ops, errno] of cases) {
        // The failing write comes after writes to other objects in the same batch: they roll back too.
        const p = store.submit([
          w('other', { op: 'write', offset: 0, data: b('should not exist') }),
          w('a', { op: 'write', offset: 0, data: b('nor this') }),
          w('a', ...ops)
        ], { durable: false })
        await assert.rejects(p, (e: StoreError) => e.errno === errno, errno)
        assert.equal(await store.stat('p', 'other'), null)
        assert.equal((await store.stat('p', 'a'))?.size, 0)
        assert.equal((await store.stat('p', 'a'))?.version, 1)
        assert.equal(str((await store.omapGet('p', 'a', [b('k')]))[0].value), '1')
      }
      await assert.rejects(store.submit([w('nothere', { op: 'assertExists' })], { durable: false }), (e: StoreError) => e.errno === 'ENOENT' && /p\/nothere/.test(e.message))
      await assert.rejects(store.submit([w('nothere', { op: 'assertVersion', version: 0 })], { durable: false }), (e: StoreError) => e.errno === 'ENOENT')
      // A guard after a remove in the same write sees the removal.
      await assert.rejects(store.submit([w('a', { op: 'remove' }, { op: 'assertExists' })], { durable: false }), (e: StoreError) => e.errno === 'ENOENT')
      assert.notEqual(await store.stat('p', 'a'), null)
      assert.equal((await store.usage()).objects, 1, 'the object count is not moved by failed batches')
      // A later write of the same batch sees what an earlier one did to the object.
      await put(store, w('chain', { op: 'create', exclusive: true }), w('chain', { op: 'assertVersion', version: 1 }, { op: 'append', data: b('2') }))
      assert.equal((await store.stat('p', 'chain'))?.version, 2)
    }))

    test('concurrent batches: failures stay alone, the rest commit in submission order', () => withStore(async store => {
      await put(store, w('c', { op: 'create', exclusive: true }))
      const n = 2000
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) =>
        // Every 10th batch fails its guard; each batch appends its number.
        store.submit([w('c', { op: 'append', data: b(`${i},`) }), ...(i % 10 === 9 ? [w('c', { op: 'assertVersion', version: -1 + 1e9 })] : [])], { durable: i % 500 === 0 })
      ))
      const ok = results.filter(r => r.status === 'fulfilled').length
      assert.equal(ok, n - n / 10)
      for (const [i, r] of results.entries()) {
        if (i % 10 === 9) assert.equal(r.status === 'rejected' && (r.reason as StoreError).errno, 'ECANCELED')
      }
      const expected = Array.from({ length: n }, (_, i) => i).filter(i => i % 10 !== 9).map(i => `${i},`).join('')
      assert.equal(str(await store.read('p', 'c', 0, 1e6)), expected, 'committed in submission order')
      const seqs = results.filter(r => r.status === 'fulfilled').map(r => (r as PromiseFulfilledResult<{ seq: number }>).value.seq)
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'commit sequence numbers never go back')
      assert.equal((await store.stat('p', 'c'))?.version, 1 + ok)
    }))

    test('durable batches and sync resolve with growing sequence numbers', () => withStore(async store => {
      const r1 = await store.submit([w('d', { op: 'writeFull', data: b('one') })], { durable: true })
      const r2 = await store.submit([w('d', { op: 'append', data: b('two') })], { durable: false })
      assert.ok(r2.seq > r1.seq)
      assert.equal((await store.sync()).seq, r2.seq, 'sync covers what was submitted')
      assert.equal((await store.sync()).seq, r2.seq, 'a sync with nothing new')
      assert.equal(str(await store.read('p', 'd', 0, 100)), 'onetwo')
    }))

    test('malformed requests fail with EINVAL or EFBIG and apply nothing', () => withStore(async store => {
      const max = backend.maxObjectBytes
      const bad: Array<[unknown, string]> = [
        [[w('a', { op: 'write', offset: -1, data: b('x') })], 'EINVAL'],
        [[w('a', { op: 'write', offset: 1.5, data: b('x') })], 'EINVAL'],
        [[w('a', { op: 'write', offset: 0, data: 'x' as unknown as Uint8Array })], 'EINVAL'],
        [[w('a', { op: 'frobnicate' } as unknown as ObjectWrite['ops'][0])], 'EINVAL'],
        [[w('a', { op: 'omapSet', entries: [[b('k')]] } as unknown as ObjectWrite['ops'][0])], 'EINVAL'],
        [[w('a', { op: 'setXattr', name: '', value: b('x') })], 'EINVAL'],
        [[{ pool: 'p', name: '', ops: [] }], 'EINVAL'],
        [[{ pool: 'p', name: 'a' }], 'EINVAL'],
        [[w('a', { op: 'truncate', size: max + 1 })], 'EFBIG'],
        [[w('a', { op: 'write', offset: max, data: b('x') })], 'EFBIG'],
        ['not a batch', 'EINVAL']
      ]
      for (const [batch, errno] of bad) {
        // A good write first in the same batch: it must not apply either.
        const all = Array.isArray(batch) ? [w('good', { op: 'create', exclusive: false }), ...batch] : batch
        await assert.rejects(store.submit(all as ObjectWrite[], { durable: false }), (e: StoreError) => e.errno === errno, JSON.stringify(batch))
      }
      assert.equal(await store.stat('p', 'good'), null)
      await assert.rejects(store.read('p', 'a', -1, 1), (e: StoreError) => e.errno === 'EINVAL')
      await assert.rejects(store.read('p', 'a', 0, 0.5), (e: StoreError) => e.errno === 'EINVAL')
      await assert.rejects(store.omapList('p', 'a', { limit: -1 }), (e: StoreError) => e.errno === 'EINVAL')
      await assert.rejects(store.list('p', { limit: -1 }), (e: StoreError) => e.errno === 'EINVAL')
      await assert.rejects(store.submit([{ pool: 'nopool', name: 'a', ops: [{ op: 'create', exclusive: false }] }], { durable: false }), (e: StoreError) => e.errno === 'ENOENT' && /pool nopool/.test(e.message))
      // A write right at the largest size is fine; one byte more is EFBIG.
      await put(store, w('big', { op: 'truncate', size: max }))
      await assert.rejects(store.submit([w('big', { op: 'append', data: b('x') })], { durable: false }), (e: StoreError) => e.errno === 'EFBIG')
      assert.equal((await store.read('p', 'big', max - 2, 10))?.length, 2)
      assert.ok((await bytesOf(store, 'big', max - 2, 10)).every(x => x === 0))
      assert.equal((await store.read('p', 'big', max + C, 10))?.length, 0)
    }))

    test('close finishes what was submitted; a closed store refuses work with EIO', async () => {
      const { store, done } = await backend.open()
      try {
        const pending = Array.from({ length: 300 }, (_, i) => store.submit([w(`o${i}`, { op: 'writeFull', data: pattern(5000, i) })], { durable: false }))
        await store.close()
        await Promise.all(pending)
        await assert.rejects(store.submit([w('x', { op: 'create', exclusive: false })], { durable: false }), (e: StoreError) => e.errno === 'EIO' && /closed/.test(e.message))
        await assert.rejects(store.stat('p', 'o1'), (e: StoreError) => e.errno === 'EIO')
        await assert.rejects(store.read('p', 'o1', 0, 1), (e: StoreError) => e.errno === 'EIO')
        await store.close()
      } finally { await done() }
    })

    test('synchronous local reads agree with the interface', { skip: false }, () => withStore(async store => {
      if (!hasLocalReads(store)) return
      await put(store, w('s', { op: 'write', offset: 3, data: b('abc') }, { op: 'omapSet', entries: [[b('k1'), b('1')], [b('k2'), b('2')]] }))
      assert.deepEqual(store.statSync('p', 's'), await store.stat('p', 's'))
      assert.deepEqual(store.readSync('p', 's', 0, 10), await store.read('p', 's', 0, 10))
      assert.deepEqual(store.omapGetSync('p', 's', [b('k2')]), await store.omapGet('p', 's', [b('k2')]))
      assert.deepEqual(store.omapListSync('p', 's', { after: b('k1'), limit: 5 }), await store.omapList('p', 's', { after: b('k1'), limit: 5 }))
      assert.deepEqual(store.listSync('p', { limit: 5 }), await store.list('p', { limit: 5 }))
      assert.throws(() => store.readSync('p', 's', -1, 1), (e: StoreError) => e.errno === 'EINVAL')
    }))

    modelTest(backend)
  })
}
