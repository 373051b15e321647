// Merging client journals into an MDS whose cache has forgotten the
// directories the journals fill (tiny cache limits, trims in between): an
// empty directory is known to hold nothing without asking the store, and a
// directory another client filled meanwhile must still have its clashing
// names replaced (interfere: allow, the decoupled client's updates win). The
// result must survive a crash (replay of the MDS journal) and be fsck-clean.

import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { test } from 'node:test'
import { Encoder } from '../../src/common/codec'
import { now } from '../../src/common/time'
import { encodeEvent, EventType, type Event } from '../../src/mds/events'
import { checkNamespace } from '../../src/mds/fsck'
import type { Mds } from '../../src/mds/mds'
import { openMds } from '../../src/mds/open'
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type Ino } from '../../src/common/types'
import { openStore } from '../../src/store'

const caller = { uid: 0, gid: 0, pid: 1 }
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** path → type, inode number, nlink: the whole namespace, as the MDS lists it. */
async function listing (mds: Mds): Promise<string[]> {
  const out: string[] = []
  const walk = async (ino: Ino, prefix: string): Promise<void> => {
    for (const e of await mds.readdir(ino, null, 100000)) {
      const a = mds.getattr(e.ino)
      const dir = (a.mode & S_IFMT) === S_IFDIR
      out.push(`${prefix}/${e.name} ${dir ? 'dir' : 'file'} ${e.ino} ${a.nlink}`)
      if (dir) await walk(e.ino, `${prefix}/${e.name}`)
    }
  }
  await walk(ROOT_INO, '')
  return out.sort()
}

function segment (events: Event[]): Uint8Array {
  const enc = new Encoder(1024)
  for (const ev of events) encodeEvent(enc, ev)
  return enc.finish()
}

test('merges into directories the cache forgot: empty ones filled without store reads, clashing names replaced (the merge wins); the same after a crash; fsck clean', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-merge-'))
  let store = await openStore(dir, { create: true })
  const mdsOptions = { cache: { inodes: 8, dentries: 8 }, trimDirtyEntries: 16, trimIntervalMs: 50 }
  let mds = await openMds(store, { mds: mdsOptions })
  try {
    const full = mds.mkdir(ROOT_INO, 'full', 0o755, caller).ino
    const empty = mds.mkdir(ROOT_INO, 'empty', 0o755, caller).ino
    const emptied = mds.mkdir(ROOT_INO, 'emptied', 0o755, caller).ino
    // Another client's files (through the MDS), stored and evicted from the cache.
    const theirs = new Map<string, Ino>()
    for (let i = 0; i < 40; i++) theirs.set(`x${i}`, mds.mknod(full, `x${i}`, S_IFREG | 0o644, 0, caller).ino)
    for (let i = 0; i < 10; i++) mds.mknod(emptied, `y${i}`, S_IFREG | 0o644, 0, caller)
    await mds.trim()
    // Removed again, and stored: the store's directory object is empty, the directory counts 0.
    for (let i = 0; i < 10; i++) mds.unlink(emptied, `y${i}`)
    await mds.trim()
    for (let i = 0; i < 40; i++) mds.getattr(mds.mkdir(ROOT_INO, `filler${i}`, 0o755, caller).ino)
    await mds.trim()
    await sleep(20)

    const a = mds.claim(full, 'A', 200)
    const b = mds.claim(empty, 'B', 200)
    const c = mds.claim(emptied, 'C', 200)
    const t = now()
    const mk = (parent: Ino, name: string, ino: Ino, dirToo = false): Event => ({ type: EventType.Mknod, parent, name, ino, mode: (dirToo ? S_IFDIR : S_IFREG) | 0o644, uid: 0, gid: 0, rdev: 0, time: t, target: '' })
    // A's journal: new names, names the other client created (x3, x17), a rename onto another (x20).
    const evA: Event[] = []
    let ino = a.inoStart
    for (let i = 0; i < 30; i++) evA.push(mk(full, `n${i}`, ino++))
    evA.push(mk(full, 'x3', ino++), mk(full, 'x17', ino++))
    evA.push({ type: EventType.Rename, parent: full, name: 'n0', newParent: full, newName: 'x20', flags: 0, time: t })
    const r1 = mds.mergeSegments([segment(evA)], { root: full, seq: 1 })
    assert.deepEqual([r1.applied, r1.skipped], [evA.length, 0])
    await r1.committed
    // B's journal fills an empty directory: a subdirectory and files in both.
    const evB: Event[] = []
    ino = b.inoStart
    const sub = ino++
    evB.push(mk(empty, 'sub', sub, true))
    for (let i = 0; i < 30; i++) evB.push(mk(empty, `f${i}`, ino++), mk(sub, `g${i}`, ino++))
    const reads = mds.ns.cache.storeReads
    const r2 = mds.mergeSegments([segment(evB)], { root: empty, seq: 1 })
    assert.deepEqual([r2.applied, r2.skipped], [evB.length, 0])
    assert.equal(mds.ns.cache.storeReads - reads, 0, 'no dentry of an empty directory is looked up in the store')
    await r2.committed
    // C's journal, applied the other way (applyClientEvents), into a directory emptied and stored.
    const evC: Event[] = []
    ino = c.inoStart
    for (let i = 0; i < 12; i++) evC.push(mk(emptied, `y${i}`, ino++))
    assert.deepEqual(mds.applyClientEvents(evC, true, { root: emptied, seq: 1 }), { applied: evC.length, skipped: 0 })
    await mds.sync(false)

    const expect = (m: Mds): void => {
      for (const [name, old] of theirs) {
        const got = m.lookupOrNull(full, name)
        if (name === 'x3' || name === 'x17' || name === 'x20') assert.ok(got !== null && got.ino >= a.inoStart, `${name} is A's now`)
        else assert.equal(got?.ino, old, `${name} is still the other client's`)
      }
      assert.equal(m.lookupOrNull(full, 'n0'), null)
      assert.equal(m.ns.cache.getInode(full)?.nentries, 40 + 29)
      assert.equal(m.ns.cache.getInode(empty)?.nentries, 31)
      assert.equal(m.ns.cache.getInode(sub)?.nentries, 30)
      assert.equal(m.ns.cache.getInode(emptied)?.nentries, 12)
      assert.equal(m.getattr(empty).nlink, 3)
    }
    expect(mds)
    const before = await listing(mds)
    assert.equal(before.filter(l => l.startsWith('/full/')).length, 69)

    // Crash: dropped without closing; the store plus the journal must say the same.
    await store.close()
    store = await openStore(dir, { readOnly: true })
    mds = await openMds(store, { readOnly: true })
    assert.deepEqual(mds.replayProblems(), [])
    assert.deepEqual(await listing(mds), before)
    expect(mds)
    assert.deepEqual(checkNamespace(mds, store).problems.map(p => p.message), [])
    await mds.close()
    await store.close()

    // And once more after the restarted MDS has trimmed it all.
    store = await openStore(dir, { create: true })
    mds = await openMds(store, { mds: mdsOptions })
    await mds.trim()
    assert.deepEqual(await listing(mds), before)
    await mds.close()
    await store.close()
    store = await openStore(dir, { readOnly: true })
    mds = await openMds(store, { readOnly: true })
    assert.deepEqual(checkNamespace(mds, store).problems.map(p => p.message), [])
  } finally {
    await mds.close().catch(() => {})
    await store.close().catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
