// Client sessions: a client that dies is evicted after the session timeout
// and what it held is released (BUFFER, open files, unlinked files it kept
// alive); a client whose server restarts reconnects by itself, replays what
// was not yet safe, and nothing it was told is done gets lost or done twice;
// a client that cannot get back within its reconnect timeout fails its
// requests with ENOTCONN instead of hanging.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import * as path from 'path'
import { after, test } from 'node:test'
import { connect, type Connection, ROOT_INO, type Ino } from '../../src/index'
import { dataObjectPrefix } from '../../src/common/layout'
import { isDir } from '../../src/common/types'
import { startChild } from '../helpers/mount'
import { cleanupServers, cudele, libraryChild, mountClient, type ServerProc, startServer } from '../helpers/server'

after(cleanupServers)

const TIMEOUT_MS = 1500
const sessionArgs = ['--session-timeout', String(TIMEOUT_MS), '--heartbeat', '250']

/** Data objects of an inode, listed by a library client in a child (the test process keeps off the mounts' server paths). */
async function dataObjects (srv: ServerProc, ino: number): Promise<string[]> {
  const child = libraryChild(srv, `
    log(JSON.stringify(await c.backend.listData(${JSON.stringify(dataObjectPrefix(ino))}, undefined, 100)))
    await c.close()`)
  const line = await child.waitFor(/^\[/, 20000)
  await child.exit()
  return JSON.parse(line) as string[]
}

async function until<T> (what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

test('a killed client mount is evicted after the session timeout; its BUFFER and open files are released, its unlinked file purged', { timeout: 90000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  // On A: a file open for writing with buffered data (BUFFER), and an unlinked file kept open.
  const holder = startChild('python3', ['-u', '-c', `
import os, sys
fd = os.open('held', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b'A' * 100)
d = os.open('doomed', os.O_RDWR | os.O_CREAT, 0o644)
os.write(d, b'D' * 70000)
os.fsync(d)
ino = os.fstat(d).st_ino
os.unlink('doomed')
print('holding', ino, flush=True)
sys.stdin.readline()
`], { cwd: a.mnt, stdin: true })
  const doomedIno = Number((await holder.waitFor(/^holding \d+$/)).split(' ')[1])
  assert.ok((await dataObjects(srv, doomedIno)).length > 0, 'the unlinked file has data objects while it is open')

  const before = await srv.status()
  const sa = before.sessions.find(s => s.peer.includes(a.mnt))
  assert.ok(sa, `A's session in ${JSON.stringify(before.sessions)}`)
  assert.equal(sa.opens, 2)
  assert.equal(before.sessions.length, 2)

  await a.kill()
  holder.child.kill('SIGKILL')
  await holder.exit()
  const killedAt = performance.now()
  // B opens the file A was buffering: it must wait for A's eviction, and not much longer.
  const opener = startChild('python3', ['-u', '-c', `
import os, time
t = time.monotonic()
fd = os.open('held', os.O_WRONLY)
print('opened', int((time.monotonic() - t) * 1000), flush=True)
data = open('held', 'rb').read()
print('size', len(data), 'clean', data == b'A' * len(data), flush=True)
os.pwrite(fd, b'B', 0)
os.close(fd)
`], { cwd: b.mnt })
  await opener.waitFor(/^opened \d+$/, 20000)
  const sinceKill = performance.now() - killedAt
  assert.ok(sinceKill < TIMEOUT_MS + 2500, `B's open came ${sinceKill.toFixed(0)} ms after A died (session timeout ${TIMEOUT_MS} ms)`)
  // Whatever of A's buffered write made it, the size covers only stored data.
  assert.match(await opener.waitFor(/^size /), /^size (0|100) clean True$/)
  assert.equal(await opener.exit(), 0, opener.stderr())

  const st = await srv.status()
  assert.equal(st.sessions.find(s => s.id === sa.id), undefined, `A's session ${sa.id} is still listed`)
  assert.equal(st.sessions.length, 1)
  const log = await cudele(`log --connect "${srv.addr}" -n 50`)
  assert.equal(log.code, 0, log.stderr)
  assert.match(log.stdout, new RegExp(`WARN +mds\\.0: session ${sa.id} \\(${sa.name}\\) ended: no word from it for \\d+ ms \\(timeout ${TIMEOUT_MS} ms\\)`))
  assert.equal((await b.shOk('head -c 1 held')), 'B')

  // The unlinked file A kept alive is purged once its last holder is gone.
  await until('the unlinked file is purged', async () => (await dataObjects(srv, doomedIno)).length === 0, 10000)
  assert.equal(await srv.stop(), 0)
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
  assert.match(f.stderr, / 0 pending removal/)
})

test('a killed library client is evicted after the session timeout; status and the cluster log say so', { timeout: 60000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const child = libraryChild(srv, `
    const r = await c.create(${ROOT_INO}, 'lib-held', 0o644, 1, caller)
    await c.write(r.fh, 0, Buffer.from('from the library'))
    log('holding ' + r.attr.ino)
    await new Promise(() => {})`)
  await child.waitFor(/^holding \d+$/, 20000)
  const st = await srv.status()
  assert.equal(st.sessions.length, 1)
  const s = st.sessions[0]
  assert.match(s.peer, /^cudele-library pid \d+$/)
  assert.equal(s.peer, `cudele-library pid ${child.child.pid}`)
  assert.equal(s.connected, true)
  assert.equal(s.opens, 1)
  child.child.kill('SIGKILL')
  await child.exit()
  const t0 = performance.now()
  // First the connection drops (the session waits for its client to come back) ...
  await srv.waitStatus(x => x.sessions.length === 1 && !x.sessions[0].connected, 5000)
  // ... then the timeout ends it.
  await srv.waitStatus(x => x.sessions.length === 0, TIMEOUT_MS + 5000)
  const waited = performance.now() - t0
  assert.ok(waited > TIMEOUT_MS / 2, `evicted ${waited.toFixed(0)} ms after the kill, before the timeout`)
  const log = await cudele(`log --connect "${srv.addr}" -n 5`)
  assert.match(log.stdout, new RegExp(`session ${s.id} \\(${s.name}\\) ended: no word from it for \\d+ ms \\(timeout ${TIMEOUT_MS} ms\\)`))
  // Its buffered write was flushed by age or lost with it; either way another client can open the file for writing at once.
  const c = await connect(srv.addr)
  try {
    const a = await c.lookup(ROOT_INO, 'lib-held')
    assert.ok(a && (a.size === 0 || a.size === 16))
    const t1 = performance.now()
    const r = await c.open(a.ino, 1)
    assert.ok(performance.now() - t1 < 1000)
    await c.release(r.fh)
  } finally {
    await c.close()
  }
})

test('a library client closes promptly after writing (its last change becomes safe without a later one)', { timeout: 30000 }, async () => {
  const srv = await startServer()
  const child = libraryChild(srv, `
    const r = await c.create(${ROOT_INO}, 'f', 0o644, 1, caller)
    await c.write(r.fh, 0, Buffer.from('last words'))
    await c.release(r.fh)
    const t = performance.now()
    await c.close()
    log('closed in ' + Math.round(performance.now() - t) + ' unsafe ' + c.backend.base.unsafeCount)`)
  const line = await child.waitFor(/^closed in /, 20000)
  const [, ms, unsafe] = /^closed in (\d+) unsafe (\d+)$/.exec(line) as RegExpExecArray
  assert.equal(unsafe, '0')
  assert.ok(Number(ms) < 2000, line)
  assert.equal(await child.exit(), 0)
})

// ---- server restarts ----

const LANES = 4
const STEPS = 40

/**
 * The workload: LANES concurrent lanes, each doing STEPS steps of mkdir,
 * create+write+close, rename, link, sometimes unlink, a directory rename and a
 * chmod; every acknowledged operation is appended (synchronously) to a log
 * outside the store. Any error ends the workload with exit code 1.
 */
function workloadScript (logFile: string): string {
  return `
    const fs = require('fs')
    const done = line => fs.appendFileSync(${JSON.stringify(logFile)}, line + '\\n')
    const w = await c.mkdir(${ROOT_INO}, 'w', 0o755, caller)
    done('mkdir w')
    let steps = 0
    const lane = async l => {
      for (let i = 0; i < ${STEPS}; i++) {
        const n = l + '-' + i
        const d = await c.mkdir(w.ino, 'd' + n, 0o755, caller)
        done('mkdir d' + n)
        const r = await c.create(d.ino, 'f', 0o644, 1, caller)
        await c.write(r.fh, 0, Buffer.from(('data ' + n + '\\n').repeat(i % 7 + 1)))
        await c.release(r.fh)
        done('write d' + n + '/f')
        await c.rename(d.ino, 'f', d.ino, 'g', 0)
        done('rename d' + n + '/f d' + n + '/g')
        await c.link(r.attr.ino, w.ino, 'l' + n)
        done('link l' + n)
        if (i % 3 === 0) {
          await c.unlink(w.ino, 'l' + n)
          done('unlink l' + n)
        }
        if (i % 5 === 0) {
          await c.mkdir(d.ino, 'sub', 0o700, caller)
          await c.rename(d.ino, 'sub', w.ino, 'moved' + n, 0)
          done('mvdir d' + n + '/sub moved' + n)
        }
        await c.setattr(r.attr.ino, { mode: 0o600 })
        done('chmod d' + n + '/g')
        steps++
        log('steps ' + steps)
      }
    }
    await Promise.all(Array.from({ length: ${LANES} }, (_, l) => lane(l)))
    log('reconnects ' + c.backend.base.stats.reconnects + ' replayed ' + c.backend.base.stats.replayed)
    await c.close()
    log('done')`
}

/** What the tree under /w must be after the logged operations, checked through a library client. */
async function checkLogged (c: Connection, lines: string[]): Promise<void> {
  assert.equal(lines[0], 'mkdir w')
  const w = await c.lookup(ROOT_INO, 'w')
  assert.ok(w && isDir(w.mode))
  const expect = new Map<string, 'dir' | 'link'>()
  const entries = async (ino: Ino): Promise<string[]> => (await c.readdir(ino, null, 4096)).map(e => e.name).filter(n => n !== '.' && n !== '..').sort()
  for (const line of lines.slice(1)) {
    const [op, a, b] = line.split(' ')
    if (op === 'mkdir') expect.set(a, 'dir')
    else if (op === 'link') expect.set(a, 'link')
    else if (op === 'unlink') expect.delete(a)
    else if (op === 'mvdir') expect.set(b, 'dir')
  }
  // Exactly the logged names, nothing twice, nothing extra.
  assert.deepEqual(await entries(w.ino), [...expect.keys()].sort())
  const dirs = [...expect.values()].filter(v => v === 'dir').length
  assert.equal((await c.getattr(w.ino)).nlink, 2 + dirs, 'the nlink of w counts each subdirectory once')
  for (const line of lines.slice(1)) {
    const [op, a] = line.split(' ')
    if (op !== 'write') continue
    const n = a.slice(1, -2)
    const i = Number(n.split('-')[1])
    const d = await c.lookup(w.ino, 'd' + n)
    assert.ok(d, `d${n}`)
    const names = await entries(d.ino)
    // Renamed (logged) or not (the rename was not acknowledged: only at the very end).
    const renamed = lines.includes(`rename d${n}/f d${n}/g`)
    assert.deepEqual(names, [renamed ? 'g' : 'f'], `d${n} holds ${names}`)
    const g = await c.lookup(d.ino, names[0]) as NonNullable<Awaited<ReturnType<Connection['lookup']>>>
    const linked = lines.includes(`link l${n}`) && !lines.includes(`unlink l${n}`)
    assert.equal(g.nlink, linked ? 2 : 1, `nlink of d${n}/${names[0]}`)
    if (lines.includes(`chmod d${n}/g`)) assert.equal(g.mode & 0o7777, 0o600)
    const want = `data ${n}\n`.repeat(i % 7 + 1)
    assert.equal(g.size, want.length, `size of d${n}/${names[0]}`)
    const r = await c.open(g.ino, 0)
    assert.equal((await c.read(r.fh, 0, 4096)).toString(), want)
    await c.release(r.fh)
  }
}

test('the server is killed (-9) and restarted twice during a workload: the client reconnects and replays; every acknowledged operation is there exactly once; fsck is clean', { timeout: 180000 }, async () => {
  const srv = await startServer()
  const logFile = path.join(srv.root, 'acknowledged.log')
  const work = libraryChild(srv, workloadScript(logFile), { connect: { reconnectTimeoutMs: 30000 } })
  for (const at of [LANES * STEPS / 4, LANES * STEPS / 2]) {
    await work.waitFor(new RegExp(`^steps ${at}$`), 60000)
    await srv.kill()
    const ackedAtKill = fs.readFileSync(logFile, 'utf8').split('\n').length
    // The workload may have gone on past `at` before the kill landed (a busy machine): count from where it got.
    const stepsAtKill = Math.max(at, ...work.stdout().split('\n').map(l => /^steps (\d+)$/.exec(l)).filter(m => m !== null).map(m => Number(m[1])))
    await new Promise(resolve => setTimeout(resolve, 300))
    await srv.start()
    // The workload goes on by itself.
    await work.waitFor(new RegExp(`^steps ${stepsAtKill + LANES * 2}$`), 30000)
    assert.ok(fs.readFileSync(logFile, 'utf8').split('\n').length > ackedAtKill)
  }
  const stats = await work.waitFor(/^reconnects /, 90000)
  await work.waitFor(/^done$/, 30000)
  assert.equal(await work.exit(), 0, `the workload failed:\n${work.stdout().split('\n').filter(l => !l.startsWith('steps')).join('\n')}\n${work.stderr()}`)
  const [, reconnects, replayed] = /^reconnects (\d+) replayed (\d+)$/.exec(stats) as RegExpExecArray
  assert.equal(Number(reconnects), 2, stats)
  // Four lanes always have requests in flight: some were sent again.
  assert.ok(Number(replayed) > 0, stats)

  const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n')
  assert.equal(lines.filter(l => l.startsWith('chmod')).length, LANES * STEPS)
  const c = await connect(srv.addr)
  try {
    await checkLogged(c, lines)
  } finally {
    await c.close()
  }
  assert.equal(await srv.stop(), 0)
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
})

test('a client that cannot reach its server within reconnectTimeoutMs fails pending and new requests with ENOTCONN', { timeout: 60000 }, async () => {
  const srv = await startServer()
  const child = libraryChild(srv, `
    const t = () => Math.round(performance.now())
    await c.mkdir(${ROOT_INO}, 'before', 0o755, caller)
    log('ready')
    await new Promise(resolve => process.stdin.once('data', resolve))
    // Sent while the server is stopped (SIGSTOP): in flight when the server dies.
    const pending = c.mkdir(${ROOT_INO}, 'pending', 0o755, caller).then(() => 'ok', e => e.code)
    log('sent')
    await new Promise(resolve => process.stdin.once('data', resolve))
    const t0 = t()
    log('pending ' + await pending + ' ' + (t() - t0))
    for (const [what, op] of [['mkdir', () => c.mkdir(${ROOT_INO}, 'after', 0o755, caller)], ['lookup', () => c.lookup(${ROOT_INO}, 'before')], ['getattr', () => c.getattr(${ROOT_INO})]]) {
      const t1 = t()
      const r = await op().then(() => 'ok', e => e.code)
      log(what + ' ' + r + ' ' + (t() - t1))
    }
    process.exit(0)`, { connect: { reconnectTimeoutMs: 1000 }, stdin: true })
  await child.waitFor(/^ready$/, 20000)
  srv.child?.kill('SIGSTOP')
  child.child.stdin?.write('go\n')
  await child.waitFor(/^sent$/)
  await new Promise(resolve => setTimeout(resolve, 200))
  await srv.kill()
  const killedAt = performance.now()
  child.child.stdin?.write('go\n')
  const pending = await child.waitFor(/^pending /, 10000)
  const sinceKill = performance.now() - killedAt
  assert.match(pending, /^pending ENOTCONN \d+$/, child.stdout() + child.stderr())
  assert.ok(sinceKill > 500 && sinceKill < 5000, `the pending request failed ${sinceKill.toFixed(0)} ms after the server died (reconnect timeout 1000 ms)`)
  for (const what of ['mkdir', 'lookup', 'getattr']) {
    const line = await child.waitFor(new RegExp(`^${what} `), 10000)
    const [, code, ms] = line.split(' ')
    assert.equal(code, 'ENOTCONN', line)
    assert.ok(Number(ms) < 1000, `${line}: it gave up already, no need to wait again`)
  }
  assert.equal(await child.exit(), 0)
})

test('a server that hangs (SIGSTOP, connection still open) for longer than deadServerMs + reconnectTimeoutMs: pending requests fail with ENOTCONN', {
  timeout: 60000
}, async () => {
  const srv = await startServer()
  const child = libraryChild(srv, `
    await c.mkdir(${ROOT_INO}, 'before', 0o755, caller)
    log('ready')
    await new Promise(resolve => process.stdin.once('data', resolve))
    const t0 = performance.now()
    const r = await c.mkdir(${ROOT_INO}, 'during', 0o755, caller).then(() => 'ok', e => e.code)
    log('mkdir ' + r + ' ' + Math.round(performance.now() - t0))
    process.exit(0)`, { connect: { reconnectTimeoutMs: 1000, deadServerMs: 2000 }, stdin: true })
  try {
    await child.waitFor(/^ready$/, 20000)
    srv.child?.kill('SIGSTOP')
    child.child.stdin?.write('go\n')
    const line = await Promise.race([
      child.waitFor(/^mkdir /, 8000).catch(() => null),
      new Promise<null>(resolve => setTimeout(() => resolve(null), 8000))
    ])
    assert.ok(line !== null, 'the request was still pending 8 s into the hang (dead server after 2 s, reconnect timeout 1 s)')
    assert.match(line, /^mkdir ENOTCONN \d+$/)
  } finally {
    srv.child?.kill('SIGCONT')
  }
})

test('a client mount goes on by itself across a server kill -9 and restart; every file closed before is there, once', { timeout: 120000 }, async () => {
  const srv = await startServer()
  const m = await mountClient(srv, 'm')
  const logFile = path.join(srv.root, 'closed.log')
  // Each step: a new file written and closed, then renamed into a directory made for it; each acknowledged step is logged outside the store.
  const work = startChild('python3', ['-u', '-c', `
import os, sys
log = open(sys.argv[1], 'a')
for i in range(120):
    with open('f%d' % i, 'wb') as f:
        f.write(b'%d\\n' % i * (i + 1))
    log.write('closed f%d\\n' % i); log.flush()
    os.mkdir('d%d' % i)
    os.rename('f%d' % i, 'd%d/g' % i)
    log.write('moved d%d/g\\n' % i); log.flush()
    print('step', i, flush=True)
print('done', flush=True)
`, logFile], { cwd: m.mnt })
  await work.waitFor(/^step 30$/, 60000)
  await srv.kill()
  await new Promise(resolve => setTimeout(resolve, 300))
  await srv.start()
  await work.waitFor(/^done$/, 90000)
  assert.equal(await work.exit(), 0, work.stderr())
  const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n')
  assert.equal(lines.length, 240)
  const listing = (await m.shOk('ls')).trim().split('\n').sort()
  assert.deepEqual(listing, Array.from({ length: 120 }, (_, i) => `d${i}`).sort())
  const py = 'import sys\nfor i in range(120):\n    d = open("d%d/g" % i, "rb").read()\n    assert d == b"%d\\n" % i * (i + 1), (i, len(d))\nprint("ok")'
  assert.equal(await m.shOk('python3 -', { input: py }), 'ok\n')
  await m.stop()
  assert.equal(await srv.stop(), 0)
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
})
