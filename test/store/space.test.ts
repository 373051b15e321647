// A full device: the store on a small tmpfs. Commits that run out of space are
// retried for a while, then rejected with ENOSPC and a clear message; batches
// queued behind a rejected one are rejected too (never committed ahead of
// it); nothing acknowledged is lost; freeing space brings the store back.
// Needs root to mount; skipped elsewhere.

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

    // Phase 1: the device fills; freeing space while the commit is retried lets it through.
    onFull = () => { onFull = null; fs.unlinkSync(ballast[0]) }
    for (let k = 0; k < 200 && onFull !== null; k++) await put()
    assert.equal(onFull, null, 'the device filled up')
    assert.equal(events[0].state, 'full')
    assert.match(events[0].message, /^store .*: no space left on device \(\d+ bytes free\)/)
    assert.ok(events.some(e => e.state === 'ok'), 'the store reported space back')

    // Phase 2: fill again with several batches in flight; nothing frees space.
    let rejected: StoreError | null = null
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
    assert.equal(rejected.errno, 'ENOSPC')
    assert.match(rejected.message, /^store .*store: no space left on device \(\d+ bytes free\)/)
    assert.equal(store.health(), 'full')

    // While still full, new batches fail fast instead of waiting out the retry time.
    const t0 = Date.now()
    await assert.rejects(put(), (e: StoreError) => e.errno === 'ENOSPC')
    assert.ok(Date.now() - t0 < 1000, `failed after ${Date.now() - t0} ms`)
    // Reads keep working, and everything acknowledged is there.
    await checkAcked(store, acked, bytes)

    // Space back: the store takes writes again.
    fs.unlinkSync(ballast[1])
    await put()
    await put()
    assert.equal(store.health(), 'ok')
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
