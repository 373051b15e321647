// The protocol's notifies: one-way messages without a reply, in the table
// like the methods, and the typed way to send and take them. A notify whose
// arguments are not of its shape is dropped with a log line on the taking
// side (src/rpc logs what a notify handler throws), never handed on.

import type { NotifyHandler, RpcConnection } from '../rpc'
import { checkArgs, arg, notification } from './method'
import { json, num, oneOf, record, str, uint } from './shape'
import { bits, ino } from './vocabulary'

const mapState = record('a map state {name, epoch, value, committedAtMs}', { name: str, epoch: uint, value: json, committedAtMs: num })
const logEntry = record('a log entry {seq, timeMs, level, who, message}', { seq: uint, timeMs: num, level: oneOf('debug', 'info', 'warn', 'error'), who: str, message: str })

export const NOTIFIES = {
  revoke: notification({
    doc: 'Give back these capability bits of a file: flush what they covered, then caps.release',
    from: 'server',
    args: [arg('ino', ino), arg('bits', bits)]
  }),
  safe: notification({
    doc: "Every request of the session up to this transaction id is safe (committed, or stored by a trim): the client may forget them",
    from: 'server',
    args: [arg('tid', uint)]
  }),
  'mon.map': notification({
    doc: 'A new epoch of a map the connection subscribed to (mon.subscribe)',
    from: 'server',
    args: [arg('state', mapState)]
  }),
  log: notification({
    doc: 'A new cluster log entry (log.follow)',
    from: 'server',
    args: [arg('entry', logEntry)]
  }),
  hb: notification({
    doc: "The client is alive (every heartbeatMs of session.open's answer); a session silent for its timeout is evicted",
    from: 'client',
    args: []
  })
} as const

export type NotifyName = keyof typeof NOTIFIES
export type NotifyArgs<N extends NotifyName> = NonNullable<typeof NOTIFIES[N]['types']>['args']

/** Send a notify; false if the connection is closed (it is dropped). */
export function notify<N extends NotifyName> (conn: RpcConnection, name: N, args: NotifyArgs<N>): boolean {
  return conn.notify(name, args)
}

/** A connection or a server: where notify handlers are registered. */
export interface NotifyTarget {
  onNotify (method: string, fn: NotifyHandler): unknown
}

/** Take notifies of one name, their arguments checked against the table. */
export function onNotify<N extends NotifyName> (target: NotifyTarget, name: N, fn: (args: NotifyArgs<N>, conn: RpcConnection) => void): void {
  const entry = NOTIFIES[name]
  const what = `notify ${name}`
  target.onNotify(name, (args, conn) => {
    checkArgs(what, entry, args)
    fn(args as NotifyArgs<N>, conn)
  })
}
