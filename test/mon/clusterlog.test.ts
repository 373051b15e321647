// The cluster log: a bounded ring read by recentLog, followers that see every
// entry once and in order, entries written to the store with proposal rounds
// or after logFlushMs, trimmed there, and reloaded at open.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LogEntry, MAX_LOG_MESSAGE_CHARS, MON_POOL } from '../../src/mon'
import { cli, freshMonitor, sleep } from './helpers'

test('recentLog: the most recent entries, oldest first, at most limit, optionally after a seq; the ring is bounded', async () => {
  const f = await freshMonitor('ring', { logRingEntries: 50 })
  try {
    assert.deepEqual(f.mon.recentLog(10), [])
    const t0 = Date.now()
    for (let i = 1; i <= 120; i++) f.mon.log(i % 2 === 0 ? 'info' : 'warn', 'mds.0', `event ${i}`)
    const last3 = f.mon.recentLog(3)
    assert.deepEqual(last3.map(e => e.seq), [118, 119, 120])
    assert.deepEqual(last3[2], { seq: 120, timeMs: last3[2].timeMs, level: 'info', who: 'mds.0', message: 'event 120' })
    assert.ok(last3[2].timeMs >= t0)
    assert.equal(f.mon.recentLog(1000).length, 50, 'the ring keeps logRingEntries')
    assert.equal(f.mon.recentLog(1000)[0].seq, 71)
    assert.deepEqual(f.mon.recentLog(1000, 115).map(e => e.seq), [116, 117, 118, 119, 120])
    assert.deepEqual(f.mon.recentLog(2, 100).map(e => e.seq), [119, 120], 'still the most recent of those after seq')
    assert.deepEqual(f.mon.recentLog(10, 120), [])
    assert.deepEqual(f.mon.recentLog(0), [])
  } finally { await f.done() }
})

test('long messages are cut and say so; an unknown level is refused', async () => {
  const f = await freshMonitor('cut')
  try {
    f.mon.log('info', 'lua', 'y'.repeat(MAX_LOG_MESSAGE_CHARS + 10))
    const e = f.mon.recentLog(1)[0]
    assert.ok(e.message.startsWith('y'.repeat(MAX_LOG_MESSAGE_CHARS)))
    assert.match(e.message, /\.\.\. \(10 more characters cut\)$/)
    assert.throws(() => f.mon.log('fatal' as 'error', 'x', 'y'), { code: 'EINVAL' })
  } finally { await f.done() }
})

test('followLog: the backlog after a seq, then every new entry once, in order, even when followers log', async () => {
  const f = await freshMonitor('follow')
  try {
    for (let i = 1; i <= 5; i++) f.mon.log('info', 'a', `m${i}`)
    const a: number[] = []
    const b: string[] = []
    const stopA = f.mon.followLog(3, e => a.push(e.seq))
    assert.deepEqual(a, [4, 5], 'the backlog, synchronously')
    f.mon.followLog(5, e => {
      b.push(e.message)
      if (e.message === 'm6') f.mon.log('info', 'b', 'echo of m6') // logged by a follower mid-delivery
    })
    f.mon.log('info', 'a', 'm6')
    f.mon.log('info', 'a', 'm7')
    assert.deepEqual(a, [4, 5, 6, 7, 8])
    assert.deepEqual(b, ['m6', 'echo of m6', 'm7'])
    stopA()
    f.mon.log('info', 'a', 'm8')
    assert.deepEqual(a, [4, 5, 6, 7, 8])
    assert.equal(b.length, 4)
  } finally { await f.done() }
})

test('a follower that throws is stopped and that is logged; the other followers go on', async () => {
  const f = await freshMonitor('followthrow')
  try {
    let calls = 0
    const seen: string[] = []
    f.mon.followLog(0, () => { calls++; throw new Error('socket gone') })
    f.mon.followLog(0, e => seen.push(e.message))
    f.mon.log('info', 'x', 'one')
    f.mon.log('info', 'x', 'two')
    assert.equal(calls, 1)
    assert.deepEqual(seen, ['one', 'a cluster log follower threw and was stopped: socket gone', 'two'])
  } finally { await f.done() }
})

test('entries are written after logFlushMs without any proposal, and reloaded at open', async () => {
  const f = await freshMonitor('flush', { logFlushMs: 20 })
  try {
    f.mon.log('warn', 'mantle', 'balancer version changed to v2')
    assert.equal(f.store.omapListSync(MON_POOL, 'clusterlog', { limit: 10 }).length, 0)
    await sleep(150)
    assert.equal(f.store.omapListSync(MON_POOL, 'clusterlog', { limit: 10 }).length, 1, 'written by the flush timer')
    f.mon.log('error', 'mds.1', 'failed')
    const before = f.mon.recentLog(10)
    await f.reopen() // close flushes the second one
    assert.deepEqual(f.mon.recentLog(10), before)
    f.mon.log('info', 'mon', 'after restart')
    assert.equal(f.mon.recentLog(1)[0].seq, 3, 'seq continues after a restart')
  } finally { await f.done() }
})

test('entries ride with a proposal round into its durable batch', async () => {
  const f = await freshMonitor('ride', { logFlushMs: 60_000 })
  try {
    f.mon.log('info', 'cli', 'setting policy')
    const batches = f.store.stats().batches
    await f.mon.propose('policymap', () => ({}), cli)
    assert.equal(f.store.stats().batches - batches, 1)
    assert.equal(f.store.omapListSync(MON_POOL, 'clusterlog', { limit: 10 }).length, 1)
  } finally { await f.done() }
})

test('the store keeps the last logPersistedEntries entries; the ring reloads the last logRingEntries', async () => {
  const f = await freshMonitor('logtrim', { logPersistedEntries: 30, logRingEntries: 20, logFlushMs: 1 })
  try {
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 7; i++) f.mon.log('debug', 'test', `r${round} i${i}`)
      await sleep(10)
    }
    await f.reopen()
    const stored = f.store.omapListSync(MON_POOL, 'clusterlog', { limit: 1000 })
    assert.equal(stored.length, 30)
    const ring: LogEntry[] = f.mon.recentLog(1000)
    assert.deepEqual(ring.map(e => e.seq), Array.from({ length: 20 }, (_, i) => 51 + i))
    assert.equal(ring[19].message, 'r9 i6')
    await f.reopen({ logRingEntries: 1000 })
    assert.equal(f.mon.recentLog(1000).length, 30)
  } finally { await f.done() }
})
