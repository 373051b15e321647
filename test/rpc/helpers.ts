// Shared bits of the RPC tests: socket paths, servers with captured logs,
// and both transports.

import fs from 'fs'
import os from 'os'
import path from 'path'
import { ChildProcess, spawn } from 'child_process'
import { connect, ConnectOptions, RpcConnection, RpcServer, ServerOptions } from '../../src/rpc'

/** A fresh directory for unix sockets; removed by cleanup(). */
export function sockDir (): { dir: string, sock: (name?: string) => string, cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-rpc-'))
  return {
    dir,
    sock: (name = 's.sock') => path.join(dir, name),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true })
  }
}

export interface Env {
  server: RpcServer
  addr: string
  logs: string[]
  client: (opts?: ConnectOptions) => Promise<RpcConnection>
  done: () => Promise<void>
}

export type Transport = 'unix' | 'tcp'
export const TRANSPORTS: Transport[] = ['unix', 'tcp']

/** A server listening on a fresh unix socket or an ephemeral loopback port; its log lines are kept in logs. */
export async function startServer (transport: Transport, opts: ServerOptions = {}): Promise<Env> {
  const logs: string[] = []
  const server = new RpcServer({ log: m => logs.push(m), ...opts })
  const d = sockDir()
  const a = await server.listen(transport === 'unix' ? `unix:${d.sock()}` : 'tcp:127.0.0.1:0')
  const addr = a.kind === 'unix' ? `unix:${a.path}` : `tcp:127.0.0.1:${a.port}`
  const clients: RpcConnection[] = []
  return {
    server,
    addr,
    logs,
    client: async (copts = {}) => {
      const c = await connect(addr, { log: m => logs.push(`client: ${m}`), ...copts })
      clients.push(c)
      return c
    },
    done: async () => {
      for (const c of clients) c.close()
      await server.close()
      d.cleanup()
    }
  }
}

/** Wait until cond() holds, polling; fails after ms. */
export async function waitFor (cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Run test/rpc/child.js with args; resolves `ready` with the first stdout line. */
export function spawnChild (args: string[]): { child: ChildProcess, ready: Promise<string>, exited: Promise<number | null>, stderr: () => string } {
  const child = spawn(process.execPath, [path.join(__dirname, 'child.js'), ...args], {
    env: { ...process.env, CUDELE_RPC_CHILD: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let err = ''
  child.stderr?.on('data', d => { err += String(d) })
  const ready = new Promise<string>((resolve, reject) => {
    let buf = ''
    child.stdout?.on('data', d => {
      buf += String(d)
      const nl = buf.indexOf('\n')
      if (nl >= 0) resolve(buf.slice(0, nl))
    })
    child.once('exit', code => reject(new Error(`child exited (${code}) before it was ready: ${err}`)))
  })
  ready.catch(() => {})
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  return { child, ready, exited, stderr: () => err }
}
