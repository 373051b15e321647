// `cudele journal`: a client journal file (local_persist) read, exported and
// applied from outside, and a stopped store's MDS journal read and extended.
// An administrator's apply followed by the owner's own merge applies the same
// creates twice: the namespace must stay consistent (fsck clean).

import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { after, test } from 'node:test'
import { cleanupServers, cudele, mountClient, startServer } from '../helpers/server'
import { pyOk, setPolicy, syncOk, tree, useStateHome, viewOf, writeFiles } from '../helpers/cudele'

const state = useStateHome()
after(async () => {
  await cleanupServers()
  state.cleanup()
})

/** Client journal files (local_persist) under the test's state directory. */
function journalFiles (): string[] {
  const root = path.join(state.dir, 'cudele')
  const out: string[] = []
  for (const d of fs.existsSync(root) ? fs.readdirSync(root) : []) {
    for (const f of fs.readdirSync(path.join(root, d))) if (f.endsWith('.cj')) out.push(path.join(root, d, f))
  }
  return out
}

test('journal inspect, export and apply of a client journal; the owner\'s merge after an apply leaves fsck clean', { timeout: 120000 }, async () => {
  const srv = await startServer()
  const a = await mountClient(srv, 'a')
  const b = await mountClient(srv, 'b')
  await setPolicy(b, 'inv', 'consistency: invisible\ndurability: local\n')
  await writeFiles(a, { 'inv/x/one': 'first', 'inv/x/two': 'second', 'inv/three': 'third' })
  await pyOk(a, "import os\nfd = os.open('inv/three', os.O_RDONLY)\nos.fsync(fd)\nos.close(fd)\n")
  const [kept] = journalFiles()
  assert.ok(kept, 'A keeps a client journal file')
  // A copy as it is now: the owner's merge below empties its own file.
  const cj = path.join(srv.root, 'a.cj')
  fs.copyFileSync(kept, cj)

  const inspect = await cudele(`journal inspect "${cj}"`)
  assert.equal(inspect.code, 0, inspect.stderr)
  assert.match(inspect.stdout, /client journal .* \d+ segments, \d+ events/)
  assert.match(inspect.stdout, /^ +mknod +4 events/m)

  const out = path.join(srv.root, 'events.jsonl')
  const exp = await cudele(`journal export "${cj}" "${out}" --json`)
  assert.equal(exp.code, 0, exp.stderr)
  const events = fs.readFileSync(out, 'utf8').trim().split('\n').map(l => JSON.parse(l) as { type: string, name?: string })
  assert.deepEqual(events.filter(e => e.type === 'mknod').map(e => e.name).sort(), ['one', 'three', 'two', 'x'])

  // An administrator applies A's journal: B sees the files before A merged anything.
  assert.deepEqual(Object.keys(await tree(b, 'inv')), ['policies.yml'])
  const apply = await cudele(`journal apply "${cj}" --connect "${srv.addr}"`)
  assert.equal(apply.code, 0, apply.stdout + apply.stderr)
  assert.match(apply.stdout, /applied \d+ events, 0 could not apply/)
  const names = Object.keys(await tree(b, 'inv')).sort()
  assert.deepEqual(names, ['policies.yml', 'three', 'x', 'x/one', 'x/two'])

  // Then A merges: the same creates again, blindly. One inode per file, nothing left a stray.
  await syncOk(a, 'inv', true)
  const view = await tree(b, 'inv')
  assert.deepEqual(view, { ...viewOf({ 'x/one': 'first', 'x/two': 'second', three: 'third' }), 'policies.yml': view['policies.yml'] })
  assert.equal(await a.stop(), 0, a.log)
  assert.equal(await b.stop(), 0, b.log)
  assert.equal(await srv.stop(), 0, srv.log)
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)

  // A stopped store's MDS journal: import the file's segments, inspect them, and the next start replays them
  // (a third time: still one inode per file).
  const imp = await cudele(`journal import "${cj}" --store "${srv.store}"`)
  assert.equal(imp.code, 0, imp.stderr)
  const storeJournal = await cudele(`journal inspect --store "${srv.store}"`)
  assert.equal(storeJournal.code, 0, storeJournal.stderr)
  assert.match(storeJournal.stdout, /MDS journal of .* \(untrimmed objects after \d+\): [1-9]\d* segments/)
  await srv.start()
  const c = await mountClient(srv, 'c')
  assert.deepEqual(Object.keys(await tree(c, 'inv')).sort(), ['policies.yml', 'three', 'x', 'x/one', 'x/two'])
  assert.equal(await c.stop(), 0, c.log)
  assert.equal(await srv.stop(), 0, srv.log)
  const again = await srv.fsck()
  assert.equal(again.code, 0, again.stdout + again.stderr)
})
