// Object classes and the monitor through a server: install, call, upgrade
// reaching every caller, hostile methods contained while other clients go
// on, and maps surviving a restart with their epochs.

import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { after, test } from 'node:test'
import { cleanupServers, cudele, libraryChild, startServer } from '../helpers/server'

after(async () => { await cleanupServers() })

const COUNTER_V2 = `
-- counter v2: increments count twice as fast (to tell the versions apart)
local function incr (input)
  local by = 1
  if input ~= nil and input ~= '' then by = json.decode(input).by or 1 end
  local v = tonumber(cls.map_get_val('count') or '0') + 2 * by
  cls.map_set_val('count', tostring(v))
  return tostring(v)
end
return { incr = incr }
`

const LOOP = `
local function spin () while true do end end
local function hog () local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep('x', 40000000) .. i end end
local function grab () return io.open('/etc/passwd') end
return { spin = spin, hog = hog, grab = grab }
`

test('class install, call, upgrade: every call after the upgrade runs the new version', async () => {
  const srv = await startServer()
  const counter = path.join(__dirname, '..', '..', '..', 'examples', 'classes', 'counter.lua')
  const inst = await cudele(`class install --connect ${srv.addr} counter "${counter}"`)
  assert.equal(inst.code, 0, inst.stderr)
  assert.match(inst.stdout, /version 1/)
  assert.equal((await cudele(`class call --connect ${srv.addr} data obj counter.incr '{"by":2}'`)).stdout.trim(), '2')
  assert.equal((await cudele(`class call --connect ${srv.addr} data obj counter.incr '{"by":2}'`)).stdout.trim(), '4')
  const v2 = path.join(srv.root, 'counter2.lua')
  fs.writeFileSync(v2, COUNTER_V2)
  assert.match((await cudele(`class install --connect ${srv.addr} counter "${v2}"`)).stdout, /version 2/)
  assert.equal((await cudele(`class call --connect ${srv.addr} data obj counter.incr '{"by":1}'`)).stdout.trim(), '6')
  const list = await cudele(`class list --connect ${srv.addr}`)
  assert.match(list.stdout, /counter version 2/)
  const st = await srv.status()
  assert.equal(st.maps.find(m => m.name === 'classmap')?.epoch, 2)
})

test('hostile methods are stopped with a clear error while another client keeps working', { timeout: 120000 }, async () => {
  const srv = await startServer()
  const f = path.join(srv.root, 'hostile.lua')
  fs.writeFileSync(f, LOOP)
  assert.equal((await cudele(`class install --connect ${srv.addr} hostile "${f}"`)).code, 0)
  // A client doing metadata work the whole time.
  const worker = libraryChild(srv, `
    const d = await c.mkdir(1, 'busy', 0o755, caller)
    let worst = 0
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now()
      await c.mknod(d.ino, 'f' + i, 0o100644, 0, caller)
      worst = Math.max(worst, performance.now() - t0)
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    log('done ' + Math.round(worst))
    await c.close()`)
  const spin = await cudele(`class call --connect ${srv.addr} data x hostile.spin`, { timeoutMs: 60000 })
  assert.notEqual(spin.code, 0)
  assert.match(spin.stderr, /ETIMEDOUT|budget|time/i)
  const hog = await cudele(`class call --connect ${srv.addr} data x hostile.hog`, { timeoutMs: 60000 })
  assert.notEqual(hog.code, 0)
  assert.match(hog.stderr, /ENOMEM|memory/i)
  const grab = await cudele(`class call --connect ${srv.addr} data x hostile.grab`)
  assert.notEqual(grab.code, 0)
  assert.match(grab.stderr, /io is not available|sandbox/i)
  const line = await worker.waitFor(/^done /, 90000)
  // The metadata client was never held up for anything like a Lua budget.
  assert.ok(Number(line.split(' ')[1]) < 1500, line)
  assert.equal(await worker.exit(), 0)
})

test('monitor maps keep their epochs across a server restart', async () => {
  const srv = await startServer()
  const counter = path.join(__dirname, '..', '..', '..', 'examples', 'classes', 'counter.lua')
  for (let i = 0; i < 3; i++) assert.equal((await cudele(`class install --connect ${srv.addr} counter "${counter}"`)).code, 0)
  const before = await srv.status()
  const classmap = before.maps.find(m => m.name === 'classmap')?.epoch
  const mdsmap = before.maps.find(m => m.name === 'mdsmap')?.epoch ?? 0
  assert.equal(classmap, 3)
  await srv.kill()
  await srv.start()
  const afterRestart = await srv.status()
  assert.equal(afterRestart.maps.find(m => m.name === 'classmap')?.epoch, 3)
  assert.equal(afterRestart.maps.find(m => m.name === 'mdsmap')?.epoch, mdsmap + 1)
  assert.equal((await cudele(`class call --connect ${srv.addr} data y counter.incr`)).stdout.trim(), '1')
})
