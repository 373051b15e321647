// Which process serves which mountpoint, so `cudele umount` can wait for the
// serving process to flush and let go of its store.

import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'

export interface MountRecord {
  pid: number
  mountpoint: string
  source: string
  since: string
}

function registryDir (): string {
  const candidates = ['/run/cudele', path.join(os.tmpdir(), `cudele-${process.getuid?.() ?? 0}`)]
  for (const dir of candidates) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
      fs.accessSync(dir, fs.constants.W_OK)
      return dir
    } catch {}
  }
  return os.tmpdir()
}

function recordPath (mountpoint: string): string {
  return path.join(registryDir(), Buffer.from(path.resolve(mountpoint)).toString('base64url') + '.json')
}

export function registerMount (rec: MountRecord): void {
  fs.writeFileSync(recordPath(rec.mountpoint), JSON.stringify(rec) + '\n')
}

export function unregisterMount (mountpoint: string): void {
  try { fs.unlinkSync(recordPath(mountpoint)) } catch {}
}

export function findMount (mountpoint: string): MountRecord | null {
  try {
    return JSON.parse(fs.readFileSync(recordPath(mountpoint), 'utf8')) as MountRecord
  } catch {
    return null
  }
}

/** Is pid running? A zombie (exited, not yet reaped by its parent) counts as gone. */
export function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** Is path a mountpoint of a cudele (FUSE) filesystem right now? */
export function isFuseMounted (mountpoint: string): boolean {
  const target = path.resolve(mountpoint)
  let text = ''
  try { text = fs.readFileSync('/proc/mounts', 'utf8') } catch { return false }
  for (const line of text.split('\n')) {
    const f = line.split(' ')
    if (f.length < 3) continue
    const where = f[1].replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (where === target && f[2].startsWith('fuse')) return true
  }
  return false
}
