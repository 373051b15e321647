// A mounted cudele filesystem: the FUSE session over a client.

import { spawnSync } from 'child_process'
import * as fs from 'fs'
import * as path from 'path'
import type { Client } from '../client/client'
import { type AdapterOptions, DEFAULT_ADAPTER_OPTIONS, FuseAdapter } from './adapter'
import { ATTR_LENGTH, loadBinding, type Session } from './native'

/** How long an unmount waits for the last user to leave before aborting the connection. */
const ABORT_AFTER_MS = 1500
const FUSECTL = '/sys/fs/fuse/connections'

/** The minor device number of the mount at mountpoint, from /proc/self/mountinfo (no file call on the mount itself). */
function connectionOf (mountpoint: string): number | null {
  try {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const f = line.split(' ')
      const where = (f[4] ?? '').replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)))
      if (where === mountpoint) return Number(f[2].split(':')[1])
    }
  } catch {}
  return null
}

function abortConnection (minor: number | null): void {
  if (minor === null) return
  try {
    if (fs.readdirSync(FUSECTL).length === 0) spawnSync('mount', ['-t', 'fusectl', 'none', FUSECTL])
    fs.writeFileSync(path.join(FUSECTL, String(minor), 'abort'), '1')
  } catch {}
}

export interface MountConfig {
  mountpoint: string
  /** Shown as the source in /proc/mounts (e.g. cudele:/path/to/store). */
  fsname: string
  adapter?: AdapterOptions
  /** Let other users use the mount (needs root or user_allow_other). */
  allowOther?: boolean
  /** Have fusermount3 remove the mount if this process dies. */
  autoUnmount?: boolean
  /** Largest write the kernel sends in one request, bytes. */
  maxWrite?: number
  /** Extra -o options. */
  options?: string[]
  /** Give up if the kernel has not finished INIT in this time. */
  readyTimeoutMs?: number
}

export class FuseMount {
  private unmounted = false

  private constructor (readonly mountpoint: string, private readonly session: Session, readonly adapter: FuseAdapter) {}

  static async mount (client: Client, cfg: MountConfig): Promise<FuseMount> {
    const binding = loadBinding()
    const attr = new Float64Array(ATTR_LENGTH)
    const adapter = new FuseAdapter(client, attr, cfg.adapter ?? DEFAULT_ADAPTER_OPTIONS)
    const options = [
      `fsname=${cfg.fsname.replace(/[,\\]/g, '_')}`,
      'subtype=cudele',
      // The kernel checks permissions against the modes and owners we report.
      'default_permissions'
    ]
    if (cfg.allowOther) options.push('allow_other')
    if (cfg.autoUnmount) options.push('auto_unmount')
    if (cfg.options) options.push(...cfg.options)
    // The kernel leaves atime to us; the mount's options say which accesses move it.
    const given = new Set(options.flatMap(o => o.split(',')))
    client.atime = { files: !given.has('noatime'), dirs: !given.has('noatime') && !given.has('nodiratime') }
    const mountpoint = path.resolve(cfg.mountpoint)
    const session = binding.mount(mountpoint, { options, maxWrite: cfg.maxWrite ?? 1024 * 1024 }, adapter.handlers, attr)
    adapter.session = session
    client.onInvalidate = ino => session.notifyInvalInode(ino, 0, 0)
    client.onInvalidateEntry = (parent, name) => session.notifyInvalEntry(parent, name)
    const m = new FuseMount(mountpoint, session, adapter)
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`the kernel did not finish mounting ${mountpoint} within ${cfg.readyTimeoutMs ?? 10000} ms`)), cfg.readyTimeoutMs ?? 10000)
    })
    try {
      await Promise.race([adapter.ready, timeout])
    } catch (err) {
      m.unmount()
      throw err
    } finally {
      clearTimeout(timer)
    }
    m.connection = connectionOf(mountpoint)
    return m
  }

  /** Resolves when the session has ended (unmounted from here or from outside). */
  get exited (): Promise<void> {
    return this.adapter.exited
  }

  /** The FUSE connection's id (minor device number), read when mounted, for aborting a stuck connection. */
  connection: number | null = null

  unmount (): void {
    if (this.unmounted) return
    this.unmounted = true
    this.session.unmount()
    // A process that still uses the mount (a shell in it, an open file) keeps
    // the lazily unmounted connection alive and our reader waiting for it:
    // abort the connection so the session ends and the server can flush and go.
    const timer = setTimeout(() => abortConnection(this.connection), ABORT_AFTER_MS)
    timer.unref()
    this.exited.then(() => clearTimeout(timer), () => clearTimeout(timer))
  }
}
