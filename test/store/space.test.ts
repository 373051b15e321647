// A full device: the store on a small tmpfs that really fills up. Commits
// that run out of space are retried for a while (later batches wait behind
// them, in order); if space comes back in time the callers only see latency,
// otherwise the batch and those queued behind it are rejected with ENOSPC
// and a clear message, never committed ahead of it; syncs sent behind a lost
// batch fail too; nothing acknowledged is lost; freeing space brings the
// store back. Needs root to mount; skipped elsewhere.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import path from 'path'
import { execFileSync, spawnSync } from 'child_process'
import { openStore, ObjectWrite, SqliteStore, StoreError, StoreHealthEvent } from '../../src/store'
import { pattern, rmDir, tmpDir } from './helpers'

const MiB = 1024 * 1024

function mountTmpfs (dir: string, size: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' }).status === 0
}

function unmount (dir: string): void {
  if (spawnSync('umount', [dir], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', dir], { stdio: 'ignore' })
}

function obj (name: string, i: number, bytes: number): ObjectWrite {
  return { pool: 'p', name, ops: [{ op: 'writeFull', data: pattern(bytes, i + 1) }] }
}

async function checkAcked (store: SqliteStore, acked: Map<string, number>, bytes: number): Promise<void> {
  for (const [name, i] of acked) {
    const got = store.readSync('p', name, 0, bytes)
    assert.ok(got !== null && Buffer.from(got).equals(pattern(bytes, i + 1)), `acknowledged ${name} is intact`)
  }
}

const canMount = process.getuid?.() === 0

test('ENOSPC: retry, reject in order with a clear message, recover when space comes back', { skip: canMount ? false : 'needs root to mount a small tmpfs' }, async (t) => {
  const mnt = tmpDir('space')
  if (!mountTmpfs(mnt, '24m')) { rmDir(mnt); t.skip('mount -t tmpfs failed'); return }
  let store: SqliteStore | null = null
  try {
    const ballast = [path.join(mnt, 'ballast1'), path.join(mnt, 'ballast2')]
    for (const f of ballast) fs.writeFileSync(f, Buffer.alloc(3 * MiB, 1))
    const events: StoreHealthEvent[] = []
    let onFull: (() => void) | null = null
    const dir = path.join(mnt, 'store')
    store = await openStore(dir, {
      create: true,
      fullRetryMs: 1500,
      checkpointWalBytes: 2 * MiB,
      onHealth: e => { events.push(e); if (e.state === 'full') onFull?.() }
    })
    await store.createPool('p')
    const bytes = 200 * 1024
    const acked = new Map<string, number>()
    let next = 0
    const put = async (): Promise<void> => {
      const i = next++
      await (store as SqliteStore).submit([obj(`o${i}`, i, bytes)], { durable: i % 3 === 0 })
      acked.set(`o${i}`, i)
    }

    // Phase 1: the device fills; freeing space while the commit is retried lets it through,
    // and a batch submitted during the retry (guarded on the retried one) commits after it.
    let follower: Promise<unknown> | null = null
    onFull = () => {
      onFull = null
      const retried = `o${next - 1}`
      follower = (store as SqliteStore).submit([{ pool: 'p', name: retried, ops: [{ op: 'assertVersion', version: 1 }, { op: 'append', data: Buffer.from('+') }] }], { durable: false })
      setTimeout(() => fs.unlinkSync(ballast[0]), 20)
    }
    for (let k = 0; k < 200 && onFull !== null; k++) await put()
    assert.equal(onFull, null, 'the device filled up')
    assert.equal(events[0].state, 'full')
    assert.match(events[0].message, /^store .*: no space left on device \(\d+ bytes free\)/)
    await follower
    const retried = `o${next - 1}`
    assert.equal(store.statSync('p', retried)?.version, 2, 'the follower committed after the retried batch')
    assert.equal(store.statSync('p', retried)?.size, bytes + 1)
    assert.deepEqual(events.map(e => e.state), ['full', 'ok'], 'the store reported space back')

    // Phase 2: fill again with several batches in flight; nothing frees space.
    let rejected: StoreError | null = null
    let fullAt = 0
    onFull = () => { onFull = null; fullAt = Date.now() }
    for (let k = 0; k < 200 && rejected === null; k++) {
      const wave = Array.from({ length: 4 }, () => put())
      const r = await Promise.allSettled(wave)
      const firstBad = r.findIndex(x => x.status === 'rejected')
      if (firstBad >= 0) {
        rejected = (r[firstBad] as PromiseRejectedResult).reason as StoreError
        assert.ok(r.slice(firstBad).every(x => x.status === 'rejected'), 'nothing after a rejected batch committed')
        for (const x of r.slice(firstBad)) assert.equal(((x as PromiseRejectedResult).reason as StoreError).errno, 'ENOSPC')
      }
    }
    assert.ok(rejected !== null, 'the device filled up again')
    assert.ok(Date.now() - fullAt >= 1200, `retried for about fullRetryMs (1500 ms) first: ${Date.now() - fullAt} ms`)
    assert.equal(rejected.errno, 'ENOSPC')
    assert.match(rejected.message, /^store .*store: no space left on device \(\d+ bytes free\); (the batch was not applied|not applied because an earlier batch failed)$/)
    assert.equal(store.health(), 'full')

    // While still full, new batches fail fast instead of waiting out the retry time. (One
    // larger than the group that just failed: a smaller one might fit in what is left.)
    const t0 = Date.now()
    const lost = store.submit([obj('toolarge', 0, 3 * MiB)], { durable: false })
    const synced = store.sync()
    await assert.rejects(lost, (e: StoreError) => e.errno === 'ENOSPC')
    assert.ok(Date.now() - t0 < 1000, `failed after ${Date.now() - t0} ms`)
    await assert.rejects(synced, (e: StoreError) => e.errno === 'ENOSPC', 'a sync sent behind a lost batch fails too')
    // One sent after the failure was known covers only what did commit.
    await store.sync()
    // Reads keep working, and everything acknowledged is there.
    await checkAcked(store, acked, bytes)

    // Space back: the store takes writes again.
    fs.unlinkSync(ballast[1])
    await put()
    await put()
    assert.equal(store.health(), 'ok')
    assert.deepEqual(events.map(e => e.state), ['full', 'ok', 'full', 'ok'])
    await checkAcked(store, acked, bytes)
    const u = await store.usage()
    assert.ok(u.bytesTotal <= 24 * MiB && u.bytesTotal > 0)
    await store.close()

    store = await openStore(dir)
    await checkAcked(store, acked, bytes)
    assert.equal((await store.usage()).objects, acked.size, 'no rejected batch applied')
    await store.close()
    store = null
  } finally {
    if (store !== null) await store.close().catch(() => {})
    unmount(mnt)
    rmDir(mnt)
  }
})

test('tmpfs mounts of this suite are gone', { skip: canMount ? false : 'needs root' }, () => {
  const mounts = execFileSync('cat', ['/proc/mounts'], { encoding: 'utf8' })
  assert.ok(!mounts.includes('cudele-store-space'), 'no leftover mount')
})
