// Calls that share a batch: one object's calls chain (each sees what the
// earlier ones wrote), a failing call in the middle drops out without taking
// its neighbours' effects along, and large payloads travel intact. On both
// backends (helpers.ts).

import assert from 'node:assert/strict'
import { LuaError } from '../../src/lua'
import { ClassRuntime } from '../../src/store/classes'
import { BY, classTest, COUNTER_LUA, freshWorld, str, tmpDir } from './helpers'
import { FakeMonitor } from './fake-monitor'
import fs from 'fs'

const LOG_LUA = `
return {
  -- append input to the payload, fail when it says so: a chain with holes
  add = function (input)
    if input == 'bad' then cls.append('never') error('bad input') end
    cls.append(input .. ';')
    local n = tonumber(cls.map_get_val('n') or '0') + 1
    cls.map_set_val('n', tostring(n))
    return n
  end,
  big = function (input)
    cls.write_full(string.rep(input, 50000))
    local size = cls.stat()
    return size
  end,
  tail = function () local size = cls.stat() return cls.read(size - 10, 10) end,
  -- 4 MB per call: a batch of these passes the group's byte bound and the rest are deferred
  huge = function (input)
    cls.write_full(string.rep(input, 1000000))
    local n = tonumber(cls.map_get_val('n') or '0') + 1
    cls.map_set_val('n', tostring(n))
    return n
  end,
}
`

classTest('a failing call inside a chain drops out alone; the others keep their order and effects', async backend => {
  const w = await freshWorld('chain', { backend })
  try {
    await w.rt.install('log', LOG_LUA, BY)
    const inputs = Array.from({ length: 400 }, (_, i) => (i % 7 === 3 ? 'bad' : `e${i}`))
    const results = await Promise.allSettled(inputs.map(x => w.rt.call('data', 'log', 'log.add', x)))
    const good = inputs.filter(x => x !== 'bad')
    results.forEach((r, i) => {
      if (inputs[i] === 'bad') assert.ok(r.status === 'rejected' && (r.reason as LuaError).reason === 'log.lua:5: bad input')
      else assert.equal(r.status, 'fulfilled')
    })
    // Calls on one object ran in the order they were made; the failed ones left nothing.
    assert.equal(str(w.store.readSync('data', 'log', 0, 1e6)), good.map(x => x + ';').join(''))
    assert.equal(str(w.store.omapGetSync('data', 'log', [Buffer.from('n')])[0].value), String(good.length))
    // Each successful call saw its predecessors: the counts are 1..n in call order.
    const counts = results.filter((_, i) => inputs[i] !== 'bad').map(r => Number(str((r as PromiseFulfilledResult<{ output: Buffer }>).value.output)))
    assert.deepEqual(counts, Array.from({ length: good.length }, (_, i) => i + 1))
    assert.equal(w.store.statSync('data', 'log')?.version, good.length)
  } finally { await w.done() }
})

classTest('large payloads written by methods arrive intact (and through chains)', async backend => {
  const w = await freshWorld('big', { backend })
  try {
    await w.rt.install('log', LOG_LUA, BY)
    const outs = await Promise.all(['abcdefghij', '0123456789', 'ABCDEFGHIJ'].map(x => w.rt.call('data', 'big', 'log.big', x)))
    assert.deepEqual(outs.map(o => str(o.output)), ['500000', '500000', '500000'])
    assert.equal(str(w.store.readSync('data', 'big', 0, 1e6)), 'ABCDEFGHIJ'.repeat(50000))
    assert.equal(str((await w.rt.call('data', 'big', 'log.tail')).output), 'ABCDEFGHIJ')
  } finally { await w.done() }
})

classTest('calls deferred because their batch buffered too much run later, still in order', async backend => {
  const w = await freshWorld('defer', { backend })
  try {
    await w.rt.install('log', LOG_LUA, BY)
    const inputs = Array.from({ length: 12 }, (_, i) => String(1000 + i))
    const outs = await Promise.all(inputs.map(x => w.rt.call('data', 'huge', 'log.huge', x)))
    assert.deepEqual(outs.map(o => Number(str(o.output))), inputs.map((_, i) => i + 1))
    assert.ok(outs.some(o => o.attempts > 1), 'some calls were deferred to a later batch')
    const st = w.store.statSync('data', 'huge')
    assert.equal(st?.size, 4_000_000)
    assert.equal(str(w.store.readSync('data', 'huge', 3_999_996, 4)), '1011')
  } finally { await w.done() }
})

classTest('closing a runtime releases its workers\' store connections; the pool serves another store', async backend => {
  const w = await freshWorld('release', { backend })
  const dir2 = tmpDir('release2')
  try {
    await w.rt.install('counter', COUNTER_LUA, BY)
    await w.rt.call('data', 'c', 'counter.incr')
    await w.rt.close()
    assert.equal(w.pool.hasHost(w.rt.hostId), false)
    // Calls on a closed runtime are refused.
    await assert.rejects(w.rt.call('data', 'c', 'counter.incr'), (e: Error & { code?: string }) => e.code === 'ECANCELED')
    const store2 = await backend.open(dir2)
    await store2.createPool('data')
    const mon2 = await FakeMonitor.open(store2)
    const rt2 = new ClassRuntime(store2, mon2, w.pool)
    await rt2.install('counter', COUNTER_LUA, BY)
    assert.equal(str((await rt2.call('data', 'c', 'counter.incr', '{"by": 7}')).output), '7')
    await rt2.close()
    await store2.close()
  } finally {
    await w.done()
    fs.rmSync(dir2, { recursive: true, force: true })
  }
})
