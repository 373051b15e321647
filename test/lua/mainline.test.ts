// A host's line to the main thread (src/lua/mainline.ts): a host function
// asks, the main thread answers (at once or later), errors come back with
// their errno, and a host registered without an answer gets no line.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'path'
import { createLuaPool, LuaError } from '../../src/lua'

const HOST = { module: path.join(__dirname, 'askhost.js') }
const ASK = { name: 'ask.lua', version: 1, source: 'return { ask = function (x) return ask(x) end, twice = function (x) return ask(x) .. ask(x .. "!") end, has = function () return hasline() end }' }

test('a host function asks the main thread and gets its answer, sync or async, in order', async () => {
  const pool = createLuaPool({ workers: 2 })
  const asked: string[] = []
  try {
    pool.registerHost('ask', HOST, undefined, async (req: unknown) => {
      asked.push(String(req))
      if (String(req).startsWith('late')) await new Promise(resolve => setTimeout(resolve, 20))
      return `<${String(req)}>`
    })
    assert.equal(String(await pool.call(ASK, 'ask', 'hello', { host: 'ask' })), '<hello>')
    assert.equal(String(await pool.call(ASK, 'twice', 'late', { host: 'ask' })), '<late><late!>')
    const many = await Promise.all(Array.from({ length: 200 }, (_, i) => pool.call(ASK, 'ask', `q${i}`, { host: 'ask' })))
    many.forEach((o, i) => assert.equal(String(o), `<q${i}>`))
    assert.equal(String(await pool.call(ASK, 'has', '', { host: 'ask' })), 'true')
    assert.equal(asked.length, 203)
  } finally { await pool.close() }
})

test('an answer that fails raises its errno in the script; a host without an answer has no line', async () => {
  const pool = createLuaPool({ workers: 1 })
  try {
    pool.registerHost('ask', HOST, undefined, (req: unknown) => {
      throw Object.assign(new Error(`no such thing: ${String(req)}`), { errno: 'ENOENT' })
    })
    await assert.rejects(pool.call(ASK, 'ask', 'x', { host: 'ask' }), (e: LuaError) => e.code === 'ENOENT' && /ask\.lua:1: no such thing: x/.test(e.reason))
    pool.registerHost('silent', HOST)
    assert.equal(String(await pool.call(ASK, 'has', '', { host: 'silent' })), 'false')
    // The line goes with the host: unregistered, then registered again with another answer.
    pool.unregisterHost('ask')
    pool.registerHost('ask', HOST, undefined, () => 'again')
    assert.equal(String(await pool.call(ASK, 'ask', 'x', { host: 'ask' })), 'again')
  } finally { await pool.close() }
})
