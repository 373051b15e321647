// Hostile and faulty scripts: each is stopped with a clear error that names
// the script (and the line, where Lua knows it), and the pool keeps working
// afterwards. The budgets are small so the file runs quickly.

import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createLuaPool, LuaError, LuaPool } from '../../src/lua'

const LIMITS = { timeMs: 300, instructions: 5_000_000, memoryBytes: 16 * 1024 * 1024 }
const GRACE_MS = 700

let pool: LuaPool
before(async () => {
  // A generous grace: on a loaded machine a worker may wait for a CPU, and only the
  // stuck-pattern case below is meant to reach the watchdog.
  pool = createLuaPool({ workers: 2, limits: LIMITS, graceMs: GRACE_MS })
  await pool.ready()
})
after(async () => { await pool.close() })

const HOSTILE = `local M = {}
function M.loop () local x = 0 while true do x = x + 1 end end
function M.table () local t = {} local i = 0 while true do i = i + 1 t[i] = i end end
function M.rep () return string.rep('x', 1e10) end
function M.rep_big () return #string.rep('x', 1e8) end
function M.concat () local s = 'x' while true do s = s .. s end end
function M.io () return io.open('/etc/passwd') end
function M.os () return os.execute('touch /tmp/cudele-lua-escaped') end
function M.require () return require('os') end
function M.load () return load(string.char(27) .. 'Lua') end
function M.debug () debug.sethook(function () end, '', 0) end
function M.dump () return string.dump(M.loop) end
function M.recurse () local function f (n) return 1 + f(n + 1) end return f(1) end
function M.cstack () local t = setmetatable({}, { __index = function (t, k) return t[k] end }) return t.x end
function M.errtable () error({ code = 1 }) end
function M.pcall_loop () while true do pcall(function () while true do end end) end end
function M.xpcall_loop () return xpcall(function () while true do end end, function () while true do end end) end
function M.gc () setmetatable({}, { __gc = function () while true do end end }) end
function M.collect () collectgarbage() end
function M.coroutine () return coroutine.create(M.loop) end
function M.global () leaked = 1 end
function M.print () print('hello') end
function M.strmeta () getmetatable('').__index.upper = function () return 'pwned' end end
function M.ok (x) return 'ok:' .. x end
return M
`
const script = { name: 'hostile.lua', version: 1, source: HOSTILE }

async function failure (fn: string): Promise<LuaError> {
  try {
    await pool.call(script, fn, '')
  } catch (err) {
    assert.ok(err instanceof LuaError, `${fn}: a LuaError, got ${String(err)}`)
    return err
  }
  assert.fail(`${fn} should have failed`)
}

const CASES: Array<[fn: string, errno: string, message: RegExp, line: number | null]> = [
  ['loop', 'ETIMEDOUT', /^hostile\.lua:2: (time|instruction) budget .* exceeded/, 2],
  ['table', 'ENOMEM', /^hostile\.lua: memory budget of 16 MiB exceeded/, null],
  ['rep', 'EIO', /^hostile\.lua:4: resulting string too large/, 4],
  ['rep_big', 'ENOMEM', /memory budget of 16 MiB exceeded/, null],
  ['concat', 'ENOMEM', /memory budget of 16 MiB exceeded/, null],
  ['io', 'EIO', /^hostile\.lua:7: io is not available in the sandbox/, 7],
  ['os', 'EIO', /^hostile\.lua:8: os is not available in the sandbox/, 8],
  ['require', 'EIO', /^hostile\.lua:9: require is not available in the sandbox/, 9],
  ['load', 'EIO', /^hostile\.lua:10: load is not available in the sandbox/, 10],
  ['debug', 'EIO', /^hostile\.lua:11: debug is not available in the sandbox/, 11],
  ['dump', 'EIO', /^hostile\.lua:12: string\.dump is not available in the sandbox/, 12],
  ['recurse', 'E', /^hostile\.lua(:13: stack overflow|: memory budget)/, null],
  ['cstack', 'EIO', /^hostile\.lua:14: .*(C stack overflow|stack overflow)/, 14],
  ['errtable', 'EIO', /^hostile\.lua:15: error object is a table value/, 15],
  ['pcall_loop', 'ETIMEDOUT', /^hostile\.lua:16: (time|instruction) budget/, 16],
  ['xpcall_loop', 'ETIMEDOUT', /^hostile\.lua:17: (time|instruction) budget/, 17],
  ['gc', 'EIO', /^hostile\.lua:18: setmetatable: __gc metamethods are not allowed/, 18],
  ['collect', 'EIO', /^hostile\.lua:19: collectgarbage is not available/, 19],
  ['coroutine', 'EIO', /^hostile\.lua:20: coroutine is not available/, 20],
  ['global', 'EIO', /^hostile\.lua:21: cannot set global 'leaked': globals are read-only/, 21],
  ['print', 'EIO', /^hostile\.lua:22: print is not available/, 22],
  ['strmeta', 'EIO', /^hostile\.lua:23: attempt to index a boolean value/, 23]
]

for (const [fn, errno, message, line] of CASES) {
  test(`hostile: ${fn} is stopped with a clear error`, async () => {
    const t0 = Date.now()
    const err = await failure(fn)
    assert.match(err.reason, message)
    if (errno !== 'E') assert.equal(err.code, errno, err.message)
    assert.equal(err.script, 'hostile.lua')
    if (line !== null) assert.equal(err.line, line)
    // Budgets stop a call on their own, well before the watchdog would.
    assert.ok(Date.now() - t0 < LIMITS.timeMs + 1000, `took ${Date.now() - t0} ms`)
    // The sandbox is still good, in both workers.
    const outs = await Promise.all([pool.call(script, 'ok', 'a'), pool.call(script, 'ok', 'b')])
    assert.deepEqual(outs.map(String), ['ok:a', 'ok:b'])
  })
}

test('a stuck C function (a pathological pattern) is stopped by the watchdog; the worker is replaced', async () => {
  const stuck = { name: 'stuck.lua', version: 1, source: "return { find = function () return string.rep('a', 200000):find('.-.-.-.-.-.-b') end }" }
  const before = pool.stats().workersReplaced
  const t0 = Date.now()
  await assert.rejects(pool.call(stuck, 'find', ''), (e: LuaError) =>
    e.code === 'ETIMEDOUT' && e.kind === 'timeout' && /^stuck\.lua: did not return within its time budget of 300 ms/.test(e.reason))
  const took = Date.now() - t0
  assert.ok(took >= LIMITS.timeMs + GRACE_MS && took < LIMITS.timeMs + GRACE_MS + 1500, `took ${took} ms`)
  assert.equal(pool.stats().workersReplaced, before + 1)
  assert.equal(String(await pool.call(script, 'ok', 'after')), 'ok:after')
})

test('nothing escaped: no file was created by os.execute, and the string library is intact', async () => {
  const fs = await import('fs')
  assert.equal(fs.existsSync('/tmp/cudele-lua-escaped'), false)
  const probe = { name: 'probe.lua', version: 1, source: "return { up = function (s) return s:upper() .. string.upper('b') end }" }
  assert.equal(String(await pool.call(probe, 'up', 'a')), 'AB')
})

test('bytecode never loads: a binary chunk is refused at compile time', async () => {
  const bin = { name: 'bin.lua', version: 1, source: '\u001bLua' + 'T\u0000' }
  await assert.rejects(pool.call(bin, 'f', ''), (e: LuaError) => e.code === 'EINVAL' && /binary chunk|mode is 't'|bad binary|truncated/.test(e.reason))
})

test('syntax and runtime errors carry the script name and line', async () => {
  await assert.rejects(pool.check('broken.lua', 'local x = 1\nlocal y = = 2\n'), (e: LuaError) =>
    e.code === 'EINVAL' && e.kind === 'syntax' && e.script === 'broken.lua' && e.line === 2 && /^broken\.lua:2: unexpected symbol near '='/.test(e.reason))
  const bad = { name: 'counter.lua', version: 1, source: 'local M = {}\n\nfunction M.incr (input)\n  local t\n  return t.count + 1\nend\nreturn M\n' }
  await assert.rejects(pool.call(bad, 'incr', ''), (e: LuaError) =>
    e.code === 'EIO' && e.message === "EIO: counter.lua:5: attempt to index a nil value (local 't')" && e.line === 5)
  await assert.rejects(pool.call(bad, 'decr', ''), (e: LuaError) => e.code === 'ENOENT' && /no function 'decr' \(it exports: incr\)/.test(e.reason))
  const topLevel = { name: 'top.lua', version: 1, source: 'local a = nil\nlocal b = a.field\nreturn {}\n' }
  await assert.rejects(pool.call(topLevel, 'x', ''), (e: LuaError) => e.code === 'EIO' && e.line === 2)
})

test('an instruction budget below the time budget stops a loop by instructions', async () => {
  const small = createLuaPool({ workers: 1, limits: { timeMs: 5000, instructions: 100_000 } })
  try {
    const s = { name: 'spin.lua', version: 1, source: 'return { spin = function () local n = 0 for i = 1, 1e9 do n = n + i end return n end, short = function () local n = 0 for i = 1, 1000 do n = n + i end return n end }' }
    const t0 = Date.now()
    await assert.rejects(small.call(s, 'spin', ''), (e: LuaError) => e.code === 'ETIMEDOUT' && /^spin\.lua:1: instruction budget of 100000 instructions exceeded/.test(e.reason))
    // Well before the 5 s time budget.
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`)
    assert.equal(String(await small.call(s, 'short', '')), '500500')
  } finally { await small.close() }
})
