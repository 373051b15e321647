// Test harness for server mode: a `cudele serve` child process, client mounts
// of it (`cudele mount --connect`) and library clients in child processes,
// all torn down by cleanup() — even when a test fails.
//
//   const srv = await startServer({ args: ['--session-timeout', '1500'] })
//   const a = await mountClient(srv)            // its own mountpoint
//   await a.shOk('touch x')                     // cwd = the mountpoint
//   await srv.kill(); await srv.start()         // crash + restart on the same store and socket
//   await srv.status()                          // `cudele status --json`, parsed
//   await cleanupServers()                      // in after(): every server, mount and child started here

import type { ChildProcess } from 'child_process'
import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'
import { CLI, forceUnmount, isMounted, killChildren, node, REPO, sh, shOk, type ShResult, spawnReady, startChild, type Running } from './mount'
import type { StatusReport } from '../../src/server/admin'

/** The compiled library (what `require('cudele')` gives), for child scripts. */
export const LIBRARY = path.join(REPO, 'dist', 'src', 'index.js')

const servers = new Set<ServerProc>()
const mounts = new Set<ClientMount>()
const roots = new Set<string>()

function tempRoot (): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-srv-'))
  roots.add(root)
  return root
}

/** `cudele ARGS` in a child process. */
export function cudele (args: string, opts: { timeoutMs?: number } = {}): Promise<ShResult> {
  return sh(`"${process.execPath}" "${CLI}" ${args}`, { timeoutMs: opts.timeoutMs ?? 60000 })
}

export interface ServerOptions {
  /** Extra arguments for `cudele serve` (e.g. --session-timeout 1500). */
  args?: string[]
  /** Where the store goes (default: a new directory). */
  store?: string
}

export class ServerProc {
  child: ChildProcess | null = null
  private exitedP: Promise<number | null> | null = null
  private output: () => string = () => ''

  constructor (readonly root: string, readonly store: string, readonly sock: string, readonly args: string[]) {}

  get addr (): string { return `unix:${this.sock}` }
  get pid (): number | null { return this.child?.pid ?? null }
  /** Everything the current (or last) server process printed. */
  get log (): string { return this.output() }

  /** Start `cudele serve` on the store and socket; resolves once it is serving. */
  async start (): Promise<void> {
    if (this.child) throw new Error('the server is running already')
    const p = await spawnReady(['serve', '--store', this.store, '--listen', this.addr, ...this.args], 'cudele: serving', 'cudele serve')
    this.child = p.child
    this.exitedP = p.exited
    this.output = p.output
  }

  /** SIGKILL the server (a crash); the socket file stays behind, as after a real crash. */
  async kill (): Promise<void> {
    if (!this.child) return
    this.child.kill('SIGKILL')
    await this.exitedP
    this.child = null
  }

  /** SIGTERM: the server flushes and releases the store; returns its exit code. */
  async stop (timeoutMs = 30000): Promise<number | null> {
    if (!this.child) return null
    this.child.kill('SIGTERM')
    const t = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs)
    const code = await this.exitedP
    clearTimeout(t)
    this.child = null
    return code
  }

  /** `cudele status --json`, parsed. */
  async status (): Promise<StatusReport> {
    return JSON.parse(await shOk(`"${process.execPath}" "${CLI}" status --connect "${this.addr}" --json`)) as StatusReport
  }

  /** `cudele fsck` on the store (the server must be stopped). */
  fsck (): Promise<ShResult> {
    return cudele(`fsck --store "${this.store}"`)
  }

  /** Wait until pred(status) holds; throws with the last status after timeoutMs. */
  async waitStatus (pred: (st: StatusReport) => boolean, timeoutMs = 10000): Promise<StatusReport> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const st = await this.status()
      if (pred(st)) return st
      if (Date.now() > deadline) throw new Error(`status did not reach the expected state within ${timeoutMs} ms:\n${JSON.stringify(st, null, 2)}`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }

  async cleanup (): Promise<void> {
    if (this.child) {
      this.child.kill('SIGKILL')
      await Promise.race([this.exitedP, new Promise(resolve => setTimeout(resolve, 5000))])
      this.child = null
    }
  }
}

/** A fresh store served on a fresh unix socket. */
export async function startServer (opts: ServerOptions = {}): Promise<ServerProc> {
  const root = tempRoot()
  const srv = new ServerProc(root, opts.store ?? path.join(root, 'store'), path.join(root, 'cudele.sock'), opts.args ?? [])
  servers.add(srv)
  await srv.start()
  return srv
}

/** A client mount of a server (`cudele mount MNT --connect ADDR`), served by its own process. */
export class ClientMount {
  child: ChildProcess | null = null
  private exitedP: Promise<number | null> | null = null
  private output: () => string = () => ''

  constructor (readonly mnt: string, readonly addr: string) {}

  get pid (): number | null { return this.child?.pid ?? null }
  get log (): string { return this.output() }

  async start (): Promise<void> {
    fs.mkdirSync(this.mnt, { recursive: true })
    const p = await spawnReady(['mount', this.mnt, '--connect', this.addr], 'cudele: mounted', 'cudele mount --connect')
    this.child = p.child
    this.exitedP = p.exited
    this.output = p.output
  }

  sh (cmd: string, opts: Parameters<typeof sh>[1] = {}): Promise<ShResult> { return sh(cmd, { cwd: this.mnt, ...opts }) }
  shOk (cmd: string, opts: Parameters<typeof sh>[1] = {}): Promise<string> { return shOk(cmd, { cwd: this.mnt, ...opts }) }
  node (script: string, opts: { timeoutMs?: number } = {}): Promise<ShResult> { return node(script, { cwd: this.mnt, ...opts }) }

  /** SIGKILL the mount process (a client crash); the kernel mount goes with it (auto_unmount). */
  async kill (): Promise<void> {
    if (!this.child) return
    this.child.kill('SIGKILL')
    await this.exitedP
    this.child = null
    for (let i = 0; i < 100 && isMounted(this.mnt); i++) await new Promise(resolve => setTimeout(resolve, 50))
    forceUnmount(this.mnt)
  }

  /** Unmount cleanly (`cudele umount`); returns the mount process's exit code. */
  async stop (): Promise<number | null> {
    if (!this.child) return null
    const r = await cudele(`umount "${this.mnt}"`)
    if (r.code !== 0) throw new Error(`cudele umount failed: ${r.stderr}`)
    const code = await this.exitedP
    this.child = null
    return code
  }

  async cleanup (): Promise<void> {
    if (this.child) {
      this.child.kill('SIGKILL')
      await Promise.race([this.exitedP, new Promise(resolve => setTimeout(resolve, 5000))])
      this.child = null
    }
    forceUnmount(this.mnt)
  }
}

/** Mount a client of srv on a fresh mountpoint next to its store. */
export async function mountClient (srv: ServerProc, name = `mnt${mounts.size}`): Promise<ClientMount> {
  const m = new ClientMount(path.join(srv.root, name), srv.addr)
  mounts.add(m)
  await m.start()
  return m
}

/** The compiled helper that makes a library client ignore revokes (revokes.ts). */
const REVOKES_HELPER = path.join(REPO, 'dist', 'test', 'helpers', 'revokes.js')

/**
 * A library client in a child process: `script` is the body of an async
 * function with `lib` (the compiled library), `c` (a Connection to the server,
 * with opts) and `log(line)` (one stdout line) in scope. Returns the running
 * child (waitFor/exit); it is killed at cleanup if still running.
 * ignoreRevokes: the client never gives capabilities back (revokes.ts).
 */
export function libraryChild (srv: ServerProc, script: string, opts: { connect?: Record<string, unknown>, stdin?: boolean, ignoreRevokes?: boolean } = {}): Running {
  const prog = `
    const lib = require(${JSON.stringify(LIBRARY)})
    const log = line => process.stdout.write(line + '\\n')
    const caller = { uid: 0, gid: 0, pid: process.pid }
    ;(async () => {
      const c = await lib.connect(${JSON.stringify(srv.addr)}, ${JSON.stringify(opts.connect ?? {})})
      ${opts.ignoreRevokes === true ? `require(${JSON.stringify(REVOKES_HELPER)}).ignoreRevokes(c)` : ''}
      ${script}
    })().then(() => process.exit(0), err => { log('error ' + (err.code || '') + ' ' + err.message); process.exit(1) })`
  return startChild(process.execPath, ['-e', prog], { stdin: opts.stdin })
}

/** Kill every child, mount and server started through this module, unmount lazily, remove temp dirs. */
export async function cleanupServers (): Promise<void> {
  await killChildren()
  for (const m of mounts) await m.cleanup()
  mounts.clear()
  for (const s of servers) await s.cleanup()
  servers.clear()
  for (const r of roots) {
    // Only when nothing is mounted below it any more (a stuck mount must not make rm walk into it).
    const text = fs.readFileSync('/proc/mounts', 'utf8')
    if (text.split('\n').some(l => (l.split(' ')[1] ?? '').startsWith(r + '/'))) continue
    fs.rmSync(r, { recursive: true, force: true })
  }
  roots.clear()
}
