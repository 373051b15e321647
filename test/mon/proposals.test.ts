// Proposals and rounds: epochs grow by one per round per changed map, a round
// really gathers every proposal of its interval into one store batch, and a
// failing proposal (a throwing change, a value that is not JSON, a store
// error) fails alone.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { JsonValue, MAX_MAP_VALUE_BYTES } from '../../src/mon'
import { cli, freshMonitor, rejection } from './helpers'

test('a map that never existed reads as epoch 0 and null; each awaited proposal makes the next epoch', async () => {
  const f = await freshMonitor('epochs')
  try {
    assert.deepEqual(f.mon.get('policymap'), { name: 'policymap', epoch: 0, value: null, committedAtMs: 0 })
    assert.deepEqual(f.mon.maps(), [])
    const t0 = Date.now()
    for (let i = 1; i <= 5; i++) {
      const s = await f.mon.propose('policymap', v => ({ ...(v as object), [`k${i}`]: i }), cli)
      assert.equal(s.epoch, i)
      assert.equal(s.name, 'policymap')
      assert.ok(s.committedAtMs >= t0 && s.committedAtMs <= Date.now())
      assert.deepEqual(f.mon.get('policymap'), s)
    }
    assert.deepEqual(f.mon.get('policymap').value, { k1: 1, k2: 2, k3: 3, k4: 4, k5: 5 })
    await f.mon.propose('balancermap', () => 'v1', cli)
    assert.deepEqual(f.mon.maps(), ['balancermap', 'policymap'])
    assert.equal(f.mon.get('balancermap').epoch, 1, 'epochs are per map')
  } finally { await f.done() }
})

test('100 proposals within one interval: one round, one epoch, one store batch, applied in proposal order', async () => {
  for (const interval of [0, 1, 20]) {
    const f = await freshMonitor(`batch${interval}`, { proposalIntervalMs: interval })
    try {
      await f.mon.propose('m', () => [], cli)
      await f.mon.propose('other', () => 0, cli)
      const batchesBefore = f.store.stats().batches
      const seen: number[] = []
      const ps: Array<Promise<unknown>> = []
      for (let i = 0; i < 100; i++) {
        ps.push(f.mon.propose('m', v => {
          seen.push(i)
          return [...(v as JsonValue[]), i]
        }, { name: `client.${i}` }))
      }
      // Two changes to a second map in the same round: one epoch for it too.
      ps.push(f.mon.propose('other', v => (v as number) + 1, cli))
      ps.push(f.mon.propose('other', v => (v as number) * 10, cli))
      const states = await Promise.all(ps) as Array<{ name: string, epoch: number, value: JsonValue }>
      assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => i), `interval ${interval}: order of application`)
      for (const s of states.slice(0, 100)) {
        assert.equal(s.epoch, 2, `interval ${interval}: every proposal resolves with the same epoch`)
        assert.equal(s, states[0], 'the same frozen state object')
      }
      assert.deepEqual(states[0].value, Array.from({ length: 100 }, (_, i) => i))
      assert.equal(states[100].epoch, 2)
      assert.equal(states[100].value, 10, '(0 + 1) * 10: the second change saw the first')
      assert.equal(f.mon.get('m').epoch, 2)
      assert.equal(f.store.stats().batches - batchesBefore, 1, `interval ${interval}: one store batch for the round`)
    } finally { await f.done() }
  }
})

test('proposals arriving while a round commits wait for the next round, which is one epoch later', async () => {
  const f = await freshMonitor('pipeline', { proposalIntervalMs: 0 })
  try {
    const first = f.mon.propose('m', () => 1, cli)
    // setImmediate has started the first round by the time this timer fires; its batch may still be in flight.
    await new Promise(resolve => setImmediate(resolve))
    const second = f.mon.propose('m', v => (v as number) + 1, cli)
    const third = f.mon.propose('m', v => (v as number) + 1, cli)
    const [a, b, c] = await Promise.all([first, second, third])
    assert.equal(a.epoch, 1)
    assert.equal(b.epoch, 2)
    assert.equal(c, b)
    assert.equal(c.value, 3)
  } finally { await f.done() }
})

test('a change that returns an equal value still makes a new epoch', async () => {
  const f = await freshMonitor('equal')
  try {
    await f.mon.propose('m', () => ({ a: 1 }), cli)
    const s = await f.mon.propose('m', v => v, cli)
    assert.equal(s.epoch, 2)
    assert.deepEqual(s.value, { a: 1 })
  } finally { await f.done() }
})

test('a throwing change rejects only its own proposal; the others of its round commit', async () => {
  const f = await freshMonitor('throw', { proposalIntervalMs: 5 })
  try {
    await f.mon.propose('m', () => ({ n: 0 }), cli)
    const boom = new Error('bad policy')
    const a = f.mon.propose('m', v => ({ n: (v as { n: number }).n + 1 }), cli)
    const b = f.mon.propose('m', v => {
      (v as { n: number }).n = 1000 // changes its copy in place, then throws: must leave no trace
      throw boom
    }, cli)
    const c = f.mon.propose('m', v => ({ n: (v as { n: number }).n + 1 }), cli)
    assert.equal(await rejection(b), boom, 'rejected with exactly what the change threw')
    const [sa, sc] = await Promise.all([a, c])
    assert.equal(sa.epoch, 2)
    assert.equal(sc.epoch, 2)
    assert.deepEqual(sc.value, { n: 2 })

    // A round in which every proposal fails commits nothing.
    const batches = f.store.stats().batches
    await rejection(f.mon.propose('m', () => { throw new Error('no') }, cli))
    assert.equal(f.mon.get('m').epoch, 2)
    assert.equal(f.store.stats().batches, batches)
  } finally { await f.done() }
})

test('values must be plain JSON under the size limit; committed values are frozen, changes get a copy', async () => {
  const f = await freshMonitor('json')
  try {
    const bad: Array<[string, () => unknown, RegExp]> = [
      ['undefined', () => undefined, /returned undefined/],
      ['NaN', () => ({ a: NaN }), /the number NaN/],
      ['a Date', () => new Date(), /a Date/],
      ['a function', () => [() => 1], /a function/],
      ['a promise', () => Promise.resolve(1), /a Promise \(a change must be synchronous\)/],
      ['a Map', () => new Map(), /a Map/]
    ]
    for (const [what, change, msg] of bad) {
      const err = await rejection(f.mon.propose('m', change as () => JsonValue, cli))
      assert.equal(err.code, 'EINVAL', what)
      assert.match(err.message, msg)
      assert.match(err.message, /map m:/)
    }
    const big = await rejection(f.mon.propose('m', () => 'x'.repeat(MAX_MAP_VALUE_BYTES), cli))
    assert.equal(big.code, 'EFBIG')
    assert.equal(f.mon.get('m').epoch, 0)

    const s = await f.mon.propose('m', () => ({ list: [1, 2], inner: { a: 'b' } }), cli)
    assert.ok(Object.isFrozen(s.value) && Object.isFrozen((s.value as { list: number[] }).list))
    assert.throws(() => { (s.value as { list: number[] }).list.push(3) }, TypeError)
    const s2 = await f.mon.propose('m', v => {
      assert.ok(!Object.isFrozen(v))
      ;(v as { list: number[] }).list.push(3)
      return v
    }, cli)
    assert.deepEqual(s.value, { list: [1, 2], inner: { a: 'b' } }, 'the old state is untouched')
    assert.deepEqual(s2.value, { list: [1, 2, 3], inner: { a: 'b' } })
  } finally { await f.done() }
})

test('bad map names, proposers and change functions are refused with EINVAL', async () => {
  const f = await freshMonitor('names')
  try {
    for (const name of ['', 'a\nb', 'x'.repeat(257)]) {
      assert.equal((await rejection(f.mon.propose(name, () => 1, cli))).code, 'EINVAL')
      assert.throws(() => f.mon.subscribe(name, 0, () => {}), { code: 'EINVAL' })
    }
    assert.equal((await rejection(f.mon.propose('m', () => 1, { name: '' }))).code, 'EINVAL')
    assert.equal((await rejection(f.mon.propose('m', 'x' as unknown as () => JsonValue, cli))).code, 'EINVAL')
  } finally { await f.done() }
})

test('a store failure rejects the round\'s proposals with the store error and leaves the maps as they were', async () => {
  const f = await freshMonitor('storefail', { proposalIntervalMs: 5 }, { faults: true })
  try {
    await f.mon.propose('m', () => 1, cli)
    f.faults?.failCommits(1, 'EIO')
    const ps = [f.mon.propose('m', () => 2, cli), f.mon.propose('n', () => 2, cli)]
    for (const p of ps) {
      const err = await rejection(p) as Error & { errno?: string }
      assert.equal(err.errno, 'EIO')
    }
    assert.equal(f.mon.get('m').epoch, 1)
    assert.equal(f.mon.get('m').value, 1)
    assert.equal(f.mon.get('n').epoch, 0)
    assert.ok(f.mon.recentLog(10).some(e => e.level === 'error' && /could not be committed, 2 proposal\(s\) rejected/.test(e.message)))
    const s = await f.mon.propose('m', v => (v as number) + 10, cli)
    assert.deepEqual([s.epoch, s.value], [2, 11], 'the next round starts from the committed value')
    await f.reopen()
    assert.deepEqual([f.mon.get('m').epoch, f.mon.get('m').value], [2, 11])
  } finally { await f.done() }
})

test('limits: a full proposal queue refuses with EAGAIN; a closed monitor with EIO; one monitor per store', async () => {
  const f = await freshMonitor('limits', { proposalIntervalMs: 50, maxQueuedProposals: 10 })
  try {
    const ok = Array.from({ length: 10 }, () => f.mon.propose('m', v => ((v as number) ?? 0) + 1, cli))
    const full = await rejection(f.mon.propose('m', () => 0, cli))
    assert.equal(full.code, 'EAGAIN')
    assert.match(full.message, /10 proposals are already waiting/)
    assert.equal((await Promise.all(ok))[9].value, 10)

    const { openMonitor } = await import('../../src/mon')
    await assert.rejects(openMonitor(f.store), { code: 'EBUSY' })
    for (const bad of [{ proposalIntervalMs: -1 }, { historyEpochs: 0 }, { logRingEntries: 1.5 }]) {
      await assert.rejects(openMonitor(f.store, bad), { code: 'EINVAL' }, JSON.stringify(bad))
    }

    // close commits what is queued, then refuses.
    const last = f.mon.propose('m', () => 'last', cli)
    await f.mon.close()
    assert.equal((await last).value, 'last')
    const closed = await rejection(f.mon.propose('m', () => 0, cli))
    assert.equal(closed.code, 'EIO')
    assert.match(closed.message, /closed/)
    assert.equal(f.mon.get('m').value, 'last', 'reads still work after close')
  } finally { await f.done() }
})
