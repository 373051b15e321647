// The protocol's administrative methods: status, the cluster log and the
// monitor's maps (src/server/admin.ts answers them). They need no session:
// `cudele status` and `cudele log` connect, ask, and go.

import type { ErrnoName } from '../common/errors'
import type { HealthCheck } from '../common/health'
import type { LogEntry, MapState } from '../mon/types'
import { arg, query, reply } from './method'
import { json, listOf, nullable, optional, str, uint } from './shape'

/** What `cudele status` shows. Older servers may lack fields added later: readers allow for that. */
export interface StatusReport {
  ranks: Array<{ rank: number, state: string, addr: string, pid: number, bootId: string, cache: { inodes: number, dentries: number }, journal: { events: number, objects: number, bytes: number } }>
  sessions: Array<{ id: number, name: string, peer: string, connected: boolean, opens: number, idleMs: number, appliedTid: number, safeTid: number }>
  maps: Array<{ name: string, epoch: number }>
  log: LogEntry[]
  /** Background work that is failing (retried with backoff): trims, purges, the store, merges of gone owners. */
  health: HealthCheck[]
  /** Requests answered since the server started, per method, most called first. */
  requests: Array<{ method: string, calls: number, errors: number, meanMs: number, maxMs: number }>
}

/** A proposal to the monitor may be refused (EACCES: not a writer), wait (EAGAIN), not be JSON (EINVAL) or not fit (EFBIG, ENOSPC). */
const PROPOSAL_ERRNOS: readonly ErrnoName[] = ['EACCES', 'EAGAIN', 'EBUSY', 'EFBIG', 'ENOSPC']

export const adminMethods = {
  status: query({
    doc: 'Ranks, sessions, map epochs, requests answered per method and the last entries of the cluster log (default 20)',
    args: [arg('log entries', optional(nullable(uint)))],
    reply: reply<StatusReport>(),
    errnos: []
  }),
  log: query({
    doc: 'The last entries of the cluster log (default 100), or those after a sequence number',
    args: [arg('limit', optional(nullable(uint))), arg('after', optional(nullable(uint)))],
    reply: reply<LogEntry[]>(),
    errnos: []
  }),
  'log.follow': query({
    doc: 'Send this connection every new cluster log entry after a sequence number (notify log) until it closes',
    args: [arg('after', optional(nullable(uint)))],
    reply: reply<null>(),
    errnos: []
  }),
  'mon.get': query({
    doc: "A map's current state, or that of one of its epochs (null: that epoch is no longer kept)",
    args: [arg('map', str), arg('epoch', optional(nullable(uint)))],
    reply: reply<MapState | null>(),
    errnos: []
  }),
  'mon.maps': query({
    doc: 'Every map with its epoch and writers',
    args: [],
    reply: reply<Array<{ name: string, epoch: number, writers: string[] | null }>>(),
    errnos: []
  }),
  'mon.set': query({
    doc: 'Set one key of an object-valued map (null value: delete it), or the whole value (key null)',
    args: [arg('map', str), arg('key', nullable(str)), arg('value', json), arg('by', optional(nullable(str)))],
    reply: reply<MapState>(),
    errnos: PROPOSAL_ERRNOS
  }),
  'mon.writers': query({
    doc: 'Restrict who may change a map (null: anyone)',
    args: [arg('map', str), arg('writers', nullable(listOf(str))), arg('by', optional(nullable(str)))],
    reply: reply<null>(),
    errnos: PROPOSAL_ERRNOS
  }),
  'mon.subscribe': query({
    doc: "Send this connection every epoch of a map from one on (notify mon.map) until it closes; answers the map's current epoch",
    args: [arg('map', str), arg('from epoch', optional(nullable(uint)))],
    reply: reply<number>(),
    errnos: ['EAGAIN']
  })
} as const
