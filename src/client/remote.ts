// The client's backend in server mode: the MDS and the data path over RPC.
//
// Every mutating request gets a transaction id (tid) and stays in the unsafe
// queue until the server says it is safe (its journal batch committed). If
// the connection drops, the backend reconnects with the same session name and
// replays the queue in order; the server answers the ones it already carried
// out without doing them again. So nothing acknowledged is lost across a
// server restart. Reads are simply retried after a reconnect.

import { randomBytes } from 'crypto'
import { FsError, fsError } from '../common/errors'
import type { Attr, Caller, DirEntry, FsStats, Ino, SetAttr } from '../common/types'
import {
  type ArgsOf, call, METHODS, type MutationName, mutationRequest, type MutationRequest, notify, onNotify,
  type QueryName, type ReplyOf, send
} from '../protocol'
import { connect, type RpcConnection } from '../rpc'
import type { ObjectWrite } from '../store/types'
import type { CapListener, ClientBackend, OpenResult } from './backend'
import type { MapState } from '../mon/types'

export interface RemoteOptions {
  /** Give up reconnecting after this long (ms); pending requests then fail with ENOTCONN. */
  reconnectTimeoutMs: number
  /** A server silent this long (ms) counts as gone: the client closes the connection and reconnects. */
  deadServerMs: number
  /** Shown in the server's status. */
  name: string
  /**
   * Who this client is as the owner of decoupled subtrees; stays the same
   * across restarts of the same mount (default: the session name).
   */
  owner?: string
}

export const DEFAULT_REMOTE_OPTIONS: RemoteOptions = { reconnectTimeoutMs: 5 * 60_000, deadServerMs: 10_000, name: 'cudele-client' }

interface Unsafe {
  tid: number
  request: MutationRequest
  replied: boolean
  /** Kept in the local request log too (local_persist). */
  keep: boolean
  /** The inode a create made: its replay asks for the same number. */
  ino?: Ino
  resolve: (v: unknown) => void
  reject: (e: Error) => void
}

/** A request kept in a client's local request log. */
export interface KeptRequest {
  tid: number
  request: MutationRequest
  /** The inode number a create's reply gave. */
  ino?: Ino
}

/**
 * Where a client keeps the requests it must not lose before they are safe
 * (local_persist of strong subtrees: src/cudele/requestlog.ts).
 */
export interface RequestKeeper {
  /** The session name the kept requests belong to (a recovery replays under it). */
  readonly clientName: string
  /** Keep a request the server has carried out; resolves once it is written. */
  keep (r: KeptRequest): Promise<void>
  /** Every request up to tid is safe. */
  safe (tid: number): void
  /** Everything kept so far is on stable storage. */
  flushed (): Promise<void>
  /** Nothing kept is unsafe any more (a clean end): the log goes. */
  close (): Promise<void>
}

/**
 * A server that stops answering (hung, or a silent network partition) is
 * noticed this way: the connection closes and the client reconnects (and
 * gives up after reconnectTimeoutMs).
 */
const HEARTBEAT_MS = 1000
const RECONNECT_MIN_MS = 20
const RECONNECT_MAX_MS = 1000

export class RemoteBackend implements ClientBackend {
  /** This client's session name: stays the same across reconnects. */
  readonly clientName: string
  private conn: RpcConnection
  private bootId = ''
  private heartbeat: NodeJS.Timeout | null = null
  private nextTid = 1
  /**
   * Mutating requests not yet known safe, in tid order. A FIFO (array + head)
   * rather than a Map: entries leave from the front, and a Map iterated from
   * its start walks every deleted entry until V8 rehashes it.
   */
  private unsafe: Array<Unsafe | null> = []
  private unsafeHead = 0
  private unsafeLive = 0
  /** Every tid up to this one is safe. */
  private safeTid = 0
  private ready: Promise<void> = Promise.resolve()
  private closing = false
  private capListener: CapListener | null = null
  /** Open files and capabilities held, to reclaim after a server restart. */
  private readonly opens = new Map<Ino, number>()
  private readonly caps = new Map<Ino, number>()
  sessionId = 0
  /** Counters for status and tests. */
  readonly stats = { reconnects: 0, replayed: 0 }
  /** local_persist: the log requests sent inside keepLocally() also go to (null: none). */
  keeper: RequestKeeper | null = null
  private keeping = 0

  private constructor (private readonly address: string, conn: RpcConnection, private readonly options: RemoteOptions, clientName?: string) {
    this.conn = conn
    this.clientName = clientName ?? randomBytes(12).toString('hex')
  }

  /** Connect; `clientName` takes up the session name of an earlier run (to replay what it kept). */
  static async connect (address: string, opts: Partial<RemoteOptions> = {}, clientName?: string): Promise<RemoteBackend> {
    const options = { ...DEFAULT_REMOTE_OPTIONS, ...opts }
    const conn = await connect(address, { name: options.name, heartbeatMs: HEARTBEAT_MS, heartbeatTimeoutMs: options.deadServerMs })
    const b = new RemoteBackend(address, conn, options, clientName)
    await b.attach(conn, false)
    return b
  }

  keepLocally<T> (fn: () => Promise<T>): Promise<T> {
    this.keeping++
    try {
      return fn()
    } finally {
      this.keeping--
    }
  }

  /**
   * Replay requests an earlier run of this client kept (its request log),
   * under that run's session name: the server answers the ones it has, and
   * does the rest again (a create with the same inode number, if free).
   */
  replayKept (requests: KeptRequest[], failed: (r: KeptRequest, err: Error) => void): void {
    for (const r of [...requests].sort((x, y) => x.tid - y.tid)) {
      if (r.tid < this.nextTid) continue
      this.nextTid = r.tid + 1
      // replied: false, so a failure is heard (each of these succeeded the first time).
      const u: Unsafe = { tid: r.tid, request: r.request, replied: false, keep: false, ino: r.ino, resolve: () => {}, reject: err => failed(r, err) }
      this.unsafe.push(u)
      this.unsafeLive++
      this.stats.replayed++
      this.send(u, true)
    }
  }

  /** Open (or take back) the session on a fresh connection, then replay what is not known safe. */
  private async attach (conn: RpcConnection, replay: boolean): Promise<void> {
    this.conn = conn
    onNotify(conn, 'safe', ([tid]) => this.markSafe(tid))
    onNotify(conn, 'revoke', ([ino, bits]) => this.onRevoke(ino, bits))
    conn.on('close', reason => {
      if (this.heartbeat) clearInterval(this.heartbeat)
      this.heartbeat = null
      if (!this.closing && this.conn === conn) this.reconnect(reason.message)
    })
    const reply = await call(conn, 'session.open', [
      this.clientName,
      { opens: [...this.opens], caps: [...this.caps] },
      this.owner
    ])
    onNotify(conn, 'mon.map', ([state]) => {
      const l = this.mapListeners.get(state.name)
      if (l) for (const fn of l.fns) fn(state)
    })
    for (const [name, l] of this.mapListeners) call(conn, 'mon.subscribe', [name, l.epoch]).catch(() => {})
    this.sessionId = reply.session
    const restarted = this.bootId !== '' && reply.bootId !== this.bootId
    this.bootId = reply.bootId
    this.heartbeat = setInterval(() => notify(conn, 'hb', []), Math.max(50, reply.heartbeatMs))
    this.heartbeat.unref()
    if (replay) {
      // Resend everything not known safe, in order. After a restart the server
      // may have lost requests it had answered; the ones it kept, it recognises.
      for (let i = this.unsafeHead; i < this.unsafe.length; i++) {
        const u = this.unsafe[i]
        if (!u) continue
        this.stats.replayed++
        this.send(u, true)
      }
      if (restarted && this.capListener) this.capListener.serverRestarted?.()
    }
  }

  private reconnect (why: string): void {
    const started = performance.now()
    let delay = RECONNECT_MIN_MS
    this.ready = (async () => {
      for (;;) {
        if (this.closing) throw fsError('ENOTCONN', 'the client is closing')
        if (performance.now() - started > this.options.reconnectTimeoutMs) {
          const err = fsError('ENOTCONN', `lost the server at ${this.address} (${why}) and could not reconnect within ${this.options.reconnectTimeoutMs} ms`)
          for (const u of this.unsafe) if (u && !u.replied) u.reject(err)
          this.unsafe = []
          this.unsafeHead = 0
          this.unsafeLive = 0
          throw err
        }
        try {
          const conn = await connect(this.address, { name: this.options.name, timeoutMs: 2000, heartbeatMs: HEARTBEAT_MS, heartbeatTimeoutMs: this.options.deadServerMs })
          this.stats.reconnects++
          await this.attach(conn, true)
          return
        } catch {
          await new Promise(resolve => setTimeout(resolve, delay))
          delay = Math.min(delay * 2, RECONNECT_MAX_MS)
        }
      }
    })()
    this.ready.catch(() => {})
  }

  private markSafe (tid: number): void {
    if (tid > this.safeTid) this.safeTid = tid
    this.dropSafe()
    this.keeper?.safe(this.safeTid)
  }

  /** Let go of replied requests at the front that are safe (they will never be replayed). */
  private dropSafe (): void {
    const q = this.unsafe
    while (this.unsafeHead < q.length) {
      const u = q[this.unsafeHead]
      if (u && !(u.replied && u.tid <= this.safeTid)) break
      if (u) {
        q[this.unsafeHead] = null
        this.unsafeLive--
      }
      this.unsafeHead++
    }
    if (this.unsafeHead > 1024 && this.unsafeHead * 2 > q.length) {
      this.unsafe = q.slice(this.unsafeHead)
      this.unsafeHead = 0
    }
  }

  /** Forget one request (it failed for good). */
  private dropOne (u: Unsafe): void {
    const i = this.unsafe.indexOf(u, this.unsafeHead)
    if (i >= 0) {
      this.unsafe[i] = null
      this.unsafeLive--
    }
    this.dropSafe()
  }

  private firstUnsafeTid (fallback: number): number {
    for (let i = this.unsafeHead; i < this.unsafe.length; i++) {
      const u = this.unsafe[i]
      if (u) return u.tid
    }
    return fallback
  }

  private send (u: Unsafe, replay: boolean): void {
    // A replayed create names the inode number it got the first time.
    send(this.conn, u.request, { tid: u.tid, firstUnsafe: this.firstUnsafeTid(u.tid), replay: replay ? (u.ino ?? true) : false }).then(v => {
      if (!u.replied) {
        u.replied = true
        if (METHODS[u.request.method].creates) u.ino = (v as Attr | null)?.ino
        if (u.keep && this.keeper) {
          // Acknowledged only once it is in the local log.
          this.keeper.keep({ tid: u.tid, request: u.request, ino: u.ino }).then(() => u.resolve(v), (err: Error) => u.reject(err))
        } else {
          u.resolve(v)
        }
      }
      if (u.tid <= this.safeTid) this.dropSafe()
    }, (err: FsError) => {
      if (err.code === 'ENOTCONN' && !this.closing) return // replayed after the reconnect
      if (!u.replied) {
        u.replied = true
        u.reject(err)
      }
      this.dropOne(u)
    })
  }

  /** The owner name of decoupled subtrees. */
  get owner (): string { return this.options.owner ?? this.clientName }

  private readonly mapListeners = new Map<string, { epoch: number, fns: Array<(state: MapState) => void> }>()

  /** Follow a monitor map: the listener gets every new epoch (also after reconnects). */
  subscribeMap (name: string, fn: (state: MapState) => void): void {
    let l = this.mapListeners.get(name)
    const first = !l
    if (!l) {
      l = { epoch: 0, fns: [] }
      this.mapListeners.set(name, l)
    }
    const entry = l
    entry.fns.push(state => { if (state.epoch > entry.epoch) entry.epoch = state.epoch })
    entry.fns.push(fn)
    if (first) this.query('mon.subscribe', [name, 0]).catch(() => {})
  }

  /** A request that changes something: queued for replay until safe. */
  async mutate<M extends MutationName> (method: M, args: ArgsOf<M>): Promise<ReplyOf<M>> {
    const keep = this.keeping > 0
    await this.ready
    return await new Promise<ReplyOf<M>>((resolve, reject) => {
      const u: Unsafe = { tid: this.nextTid++, request: mutationRequest(method, args), replied: false, keep, resolve: resolve as (v: unknown) => void, reject }
      this.unsafe.push(u)
      this.unsafeLive++
      this.send(u, false)
    })
  }

  /** A request that changes nothing: retried after a reconnect. */
  async query<M extends QueryName> (method: M, args: ArgsOf<M>): Promise<ReplyOf<M>> {
    for (;;) {
      await this.ready
      try {
        return await call(this.conn, method, args)
      } catch (err) {
        if ((err as FsError).code !== 'ENOTCONN' || this.closing) throw err
        // The close handler has started reconnecting; wait for it.
        await new Promise(resolve => setImmediate(resolve))
      }
    }
  }

  // ---- capabilities ----

  setCapListener (l: CapListener): void {
    this.capListener = l
  }

  private onRevoke (ino: Ino, bits: number): void {
    const done = (): void => {
      const held = (this.caps.get(ino) ?? 0) & ~bits
      if (held === 0) this.caps.delete(ino)
      else this.caps.set(ino, held)
      call(this.conn, 'caps.release', [ino, bits]).catch(() => {})
    }
    if (!this.capListener) return done()
    this.capListener.revoke(ino, bits).then(done, done)
  }

  async openFile (ino: Ino, flags: number): Promise<OpenResult> {
    const r = await this.mutate('open', [ino, flags])
    this.opens.set(ino, (this.opens.get(ino) ?? 0) + 1)
    if (r.caps) this.caps.set(ino, (this.caps.get(ino) ?? 0) | r.caps)
    return r
  }

  async acquireCaps (ino: Ino, bits: number): Promise<{ caps: number, leaseMs: number }> {
    const r = await this.query('caps.acquire', [ino, bits])
    if (r.caps) this.caps.set(ino, (this.caps.get(ino) ?? 0) | r.caps)
    return r
  }

  // ---- MdsApi ----

  lookup (parent: Ino, name: string): Promise<Attr> { return this.query('lookup', [parent, name]) }
  lookupOrNull (parent: Ino, name: string): Promise<Attr | null> { return this.query('lookupOrNull', [parent, name]) }
  getattr (ino: Ino): Promise<Attr> { return this.query('getattr', [ino]) }
  readlink (ino: Ino): Promise<string> { return this.query('readlink', [ino]) }
  readdir (ino: Ino, after: string | null, limit: number): Promise<DirEntry[]> { return this.query('readdir', [ino, after, limit]) }
  getxattr (ino: Ino, name: string): Promise<Buffer> {
    return this.query('getxattr', [ino, name]).then(v => Buffer.from(v.buffer, v.byteOffset, v.length))
  }

  listxattr (ino: Ino): Promise<string[]> { return this.query('listxattr', [ino]) }
  statfs (): Promise<FsStats> { return this.query('statfs', []) }
  async sync (durable: boolean): Promise<void> {
    // Safe means committed; durable (fsync) asks the server to put it on stable storage,
    // and what the local request log keeps goes to this machine's.
    await this.query('sync', [durable, undefined])
    if (durable && this.keeper) await this.keeper.flushed()
  }

  open (ino: Ino): Promise<Attr> { return this.openFile(ino, 0).then(r => r.attr) }
  async release (ino: Ino): Promise<void> {
    // The file counts as open until the server has the release: if the server
    // restarts meanwhile, the new session reclaims it, and the release (sent
    // again after the reconnect) finds it open there.
    try {
      await this.mutate('release', [ino])
    } finally {
      const n = (this.opens.get(ino) ?? 0) - 1
      if (n > 0) this.opens.set(ino, n)
      else {
        this.opens.delete(ino)
        this.caps.delete(ino)
      }
    }
  }

  setattr (ino: Ino, change: SetAttr): Promise<Attr> { return this.mutate('setattr', [ino, change]) }
  mknod (parent: Ino, name: string, mode: number, rdev: number, caller: Caller): Promise<Attr> { return this.mutate('mknod', [parent, name, mode, rdev, caller]) }
  mkdir (parent: Ino, name: string, mode: number, caller: Caller): Promise<Attr> { return this.mutate('mkdir', [parent, name, mode, caller]) }
  symlink (parent: Ino, name: string, target: string, caller: Caller): Promise<Attr> { return this.mutate('symlink', [parent, name, target, caller]) }
  link (ino: Ino, newParent: Ino, newName: string): Promise<Attr> { return this.mutate('link', [ino, newParent, newName]) }
  async unlink (parent: Ino, name: string): Promise<void> { await this.mutate('unlink', [parent, name]) }
  async rmdir (parent: Ino, name: string): Promise<void> { await this.mutate('rmdir', [parent, name]) }
  async rename (parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> { await this.mutate('rename', [parent, name, newParent, newName, flags]) }
  async setxattr (ino: Ino, name: string, value: Buffer, flags: number): Promise<void> { await this.mutate('setxattr', [ino, name, value, flags]) }
  async removexattr (ino: Ino, name: string): Promise<void> { await this.mutate('removexattr', [ino, name]) }

  // ---- data ----

  commitData (ino: Ino, writes: ObjectWrite[], change: SetAttr, durable: boolean): { attr: Promise<Attr>, committed: Promise<unknown> } {
    const p = this.mutate('data.commit', [ino, writes, change, durable])
    return { attr: p, committed: p }
  }

  async readData (object: string, offset: number, length: number): Promise<Uint8Array | null> {
    return await this.query('data.read', [object, offset, length])
  }

  async listData (prefix: string, after: string | undefined, limit: number): Promise<string[]> {
    return await this.query('data.list', [prefix, after ?? null, limit])
  }

  /** Requests still waiting to be safe (for tests and shutdown). */
  get unsafeCount (): number { return this.unsafeLive }

  /** Drop the connection without ending the session (it times out on the server). */
  disconnect (): void {
    this.closing = true
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.conn.close('the client is done')
  }

  /**
   * Wait until every request is safe (asking the server to store what it did
   * not journal), then end the session. Requests still unsafe at the deadline
   * stay in the request log, and the session is left to time out: ended, the
   * server would forget which of them it did, and a replay would do them again.
   */
  async close (): Promise<void> {
    await this.settle(10_000)
    if (this.unsafeLive > 0 && this.keeper) return this.disconnect()
    this.closing = true
    if (this.heartbeat) clearInterval(this.heartbeat)
    // The log goes before the server forgets which requests it did: a replay of it would do them again.
    if (this.keeper) await this.keeper.close().catch(() => {})
    await call(this.conn, 'session.close', []).catch(() => {})
    this.conn.close('the client is done')
  }

  /** Wait up to ms until every request is safe; the server stores what it did not journal at once. */
  async settle (ms: number): Promise<void> {
    const deadline = performance.now() + ms
    while (this.unsafeLive > 0 && performance.now() < deadline) {
      await this.query('sync', [false, true]).catch(() => {})
      if (this.unsafeLive > 0) await new Promise(resolve => setTimeout(resolve, 10))
    }
  }
}
