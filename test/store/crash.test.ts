// Durability across kill -9: whatever a child process saw acknowledged with
// durable: true is there after it dies, batches are all-or-nothing, and what
// survives is a prefix of the submission order.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openStore } from '../../src/store'
import { rmDir, spawnChild, tmpDir } from './helpers'

test('acknowledged durable batches survive kill -9 of the submitting process', async () => {
  for (const killAfter of [1, 37, 150]) {
    const dir = tmpDir('crash')
    try {
      let acked = -1
      let killed = false
      const c = spawnChild(['durable', dir, '100000'], (line, child) => {
        const m = /^acked (\d+)$/.exec(line)
        if (m === null) return
        acked = Number(m[1])
        if (acked >= killAfter && !killed) { killed = true; child.kill('SIGKILL') }
      })
      const code = await c.exited
      assert.equal(killed, true, `child exited on its own (${code}): ${c.stderr()}`)

      const store = await openStore(dir)
      const index = store.omapListSync('p', 'index', { limit: 1e6 }).map(e => Number(Buffer.from(e.value).toString()))
      assert.ok(index.length >= acked + 1, `acknowledged ${acked + 1}, found ${index.length}`)
      assert.deepEqual(index, Array.from({ length: index.length }, (_, i) => i), 'survivors are a prefix')
      for (let i = 0; i < index.length + 5; i++) {
        const data = store.readSync('p', `obj${i}`, 0, 1000)
        if (i < index.length) assert.deepEqual(Buffer.from(data as Uint8Array), Buffer.alloc(100, i & 0xff), `obj${i}`)
        else assert.equal(data, null, `obj${i} exists without its index entry`)
      }
      await store.close()
    } finally { rmDir(dir) }
  }
})
