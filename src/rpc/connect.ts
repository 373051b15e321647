// The client side: open a socket, do the handshake, hand back the connection.
// No reconnection here: the session layer calls connect() again (with the
// same address) when a connection closes, and replays what it needs to.

import net from 'net'
import { FsError } from '../common/errors'
import { Address, formatAddress, toAddress } from './address'
import { ConnectionOptions, RpcConnection } from './connection'
import { isErrnoName } from './errors'

export interface ConnectOptions extends ConnectionOptions {
  /** Give up if the socket is not connected and the handshake done within this time. Default 10 s. */
  timeoutMs?: number
  /**
   * Called with the connection before its handshake: the place to register
   * handlers that must see everything the server sends. (Frames that arrive
   * with the welcome are also held until the code awaiting connect() has run.)
   */
  setup?: (conn: RpcConnection) => void
}

/** A connection whose handshake is done. Rejects with an FsError saying what went wrong. */
export function connect (addr: string | Address, opts: ConnectOptions = {}): Promise<RpcConnection> {
  let a: Address
  try {
    a = toAddress(addr)
  } catch (err) {
    return Promise.reject(err)
  }
  const where = formatAddress(a)
  const timeoutMs = opts.timeoutMs ?? 10_000
  return new Promise((resolve, reject) => {
    let settled = false
    let conn: RpcConnection | undefined
    const socket = a.kind === 'unix' ? net.connect({ path: a.path }) : net.connect({ host: a.host, port: a.port })
    const finish = (err: Error | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err === null) {
        resolve(conn as RpcConnection)
        return
      }
      // Once the connection exists it owns the socket (and may still be sending a goodbye).
      if (conn === undefined) socket.destroy()
      reject(err)
    }
    const timer = setTimeout(() => {
      finish(new FsError('ETIMEDOUT', `connecting to ${where} timed out after ${timeoutMs} ms`))
      conn?.close(`no welcome within ${timeoutMs} ms`)
    }, timeoutMs)
    const onError = (err: NodeJS.ErrnoException): void => finish(connectError(err, where))
    socket.once('error', onError)
    socket.once('connect', () => {
      socket.off('error', onError)
      const c = new RpcConnection(socket, 'client', where, opts, undefined, err => {
        if (err === null) finish(null)
        else finish(new FsError((err as FsError).code ?? 'EIO', `cannot connect to ${where}: ${stripCode(err)}`))
      })
      conn = c
      try {
        opts.setup?.(c)
      } catch (err) {
        finish(err as Error)
        c.close('setup failed')
      }
    })
  })
}

function stripCode (err: Error): string {
  const code = (err as FsError).code
  return code !== undefined && err.message.startsWith(`${code}: `) ? err.message.slice(code.length + 2) : err.message
}

function connectError (err: NodeJS.ErrnoException, where: string): FsError {
  switch (err.code) {
    case 'ECONNREFUSED': return new FsError('ECONNREFUSED', `cannot connect to ${where}: connection refused (is the server running?)`)
    case 'ENOENT': return new FsError('ENOENT', `cannot connect to ${where}: no such socket (is the server running?)`)
    case 'EACCES': return new FsError('EACCES', `cannot connect to ${where}: permission denied`)
    default: return new FsError(isErrnoName(err.code) ? err.code : 'EIO', `cannot connect to ${where}: ${err.message}`)
  }
}
