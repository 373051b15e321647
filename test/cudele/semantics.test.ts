// Consistency levels of Cudele subtrees, seen from two client mounts of one
// server: strong (the default: every change is seen at once), weak (changes
// are seen after a merge: `cudele sync`, sync_interval, unmount) and
// invisible (merged only by `cudele merge`).

import assert from 'node:assert/strict'
import { isDeepStrictEqual } from 'node:util'
import { after, before, test } from 'node:test'
import { cleanupServers, type ClientMount, mountClient, type ServerProc, startServer } from '../helpers/server'
import {
  mergeDir, policyOf, pyOk, setPolicy, syncDir, syncOk, tree, treeOrNull, until, useStateHome, type View, viewOf, writeFiles, writePolicy
} from '../helpers/cudele'

const state = useStateHome()
let srv: ServerProc
let a: ClientMount
let b: ClientMount

before(async () => {
  srv = await startServer()
  a = await mountClient(srv, 'a')
  b = await mountClient(srv, 'b')
})

after(async () => {
  await cleanupServers()
  state.cleanup()
})

test('strong (no policy anywhere): each change on A is seen by B at once, and the other way', { timeout: 90000 }, async () => {
  await a.shOk('mkdir strong')
  const p = await policyOf(b, 'strong')
  assert.equal(p.consistency, 'strong')
  assert.equal(p.durability, 'global')
  assert.match(p.source, /^default/)
  const steps: Array<[ClientMount, string]> = [
    [a, 'echo one > strong/f1'],
    [a, 'mkdir -p strong/d1/d2 && echo deep > strong/d1/d2/f'],
    [a, 'chmod 600 strong/f1'],
    [a, 'mv strong/f1 strong/d1/moved && ln -s d1/moved strong/sl'],
    [a, 'truncate -s 3 strong/d1/d2/f'],
    [a, 'head -c 300000 /dev/urandom > strong/big'],
    [b, 'echo from-b >> strong/d1/moved && chmod 640 strong/d1/moved'],
    [a, 'rm strong/sl strong/d1/moved'],
    [a, 'mv strong/d1/d2 strong/d2 && rmdir strong/d1'],
    [b, 'rm -r strong/d2']
  ]
  for (const [who, cmd] of steps) {
    const mine = await tree(who, 'strong', cmd)
    const other = who === a ? b : a
    assert.deepEqual(await tree(other, 'strong'), mine, `after "${cmd}" on ${who === a ? 'A' : 'B'}`)
  }
  assert.deepEqual(Object.keys(await tree(b, 'strong')), ['big'])
})

// The subtree before A starts: files, a directory, a file to append to, one to delete, one to rename.
const BEFORE = { 'old/x': 'x in old', app: 'appended to', gone: 'deleted', mvme: 'renamed', keep: 'kept' }

/** On A: names, sizes, contents, modes, nested directories, renames and deletes in the subtree. */
const CHANGES = `
import os, sys
d = sys.argv[1]
os.makedirs(d + '/n1/n2/n3')
with open(d + '/n1/n2/n3/deep', 'w') as f: f.write('deep down')
with open(d + '/new1', 'w') as f: f.write('new one')
with open(d + '/big', 'wb') as f: f.write(bytes(range(256)) * 1000)
os.chmod(d + '/new1', 0o600)
os.chmod(d + '/keep', 0o640)
os.chmod(d + '/n1', 0o700)
with open(d + '/app', 'a') as f: f.write(' and more')
os.unlink(d + '/gone')
os.rename(d + '/mvme', d + '/n1/moved')
os.rename(d + '/old', d + '/n1/n2/old2')
os.symlink('new1', d + '/link')
os.mkdir(d + '/emptydir')
os.rmdir(d + '/emptydir')
`

const AFTER: View = {
  ...viewOf({ 'n1/n2/n3/deep': 'deep down', new1: 'new one', keep: 'kept', 'n1/moved': 'renamed', 'n1/n2/old2/x': 'x in old', app: 'appended to and more' }),
  n1: ['d', '0o700'],
  new1: ['f', '0o600', 7, 'new one'],
  keep: ['f', '0o640', 4, 'kept'],
  big: ['f', '0o644', 256000, 'sha1:4db96121b29822369e89d5e17ff2582fc47e10a2'],
  link: ['l', '0o777', 4, 'new1']
}

test('weak, sync_interval off: A\'s updates are invisible to B until `cudele sync` on A, then all of them are there', { timeout: 90000 }, async () => {
  // (Files written after the policy is set would make B the owner: the first writer decouples the subtree.)
  await writeFiles(b, Object.fromEntries(Object.entries(BEFORE).map(([k, v]) => [`weak/${k}`, v])))
  await setPolicy(b, 'weak', 'consistency: weak\ndurability: local\nsync_interval: off\n')
  const before = await tree(b, 'weak')
  assert.deepEqual(before, viewOf(BEFORE, { 'policies.yml': before['policies.yml'] }))

  await pyOk(a, CHANGES, ['weak'])
  const onA = await tree(a, 'weak')
  assert.deepEqual(onA, { ...AFTER, 'policies.yml': before['policies.yml'] })
  const p = await policyOf(a, 'weak')
  assert.equal(p.owned_here, true)
  assert.ok(p.unmerged_segments > 0)

  // B still sees the subtree as it was, a few seconds later too.
  await new Promise(resolve => setTimeout(resolve, 1500))
  assert.deepEqual(await tree(b, 'weak'), before)

  await syncOk(a, 'weak')
  assert.deepEqual(await tree(b, 'weak'), onA)
  assert.equal((await policyOf(a, 'weak')).unmerged_segments, 0)

  // Later updates merge on the next sync, on top of the first.
  await pyOk(a, `
import os
os.unlink('weak/big')
os.rename('weak/n1/n2', 'weak/n2')
with open('weak/n2/n3/deep', 'a') as f: f.write('er')
`)
  const onA2 = await tree(a, 'weak')
  assert.deepEqual(await tree(b, 'weak'), onA)
  await syncOk(a, 'weak')
  assert.deepEqual(await tree(b, 'weak'), onA2)
  assert.deepEqual(onA2['n2/n3/deep'], ['f', '0o644', 11, 'deep downer'])
  assert.equal(onA2.big, undefined)
})

test('weak, sync_interval 1s: A\'s updates appear on B within a few seconds, without a sync', { timeout: 60000 }, async () => {
  await setPolicy(b, 'periodic', 'consistency: weak\ndurability: none\nsync_interval: 1s\n')
  const files = { 'p/a': 'alpha', 'p/q/b': 'beta', c: 'gamma' }
  await writeFiles(a, Object.fromEntries(Object.entries(files).map(([k, v]) => [`periodic/${k}`, v])))
  const onA = await tree(a, 'periodic')
  assert.deepEqual(onA, viewOf(files, { 'policies.yml': onA['policies.yml'] }))
  const t0 = Date.now()
  await until('A\'s files show up on B', async () => isDeepStrictEqual(await treeOrNull(b, 'periodic'), onA), 8000)
  const took = Date.now() - t0
  // And a later change too.
  await a.shOk('rm periodic/c && mv periodic/p/a periodic/a2')
  const onA2 = await tree(a, 'periodic')
  await until('the rename and the delete show up on B', async () => isDeepStrictEqual(await treeOrNull(b, 'periodic'), onA2), 8000)
  assert.ok(took < 8000, `took ${took} ms`)
})

test('weak: unmounting the owner merges its updates', { timeout: 60000 }, async () => {
  const c = await mountClient(srv, 'c')
  await setPolicy(b, 'weakumount', 'consistency: weak\ndurability: none\ninterfere: block\n')
  const files = { 'd/e/f': 'nested', top: 'top' }
  await writeFiles(c, Object.fromEntries(Object.entries(files).map(([k, v]) => [`weakumount/${k}`, v])))
  await c.shOk('chmod 700 weakumount/d')
  const onC = await tree(c, 'weakumount')
  assert.deepEqual(Object.keys(await tree(b, 'weakumount')), ['policies.yml'])
  const owner = (await policyOf(c, 'weakumount')).owner
  assert.ok(owner)
  assert.equal((await b.sh('touch weakumount/from-b')).code, 1)
  assert.equal(await c.stop(), 0)
  assert.deepEqual(await tree(b, 'weakumount'), onC)
  // The owner let go: B may change it now (and so becomes its owner).
  assert.equal((await policyOf(b, 'weakumount')).owner, null)
  await b.shOk('echo b > weakumount/from-b')
  const p = await policyOf(b, 'weakumount')
  assert.equal(p.owned_here, true)
  assert.notEqual(p.owner, owner)
})

test('invisible: sync_interval is refused, nothing merges by itself; `cudele sync` refuses with a clear error; `cudele merge` merges', { timeout: 60000 }, async () => {
  // Merging every interval is what weak consistency does: refused at the write, the policy file stays as it was.
  await b.shOk('mkdir -p inv')
  const bad = await writePolicy(b, 'inv', 'consistency: invisible\ndurability: local\nsync_interval: 500ms\n')
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /Invalid argument/)
  assert.equal(await b.sh('test -e inv/policies.yml').then(r => r.code), 1, 'a refused new policies.yml goes')
  await setPolicy(b, 'inv', 'consistency: invisible\ndurability: local\n')
  const files = { 'r/s': 'invisible data', t: 'tee' }
  await writeFiles(a, Object.fromEntries(Object.entries(files).map(([k, v]) => [`inv/${k}`, v])))
  const onA = await tree(a, 'inv')
  assert.deepEqual(onA, viewOf(files, { 'policies.yml': onA['policies.yml'] }))
  await new Promise(resolve => setTimeout(resolve, 2500))
  assert.deepEqual(Object.keys(await tree(b, 'inv')), ['policies.yml'])

  const r = await syncDir(a, 'inv')
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /invisible consistency/)
  assert.match(r.stderr, /cudele merge/)
  assert.deepEqual(Object.keys(await tree(b, 'inv')), ['policies.yml'])

  // Only the owner can merge; on B, merge and sync say who owns it.
  const rb = await mergeDir(b, 'inv')
  assert.notEqual(rb.code, 0)
  assert.match(rb.stderr, /decoupled by client/)

  await syncOk(a, 'inv', true)
  assert.deepEqual(await tree(b, 'inv'), onA)
})

test('invisible: unmount does not merge; the owner finds its updates when it mounts again (local), and merge shows them', { timeout: 90000 }, async () => {
  const d = await mountClient(srv, 'd')
  await setPolicy(b, 'inv2', 'consistency: invisible\ndurability: local\n')
  const files = { 'x/y': 'kept locally', z: 'zed' }
  await writeFiles(d, Object.fromEntries(Object.entries(files).map(([k, v]) => [`inv2/${k}`, v])))
  const onD = await tree(d, 'inv2')
  assert.equal(await d.stop(), 0)
  assert.deepEqual(Object.keys(await tree(b, 'inv2')), ['policies.yml'])
  await d.start()
  assert.deepEqual(await tree(d, 'inv2'), onD)
  assert.deepEqual(Object.keys(await tree(b, 'inv2')), ['policies.yml'])
  await syncOk(d, 'inv2', true)
  assert.deepEqual(await tree(b, 'inv2'), onD)
  assert.equal(await d.stop(), 0)
})

test('invisible, durability none: unmount merges nothing and keeps nothing; the data the owner wrote goes too', { timeout: 90000 }, async () => {
  const e = await mountClient(srv, 'e')
  await setPolicy(b, 'inv3', 'consistency: invisible\ndurability: none\n')
  await writeFiles(e, { 'inv3/gone': 'never merged', 'inv3/d/gone2': 'x'.repeat(5000) })
  assert.equal((await policyOf(e, 'inv3')).owned_here, true)
  assert.equal(await e.stop(), 0)
  assert.equal((await policyOf(b, 'inv3')).owner, null)
  await e.start()
  assert.deepEqual(Object.keys(await tree(e, 'inv3')), ['policies.yml'])
  assert.equal(await e.stop(), 0)
  // (fsck at the end finds no data of these files.)
})

test('the owner\'s kernel keeps names and attributes of its own subtree; once the subtree is let go it sees the other client\'s changes again within seconds', { timeout: 90000 }, async () => {
  await setPolicy(b, 'owned', 'consistency: weak\ndurability: none\nsync_interval: off\n')
  // A's changes and its own view of them: every lookup here may come from the kernel's cache.
  const mine = await tree(a, 'owned', 'mkdir -p owned/d && echo one > owned/d/f && echo two > owned/d/g && mv owned/d/g owned/d/h && rm owned/d/f && touch owned/d/f2 && chmod 600 owned/d/f2 && stat owned/d/h owned/d/f2 >/dev/null && ! test -e owned/d/f')
  assert.deepEqual(Object.keys(mine).sort(), ['d', 'd/f2', 'd/h', 'policies.yml'])
  assert.equal((await policyOf(a, 'owned')).owned_here, true)
  assert.deepEqual(Object.keys(await tree(b, 'owned')), ['policies.yml'])
  // A turns the policy strong: it merges and lets go; B sees A's tree, then changes it.
  await setPolicy(a, 'owned', 'consistency: strong\n')
  await until('B sees the merged subtree', async () => isDeepStrictEqual(Object.keys(await treeOrNull(b, 'owned') ?? {}).sort(), Object.keys(mine).sort()), 20000)
  await b.shOk('echo from-b > owned/d/f2 && rm owned/d/h && touch owned/d/new')
  const theirs = await tree(b, 'owned')
  // A no longer owns it: whatever its kernel kept from then is at most a second old.
  await until('A sees B\'s changes', async () => isDeepStrictEqual(await treeOrNull(a, 'owned'), theirs), 10000)
  assert.equal((await policyOf(a, 'owned')).owned_here, false)
})

test('after all of it: both mounts unmount cleanly and fsck is clean', { timeout: 60000 }, async () => {
  assert.equal(await a.stop(), 0)
  assert.equal(await b.stop(), 0)
  assert.equal(await srv.stop(), 0)
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
})
