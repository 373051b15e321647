// The filesystems a benchmark compares: cudele (embedded, on a fresh store,
// or a client of a `cudele serve` started here), the two in-memory reference
// filesystems of scripts/ref/ and tmpfs. Every mount and server made here is
// tracked until it is taken down again, so that a failure or a signal never
// leaves a mount or a server behind.

import { type ChildProcess, spawn, spawnSync } from 'child_process'
import * as fs from 'fs'
import * as path from 'path'
import { CLI, CLI_NODE_ARGS, REPO, log, run, sleep } from './util'

export type FsKind = 'cudele' | 'fuse-native' | 'fuse-native-big' | 'lowlevel' | 'tmpfs'

export const FS_KINDS: FsKind[] = ['cudele', 'fuse-native', 'fuse-native-big', 'lowlevel', 'tmpfs']

export const FS_DESCRIPTIONS: Record<FsKind, string> = {
  cudele: 'cudele, embedded, default options, fresh store on the work directory\'s disk',
  'fuse-native': 'scripts/ref/memfs-fuse-native.js (fuse-native 2.2.6, libfuse 2, 4 KiB writes)',
  'fuse-native-big': 'scripts/ref/memfs-fuse-native.js --big-writes (big_writes,max_write=131072)',
  lowlevel: 'scripts/ref/memfs-lowlevel.js (cudele\'s libfuse 3 lowlevel binding, 1 MiB writes)',
  tmpfs: 'the kernel\'s tmpfs (no FUSE)'
}

export interface Mounted {
  kind: FsKind
  mnt: string
  /** The serving process (null for tmpfs). */
  pid: number | null
  /** cudele's store directory. */
  store?: string
  /** Output of the server so far. */
  log: () => string
  /** Unmount cleanly and wait for the server to exit. */
  stop: () => Promise<void>
}

export interface MountOptions {
  /** cudele: the store directory (a fresh one under the mountpoint's parent if not given). */
  store?: string
  /** cudele: mount as a client of this `cudele serve` address instead of embedded. */
  connect?: string
  /** cudele: extra arguments for `cudele mount`. */
  args?: string[]
  /** cudele: node options for the server (for instance --cpu-prof), given on its command line. */
  nodeOptions?: string
  /** cudele: append the server's output to this file. */
  logFile?: string
  /** cudele: more environment for the server (e.g. XDG_STATE_HOME, where client journals go). */
  env?: NodeJS.ProcessEnv
  /** tmpfs: size in MiB. */
  sizeMiB?: number
}

const READY_MS = 60_000
const STOP_MS = 120_000

const active = new Set<{ mnt: string, child: ChildProcess | null }>()

function isMounted (mnt: string): boolean {
  const text = fs.readFileSync('/proc/mounts', 'utf8')
  return text.split('\n').some(l => l.split(' ')[1] === mnt)
}

/** Unmount whatever is at mnt lazily, and abort its FUSE connection if it is one. */
export function forceUnmount (mnt: string): void {
  if (!isMounted(mnt)) return
  let dev: number | null = null
  try { dev = fs.statSync(mnt).dev } catch {}
  spawnSync('umount', ['-l', mnt])
  if (dev !== null) abortConnection(dev)
}

function abortConnection (dev: number): void {
  const dir = '/sys/fs/fuse/connections'
  try {
    if (fs.readdirSync(dir).length === 0) spawnSync('mount', ['-t', 'fusectl', 'none', dir])
    // The connection's directory is named after the device's minor number.
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00)
    const abort = path.join(dir, String(minor), 'abort')
    if (fs.existsSync(abort)) fs.writeFileSync(abort, '1')
  } catch {}
}

/**
 * Take down every mount this process still has (for failures and signals):
 * SIGKILL the servers, lazy unmount, abort the FUSE connections. Synchronous.
 */
export function emergencyCleanup (): void {
  for (const m of active) {
    if (m.child && m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL')
    if (m.mnt !== '') forceUnmount(m.mnt)
  }
  active.clear()
}

function waitExit (child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once('exit', () => { clearTimeout(timer); resolve(true) })
  })
}

/** Start a server and wait until its output matches `ready`. */
function startServer (cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, what: string, logFile?: string): Promise<{ child: ChildProcess, output: () => string, match: RegExpExecArray }> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  if (logFile) {
    fs.mkdirSync(path.dirname(logFile), { recursive: true })
    const out = fs.createWriteStream(logFile, { flags: 'a' })
    child.stdout?.pipe(out)
    child.stderr?.pipe(out)
  }
  let output = ''
  return new Promise((resolve, reject) => {
    let done = false
    const timer = setTimeout(() => {
      if (done) return
      done = true
      child.kill('SIGKILL')
      reject(new Error(`${what} did not get ready in ${READY_MS / 1000} s:\n${output}`))
    }, READY_MS)
    const onData = (d: Buffer): void => {
      output += d.toString()
      if (output.length > 1 << 20) output = output.slice(-(1 << 19))
      const m = ready.exec(output)
      if (m && !done) {
        done = true
        clearTimeout(timer)
        resolve({ child, output: () => output, match: m })
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.on('error', err => {
      if (done) return
      done = true
      clearTimeout(timer)
      reject(err)
    })
    child.on('exit', code => {
      if (done) return
      done = true
      clearTimeout(timer)
      reject(new Error(`${what} exited with code ${code} before it was ready:\n${output}`))
    })
  })
}

/** Mount a filesystem of the given kind on mnt (created if missing). */
export async function mountFs (kind: FsKind, mnt: string, opts: MountOptions = {}): Promise<Mounted> {
  fs.mkdirSync(mnt, { recursive: true })
  if (isMounted(mnt)) throw new Error(`${mnt} is already mounted`)
  if (kind === 'tmpfs') return mountTmpfs(mnt, opts.sizeMiB ?? 4096)
  if (kind === 'cudele') return await mountCudele(mnt, opts)
  return await mountRef(kind, mnt)
}

function mountTmpfs (mnt: string, sizeMiB: number): Mounted {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', mnt], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`cannot mount tmpfs on ${mnt}: ${r.stderr}`)
  const rec = { mnt, child: null }
  active.add(rec)
  return {
    kind: 'tmpfs',
    mnt,
    pid: null,
    log: () => '',
    async stop () {
      const u = spawnSync('umount', [mnt], { encoding: 'utf8' })
      if (u.status !== 0) forceUnmount(mnt)
      active.delete(rec)
    }
  }
}

async function mountCudele (mnt: string, opts: MountOptions): Promise<Mounted> {
  const store = opts.connect === undefined ? opts.store ?? path.join(path.dirname(mnt), `store-${path.basename(mnt)}`) : undefined
  const source = store !== undefined ? ['--store', store] : ['--connect', opts.connect as string]
  const nodeArgs = (opts.nodeOptions ?? '').split(/\s+/).filter(a => a !== '')
  const { child, output, match } = await startServer(process.execPath, [...CLI_NODE_ARGS, ...nodeArgs, CLI, 'mount', mnt, ...source, ...(opts.args ?? [])],
    { ...process.env, ...opts.env }, /cudele: mounted .*\((?:embedded|client), pid (\d+)\)/, 'cudele mount', opts.logFile)
  const rec = { mnt, child }
  active.add(rec)
  return {
    kind: 'cudele',
    mnt,
    pid: Number(match[1]),
    store,
    log: output,
    async stop () {
      const r = await run(process.execPath, [...CLI_NODE_ARGS, CLI, 'umount', mnt], { timeoutMs: STOP_MS })
      const exited = await waitExit(child, r.code === 0 ? STOP_MS : 2000)
      if (r.code !== 0 || !exited || child.exitCode !== 0) {
        log(`cudele did not unmount cleanly (umount: ${r.code} ${r.stderr.trim()}; server exit ${child.exitCode ?? child.signalCode}); forcing\n${output().slice(-2000)}`)
        if (!exited) child.kill('SIGKILL')
        forceUnmount(mnt)
        active.delete(rec)
        throw new Error(`cudele at ${mnt} did not unmount cleanly`)
      }
      active.delete(rec)
    }
  }
}

async function mountRef (kind: FsKind, mnt: string): Promise<Mounted> {
  const script = kind === 'lowlevel' ? 'memfs-lowlevel.js' : 'memfs-fuse-native.js'
  const args = [path.join(REPO, 'scripts', 'ref', script), mnt]
  if (kind === 'fuse-native-big') args.push('--big-writes')
  const { child, output } = await startServer(process.execPath, args, process.env, /^ready$/m, kind)
  const rec = { mnt, child }
  active.add(rec)
  return {
    kind,
    mnt,
    pid: child.pid ?? null,
    log: output,
    async stop () {
      // The references unmount themselves on SIGTERM (fuse-native's server does
      // not exit when unmounted from outside).
      child.kill('SIGTERM')
      if (!await waitExit(child, 10_000)) {
        log(`${kind} did not exit on SIGTERM; killing it`)
        child.kill('SIGKILL')
        await waitExit(child, 5000)
      }
      for (let i = 0; i < 40 && isMounted(mnt); i++) await sleep(50)
      forceUnmount(mnt)
      active.delete(rec)
    }
  }
}

export interface Served {
  /** The address clients connect to (unix:PATH). */
  address: string
  pid: number
  store: string
  log: () => string
  /** Stop the server (SIGTERM: it flushes and releases the store) and wait for it. */
  stop: () => Promise<void>
}

/**
 * Start `cudele serve` on a store, listening on a unix socket; tracked like a
 * mount, so that a failure or a signal never leaves it running.
 */
export async function serveCudele (store: string, socket: string, opts: { nodeOptions?: string, logFile?: string, args?: string[] } = {}): Promise<Served> {
  const nodeArgs = (opts.nodeOptions ?? '').split(/\s+/).filter(a => a !== '')
  const address = `unix:${socket}`
  const { child, output, match } = await startServer(process.execPath, [...CLI_NODE_ARGS, ...nodeArgs, CLI, 'serve', '--store', store, '--listen', address, ...(opts.args ?? [])],
    process.env, /cudele: serving .* \(pid (\d+)\)/, 'cudele serve', opts.logFile)
  const rec = { mnt: '', child }
  active.add(rec)
  return {
    address,
    pid: Number(match[1]),
    store,
    log: output,
    async stop () {
      child.kill('SIGTERM')
      if (!await waitExit(child, STOP_MS)) {
        log(`cudele serve did not stop within ${STOP_MS / 1000} s; killing it\n${output().slice(-2000)}`)
        child.kill('SIGKILL')
        await waitExit(child, 5000)
      }
      active.delete(rec)
    }
  }
}

/** Mount, run fn, and always unmount (also when fn throws). */
export async function withMount<T> (kind: FsKind, mnt: string, opts: MountOptions, fn: (m: Mounted) => Promise<T>): Promise<T> {
  const m = await mountFs(kind, mnt, opts)
  let ok = false
  try {
    const r = await fn(m)
    ok = true
    return r
  } finally {
    try {
      await m.stop()
    } catch (err) {
      // Do not hide fn's own error behind a failed unmount.
      if (ok) throw err
      log(`unmount after a failure: ${(err as Error).message}`)
    }
  }
}
