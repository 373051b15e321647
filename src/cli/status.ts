// `cudele status --connect ADDR` and `cudele log --connect ADDR [--follow]`.

import type { LogEntry } from '../mon/types'
import { call, onNotify } from '../protocol'
import { connect } from '../rpc'

/** A time in UTC, said so (the Z): logs from machines in other time zones line up. */
function time (ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ')
}

function logLine (e: LogEntry): string {
  return `${time(e.timeMs)} ${e.level.toUpperCase().padEnd(5)} ${e.who}: ${e.message}`
}

export async function statusCommand (address: string, json: boolean): Promise<number> {
  const conn = await connect(address, { name: 'cudele-status' })
  try {
    const st = await call(conn, 'status', [20])
    if (json) {
      console.log(JSON.stringify(st, null, 2))
      return 0
    }
    console.log('ranks:')
    for (const r of st.ranks) {
      console.log(`  mds.${r.rank} ${r.state} at ${r.addr} (pid ${r.pid}, boot ${r.bootId}); cache ${r.cache.inodes} inodes, ${r.cache.dentries} dentries; journal ${r.journal.events} events in ${r.journal.objects} objects`)
    }
    console.log(`sessions: ${st.sessions.length}`)
    for (const s of st.sessions) {
      console.log(`  ${s.id} ${s.name} ${s.connected ? 'connected' : 'disconnected'} ${s.peer}; ${s.opens} open files; idle ${s.idleMs} ms; requests applied ${s.appliedTid}, safe ${s.safeTid}`)
    }
    const health = st.health ?? []
    console.log(`health: ${health.length === 0 ? 'ok' : `${health.length} problem(s)`}`)
    for (const h of health) console.log(`  ${h.state.toUpperCase()} ${h.check} since ${time(h.sinceMs)} (${h.failures} failure(s) in a row): ${h.message}`)
    console.log('maps:')
    for (const m of st.maps) console.log(`  ${m.name} epoch ${m.epoch}`)
    console.log('requests answered (calls, errors, mean and max ms):')
    for (const r of st.requests ?? []) console.log(`  ${r.method.padEnd(20)} ${String(r.calls).padStart(10)} ${String(r.errors).padStart(8)} ${r.meanMs.toFixed(3).padStart(9)} ${r.maxMs.toFixed(3).padStart(10)}`)
    console.log('recent cluster log:')
    for (const e of st.log) console.log(`  ${logLine(e)}`)
    return 0
  } finally {
    conn.close()
  }
}

export async function logCommand (address: string, limit: number, follow: boolean): Promise<number> {
  const conn = await connect(address, { name: 'cudele-log' })
  const entries = await call(conn, 'log', [limit, undefined])
  for (const e of entries) console.log(logLine(e))
  if (!follow) {
    conn.close()
    return 0
  }
  const last = entries.length > 0 ? entries[entries.length - 1].seq : 0
  onNotify(conn, 'log', ([e]) => console.log(logLine(e)))
  await call(conn, 'log.follow', [last])
  return await new Promise(resolve => {
    process.on('SIGINT', () => { conn.close(); resolve(0) })
    conn.on('close', () => resolve(0))
  })
}
