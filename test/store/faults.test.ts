// Commit failures injected in the writer thread: the I/O error path and the
// full-disk retry policy, deterministically (space.test.ts does it for real).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ObjectWrite, StoreError, StoreHealth } from '../../src/store'
import { b, freshStore, str } from './helpers'

function put (name: string, data: string): ObjectWrite[] {
  return [{ pool: 'p', name, ops: [{ op: 'writeFull', data: b(data) }] }]
}

test('an I/O error fails the group and what is queued behind it with EIO; later batches commit', async () => {
  const health: StoreHealth[] = []
  const { store, done } = await freshStore('fault-io', { onHealth: e => health.push(e.state) })
  try {
    await store.submit(put('before', 'kept'), { durable: false })
    store.injectCommitFaultForTest('SQLITE_IOERR_WRITE', 1)
    const r = await Promise.allSettled(['a', 'b', 'c'].map(n => store.submit(put(n, n), { durable: false })))
    for (const x of r) {
      assert.equal(x.status, 'rejected')
      const e = (x as PromiseRejectedResult).reason as StoreError
      assert.equal(e.errno, 'EIO')
      assert.match(e.message, /^store .*: I\/O error while committing \(injected SQLITE_IOERR_WRITE\)/)
    }
    for (const n of ['a', 'b', 'c']) assert.equal(store.statSync('p', n), null, `${n} did not apply`)
    await store.submit(put('after', 'fine'), { durable: true })
    assert.equal(str(store.readSync('p', 'after', 0, 10)), 'fine')
    assert.equal(str(store.readSync('p', 'before', 0, 10)), 'kept')
    assert.deepEqual(health, ['ioerror', 'ok'])
    assert.equal(store.health(), 'ok')
  } finally { await done() }
})

test('out of space for a moment: the commit is retried and goes through in order', async () => {
  const health: StoreHealth[] = []
  const { store, done } = await freshStore('fault-full-retry', { fullRetryMs: 5000, onHealth: e => health.push(e.state) })
  try {
    store.injectCommitFaultForTest('SQLITE_FULL', 3)
    const first = store.submit(put('a', '1'), { durable: true })
    // Submitted while the first is being retried: it must not commit ahead of it.
    await new Promise(resolve => setTimeout(resolve, 5))
    const second = store.submit([{ pool: 'p', name: 'a', ops: [{ op: 'assertVersion', version: 1 }, { op: 'append', data: b('2') }] }], { durable: false })
    await first
    await second
    assert.equal(str(store.readSync('p', 'a', 0, 10)), '12')
    assert.deepEqual(health, ['full', 'ok'])
  } finally { await done() }
})

test('still full after the retry time: ENOSPC for the group and its followers, then fail fast until space is back', async () => {
  const health: StoreHealth[] = []
  const { store, done } = await freshStore('fault-full', { fullRetryMs: 200, onHealth: e => health.push(e.state) })
  try {
    await store.submit(put('before', 'kept'), { durable: false })
    store.injectCommitFaultForTest('SQLITE_FULL', 1e9)
    const t0 = Date.now()
    const a = store.submit(put('a', 'a'), { durable: false })
    await new Promise(resolve => setTimeout(resolve, 50))
    const b2 = store.submit(put('b', 'b'), { durable: false })
    const r = await Promise.allSettled([a, b2])
    assert.ok(Date.now() - t0 >= 150, 'retried for about fullRetryMs first')
    for (const x of r) {
      const e = (x as PromiseRejectedResult).reason as StoreError
      assert.equal(e.errno, 'ENOSPC')
      assert.match(e.message, /^store .*: no space left on device \(\d+ bytes free\); the batch was not applied$/)
    }
    assert.equal(store.health(), 'full')
    const t1 = Date.now()
    const c = store.submit(put('c', 'c'), { durable: false })
    const synced = store.sync()
    await assert.rejects(c, (e: StoreError) => e.errno === 'ENOSPC')
    assert.ok(Date.now() - t1 < 150, 'fails fast while still full')
    await assert.rejects(synced, (e: StoreError) => e.errno === 'ENOSPC', 'a sync sent behind a lost batch fails too')
    // One sent after the failure was known covers only what did commit.
    await store.sync()
    store.injectCommitFaultForTest('SQLITE_FULL', 0)
    await store.submit(put('d', 'd'), { durable: true })
    for (const n of ['a', 'b', 'c']) assert.equal(store.statSync('p', n), null)
    assert.equal(str(store.readSync('p', 'd', 0, 10)), 'd')
    assert.equal(str(store.readSync('p', 'before', 0, 10)), 'kept')
    assert.deepEqual(health, ['full', 'ok'])
  } finally { await done() }
})
