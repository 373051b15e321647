// Object classes end to end on a real store: install through the monitor,
// calls with atomic effects, no lost updates, upgrades, reopening. What a
// call means runs on both backends (helpers.ts): SQLite, which the workers
// read themselves, and the memory store, whose reads they relay.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import { LuaError } from '../../src/lua'
import { CLASS_POOL, ClassRuntime } from '../../src/store/classes'
import type { ObjectWrite } from '../../src/store'
import { FsError } from '../../src/common/errors'
import { b, BY, classTest, COUNTER_LUA, freshWorld, openWorld, snapshot, str, tmpDir } from './helpers'

classTest('install and call: counter.incr is a read-modify-write of one omap key', async backend => {
  const w = await freshWorld('counter', { backend })
  try {
    assert.equal(await w.rt.install('counter', COUNTER_LUA, BY), 1)
    assert.deepEqual(w.rt.list().map(c => [c.name, c.version, c.object, c.methods]), [['counter', 1, 'counter.1', ['get', 'incr', 'reset']]])
    assert.equal(str(w.store.readSync(CLASS_POOL, 'counter.1', 0, 1e6)), COUNTER_LUA, 'the script is an object in pool classes')
    const r = await w.rt.call('data', 'hits', 'counter.incr', '{"by": 5}')
    assert.equal(str(r.output), '5')
    assert.equal(r.classVersion, 1)
    assert.equal(r.objectVersion, 1)
    assert.equal(str((await w.rt.call('data', 'hits', 'counter.incr')).output), '6')
    assert.equal(str((await w.rt.call('data', 'hits', 'counter.get')).output), '6')
    assert.equal(str(w.store.omapGetSync('data', 'hits', [b('count')])[0].value), '6')
    assert.equal(w.store.statSync('data', 'hits')?.version, 2, 'a read-only call writes nothing')
    assert.equal(str((await w.rt.call('data', 'hits', 'counter.incr', '{"key": "other", "by": -2}')).output), '-2')
    assert.equal(str((await w.rt.call('data', 'hits', 'counter.reset')).output), '6')
    assert.equal(w.store.omapGetSync('data', 'hits', [b('count')]).length, 0)
    assert.ok(w.mon.recentLog(10).some(e => e.who === 'cls.counter' && e.message === 'data/hits: counter count reset from 6'), 'cls.log reaches the cluster log')
  } finally { await w.done() }
})

classTest('bad calls and bad installs fail with the errno a user can act on', async backend => {
  const w = await freshWorld('errors', { backend })
  try {
    await w.rt.install('counter', COUNTER_LUA, BY)
    await assert.rejects(w.rt.call('data', 'x', 'nope.incr'), (e: FsError) => e.code === 'ENOENT' && /no class nope/.test(e.message))
    await assert.rejects(w.rt.call('data', 'x', 'counter.decr'), (e: FsError) => e.code === 'ENOENT' && /has no method decr \(it has get, incr, reset\)/.test(e.message))
    await assert.rejects(w.rt.call('nopool', 'x', 'counter.incr'), (e: FsError) => e.code === 'ENOENT' && /pool nopool/.test(e.message))
    await assert.rejects(w.rt.call('data', 'x', 'counter'), (e: FsError) => e.code === 'EINVAL')
    await assert.rejects(w.rt.call('data', 'x', 'counter.incr', '{"by": 1.5}'), (e: LuaError) => e.code === 'EIO' && e.reason === 'counter.lua:41: by must be an integer')
    await assert.rejects(w.rt.call('data', 'x', 'counter.incr', '{"by": '), (e: LuaError) => e.code === 'EIO' && /^counter\.lua:\d+: json\.decode: /.test(e.reason))
    await assert.rejects(w.rt.install('Bad-Name', COUNTER_LUA, BY), (e: FsError) => e.code === 'EINVAL')
    await assert.rejects(w.rt.install('broken', 'local function f()\n  return 1 +\nend\nreturn { f = f }', BY), (e: LuaError) => e.code === 'EINVAL' && e.line === 3 && /^broken\.lua:3:/.test(e.reason))
    await assert.rejects(w.rt.install('globals', 'function f () end', BY), (e: LuaError) => e.code === 'EINVAL' && /must return a table of its methods/.test(e.reason))
    await assert.rejects(w.rt.install('toplevel', 'local x = nil\nreturn x.y', BY), (e: LuaError) => e.code === 'EINVAL' && e.line === 2)
    await assert.rejects(w.rt.install('spin', 'while true do end', BY), (e: LuaError) => e.code === 'ETIMEDOUT')
    assert.deepEqual(w.rt.list().map(c => c.name), ['counter'], 'failed installs leave no trace in the classmap')
  } finally { await w.done() }
})

const CLS_API = `
local M = {}
-- Everything a method may do, one call per step; returns what it saw, as JSON.
function M.all (input)
  local seen = {}
  seen.before = cls.stat()
  cls.create(false)
  cls.write(0, 'hello world')
  cls.write(6, 'WORLD')
  seen.read = cls.read(0, 100)
  cls.append('!')
  cls.truncate(5)
  cls.truncate(8)
  seen.after_trunc = cls.read()
  local size, mtime, version = cls.stat()
  seen.size, seen.version = size, version
  cls.map_set_val('b', '2')
  cls.map_set_val('a', '1')
  cls.map_set_val('c', '3')
  cls.map_remove_key('b')
  seen.keys = cls.map_get_keys()
  seen.keys_after_a = cls.map_get_keys('a', 10)
  local vals, order = cls.map_get_vals(nil, 2)
  seen.vals, seen.order = vals, order
  seen.a = cls.map_get_val('a')
  cls.setxattr('user.x', 'X')
  seen.x = cls.getxattr('user.x')
  seen.pool, seen.object = cls.object()
  return seen
end
function M.replace (input) cls.write_full(input) return cls.read() end
function M.rm () cls.remove() end
function M.create_excl () cls.create(true) end
function M.xattr () return cls.getxattr('user.x') end
function M.half (input)
  cls.write_full('half-written')
  cls.map_set_val('a', 'changed')
  cls.setxattr('user.x', 'changed')
  error('changed my mind')
end
function M.outside () return cls.stat() end
return M
`

classTest('the cls API: reads see the snapshot plus the call\'s own writes; everything commits together', async backend => {
  const w = await freshWorld('api', { backend })
  try {
    await w.rt.install('api', CLS_API, BY)
    const seen = JSON.parse(str((await w.rt.call('data', 'obj', 'api.all')).output) as string)
    assert.deepEqual(seen, {
      read: 'hello WORLD',
      after_trunc: 'hello\u0000\u0000\u0000',
      size: 8,
      version: 0,
      keys: ['a', 'c'],
      keys_after_a: ['c'],
      vals: { a: '1', c: '3' },
      order: ['a', 'c'],
      a: '1',
      x: 'X',
      pool: 'data',
      object: 'obj'
    })
    assert.deepEqual(snapshot(w.store, 'data', 'obj'), { size: 8, version: 1, data: 'hello\u0000\u0000\u0000', omap: [['a', '1'], ['c', '3']] })
    assert.equal(str((await w.rt.call('data', 'obj', 'api.replace', 'new')).output), 'new')
    assert.equal(str((await w.rt.call('data', 'obj', 'api.xattr')).output), 'X')
    await assert.rejects(w.rt.call('data', 'obj', 'api.create_excl'), (e: LuaError) => e.code === 'EEXIST' && /cls\.create: the object already exists/.test(e.reason))
    await w.rt.call('data', 'obj', 'api.rm')
    assert.equal(w.store.statSync('data', 'obj'), null)
    await assert.rejects(w.rt.call('data', 'obj', 'api.rm'), (e: LuaError) => e.code === 'ENOENT' && /^api\.lua:\d+: cls\.remove: the object does not exist/.test(e.reason))
    assert.equal((await w.rt.call('data', 'never', 'api.outside')).output.length, 0, 'stat of an absent object is nil')
  } finally { await w.done() }
})

classTest('a method that fails half-way leaves the object untouched', async backend => {
  const w = await freshWorld('half', { backend })
  try {
    await w.rt.install('api', CLS_API, BY)
    await w.rt.call('data', 'obj', 'api.all')
    const before = snapshot(w.store, 'data', 'obj')
    await assert.rejects(w.rt.call('data', 'obj', 'api.half'), (e: LuaError) => e.code === 'EIO' && /^api\.lua:\d+: changed my mind$/.test(e.reason))
    assert.deepEqual(snapshot(w.store, 'data', 'obj'), before)
    assert.equal(str(w.store.readSync('data', 'obj', 0, 100)), 'hello\u0000\u0000\u0000')
    assert.equal(str(await w.store.getXattr('data', 'obj', 'user.x')), 'X')
    // On an absent object too: nothing gets created.
    await assert.rejects(w.rt.call('data', 'fresh', 'api.half'))
    assert.equal(w.store.statSync('data', 'fresh'), null)
  } finally { await w.done() }
})

classTest('concurrent calls lose no update: one object, many objects, and an outside writer forcing conflicts', async backend => {
  // A generous bound on attempts: the point here is that no update is lost, not how soon a call gives
  // up (relay.test.ts does that); on a loaded machine an outside writer every 2 ms can win 10 times running.
  const w = await freshWorld('concurrent', { backend, runtime: { maxAttempts: 40 } })
  try {
    await w.rt.install('counter', COUNTER_LUA, BY)
    const n = 3000
    const results = await Promise.all(Array.from({ length: n }, () => w.rt.call('data', 'one', 'counter.incr')))
    assert.equal(str((await w.rt.call('data', 'one', 'counter.get')).output), String(n))
    // Every value from 1 to n came back exactly once: the calls were serialized.
    assert.deepEqual(results.map(r => Number(str(r.output))).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i + 1))
    assert.equal(w.store.statSync('data', 'one')?.version, n)

    await Promise.all(Array.from({ length: n }, (_, i) => w.rt.call('data', `c${i % 37}`, 'counter.incr', `{"by": ${i % 5}}`)))
    for (let k = 0; k < 37; k++) {
      let want = 0
      for (let i = k; i < n; i += 37) want += i % 5
      assert.equal(str((await w.rt.call('data', `c${k}`, 'counter.get')).output), String(want))
    }

    // Someone else changes the object (another key) between a batch's snapshot and its commit:
    // the first few commits on it are preceded by an outside write, so their guards fail for sure.
    let injected = 0
    const meddling = new Proxy(w.store, {
      get (target, prop) {
        if (prop === 'submit') {
          return async (batch: ObjectWrite[], opts: { durable: boolean }) => {
            if (injected < 5 && batch.some(x => x.name === 'shared')) {
              injected++
              await target.submit([{ pool: 'data', name: 'shared', ops: [{ op: 'omapSet', entries: [[b('outside'), b(String(injected))]] }] }], { durable: false })
            }
            return await target.submit(batch, opts)
          }
        }
        const v = Reflect.get(target, prop, target) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      }
    })
    const other = new ClassRuntime(meddling, w.mon, w.pool)
    const calls = await Promise.all(Array.from({ length: 500 }, () => other.call('data', 'shared', 'counter.incr')))
    assert.equal(injected, 5)
    assert.equal(str((await other.call('data', 'shared', 'counter.get')).output), '500')
    assert.equal(str(w.store.omapGetSync('data', 'shared', [b('outside')])[0].value), '5')
    assert.ok(calls.some(c => c.attempts > 1), 'conflicting calls ran again')
    await other.close()

    // And with a writer outside the runtime changing the object at random times.
    let outside = 0
    let stop = false
    const writer = (async () => {
      while (!stop) {
        await w.store.submit([{ pool: 'data', name: 'shared2', ops: [{ op: 'omapSet', entries: [[b('outside'), b(String(++outside))]] }] }], { durable: false })
        await new Promise(resolve => setTimeout(resolve, 2))
      }
    })()
    try {
      await Promise.all(Array.from({ length: 500 }, () => w.rt.call('data', 'shared2', 'counter.incr')))
    } finally {
      stop = true
      await writer
    }
    assert.equal(str((await w.rt.call('data', 'shared2', 'counter.get')).output), '500')
    assert.equal(str(w.store.omapGetSync('data', 'shared2', [b('outside')])[0].value), String(outside))
  } finally { await w.done() }
})

classTest('an upgrade reaches the runtime through the monitor; later calls use it, started calls keep theirs', async backend => {
  const w = await freshWorld('upgrade', { backend })
  try {
    const v1 = 'return { which = function () return "v1" end, slow = function () local n = 0 for i = 1, 1e6 do n = n + 1 end return "v1" end }'
    const v2 = 'return { which = function () return "v2" end, slow = function () return "v2" end, extra = function () return "new" end }'
    await w.rt.install('ver', v1, BY)
    assert.equal(str((await w.rt.call('data', 'o', 'ver.which')).output), 'v1')
    // A call started before the upgrade runs entirely on v1, even though v2 lands while it runs.
    const started = w.rt.call('data', 'o2', 'ver.slow')
    const epochBefore = w.mon.get('classmap').epoch
    assert.equal(await w.rt.install('ver', v2, BY), 2)
    assert.equal(w.mon.get('classmap').epoch, epochBefore + 1)
    const r = await w.rt.call('data', 'o', 'ver.which')
    assert.equal(str(r.output), 'v2')
    assert.equal(r.classVersion, 2)
    assert.equal(str((await w.rt.call('data', 'o', 'ver.extra')).output), 'new')
    const old = await started
    assert.equal(str(old.output), 'v1')
    assert.equal(old.classVersion, 1)
    assert.deepEqual(w.rt.list().map(c => [c.name, c.version, c.methods]), [['ver', 2, ['extra', 'slow', 'which']]])
    // Both versions stay in the classes pool.
    assert.deepEqual(await w.store.list(CLASS_POOL, { limit: 10 }), ['ver.1', 'ver.2'])
  } finally { await w.done() }
})

classTest('a change to the classmap made elsewhere (another runtime) reaches this runtime', async backend => {
  const w = await freshWorld('elsewhere', { backend })
  try {
    await w.rt.install('counter', COUNTER_LUA, BY)
    // A second runtime on the same store, monitor and pool stands in for another store daemon.
    const { ClassRuntime } = await import('../../src/store/classes')
    const other = new ClassRuntime(w.store, w.mon, w.pool)
    assert.deepEqual(other.list().map(c => c.version), [1])
    await w.rt.install('counter', COUNTER_LUA.replace('local by = a.by or 1', 'local by = a.by or 100'), BY)
    assert.deepEqual(other.list().map(c => c.version), [2])
    assert.equal(str((await other.call('data', 'h', 'counter.incr')).output), '100')
    await other.close()
  } finally { await w.done() }
})

test('a runtime opened on an existing store loads the classes from the monitor map', async () => {
  const dir = tmpDir('reopen')
  try {
    let w = await openWorld(dir)
    await w.rt.install('counter', COUNTER_LUA, BY)
    await w.rt.call('data', 'hits', 'counter.incr', '{"by": 41}')
    await w.close()
    w = await openWorld(dir)
    assert.deepEqual(w.rt.list().map(c => [c.name, c.version]), [['counter', 1]])
    assert.equal(str((await w.rt.call('data', 'hits', 'counter.incr')).output), '42')
    await w.close()
  } finally { fs.rmSync(dir, { recursive: true, force: true }) }
})

classTest('a classmap entry whose script object is missing or altered is refused, not run', async backend => {
  const w = await freshWorld('tamper', { backend })
  try {
    await w.rt.install('counter', COUNTER_LUA, BY)
    await w.store.submit([{ pool: CLASS_POOL, name: 'counter.1', ops: [{ op: 'writeFull', data: b('return { incr = function () return "evil" end }') }] }], { durable: false })
    const { ClassRuntime } = await import('../../src/store/classes')
    const other = new ClassRuntime(w.store, w.mon, w.pool)
    assert.match(other.list()[0].error ?? '', /does not match the classmap's sha256/)
    await assert.rejects(other.call('data', 'h', 'counter.incr'), (e: FsError) => e.code === 'EIO' && /cannot be used/.test(e.message))
    await other.close()
  } finally { await w.done() }
})

const HOSTILE_CLS = `
return {
  spin = function () cls.map_set_val('k', 'spun') cls.write_full('spun') while true do end end,
  hog = function () cls.map_set_val('k', 'hogged') local t = {} local i = 0 while true do i = i + 1 t[i] = i end end,
  stuck = function () cls.write_full('stuck') return string.rep('a', 200000):find('.-.-.-.-.-.-b') end,
  ok = function () cls.map_set_val('k', 'ok') return 'ok' end,
  flood = function () local s = string.rep('x', 1000000) for i = 0, 100 do cls.write(i * 1000000, s) end end,
}
`

classTest('hostile methods are contained (time, memory, a stuck worker, a flood of writes) and leave their objects untouched', async backend => {
  const w = await freshWorld('hostile', {
    backend,
    pool: { limits: { memoryBytes: 16 * 1024 * 1024 }, graceMs: 700 },
    runtime: { limits: { timeMs: 300, instructions: 1e12 } }
  })
  try {
    await w.rt.install('hostile', HOSTILE_CLS, BY)
    await w.rt.call('data', 'target', 'hostile.ok')
    const before = snapshot(w.store, 'data', 'target')
    const quick = Array.from({ length: 50 }, (_, i) => w.rt.call('data', `bystander${i % 5}`, 'hostile.ok'))
    await assert.rejects(w.rt.call('data', 'target', 'hostile.spin'), (e: LuaError) => e.code === 'ETIMEDOUT' && /^hostile\.lua:3: time budget of 300 ms exceeded/.test(e.reason))
    await assert.rejects(w.rt.call('data', 'target', 'hostile.hog'), (e: LuaError) => e.code === 'ENOMEM')
    await assert.rejects(w.rt.call('data', 'target', 'hostile.stuck'), (e: LuaError) => e.code === 'ETIMEDOUT' && /did not return within its time budget/.test(e.reason))
    await assert.rejects(w.rt.call('data', 'target', 'hostile.flood'), (e: LuaError) => e.code === 'EFBIG' && /^hostile\.lua:7: cls\.write: the call would buffer \d+ bytes of writes/.test(e.reason))
    assert.deepEqual(snapshot(w.store, 'data', 'target'), before)
    for (const r of await Promise.all(quick)) assert.equal(str(r.output), 'ok')
    assert.equal(str((await w.rt.call('data', 'target', 'hostile.ok')).output), 'ok')
    assert.ok(w.pool.stats().workersReplaced >= 1)
  } finally { await w.done() }
})
