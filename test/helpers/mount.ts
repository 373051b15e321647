// Test harness: a real cudele mount served by a child process, driven from
// other child processes, and always cleaned up — even when a test fails.
//
//   const m = await mountCudele()          // temp store + mountpoint
//   await m.sh('echo hi > f && cat f')     // runs with cwd = the mountpoint
//   await m.remount()                      // clean unmount + mount of the same store
//   await m.kill()                         // SIGKILL the server (crash)
//   await m.cleanup()                      // in after()/finally

import { type ChildProcess, spawn, spawnSync } from 'child_process'
import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'

export const REPO = path.resolve(__dirname, '..', '..', '..')
export const CLI = path.join(REPO, 'bin', 'cudele.js')

export interface ShResult {
  code: number
  stdout: string
  stderr: string
}

/** Run a shell command in a child process. */
export function sh (cmd: string, opts: { cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number, input?: string } = {}): Promise<ShResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', cmd], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`command timed out after ${opts.timeoutMs ?? 120000} ms: ${cmd}\n${stderr}`))
    }, opts.timeoutMs ?? 120000)
    child.on('error', reject)
    child.on('close', code => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
    // A child that exits without reading its input must not fail the test with EPIPE.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

/** Like sh, but throws with the output when the command fails. */
export async function shOk (cmd: string, opts: Parameters<typeof sh>[1] = {}): Promise<string> {
  const r = await sh(cmd, opts)
  if (r.code !== 0) throw new Error(`command failed (${r.code}): ${cmd}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r.stdout
}

/** Run a Node script in a child process (for exact errno checks through the mount). */
export async function node (script: string, opts: { cwd?: string, timeoutMs?: number } = {}): Promise<ShResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node script timed out: ${script.slice(0, 200)}\n${stderr}`))
    }, opts.timeoutMs ?? 120000)
    child.on('error', reject)
    child.on('close', code => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
  })
}

/** A long-running child process (a workload, a lister) that a test waits on or stops. */
export interface Running {
  child: ChildProcess
  stdout: () => string
  stderr: () => string
  /** Resolves with the first whole stdout line matching re (rejects if the child exits first or on timeout). */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<string>
  /** Resolves with the exit code; SIGKILLs the child first if it has not exited within timeoutMs. */
  exit: (timeoutMs?: number) => Promise<number | null>
}

const running = new Set<ChildProcess>()

/** Start a child without waiting for it (stdin: a pipe the test writes to). Children still running at cleanup() are killed. */
export function startChild (cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, stdin?: boolean } = {}): Running {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: [opts.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
  running.add(child)
  let out = ''
  let err = ''
  let closed = false
  const waiters: Array<() => void> = []
  const poke = (): void => { for (const w of waiters.splice(0)) w() }
  child.stdout?.on('data', d => { out += d; poke() })
  child.stderr?.on('data', d => { err += d })
  const exited = new Promise<number | null>(resolve => child.on('close', code => {
    closed = true
    running.delete(child)
    poke()
    resolve(code)
  }))
  child.on('error', () => {})
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: async (re, timeoutMs = 60000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const line = out.split('\n').slice(0, -1).find(l => re.test(l))
        if (line !== undefined) return line
        if (closed) throw new Error(`${cmd} exited before printing ${re}:\n${out}\n${err}`)
        const left = deadline - Date.now()
        if (left <= 0) throw new Error(`${cmd} did not print ${re} within ${timeoutMs} ms:\n${out}\n${err}`)
        await new Promise<void>(resolve => {
          const t = setTimeout(resolve, left)
          waiters.push(() => { clearTimeout(t); resolve() })
        })
      }
    },
    exit: async (timeoutMs = 30000) => {
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      try {
        return await exited
      } finally {
        clearTimeout(t)
      }
    }
  }
}

/** SIGKILL every child startChild started that is still running. */
export async function killChildren (): Promise<void> {
  const all = [...running]
  for (const c of all) c.kill('SIGKILL')
  await Promise.all(all.map(c => new Promise(resolve => {
    if (c.exitCode !== null || c.signalCode !== null) resolve(null)
    else c.once('close', resolve)
  })))
}

/** Compiled test programs (test/fs/progs/*.ts → dist/test/fs/progs/*.js). */
export const PROGS = path.join(REPO, 'dist', 'test', 'fs', 'progs')

/** Is something mounted at mnt (per /proc/mounts)? */
export function isMounted (mnt: string): boolean {
  return mounted(mnt)
}

function mounted (mnt: string): boolean {
  const text = fs.readFileSync('/proc/mounts', 'utf8')
  return text.split('\n').some(l => l.split(' ')[1] === mnt)
}

/** Unmount whatever is at mnt, lazily, and abort its FUSE connection if it is stuck. */
export function forceUnmount (mnt: string): void {
  if (!mounted(mnt)) return
  let dev: number | null = null
  try { dev = fs.statSync(mnt).dev } catch {}
  spawnSync('umount', ['-l', mnt])
  if (dev !== null) abortConnection(dev)
}

function abortConnection (dev: number): void {
  const dir = '/sys/fs/fuse/connections'
  try {
    if (fs.readdirSync(dir).length === 0) spawnSync('mount', ['-t', 'fusectl', 'none', dir])
    // The connection directory is named after the device's minor number.
    const minor = dev & 0xff | ((dev >> 12) & 0xfff00)
    const abort = path.join(dir, String(minor), 'abort')
    if (fs.existsSync(abort)) fs.writeFileSync(abort, '1')
  } catch {}
}

/** A process started with a ready line to wait for, its output kept for error messages. */
export async function spawnReady (argv: string[], ready: string, what: string, started?: (p: Spawned) => void): Promise<Spawned> {
  const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  const p: Spawned = { child, output: () => out, exited }
  // The caller holds the child from here on, so it can kill it if it never gets ready.
  started?.(p)
  child.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not become ready in 20 s:\n${out}`)), 20000)
    const onData = (d: Buffer): void => {
      out += d.toString()
      if (out.includes(ready)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.on('exit', code => {
      clearTimeout(timer)
      reject(new Error(`${what} exited with code ${code} before it was ready:\n${out}`))
    })
  })
  return p
}

export interface Spawned {
  child: ChildProcess
  /** Everything it printed so far (stdout and stderr). */
  output: () => string
  exited: Promise<number | null>
}

export interface MountOptions {
  /** Reuse this store directory instead of a fresh one. */
  store?: string
  /** Extra arguments for `cudele mount`. */
  args?: string[]
}

export class CudeleMount {
  server: ChildProcess | null = null
  private output: () => string = () => ''
  private exitPromise: Promise<number | null> | null = null

  constructor (readonly root: string, readonly mnt: string, readonly store: string, private readonly args: string[]) {}

  /** What the server printed since it was last started. */
  get log (): string {
    return this.output()
  }

  /** Start the server and wait for its ready line. */
  async start (): Promise<void> {
    fs.mkdirSync(this.mnt, { recursive: true })
    await spawnReady(['mount', this.mnt, '--store', this.store, ...this.args], 'cudele: mounted', 'mount', p => {
      this.server = p.child
      this.output = p.output
      this.exitPromise = p.exited
    })
  }

  /** Run a shell command in the mountpoint. */
  sh (cmd: string, opts: Parameters<typeof sh>[1] = {}): Promise<ShResult> {
    return sh(cmd, { cwd: this.mnt, ...opts })
  }

  shOk (cmd: string, opts: Parameters<typeof sh>[1] = {}): Promise<string> {
    return shOk(cmd, { cwd: this.mnt, ...opts })
  }

  node (script: string, opts: { timeoutMs?: number } = {}): Promise<ShResult> {
    return node(script, { cwd: this.mnt, ...opts })
  }

  /** Unmount cleanly (like `cudele umount`) and wait for the server to exit; returns its exit code. */
  async stop (): Promise<number | null> {
    if (!this.server) return null
    const r = await sh(`"${process.execPath}" "${CLI}" umount "${this.mnt}"`)
    if (r.code !== 0) throw new Error(`cudele umount failed: ${r.stderr}`)
    const code = await this.exitPromise
    this.server = null
    return code
  }

  /** Send the server a signal (SIGINT, SIGTERM) and wait for it to exit; returns its exit code. */
  async signal (sig: NodeJS.Signals): Promise<number | null> {
    if (!this.server) return null
    this.server.kill(sig)
    return await this.exited()
  }

  /** Wait for the server to exit by itself (unmounted from outside); returns its exit code. */
  async exited (timeoutMs = 60000): Promise<number | null> {
    if (!this.server) return null
    let timer: NodeJS.Timeout | undefined
    const code = await Promise.race([
      this.exitPromise,
      new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`the server did not exit within ${timeoutMs} ms:\n${this.log}`)), timeoutMs) })
    ]).finally(() => clearTimeout(timer))
    this.server = null
    return code
  }

  /** The server's pid (null when it is not running). */
  get pid (): number | null {
    return this.server?.pid ?? null
  }

  /** SIGKILL the server (a crash); the kernel mount goes away with it (auto_unmount). */
  async kill (): Promise<void> {
    if (!this.server) return
    this.server.kill('SIGKILL')
    await this.exitPromise
    this.server = null
    for (let i = 0; i < 100 && mounted(this.mnt); i++) await new Promise(resolve => setTimeout(resolve, 50))
    forceUnmount(this.mnt)
  }

  async remount (): Promise<void> {
    await this.stop()
    await this.start()
  }

  /** `cudele fsck` on the store (the server must be stopped). */
  fsck (repair = false): Promise<ShResult> {
    return sh(`"${process.execPath}" "${CLI}" fsck --store "${this.store}"${repair ? ' --repair' : ''}`)
  }

  /** Tear everything down; safe to call twice and after failures. */
  async cleanup (): Promise<void> {
    await killChildren()
    if (this.server) {
      this.server.kill('SIGKILL')
      await Promise.race([this.exitPromise, new Promise(resolve => setTimeout(resolve, 5000))])
      this.server = null
    }
    forceUnmount(this.mnt)
    fs.rmSync(this.root, { recursive: true, force: true })
  }
}

/** A fresh store and mountpoint in a temp dir, mounted. */
export async function mountCudele (opts: MountOptions = {}): Promise<CudeleMount> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-test-'))
  const m = new CudeleMount(root, path.join(root, 'mnt'), opts.store ?? path.join(root, 'store'), opts.args ?? [])
  try {
    await m.start()
  } catch (err) {
    await m.cleanup()
    throw err
  }
  return m
}

/** A tmpfs of the given size for reference runs; returns its path and an unmount function. */
export function mountTmpfs (sizeMiB = 512): { dir: string, cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-tmpfs-'))
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir])
  if (r.status !== 0) throw new Error(`cannot mount tmpfs: ${r.stderr}`)
  return {
    dir,
    cleanup: () => {
      spawnSync('umount', ['-l', dir])
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}
