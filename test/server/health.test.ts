// Background work that fails is never silent: with the store on a small
// tmpfs that fills up, the failing store and trims show in `cudele status`
// (health) and in the cluster log, are retried with backoff, and recover
// once space comes back, with nothing acknowledged lost and fsck clean.
// Needs root to mount a tmpfs; skipped elsewhere.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { after, test } from 'node:test'
import { cleanupServers, mountClient, startServer } from '../helpers/server'

const canMount = process.getuid?.() === 0
let tmpfs: string | null = null

after(async () => {
  await cleanupServers()
  if (tmpfs) {
    if (spawnSync('umount', [tmpfs], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', tmpfs], { stdio: 'ignore' })
    fs.rmSync(tmpfs, { recursive: true, force: true })
  }
})

test('a full store: failing trims and commits show as health problems, are retried, and recover when space returns', { skip: canMount ? false : 'needs root to mount a small tmpfs', timeout: 120000 }, async () => {
  tmpfs = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-health-'))
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', tmpfs]).status, 0, 'mount a tmpfs')
  const srv = await startServer({ store: path.join(tmpfs, 'store') })
  const m = await mountClient(srv)
  await m.shOk('mkdir keep && for i in $(seq 1 50); do echo "file $i" > keep/f$i; done && sync keep/f50')
  assert.deepEqual((await srv.status()).health, [], 'healthy at first')

  // Fill the tmpfs from outside the store, then make the MDS trim: its batch cannot commit.
  const ballast = path.join(tmpfs, 'ballast')
  const fill = spawnSync('dd', ['if=/dev/zero', `of=${ballast}`, 'bs=1M', 'count=64'], { stdio: 'ignore' })
  assert.notEqual(fill.status, 0, 'dd ran out of space')
  const full = await m.sh('for i in $(seq 1 200); do mkdir -p more/d$i && echo x > more/d$i/f || exit 1; done; sync more')
  const st = await srv.waitStatus(s => s.health.some(h => h.check === 'mds.trim'), 30000)
  const trim = st.health.find(h => h.check === 'mds.trim')!
  assert.match(trim.message, /ENOSPC|space|full/i, JSON.stringify(st.health))
  assert.ok(trim.failures >= 1)
  assert.ok(st.log.some(e => e.who === 'mds.0' && e.message.startsWith('mds.trim: ')), st.log.map(e => e.message).join('\n'))

  // Space comes back: the retries succeed and the problems clear.
  fs.rmSync(ballast)
  const healed = await srv.waitStatus(s => s.health.length === 0, 60000)
  assert.ok(healed.log.some(e => e.message.startsWith('mds.trim: works again')), healed.log.map(e => e.message).join('\n'))
  // What was acknowledged before is there; the namespace is consistent.
  for (let i = 1; i <= 50; i++) assert.equal(fs.readFileSync(path.join(m.mnt, 'keep', `f${i}`), 'utf8'), `file ${i}\n`)
  await m.shOk('mkdir after && echo ok > after/f && cat after/f')
  void full
  await m.stop()
  assert.equal(await srv.stop(), 0)
  const fsck = await srv.fsck()
  assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr)
})
