// Cudele in an embedded mount (store, MDS, monitor and client in one
// process): a weak/local subtree keeps its updates in the client journal,
// they survive a kill -9 of the mount (fsync'd) and come back on remount,
// `cudele sync` merges them, and the store is clean after unmount.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import * as path from 'path'
import { after, test } from 'node:test'
import { type CudeleMount, mountCudele } from '../helpers/mount'
import { policyOf, pyOk, setPolicy, syncOk, tree, useStateHome } from '../helpers/cudele'

const state = useStateHome()
let m: CudeleMount | null = null

after(async () => {
  await m?.cleanup()
  state.cleanup()
})

/** Client journal files under the test's state directory. */
function journalFiles (): string[] {
  const root = path.join(state.dir, 'cudele')
  if (!fs.existsSync(root)) return []
  return fs.readdirSync(root).flatMap(d => fs.readdirSync(path.join(root, d)).filter(f => f.endsWith('.cj')).map(f => path.join(d, f)))
}

test('embedded, weak/local: updates are seen in the mount, survive kill -9 (fsync) and a remount, merge on cudele sync; fsck is clean after unmount', { timeout: 120000 }, async () => {
  m = await mountCudele()
  await setPolicy(m, 'w', 'consistency: weak\ndurability: local\ninterfere: block\n')
  await pyOk(m, `
import os
os.makedirs('w/a/b')
for i in range(5):
    with open('w/a/b/f%d' % i, 'w') as f: f.write('file %d' % i)
with open('w/big', 'wb') as f: f.write(b'z' * 200000)
os.rename('w/a/b/f4', 'w/moved')
os.chmod('w/a', 0o700)
os.symlink('moved', 'w/link')
fd = os.open('w/moved', os.O_RDONLY)
os.fsync(fd)
os.close(fd)
`)
  const view = await tree(m, 'w')
  assert.deepEqual(Object.keys(view).sort(), ['a', 'a/b', 'a/b/f0', 'a/b/f1', 'a/b/f2', 'a/b/f3', 'big', 'link', 'moved', 'policies.yml'])
  assert.deepEqual(view.moved, ['f', '0o644', 6, 'file 4'])
  assert.deepEqual(view.a, ['d', '0o700'])
  const p = await policyOf(m, 'w')
  assert.equal(p.owned_here, true)
  assert.ok(p.unmerged_segments > 0)
  assert.equal(journalFiles().length, 1)

  await m.kill()
  await m.start()
  assert.match(m.log, /picked up [1-9]\d* journal segments of decoupled subtree/)
  assert.deepEqual(await tree(m, 'w'), view)
  assert.ok((await policyOf(m, 'w')).unmerged_segments > 0, 'nothing merged yet')

  await syncOk(m, 'w')
  assert.equal((await policyOf(m, 'w')).unmerged_segments, 0)
  // Merged: in the store's namespace now, so a crash right after loses nothing either.
  await m.kill()
  await m.start()
  assert.match(m.log, /picked up 0 journal segments/)
  assert.deepEqual(await tree(m, 'w'), view)

  // More updates; a clean unmount merges them and lets go of the subtree.
  await m.shOk('echo later > w/later && mkdir w/newdir && rm w/a/b/f0')
  const last = await tree(m, 'w')
  // New inodes after the merge and remount come after the ones already used.
  const inos = (await m.shOk('find w -mindepth 1 -printf "%i\\n"')).trim().split('\n')
  assert.equal(new Set(inos).size, inos.length, `inode numbers used twice: ${inos.join(' ')}`)
  assert.equal(await m.stop(), 0, m.log)
  assert.deepEqual(journalFiles(), [])
  const f = await m.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
  await m.start()
  assert.deepEqual(await tree(m, 'w'), last)
  assert.equal((await policyOf(m, 'w')).owner, null)
  assert.equal(await m.stop(), 0, m.log)
})

test('embedded: a refused policies.yml goes, and one can be written again at once (the kernel forgets the removed name); the shell hears of the refusal', { timeout: 60000 }, async () => {
  m = await mountCudele()
  await m.shOk('mkdir -p again')
  const bad = await m.sh(`bash -c 'printf "consistency: sideways\\n" > again/policies.yml'`)
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /write error: Invalid argument/)
  assert.equal((await m.sh('test -e again/policies.yml')).code, 1, 'the file made for the refused policy is gone')
  // At once, with no stat in between: the kernel must not still hold the removed file's entry.
  await m.shOk(`bash -c 'printf "consistency: weak\\ndurability: local\\n" > again/policies.yml'`)
  assert.equal(await m.shOk('cat again/policies.yml'), 'consistency: weak\ndurability: local\n')
  assert.equal((await policyOf(m, 'again')).consistency, 'weak')
  await m.stop()
  m = null
})
