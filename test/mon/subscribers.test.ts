// Subscribers: every epoch, in order, exactly once; the current state at once
// (synchronously) when it is newer than fromEpoch; told before the proposals
// resolve; unsubscribe works, also from inside a listener; a throwing
// listener does not keep the others from being told, and is logged.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MapState } from '../../src/mon'
import { cli, freshMonitor } from './helpers'

test('subscribers get every epoch in order exactly once, from the current one on', async () => {
  const f = await freshMonitor('subs', { proposalIntervalMs: 0 })
  try {
    await f.mon.propose('m', () => 0, cli)
    await f.mon.propose('m', () => 1, cli)

    const early: number[] = []
    f.mon.subscribe('m', 0, s => early.push(s.epoch))
    assert.deepEqual(early, [2], 'the current state, synchronously, before subscribe returns')
    const current: number[] = []
    f.mon.subscribe('m', 2, s => current.push(s.epoch))
    assert.deepEqual(current, [], 'fromEpoch equal to the current epoch: nothing at once')
    const unborn: number[] = []
    f.mon.subscribe('unborn', 0, s => unborn.push(s.epoch))
    assert.deepEqual(unborn, [], 'a map without epochs has nothing to tell yet')

    // Rounds of different sizes, some concurrent, some awaited, with other maps in between.
    let late: number[] | null = null
    for (let round = 0; round < 30; round++) {
      const n = 1 + (round % 4)
      const ps = Array.from({ length: n }, (_, i) => f.mon.propose('m', v => (v as number) + i, cli))
      if (round % 3 === 0) ps.push(f.mon.propose('other', () => round, cli))
      if (round === 10) {
        late = []
        const l = late
        f.mon.subscribe('m', 0, s => l.push(s.epoch))
      }
      await Promise.all(ps)
    }
    await f.mon.propose('unborn', () => 'born', cli)
    const last = f.mon.get('m').epoch
    assert.equal(last, 32)
    const all = Array.from({ length: last - 1 }, (_, i) => i + 2)
    assert.deepEqual(early, all)
    assert.deepEqual(current, all.slice(1))
    assert.deepEqual(late, Array.from({ length: last - 12 + 1 }, (_, i) => i + 12), 'subscribed while round 11 waited: epochs 12 on')
    assert.deepEqual(unborn, [1])
  } finally { await f.done() }
})

test('subscribers are told before the proposal resolves, with the state it resolves with', async () => {
  const f = await freshMonitor('order')
  try {
    const events: string[] = []
    let told: MapState | null = null
    f.mon.subscribe('m', 0, s => { told = s; events.push(`told ${s.epoch}`) })
    const s = await f.mon.propose('m', () => 'x', cli)
    events.push(`resolved ${s.epoch}`)
    assert.deepEqual(events, ['told 1', 'resolved 1'])
    assert.equal(told, s)
  } finally { await f.done() }
})

test('unsubscribe stops delivery, also when called by another listener mid-delivery; it is idempotent', async () => {
  const f = await freshMonitor('unsub')
  try {
    const a: number[] = []
    const b: number[] = []
    const c: number[] = []
    const stopA = f.mon.subscribe('m', 0, s => a.push(s.epoch))
    let stopC: () => void = () => {}
    f.mon.subscribe('m', 0, s => {
      b.push(s.epoch)
      if (s.epoch === 2) stopC() // c comes after b: it must not see epoch 2
    })
    stopC = f.mon.subscribe('m', 0, s => c.push(s.epoch))
    await f.mon.propose('m', () => 1, cli)
    stopA()
    stopA()
    await f.mon.propose('m', () => 2, cli)
    await f.mon.propose('m', () => 3, cli)
    assert.deepEqual(a, [1])
    assert.deepEqual(b, [1, 2, 3])
    assert.deepEqual(c, [1])
  } finally { await f.done() }
})

test('a listener may subscribe, propose and read from inside a delivery', async () => {
  const f = await freshMonitor('reentrant')
  try {
    const inner: number[] = []
    let proposed: Promise<MapState> | null = null
    f.mon.subscribe('m', 0, s => {
      if (s.epoch !== 1) return
      assert.equal(f.mon.get('m'), s, 'get sees the epoch being delivered')
      f.mon.subscribe('m', 0, t => inner.push(t.epoch))
      proposed = f.mon.propose('m', v => (v as number) + 1, cli)
    })
    await f.mon.propose('m', () => 1, cli)
    assert.deepEqual(inner, [1], 'subscribed during delivery of epoch 1: told of it once, at once')
    assert.ok(proposed !== null)
    assert.equal((await (proposed as Promise<MapState>)).epoch, 2)
    assert.deepEqual(inner, [1, 2])

    // A change function that proposes: that proposal goes to the next round.
    let nested: Promise<MapState> | null = null
    const outer = await f.mon.propose('m', v => {
      nested = f.mon.propose('m', w => (w as number) * 10, cli)
      return (v as number) + 1
    }, cli)
    assert.deepEqual([outer.epoch, outer.value], [3, 3])
    const n = await (nested as unknown as Promise<MapState>)
    assert.deepEqual([n.epoch, n.value], [4, 30])
  } finally { await f.done() }
})

test('a throwing listener does not keep the others from being told, and is logged', async () => {
  const f = await freshMonitor('throwing')
  try {
    const before: number[] = []
    const after: number[] = []
    f.mon.subscribe('m', 0, s => before.push(s.epoch))
    f.mon.subscribe('m', 0, s => { throw new Error(`listener broke on ${s.epoch}`) })
    f.mon.subscribe('m', 0, s => after.push(s.epoch))
    const s1 = await f.mon.propose('m', () => 1, cli)
    const s2 = await f.mon.propose('m', () => 2, cli)
    assert.equal(s2.epoch, s1.epoch + 1)
    assert.deepEqual(before, [1, 2])
    assert.deepEqual(after, [1, 2])
    const logged = f.mon.recentLog(10).filter(e => e.who === 'mon' && e.level === 'error').map(e => e.message)
    assert.deepEqual(logged, [
      'a subscriber of map m threw on epoch 1: listener broke on 1',
      'a subscriber of map m threw on epoch 2: listener broke on 2'
    ])
    // Throwing from the synchronous first call does not escape subscribe either.
    assert.doesNotThrow(() => f.mon.subscribe('m', 0, () => { throw new Error('at once') }))
    assert.match(f.mon.recentLog(1)[0].message, /threw on epoch 2: at once/)
  } finally { await f.done() }
})
