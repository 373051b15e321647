// `cudele umount <mountpoint>`: unmount, then wait until the serving process
// has flushed and let go of its store (so a new mount of it can start at once).

import { spawnSync } from 'child_process'
import * as path from 'path'
import { findMount, isFuseMounted, processAlive, unregisterMount } from './registry'

const WAIT_MS = 60_000

export async function umountCommand (mountpoint: string, lazy: boolean): Promise<number> {
  const target = path.resolve(mountpoint)
  const rec = findMount(target)
  if (!isFuseMounted(target)) {
    if (rec && processAlive(rec.pid)) {
      // Unmounted already; the server may still be flushing.
      await waitForExit(rec.pid)
      return 0
    }
    unregisterMount(target)
    console.error(`cudele: ${target} is not mounted`)
    return 1
  }
  const args = lazy ? ['-u', '-z', target] : ['-u', target]
  let r = spawnSync('fusermount3', args, { encoding: 'utf8' })
  if (r.error || r.status !== 0) r = spawnSync('umount', lazy ? ['-l', target] : [target], { encoding: 'utf8' })
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || '').trim()
    console.error(`cudele: cannot unmount ${target}: ${why}${/busy/i.test(why) ? ' (files are open there; close them or use --lazy)' : ''}`)
    return 1
  }
  if (rec && processAlive(rec.pid)) {
    if (!await waitForExit(rec.pid)) {
      console.error(`cudele: unmounted ${target}, but its server (pid ${rec.pid}) is still running after ${WAIT_MS / 1000} s`)
      return 1
    }
  }
  unregisterMount(target)
  return 0
}

async function waitForExit (pid: number): Promise<boolean> {
  const deadline = Date.now() + WAIT_MS
  while (processAlive(pid)) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return true
}
