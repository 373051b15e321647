// The life of a mount: one writer per store, clean stops on signals and on
// umount from anywhere, background mounts, and fsck refusing a mounted store
// and repairing one damaged on purpose.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import * as path from 'path'
import { after, test } from 'node:test'
import { CLI, type CudeleMount, isMounted, mountCudele, sh, shOk, startChild } from '../helpers/mount'
import { processAlive } from '../../src/cli/registry'

const mounts: CudeleMount[] = []
after(async () => { for (const m of mounts) await m.cleanup() })

async function fresh (): Promise<CudeleMount> {
  const m = await mountCudele()
  mounts.push(m)
  return m
}

const cudele = (args: string): Promise<{ code: number, stdout: string, stderr: string }> =>
  sh(`"${process.execPath}" "${CLI}" ${args}`, { timeoutMs: 90000 })

test('a second mount of a store in use is refused, naming the holder; the first mount keeps working', { timeout: 90000 }, async () => {
  const m = await fresh()
  await m.shOk('echo one > f')
  const mnt2 = path.join(m.root, 'mnt2')
  fs.mkdirSync(mnt2)
  for (const mode of ['', '--background']) {
    const r = await cudele(`mount "${mnt2}" --store "${m.store}" ${mode}`)
    // EBUSY (16) from the foreground command; --background reports its child's failure.
    if (mode === '') assert.equal(r.code, 16, `second mount: ${r.stdout}${r.stderr}`)
    else assert.notEqual(r.code, 0, `second mount ${mode} succeeded: ${r.stdout}${r.stderr}`)
    assert.match(r.stderr, new RegExp(`store ${m.store} is in use by another cudele process \\(pid ${m.pid}\\b`), `second mount ${mode}: ${r.stderr}`)
    assert.equal(isMounted(mnt2), false)
  }
  await m.shOk('echo two >> f')
  assert.equal(await m.shOk('cat f'), 'one\ntwo\n')
  assert.equal(await m.stop(), 0, m.log)
  const f = await m.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
})

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`${sig} to the foreground server unmounts cleanly and keeps the data`, { timeout: 90000 }, async () => {
    const m = await fresh()
    // Written just before the signal, never synced.
    await m.shOk('dd if=/dev/urandom of=big bs=1M count=6 status=none && echo last words > small && mkdir -p d/e && ln -s ../../small d/e/link')
    const sum = await m.shOk('md5sum big small')
    const code = await m.signal(sig)
    assert.equal(code, 0, m.log)
    assert.match(m.log, new RegExp(`${sig}: unmounting`))
    assert.equal(isMounted(m.mnt), false, `still mounted after ${sig}`)
    const f = await m.fsck()
    assert.equal(f.code, 0, f.stdout + f.stderr)
    await m.start()
    assert.equal(await m.shOk('md5sum big small'), sum)
    assert.equal(await m.shOk('cat d/e/link'), 'last words\n')
  })
}

// A process that holds the mount (an open file, its cwd) would keep the lazily
// unmounted connection, and so the server, alive: the server aborts the
// connection after a short wait, flushes and exits.
test('SIGTERM while a process holds a file open: the server exits 0 at once, what was written is kept, later writes fail loudly', {
  timeout: 90000
}, async () => {
  const m = await fresh()
  const writer = startChild(process.execPath, ['-e', `
    const fs = require('fs')
    const fd = fs.openSync('held', 'w')
    fs.writeSync(fd, 'before\\n')
    console.log('ready')
    process.stdin.resume()
    process.stdin.once('data', () => {
      try { fs.writeSync(fd, 'after\\n'); fs.closeSync(fd); console.log('after: ok') } catch (e) { console.log('after: ' + e.code) }
      process.exit(0)
    })`], { cwd: m.mnt, stdin: true })
  await writer.waitFor(/^ready$/)
  const exited = m.signal('SIGTERM')
  const prompt = await Promise.race([exited.then(code => ({ code })), new Promise<null>(resolve => setTimeout(() => resolve(null), 5000))])
  writer.child.stdin?.end('go\n')
  const after = await writer.waitFor(/^after: /)
  const code = await exited
  assert.ok(prompt !== null, `the server was still running 5 s after SIGTERM (it exited with ${code} after the writer's next write, which got "${after}")`)
  assert.equal(prompt.code, 0, m.log)
  assert.equal(isMounted(m.mnt), false)
  assert.equal(after, 'after: ENOTCONN')
  await m.start()
  assert.equal(await m.shOk('cat held'), 'before\n')
})

test('mount --background returns once the mount is ready; cudele umount stops the server', { timeout: 90000 }, async () => {
  const m = await fresh()
  await m.stop()
  const r = await cudele(`mount "${m.mnt}" --store "${m.store}" --background`)
  assert.equal(r.code, 0, r.stderr)
  const pid = Number(/background, pid (\d+)/.exec(r.stdout)?.[1])
  assert.ok(pid > 0, r.stdout)
  // Ready means usable right away, by anyone.
  assert.equal(isMounted(m.mnt), true)
  await shOk(`echo bg > "${m.mnt}/f" && cat "${m.mnt}/f"`)
  assert.equal(processAlive(pid), true)
  const u = await cudele(`umount "${m.mnt}"`)
  assert.equal(u.code, 0, u.stderr)
  assert.equal(isMounted(m.mnt), false)
  assert.equal(processAlive(pid), false, `server ${pid} still running after cudele umount`)
  assert.match(fs.readFileSync(path.join(m.store, 'mount.log'), 'utf8'), /flushed and closed/)
  await m.start()
  assert.equal(await m.shOk('cat f'), 'bg\n')
})

test('mount --background on a new store works (the log lives in the store directory)', { timeout: 60000 }, async () => {
  const m = await fresh()
  const store2 = path.join(m.root, 'store2')
  const mnt2 = path.join(m.root, 'mnt2')
  fs.mkdirSync(mnt2)
  const r = await cudele(`mount "${mnt2}" --store "${store2}" --background`)
  assert.equal(r.code, 0, r.stderr)
  try {
    await shOk(`echo new > "${mnt2}/f"`)
  } finally {
    const u = await cudele(`umount "${mnt2}"`)
    assert.equal(u.code, 0, u.stderr)
  }
  assert.equal(isMounted(mnt2), false)
})

test('cudele umount of something not mounted fails clearly', { timeout: 30000 }, async () => {
  const m = await fresh()
  const dir = path.join(m.root, 'never-mounted')
  fs.mkdirSync(dir)
  const r = await cudele(`umount "${dir}"`)
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, new RegExp(`${dir} is not mounted`))
  const r2 = await cudele(`umount "${path.join(m.root, 'does-not-exist')}"`)
  assert.notEqual(r2.code, 0)
  assert.match(r2.stderr, /is not mounted/)
  // The real mount next door is untouched.
  await m.shOk('echo still here > f')
  assert.equal(await m.shOk('cat f'), 'still here\n')
})

test('plain umount from outside makes the server flush and exit 0', { timeout: 90000 }, async () => {
  const m = await fresh()
  await m.shOk('dd if=/dev/urandom of=data bs=1M count=5 status=none && echo tail >> data')
  const sum = await m.shOk('md5sum data')
  await shOk(`umount "${m.mnt}"`)
  assert.equal(await m.exited(30000), 0, m.log)
  assert.equal(isMounted(m.mnt), false)
  const f = await m.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
  await m.start()
  assert.equal(await m.shOk('md5sum data'), sum)
})

test('fsck of a mounted store refuses with exit 8 and says why', { timeout: 60000 }, async () => {
  const m = await fresh()
  for (const repair of ['', '--repair']) {
    const r = await cudele(`fsck --store "${m.store}" ${repair}`)
    assert.equal(r.code, 8, `fsck ${repair}: ${r.stdout}${r.stderr}`)
    assert.match(r.stderr, new RegExp(`in use by another cudele process \\(pid ${m.pid}\\b`))
  }
  await m.shOk('echo fine > f')
  assert.equal(await m.shOk('cat f'), 'fine\n')
})

/** Run SQL against a stopped store's SQLite file (python3's sqlite3). */
async function damage (store: string, script: string): Promise<void> {
  const py = `
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
pool = dict((n, i) for i, n in db.execute('SELECT id, name FROM pools'))
def oid(p, name):
    row = db.execute('SELECT id FROM objects WHERE pool = ? AND name = ?', (pool[p], name)).fetchone()
    assert row, (p, name)
    return row[0]
${script}
db.commit()
db.close()
`
  await shOk(`python3 - "${path.join(store, 'store.db')}"`, { input: py })
}

test('fsck --repair on a store damaged on purpose: reports (4), repairs (1), then clean (0)', { timeout: 90000 }, async () => {
  const m = await fresh()
  await m.shOk('echo keep > keep && echo gone > lost-inode && echo orphan > lost-dentry && mkdir d && echo inside > d/f')
  const lostInode = Number((await m.shOk('stat -c %i lost-inode')).trim())
  const lostDentry = Number((await m.shOk('stat -c %i lost-dentry')).trim())
  assert.equal(await m.stop(), 0, m.log)
  assert.equal((await m.fsck()).code, 0)

  const shard = `inodes.${Math.floor(lostInode / 4096).toString(16)}`
  await damage(m.store, `
# The inode row of lost-inode: its dentry now points at nothing, its data belongs to no file.
n = db.execute('DELETE FROM omap WHERE oid = ? AND key = ?', (oid('metadata', '${shard}'), (${lostInode}).to_bytes(8, 'big'))).rowcount
assert n == 1, n
# The dentry of lost-dentry in the root directory: its inode is reachable from nowhere.
n = db.execute('DELETE FROM omap WHERE oid = ? AND key = ?', (oid('metadata', '1.00000000'), b'lost-dentry')).rowcount
assert n == 1, n
# A stray data object of an inode that never existed.
db.execute('INSERT INTO objects (pool, name, size, version, mtime) VALUES (?, ?, 0, 1, 0)', (pool['data'], 'abcdef.00000000'))
db.execute('UPDATE counters SET objects = objects + 1')
`)

  const check = await m.fsck()
  assert.equal(check.code, 4, check.stdout + check.stderr)
  assert.match(check.stdout, new RegExp(`^dangling-dentry: .*"lost-inode" points at inode ${lostInode}`, 'm'))
  assert.match(check.stdout, new RegExp(`^orphan-inode: inode ${lostDentry} .*not reachable`, 'm'))
  assert.match(check.stdout, /^orphan-data: data object abcdef\.00000000 /m)
  assert.match(check.stdout, new RegExp(`^orphan-data: data object ${lostInode.toString(16)}\\.00000000 `, 'm'))

  const repair = await m.fsck(true)
  assert.equal(repair.code, 1, repair.stdout + repair.stderr)
  assert.match(repair.stdout, /^fixed dangling-dentry: /m)
  assert.match(repair.stdout, /^fixed orphan-data: /m)
  const again = await m.fsck()
  assert.equal(again.code, 0, again.stdout + again.stderr)

  await m.start()
  assert.equal(await m.shOk('cat keep d/f'), 'keep\ninside\n')
  assert.equal((await m.sh('ls lost-inode')).code, 2)
  assert.equal((await m.sh('ls lost-dentry')).code, 2)
  assert.equal(await m.shOk(`cat "lost+found/#${lostDentry}"`), 'orphan\n')
  await m.shOk('echo after repair > new && rm keep')
  await m.stop()
  const last = await m.fsck()
  assert.equal(last.code, 0, last.stdout + last.stderr)
})
