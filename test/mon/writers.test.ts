// Writers: a map restricted to some proposers refuses the others with EACCES
// and a message naming the map and who may write it; mon and mon.* always
// may; the restriction is ordered with the proposals around it and persisted.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MAX_MAPS } from '../../src/mon'
import { cli, freshMonitor, rejection } from './helpers'

test('a proposer not among the writers gets EACCES naming the map and the writers', async () => {
  const f = await freshMonitor('writers')
  try {
    await f.mon.propose('policymap', () => ({}), { name: 'client.a' })
    assert.equal(f.mon.writers('policymap'), null)
    await f.mon.setWriters('policymap', ['cli', 'mds.0'], { name: 'client.a' })
    assert.deepEqual(f.mon.writers('policymap'), ['cli', 'mds.0'])
    assert.equal(f.mon.get('policymap').epoch, 1, 'setting writers makes no epoch')

    const err = await rejection(f.mon.propose('policymap', () => 1, { name: 'client.a' }))
    assert.equal(err.code, 'EACCES')
    assert.equal((err as Error & { errno?: number }).errno, 13)
    assert.equal(err.message, 'EACCES: client.a may not change map policymap: its writers are cli, mds.0 (and mon, mon.*)')
    assert.equal(f.mon.get('policymap').epoch, 1)

    assert.equal((await f.mon.propose('policymap', () => 2, { name: 'mds.0' })).epoch, 2)
    assert.equal((await f.mon.propose('policymap', () => 3, { name: 'mon' })).epoch, 3, 'mon always may')
    assert.equal((await f.mon.propose('policymap', () => 4, { name: 'mon.a' })).epoch, 4, 'mon.* always may')
    assert.equal((await rejection(f.mon.propose('policymap', () => 5, { name: 'monitor' }))).code, 'EACCES', 'only mon and mon.*')

    // Changing the writers needs the right to write the map.
    assert.equal((await rejection(f.mon.setWriters('policymap', null, { name: 'client.a' }))).code, 'EACCES')
    await f.mon.setWriters('policymap', [], { name: 'mds.0' })
    const none = await rejection(f.mon.propose('policymap', () => 5, { name: 'mds.0' }))
    assert.match(none.message, /its writers are none \(and mon, mon\.\*\)/)
    await f.mon.setWriters('policymap', null, { name: 'mon' })
    assert.equal((await f.mon.propose('policymap', () => 5, { name: 'anyone' })).epoch, 5)

    assert.ok(f.mon.recentLog(10).some(e => e.message === 'map policymap: writers are now [cli, mds.0]'))
  } finally { await f.done() }
})

test('writers changes are ordered with the proposals of the same round', async () => {
  const f = await freshMonitor('wround', { proposalIntervalMs: 20 })
  try {
    const before = f.mon.propose('m', () => 'a', { name: 'client.a' })
    const restrict = f.mon.setWriters('m', ['client.b'], { name: 'client.a' })
    const denied = rejection(f.mon.propose('m', () => 'a again', { name: 'client.a' }))
    const allowed = f.mon.propose('m', v => `${v as string}b`, { name: 'client.b' })
    assert.equal((await before).epoch, 1)
    await restrict
    assert.equal((await denied).code, 'EACCES')
    const s = await allowed
    assert.deepEqual([s.epoch, s.value], [1, 'ab'])
  } finally { await f.done() }
})

test('writers set before a map\'s first epoch hold, and survive a restart; maps() lists maps with epochs only', async () => {
  const f = await freshMonitor('wpersist')
  try {
    await f.mon.setWriters('reserved', ['mds.0'], cli)
    await f.mon.setWriters('open', ['x'], cli)
    await f.mon.setWriters('open', null, { name: 'x' })
    assert.deepEqual(f.mon.maps(), [])
    assert.equal(f.mon.get('reserved').epoch, 0)
    await f.reopen()
    assert.deepEqual(f.mon.writers('reserved'), ['mds.0'])
    assert.equal(f.mon.writers('open'), null)
    assert.equal((await rejection(f.mon.propose('reserved', () => 1, cli))).code, 'EACCES')
    await f.mon.propose('reserved', () => 1, { name: 'mds.0' })
    await f.reopen()
    assert.deepEqual(f.mon.writers('reserved'), ['mds.0'])
    assert.deepEqual(f.mon.maps(), ['reserved'])
    assert.equal((await rejection(f.mon.propose('reserved', () => 2, cli))).code, 'EACCES')
  } finally { await f.done() }
})

test('bad writer lists are refused with EINVAL; duplicates are dropped', async () => {
  const f = await freshMonitor('wbad')
  try {
    for (const bad of [[''], ['x'.repeat(257)], Array.from({ length: 257 }, (_, i) => `w${i}`), 'cli' as unknown as string[]]) {
      assert.equal((await rejection(f.mon.setWriters('m', bad, cli))).code, 'EINVAL')
    }
    await f.mon.setWriters('m', ['a', 'b', 'a'], cli)
    assert.deepEqual(f.mon.writers('m'), ['a', 'b'])
    const w = f.mon.writers('m') as string[]
    w.push('c')
    assert.deepEqual(f.mon.writers('m'), ['a', 'b'], 'writers() hands out a copy')
  } finally { await f.done() }
})

test(`at most ${MAX_MAPS} maps; beyond, a proposal for a new map fails with ENOSPC`, async () => {
  const f = await freshMonitor('maxmaps', { proposalIntervalMs: 5 })
  try {
    const ps = Array.from({ length: MAX_MAPS }, (_, i) => f.mon.propose(`map${i}`, () => i, cli))
    const over = rejection(f.mon.propose('one.too.many', () => 0, cli))
    await Promise.all(ps)
    const err = await over
    assert.equal(err.code, 'ENOSPC')
    assert.match(err.message, /already holds 1024 maps/)
    assert.equal(f.mon.maps().length, MAX_MAPS)
    assert.equal((await f.mon.propose('map7', v => (v as number) + 1, cli)).value, 8, 'existing maps still change')
    await f.reopen()
    assert.equal(f.mon.maps().length, MAX_MAPS)
    assert.equal(f.mon.get('map1023').value, 1023)
  } finally { await f.done() }
})
