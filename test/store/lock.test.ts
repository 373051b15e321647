// The store lock across processes, read-only opens, and directories that are
// not stores.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import path from 'path'
import { openStore, StoreError } from '../../src/store'
import { b, rmDir, str, tmpDir, waitForLine } from './helpers'

async function tryOpen (dir: string, ro = false): Promise<string> {
  const { line, exited } = await waitForLine(['try', dir, ...(ro ? ['ro'] : [])], /^(opened|error)/)
  await exited
  return line
}

test('a second process gets EBUSY naming the holder; kill -9 frees the lock', async () => {
  const dir = tmpDir('lock')
  try {
    const holder = await waitForLine(['hold', dir], /^locked$/)
    const pid = holder.child.pid as number
    try {
      const line = await tryOpen(dir)
      assert.match(line, new RegExp(`^error EBUSY store ${dir} is in use by another cudele process \\(pid ${pid}, since \\d{4}-`))
      assert.match(await tryOpen(dir, true), /^error EBUSY .*in use/, 'read-only opens are refused while a writer holds it')
      // In this process too.
      await assert.rejects(openStore(dir), (e: StoreError) => e.errno === 'EBUSY' && e.message.includes(`pid ${pid}`))
      await assert.rejects(openStore(dir, { readOnly: true }), (e: StoreError) => e.errno === 'EBUSY')
    } finally {
      holder.child.kill('SIGKILL')
      await holder.exited
    }
    // The kernel dropped the dead holder's lock: no stale lock to clean up.
    const store = await openStore(dir)
    await store.createPool('p')
    await store.submit([{ pool: 'p', name: 'x', ops: [{ op: 'writeFull', data: b('mine') }] }], { durable: true })
    assert.match(await tryOpen(dir), /^error EBUSY .*\(pid \d+, since/)
    await store.close()
    assert.equal(await tryOpen(dir), 'opened')
  } finally { rmDir(dir) }
})

test('read-only opens share the store with each other but not with a writer', async () => {
  const dir = tmpDir('lock-ro')
  try {
    const w = await openStore(dir, { create: true })
    await w.createPool('p')
    await w.submit([{ pool: 'p', name: 'x', ops: [{ op: 'writeFull', data: b('data') }] }], { durable: false })
    await w.close()

    const reader = await waitForLine(['hold-ro', dir], /^locked$/)
    try {
      assert.equal(await tryOpen(dir, true), 'opened', 'two readers at once')
      assert.match(await tryOpen(dir), /^error EBUSY .*read-only/, 'a writer is refused while a reader holds the store')
      const ro = await openStore(dir, { readOnly: true })
      assert.equal(str(ro.readSync('p', 'x', 0, 10)), 'data')
      assert.equal((await ro.usage()).objects, 1)
      await assert.rejects(ro.submit([{ pool: 'p', name: 'x', ops: [{ op: 'remove' }] }], { durable: false }), (e: StoreError) => e.errno === 'EROFS')
      await assert.rejects(ro.createPool('q'), (e: StoreError) => e.errno === 'EROFS')
      await assert.rejects(ro.sync(), (e: StoreError) => e.errno === 'EROFS')
      await ro.close()
    } finally {
      reader.child.kill('SIGKILL')
      await reader.exited
    }
    assert.equal(await tryOpen(dir), 'opened')
  } finally { rmDir(dir) }
})

test('a read-only open sees what a killed writer committed (hot WAL)', async () => {
  const dir = tmpDir('lock-hot')
  try {
    const { child, exited } = await waitForLine(['durable', dir, '20'], /^acked 19$/)
    child.kill('SIGKILL')
    await exited
    assert.ok(fs.existsSync(path.join(dir, 'store.db-wal')))
    const ro = await openStore(dir, { readOnly: true })
    assert.equal(ro.omapListSync('p', 'index', { limit: 100 }).length >= 20, true)
    await ro.close()
  } finally { rmDir(dir) }
})

test('directories that are not stores are refused clearly', async () => {
  const dir = tmpDir('notstore')
  try {
    await assert.rejects(openStore(path.join(dir, 'missing')), (e: StoreError) => e.errno === 'ENOENT' && /does not exist/.test(e.message))
    await assert.rejects(openStore(path.join(dir, 'missing'), { readOnly: true, create: true }), (e: StoreError) => e.errno === 'ENOENT')
    fs.writeFileSync(path.join(dir, 'somefile'), 'hello')
    await assert.rejects(openStore(dir, { create: true }), (e: StoreError) => e.errno === 'EINVAL' && e.message === `${dir} is not a cudele store: it has no store.db and is not empty`)
    await assert.rejects(openStore(path.join(dir, 'somefile'), { create: true }), (e: StoreError) => e.errno === 'EINVAL' && /not a directory/.test(e.message))
    const empty = path.join(dir, 'empty')
    fs.mkdirSync(empty)
    await assert.rejects(openStore(empty), (e: StoreError) => e.errno === 'EINVAL' && /has no store.db/.test(e.message))
    const other = path.join(dir, 'other')
    fs.mkdirSync(other)
    fs.writeFileSync(path.join(other, 'store.db'), 'this is not sqlite at all, just some text that is long enough to be a header....')
    await assert.rejects(openStore(other), (e: StoreError) => e.errno === 'EINVAL' && /is not a cudele store/.test(e.message))
    const foreign = path.join(dir, 'foreign')
    fs.mkdirSync(foreign)
    const Database = (await import('better-sqlite3')).default
    const db = new Database(path.join(foreign, 'store.db'))
    db.exec('CREATE TABLE t (x)')
    db.close()
    await assert.rejects(openStore(foreign), (e: StoreError) => e.errno === 'EINVAL' && /belongs to another application/.test(e.message))
    // Creating in a missing nested directory works.
    const nested = path.join(dir, 'a', 'b', 'store')
    const s = await openStore(nested, { create: true })
    await s.close()
    assert.deepEqual(fs.readdirSync(nested).sort(), ['LOCK', 'store.db'])
  } finally { rmDir(dir) }
})
