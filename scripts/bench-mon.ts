// Benchmark of the monitor: how fast a map update reaches every subscriber
// (Malacology Fig. 6, in-process for now).
//
//   node dist/scripts/bench-mon.js [--updates 1000] [--subscribers 16] [--intervals 0,1,10] [--json] [--dir DIR]
//
// For each proposal interval, a fresh store and monitor; `subscribers`
// listeners on one map; `updates` proposals made one after another, each
// awaited. Propagation latency is measured from the commit (the round's store
// batch resolved, told by MonitorOptions.onCommit) until every subscriber
// has the new epoch. Two kinds of subscriber:
//   sync      has the epoch when its listener is called;
//   deferred  takes it on its next event-loop turn (setImmediate), as a
//             component that hands the map to its own loop would.
// Beside it, the proposal latency (propose() until it resolves): the
// interval, the durable commit and the local delivery, the part Ceph pays a
// Paxos round for. Targets: propagation p90 <= 5 ms, max <= 50 ms.
// DIR defaults to a temp dir, removed afterwards.

import fs from 'fs'
import os from 'os'
import path from 'path'
import { openStore } from '../src/store'
import { openMonitor } from '../src/mon'
import { LatencySummary, measurePropagation, SubscriberRegistration } from '../src/mon/propagation'

const args = process.argv.slice(2)
function arg (name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback
}
const updates = Number(arg('updates', '1000'))
const subscriberCount = Number(arg('subscribers', '16'))
const intervals = arg('intervals', '0,1,10').split(',').map(Number)
const json = args.includes('--json')
const dirArg = args.includes('--dir') ? arg('dir', '') : undefined

const TARGET_P90_MS = 5
const TARGET_MAX_MS = 50

type Kind = 'sync' | 'deferred'

interface Row {
  kind: Kind
  intervalMs: number
  propagationMs: LatencySummary
  proposeMs: LatencySummary
}

async function runCase (base: string, kind: Kind, intervalMs: number): Promise<Row> {
  const dir = path.join(base, `${kind}-${intervalMs}`)
  const store = await openStore(dir, { create: true })
  const commitTimes = new Map<number, number>()
  const mon = await openMonitor(store, {
    proposalIntervalMs: intervalMs,
    onCommit: r => {
      const e = r.epochs.get('interfacemap')
      if (e !== undefined) commitTimes.set(e, r.committedAt)
    }
  })
  try {
    const subscribers: SubscriberRegistration[] = Array.from({ length: subscriberCount }, () => onEpoch =>
      mon.subscribe('interfacemap', 0, s => {
        if (kind === 'sync') onEpoch(s.epoch)
        else setImmediate(() => onEpoch(s.epoch))
      }))
    const result = await measurePropagation({
      updates,
      subscribers,
      // An interface update as in the paper: a class name and the version of its Lua object.
      propose: async i => (await mon.propose('interfacemap', v => ({ ...(v as object), zlog: { version: i, object: `zlog.v${i}` } }), { name: 'cli' })).epoch,
      commitTimeOf: epoch => commitTimes.get(epoch)
    })
    return { kind, intervalMs, propagationMs: result.propagationMs, proposeMs: result.proposeMs }
  } finally {
    await mon.close()
    await store.close()
  }
}

function ms (x: number): string {
  return x < 1 ? x.toFixed(3) : x.toFixed(2)
}

async function main (): Promise<void> {
  const base = dirArg ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-bench-mon-'))
  fs.mkdirSync(base, { recursive: true })
  const rows: Row[] = []
  try {
    for (const kind of ['sync', 'deferred'] as Kind[]) {
      for (const intervalMs of intervals) {
        console.error(`  ${kind} subscribers, proposalIntervalMs ${intervalMs} ...`)
        rows.push(await runCase(base, kind, intervalMs))
      }
    }
  } finally {
    if (dirArg === undefined) fs.rmSync(base, { recursive: true, force: true })
  }
  if (json) {
    console.log(JSON.stringify({ updates, subscribers: subscriberCount, rows }, null, 2))
    return
  }
  console.log(`monitor propagation: ${subscriberCount} in-process subscribers, ${updates} sequential updates, durable commits; ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores, node ${process.version}`)
  const header = ['subscribers', 'interval ms', 'prop p50', 'p90', 'p99', 'max', 'propose p50', 'p90', 'p99', 'max', 'target']
  const lines = rows.map(r => {
    const p = r.propagationMs
    const q = r.proposeMs
    const pass = p.p90 <= TARGET_P90_MS && p.max <= TARGET_MAX_MS
    return [r.kind, String(r.intervalMs), ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max), ms(q.p50), ms(q.p90), ms(q.p99), ms(q.max), pass ? 'PASS' : 'MISS']
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map(l => l[i].length)))
  const fmtLine = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ')
  console.log(fmtLine(header))
  for (const l of lines) console.log(fmtLine(l))
  console.log(`(ms; "prop" = commit until every subscriber has the epoch; target p90 <= ${TARGET_P90_MS} ms and max <= ${TARGET_MAX_MS} ms)`)
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
