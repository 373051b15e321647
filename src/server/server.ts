// Server mode: the MDS, the monitor and the object store served to clients
// over RPC (`cudele serve`; src/app/serve.ts brings the parts up): sessions,
// capabilities, which requests are safe, claims of owners that went away.

import { randomBytes } from 'crypto'
import { Backoff, Health, retryInBackground } from '../common/health'
import { CAP_BUFFER, CAP_CACHE } from '../common/caps'
import { CapTable, CompletedRequests, type MetadataServer } from '../mds'
import type { Ino } from '../common/types'
import type { Monitor } from '../mon/monitor'
import type { LogLevel } from '../mon/types'
import { notify, ProtocolServer } from '../protocol'
import { type Address, type RpcServer, formatAddress } from '../rpc'
import type { SqliteStore } from '../store'
import { readStoredSegments } from '../cudele/local'
import { SubtreeRegistry } from '../cudele/registry'
import { registerAdmin } from './admin'
import { registerClasses } from './classes'
import { registerCudele } from './cudele'
import { createLuaPool, type LuaPool } from '../lua'
import { ClassRuntime } from '../store/classes'
import { capPolicyOf, registerMethods } from './methods'
import { type Session, type SessionOptions, SessionTable } from './sessions'

/** First retry of what a gone owner leaves (a merge of its stored journal), doubling up to the max. */
const OWNER_RETRY_FIRST_MS = 1000
const OWNER_RETRY_MAX_MS = 60_000

export class CudeleServer {
  readonly bootId = randomBytes(8).toString('hex')
  readonly caps: CapTable
  readonly sessions: SessionTable
  readonly subtrees: SubtreeRegistry
  /** Object classes: Lua methods run in the store (a pool of Lua worker threads). */
  readonly classes: ClassRuntime
  private readonly lua: LuaPool
  /** Requests that journaled nothing, done in this server's lifetime (for replays after a reconnect). */
  readonly volatileCompleted = new CompletedRequests()
  address: Address | null = null
  private closed = false
  private ownersTimer: NodeJS.Timeout | null = null

  constructor (
    readonly store: SqliteStore,
    readonly mon: Monitor,
    readonly mds: MetadataServer,
    readonly rpc: RpcServer,
    sessionOptions: SessionOptions,
    /** Background work that is failing: the MDS's, the store's and the server's own (merges of gone owners). */
    readonly health: Health = new Health()
  ) {
    this.sessions = new SessionTable({ ended: (s, why) => this.sessionEnded(s, why) }, sessionOptions)
    this.subtrees = new SubtreeRegistry(mds, store, mon)
    this.lua = createLuaPool()
    this.classes = new ClassRuntime(store, mon, this.lua)
    this.caps = new CapTable({
      sendRevoke: (sid, ino, bits) => {
        const conn = this.sessions.get(sid)?.conn
        if (conn) notify(conn, 'revoke', [ino, bits])
      },
      isOpen: sid => this.sessions.isOpen(sid)
    })
    this.mds.watchSafety({
      // Every request applied so far has its events in this batch or an earlier one.
      journalSubmitted: cur => {
        const token: Array<readonly [Session, number]> = this.sessions.all().filter(s => s.appliedTid > s.committedTid).map(s => [s, s.appliedTid] as const)
        // So has the request that submits its own batch (data.commit): it is
        // not applied yet, and no later batch may come.
        const s = cur ? this.sessions.all().find(x => x.name === cur.client) : undefined
        if (cur && s) token.push([s, cur.tid])
        return token
      },
      journalCommitted: token => {
        for (const [s, tid] of token as Array<readonly [Session, number]>) {
          if (tid > s.committedTid) s.committedTid = tid
          this.updateSafe(s)
        }
      },
      // A trim stores everything applied before its snapshot, journaled or not.
      trimTaken: () => this.sessions.all().filter(s => s.appliedTid > s.committedTid || s.unstored.length > 0).map(s => [s, s.appliedTid] as const),
      trimStored: token => {
        for (const [s, tid] of token as Array<readonly [Session, number]>) {
          if (tid > s.committedTid) s.committedTid = tid
          let n = 0
          while (n < s.unstored.length && s.unstored[n] <= tid) n++
          s.unstored.splice(0, n)
          this.updateSafe(s)
        }
      }
    })
  }

  /** Answer the protocol at this address (unix:PATH or tcp:HOST:PORT) and announce this rank. */
  async listen (address: string): Promise<void> {
    const ps = new ProtocolServer(this.rpc, {
      unlisted: (method, code) => this.log('warn', `${method} answered ${code}, an errno its entry in the protocol table does not list`)
    })
    registerMethods(ps, this)
    registerAdmin(ps, this)
    registerCudele(ps, this)
    registerClasses(ps, this)
    const missing = ps.unanswered()
    if (missing.length > 0) throw new Error(`the server answers no ${missing.join(', ')} of the protocol table`)
    this.rpc.onConnection(conn => {
      conn.on('close', () => this.sessions.detach(conn))
    })
    const addr = await this.rpc.listen(address)
    this.address = addr
    this.awaitOwners(this.sessions.options.timeoutMs)
    await this.mon.propose('mdsmap', () => ({ epoch: 0, ranks: [{ rank: 0, state: 'active', addr: formatAddress(addr), pid: process.pid, bootId: this.bootId }] }), { name: 'mds.0' })
  }

  log (level: LogLevel, message: string): void {
    this.mon.log(level, 'mds.0', message)
  }

  /**
   * A request is done. It is safe once what it journaled has committed, or
   * (unstored: its changes were not journaled) once a trim has stored them;
   * one that changed nothing is safe as soon as everything before it is.
   */
  afterRequest (s: Session, tid: number, journaled: boolean, unstored: boolean): void {
    if (tid <= s.appliedTid) return
    const allCommitted = s.committedTid === s.appliedTid
    s.appliedTid = tid
    if (unstored) s.unstored.push(tid)
    if (!journaled && allCommitted) s.committedTid = tid
    this.updateSafe(s)
  }

  /** Tell the client how far its requests are safe: committed, and stored where not journaled. */
  private updateSafe (s: Session): void {
    this.markSafe(s, s.unstored.length > 0 ? Math.min(s.committedTid, s.unstored[0] - 1) : s.committedTid)
  }

  private markSafe (s: Session, tid: number): void {
    if (tid <= s.safeTid) return
    s.safeTid = tid
    if (s.conn) notify(s.conn, 'safe', [tid])
  }

  /** A new session (after our restart, or the client's eviction) takes back its open files and capabilities. */
  reclaim (s: Session, what: { opens?: Array<[Ino, number]>, caps?: Array<[Ino, number]> } | undefined): void {
    if (!what) return
    for (const [ino, count] of what.opens ?? []) {
      if (!this.mds.statOrNull(ino)) continue
      for (let i = 0; i < count; i++) this.mds.open(ino)
      s.opens.set(ino, (s.opens.get(ino) ?? 0) + count)
    }
    for (const [ino, bits] of what.caps ?? []) {
      // Only what nobody else holds in conflict: the rest the client must ask for again.
      const others = this.caps.holders(ino).filter(([sid]) => sid !== s.id)
      const free = others.every(([, g]) => (bits & CAP_BUFFER) ? g.bits === 0 : (g.bits & CAP_BUFFER) === 0)
      if (free) this.caps.acquire(ino, s.id, bits & (CAP_CACHE | CAP_BUFFER), capPolicyOf(this, ino)).catch(() => {})
    }
  }

  private sessionEnded (s: Session, why: string): void {
    this.caps.dropSession(s.id)
    for (const [ino, count] of s.opens) for (let i = 0; i < count; i++) this.mds.release(ino)
    s.opens.clear()
    this.log(why.startsWith('closed') ? 'info' : 'warn', `session ${s.id} (${s.name}) ended: ${why}`)
    // Another session of the same owner may still be open (a quick reconnect): then nothing changes.
    if (this.sessions.all().some(o => o.owner === s.owner)) return
    this.ownerGone(s.owner)
  }

  /**
   * What an owner that is gone leaves (its subtrees, as their durability
   * says), retried with backoff until it is done: a stored journal that
   * cannot be merged now is merged once the store lets it.
   */
  private ownerGone (owner: string): void {
    retryInBackground(() => this.subtrees.ownerGone(owner, (o, root) => readStoredSegments(this.store, o, root)), {
      health: this.health,
      check: `cudele.owner.${owner}`,
      backoff: new Backoff(OWNER_RETRY_FIRST_MS, OWNER_RETRY_MAX_MS),
      // A client of that name came back: it takes its subtrees up itself.
      stopped: () => this.closed || this.sessions.all().some(o => o.owner === owner)
    })
  }

  /**
   * Claims of decoupled subtrees outlive a restart, sessions do not: an owner
   * gets the session timeout to come back, and one that does not is gone, as
   * if its session had timed out (its subtrees go as their durability says).
   */
  private awaitOwners (timeoutMs: number): void {
    const owners = new Set(this.mds.claims().map(c => c.owner))
    if (owners.size === 0) return
    this.ownersTimer = setTimeout(() => {
      this.ownersTimer = null
      for (const owner of owners) {
        if (this.closed || this.sessions.all().some(s => s.owner === owner)) continue
        this.log('warn', `client ${owner} did not come back within ${timeoutMs} ms of the restart`)
        this.ownerGone(owner)
      }
    }, timeoutMs)
    this.ownersTimer.unref()
  }

  /** Stop serving, flush everything, release the store. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.sessions.close()
    if (this.ownersTimer) clearTimeout(this.ownersTimer)
    this.subtrees.close()
    await this.rpc.close('the server is shutting down')
    this.mon.log('info', 'mds.0', 'server stopped')
    await this.classes.close()
    await this.lua.close()
    await this.mds.close()
    await this.mon.close()
    await this.store.close()
  }
}
