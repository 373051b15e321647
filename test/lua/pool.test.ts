// The pool: results, batching, scripts and versions, and — the point of
// running Lua in workers — that a hostile call does not hold up other calls
// or the main thread.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLuaPool, LuaError } from '../../src/lua'

const MATH = { name: 'math.lua', version: 1, source: 'return { double = function (x) return tonumber(x) * 2 end, echo = function (x) return x end, none = function () end, tbl = function (x) return { x = x, list = { 1, 2, 3 } } end, bool = function () return true end }' }
const SLOW = { name: 'slow.lua', version: 1, source: 'return { spin = function () while true do end end }' }

test('calls return strings, numbers, booleans, tables (as JSON) and bytes unchanged', async () => {
  const pool = createLuaPool({ workers: 2 })
  try {
    assert.equal(String(await pool.call(MATH, 'double', '21')), '42')
    assert.equal(String(await pool.call(MATH, 'bool', '')), 'true')
    assert.equal((await pool.call(MATH, 'none', '')).length, 0)
    assert.deepEqual(JSON.parse(String(await pool.call(MATH, 'tbl', 'v'))), { x: 'v', list: [1, 2, 3] })
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    assert.deepEqual(await pool.call(MATH, 'echo', bytes), bytes)
    assert.deepEqual(await pool.call(MATH, 'echo', bytes.subarray(10, 20)), bytes.subarray(10, 20))
  } finally { await pool.close() }
})

test('many concurrent calls are batched into few messages and all come back right', async () => {
  const pool = createLuaPool({ workers: 2 })
  try {
    const n = 5000
    const outs = await Promise.all(Array.from({ length: n }, (_, i) => pool.call(MATH, 'double', String(i))))
    outs.forEach((o, i) => assert.equal(String(o), String(2 * i)))
    const st = pool.stats()
    assert.ok(st.messages < n / 10, `${st.messages} messages for ${n} calls`)
  } finally { await pool.close() }
})

test('scripts are cached per (name, version): a new version replaces the old for new calls', async () => {
  const pool = createLuaPool({ workers: 2, maxScriptsPerWorker: 3 })
  try {
    for (let v = 1; v <= 6; v++) {
      const s = { name: 'v.lua', version: v, source: `return { v = function () return ${v} end }` }
      const outs = await Promise.all([pool.call(s, 'v', ''), pool.call(s, 'v', ''), pool.call(s, 'v', '')])
      assert.deepEqual(outs.map(String), [String(v), String(v), String(v)])
    }
    // Old versions were evicted from the workers (at most 3 kept), and come back when used again.
    assert.equal(String(await pool.call({ name: 'v.lua', version: 1, source: 'return { v = function () return 1 end }' }, 'v', '')), '1')
  } finally { await pool.close() }
})

test('inspect runs the top level and lists what the script exports', async () => {
  const pool = createLuaPool({ workers: 1 })
  try {
    assert.deepEqual(await pool.inspect(MATH), { functions: ['bool', 'double', 'echo', 'none', 'tbl'], returnedTable: true })
    assert.deepEqual(await pool.inspect({ name: 'g.lua', version: 1, source: 'local function helper () end\nfunction a () end\nfunction b () end' }), { functions: ['a', 'b'], returnedTable: false })
    await assert.rejects(pool.inspect({ name: 'loop.lua', version: 1, source: 'while true do end' }), (e: LuaError) => e.code === 'ETIMEDOUT')
  } finally { await pool.close() }
})

test('while a hostile call spins, other calls and the main thread keep going', async () => {
  const pool = createLuaPool({ workers: 2, limits: { timeMs: 1000, instructions: 1e12 }, graceMs: 300 })
  try {
    await pool.ready()
    const stuckPattern = { name: 'stuck.lua', version: 1, source: "return { find = function () return string.rep('a', 200000):find('.-.-.-.-.-.-b') end }" }
    // A timer on the main thread: if Lua ran here, it would not fire at all while a call spins.
    let ticks = 0
    const timer = setInterval(() => { ticks++ }, 5)
    const t0 = Date.now()
    const hostile = [
      pool.call(SLOW, 'spin', '').catch((e: LuaError) => e),
      pool.call(stuckPattern, 'find', '').catch((e: LuaError) => e)
    ]
    // Both workers are now busy with hostile calls; calls queued behind them are taken back
    // and run as soon as a worker is free: here only after the hostile ones end, so measure from there.
    let done = 0
    const latencies: number[] = []
    const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const s = Date.now()
      const out = await pool.call(MATH, 'double', String(i))
      latencies.push(Date.now() - s)
      done++
      return String(out)
    }))
    results.forEach((r, i) => assert.equal(r, String(2 * i)))
    const errs = await Promise.all(hostile) as LuaError[]
    clearInterval(timer)
    const elapsed = Date.now() - t0
    assert.equal(errs[0].code, 'ETIMEDOUT')
    assert.match(errs[0].reason, /^slow\.lua:1: time budget of 1000 ms exceeded/)
    assert.equal(errs[1].code, 'ETIMEDOUT')
    assert.equal(done, 200)
    // Over a second of hostile calls: ~250 ticks on an idle machine; a loaded one delivers fewer,
    // but Lua on the main thread would have let none through while it spun.
    assert.ok(ticks >= 10, `only ${ticks} timer ticks in ${elapsed} ms: the main thread was blocked`)
    // The quick calls finished once a worker was free: within the budget (+ grace) of the hostile ones.
    assert.ok(Math.max(...latencies) < 1000 + 300 + 1500, `slowest quick call ${Math.max(...latencies)} ms`)
  } finally { await pool.close() }
})

test('with one worker spinning, the other serves calls promptly', async () => {
  const pool = createLuaPool({ workers: 2, limits: { timeMs: 800, instructions: 1e12 }, graceMs: 500 })
  try {
    await pool.ready()
    const spinning = pool.call(SLOW, 'spin', '').catch((e: LuaError) => e)
    await new Promise(resolve => setTimeout(resolve, 30))
    const t0 = Date.now()
    let n = 0
    while (Date.now() - t0 < 300) {
      assert.equal(String(await pool.call(MATH, 'double', String(n))), String(2 * n))
      n++
    }
    // Were both workers tied up, none would return before the spin ends (800 ms).
    assert.ok(n >= 3, `only ${n} calls in 300 ms while a worker spun`)
    const err = await spinning as LuaError
    assert.equal(err.code, 'ETIMEDOUT')
  } finally { await pool.close() }
})

test('calls batched behind a stuck call are taken back and run by the other worker', async () => {
  const pool = createLuaPool({ workers: 2, limits: { timeMs: 2000, instructions: 1e12 }, graceMs: 200 })
  try {
    // Queue before the workers are up: the first ready worker takes everything in one message.
    // Without stealing, the quick calls would wait the stuck call's 2 s budget.
    const stuckPattern = { name: 'stuck.lua', version: 1, source: "return { find = function () return string.rep('a', 200000):find('.-.-.-.-.-.-b') end }" }
    let stuckEnded = 0
    const stuck = pool.call(stuckPattern, 'find', '').catch((e: LuaError) => { stuckEnded = Date.now(); return e })
    const quick = await Promise.all(Array.from({ length: 20 }, async (_, i) => { await pool.call(MATH, 'double', String(i)); return Date.now() }))
    const quickEnded = Math.max(...quick)
    assert.equal((await stuck as LuaError).code, 'ETIMEDOUT')
    // However slowly the second worker starts, the quick calls do not wait for the stuck one's end.
    assert.ok(quickEnded < stuckEnded, `the quick calls ended ${quickEnded - stuckEnded} ms after the stuck one`)
    assert.ok(pool.stats().stolen >= 1)
  } finally { await pool.close() }
})

test('close fails queued calls with ECANCELED and later calls at once', async () => {
  const pool = createLuaPool({ workers: 1, limits: { timeMs: 300 }, graceMs: 500 })
  await pool.ready() // the spin goes alone, the rest queue behind it
  const spin = pool.call(SLOW, 'spin', '').catch((e: LuaError) => e)
  const queued = Array.from({ length: 5 }, () => pool.call(MATH, 'double', '1').catch((e: LuaError) => e))
  await new Promise(resolve => setTimeout(resolve, 50))
  await pool.close()
  assert.equal((await spin as LuaError).code, 'ETIMEDOUT', String(await spin))
  for (const q of await Promise.all(queued)) assert.equal((q as LuaError).code, 'ECANCELED', String(q))
  await assert.rejects(pool.call(MATH, 'double', '1'), (e: LuaError) => e.code === 'ECANCELED')
})
