// `cudele status` (text and --json) and `cudele log` (-n, --follow) against a
// running server: ranks, sessions with their names and peers, map epochs, the
// cluster log.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { CLI, startChild } from '../helpers/mount'
import { type ClientMount, cleanupServers, cudele, libraryChild, mountClient, type ServerProc, startServer } from '../helpers/server'
import type { Running } from '../helpers/mount'

let srv: ServerProc
let m: ClientMount
let lib: Running

/** A cluster log line as `cudele log` prints it. */
const LOG_LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |ERROR|DEBUG) [\w.]+: .+$/

before(async () => {
  srv = await startServer()
  m = await mountClient(srv, 'mnt')
  await m.shOk('mkdir d && echo x > d/f')
  lib = libraryChild(srv, `
    await c.mkdir(1, 'from-lib', 0o755, caller)
    log('ready')
    await new Promise(() => {})`)
  await lib.waitFor(/^ready$/, 20000)
})
after(cleanupServers)

test('status --json: the rank, both sessions with names and peers, map epochs, the recent log', { timeout: 30000 }, async () => {
  const st = await srv.status()
  assert.equal(st.ranks.length, 1)
  const r = st.ranks[0]
  assert.equal(r.rank, 0)
  assert.equal(r.state, 'active')
  assert.equal(r.addr, srv.addr)
  assert.equal(r.pid, srv.pid)
  assert.match(r.bootId, /^[0-9a-f]{16}$/)
  assert.ok(r.cache.inodes >= 3, JSON.stringify(r.cache))
  assert.ok(r.journal.events > 0, JSON.stringify(r.journal))

  assert.equal(st.sessions.length, 2)
  const mount = st.sessions.find(s => s.peer === `cudele-mount ${m.mnt} pid ${m.pid}`)
  const library = st.sessions.find(s => s.peer === `cudele-library pid ${lib.child.pid}`)
  assert.ok(mount, JSON.stringify(st.sessions))
  assert.ok(library, JSON.stringify(st.sessions))
  for (const s of [mount, library]) {
    assert.match(s.name, /^[0-9a-f]{24}$/)
    assert.equal(s.connected, true)
    assert.equal(s.opens, 0)
    assert.ok(s.idleMs >= 0 && s.idleMs < 5000, `idle ${s.idleMs}`)
    assert.ok(s.appliedTid > 0 && s.safeTid <= s.appliedTid, JSON.stringify(s))
  }
  assert.notEqual(mount.id, library.id)
  assert.notEqual(mount.name, library.name)

  assert.deepEqual(st.maps.find(x => x.name === 'mdsmap'), { name: 'mdsmap', epoch: 1 })
  const messages = st.log.map(e => e.message)
  assert.ok(messages.some(x => x.startsWith(`serving ${srv.store} at ${srv.addr} (boot ${r.bootId})`)), messages.join('\n'))
  assert.ok(messages.includes(`session ${mount.id} (${mount.name}) opened from ${mount.peer}`), messages.join('\n'))
  assert.ok(messages.includes(`session ${library.id} (${library.name}) opened from ${library.peer}`), messages.join('\n'))
  const seqs = st.log.map(e => e.seq)
  assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y))
  for (const e of st.log) assert.equal(e.who, 'mds.0')
})

test('status (text) says the same for people', { timeout: 30000 }, async () => {
  const st = await srv.status()
  const r = await cudele(`status --connect "${srv.addr}"`)
  assert.equal(r.code, 0, r.stderr)
  const lines = r.stdout.split('\n')
  const rank = st.ranks[0]
  assert.equal(lines[0], 'ranks:')
  assert.match(lines[1], new RegExp(`^  mds\\.0 active at ${srv.addr} \\(pid ${srv.pid}, boot ${rank.bootId}\\); cache \\d+ inodes, \\d+ dentries; journal \\d+ events in \\d+ objects$`))
  assert.equal(lines[2], 'sessions: 2')
  for (const s of st.sessions) {
    assert.ok(lines.some(l => l.startsWith(`  ${s.id} ${s.name} connected ${s.peer}; 0 open files; idle `)), `session ${s.id} in:\n${r.stdout}`)
  }
  const maps = lines.indexOf('maps:')
  assert.ok(maps > 0)
  assert.equal(lines[maps + 1], '  mdsmap epoch 1')
  const log = lines.indexOf('recent cluster log:')
  assert.ok(log > maps)
  const entries = lines.slice(log + 1).filter(l => l !== '')
  assert.ok(entries.length >= 3)
  for (const l of entries) assert.match(l.slice(2), LOG_LINE)
  assert.match(entries[0], /mds\.0: serving /)
})

test('status counts the requests answered per method, with errors and times', { timeout: 30000 }, async () => {
  const count = (st: Awaited<ReturnType<ServerProc['status']>>, method: string) =>
    st.requests.find(r => r.method === method) ?? { method, calls: 0, errors: 0, meanMs: 0, maxMs: 0 }
  const before = await srv.status()
  await m.shOk('for i in $(seq 1 25); do : > d/n$i; done')
  assert.notEqual((await m.sh('getfattr -n user.absent d/f')).code, 0)
  const st = await srv.status()
  assert.equal(count(st, 'mknod').calls - count(before, 'mknod').calls, 25)
  assert.equal(count(st, 'mknod').errors, count(before, 'mknod').errors)
  assert.ok(count(st, 'getxattr').errors > count(before, 'getxattr').errors, JSON.stringify(st.requests))
  // This very method was answered before (the first status).
  assert.ok(count(st, 'status').calls >= 1)
  for (const r of st.requests) assert.ok(r.calls > 0 && r.errors <= r.calls && r.meanMs >= 0 && r.maxMs >= r.meanMs, JSON.stringify(r))
  const calls = st.requests.map(r => r.calls)
  assert.deepEqual(calls, [...calls].sort((x, y) => y - x), 'most called first')
  // Nothing counted under names no handler serves.
  assert.ok(st.requests.every(r => /^[a-z][\w.]*$/i.test(r.method)))
  const text = await cudele(`status --connect "${srv.addr}"`)
  assert.equal(text.code, 0, text.stderr)
  assert.match(text.stdout, /^requests answered \(calls, errors, mean and max ms\):$/m)
  assert.match(text.stdout, /^ {2}mknod +\d+ +0 +\d+\.\d{3} +\d+\.\d{3}$/m)
})

test('status with a session open on a file, and after a server restart: new boot, next mdsmap epoch', { timeout: 60000 }, async () => {
  const holder = startChild('python3', ['-u', '-c', 'import sys; f = open("d/f"); print("open", flush=True); sys.stdin.readline()'], { cwd: m.mnt, stdin: true })
  await holder.waitFor(/^open$/)
  const st = await srv.status()
  assert.equal(st.sessions.find(s => s.peer.startsWith('cudele-mount'))?.opens, 1)
  holder.child.stdin?.end('\n')
  assert.equal(await holder.exit(), 0)

  const bootBefore = st.ranks[0].bootId
  await srv.kill()
  await srv.start()
  // Both clients come back (with new sessions: the server lost the old ones).
  const after = await srv.waitStatus(x => x.sessions.length === 2 && x.sessions.every(s => s.connected), 15000)
  assert.notEqual(after.ranks[0].bootId, bootBefore)
  assert.equal(after.ranks[0].pid, srv.pid)
  assert.deepEqual(after.maps.find(x => x.name === 'mdsmap'), { name: 'mdsmap', epoch: 2 })
  assert.equal(await m.shOk('cat d/f'), 'x\n')
})

test('log -n 5 prints the last five entries, oldest first', { timeout: 30000 }, async () => {
  const all = (await srv.status()).log
  assert.ok(all.length >= 5, `${all.length} entries`)
  const r = await cudele(`log --connect "${srv.addr}" -n 5`)
  assert.equal(r.code, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  assert.equal(lines.length, 5, r.stdout)
  for (const l of lines) assert.match(l, LOG_LINE)
  const lastFive = all.slice(-5).map(e => `${e.who}: ${e.message}`)
  assert.deepEqual(lines.map(l => l.slice(l.indexOf(' mds.') + 1)), lastFive)
})

test('log --follow prints a new entry when a client connects, and when it leaves', { timeout: 30000 }, async () => {
  const follow = startChild(process.execPath, [CLI, 'log', '--connect', srv.addr, '--follow', '-n', '1'])
  try {
    await follow.waitFor(LOG_LINE, 10000)
    const printed = follow.stdout().split('\n').filter(l => l !== '').length
    assert.equal(printed, 1)
    const c = libraryChild(srv, "log('connected'); await c.close(); log('closed')")
    await c.waitFor(/^closed$/, 20000)
    assert.equal(await c.exit(), 0)
    const opened = await follow.waitFor(new RegExp(`INFO  mds\\.0: session \\d+ \\([0-9a-f]+\\) opened from cudele-library pid ${c.child.pid}$`), 10000)
    const id = /session (\d+)/.exec(opened)?.[1]
    await follow.waitFor(new RegExp(`INFO  mds\\.0: session ${id} \\([0-9a-f]+\\) ended: closed by its client$`), 10000)
  } finally {
    follow.child.kill('SIGINT')
    assert.equal(await follow.exit(5000), 0)
  }
})

test('serve on a non-loopback address is refused, naming the option that allows it', { timeout: 30000 }, async () => {
  const r = await cudele(`serve --store "${srv.root}/other-store" --listen tcp:0.0.0.0:0`)
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /not a loopback address.*--allow-remote/)
})
