// Random operation sequences against the MDS and a tiny in-memory model of a
// POSIX namespace; every result (success or errno) must agree. At random
// points the MDS "crashes" (it is dropped without closing, after a sync) and
// is reopened from the store: journal replay plus the trimmed metadata store
// must give back exactly the model's namespace.

import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { test } from 'node:test'
import type { Mds } from '../../src/mds/mds'
import { checkNamespace } from '../../src/mds/fsck'
import { openMds } from '../../src/mds/open'
import { ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type Ino } from '../../src/common/types'
import { openStore, type SqliteStore } from '../../src/store'

interface MNode { type: 'dir' | 'file', mode: number, nlink: number, children?: Map<string, MNode>, id: number }

/** The model: a tree of nodes; files may be hard-linked (shared node objects). */
class Model {
  nextId = 1
  root: MNode = { type: 'dir', mode: 0o755, nlink: 2, children: new Map(), id: 0 }

  resolve (p: string[]): MNode | null {
    let n: MNode = this.root
    for (const name of p) {
      if (n.type !== 'dir') return null
      const c = n.children?.get(name)
      if (!c) return null
      n = c
    }
    return n
  }

  isAncestor (a: MNode, b: MNode): boolean {
    if (a === b) return true
    if (a.type !== 'dir') return false
    for (const c of a.children?.values() ?? []) if (c.type === 'dir' && this.isAncestor(c, b)) return true
    return false
  }
}

function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const NAMES = ['a', 'b', 'c', 'd', 'e']
const caller = { uid: 0, gid: 0, pid: 1 }

function code (fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

/** Resolve a path through the MDS: the inode of each component. */
function mdsResolve (mds: Mds, p: string[]): Ino | null {
  let ino = ROOT_INO
  for (const name of p) {
    if ((mds.getattr(ino).mode & S_IFMT) !== S_IFDIR) return null
    const a = mds.lookupOrNull(ino, name)
    if (!a) return null
    ino = a.ino
  }
  return ino
}

/** A canonical listing of the namespace: path → type, mode, nlink (from the MDS). */
async function snapshotMds (mds: Mds): Promise<string[]> {
  const out: string[] = []
  const walk = async (ino: Ino, prefix: string): Promise<void> => {
    for (const e of await mds.readdir(ino, null, 10000)) {
      const a = mds.getattr(e.ino)
      const type = (a.mode & S_IFMT) === S_IFDIR ? 'dir' : 'file'
      out.push(`${prefix}/${e.name} ${type} ${(a.mode & 0o7777).toString(8)} ${a.nlink}`)
      if (type === 'dir') await walk(e.ino, `${prefix}/${e.name}`)
    }
  }
  await walk(ROOT_INO, '')
  return out.sort()
}

function snapshotModel (m: Model): string[] {
  const out: string[] = []
  const walk = (n: MNode, prefix: string): void => {
    for (const [name, c] of n.children ?? []) {
      out.push(`${prefix}/${name} ${c.type} ${c.mode.toString(8)} ${c.nlink}`)
      if (c.type === 'dir') walk(c, `${prefix}/${name}`)
    }
  }
  walk(m.root, '')
  return out.sort()
}

async function runSeed (seed: number, steps: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-model-'))
  const rand = rng(seed)
  const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)]
  const randPath = (): string[] => Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick(NAMES))
  let store: SqliteStore = await openStore(dir, { create: true })
  // Small limits so eviction, store reads and trims all happen often.
  const mdsOptions = { cache: { inodes: 8, dentries: 8 }, trimDirtyEntries: 16, trimIntervalMs: 50 }
  let mds = await openMds(store, { mds: mdsOptions })
  const model = new Model()
  try {
    for (let step = 0; step < steps; step++) {
      const op = Math.floor(rand() * 8)
      const p = randPath()
      const parentPath = p.slice(0, -1)
      const name = p[p.length - 1]
      const where = `seed ${seed} step ${step}: `
      const parentM = model.resolve(parentPath)
      const parentI = mdsResolve(mds, parentPath)
      assert.equal(parentI !== null, parentM !== null, where + `resolve ${parentPath.join('/')}`)
      if (!parentM || parentI === null) continue
      const targetM = parentM.type === 'dir' ? parentM.children?.get(name) ?? null : null

      if (op === 0 || op === 1) {
        // mkdir or create
        const isDir = op === 0
        let expect = 'ok'
        if (parentM.type !== 'dir') expect = 'ENOTDIR'
        else if (targetM) expect = 'EEXIST'
        const mode = pick([0o755, 0o700, 0o644])
        const got = code(() => isDir ? mds.mkdir(parentI, name, mode, caller) : mds.mknod(parentI, name, S_IFREG | mode, 0, caller))
        assert.equal(got, expect, where + `${isDir ? 'mkdir' : 'create'} ${p.join('/')}`)
        if (got === 'ok') {
          const n: MNode = isDir ? { type: 'dir', mode, nlink: 2, children: new Map(), id: model.nextId++ } : { type: 'file', mode, nlink: 1, id: model.nextId++ }
          parentM.children?.set(name, n)
          if (isDir) parentM.nlink++
        }
      } else if (op === 2) {
        // unlink
        let expect = 'ok'
        if (parentM.type !== 'dir') expect = 'ENOTDIR'
        else if (!targetM) expect = 'ENOENT'
        else if (targetM.type === 'dir') expect = 'EISDIR'
        assert.equal(code(() => mds.unlink(parentI, name)), expect, where + `unlink ${p.join('/')}`)
        if (expect === 'ok' && targetM) {
          parentM.children?.delete(name)
          targetM.nlink--
        }
      } else if (op === 3) {
        // rmdir
        let expect = 'ok'
        if (parentM.type !== 'dir') expect = 'ENOTDIR'
        else if (!targetM) expect = 'ENOENT'
        else if (targetM.type !== 'dir') expect = 'ENOTDIR'
        else if ((targetM.children?.size ?? 0) > 0) expect = 'ENOTEMPTY'
        assert.equal(code(() => mds.rmdir(parentI, name)), expect, where + `rmdir ${p.join('/')}`)
        if (expect === 'ok') {
          parentM.children?.delete(name)
          parentM.nlink--
        }
      } else if (op === 4 || op === 5) {
        // rename
        const q = randPath()
        const dstParentM = model.resolve(q.slice(0, -1))
        const dstParentI = mdsResolve(mds, q.slice(0, -1))
        if (!dstParentM || dstParentI === null) continue
        const dstName = q[q.length - 1]
        const dstM = dstParentM.type === 'dir' ? dstParentM.children?.get(dstName) ?? null : null
        let expect = 'ok'
        if (parentM.type !== 'dir' || dstParentM.type !== 'dir') expect = 'ENOTDIR'
        else if (!targetM) expect = 'ENOENT'
        else if (parentM === dstParentM && name === dstName) expect = 'ok'
        else if (targetM.type === 'dir' && model.isAncestor(targetM, dstParentM)) expect = 'EINVAL'
        else if (dstM && dstM !== targetM) {
          if (targetM.type === 'dir' && dstM.type !== 'dir') expect = 'ENOTDIR'
          else if (targetM.type !== 'dir' && dstM.type === 'dir') expect = 'EISDIR'
          else if (dstM.type === 'dir' && (dstM.children?.size ?? 0) > 0) expect = 'ENOTEMPTY'
        }
        assert.equal(code(() => mds.rename(parentI, name, dstParentI, dstName, 0)), expect, where + `rename ${p.join('/')} -> ${q.join('/')}`)
        if (expect === 'ok' && targetM && !(parentM === dstParentM && name === dstName) && dstM !== targetM) {
          if (dstM) {
            dstM.nlink = dstM.type === 'dir' ? 0 : dstM.nlink - 1
            if (dstM.type === 'dir') dstParentM.nlink--
          }
          parentM.children?.delete(name)
          dstParentM.children?.set(dstName, targetM)
          if (targetM.type === 'dir' && parentM !== dstParentM) {
            parentM.nlink--
            dstParentM.nlink++
          }
        }
      } else if (op === 6) {
        // link
        const q = randPath()
        const dstParentM = model.resolve(q.slice(0, -1))
        const dstParentI = mdsResolve(mds, q.slice(0, -1))
        if (!dstParentM || dstParentI === null || !targetM) continue
        const srcI = mdsResolve(mds, p) as Ino
        const dstName = q[q.length - 1]
        let expect = 'ok'
        if (targetM.type === 'dir') expect = 'EPERM'
        else if (dstParentM.type !== 'dir') expect = 'ENOTDIR'
        else if (dstParentM.children?.has(dstName)) expect = 'EEXIST'
        assert.equal(code(() => mds.link(srcI, dstParentI, dstName)), expect, where + `link ${p.join('/')} -> ${q.join('/')}`)
        if (expect === 'ok') {
          dstParentM.children?.set(dstName, targetM)
          targetM.nlink++
        }
      } else if (op === 7 && targetM) {
        // chmod
        const mode = pick([0o600, 0o751, 0o4755])
        const ino = mdsResolve(mds, p) as Ino
        mds.setattr(ino, { mode })
        targetM.mode = mode
      }

      if (rand() < 0.02) {
        // Crash: everything synced must come back exactly.
        await mds.sync(false)
        await new Promise(resolve => setTimeout(resolve, Math.floor(rand() * 60)))
        await store.close()
        // What fsck sees: the store plus the journal, replayed by a read-only MDS.
        store = await openStore(dir, { readOnly: true })
        mds = await openMds(store, { readOnly: true })
        assert.deepEqual(mds.replayProblems(), [], `seed ${seed} replay after crash at step ${step}`)
        assert.deepEqual(await snapshotMds(mds), snapshotModel(model), `seed ${seed} after crash at step ${step}`)
        const report = checkNamespace(mds, store)
        assert.deepEqual(report.problems.map(x => x.message), [], `seed ${seed} fsck after crash at step ${step}`)
        await mds.close()
        await store.close()
        store = await openStore(dir, { create: true })
        mds = await openMds(store, { mds: mdsOptions })
        assert.deepEqual(await snapshotMds(mds), snapshotModel(model), `seed ${seed} after remount at step ${step}`)
      }
    }
    assert.deepEqual(await snapshotMds(mds), snapshotModel(model), `seed ${seed} final`)
    await mds.close()
    await store.close()
    store = await openStore(dir, { readOnly: true })
    mds = await openMds(store, { readOnly: true })
    assert.deepEqual(await snapshotMds(mds), snapshotModel(model), `seed ${seed} after reopen`)
    assert.deepEqual(checkNamespace(mds, store).problems.map(x => x.message), [], `seed ${seed} fsck`)
  } finally {
    await mds.close().catch(() => {})
    await store.close().catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

for (const seed of [1, 2, 3, 4, 5, 6]) {
  test(`MDS agrees with the model and survives crashes (seed ${seed})`, async () => {
    await runSeed(seed, 1500)
  })
}
