// Durability levels of Cudele subtrees: exactly the loss the policy allows,
// and no more, when a client mount or the server is killed (-9).
//
//   none    a crash of the owner loses its unmerged updates; after its session
//           times out the subtree is released (and the data it left goes);
//   local   what the owner fsync'd is in its local journal file and comes
//           back when it mounts again at the same mountpoint;
//   global  what the owner fsync'd is in the object store: merged by the
//           server if the owner never comes back, kept across a server crash.
//
// Strong subtrees without stream (the MDS does not journal them) come last:
// with none a server crash may lose what was not trimmed but never breaks the
// namespace; with local each client's request log brings back what it fsync'd.
//
// Each test has its own server, so it can end with `cudele fsck`.

import assert from 'node:assert/strict'
import { createHash } from 'crypto'
import * as fs from 'fs'
import * as path from 'path'
import { isDeepStrictEqual } from 'node:util'
import { after, test } from 'node:test'
import { cleanupServers, type ClientMount, cudele, mountClient, type ServerProc, startServer } from '../helpers/server'
import { errnos, policyOf, PYTHON, pyOk, setPolicy, syncOk, tree, until, useStateHome, type View, viewOf, writeFiles } from '../helpers/cudele'
import { REPO, startChild } from '../helpers/mount'

const state = useStateHome()
after(async () => {
  await cleanupServers()
  state.cleanup()
})

const TIMEOUT_MS = 1500
const sessionArgs = ['--session-timeout', String(TIMEOUT_MS), '--heartbeat', '250']

/** Files, a nested directory, a bigger file, a rename, a chmod in DIR. */
const WORK_CHANGES = `
import os, sys
d = sys.argv[1]
os.makedirs(d + '/sub/deeper')
for i in range(6):
    with open('%s/sub/f%d' % (d, i), 'w') as f: f.write('content %d' % i)
with open(d + '/sub/deeper/big', 'wb') as f: f.write(b'B' * 300000)
os.rename(d + '/sub/f5', d + '/renamed')
os.chmod(d + '/sub/f0', 0o600)
`

/** fsync of one file (DIR/name). */
const fsyncOf = (name: string): string => `fd = os.open(d + '/${name}', os.O_RDONLY)\nos.fsync(fd)\nos.close(fd)\n`

/** A's work in DIR; then fsync of one file (the whole client journal). */
const WORK = WORK_CHANGES + fsyncOf('sub/f1')

const WORK_VIEW: View = {
  ...viewOf({ 'sub/f0': 'content 0', 'sub/f1': 'content 1', 'sub/f2': 'content 2', 'sub/f3': 'content 3', 'sub/f4': 'content 4', renamed: 'content 5' }),
  'sub/f0': ['f', '0o600', 9, 'content 0'],
  'sub/deeper': ['d', '0o755'],
  'sub/deeper/big': ['f', '0o644', 300000, 'sha1:' + createHash('sha1').update(Buffer.alloc(300000, 'B')).digest('hex')]
}

/** View of a subtree without its policies.yml. */
async function files (m: ClientMount, dir: string): Promise<View> {
  const v = await tree(m, dir)
  delete v['policies.yml']
  return v
}

async function log (srv: ServerProc): Promise<string> {
  const r = await cudele(`log --connect "${srv.addr}" -n 200`)
  assert.equal(r.code, 0, r.stderr)
  return r.stdout
}

/** Stop what is still mounted and the server, then fsck: clean, with this many data objects. */
async function stopAndFsck (srv: ServerProc, mounts: ClientMount[], dataObjects?: number): Promise<void> {
  for (const m of mounts) if (m.child) assert.equal(await m.stop(), 0, m.log)
  assert.equal(await srv.stop(), 0, srv.log)
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
  if (dataObjects !== undefined) assert.match(f.stderr, new RegExp(` ${dataObjects} data objects,`), f.stderr)
}

/** Client journal files (local_persist) under the test's state directory. */
function journalFiles (): string[] {
  const root = path.join(state.dir, 'cudele')
  const out: string[] = []
  for (const d of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    for (const f of fs.readdirSync(path.join(root, d))) if (f.endsWith('.cj')) out.push(path.join(d, f))
  }
  return out
}

test('none: kill -9 of the owner loses its unmerged updates (fsync or not); after the session timeout the subtree is released, B writes there, no data is left behind', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await writeFiles(b, { 'none/pre': 'before the policy' })
  await setPolicy(b, 'none', 'consistency: weak\ndurability: none\ninterfere: block\n')
  await pyOk(a, WORK + "with open(d + '/pre', 'a') as f: f.write(' and after')\n", ['none'])
  assert.deepEqual(await files(a, 'none'), { ...WORK_VIEW, pre: ['f', '0o644', 27, 'before the policy and after'] })
  assert.deepEqual(await files(b, 'none'), viewOf({ pre: 'before the policy' }))
  assert.notEqual((await b.sh('touch none/b1')).code, 0, 'B may not write while A owns the subtree')

  await a.kill()
  const killedAt = Date.now()
  await until('B can write in the subtree again', async () => (await b.sh('echo from-b > none/b1')).code === 0, TIMEOUT_MS + 8000)
  assert.ok(Date.now() - killedAt > TIMEOUT_MS / 2, 'released before the session timed out')
  assert.deepEqual(await files(b, 'none'), viewOf({ pre: 'before the policy', b1: 'from-b\n' }))
  assert.match(await log(srv), /is gone with unmerged updates in subtree \d+ \(durability none\): discarded, with [1-9]\d* data objects/)

  // A comes back (same mountpoint, same owner): its lost updates are not there either; B's are, once B merged them.
  await syncOk(b, 'none')
  await a.start()
  assert.deepEqual(await files(a, 'none'), viewOf({ pre: 'before the policy', b1: 'from-b\n' }))
  // Data objects: pre, b1, policies.yml; nothing of A's files.
  await stopAndFsck(srv, [a, b], 3)
})

test('local: what A fsync\'d survives kill -9 of its mount; it comes back when A mounts again at the same mountpoint, then B sees it after a merge', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await setPolicy(b, 'loc', 'consistency: weak\ndurability: local\ninterfere: block\n')
  await pyOk(a, WORK, ['loc'])
  assert.deepEqual(await files(a, 'loc'), WORK_VIEW)
  assert.equal(journalFiles().length, 1, 'A keeps one client journal file')

  await a.kill()
  // The claim waits for A (its journal is only on A's disk): B still may not write, and sees nothing of it.
  await until('A\'s session ends', async () => /its subtree \d+ \(durability local\) waits for it to come back/.test(await log(srv)), TIMEOUT_MS + 8000)
  assert.notEqual((await b.sh('touch loc/b1')).code, 0, 'B may not write while A\'s claim waits')
  assert.deepEqual(await files(b, 'loc'), {})

  await a.start()
  assert.match(a.log, /picked up \d+ journal segments of decoupled subtree/)
  assert.deepEqual(await files(a, 'loc'), WORK_VIEW)
  assert.equal((await policyOf(a, 'loc')).owned_here, true)
  assert.deepEqual(await files(b, 'loc'), {})
  await syncOk(a, 'loc')
  assert.deepEqual(await files(b, 'loc'), WORK_VIEW)
  // Killed again after the merge: it comes back with nothing to replay, and new files get new inode numbers.
  await a.kill()
  await a.start()
  assert.deepEqual(await files(a, 'loc'), WORK_VIEW)
  // Unmount merges the rest and lets go; the journal file goes with it.
  await a.shOk('echo after > loc/late')
  assert.equal(await a.stop(), 0)
  assert.deepEqual(journalFiles(), [])
  assert.deepEqual(await files(b, 'loc'), { ...WORK_VIEW, ...viewOf({ late: 'after\n' }) })
  await stopAndFsck(srv, [b], 9)
})

test('local: merged files that leave the subtree (deleted while B holds one open, moved out by B) keep their inode numbers; A, back after kill -9, gives new files other numbers, and nobody\'s data is lost', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await setPolicy(b, 'reuse', 'consistency: weak\ndurability: local\n')
  await writeFiles(a, { 'reuse/f1': 'one', 'reuse/f2': 'two', 'reuse/f3': 'three', 'reuse/f4': 'four' })
  await syncOk(a, 'reuse')
  const gone = (await b.shOk('stat -c %i reuse/f3 reuse/f4')).trim().split('\n')
  const hold = startChild(PYTHON, ['-c', "import sys\nf = open('reuse/f3')\nprint('open', flush=True)\nsys.stdin.read()\nprint(f.read())"], { cwd: b.mnt, stdin: true })
  await hold.waitFor(/^open$/)
  // f4 (the last number A used) moves out (B works through the MDS: interfere allow); f3 is deleted, B's open keeps it from being purged.
  await b.shOk('mv reuse/f4 out4')
  await a.shOk('rm reuse/f3')
  await syncOk(a, 'reuse')
  await a.kill()
  await a.start()
  await a.shOk('echo new > reuse/g && echo newer > reuse/h')
  const fresh = (await a.shOk('stat -c %i reuse/g reuse/h')).trim().split('\n')
  for (const ino of fresh) assert.ok(!gone.includes(ino), `new file got inode ${ino}, which ${gone.join(' or ')} still has`)
  // B lets go of f3: it is purged, data and all.
  hold.child.stdin?.end()
  assert.equal(await hold.exit(), 0, hold.stderr())
  assert.equal(hold.stdout(), 'open\nthree\n')
  await new Promise(resolve => setTimeout(resolve, 500))
  await syncOk(a, 'reuse')
  assert.deepEqual(await files(b, 'reuse'), viewOf({ f1: 'one', f2: 'two', g: 'new\n', h: 'newer\n' }))
  assert.equal(await b.shOk('cat out4'), 'four')
  await stopAndFsck(srv, [a, b], 6)
})

test('global: A is killed after fsync and never comes back; when its session times out the server merges A\'s stored journal, B sees it and can write', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await setPolicy(b, 'glob', 'consistency: weak\ndurability: global\ninterfere: block\n')
  assert.equal((await policyOf(b, 'glob')).durability_mechanisms, 'global_persist')
  await pyOk(a, WORK, ['glob'])
  assert.deepEqual(await files(a, 'glob'), WORK_VIEW)
  assert.deepEqual(await files(b, 'glob'), {})
  await a.kill()
  await until('A\'s updates are merged by the server', async () => isDeepStrictEqual(await files(b, 'glob'), WORK_VIEW), TIMEOUT_MS + 8000)
    .catch(async err => { throw new Error(`${(err as Error).message}\nB sees ${JSON.stringify(await files(b, 'glob'))}\n${await log(srv)}`) })
  assert.match(await log(srv), /merged the stored journal of client \S+ for subtree \d+ after its session ended/)
  await b.shOk('echo b > glob/b1')
  await stopAndFsck(srv, [b], 9)
})

test('global: the server is killed (-9) after A\'s fsync and restarted; nothing fsync\'d is lost, A merges it', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await setPolicy(b, 'glob', 'consistency: weak\ndurability: global\ninterfere: block\n')
  await pyOk(a, WORK, ['glob'])
  await srv.kill()
  await srv.start()
  assert.deepEqual(await files(a, 'glob'), WORK_VIEW)
  await syncOk(a, 'glob')
  assert.deepEqual(await files(b, 'glob'), WORK_VIEW)
  await stopAndFsck(srv, [a, b], 8)
})

test('global: the server is killed (-9), A is killed while it is down, the server restarts: A\'s fsync\'d updates are merged from the store', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  await setPolicy(a, 'glob', 'consistency: weak\ndurability: global\ninterfere: block\n')
  await pyOk(a, WORK, ['glob'])
  await srv.kill()
  await a.kill()
  await srv.start()
  const b = await mountClient(srv, 'b')
  await until('A\'s updates are merged by the server', async () => isDeepStrictEqual(await files(b, 'glob'), WORK_VIEW), TIMEOUT_MS + 8000)
    .catch(async err => { throw new Error(`${(err as Error).message}\nB sees ${JSON.stringify(await files(b, 'glob'))}\n${await log(srv)}`) })
  await b.shOk('echo b > glob/b1')
  await stopAndFsck(srv, [b], 9)
})

/** N files in DIR; every one fsync'd when sync is set. */
const FILES = `
import os, sys
d, n, sync = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1'
for i in range(n):
    fd = os.open('%s/f%03d' % (d, i), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, (('%s %d\\n' % (d, i)) * 500).encode())
    if sync:
        os.fsync(fd)
    os.close(fd)
`

test('strong+global vs strong+none (ramdisk.yml): a server kill -9 right after writes; global keeps every fsync\'d file, none may lose files; fsck is clean either way', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  await setPolicy(a, 'ram', fs.readFileSync(path.join(REPO, 'policies', 'ramdisk.yml'), 'utf8'))
  await setPolicy(a, 'pos', fs.readFileSync(path.join(REPO, 'policies', 'posix.yml'), 'utf8'))
  assert.equal((await policyOf(a, 'ram')).durability, 'none')
  assert.equal((await policyOf(a, 'pos')).durability, 'global')
  await pyOk(a, FILES, ['pos', '20', '1'])
  await pyOk(a, FILES, ['ram', '20', '1'])
  await pyOk(a, FILES + 'os.mkdir(d + "/late")\n', ['ram', '25', '0'])
  await srv.kill()
  // The store as the crash left it is consistent.
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
  await srv.start()
  const expected = (d: string, i: number): string => `${d} ${i}\n`.repeat(500)
  const pos = await files(a, 'pos')
  for (let i = 0; i < 20; i++) {
    const e = expected('pos', i)
    assert.deepEqual(pos[`f${String(i).padStart(3, '0')}`], ['f', '0o644', e.length, 'sha1:' + createHash('sha1').update(e).digest('hex')], `pos/f${i}`)
  }
  // ramdisk: whatever is there is whole (a size never covers data that was not stored).
  const ram = await pyOk(a, `
import os
for n in sorted(os.listdir('ram')):
    p = 'ram/' + n
    if os.path.isdir(p) or n == 'policies.yml':
        continue
    data = open(p).read()
    i = int(n[1:])
    full = ('ram %d\\n' % i) * 500
    print(n, 'whole' if data == full else 'prefix' if full.startswith(data) else 'garbage', len(data))
`)
  assert.doesNotMatch(ram, /garbage/, ram)
  await stopAndFsck(srv, [a])
})

// ---- strong subtrees without stream (durability none and local) ----
//
// The server trims rarely here (--trim-interval): namespace changes there
// stay in the MDS's memory until something makes it trim (a data commit, a
// listing of a changed directory, a clean stop), so a server crash loses them
// unless a client brings them back. The tests list nothing before a crash.

const rareTrims = [...sessionArgs, '--trim-interval', '600000']
const LOCAL = 'consistency: strong\ndurability: local\n'

/**
 * A's work in a strong/local subtree: files with data (each data commit is
 * stored with a trim), then namespace changes only (in the MDS's memory and
 * A's request log), some of which would come out wrong if done twice; then an
 * fsync.
 */
const STRONG_WORK = WORK_CHANGES + `
os.unlink(d + '/sub/f2')
open(d + '/sub/f2', 'w').close()
os.rename(d + '/sub/f3', d + '/sub/f4')
os.rename(d + '/sub/f1', d + '/sub/f3')
os.mkdir(d + '/late')
os.symlink('../renamed', d + '/late/link')
open(d + '/late/empty', 'w').close()
os.link(d + '/sub/f3', d + '/late/hard')
os.mkdir(d + '/gone')
os.rmdir(d + '/gone')
` + fsyncOf('sub/f3')

const STRONG_VIEW: View = {
  sub: ['d', '0o755'],
  'sub/f0': ['f', '0o600', 9, 'content 0'],
  'sub/f2': ['f', '0o644', 0, ''],
  'sub/f3': ['f', '0o644', 9, 'content 1'],
  'sub/f4': ['f', '0o644', 9, 'content 3'],
  'sub/deeper': ['d', '0o755'],
  'sub/deeper/big': ['f', '0o644', 300000, 'sha1:' + createHash('sha1').update(Buffer.alloc(300000, 'B')).digest('hex')],
  renamed: ['f', '0o644', 9, 'content 5'],
  late: ['d', '0o755'],
  'late/link': ['l', '0o777', 10, '../renamed'],
  'late/empty': ['f', '0o644', 0, ''],
  'late/hard': ['f', '0o644', 9, 'content 1']
}

/** Inode numbers of these paths under dir, from lstat only (a directory listing would make the MDS trim): {relative path: ino}. */
async function inodes (m: ClientMount, dir: string, paths: string[]): Promise<Record<string, number>> {
  return JSON.parse(await pyOk(m, `
import os, sys, json
print(json.dumps({p: os.lstat(os.path.join(sys.argv[1], p)).st_ino for p in json.loads(sys.argv[2])}))
`, [dir, JSON.stringify(paths)])) as Record<string, number>
}

/** Request log files (local_persist of strong subtrees) under the test's state directory, with their sizes. */
function requestLogs (): Array<{ file: string, bytes: number }> {
  const root = path.join(state.dir, 'cudele')
  const out: Array<{ file: string, bytes: number }> = []
  for (const d of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    for (const f of fs.readdirSync(path.join(root, d))) {
      if (/^requests\..*\.log$/.test(f)) out.push({ file: path.join(d, f), bytes: fs.statSync(path.join(root, d, f)).size })
    }
  }
  return out
}

test('strong/local: the server is killed (-9) before it trims A\'s changes; A, still mounted, replays them: everything is there for A and B, fsck is clean', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: rareTrims })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await setPolicy(b, 'loc', LOCAL)
  assert.equal((await policyOf(a, 'loc')).durability, 'local')
  await pyOk(a, STRONG_WORK, ['loc'])
  // The namespace changes are unsafe: A keeps them in its request log. (B's
  // reads would make A give back its capabilities: what it flushes then makes the MDS trim.)
  assert.ok(requestLogs().some(l => l.bytes > 200), JSON.stringify(requestLogs()))
  await srv.kill()
  await srv.start()
  assert.deepEqual(await files(a, 'loc'), STRONG_VIEW)
  assert.deepEqual(await files(b, 'loc'), STRONG_VIEW)
  // Once the server has stored them, the log has nothing left to keep.
  await b.shOk('echo x > loc/trim-now')
  await until('A\'s request log is emptied', async () => requestLogs().every(l => l.bytes < 200), 10000)
  await stopAndFsck(srv, [a, b])
})

test('strong/local: the server and A are both killed (-9); A mounts again at the same mountpoint and replays its request log: everything fsync\'d is back, nothing is done twice, fsck is clean', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: rareTrims })
  const a = await mountClient(srv, 'a')
  // interfere: block, so the subtree is A's: what A replays must be done for A.
  await setPolicy(a, 'loc', LOCAL + 'interfere: block\n')
  await pyOk(a, STRONG_WORK, ['loc'])
  const before = await inodes(a, 'loc', Object.keys(STRONG_VIEW))
  assert.ok(requestLogs().some(l => l.bytes > 200), JSON.stringify(requestLogs()))
  await srv.kill()
  await a.kill()
  // The store as the crash left it is consistent, without A's last changes.
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
  await srv.start()
  await a.start()
  assert.match(a.log, /replayed \d+ requests kept in/)
  assert.deepEqual(await files(a, 'loc'), STRONG_VIEW)
  // Creates replayed get the inode numbers A saw the first time.
  assert.deepEqual(await inodes(a, 'loc', Object.keys(STRONG_VIEW)), before)
  const b = await mountClient(srv, 'b')
  assert.deepEqual(await files(b, 'loc'), STRONG_VIEW)
  await a.shOk('echo more > loc/more')
  await stopAndFsck(srv, [a, b])
})

test('strong/local: A is killed (-9) and the server keeps A\'s changes (in memory, or stored by a clean stop and restart); A\'s request log, replayed when it mounts again, finds them done and does none of them twice', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: rareTrims })
  const a = await mountClient(srv, 'a')
  await setPolicy(a, 'loc', LOCAL)
  const paths = Object.keys(STRONG_VIEW)
  // 1: the server stays up, with A's changes in its memory.
  await pyOk(a, STRONG_WORK, ['loc/1'])
  const before1 = await inodes(a, 'loc/1', paths)
  await a.kill()
  assert.ok(requestLogs().some(l => l.bytes > 200), JSON.stringify(requestLogs()))
  await a.start()
  assert.match(a.log, /replayed \d+ requests kept in/)
  assert.deepEqual(await files(a, 'loc/1'), STRONG_VIEW)
  assert.deepEqual(await inodes(a, 'loc/1', paths), before1)
  // 2: A is killed again; a clean stop stores its changes (and which requests were done), the server restarts.
  await pyOk(a, STRONG_WORK, ['loc/2'])
  const before2 = await inodes(a, 'loc/2', paths)
  await a.kill()
  assert.ok(requestLogs().some(l => l.bytes > 200), JSON.stringify(requestLogs()))
  assert.equal(await srv.stop(), 0, srv.log)
  await srv.start()
  await a.start()
  assert.match(a.log, /replayed \d+ requests kept in/)
  const b = await mountClient(srv, 'b')
  for (const m of [a, b]) {
    assert.deepEqual(await files(m, 'loc/1'), STRONG_VIEW)
    assert.deepEqual(await files(m, 'loc/2'), STRONG_VIEW)
  }
  assert.deepEqual(await inodes(b, 'loc/2', paths), before2)
  assert.deepEqual(requestLogs().filter(l => l.bytes > 200), [])
  await stopAndFsck(srv, [a, b])
})

const RAMDISK = fs.readFileSync(path.join(REPO, 'policies', 'ramdisk.yml'), 'utf8')
const POSIX = fs.readFileSync(path.join(REPO, 'policies', 'posix.yml'), 'utf8')

/** Files with data in a strong/none subtree (each is stored with its data commit's trim). */
const NONE_DATA = `
import os, sys
d = sys.argv[1]
for i in range(10):
    with open('%s/d%d' % (d, i), 'w') as f: f.write(('data %d\\n' % i) * 1000)
`

/**
 * Namespace changes only, in a strong/none subtree (the MDS keeps them in
 * memory until its next trim): an unlink and a replacing rename of stored
 * files (their purges must wait for a trim), a rename, empty files and
 * directories (inode numbers from a block reserved in the store); then lstat
 * of everything (no listing: it would make the MDS trim). Prints {name: inode number}.
 */
const NONE_CHANGES = `
import os, sys, json
d = sys.argv[1]
names = []
for i in range(20):
    open('%s/e%d' % (d, i), 'w').close()
    os.mkdir('%s/dir%d' % (d, i))
    names += ['e%d' % i, 'dir%d' % i]
os.unlink(d + '/d0')
os.rename(d + '/d1', d + '/moved')
os.rename(d + '/d2', d + '/d3')
names += ['moved'] + ['d%d' % i for i in range(3, 10)]
print(json.dumps({n: os.lstat(d + '/' + n).st_ino for n in names}))
`

test('strong/none: the server and the client that wrote are killed (-9): recent changes may be lost, but fsck is clean, no file lost its data while a name points at it, and no inode number a client saw is handed out again', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: rareTrims })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await setPolicy(a, 'ram', RAMDISK)
  await pyOk(b, NONE_DATA, ['ram'])
  // A clean restart: the changes below come after the last trim, and take their inode numbers from a block reserved after it.
  assert.equal(await srv.stop(), 0, srv.log)
  await srv.start()
  const seen = JSON.parse(await pyOk(b, NONE_CHANGES, ['ram'])) as Record<string, number>
  // Long enough for the purges of d0 and the old d3 to be due (the server waits a session timeout after starting).
  await new Promise(resolve => setTimeout(resolve, TIMEOUT_MS + 1000))
  await srv.kill()
  await b.kill()
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
  await srv.start()
  // Whatever is there is whole: d0's unlink and d3's replacement were lost with their purges, or done with them.
  const after = await files(a, 'ram')
  for (const [name, entry] of Object.entries(after)) {
    const m = /^(?:d(\d+)|moved)$/.exec(name)
    if (!m) continue
    const i = m[1] === undefined ? 1 : Number(m[1])
    const content = `data ${i}\n`.repeat(1000)
    const alt = name === 'd3' ? `data 2\n`.repeat(1000) : content
    assert.ok([content, alt].some(c => isDeepStrictEqual(entry, ['f', '0o644', c.length, 'sha1:' + createHash('sha1').update(c).digest('hex')])), `${name}: ${JSON.stringify(entry)}`)
  }
  for (let i = 4; i < 10; i++) assert.ok(after[`d${i}`] !== undefined, `d${i} was stored with its data commit`)
  // New files and directories, in the subtree and out of it, get numbers nobody saw before the crash.
  const fresh = JSON.parse(await pyOk(a, `
import os, json
out = {}
for d in ['ram', 'elsewhere']:
    os.makedirs(d, exist_ok=True)
    for i in range(30):
        p = '%s/new%d' % (d, i)
        open(p, 'w').close()
        out[p] = os.lstat(p).st_ino
        os.mkdir(p + 'd')
        out[p + 'd'] = os.lstat(p + 'd').st_ino
print(json.dumps(out))
`)) as Record<string, number>
  const taken = new Map(Object.entries(seen).map(([n, ino]) => [ino, n]))
  for (const [p, ino] of Object.entries(fresh)) assert.ok(!taken.has(ino), `${p} got inode ${ino}, which ram/${taken.get(ino)} had before the crash`)
  assert.equal(new Set(Object.values(fresh)).size, Object.keys(fresh).length, 'every new inode number is new')
  await stopAndFsck(srv, [a])
})

test('strong/none and strong/local subtrees: rename and link across their edge with a journaled (strong/global) subtree get EXDEV both ways, mv copies instead; within a subtree both work', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: sessionArgs })
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await setPolicy(a, 'ram', RAMDISK)
  await setPolicy(a, 'loc', LOCAL)
  await setPolicy(a, 'pos', POSIX)
  await writeFiles(a, { 'ram/f': 'ram', 'ram/sub/x': 'x', 'loc/f': 'loc', 'loc/sub/y': 'y', 'pos/f': 'pos', 'pos/sub/z': 'z', top: 'top' })
  const cross = {
    ram_to_pos: "os.rename('ram/f', 'pos/g')",
    pos_to_ram: "os.rename('pos/f', 'ram/g')",
    loc_to_pos: "os.rename('loc/f', 'pos/g')",
    pos_to_loc: "os.rename('pos/f', 'loc/g')",
    dir_ram_to_pos: "os.rename('ram/sub', 'pos/sub2')",
    dir_pos_to_loc: "os.rename('pos/sub', 'loc/sub2')",
    root_to_ram: "os.rename('top', 'ram/top')",
    ram_to_root: "os.rename('ram/f', 'top2')",
    replace_in_pos: "os.rename('loc/f', 'pos/f')",
    link_ram_to_pos: "os.link('ram/f', 'pos/h')",
    link_pos_to_ram: "os.link('pos/f', 'ram/h')",
    link_loc_to_pos: "os.link('loc/f', 'pos/h')",
    link_pos_to_loc: "os.link('pos/f', 'loc/h')",
    link_root_to_ram: "os.link('top', 'ram/h')"
  }
  for (const m of [a, b]) assert.deepEqual(await errnos(m, cross), Object.fromEntries(Object.keys(cross).map(k => [k, 'EXDEV'])), m.mnt)
  assert.deepEqual(await errnos(a, {
    ram_rename: "os.rename('ram/f', 'ram/sub/f2')",
    ram_link: "os.link('ram/sub/f2', 'ram/l')",
    ram_dir: "os.rename('ram/sub', 'ram/sub3')",
    loc_rename: "os.rename('loc/f', 'loc/sub/f2')",
    loc_link: "os.link('loc/sub/f2', 'loc/l')",
    pos_rename: "os.rename('pos/f', 'pos/sub/f2')",
    pos_link: "os.link('pos/sub/f2', 'pos/l')"
  }), { ram_rename: 'ok', ram_link: 'ok', ram_dir: 'ok', loc_rename: 'ok', loc_link: 'ok', pos_rename: 'ok', pos_link: 'ok' })
  // mv falls back to copy and delete.
  await a.shOk('mv ram/sub3/f2 pos/from-ram && mv pos/sub/f2 loc/from-pos')
  assert.deepEqual(await files(b, 'ram'), viewOf({ 'sub3/x': 'x', l: 'ram' }))
  assert.deepEqual(await files(b, 'pos'), { ...viewOf({ 'sub/z': 'z', l: 'pos', 'from-ram': 'ram' }) })
  assert.deepEqual(await files(b, 'loc'), viewOf({ 'sub/y': 'y', 'sub/f2': 'loc', l: 'loc', 'from-pos': 'pos' }))
  await stopAndFsck(srv, [a, b])
})

test('strong/none → strong/global → strong/none while files exist: nothing is lost, what was there when the policy became global survives a kill -9 of the server and of the client, fsck is clean', { timeout: 120000 }, async () => {
  const srv = await startServer({ args: rareTrims })
  const a = await mountClient(srv, 'a')
  await setPolicy(a, 'sw', RAMDISK)
  // Under none: data files (stored with their commits), then namespace changes the MDS keeps in memory.
  await writeFiles(a, { 'sw/one': 'one', 'sw/two': 'two', 'sw/keep/three': 'three', 'sw/untouched': 'u' })
  await a.shOk('mkdir sw/empty-dir && touch sw/empty && mv sw/two sw/second && ln sw/one sw/one-link && rm sw/keep/three')
  await setPolicy(a, 'sw', POSIX)
  assert.equal((await policyOf(a, 'sw')).durability, 'global')
  // Under global: an fsync (no listing: it would make the MDS trim), then a kill -9 of everything.
  await pyOk(a, "import os\nd = 'sw'\n" + fsyncOf('untouched'))
  const globalView: View = { ...viewOf({ one: 'one', second: 'two', 'one-link': 'one', untouched: 'u' }), keep: ['d', '0o755'], 'empty-dir': ['d', '0o755'], empty: ['f', '0o644', 0, ''] }
  await srv.kill()
  await a.kill()
  await srv.start()
  const b = await mountClient(srv, 'b')
  assert.deepEqual(await files(b, 'sw'), globalView)
  // Back to none: everything stays, new changes work.
  await setPolicy(b, 'sw', RAMDISK)
  await b.shOk('echo four > sw/four && mv sw/second sw/keep/second && rm sw/one-link && mv sw/empty sw/was-empty')
  await a.start()
  const expected: View = { ...viewOf({ one: 'one', four: 'four\n', 'keep/second': 'two', untouched: 'u' }), 'empty-dir': ['d', '0o755'], 'was-empty': ['f', '0o644', 0, ''] }
  for (const m of [a, b]) assert.deepEqual(await files(m, 'sw'), expected, m.mnt)
  await stopAndFsck(srv, [a, b])
})
