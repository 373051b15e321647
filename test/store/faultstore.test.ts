// The test-only fault wrapper (test/helpers/faultstore.ts) over every
// backend: a crash at the nth write, failed commits that keep the contract's
// ordering rule, and delayed commits that keep submission order.

import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ObjectWrite, StoreError } from '../../src/store'
import { FaultStore } from '../helpers/faultstore'
import { BACKENDS } from './backends'
import { b, str } from './helpers'

function put (name: string, data: string): ObjectWrite[] {
  return [{ pool: 'p', name, ops: [{ op: 'writeFull', data: b(data) }] }]
}

for (const backend of BACKENDS) {
  const withFaults = async (fn: (s: FaultStore) => Promise<void>): Promise<void> => {
    const { store, done } = await backend.open()
    try { await fn(new FaultStore(store)) } finally { await done() }
  }

  describe(`fault store over ${backend.name}`, () => {
    test('a crash at the 3rd write: acknowledged writes stay, the rest is refused with EIO', () => withFaults(async s => {
      s.crashAtWrite(3)
      await s.submit(put('one', '1'), { durable: false })
      await s.submit(put('two', '2'), { durable: true })
      const r = await Promise.allSettled([s.submit(put('three', '3'), { durable: false }), s.submit(put('four', '4'), { durable: false })])
      for (const x of r) assert.ok(x.status === 'rejected' && (x.reason as StoreError).errno === 'EIO' && /writer died/.test((x.reason as Error).message))
      await assert.rejects(s.sync(), (e: StoreError) => e.errno === 'EIO')
      await assert.rejects(s.createPool('q'), (e: StoreError) => e.errno === 'EIO')
      assert.equal(str(await s.read('p', 'two', 0, 10)), '2', 'reads still work')
      assert.equal(await s.stat('p', 'three'), null)
      assert.equal(await s.stat('p', 'four'), null)
      assert.equal(s.writes, 4)
    }))

    test('a crash that loses the acknowledgement: the batch applied, the caller got EIO', () => withFaults(async s => {
      s.crashAtWrite(1, { applied: true })
      await assert.rejects(s.submit(put('maybe', 'm'), { durable: false }), (e: StoreError) => e.errno === 'EIO')
      assert.equal(str(await s.read('p', 'maybe', 0, 10)), 'm')
      await assert.rejects(s.submit(put('after', 'a'), { durable: false }), (e: StoreError) => e.errno === 'EIO')
      assert.equal(await s.stat('p', 'after'), null)
    }))

    test('failed commits apply nothing; batches sent before the failure was delivered fail too; later ones commit', () => withFaults(async s => {
      await s.submit(put('before', 'kept'), { durable: false })
      s.failCommits(1, 'ENOSPC')
      const r = await Promise.allSettled([s.submit(put('a', 'a'), { durable: false }), s.submit(put('b', 'b'), { durable: false }), s.sync()])
      assert.deepEqual(r.map(x => x.status === 'rejected' && (x.reason as StoreError).errno), ['ENOSPC', 'ENOSPC', 'ENOSPC'])
      assert.match(((r[0] as PromiseRejectedResult).reason as Error).message, /the batch was not applied$/)
      assert.match(((r[1] as PromiseRejectedResult).reason as Error).message, /not applied because an earlier batch failed$/)
      assert.equal(await s.stat('p', 'a'), null)
      assert.equal(await s.stat('p', 'b'), null)
      await s.submit(put('c', 'c'), { durable: true })
      s.failCommits(2, 'EIO', 'I/O error while committing')
      for (const n of ['d', 'e']) await assert.rejects(s.submit(put(n, n), { durable: false }), (e: StoreError) => e.errno === 'EIO' && /I\/O error while committing/.test(e.message))
      await s.submit(put('f', 'f'), { durable: false })
      assert.deepEqual(await s.list('p', { limit: 10 }), ['before', 'c', 'f'])
    }))

    test('delayed commits arrive late, in submission order; a sync waits for them', () => withFaults(async s => {
      await s.submit(put('o', ''), { durable: false })
      s.delayCommits(60)
      const t0 = Date.now()
      const ps = Array.from({ length: 5 }, (_, i) => s.submit([{ pool: 'p', name: 'o', ops: [{ op: 'assertVersion', version: i + 1 }, { op: 'append', data: b(String(i)) }] }], { durable: false }))
      assert.equal((await s.stat('p', 'o'))?.version, 1, 'nothing has arrived yet')
      const synced = s.sync()
      await Promise.all(ps)
      assert.ok(Date.now() - t0 >= 55, `took ${Date.now() - t0} ms`)
      await synced
      assert.equal(str(await s.read('p', 'o', 0, 10)), '01234')
      s.delayCommits(0)
      await s.submit(put('now', 'n'), { durable: false })
      assert.equal(str(await s.read('p', 'now', 0, 10)), 'n')
    }))
  })
}
