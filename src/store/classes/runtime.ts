// The store-side runtime of object classes (Malacology §4.2): runs methods
// against objects with atomic effects. Installing and following the classmap
// is the catalog's part (catalog.ts).
//
//   const rt = new ClassRuntime(store, monitor, luaPool)
//   await rt.install('counter', source, { name: 'cli' })           // → 1
//   await rt.call('data', 'hits', 'counter.incr', '{"by": 2}')      // → { output: '2', ... }
//
// A call, end to end:
//   1. call() pins the class version current right now: the whole call runs
//      on it, retries included, even if an upgrade lands meanwhile;
//   2. it waits in its object's queue (queues.ts); a batch takes whole runs
//      of calls per object and goes to one Lua worker as one group;
//   3. the worker runs each method against a snapshot plus the chain of the
//      batch's earlier calls on that object, buffering writes (host.ts); the
//      snapshot is the store's own reader in the worker (SQLite), or reads
//      relayed to this thread's ObjectStore (any other backend);
//   4. back here, every write of the batch — and of any other batch that
//      finished meanwhile — goes to the store in ONE submit, each object's
//      first write guarded by the version its snapshot saw (assertVersion,
//      or create-exclusive for an object that was absent);
//   5. the calls resolve once that commit is done. If a guard failed
//      (someone outside the runtime changed an object), the calls run again,
//      each object in a batch of its own, up to maxAttempts; so do calls whose
//      relayed snapshot saw their object change; a Lua error or a blown
//      budget applies nothing and rejects only its own call.
//
// Upgrades: a call that starts after install() resolved runs the new version
// (catalog.ts); calls already started finish on the version they pinned.

import path from 'path'
import { ErrnoName, FsError } from '../../common/errors'
import { LuaCall, LuaError, LuaOutcome, LuaPool, LuaScript } from '../../lua'
import type { MonitorApi, Proposer } from '../../mon/types'
import { MAX_OBJECT_BYTES } from '../index'
import { answerRelayed, RelayRequest } from '../relay'
import { ObjectWrite, StoreError } from '../types'
import { ClassCatalog, ClassInfo, ClassStore, LoadedClass } from './catalog'
import type { ClassCallCtx, ClassCallEffects, ClassHostOptions } from './host'
import { ObjectQueues, Queued } from './queues'

export interface ClassRuntimeOptions {
  /** Commit method effects durably (fsync) before a call resolves. Default false: committed, survives a crash of the process. */
  durable?: boolean
  /** Runs of one call before it fails with ECANCELED because its object kept changing. Default 10. */
  maxAttempts?: number
  /** Calls per batch (one worker message, one store submit). Default 256. */
  maxCallsPerBatch?: number
  /** Calls of one object per batch. Default 64. */
  maxCallsPerObject?: number
  /** Largest method input. Default 4 MiB. */
  maxInputBytes?: number
  /** Time and instruction budget of one method call (memory is the pool's, per sandbox). Default: the pool's. */
  limits?: { timeMs?: number, instructions?: number }
}

export interface ClassCallResult {
  /** What the method returned (a table comes back as JSON; nothing as an empty buffer). */
  output: Buffer
  /** The class version the call ran on. */
  classVersion: number
  /** The object's version after the call's write; undefined when the call wrote nothing. */
  objectVersion?: number | null
  /** Runs it took (1 unless a conflict made it run again). */
  attempts: number
}

/** A batch that ran in a worker, with its outcomes. */
interface Ran {
  batch: PendingCall[]
  outcomes: LuaOutcome[]
}

interface PendingCall extends Queued {
  /** Order of arrival: calls put back after a conflict keep it. */
  seq: number
  pool: string
  object: string
  cls: LoadedClass
  method: string
  input: string | Uint8Array
  durable: boolean
  attempts: number
  resolve: (r: ClassCallResult) => void
  reject: (e: Error) => void
}

const CONFLICTS = new Set(['ECANCELED', 'EEXIST', 'ENOENT'])
/** How many open runtimes use each class host of a pool: the last one to close unregisters it. */
const hostUsers = new WeakMap<LuaPool, Map<string, number>>()
/** Host names of stores that have no directory to name them by. */
const storeNames = new WeakMap<ClassStore, string>()
let storeCount = 0
/** A second batch runs beside the first only with this many calls waiting... */
const PARALLEL_MIN_CALLS = 16
/** ...or once the first has run this long. */
const PARALLEL_AFTER_MS = 2

export type { ClassInfo, ClassStore } from './catalog'

/** Runtimes on the same store share a host: a store directory names it, else the store object does. */
function classHostId (store: ClassStore): string {
  if (store.dir !== undefined) return `cls:${store.dir}`
  let name = storeNames.get(store)
  if (name === undefined) {
    name = `cls:store-${++storeCount}`
    storeNames.set(store, name)
  }
  return name
}

export class ClassRuntime {
  private readonly catalog: ClassCatalog
  private readonly queues: ObjectQueues<PendingCall>
  /** The Lua host its calls run in (shared by the runtimes on one store). */
  readonly hostId: string
  private readonly opts: Required<Omit<ClassRuntimeOptions, 'limits'>>
  private readonly knownPools = new Set<string>()
  /** Batches in a worker now, by id, with when they started (at most the pool's size). */
  private readonly running = new Map<number, number>()
  private batchSeq = 0
  /** Batches in a worker or committing. */
  private active = 0
  /** Batches that ran and wait for the next commit. */
  private readonly toCommit: Ran[] = []
  private committing = false
  private pumpTimer: { immediate: boolean, handle: NodeJS.Immediate | NodeJS.Timeout } | null = null
  private callSeq = 0
  private closing = false
  private idleWaiters: Array<() => void> = []

  constructor (private readonly store: ClassStore, private readonly monitor: MonitorApi, private readonly lua: LuaPool, options: ClassRuntimeOptions = {}) {
    this.opts = {
      durable: options.durable ?? false,
      maxAttempts: options.maxAttempts ?? 10,
      maxCallsPerBatch: options.maxCallsPerBatch ?? 256,
      maxCallsPerObject: options.maxCallsPerObject ?? 64,
      maxInputBytes: options.maxInputBytes ?? 4 * 1024 * 1024
    }
    this.queues = new ObjectQueues(this.opts.maxCallsPerBatch, this.opts.maxCallsPerObject)
    this.hostId = classHostId(store)
    // Runtimes on the same store and pool share one host (one reader per worker).
    let users = hostUsers.get(lua)
    if (users === undefined) { users = new Map(); hostUsers.set(lua, users) }
    if (!lua.hasHost(this.hostId)) {
      const reader = store.snapshotReader?.() ?? null
      const hostOptions: ClassHostOptions = { reader, maxObjectBytes: MAX_OBJECT_BYTES }
      // A store the workers cannot read themselves is read here, for them.
      const answer = reader === null ? async (req: unknown) => await answerRelayed(store, req as RelayRequest) : undefined
      lua.registerHost(this.hostId, { module: path.join(__dirname, 'host.js'), options: hostOptions }, options.limits, answer)
    }
    users.set(this.hostId, (users.get(this.hostId) ?? 0) + 1)
    this.catalog = new ClassCatalog(store, monitor, lua, this.hostId)
  }

  /**
   * Install a new version of a class (see catalog.ts): resolves with the
   * version once every subscriber has it, so calls made from then on use it.
   */
  async install (name: string, source: string, by: Proposer): Promise<number> {
    return await this.catalog.install(name, source, by)
  }

  /** The classes this runtime serves, by name. */
  list (): ClassInfo[] {
    return this.catalog.list()
  }

  // ---- calls ----

  /**
   * Run method ('class.method') against pool/object with input. Resolves once
   * its effects are committed; rejects with a LuaError (EIO with script and
   * line, ETIMEDOUT, ENOMEM, ...) or an FsError (ENOENT: no such class,
   * method or pool; ECANCELED: conflicts beyond maxAttempts), having applied
   * nothing.
   */
  async call (pool: string, object: string, method: string, input: string | Uint8Array = '', opts: { durable?: boolean } = {}): Promise<ClassCallResult> {
    if (this.closing) throw new FsError('ECANCELED', 'the class runtime is closed')
    if (typeof pool !== 'string' || pool === '') throw new FsError('EINVAL', 'a class call needs a pool name')
    if (typeof object !== 'string' || object === '') throw new FsError('EINVAL', 'a class call needs an object name')
    const dot = typeof method === 'string' ? method.indexOf('.') : -1
    if (dot <= 0) throw new FsError('EINVAL', `method ${JSON.stringify(method)} must be written class.method`)
    const className = method.slice(0, dot)
    const fn = method.slice(dot + 1)
    const cls = this.catalog.get(className)
    if (cls === undefined) throw new FsError('ENOENT', `no class ${className} is installed`)
    if (cls.script === null) throw new FsError('EIO', `class ${className} v${cls.entry.version} cannot be used: ${cls.error ?? 'no script'}`)
    if (!cls.methods.has(fn)) throw new FsError('ENOENT', `class ${className} v${cls.entry.version} has no method ${fn} (it has ${cls.entry.methods.join(', ')})`)
    const size = typeof input === 'string' ? Buffer.byteLength(input) : input?.byteLength
    if (typeof size !== 'number') throw new FsError('EINVAL', 'a method input must be a string or bytes')
    if (size > this.opts.maxInputBytes) throw new FsError('E2BIG', `the input is ${size} bytes, more than ${this.opts.maxInputBytes}`)
    if (!this.knownPools.has(pool)) await this.ensurePool(pool)
    return await new Promise<ClassCallResult>((resolve, reject) => {
      this.queues.add({
        key: `${pool}\u0000${object}`, seq: ++this.callSeq, company: 'any', pool, object, cls, method: fn, input,
        durable: opts.durable ?? this.opts.durable, attempts: 0, resolve, reject
      })
      this.schedulePump()
    })
  }

  private async ensurePool (pool: string): Promise<void> {
    for (const p of await this.store.listPools()) this.knownPools.add(p)
    if (!this.knownPools.has(pool)) throw new FsError('ENOENT', `pool ${pool} does not exist`)
  }

  /** Pump after the current burst of calls has queued (they then share a batch). */
  private schedulePump (delayMs = 0): void {
    if (this.pumpTimer !== null) {
      if (delayMs > 0) return
      if (this.pumpTimer.immediate) return
      clearTimeout(this.pumpTimer.handle as NodeJS.Timeout)
    }
    const run = (): void => { this.pumpTimer = null; this.pump() }
    this.pumpTimer = delayMs === 0 ? { immediate: true, handle: setImmediate(run) } : { immediate: false, handle: setTimeout(run, delayMs) }
  }

  /**
   * Start batches. A second worker gets a batch only when enough calls wait
   * or the running batch is slow: splitting a few calls over two batches
   * would double the messages and commits for nothing.
   */
  private pump (): void {
    while (this.queues.hasReady && this.running.size < this.lua.size) {
      if (this.running.size > 0 && this.queues.pending < PARALLEL_MIN_CALLS) {
        const age = Date.now() - Math.min(...this.running.values())
        if (age < PARALLEL_AFTER_MS) { this.schedulePump(PARALLEL_AFTER_MS - age); return }
      }
      const batch = this.queues.take()
      if (batch.length === 0) return
      const id = ++this.batchSeq
      this.running.set(id, Date.now())
      this.active++
      this.runBatch(id, batch).catch(err => {
        // Not reachable by a script's fault; fail the calls rather than leave them hanging.
        for (const c of batch) c.reject(err as Error)
      })
    }
  }

  private async runBatch (id: number, batch: PendingCall[]): Promise<void> {
    const calls: LuaCall[] = batch.map(c => ({
      script: c.cls.script as LuaScript,
      fn: c.method,
      input: c.input,
      ctx: { pool: c.pool, object: c.object } satisfies ClassCallCtx
    }))
    let outcomes: LuaOutcome[]
    try {
      outcomes = await this.lua.runGroup(this.hostId, calls)
    } catch (err) {
      outcomes = calls.map(() => ({ ok: false, error: err as LuaError, rerun: false }))
    } finally {
      this.running.delete(id)
    }
    this.toCommit.push({ batch, outcomes })
    this.flushCommits()
    // Other objects' calls may run while this batch commits.
    this.pump()
  }

  /**
   * Commit what ran: every batch waiting for its commit goes in ONE store
   * submit (the runtime's own group commit: one message to the store's
   * writer for many batches), one submit at a time.
   */
  private flushCommits (): void {
    if (this.committing || this.toCommit.length === 0) return
    this.committing = true
    const ran = this.toCommit.splice(0)
    this.commit(ran).catch(err => {
      for (const r of ran) for (const c of r.batch) c.reject(err as Error)
    }).finally(() => {
      for (const r of ran) this.queues.release(new Set(r.batch.map(c => c.key)))
      this.active -= ran.length
      this.committing = false
      this.flushCommits()
      this.pump()
      if (this.active === 0 && this.queues.pending === 0) for (const w of this.idleWaiters.splice(0)) w()
    })
  }

  private async commit (ran: Ran[]): Promise<void> {
    const writes: ObjectWrite[] = []
    const again: PendingCall[] = []
    const settled: Array<[PendingCall, LuaOutcome]> = []
    let durable = false
    for (const { batch, outcomes } of ran) {
      batch.forEach((c, i) => {
        const o = outcomes[i]
        c.attempts++
        if (!o.ok && o.rerun) { again.push(c); return }
        if ((o.host as ClassCallEffects | undefined)?.stale === true) {
          if (c.attempts >= this.opts.maxAttempts) c.reject(new FsError('ECANCELED', `${c.cls.name}.${c.method} on ${c.pool}/${c.object}: gave up after ${c.attempts} attempts (the object kept changing while it was read)`))
          else again.push(c)
          return
        }
        settled.push([c, o])
        const ops = (o.host as ClassCallEffects | undefined)?.ops
        if (o.ok && ops !== undefined) {
          writes.push({ pool: c.pool, name: c.object, ops })
          durable ||= c.durable
        }
      })
    }
    let failure: StoreError | null = null
    if (writes.length > 0) {
      try {
        await this.store.submit(writes, { durable })
      } catch (err) {
        failure = err instanceof StoreError ? err : new StoreError('EIO', (err as Error).message)
      }
    }
    if (failure === null) {
      for (const [c, o] of settled) this.finish(c, o)
    } else if (CONFLICTS.has(failure.errno) || settled.length > 1) {
      // A conflict: run again, each object in a batch of its own (its chain
      // together). Another failure that may belong to one call of several:
      // run again, each call alone, so only the one at fault fails.
      const conflict = CONFLICTS.has(failure.errno)
      for (const [c] of settled) {
        if (c.attempts >= this.opts.maxAttempts) {
          c.reject(new FsError(conflict ? 'ECANCELED' : failure.errno as ErrnoName,
            `${c.cls.name}.${c.method} on ${c.pool}/${c.object}: gave up after ${c.attempts} attempts (last: ${failure.message})`))
        } else {
          c.company = conflict ? 'object' : 'none'
          again.push(c)
        }
      }
    } else {
      const [c] = settled[0]
      c.reject(new FsError(failure.errno as ErrnoName, `${c.cls.name}.${c.method} on ${c.pool}/${c.object}: ${failure.message}`))
    }
    // Back to the front of their queues, in the order they were called.
    again.sort((a, b) => a.seq - b.seq)
    const keep: PendingCall[] = []
    for (const c of again) {
      if (c.attempts >= this.opts.maxAttempts + 3) c.reject(new FsError('EIO', `${c.cls.name}.${c.method} on ${c.pool}/${c.object}: could not be run after ${c.attempts} attempts`))
      else keep.push(c)
    }
    this.queues.putBack(keep)
  }

  private finish (c: PendingCall, o: LuaOutcome): void {
    const effects = o.host as ClassCallEffects | undefined
    if (effects?.logs !== undefined) {
      for (const line of effects.logs) this.monitor.log('info', `cls.${c.cls.name}`, `${c.pool}/${c.object}: ${line}`)
    }
    if (o.ok) {
      const r: ClassCallResult = { output: o.output, classVersion: c.cls.entry.version, attempts: c.attempts }
      if (effects?.ops !== undefined) r.objectVersion = effects.version ?? null
      c.resolve(r)
    } else {
      c.reject(o.error)
    }
  }

  /**
   * Stop taking calls, let the accepted ones finish, stop following the
   * classmap, and close the workers' read connections to the store. The pool
   * stays open (it is the caller's). Close the runtime before the store.
   */
  async close (): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (this.active > 0 || this.queues.pending > 0) {
      await new Promise<void>(resolve => this.idleWaiters.push(resolve))
    }
    await this.catalog.close()
    const users = hostUsers.get(this.lua)
    const left = (users?.get(this.hostId) ?? 1) - 1
    if (left > 0) users?.set(this.hostId, left)
    else {
      users?.delete(this.hostId)
      this.lua.unregisterHost(this.hostId)
    }
  }
}
