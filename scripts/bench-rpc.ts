// Benchmark of the RPC layer on its own.
//
//   node dist/scripts/bench-rpc.js [--quick] [--seconds S] [--json]
//
// The server runs in this process; every client is a separate child process
// (one connection each), as mounts will be.
//
// (a) round trips per second, over a unix socket and TCP loopback, with 1, 4
//     and 16 clients, each with 1 and with 32 calls in flight, for
//       noop    a trivial method: no arguments, returns 0
//       create  a create-shaped call: (parent ino, name, mode, caller) in, an
//               attribute record out, the size of what mknod sends and returns
// (b) MB/s moving 1 MiB buffers, one client, 1 and 4 in flight: client to
//     server (the argument) and server to client (the reply).
//
// The lead's target for the whole system is 30,000 creates/s from 16 clients
// over a unix socket; the create row with 16 clients says how much of that
// budget the RPC layer leaves.
//
// Each row also gives the CPU time per call of the server process and of the
// clients: on a shared or small machine, where wall-clock rates swing with
// other load, those say what the layer costs.
//
// --quick runs each case for 0.3 s (a smoke run); --seconds sets the time per
// case (default 2). --json prints the rows as JSON on stdout.

import { ChildProcess, fork } from 'child_process'
import fs from 'fs'
import os from 'os'
import path from 'path'
import { connect, RpcServer } from '../src/rpc'

const MiB = 1024 * 1024
const TARGET_CREATES = 30_000

interface RunMsg { type: 'run', method: string, args: unknown[], depth: number, ms: number }
interface DoneMsg { type: 'done', count: number, seconds: number, bytes: number, cpuUs: number }

// ---- child ---------------------------------------------------------------

async function child (addr: string): Promise<void> {
  const conn = await connect(addr, { name: 'bench-rpc' })
  const big = Buffer.alloc(MiB, 0x42)
  conn.on('close', () => process.exit(0))
  process.on('message', (m: RunMsg | { type: 'exit' }) => {
    if (m.type === 'exit') {
      conn.close()
      process.exit(0)
    }
    const args = m.method === 'put' ? [big] : m.args
    let count = 0
    let bytes = 0
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const deadline = t0 + m.ms
    const lane = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const r = await conn.call(m.method, args)
        count++
        if (m.method === 'get') bytes += (r as Buffer).length
        else if (m.method === 'put') bytes += big.length
      }
    }
    Promise.all(Array.from({ length: m.depth }, lane)).then(() => {
      const cpu = process.cpuUsage(cpu0)
      const done: DoneMsg = { type: 'done', count, seconds: (performance.now() - t0) / 1000, bytes, cpuUs: cpu.user + cpu.system }
      process.send?.(done)
    }, err => {
      console.error(err)
      process.exit(2)
    })
  })
  process.send?.({ type: 'ready' })
}

// ---- parent --------------------------------------------------------------

interface Row {
  transport: string
  method: string
  clients: number
  inFlight: number
  rate: number
  unit: string
  /** CPU time per call, in µs: of the server process, and of all clients together. */
  serverCpuUs: number
  clientCpuUs: number
}

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const json = args.includes('--json')
const secondsArg = args.indexOf('--seconds')
const caseMs = secondsArg >= 0 ? Number(args[secondsArg + 1]) * 1000 : quick ? 300 : 2000
const rows: Row[] = []

function say (msg: string): void {
  if (json) console.error(msg)
  else console.log(msg)
}

class Children {
  private readonly procs: ChildProcess[] = []
  private readonly waiting = new Map<ChildProcess, (m: DoneMsg) => void>()

  static async spawn (n: number, addr: string): Promise<Children> {
    const c = new Children()
    await Promise.all(Array.from({ length: n }, async () => {
      const p = fork(__filename, ['--child', addr], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      c.procs.push(p)
      await new Promise<void>((resolve, reject) => {
        p.once('exit', code => reject(new Error(`a client exited (${code}) before it was ready`)))
        p.on('message', (m: { type: string }) => {
          if (m.type === 'ready') resolve()
          else if (m.type === 'done') c.waiting.get(p)?.(m as DoneMsg)
        })
      })
    }))
    return c
  }

  /** Every child runs the case at once; the rate is the sum of each child's own rate. */
  async run (method: string, callArgs: unknown[], depth: number, ms: number): Promise<{ rate: number, bytesRate: number, serverCpuUs: number, clientCpuUs: number }> {
    const cpu0 = process.cpuUsage()
    const results = await Promise.all(this.procs.map(p => new Promise<DoneMsg>(resolve => {
      this.waiting.set(p, resolve)
      const m: RunMsg = { type: 'run', method, args: callArgs, depth, ms }
      p.send(m)
    })))
    const cpu = process.cpuUsage(cpu0)
    let rate = 0
    let bytesRate = 0
    let calls = 0
    let clientCpu = 0
    for (const r of results) {
      rate += r.count / r.seconds
      bytesRate += r.bytes / r.seconds
      calls += r.count
      clientCpu += r.cpuUs
    }
    return { rate, bytesRate, serverCpuUs: (cpu.user + cpu.system) / calls, clientCpuUs: clientCpu / calls }
  }

  async stop (): Promise<void> {
    await Promise.all(this.procs.map(p => new Promise<void>(resolve => {
      if (p.exitCode !== null) { resolve(); return }
      p.once('exit', () => resolve())
      p.send({ type: 'exit' })
      setTimeout(() => p.kill('SIGKILL'), 5000).unref()
    })))
  }
}

function startServer (): RpcServer {
  const server = new RpcServer()
  const now = { s: 1_700_000_000, ns: 123_456_789 }
  let ino = 1000
  server.handle('noop', () => 0)
  server.handle('create', ([parent, name, mode, caller]) => {
    if (typeof name !== 'string' || typeof parent !== 'number') throw new Error('bad create')
    const c = caller as { uid: number, gid: number }
    return { ino: ++ino, mode, nlink: 1, uid: c.uid, gid: c.gid, rdev: 0, size: 0, atime: now, mtime: now, ctime: now }
  })
  const big = Buffer.alloc(MiB, 0x24)
  server.handle('get', () => big)
  server.handle('put', ([b]) => (b as Buffer).length)
  return server
}

function fmt (n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)
}

async function main (): Promise<void> {
  say(`RPC benchmark: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}, ${caseMs} ms per case`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-bench-rpc-'))
  const createArgs = [1, 'file-000001.dat', 0o100644, { uid: 1000, gid: 1000, pid: 4242 }]
  try {
    for (const transport of ['unix', 'tcp']) {
      const server = startServer()
      const a = await server.listen(transport === 'unix' ? `unix:${path.join(dir, 'bench.sock')}` : 'tcp:127.0.0.1:0')
      const addr = a.kind === 'unix' ? `unix:${a.path}` : `tcp:127.0.0.1:${a.port}`
      try {
        for (const clients of [1, 4, 16]) {
          const kids = await Children.spawn(clients, addr)
          try {
            await kids.run('noop', [], 8, Math.min(300, caseMs)) // warm up both sides
            for (const method of ['noop', 'create']) {
              for (const depth of [1, 32]) {
                const { rate, serverCpuUs, clientCpuUs } = await kids.run(method, method === 'create' ? createArgs : [], depth, caseMs)
                rows.push({ transport, method, clients, inFlight: depth, rate, unit: 'calls/s', serverCpuUs, clientCpuUs })
                say(`  ${transport.padEnd(4)} ${method.padEnd(6)} ${String(clients).padStart(2)} client(s) × ${String(depth).padStart(2)} in flight: ${fmt(rate).padStart(9)} calls/s` +
                  `   CPU per call: server ${serverCpuUs.toFixed(2)} µs, client ${clientCpuUs.toFixed(2)} µs`)
              }
            }
            if (clients === 1) {
              for (const [method, what] of [['put', 'client → server'], ['get', 'server → client']]) {
                for (const depth of [1, 4]) {
                  const { bytesRate, serverCpuUs, clientCpuUs } = await kids.run(method, [], depth, caseMs)
                  const rate = bytesRate / 1e6
                  rows.push({ transport, method: `${method} 1 MiB`, clients, inFlight: depth, rate, unit: 'MB/s', serverCpuUs, clientCpuUs })
                  say(`  ${transport.padEnd(4)} 1 MiB ${what}, ${depth} in flight: ${fmt(rate).padStart(7)} MB/s`)
                }
              }
            }
          } finally {
            await kids.stop()
          }
        }
      } finally {
        await server.close()
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const best = rows.find(r => r.transport === 'unix' && r.method === 'create' && r.clients === 16 && r.inFlight === 32)
  if (best !== undefined) {
    say(`create-shaped calls, 16 clients × 32 in flight over a unix socket: ${fmt(best.rate)}/s, ${(best.rate / TARGET_CREATES).toFixed(1)}× the ${fmt(TARGET_CREATES)} creates/s target of the whole system;`)
    say(`  the server spends ${best.serverCpuUs.toFixed(2)} µs of CPU per call in the RPC layer: ${fmt(TARGET_CREATES * best.serverCpuUs / 1e4)}% of one core at the target rate`)
  }
  if (json) console.log(JSON.stringify({ caseMs, cpus: os.cpus().length, node: process.version, rows }, null, 2))
}

if (process.argv[2] === '--child') {
  child(process.argv[3]).catch(err => {
    console.error(err)
    process.exit(2)
  })
} else {
  main().catch(err => {
    console.error(err)
    process.exit(1)
  })
}
