// A real I/O error under the SQLite writer: with a file size limit on this
// process (RLIMIT_FSIZE, set with prlimit), a commit that must grow the WAL
// past it gets EFBIG from the kernel, which SQLite reports as
// SQLITE_IOERR_WRITE. The group fails with EIO, so do the batches queued
// behind it, and commits work again once the limit is lifted. The full-disk
// paths are in space.test.ts, on a small tmpfs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import path from 'path'
import { execFileSync, spawnSync } from 'child_process'
import { ObjectWrite, StoreError, StoreHealth } from '../../src/store'
import { b, freshStore, str } from './helpers'

function put (name: string, data: Buffer): ObjectWrite[] {
  return [{ pool: 'p', name, ops: [{ op: 'writeFull', data }] }]
}

const hasPrlimit = spawnSync('prlimit', ['--version'], { stdio: 'ignore' }).status === 0

/** This process's soft file size limit, as prlimit prints it ("unlimited" or bytes). */
function fileSizeLimit (): string {
  return execFileSync('prlimit', ['--pid', String(process.pid), '--fsize', '--raw', '--noheadings', '--output=SOFT'], { encoding: 'utf8' }).trim()
}

function setFileSizeLimit (soft: string): void {
  execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${soft}:`])
}

test('an I/O error fails the group and what is queued behind it with EIO; later batches commit', { skip: hasPrlimit ? false : 'needs prlimit (util-linux)' }, async () => {
  const health: StoreHealth[] = []
  const { store, dir, done } = await freshStore('fault-io', { onHealth: e => health.push(e.state) })
  const before = fileSizeLimit()
  try {
    await store.submit(put('before', b('kept')), { durable: false })
    // Room for a little more than the store's files hold now: a 1 MiB batch must pass it.
    const largest = Math.max(...fs.readdirSync(dir).map(f => fs.statSync(path.join(dir, f)).size))
    setFileSizeLimit(String(largest + 4096))
    let r: Array<PromiseSettledResult<unknown>>
    try {
      r = await Promise.allSettled(['a', 'b', 'c'].map((n, i) => store.submit(put(n, Buffer.alloc(1 << 20, i + 1)), { durable: false })))
    } finally {
      setFileSizeLimit(before)
    }
    for (const x of r) {
      assert.equal(x.status, 'rejected')
      const e = (x as PromiseRejectedResult).reason as StoreError
      assert.equal(e.errno, 'EIO')
      assert.match(e.message, /^store .*: I\/O error while committing \(disk I\/O error\); (the batch was not applied|not applied because an earlier batch failed)$/)
    }
    for (const n of ['a', 'b', 'c']) assert.equal(store.statSync('p', n), null, `${n} did not apply`)
    await store.submit(put('after', Buffer.alloc(1 << 20, 9)), { durable: true })
    assert.equal(store.statSync('p', 'after')?.size, 1 << 20)
    assert.equal(str(store.readSync('p', 'before', 0, 10)), 'kept')
    assert.deepEqual(health, ['ioerror', 'ok'])
    assert.equal(store.health(), 'ok')
  } finally {
    setFileSizeLimit(before)
    await done()
  }
})
