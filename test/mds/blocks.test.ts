// st_blocks: the inode record's block count (and records from before it),
// the SetAttr event that carries it, and the count a run of data commits keeps.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Decoder, Encoder } from '../../src/common/codec'
import { BlockCounter } from '../../src/mds/blocks'
import { decodeEvent, encodeEvent, EventType, SA, type SetAttrEvent } from '../../src/mds/events'
import { attrOf, decodeInode, encodeInode, type Inode, UNKNOWN_BLOCKS } from '../../src/mds/inode'
import { DATA_POOL, dataObject } from '../../src/common/layout'
import { S_IFDIR, S_IFREG } from '../../src/common/types'
import { MemoryStore } from '../../src/store/memory'
import type { ObjectWrite } from '../../src/store/types'

const T = { s: 1_700_000_000, ns: 5 }

function file (size: number, blocks: number): Inode {
  return { ino: 42, mode: S_IFREG | 0o644, uid: 1, gid: 2, nlink: 1, size, rdev: 0, atime: T, mtime: T, ctime: T, parent: 0, nentries: 0, target: '', xattrs: null, blocks }
}

/** A record as written before the block count existed (version 1). */
function versionOneRecord (mode: number, size: number): Buffer {
  const enc = new Encoder(64)
  enc.u8(1).u8(0).uint(mode).uint(1).uint(2).uint(1).uint(size)
  for (let i = 0; i < 3; i++) enc.sint(T.s).uint(T.ns)
  if ((mode & S_IFDIR) === S_IFDIR) enc.uint(1).uint(0)
  return enc.finish()
}

test('inode records keep the block count; records from before it still decode', () => {
  for (const blocks of [0, 8, 123_456, UNKNOWN_BLOCKS]) {
    const back = decodeInode(42, encodeInode(file(10_000, blocks)))
    assert.equal(back.blocks, blocks)
    assert.equal(back.size, 10_000)
  }
  const old = decodeInode(42, versionOneRecord(S_IFREG | 0o644, 10_000))
  assert.equal(old.blocks, UNKNOWN_BLOCKS)
  assert.equal(old.size, 10_000)
  // Not counted: stat reports what the size covers, as before the count existed.
  assert.equal(attrOf(old).blocks, 24)
  assert.equal(decodeInode(42, versionOneRecord(S_IFREG | 0o644, 0)).blocks, 0)
  assert.equal(decodeInode(1, versionOneRecord(S_IFDIR | 0o755, 4096)).blocks, 0)
})

test('SetAttr events carry the block count (also "not counted"); events without it decode as before', () => {
  const base: SetAttrEvent = { type: EventType.SetAttr, ino: 7, mask: SA.SIZE | SA.MTIME, mode: 0, uid: 0, gid: 0, size: 99, atime: T, mtime: T, ctime: T }
  for (const blocks of [0, 16, UNKNOWN_BLOCKS]) {
    const enc = new Encoder(64)
    encodeEvent(enc, { ...base, mask: base.mask | SA.BLOCKS, blocks })
    const back = decodeEvent(new Decoder(enc.finish())) as SetAttrEvent
    assert.equal(back.blocks, blocks)
    assert.equal(back.size, 99)
    assert.deepEqual(back.ctime, T)
  }
  const enc = new Encoder(64)
  encodeEvent(enc, base)
  const back = decodeEvent(new Decoder(enc.finish())) as SetAttrEvent
  assert.equal(back.blocks, undefined)
  assert.equal(back.mask & SA.BLOCKS, 0)
})

test('the block count follows writes, truncates and removals, also while earlier commits are on their way', async () => {
  const store = new MemoryStore()
  await store.createPool(DATA_POOL)
  const counter = new BlockCounter(store)
  const ino = 42
  const write = (stripe: number, offset: number, bytes: number): ObjectWrite =>
    ({ pool: DATA_POOL, name: dataObject(ino, stripe), ops: [{ op: 'write', offset, data: Buffer.alloc(bytes, 1) }] })
  // Two commits to the same object before either reaches the store.
  const a = counter.commit(ino, 0, [write(0, 0, 1 << 20)])
  assert.equal(a.blocks, 2048)
  const b = counter.commit(ino, a.blocks, [write(0, 1 << 20, 1 << 20)])
  assert.equal(b.blocks, 4096)
  await store.submit([write(0, 0, 1 << 20), write(0, 1 << 20, 1 << 20)], { durable: false })
  a.settled()
  b.settled()
  // An overwrite adds nothing; a far write adds its own object only.
  const c = counter.commit(ino, b.blocks, [write(0, 100, 5000), write(256, 0, 1)])
  assert.equal(c.blocks, 4096 + 8)
  await store.submit([write(0, 100, 5000), write(256, 0, 1)], { durable: false })
  c.settled()
  // Counted from scratch (a record from before the count) gives the same.
  assert.equal(counter.countStored(ino), 4096 + 8)
  assert.equal(counter.commit(ino, UNKNOWN_BLOCKS, []).blocks, 4096 + 8)
  // Truncate within an object and remove another.
  const cut: ObjectWrite[] = [
    { pool: DATA_POOL, name: dataObject(ino, 0), ops: [{ op: 'truncate', size: 10_000 }] },
    { pool: DATA_POOL, name: dataObject(ino, 256), ops: [{ op: 'remove' }] }
  ]
  const d = counter.commit(ino, c.blocks, cut)
  assert.equal(d.blocks, 24)
  await store.submit(cut, { durable: false })
  d.settled()
  assert.equal(counter.countStored(ino), 24)
})
