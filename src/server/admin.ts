// Administrative RPC methods: status, the cluster log, monitor maps.
//
// These need no session: `cudele status` and `cudele log` connect, ask, and go.

import { fsError } from '../common/errors'
import type { HealthCheck } from '../common/health'
import type { MdsStats } from '../mds'
import type { JsonValue, MapState } from '../mon/types'
import type { RpcServer } from '../rpc'
import type { CudeleServer } from './server'

export interface StatusReport {
  ranks: Array<{ rank: number, state: string, addr: string, pid: number, bootId: string, cache: { inodes: number, dentries: number }, journal: { events: number, objects: number, bytes: number } }>
  sessions: Array<{ id: number, name: string, peer: string, connected: boolean, opens: number, idleMs: number, appliedTid: number, safeTid: number }>
  maps: Array<{ name: string, epoch: number }>
  log: Array<{ seq: number, timeMs: number, level: string, who: string, message: string }>
  /** Background work that is failing (retried with backoff): trims, purges, the store, merges of gone owners. */
  health: HealthCheck[]
  /** Requests answered since the server started, per method, most called first. */
  requests: Array<{ method: string, calls: number, errors: number, meanMs: number, maxMs: number }>
}

/** Milliseconds with three decimals (microseconds), for reports. */
function ms3 (ms: number): number {
  return Math.round(ms * 1000) / 1000
}

const LOG_LIMIT_MAX = 10_000

function mdsStats (st: MdsStats): { cache: { inodes: number, dentries: number }, journal: { events: number, objects: number, bytes: number } } {
  return { cache: st.cache, journal: { events: st.journal.events, objects: st.journal.objects, bytes: st.journal.bytes } }
}

export function registerAdmin (rpc: RpcServer, srv: CudeleServer): void {
  rpc.handle('status', (args): StatusReport => {
    const limit = Math.min(Number(args[0] ?? 20) || 20, LOG_LIMIT_MAX)
    const now = performance.now()
    return {
      ranks: [{
        rank: 0,
        state: 'active',
        addr: srv.address ? `${srv.address.kind === 'unix' ? 'unix:' + srv.address.path : `tcp:${srv.address.host}:${srv.address.port}`}` : '',
        pid: process.pid,
        bootId: srv.bootId,
        ...mdsStats(srv.mds.stats())
      }],
      sessions: srv.sessions.all().map(s => ({
        id: s.id,
        name: s.name,
        peer: s.peer,
        connected: s.conn !== null,
        opens: [...s.opens.values()].reduce((a, b) => a + b, 0),
        idleMs: Math.round(now - s.lastSeenMs),
        appliedTid: s.appliedTid,
        safeTid: s.safeTid
      })),
      maps: srv.mon.maps().map(name => ({ name, epoch: srv.mon.get(name).epoch })),
      log: srv.mon.recentLog(limit),
      health: srv.health.list(),
      requests: [...rpc.handlers.counts].map(([method, c]) => ({
        method, calls: c.calls, errors: c.errors, meanMs: ms3(c.totalMs / c.calls), maxMs: ms3(c.maxMs)
      })).sort((a, b) => b.calls - a.calls)
    }
  })

  rpc.handle('log', args => {
    const limit = Math.min(Number(args[0] ?? 100) || 100, LOG_LIMIT_MAX)
    const after = args[1] === undefined || args[1] === null ? undefined : Number(args[1])
    return srv.mon.recentLog(limit, after)
  })

  // Stream the cluster log to this connection: notify 'log' for each new entry.
  rpc.handle('log.follow', (args, conn) => {
    const after = Number(args[0] ?? 0)
    const stop = srv.mon.followLog(after, entry => { conn.notify('log', [entry]) })
    conn.once('close', stop)
    return null
  })

  rpc.handle('mon.get', args => {
    const name = String(args[0])
    const epoch = args[1] === undefined || args[1] === null ? undefined : Number(args[1])
    return epoch === undefined ? srv.mon.get(name) : srv.mon.getEpoch(name, epoch)
  })

  rpc.handle('mon.maps', () => srv.mon.maps().map(name => ({ name, epoch: srv.mon.get(name).epoch, writers: srv.mon.writers(name) })))

  // Set (or, with null, delete) one key of an object-valued map; the whole value with key null.
  rpc.handle('mon.set', async (args, conn): Promise<MapState> => {
    const [name, key, value, by] = args as [string, string | null, JsonValue, string | undefined]
    const proposer = { name: typeof by === 'string' && by.length > 0 ? by : `client.${conn.remoteVersion?.pid ?? 'unknown'}` }
    return await srv.mon.propose(String(name), current => {
      if (key === null) return value
      const base = current !== null && typeof current === 'object' && !Array.isArray(current) ? { ...current } : {}
      if (value === null) delete base[key]
      else base[key] = value
      return base
    }, proposer)
  })

  rpc.handle('mon.writers', async (args, conn) => {
    const [name, writers, by] = args as [string, string[] | null, string | undefined]
    if (writers !== null && !Array.isArray(writers)) throw fsError('EINVAL', 'writers must be a list of names or null')
    await srv.mon.setWriters(String(name), writers, { name: by ?? `client.${conn.remoteVersion?.pid ?? 'unknown'}` })
    return null
  })

  // Push every epoch of a map to this connection: notify 'mon.map' with the MapState.
  rpc.handle('mon.subscribe', (args, conn) => {
    const name = String(args[0])
    const from = Number(args[1] ?? 0)
    const unsubscribe = srv.mon.subscribe(name, from, state => { conn.notify('mon.map', [state]) })
    conn.once('close', unsubscribe)
    return srv.mon.get(name).epoch
  })
}
