// The basics through a real mount: create, read back, survive a remount, fsck clean.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type CudeleMount, mountCudele } from '../helpers/mount'

let m: CudeleMount

before(async () => { m = await mountCudele() })
after(async () => { await m?.cleanup() })

test('a file written through the mount reads back, and survives a remount', async () => {
  await m.shOk('mkdir -p d && printf "hello cudele" > d/f && dd if=/dev/urandom of=d/big bs=1M count=9 status=none')
  const sum = await m.shOk('md5sum d/big')
  assert.equal(await m.shOk('cat d/f'), 'hello cudele')
  await m.remount()
  assert.equal(await m.shOk('cat d/f'), 'hello cudele')
  assert.equal(await m.shOk('md5sum d/big'), sum)
})

test('fsck is clean after a clean unmount', async () => {
  await m.stop()
  const r = await m.fsck()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  await m.start()
})
