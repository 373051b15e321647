// Administrative RPC methods: status, the cluster log, monitor maps.
//
// These need no session: `cudele status` and `cudele log` connect, ask, and go.

import type { MdsStats } from '../mds'
import type { MapState } from '../mon/types'
import { notify, type ProtocolServer, type StatusReport } from '../protocol'
import type { RpcConnection } from '../rpc'
import type { CudeleServer } from './server'

// The report is part of the protocol (src/protocol/admin.ts): both ends read it.
export type { StatusReport } from '../protocol'

/** Milliseconds with three decimals (microseconds), for reports. */
function ms3 (ms: number): number {
  return Math.round(ms * 1000) / 1000
}

const LOG_LIMIT_MAX = 10_000

function mdsStats (st: MdsStats): { cache: { inodes: number, dentries: number }, journal: { events: number, objects: number, bytes: number } } {
  return { cache: st.cache, journal: { events: st.journal.events, objects: st.journal.objects, bytes: st.journal.bytes } }
}

export function registerAdmin (ps: ProtocolServer, srv: CudeleServer): void {
  const rpc = srv.rpc
  ps.handle('status', ([logEntries]): StatusReport => {
    const limit = Math.min(logEntries || 20, LOG_LIMIT_MAX)
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

  ps.handle('log', ([limit, after]) => srv.mon.recentLog(Math.min(limit || 100, LOG_LIMIT_MAX), after ?? undefined))

  // Stream the cluster log to this connection: notify 'log' for each new entry.
  ps.handle('log.follow', ([after], conn) => {
    const stop = srv.mon.followLog(after ?? 0, entry => { notify(conn, 'log', [entry]) })
    conn.once('close', stop)
    return null
  })

  ps.handle('mon.get', ([name, epoch]) => epoch === undefined || epoch === null ? srv.mon.get(name) : srv.mon.getEpoch(name, epoch))

  ps.handle('mon.maps', () => srv.mon.maps().map(name => ({ name, epoch: srv.mon.get(name).epoch, writers: srv.mon.writers(name) })))

  // Set (or, with null, delete) one key of an object-valued map; the whole value with key null.
  ps.handle('mon.set', async ([name, key, value, by], conn): Promise<MapState> => {
    return await srv.mon.propose(name, current => {
      if (key === null) return value
      const base = current !== null && typeof current === 'object' && !Array.isArray(current) ? { ...current } : {}
      if (value === null) delete base[key]
      else base[key] = value
      return base
    }, { name: proposer(by, conn) })
  })

  ps.handle('mon.writers', async ([name, writers, by], conn) => {
    await srv.mon.setWriters(name, writers, { name: proposer(by, conn) })
    return null
  })

  // Push every epoch of a map to this connection: notify 'mon.map' with the MapState.
  ps.handle('mon.subscribe', ([name, from], conn) => {
    const unsubscribe = srv.mon.subscribe(name, from ?? 0, state => { notify(conn, 'mon.map', [state]) })
    conn.once('close', unsubscribe)
    return srv.mon.get(name).epoch
  })
}

/** Who proposes a change: the name the caller gave, or its client pid. */
function proposer (by: string | null | undefined, conn: RpcConnection): string {
  return typeof by === 'string' && by.length > 0 ? by : `client.${conn.remoteVersion?.pid ?? 'unknown'}`
}
