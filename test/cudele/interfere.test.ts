// What other clients may do in a subtree a client owns (interfere):
//   block   every change by another client gets EBUSY until the owner lets go
//           (unmount, or its session ends); reads are allowed;
//   allow   other clients' changes go through the MDS, and at merge the
//           owner's updates win.
// Strong subtrees with interfere: block (policies/home.yml) belong to the
// first client that changes them.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import * as path from 'path'
import { after, before, test } from 'node:test'
import { cleanupServers, type ClientMount, mountClient, type ServerProc, startServer } from '../helpers/server'
import { REPO } from '../helpers/mount'
import { errnos, policyOf, setPolicy, syncOk, tree, until, useStateHome, writeFiles } from '../helpers/cudele'

const state = useStateHome()
const TIMEOUT_MS = 1500
let srv: ServerProc
let a: ClientMount
let b: ClientMount

before(async () => {
  srv = await startServer({ args: ['--session-timeout', String(TIMEOUT_MS), '--heartbeat', '250'] })
  a = await mountClient(srv, 'a')
  b = await mountClient(srv, 'b')
})

after(async () => {
  await cleanupServers()
  state.cleanup()
})

/** Every kind of change another client might try in DIR (which holds old, sub/inner and the empty sub2). */
function changes (dir: string): Record<string, string> {
  return {
    create: `open('${dir}/new', 'w').close()`,
    'create nested': `open('${dir}/sub/new', 'w').close()`,
    mkdir: `os.mkdir('${dir}/newdir')`,
    'mkdir nested': `os.mkdir('${dir}/sub/newdir')`,
    symlink: `os.symlink('old', '${dir}/sl')`,
    unlink: `os.unlink('${dir}/old')`,
    'unlink nested': `os.unlink('${dir}/sub/inner')`,
    rmdir: `os.rmdir('${dir}/sub2')`,
    'rename into': `os.rename('outside-${dir}', '${dir}/moved-in')`,
    'rename out': `os.rename('${dir}/old', 'moved-out-${dir}')`,
    'rename within': `os.rename('${dir}/old', '${dir}/old2')`,
    'link into': `os.link('outside-${dir}', '${dir}/hardlink')`,
    chmod: `os.chmod('${dir}/old', 0o600)`,
    'chmod dir': `os.chmod('${dir}/sub', 0o700)`,
    truncate: `os.truncate('${dir}/old', 1)`,
    setxattr: `os.setxattr('${dir}/old', 'user.x', b'1')`,
    write: `
fd = os.open('${dir}/sub/inner', os.O_WRONLY)
try:
    os.write(fd, b'XXXX')
    os.fsync(fd)
finally:
    os.close(fd)`
  }
}

function reads (dir: string): Record<string, string> {
  return {
    read: `assert open('${dir}/old').read() == 'old'`,
    'read nested': `assert open('${dir}/sub/inner').read() == 'inner'`,
    listdir: `assert sorted(os.listdir('${dir}')) == ['old', 'policies.yml', 'sub', 'sub2'], os.listdir('${dir}')`,
    stat: `assert os.stat('${dir}/old').st_size == 3`,
    getxattr: `
try:
    os.getxattr('${dir}/old', 'user.none')
except OSError as e:
    assert e.errno == errno.ENODATA`
  }
}

/** DIR with old, sub/inner, sub2 (empty) and outside-DIR next to it, made by B before the policy. */
async function prepare (dir: string, yaml: string): Promise<void> {
  await writeFiles(b, { [`${dir}/old`]: 'old', [`${dir}/sub/inner`]: 'inner', [`outside-${dir}`]: 'outside' })
  await b.shOk(`mkdir ${dir}/sub2`)
  await setPolicy(b, dir, yaml)
}

test('interfere: block (weak): while A owns the subtree every change by B gets EBUSY, reads work; after A unmounts B can write and sees A\'s updates', { timeout: 120000 }, async () => {
  await prepare('blk', 'consistency: weak\ndurability: none\ninterfere: block\n')
  const before = await tree(b, 'blk')
  await writeFiles(a, { 'blk/from-a': 'A was here' })
  assert.equal((await policyOf(a, 'blk')).owned_here, true)

  const got = await errnos(b, changes('blk'))
  const want = Object.fromEntries(Object.keys(changes('blk')).map(k => [k, 'EBUSY']))
  assert.deepEqual(got, want)
  assert.deepEqual(await errnos(b, reads('blk')), Object.fromEntries(Object.keys(reads('blk')).map(k => [k, 'ok'])))
  assert.deepEqual(await tree(b, 'blk'), before, 'nothing B tried changed the subtree')
  assert.equal((await b.shOk('cat outside-blk')), 'outside')

  assert.equal(await a.stop(), 0)
  await a.start()
  assert.deepEqual((await tree(b, 'blk'))['from-a'], ['f', '0o644', 10, 'A was here'])
  // B may change it now (B is its owner from its first change on).
  const after = await errnos(b, { create: "open('blk/new', 'w').close()", unlink: "os.unlink('blk/old')", 'rename into': "os.rename('outside-blk', 'blk/moved-in')" })
  assert.deepEqual(after, { create: 'ok', unlink: 'ok', 'rename into': 'EXDEV' }, 'a rename into B\'s own decoupled subtree crosses its edge')
  assert.equal((await policyOf(b, 'blk')).owned_here, true)
  await syncOk(b, 'blk')
})

test('interfere: allow (weak): B\'s changes go through while A owns the subtree; at the merge A\'s updates win', { timeout: 120000 }, async () => {
  await prepare('alw', 'consistency: weak\ndurability: none\ninterfere: allow\n')
  await writeFiles(a, { 'alw/x': 'x from A', 'alw/only-a': 'a' })
  await a.shOk('chmod 600 alw/old')
  assert.equal((await policyOf(a, 'alw')).owned_here, true)

  // B's changes go through the MDS: B sees them at once, A (working on its own copy) does not.
  await writeFiles(b, { 'alw/x': 'x from B, longer', 'alw/only-b': 'b' })
  assert.deepEqual(await errnos(b, { mkdir: "os.mkdir('alw/b-dir')", chmod: "os.chmod('alw/sub/inner', 0o640)" }), { mkdir: 'ok', chmod: 'ok' })
  const onB = await tree(b, 'alw')
  assert.deepEqual(onB.x, ['f', '0o644', 16, 'x from B, longer'])
  assert.equal(onB['only-a'], undefined)
  assert.deepEqual((await tree(a, 'alw')).x, ['f', '0o644', 8, 'x from A'])

  await syncOk(a, 'alw')
  const merged = await tree(b, 'alw')
  assert.deepEqual(merged.x, ['f', '0o644', 8, 'x from A'], 'A\'s x wins')
  assert.deepEqual(merged['only-a'], ['f', '0o644', 1, 'a'])
  assert.deepEqual(merged.old, ['f', '0o600', 3, 'old'])
  // What only B did stays.
  assert.deepEqual(merged['only-b'], ['f', '0o644', 1, 'b'])
  assert.deepEqual(merged['b-dir'], ['d', '0o755'])
  assert.deepEqual(merged['sub/inner'], ['f', '0o640', 5, 'inner'])
  // A still owns the subtree, and sees what everyone sees: B's surviving changes too.
  assert.equal((await policyOf(a, 'alw')).owned_here, true)
  assert.deepEqual(await tree(a, 'alw'), merged)
  // A's next changes go on from there, and merge as before.
  await writeFiles(a, { 'alw/only-b': 'a took it over', 'alw/b-dir/from-a': 'in B\'s directory' })
  await syncOk(a, 'alw')
  const again = await tree(b, 'alw')
  assert.deepEqual(again['only-b'], ['f', '0o644', 14, 'a took it over'])
  assert.deepEqual(again['b-dir/from-a'], ['f', '0o644', 16, 'in B\'s directory'])
  assert.deepEqual(await tree(a, 'alw'), again)
})

test('strong + interfere: block (home.yml): the first writer owns the subtree; the other gets EBUSY (reads work) until the owner\'s session ends', { timeout: 120000 }, async () => {
  const yaml = fs.readFileSync(path.join(REPO, 'policies', 'home.yml'), 'utf8')
  await prepare('home', yaml)
  const p = await policyOf(b, 'home')
  assert.deepEqual([p.consistency, p.durability, p.interfere, p.owner], ['strong', 'global', 'block', null])

  await writeFiles(a, { 'home/from-a': 'mine' })
  // Strong: B sees A's file at once.
  assert.deepEqual((await tree(b, 'home'))['from-a'], ['f', '0o644', 4, 'mine'])
  const owner = (await policyOf(b, 'home')).owner
  assert.ok(owner)
  assert.equal(owner, (await policyOf(a, 'home')).owner)

  const ops = changes('home')
  const got = await errnos(b, ops)
  assert.deepEqual(got, Object.fromEntries(Object.keys(ops).map(k => [k, 'EBUSY'])))
  const r = reads('home')
  r.listdir = "assert sorted(os.listdir('home')) == ['from-a', 'old', 'policies.yml', 'sub', 'sub2'], os.listdir('home')"
  assert.deepEqual(await errnos(b, r), Object.fromEntries(Object.keys(r).map(k => [k, 'ok'])))
  // A works on as usual.
  assert.deepEqual(await errnos(a, { create: "open('home/a2', 'w').close()", unlink: "os.unlink('home/old')", mkdir: "os.mkdir('home/sub/d2')" }), { create: 'ok', unlink: 'ok', mkdir: 'ok' })
  // What A made since is A's too.
  assert.deepEqual(await errnos(b, {
    'chmod new file': "os.chmod('home/a2', 0o600)",
    'chmod first file': "os.chmod('home/from-a', 0o600)",
    'create in new dir': "open('home/sub/d2/x', 'w').close()",
    'chmod new dir': "os.chmod('home/sub/d2', 0o700)"
  }), { 'chmod new file': 'EBUSY', 'chmod first file': 'EBUSY', 'create in new dir': 'EBUSY', 'chmod new dir': 'EBUSY' })

  // A's session ends (kill -9, then the session timeout): B may write, and then owns it.
  await a.kill()
  await until('B can write in home/', async () => (await errnos(b, { create: "open('home/from-b', 'w').close()" })).create === 'ok', TIMEOUT_MS + 8000)
  assert.notEqual((await policyOf(b, 'home')).owner, owner)
  assert.deepEqual(await errnos(b, { unlink: "os.unlink('home/from-a')", chmod: "os.chmod('home/sub/inner', 0o600)" }), { unlink: 'ok', chmod: 'ok' })
  await a.start()
  assert.deepEqual(await errnos(a, { create: "open('home/a3', 'w').close()" }), { create: 'EBUSY' })
})

test('after all of it: the mounts unmount cleanly and fsck is clean', { timeout: 60000 }, async () => {
  assert.equal(await a.stop(), 0)
  assert.equal(await b.stop(), 0)
  assert.equal(await srv.stop(), 0)
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
})
