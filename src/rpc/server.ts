// The listening side: accepts connections, does the handshake, and hands
// each open connection to onConnection listeners. Methods and notify
// handlers registered on the server serve every connection.
//
// Listening is refused on non-loopback TCP addresses unless allowRemote is
// set: the protocol has neither authentication nor encryption. A unix socket
// file left behind by a server that is gone is replaced; one with a live
// server behind it is refused with EADDRINUSE.

import { EventEmitter } from 'events'
import fs from 'fs'
import net from 'net'
import nodePath from 'path'
import { FsError } from '../common/errors'
import { Address, formatAddress, isLoopbackHost, toAddress } from './address'
import { ConnectionOptions, RpcConnection } from './connection'
import { isErrnoName } from './errors'
import { AnyNotifyHandler, ErrorReplyListener, Handlers, MethodHandler, NotifyHandler, RequestHandler } from './handlers'

export interface ServerOptions extends ConnectionOptions {
  /** Allow listening on addresses other than loopback. */
  allowRemote?: boolean
  /** A client must complete its hello within this time. Default 10 s. */
  handshakeTimeoutMs?: number
}

/** How long listen() waits for an existing unix socket to answer before calling it in use. */
const PROBE_MS = 1000
/** How long close() lets connections say goodbye before destroying them. */
const CLOSE_GRACE_MS = 2000

export class RpcServer extends EventEmitter {
  readonly handlers = new Handlers()
  /** Open connections (handshake done). */
  readonly connections = new Set<RpcConnection>()
  /** Where the server listens (with the actual port when 0 was asked for). */
  address: Address | null = null

  private server: net.Server | null = null
  private readonly sockets = new Set<net.Socket>()
  /** Every connection, also those still in their handshake. */
  private readonly all = new Set<RpcConnection>()
  private readonly connectionListeners: Array<(conn: RpcConnection) => void> = []
  private unixIno: number | undefined
  private accepted = 0
  private readonly log: (msg: string) => void

  constructor (private readonly opts: ServerOptions = {}) {
    super()
    this.log = opts.log ?? ((msg: string) => console.error(`cudele rpc: ${msg}`))
  }

  /** Called for each connection once its handshake is done, before any of its requests. */
  onConnection (fn: (conn: RpcConnection) => void): this {
    this.connectionListeners.push(fn)
    return this
  }

  handle (method: string, fn: MethodHandler): this {
    this.handlers.methods.set(method, fn)
    return this
  }

  onRequest (fn: RequestHandler): this {
    this.handlers.request = fn
    return this
  }

  onNotify (method: string, fn: NotifyHandler): this
  onNotify (fn: AnyNotifyHandler): this
  onNotify (a: string | AnyNotifyHandler, fn?: NotifyHandler): this {
    if (typeof a === 'string') this.handlers.notifies.set(a, fn as NotifyHandler)
    else this.handlers.notify = a
    return this
  }

  /** Be told of every error reply to a registered method (on any connection), with its errno. */
  onErrorReply (fn: ErrorReplyListener): this {
    this.handlers.errorReply = fn
    return this
  }

  /** Send a notify to every open connection. */
  broadcast (method: string, args: unknown[] = []): void {
    for (const c of this.connections) c.notify(method, args)
  }

  async listen (addr: string | Address): Promise<Address> {
    if (this.server !== null) throw new FsError('EISCONN', `already listening on ${formatAddress(this.address as Address)}`)
    const a = toAddress(addr)
    const where = formatAddress(a)
    if (a.kind === 'tcp' && this.opts.allowRemote !== true && !(await isLoopbackHost(a.host))) {
      throw new FsError('EACCES', `refusing to listen on ${where}: it is not a loopback address, and the RPC protocol has no authentication or encryption; allow remote listening explicitly to do it anyway`)
    }
    if (a.kind === 'unix') {
      // (libuv reports a missing directory as EACCES: say what it is.)
      const dir = nodePath.dirname(a.path)
      if (!fs.existsSync(dir)) throw new FsError('ENOENT', `cannot listen on ${where}: the directory ${dir} does not exist`)
      await replaceStaleSocket(a.path)
    }

    const server = net.createServer(socket => this.accept(socket, a))
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, where))
      server.once('error', onError)
      const done = (): void => {
        server.off('error', onError)
        resolve()
      }
      if (a.kind === 'unix') server.listen(a.path, done)
      else server.listen({ host: a.host, port: a.port }, done)
    })
    server.on('error', err => this.log(`server at ${where}: ${err.message}`))
    this.server = server
    if (a.kind === 'unix') {
      this.unixIno = fs.statSync(a.path).ino
      this.address = a
    } else {
      const bound = server.address() as net.AddressInfo
      this.address = { kind: 'tcp', host: a.host, port: bound.port }
    }
    return this.address
  }

  private accept (socket: net.Socket, a: Address): void {
    this.sockets.add(socket)
    socket.on('close', () => this.sockets.delete(socket))
    const n = ++this.accepted
    const peer = a.kind === 'unix' ? `client #${n} on ${formatAddress(a)}` : `tcp:${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`
    const conn: RpcConnection = new RpcConnection(socket, 'server', peer, this.opts, this.handlers, err => {
      if (err !== null) return // the connection logged why, if it was worth it
      this.connections.add(conn)
      for (const fn of this.connectionListeners) fn(conn)
    }, this.opts.handshakeTimeoutMs)
    this.all.add(conn)
    conn.once('close', () => {
      this.all.delete(conn)
      this.connections.delete(conn)
    })
  }

  /**
   * Stop listening, close every connection (their pending calls reject with
   * ENOTCONN, the peers learn the reason) and remove the unix socket file.
   */
  async close (reason = 'the server is shutting down'): Promise<void> {
    const server = this.server
    if (server === null) return
    this.server = null
    const closed = new Promise<void>(resolve => server.close(() => resolve()))
    // Connections still in their handshake too: their connect() learns why.
    for (const c of [...this.all]) c.close(reason)
    const grace = setTimeout(() => { for (const s of this.sockets) s.destroy() }, CLOSE_GRACE_MS)
    await closed
    clearTimeout(grace)
    const a = this.address
    if (a?.kind === 'unix') {
      // Only remove the file if it is still ours: another server may have replaced it.
      try {
        if (fs.statSync(a.path).ino === this.unixIno) fs.unlinkSync(a.path)
      } catch {}
    }
  }
}

function listenError (err: NodeJS.ErrnoException, where: string): FsError {
  switch (err.code) {
    case 'EADDRINUSE': return new FsError('EADDRINUSE', `cannot listen on ${where}: the address is in use by another process`)
    case 'EADDRNOTAVAIL': return new FsError('EADDRNOTAVAIL', `cannot listen on ${where}: no such address on this machine`)
    case 'EACCES': return new FsError('EACCES', `cannot listen on ${where}: permission denied`)
    default: return new FsError(isErrnoName(err.code) ? err.code : 'EIO', `cannot listen on ${where}: ${err.message}`)
  }
}

/** Remove a unix socket file whose server is gone; refuse one that a server still answers on. */
async function replaceStaleSocket (path: string): Promise<void> {
  let st: fs.Stats
  try {
    st = fs.lstatSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const where = `unix:${path}`
  if (!st.isSocket()) throw new FsError('EEXIST', `cannot listen on ${where}: ${path} exists and is not a socket`)
  const state = await probe(path)
  if (state === 'live') throw new FsError('EADDRINUSE', `cannot listen on ${where}: a server is running there (it accepted a connection); stop it first`)
  if (state === 'timeout') throw new FsError('EADDRINUSE', `cannot listen on ${where}: something holds the socket but did not answer within ${PROBE_MS} ms; remove ${path} if no server runs`)
  try {
    fs.unlinkSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

function probe (path: string): Promise<'live' | 'stale' | 'timeout'> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path })
    const timer = setTimeout(() => { s.destroy(); resolve('timeout') }, PROBE_MS)
    s.once('connect', () => { clearTimeout(timer); s.destroy(); resolve('live') })
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      s.destroy()
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') resolve('stale')
      else reject(new FsError(isErrnoName(err.code) ? err.code : 'EIO', `cannot tell whether a server runs at unix:${path}: ${err.message}`))
    })
  })
}
