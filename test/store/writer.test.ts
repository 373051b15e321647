// The SQLite backend's writer thread: group commit, the thread crossing
// (payloads moved, not copied), what survives a reopen, the writer thread
// dying, checkpoints. What every backend must do is in suite.ts.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openStore, ObjectWrite, StoreError } from '../../src/store'
import { b, freshStore, killWriter, pattern, rmDir, str, tmpDir } from './helpers'

function w (name: string, ...ops: ObjectWrite['ops']): ObjectWrite {
  return { pool: 'p', name, ops }
}

test('concurrent batches commit in groups: a few transactions for thousands of batches', async () => {
  const { store, done } = await freshStore('batch-group')
  try {
    await store.submit([w('c', { op: 'create', exclusive: true })], { durable: false })
    const before = store.stats()
    const n = 2000
    const results = await Promise.allSettled(Array.from({ length: n }, (_, i) =>
      // Every 10th batch fails its guard: it is rolled back alone, inside the group.
      store.submit([w('c', { op: 'append', data: b(`${i},`) }), ...(i % 10 === 9 ? [w('c', { op: 'assertVersion', version: -1 + 1e9 })] : [])], { durable: i % 500 === 0 })
    ))
    const ok = results.filter(r => r.status === 'fulfilled').length
    assert.equal(ok, n - n / 10)
    const after = store.stats()
    assert.equal(after.batches - before.batches, ok)
    assert.equal(after.failedBatches - before.failedBatches, n / 10)
    const commits = after.commits - before.commits
    assert.ok(commits < n / 10, `group commit: ${n} batches took ${commits} transactions`)
    assert.equal(store.statSync('p', 'c')?.version, 1 + ok)
  } finally { await done() }
})

test('durable batches and sync resolve; seq persists across reopen', async () => {
  const dir = tmpDir('batch-durable')
  try {
    const store = await openStore(dir, { create: true })
    await store.createPool('p')
    await store.createPool('p')
    const r1 = await store.submit([w('d', { op: 'writeFull', data: b('one') })], { durable: true })
    const r2 = await store.submit([w('d', { op: 'append', data: b('two') })], { durable: false })
    assert.ok(r2.seq > r1.seq)
    const s = await store.sync()
    assert.equal(s.seq, r2.seq)
    assert.equal((await store.sync()).seq, r2.seq, 'a sync with nothing new is immediate')
    await store.close()
    await store.close()
    const again = await openStore(dir)
    assert.equal(str(again.readSync('p', 'd', 0, 100)), 'onetwo')
    assert.equal(again.stats().seq, r2.seq)
    const r3 = await again.submit([w('d', { op: 'append', data: b('3') })], { durable: false })
    assert.equal(r3.seq, r2.seq + 1)
    await again.close()
  } finally { rmDir(dir) }
})

test('large payloads are moved to the writer; small and shared ones are copied', async () => {
  const { store, done } = await freshStore('batch-transfer')
  try {
    const big = pattern(256 * 1024, 1)
    const expect = Buffer.from(big)
    await store.submit([w('big', { op: 'writeFull', data: big })], { durable: false })
    assert.equal(big.length, 0, 'the whole-buffer payload was transferred (detached here)')
    assert.deepEqual(Buffer.from(store.readSync('p', 'big', 0, expect.length) as Uint8Array), expect)

    // A view into a larger buffer is copied and stays usable.
    const backing = pattern(512 * 1024, 2)
    const view = backing.subarray(1000, 1000 + 200 * 1024)
    await store.submit([w('view', { op: 'writeFull', data: view })], { durable: false })
    assert.equal(view.length, 200 * 1024)
    assert.deepEqual(Buffer.from(store.readSync('p', 'view', 0, view.length) as Uint8Array), view)

    // Small pooled Buffers: copied, never their pool.
    const small = Buffer.from('tiny')
    await store.submit([w('small', { op: 'writeFull', data: small }, { op: 'omapSet', entries: [[small, small]] })], { durable: false })
    assert.equal(small.toString(), 'tiny')

    // The same large buffer twice in one batch, and wasm memory (cannot be detached): both work.
    const twice = pattern(64 * 1024, 3)
    const twiceCopy = Buffer.from(twice)
    await store.submit([w('twice', { op: 'write', offset: 0, data: twice }, { op: 'write', offset: twice.length, data: twice })], { durable: false })
    assert.deepEqual(Buffer.from(store.readSync('p', 'twice', 0, 2 * 65536) as Uint8Array), Buffer.concat([twiceCopy, twiceCopy]))
    // lib ES2022 has no WebAssembly types; the runtime has it.
    const wasmApi = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly
    const mem = new wasmApi.Memory({ initial: 1 })
    const wasm = new Uint8Array(mem.buffer)
    wasm.fill(7)
    await store.submit([w('wasm', { op: 'writeFull', data: wasm })], { durable: false })
    assert.equal(wasm.length, 65536, 'wasm memory is not detached')
    assert.ok(Buffer.from(store.readSync('p', 'wasm', 0, 65536) as Uint8Array).every(x => x === 7))
  } finally { await done() }

  // With transferPayloads: false nothing is detached.
  const keep = await freshStore('batch-keep', { transferPayloads: false })
  try {
    const big = pattern(256 * 1024, 4)
    await keep.store.submit([w('big', { op: 'writeFull', data: big })], { durable: false })
    assert.equal(big.length, 256 * 1024)
    assert.deepEqual(Buffer.from(keep.store.readSync('p', 'big', 0, big.length) as Uint8Array), big)
  } finally { await keep.done() }
})

test('close waits for every submitted batch: a reopen finds them all', async () => {
  const dir = tmpDir('batch-close')
  try {
    const store = await openStore(dir, { create: true })
    await store.createPool('p')
    const pending = Array.from({ length: 300 }, (_, i) => store.submit([w(`o${i}`, { op: 'writeFull', data: pattern(5000, i) })], { durable: false }))
    await store.close()
    await Promise.all(pending)
    await assert.rejects(store.submit([w('x', { op: 'create', exclusive: false })], { durable: false }), (e: StoreError) => e.errno === 'EIO' && /closed/.test(e.message))
    assert.throws(() => store.statSync('p', 'o1'), (e: StoreError) => e.errno === 'EIO')
    const again = await openStore(dir)
    assert.equal((await again.usage()).objects, 300)
    assert.deepEqual(Buffer.from(again.readSync('p', 'o299', 0, 5000) as Uint8Array), pattern(5000, 299))
    await again.close()
  } finally { rmDir(dir) }
})

test('a writer thread that dies rejects what is pending with EIO and a clear message', async () => {
  for (const [how, why] of [['terminated', /writer thread exited \(code 1\)/], ['threw', /writer thread failed: /]] as const) {
    const dir = tmpDir('batch-crash')
    const events: string[] = []
    try {
      const store = await openStore(dir, { create: true, onHealth: e => events.push(e.state) })
      await store.createPool('p')
      await store.submit([w('kept', { op: 'writeFull', data: b('acknowledged') })], { durable: false })
      killWriter(store, how)
      const p = store.submit([w('lost', { op: 'create', exclusive: false })], { durable: false })
      await assert.rejects(p, (e: StoreError) => e.errno === 'EIO' && why.test(e.message) && /not yet acknowledged may not have been applied/.test(e.message), how)
      await assert.rejects(store.submit([w('later', { op: 'create', exclusive: false })], { durable: false }), (e: StoreError) => e.errno === 'EIO')
      await assert.rejects(store.sync(), (e: StoreError) => e.errno === 'EIO')
      assert.deepEqual(events, ['failed'])
      assert.equal(store.health(), 'failed')
      assert.equal(str(store.readSync('p', 'kept', 0, 100)), 'acknowledged', 'reads still work')
      await store.close()
      const again = await openStore(dir)
      assert.equal(str(again.readSync('p', 'kept', 0, 100)), 'acknowledged')
      assert.equal(again.statSync('p', 'lost'), null)
      await again.close()
    } finally { rmDir(dir) }
  }
})

test('checkpoints keep the WAL bounded', async () => {
  const { store, dir, done } = await freshStore('batch-ckpt', { checkpointWalBytes: 1024 * 1024, idleCheckpointMs: 50 })
  try {
    for (let i = 0; i < 20; i++) await store.submit([w(`o${i}`, { op: 'writeFull', data: pattern(256 * 1024, i) })], { durable: false })
    assert.ok(store.stats().checkpoints >= 3, `checkpoints: ${store.stats().checkpoints}`)
    const u = await store.usage()
    assert.ok(u.bytesUsed >= 20 * 256 * 1024 && u.bytesUsed < 40 * 1024 * 1024, `bytesUsed ${u.bytesUsed}`)
    assert.ok(u.bytesTotal > 0 && u.bytesFree > 0 && u.objects === 20)
    const before = store.stats().checkpoints
    await store.submit([w('idle', { op: 'create', exclusive: false })], { durable: false })
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.ok(store.stats().checkpoints > before, 'an idle writer checkpoints')
    assert.ok(dir.length > 0)
  } finally { await done() }
})
