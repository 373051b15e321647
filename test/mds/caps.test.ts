// The capability table: conflicts, revocation, leases, eviction.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CapTable } from '../../src/mds/caps'
import { CAP_BUFFER, CAP_CACHE, parseCapPolicy, type CapPolicy } from '../../src/common/caps'

interface Revoke { session: number, ino: number, bits: number }

function setup (): { table: CapTable, revokes: Revoke[], open: Set<number> } {
  const revokes: Revoke[] = []
  const open = new Set([1, 2, 3])
  const table = new CapTable({ sendRevoke: (session, ino, bits) => revokes.push({ session, ino, bits }), isOpen: s => open.has(s) })
  return { table, revokes, open }
}

const BEST: CapPolicy = { kind: 'best-effort' }

test('shared CACHE grants coexist; BUFFER revokes them and waits for release', async () => {
  const { table, revokes } = setup()
  await table.acquire(10, 1, CAP_CACHE, BEST)
  await table.acquire(10, 2, CAP_CACHE, BEST)
  assert.equal(revokes.length, 0)
  let granted = false
  const p = table.acquire(10, 3, CAP_BUFFER, BEST).then(g => { granted = true; return g })
  await new Promise(resolve => setImmediate(resolve))
  assert.deepEqual(revokes.map(r => r.session).sort(), [1, 2])
  assert.equal(granted, false)
  table.release(10, 1, CAP_CACHE)
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(granted, false, 'still waiting for session 2')
  table.release(10, 2, CAP_CACHE)
  const g = await p
  assert.equal(g.bits, CAP_BUFFER)
  assert.equal(table.held(10, 3), CAP_BUFFER)
})

test('a lease bounds the wait: the holder that ignores the revoke loses its grant after the lease', async () => {
  const { table, revokes } = setup()
  const policy = parseCapPolicy('lease=150')
  await table.acquire(7, 1, CAP_BUFFER, policy)
  const t0 = performance.now()
  await table.acquire(7, 2, CAP_CACHE, policy)
  const waited = performance.now() - t0
  assert.equal(revokes.length, 1)
  assert.ok(waited >= 120 && waited < 1000, `waited ${waited} ms`)
  assert.equal(table.held(7, 1), 0)
  assert.equal(table.stats.forcedExpiries, 1)
})

test('a holder that ignores the revoke but keeps renewing its lease still loses it when the lease runs out', async () => {
  const { table } = setup()
  const policy = parseCapPolicy('lease=150')
  await table.acquire(8, 1, CAP_CACHE | CAP_BUFFER, policy)
  const t0 = performance.now()
  let renewals = 0
  const renew = setInterval(() => { renewals++; table.acquire(8, 1, CAP_CACHE | CAP_BUFFER, policy).catch(() => {}) }, 50)
  try {
    await table.acquire(8, 2, CAP_CACHE, policy)
  } finally {
    clearInterval(renew)
  }
  const waited = performance.now() - t0
  assert.ok(renewals >= 2, `renewed ${renewals} times`)
  assert.ok(waited >= 120 && waited < 1000, `waited ${waited} ms`)
  assert.equal(table.held(8, 2), CAP_CACHE)
})

test('best-effort waits for the holder; eviction of the holder frees the waiter', async () => {
  const { table, open } = setup()
  await table.acquire(5, 1, CAP_BUFFER, BEST)
  let done = false
  const p = table.acquire(5, 2, CAP_BUFFER, BEST).then(() => { done = true })
  await new Promise(resolve => setTimeout(resolve, 100))
  assert.equal(done, false)
  open.delete(1)
  table.dropSession(1)
  await p
  assert.equal(table.held(5, 2), CAP_BUFFER)
})

test('never: nothing is granted and nothing waits', async () => {
  const { table, revokes } = setup()
  const never = parseCapPolicy('never')
  assert.equal((await table.acquire(3, 1, CAP_BUFFER, never)).bits, 0)
  assert.equal((await table.acquire(3, 2, CAP_BUFFER, never)).bits, 0)
  assert.equal(revokes.length, 0)
})

test('a closed session cannot acquire, and its waiters fail', async () => {
  const { table, open } = setup()
  await table.acquire(9, 1, CAP_BUFFER, BEST)
  const p = table.acquire(9, 2, CAP_BUFFER, BEST)
  open.delete(2)
  table.dropSession(2)
  await assert.rejects(p, /ESTALE/)
})

test('cap policy parsing', () => {
  assert.deepEqual(parseCapPolicy('lease=250'), { kind: 'lease', ms: 250 })
  assert.throws(() => parseCapPolicy('lease=0'), /EINVAL/)
  assert.throws(() => parseCapPolicy('sometimes'), /EINVAL/)
})
