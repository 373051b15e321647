// Relayed reads (src/store/relay.ts): on a store the Lua workers cannot
// read themselves (the memory store), a call's reads are answered by this
// thread, which cannot hold a snapshot for the worker. A call whose object
// changes between its first look and a later read must never see the two
// states together: it runs again, even if the script caught the error, and
// gives up with ECANCELED if the object never holds still.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FsError } from '../../src/common/errors'
import type { ClassStore } from '../../src/store/classes'
import { b, BY, freshWorld, memoryClasses, str, World } from './helpers'

const TWICE_LUA = `
return {
  -- the same key read twice: one state of the object, so both reads agree
  twice = function () return cls.map_get_val('k') .. ',' .. cls.map_get_val('k') end,
  -- the second read's error caught by the script: the call still must not count
  caught = function ()
    local a = cls.map_get_val('k')
    local ok, bv = pcall(cls.map_get_val, 'k')
    if not ok then return 'caught' end
    return a .. ',' .. bv
  end,
  bump = function ()
    local v = tonumber(cls.map_get_val('n') or '0') + 1
    cls.map_set_val('n', tostring(v))
    return v
  end,
}
`

/** A view of the store that, on the chosen omap reads of data/o, first changes the object as another writer would. */
function meddling (store: ClassStore, at: (omapReads: number) => boolean): ClassStore {
  let reads = 0
  let writes = 0
  return new Proxy(store, {
    get (target, prop) {
      if (prop === 'omapGet') {
        return async (pool: string, name: string, keys: Uint8Array[]) => {
          if (pool === 'data' && name === 'o' && at(++reads)) {
            await target.submit([{ pool: 'data', name: 'o', ops: [{ op: 'omapSet', entries: [[b('k'), b(`v${++writes + 1}`)], [b('n'), b(String(100 * writes))]] }] }], { durable: false })
          }
          return await target.omapGet(pool, name, keys)
        }
      }
      const v = Reflect.get(target, prop, target) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    }
  })
}

async function world (tag: string, at: (omapReads: number) => boolean, maxAttempts?: number): Promise<World & { done: () => Promise<void> }> {
  const w = await freshWorld(tag, { backend: memoryClasses, wrap: s => meddling(s, at), runtime: { maxAttempts } })
  await w.store.submit([{ pool: 'data', name: 'o', ops: [{ op: 'omapSet', entries: [[b('k'), b('v1')]] }] }], { durable: false })
  await w.rt.install('twice', TWICE_LUA, BY)
  return w
}

test('an object that changes between two reads of a call: the call runs again and sees one state', async () => {
  // The 2nd omap read (the call's second read of k) is preceded by another writer's change.
  const w = await world('relay-twice', n => n === 2)
  try {
    const r = await w.rt.call('data', 'o', 'twice.twice')
    assert.equal(str(r.output), 'v2,v2', 'never v1,v2')
    assert.equal(r.attempts, 2)
  } finally { await w.done() }
})

test('a script that catches the error does not hide the change: its call runs again', async () => {
  const w = await world('relay-caught', n => n === 2)
  try {
    const r = await w.rt.call('data', 'o', 'twice.caught')
    assert.equal(str(r.output), 'v2,v2')
    assert.equal(r.attempts, 2)
  } finally { await w.done() }
})

test('a read-modify-write whose object changes under it runs again on the new state: no lost update', async () => {
  const w = await world('relay-bump', n => n === 1)
  try {
    const r = await w.rt.call('data', 'o', 'twice.bump')
    assert.equal(str(r.output), '101', 'built on the other writer\'s 100')
    assert.ok(r.attempts >= 2)
    assert.equal(str(w.store.omapGetSync('data', 'o', [b('n')])[0].value), '101')
  } finally { await w.done() }
})

test('an object that never holds still: the call gives up with ECANCELED after maxAttempts', async () => {
  const w = await world('relay-never', n => n % 2 === 0, 3)
  try {
    await assert.rejects(w.rt.call('data', 'o', 'twice.twice'), (e: FsError) => e.code === 'ECANCELED' && /gave up after 3 attempts \(the object kept changing while it was read\)/.test(e.message))
  } finally { await w.done() }
})
