// Persistence: maps come back at their latest epoch after closing and
// reopening the store, and after kill -9 of a process whose proposals had
// resolved; older epochs stay readable for the kept history and no longer.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import { openStore } from '../../src/store'
import { MON_POOL, openMonitor } from '../../src/mon'
import { u64Key } from '../../src/common/codec'
import { cli, freshMonitor, spawnChild, tmpDir } from './helpers'

test('maps, values and commit times survive closing and reopening the store', async () => {
  const f = await freshMonitor('reopen')
  try {
    for (let i = 1; i <= 3; i++) await f.mon.propose('policymap', () => ({ '/a': 'weak', n: i }), cli)
    await f.mon.propose('balancermap', () => ['greedy', 1.5, true, null, { nested: ['x'] }], cli)
    const before = [f.mon.get('policymap'), f.mon.get('balancermap')]
    await f.reopen()
    assert.deepEqual(f.mon.maps(), ['balancermap', 'policymap'])
    assert.deepEqual([f.mon.get('policymap'), f.mon.get('balancermap')], before)
    assert.ok(Object.isFrozen(f.mon.get('policymap').value))
    // Epochs continue where they were.
    assert.equal((await f.mon.propose('policymap', v => ({ ...(v as object), n: 4 }), cli)).epoch, 4)
    const subscribed: number[] = []
    f.mon.subscribe('policymap', 0, s => subscribed.push(s.epoch))
    assert.deepEqual(subscribed, [4])
  } finally { await f.done() }
})

test('older epochs are readable for historyEpochs epochs, then trimmed from the store', async () => {
  const f = await freshMonitor('history', { historyEpochs: 5 })
  try {
    for (let i = 1; i <= 12; i++) await f.mon.propose('m', () => ({ i }), cli)
    for (let e = 1; e <= 12; e++) {
      const s = await f.mon.getEpoch('m', e)
      if (e <= 7) assert.equal(s, null, `epoch ${e} was trimmed`)
      else assert.deepEqual([s?.epoch, s?.value], [e, { i: e }], `epoch ${e} is kept`)
    }
    assert.equal(await f.mon.getEpoch('m', 13), null)
    assert.equal(await f.mon.getEpoch('m', 0), null)
    assert.equal(await f.mon.getEpoch('never', 1), null)
    const stored = f.store.omapListSync(MON_POOL, 'map.m', { limit: 100 })
    assert.deepEqual(stored.map(e => Buffer.from(e.key)), [8, 9, 10, 11, 12].map(u64Key), 'the store holds exactly the kept epochs')
    await f.reopen()
    assert.deepEqual((await f.mon.getEpoch('m', 9))?.value, { i: 9 }, 'history survives a restart')
  } finally { await f.done() }
})

test('the default history keeps the last 500 epochs', async () => {
  const f = await freshMonitor('history500', { proposalIntervalMs: 0 })
  try {
    for (let i = 1; i <= 520; i++) await f.mon.propose('m', () => i, cli)
    assert.equal(f.store.omapListSync(MON_POOL, 'map.m', { limit: 1000 }).length, 500)
    assert.equal(await f.mon.getEpoch('m', 20), null)
    assert.equal((await f.mon.getEpoch('m', 21))?.value, 21)
  } finally { await f.done() }
})

test('what a killed process saw committed is there after kill -9: maps, writers and the log entries before them', async () => {
  for (const killAfter of [1, 25]) {
    const dir = tmpDir('crash')
    try {
      let committed = 0
      let epoch = 0
      let killed = false
      const c = spawnChild(['propose', dir], (line, child) => {
        const m = /^committed (\d+) (\d+)$/.exec(line)
        if (m === null) return
        committed = Number(m[1])
        epoch = Number(m[2])
        if (committed >= killAfter && !killed) { killed = true; child.kill('SIGKILL') }
      })
      const code = await c.exited
      assert.equal(killed, true, `child exited on its own (${code}): ${c.stderr()}`)
      assert.equal(epoch, committed, 'one epoch per awaited proposal')

      const store = await openStore(dir)
      const mon = await openMonitor(store)
      try {
        const s = mon.get('crash')
        // Anything after what it printed may or may not have committed; nothing before may be lost.
        assert.ok(s.epoch === committed || s.epoch === committed + 1, `printed ${committed}, found epoch ${s.epoch}`)
        assert.deepEqual(s.value, { n: s.epoch })
        assert.deepEqual(mon.writers('crash'), ['w'])
        const logged = mon.recentLog(10_000).filter(e => e.who === 'child').map(e => e.message)
        for (let n = 1; n <= committed; n++) assert.ok(logged.includes(`before ${n}`), `log entry before proposal ${n} survived`)
        // The monitor goes on from there.
        assert.equal((await mon.propose('crash', () => 'after', { name: 'w' })).epoch, s.epoch + 1)
      } finally {
        await mon.close()
        await store.close()
      }
    } finally { fs.rmSync(dir, { recursive: true, force: true }) }
  }
})
