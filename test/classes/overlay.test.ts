// The overlay a method reads through (snapshot + chained calls + its own
// writes) against the store itself: random op sequences go both to an
// overlay over a read snapshot and to the store, and after every op every
// read must agree. Versions are checked at the end of each simulated call,
// against a second object that receives each call as one write.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import os from 'os'
import path from 'path'
import Database from 'better-sqlite3'
import { openStore, ObjectOp, SqliteStore } from '../../src/store'
import { SqliteSnapshot } from '../../src/store/sqlite/snapshot'
import { configureReader } from '../../src/store/sqlite/schema'
import { SnapshotObject } from '../../src/store/classes/host'
import { ObjectOverlay, ObjectView } from '../../src/store/classes/overlay'

function rng (seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x / 0x100000000
  }
}

const CHUNK = 64 * 1024

function randomOp (r: () => number, size: number): ObjectOp {
  const int = (n: number): number => Math.floor(r() * n)
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => 1 + int(255)))
  const key = (): Buffer => Buffer.from([int(4), int(4)]) // few keys, bytes 0-3: collisions and odd byte order
  const len = (): number => (r() < 0.1 ? int(2 * CHUNK) : int(300))
  const off = (): number => (r() < 0.2 ? CHUNK - 50 + int(100) : int(size + 200))
  switch (int(12)) {
    case 0: return { op: 'write', offset: off(), data: bytes(len()) }
    case 1: return { op: 'write', offset: off(), data: bytes(len()) }
    case 2: return { op: 'writeFull', data: bytes(len()) }
    case 3: return { op: 'truncate', size: r() < 0.5 ? int(size + 1) : size + int(CHUNK) }
    case 4: return { op: 'omapSet', entries: [[key(), bytes(int(10))]] }
    case 5: return { op: 'omapSet', entries: [[key(), bytes(int(10))]] }
    case 6: return { op: 'omapRemove', keys: [key()] }
    case 7: return r() < 0.3 ? { op: 'omapClear' } : { op: 'omapRemove', keys: [key()] }
    case 8: return { op: 'setXattr', name: `user.${int(3)}`, value: bytes(int(8)) }
    case 9: return { op: 'removeXattr', name: `user.${int(3)}` }
    case 10: return r() < 0.3 ? { op: 'remove' } : { op: 'create', exclusive: false }
    default: return { op: 'create', exclusive: false }
  }
}

async function agree (store: SqliteStore, view: ObjectView, r: () => number, where: string): Promise<void> {
  const st = store.statSync('p', 'o')
  assert.equal(view.stat()?.size ?? null, st?.size ?? null, `${where}: size`)
  if (st === null) return
  assert.deepEqual(view.read(0, st.size + 10), store.readSync('p', 'o', 0, st.size + 10), `${where}: whole payload`)
  const o = Math.floor(r() * (st.size + 5))
  const l = Math.floor(r() * CHUNK)
  assert.deepEqual(view.read(o, l), store.readSync('p', 'o', o, l), `${where}: read ${o}+${l}`)
  const all = store.omapListSync('p', 'o', { limit: 1000 }).map(e => [Buffer.from(e.key).toString('latin1'), Buffer.from(e.value)])
  assert.deepEqual(view.omapList(null, 1000), all, `${where}: omap`)
  const after = all.length > 0 && r() < 0.7 ? all[Math.floor(r() * all.length)][0] as string : null
  const limit = 1 + Math.floor(r() * 3)
  const want = all.filter(([k]) => after === null || (k as string) > after).slice(0, limit)
  assert.deepEqual(view.omapList(after, limit), want, `${where}: omap after ${String(after)} limit ${limit}`)
  for (let k = 0; k < 3; k++) {
    const key = Buffer.from([Math.floor(r() * 4), Math.floor(r() * 4)])
    const got = store.omapGetSync('p', 'o', [key])
    assert.deepEqual(view.omapGet(key.toString('latin1')), got.length === 0 ? null : Buffer.from(got[0].value), `${where}: omap get`)
  }
  for (let x = 0; x < 3; x++) {
    const v = await store.getXattr('p', 'o', `user.${x}`)
    assert.deepEqual(view.getXattr(`user.${x}`), v === null ? null : Buffer.from(v), `${where}: xattr user.${x}`)
  }
}

test('overlay reads match the store after every op, across chained calls, with versions', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-overlay-'))
  const store = await openStore(dir, { create: true })
  try {
    await store.createPool('p')
    for (let seed = 1; seed <= 12; seed++) {
      const r = rng(seed)
      // Start from a random object (or none), the same in 'o' (op by op) and 'v' (call by call).
      await store.submit([{ pool: 'p', name: 'o', ops: [{ op: 'remove' }] }, { pool: 'p', name: 'v', ops: [{ op: 'remove' }] }], { durable: false })
      if (seed % 4 !== 0) {
        const init: ObjectOp[] = Array.from({ length: 10 }, () => randomOp(r, 1000)).filter(op => op.op !== 'remove')
        await store.submit([{ pool: 'p', name: 'o', ops: structuredClone(init) }, { pool: 'p', name: 'v', ops: structuredClone(init) }], { durable: false })
      }
      const db = new Database(path.join(dir, 'store.db'), { readonly: true })
      configureReader(db)
      db.exec('BEGIN')
      try {
        const base = new SnapshotObject(new SqliteSnapshot(db), 'p', 'o')
        base.stat() // the snapshot starts here
        let acc: ObjectOverlay | null = null
        for (let call = 0; call < 6; call++) {
          const view = new ObjectOverlay(acc ?? base)
          const ops: ObjectOp[] = []
          for (let i = 0; i < 15; i++) {
            const op = randomOp(r, view.stat()?.size ?? 0)
            view.record(op)
            ops.push(op)
            // The store may take over (detach) large payload buffers: give it copies.
            await store.submit([{ pool: 'p', name: 'o', ops: [structuredClone(op)] }], { durable: false })
            await agree(store, view, r, `seed ${seed} call ${call} op ${i} (${op.op})`)
          }
          await store.submit([{ pool: 'p', name: 'v', ops: structuredClone(ops) }], { durable: false })
          acc ??= new ObjectOverlay(base)
          acc.absorb(view, Date.now())
          await agree(store, acc, r, `seed ${seed} after call ${call}`)
          assert.equal(acc.stat()?.version ?? null, store.statSync('p', 'v')?.version ?? null, `seed ${seed} call ${call}: version`)
        }
      } finally {
        db.exec('COMMIT')
        db.close()
      }
    }
  } finally {
    await store.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
