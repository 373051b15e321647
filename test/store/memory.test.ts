// The in-memory backend: the store suite, and an MDS that formats, works and
// replays on it (a decoupled client runs the MDS's code on one).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryStore } from '../../src/store'
import { openMds } from '../../src/mds'
import { ROOT_INO, S_IFREG } from '../../src/common/types'
import { memoryBackend } from './backends'
import { storeSuite } from './suite'

storeSuite(memoryBackend)

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

test('a truncate to many GiB costs no memory: payloads are sparse', async () => {
  const store = new MemoryStore()
  await store.createPool('p')
  const big = 40 * 2 ** 30
  await store.submit([{ pool: 'p', name: 'o', ops: [{ op: 'truncate', size: big }, { op: 'write', offset: big - 3, data: Buffer.from('end') }] }], { durable: false })
  assert.ok((await store.usage()).bytesUsed <= 64 * 1024, 'one chunk holds the written bytes')
  assert.equal(Buffer.from(await store.read('p', 'o', big - 5, 10) as Uint8Array).toString('latin1'), '\u0000\u0000end')
})
