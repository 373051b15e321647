// Benchmark of object class calls, in process (a remote-client version comes
// with the RPC layer).
//
//   node dist/scripts/bench-classes.js [--quick] [--seconds N] [--rounds N] [--workers N] [--dir DIR]
//
// The method is examples/classes/counter.lua's incr with no input: read one
// omap key, add 1, write it back — a read-modify-write that commits through
// the store with its version guard. Callers are closed loops (each awaits its
// call before the next):
//   1 caller;
//   8 callers on one object (their calls chain in shared batches);
//   8 callers, each on its own object;
//   64 callers on 64 objects (how far batching goes).
// Each case runs --rounds times (default 3) for --seconds (default 3): the
// median and best calls/s, mean latency, and CPU µs per call summed over
// every thread of the process (less sensitive than calls/s to other load on
// a shared machine). The load average is printed with each case: on a busy
// machine read the CPU column. Target: >= 20,000 calls/s. The monitor is the
// real one (src/mon), on the same store.

import fs from 'fs'
import os from 'os'
import path from 'path'
import { createLuaPool } from '../src/lua'
import { openStore } from '../src/store'
import { ClassRuntime } from '../src/store/classes'
import { openMonitor } from '../src/mon'

const args = process.argv.slice(2)
const arg = (name: string): string | undefined => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined)
const quick = args.includes('--quick')
const seconds = Number(arg('--seconds') ?? (quick ? 0.5 : 3))
const workers = arg('--workers') !== undefined ? Number(arg('--workers')) : undefined
const rounds = Number(arg('--rounds') ?? (quick ? 1 : 3))

interface Run { callsPerSec: number, cpuUs: number, latencyUs: number }
interface Row { name: string, runs: Run[] }

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main (): Promise<void> {
  const base = arg('--dir') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-bench-classes-'))
  const store = await openStore(path.join(base, 'store'), { create: true })
  const mon = await openMonitor(store)
  const pool = createLuaPool({ workers })
  const rt = new ClassRuntime(store, mon, pool)
  const rows: Row[] = []
  try {
    await store.createPool('data')
    await pool.ready()
    const source = fs.readFileSync(path.join(__dirname, '../../examples/classes/counter.lua'), 'utf8')
    await rt.install('counter', source, { name: 'bench' })

    const once = async (callers: number, objectOf: (caller: number) => string): Promise<Run> => {
      let calls = 0
      let latencyNs = 0n
      const stopAt = Date.now() + seconds * 1000
      const cpu0 = process.cpuUsage()
      const t0 = process.hrtime.bigint()
      await Promise.all(Array.from({ length: callers }, async (_, c) => {
        const obj = objectOf(c)
        while (Date.now() < stopAt) {
          const s = process.hrtime.bigint()
          await rt.call('data', obj, 'counter.incr')
          latencyNs += process.hrtime.bigint() - s
          calls++
        }
      }))
      const elapsed = Number(process.hrtime.bigint() - t0) / 1e9
      const cpu = process.cpuUsage(cpu0)
      return { callsPerSec: calls / elapsed, cpuUs: (cpu.user + cpu.system) / calls, latencyUs: Number(latencyNs / BigInt(calls)) / 1000 }
    }

    const run = async (name: string, callers: number, objectOf: (caller: number) => string): Promise<void> => {
      // Warm up: scripts compiled in every worker, JIT and wasm tiers settled.
      await Promise.all(Array.from({ length: callers }, async (_, c) => {
        for (let i = 0; i < 200; i++) await rt.call('data', objectOf(c), 'counter.incr')
      }))
      const row: Row = { name, runs: [] }
      for (let r = 0; r < rounds; r++) row.runs.push(await once(callers, objectOf))
      rows.push(row)
      const rates = row.runs.map(x => x.callsPerSec.toFixed(0)).join(', ')
      console.error(`  ${name}: ${rates} calls/s; CPU µs/call ${row.runs.map(x => x.cpuUs.toFixed(1)).join(', ')}; load ${os.loadavg()[0].toFixed(1)}`)
    }

    console.error(`bench-classes: ${pool.size} Lua workers, ${seconds} s per case, load average ${os.loadavg().map(l => l.toFixed(1)).join(' ')}`)
    await run('1 caller', 1, () => 'one')
    await run('8 callers, one object', 8, () => 'shared')
    await run('8 callers, 8 objects', 8, c => `own${c}`)
    await run('64 callers, 64 objects', 64, c => `many${c}`)
    // Every call counted: the counters hold exactly the calls made (warm-up included).
    const total = Number((await rt.call('data', 'shared', 'counter.get')).output.toString())
    if (!Number.isInteger(total) || total <= 0) throw new Error(`counter check failed: ${total}`)

    console.log(`| case | calls/s (median of ${rounds}) | best | mean latency | CPU per call |`)
    console.log('|---|---:|---:|---:|---:|')
    for (const r of rows) {
      const rates = r.runs.map(x => x.callsPerSec)
      console.log(`| ${r.name} | ${median(rates).toFixed(0)} | ${Math.max(...rates).toFixed(0)} | ${median(r.runs.map(x => x.latencyUs)).toFixed(0)} µs | ${median(r.runs.map(x => x.cpuUs)).toFixed(1)} µs |`)
    }
    const st = pool.stats()
    console.log(`\nLua pool: ${st.calls} calls in ${st.messages} messages; store: ${store.stats().batches} batches in ${store.stats().commits} commits; load average after: ${os.loadavg().map(l => l.toFixed(1)).join(' ')}`)
  } finally {
    await rt.close()
    await pool.close()
    await mon.close()
    await store.close()
    if (arg('--dir') === undefined) fs.rmSync(base, { recursive: true, force: true })
  }
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})
