// The in-memory backend: the same semantics as SQLite for what the MDS uses,
// and an MDS runs on it.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryStore } from '../../src/store/memory'
import { openMds } from '../../src/mds'
import { ROOT_INO, S_IFREG } from '../../src/common/types'

const b = (s: string): Buffer => Buffer.from(s)

test('payloads, omap ranges, guards and atomic batches', async () => {
  const s = new MemoryStore()
  await s.submit([{ pool: 'p', name: 'o', ops: [{ op: 'write', offset: 4, data: b('abc') }, { op: 'omapSet', entries: [[b('b'), b('2')], [b('a'), b('1')], [b('c'), b('3')]] }] }], { durable: false })
  assert.deepEqual(Buffer.from(s.readSync('p', 'o', 0, 10) as Uint8Array), Buffer.from([0, 0, 0, 0, 97, 98, 99]))
  assert.deepEqual(s.omapListSync('p', 'o', { after: b('a'), limit: 10 }).map(e => String(e.key)), ['b', 'c'])
  assert.deepEqual(s.omapListSync('p', 'o', { start: b('b'), end: b('c'), limit: 10 }).map(e => String(e.key)), ['b'])
  assert.equal(s.statSync('p', 'o')?.version, 1)
  await assert.rejects(s.submit([
    { pool: 'p', name: 'o', ops: [{ op: 'omapRemove', keys: [b('a')] }] },
    { pool: 'p', name: 'x', ops: [{ op: 'assertExists' }] }
  ], { durable: false }), (err: { errno?: string }) => err.errno === 'ENOENT')
  assert.equal(s.omapGetSync('p', 'o', [b('a')]).length, 1, 'nothing of the failed batch applied')
  await s.submit([{ pool: 'p', name: 'o', ops: [{ op: 'remove' }] }, { pool: 'p', name: 'gone', ops: [{ op: 'remove' }] }], { durable: false })
  assert.equal(s.statSync('p', 'o'), null)
  assert.deepEqual(s.listSync('p', { limit: 10 }), [])
})

test('an MDS formats, works and replays on a memory store', async () => {
  const store = new MemoryStore()
  const mds = await openMds(store, { mds: { cache: { inodes: 16, dentries: 16 }, trimDirtyEntries: 50, trimIntervalMs: 60_000 } })
  const caller = { uid: 0, gid: 0, pid: 1 }
  const d = mds.mkdir(ROOT_INO, 'd', 0o755, caller)
  for (let i = 0; i < 200; i++) mds.mknod(d.ino, `f${i}`, S_IFREG | 0o644, 0, caller)
  await mds.sync(false)
  // A close trims: the store alone holds the namespace afterwards.
  await mds.close()
  const again = await openMds(store, { readOnly: true })
  assert.equal((await again.readdir(d.ino, null, 1000)).length, 200)
  await again.close()
})
