// Object classes with the real monitor (src/mon): install and upgrade go
// through its proposal rounds and subscriptions, and the classmap persists
// with it in the store, so a runtime opened later finds the classes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import { createLuaPool } from '../../src/lua'
import { openMonitor } from '../../src/mon'
import { openStore } from '../../src/store'
import { ClassRuntime } from '../../src/store/classes'
import { BY, COUNTER_LUA, str, tmpDir } from './helpers'

test('install, call, upgrade and reopen with the real monitor', async () => {
  const dir = tmpDir('realmon')
  const pool = createLuaPool({ workers: 2 })
  try {
    {
      const store = await openStore(dir, { create: true })
      await store.createPool('data')
      const mon = await openMonitor(store, { proposalIntervalMs: 1 })
      const rt = new ClassRuntime(store, mon, pool)
      // A second runtime stands in for another daemon subscribed to the same monitor.
      const follower = new ClassRuntime(store, mon, pool)
      try {
        assert.equal(await rt.install('counter', COUNTER_LUA, BY), 1)
        assert.deepEqual(follower.list().map(c => c.version), [1], 'the follower switched before install resolved')
        const results = await Promise.all(Array.from({ length: 200 }, () => rt.call('data', 'hits', 'counter.incr')))
        assert.equal(results.length, 200)
        assert.equal(str((await follower.call('data', 'hits', 'counter.get')).output), '200')
        assert.equal(await rt.install('counter', COUNTER_LUA.replace('local by = a.by or 1', 'local by = a.by or 10'), BY), 2)
        assert.deepEqual(follower.list().map(c => c.version), [2])
        const r = await follower.call('data', 'hits', 'counter.incr')
        assert.equal(r.classVersion, 2)
        assert.equal(str(r.output), '210')
        assert.equal(mon.get('classmap').epoch, 2)
        await rt.call('data', 'hits', 'counter.reset')
        // cls.log reached the cluster log.
        assert.ok(mon.recentLog(50).some(e => e.who === 'cls.counter' && /reset from 210/.test(e.message)))
      } finally {
        await follower.close()
        await rt.close()
        await mon.close()
        await store.close()
      }
    }
    {
      const store = await openStore(dir)
      const mon = await openMonitor(store, { proposalIntervalMs: 1 })
      const rt = new ClassRuntime(store, mon, pool)
      try {
        assert.deepEqual(rt.list().map(c => [c.name, c.version]), [['counter', 2]])
        assert.equal(str((await rt.call('data', 'hits', 'counter.incr')).output), '10')
      } finally {
        await rt.close()
        await mon.close()
        await store.close()
      }
    }
  } finally {
    await pool.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
