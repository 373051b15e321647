// The Lua pool: a few worker threads, each with one sandbox, shared by every
// Lua feature. The main thread only queues, batches and watches; Lua runs in
// the workers.
//
//   const pool = createLuaPool({ workers: 2, limits: { timeMs: 200 } })
//   const out = await pool.call({ name: 'f.lua', version: 1, source }, 'double', '21')
//   await pool.close()
//
// Batching: a JS→worker round trip costs ~25 µs and a call in the sandbox a
// few µs, so calls that queue while the workers are busy leave together, up to
// maxCallsPerMessage per message, and results come back in one message.
// Scripts travel once per worker and stay compiled there per (name, version).
//
// The watchdog: every worker publishes, in shared memory, a counter bumped at
// each call's start and that call's time budget. A tick (every 10 ms, only
// while a worker is busy) looks at busy workers. One whose counter has not
// moved for 20 ms gives back the groups of its message it has not started,
// which idle workers then run (so a slow call delays only itself). One whose
// counter has not moved for timeMs + graceMs is terminated and replaced: the
// call it was running fails with ETIMEDOUT; the other calls it ran did
// nothing lasting (hosts buffer their effects) and run again elsewhere.

import os from 'os'
import path from 'path'
import { MessageChannel, MessagePort, Worker } from 'worker_threads'
import { fromWire, LuaError } from './errors'
import { LuaHostSpec } from './host'
import { HostAnswer, serveMainLine } from './mainline'
import { checkScript, failJob, Job, LuaCall, LuaOutcome, LuaScript, scriptKey, toOutcome, wireInput, wireScript } from './jobs'
import { DEFAULT_LIMITS, LuaLimits, resolveLimits } from './limits'
import {
  FromWorker, GROUPS_STOLEN, PROGRESS_CALL, PROGRESS_GROUP, PROGRESS_NEXT_GROUP, PROGRESS_SEQ, PROGRESS_SLOTS,
  PROGRESS_TIME_MS, ToWorker, WireCall, WireGroup, WireHost, WireScript, WorkerConfig
} from './protocol'
import { Fifo } from './queue'
import type { ScriptExports } from './sandbox'

export type { ScriptExports } from './sandbox'
export type { LuaCall, LuaOutcome, LuaScript } from './jobs'

export interface LuaPoolOptions {
  /** Worker threads. Default min(2, cores). */
  workers?: number
  limits?: Partial<LuaLimits>
  /**
   * How long past a call's time budget the watchdog waits before terminating
   * its worker. Default max(250, timeMs): the hook stops any call that runs
   * Lua code on time; the watchdog is for calls stuck in one C function, and
   * must not fire early on a loaded machine where the worker thread waits for a CPU.
   */
  graceMs?: number
  /** Calls sent to a worker in one message at most. Default 256. */
  maxCallsPerMessage?: number
  /** Scripts one worker keeps compiled at most (least recently used go first). Default 64. */
  maxScriptsPerWorker?: number
  /**
   * Run workers this much below the main thread's CPU priority (a nice
   * increment; Linux only). Default 2: with every worker spinning, the
   * thread that serves clients still gets the larger share of a core. More
   * protects it further but makes Lua lose to every other process on a busy
   * machine; 0 keeps the same priority.
   */
  nice?: number
}

export interface LuaPoolStats {
  calls: number
  messages: number
  /** Workers terminated by the watchdog or lost to a crash, and replaced. */
  workersReplaced: number
  /** Calls run again because their message was lost with a worker. */
  reruns: number
  /** Groups taken back from a worker stuck behind a slow call and run by another. */
  stolen: number
}

interface Slot {
  index: number
  worker: Worker
  progress: Int32Array
  ready: boolean
  /** The message being run: its jobs, in order; jobs from stolenFrom on were taken back to run elsewhere. */
  busy: { id: number, jobs: Job[], stolenFrom: number } | null
  hostsSent: Set<string>
  /** The main thread's end of this worker's line for each host that has one. */
  lines: Map<string, MessagePort>
  /** Script key → last message id that used it (the worker's compiled scripts, mirrored). */
  scripts: Map<string, number>
  lastSeq: number
  lastMoveAt: number
  /** Whether the worker keeps the process alive now (ref/unref cost a call into the runtime: change only on a change). */
  reffed: boolean
}

const WORKER_SCRIPT = path.join(__dirname, 'worker.js')
const MAX_RERUNS = 3
const WATCHDOG_TICK_MS = 10
/** A worker that has not started a new call for this long gives its unstarted groups to others. */
const STEAL_AFTER_MS = 20

export function createLuaPool (opts: LuaPoolOptions = {}): LuaPool {
  return new LuaPool(opts)
}

export class LuaPool {
  readonly limits: LuaLimits
  readonly size: number
  private readonly graceMs: number
  private readonly maxCalls: number
  private readonly maxScripts: number
  private readonly nice: number
  private readonly slots: Slot[] = []
  private readonly queue = new Fifo<Job>()
  private readonly hosts = new Map<string, WireHost>()
  private readonly answers = new Map<string, HostAnswer>()
  private nextId = 0
  private checkSeq = 0
  private watchdog: NodeJS.Timeout | null = null
  private closing = false
  private closed: Promise<void> | null = null
  /** A worker that dies before it is ready means the pool cannot work at all. */
  private broken: LuaError | null = null
  private startFailures = 0
  private readyWaiters: Array<{ resolve: () => void, reject: (e: Error) => void }> = []
  private readonly counts: LuaPoolStats = { calls: 0, messages: 0, workersReplaced: 0, reruns: 0, stolen: 0 }

  constructor (opts: LuaPoolOptions = {}) {
    this.limits = resolveLimits(DEFAULT_LIMITS, opts.limits)
    this.size = Math.max(1, Math.floor(opts.workers ?? Math.min(2, os.availableParallelism())))
    this.graceMs = opts.graceMs ?? Math.max(250, this.limits.timeMs)
    this.maxCalls = Math.max(1, opts.maxCallsPerMessage ?? 256)
    this.maxScripts = Math.max(1, opts.maxScriptsPerWorker ?? 64)
    this.nice = Math.max(0, Math.min(19, Math.floor(opts.nice ?? 2)))
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn(i))
  }

  /**
   * Make a host available to scripts (see host.ts). limits override the
   * pool's time and instruction budgets for calls of this host (memory is per
   * sandbox and stays the pool's). answer: what the main thread answers the
   * host's requests with; the host then gets a line to ask (mainline.ts).
   */
  registerHost (id: string, spec: LuaHostSpec, limits?: Partial<Pick<LuaLimits, 'timeMs' | 'instructions'>>, answer?: HostAnswer): void {
    if (this.hosts.has(id)) throw new Error(`Lua host ${id} is already registered`)
    resolveLimits(this.limits, limits)
    this.hosts.set(id, { id, spec, limits })
    if (answer !== undefined) this.answers.set(id, answer)
  }

  /** Resolves once every worker has started (its sandbox is built); calls do not need to wait for this. */
  async ready (): Promise<void> {
    if (this.broken !== null) throw this.broken
    if (this.slots.every(s => s.ready)) return
    await new Promise<void>((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject })
      this.updateRefs()
    })
  }

  /**
   * Forget a host: workers close it (its connections) and drop the scripts
   * bound to it. Calls already queued for it fail; later ones are refused.
   */
  unregisterHost (id: string): void {
    if (!this.hosts.delete(id)) return
    this.answers.delete(id)
    for (const slot of this.slots) {
      slot.lines.get(id)?.close()
      slot.lines.delete(id)
      if (!slot.hostsSent.delete(id)) continue
      for (const key of [...slot.scripts.keys()]) if (key.startsWith(id + '\u0000')) slot.scripts.delete(key)
      slot.worker.postMessage({ t: 'drop', hosts: [id] } satisfies ToWorker)
    }
  }

  hasHost (id: string): boolean {
    return this.hosts.has(id)
  }

  /** Call fn of script with input; resolves with its result (empty when it returned nothing). */
  async call (script: LuaScript, fn: string, input: string | Uint8Array, opts: { ctx?: unknown, host?: string } = {}): Promise<Buffer> {
    const [o] = await this.runGroup(opts.host ?? null, [{ script, fn, input, ctx: opts.ctx }], true)
    if (o.ok) return o.output
    throw o.error
  }

  /**
   * Run calls together, in order, in one worker, inside one host group (so a
   * host may let later calls see what earlier ones buffered). Resolves with
   * one outcome per call; it never rejects for a script's fault.
   * rerunLost: run again, here, calls whose worker was lost under them
   * (otherwise they come back with rerun set, for the caller to decide).
   */
  async runGroup (host: string | null, calls: LuaCall[], rerunLost = false): Promise<LuaOutcome[]> {
    if (host !== null && !this.hosts.has(host)) throw new Error(`Lua host ${host} is not registered`)
    for (const c of calls) checkScript(c.script)
    if (calls.length === 0) return []
    let outcomes = await this.enqueueGroup(host, calls)
    for (let round = 0; rerunLost && round < MAX_RERUNS; round++) {
      const again = outcomes.map((o, i) => (!o.ok && o.rerun) ? i : -1).filter(i => i >= 0)
      if (again.length === 0) break
      this.counts.reruns += again.length
      // Each lost call runs alone: a group's calls may depend on each other only through the host.
      const redo = await Promise.all(again.map(async i => (await this.enqueueGroup(host, [calls[i]]))[0]))
      outcomes = outcomes.slice()
      again.forEach((i, k) => { outcomes[i] = redo[k] })
    }
    return outcomes
  }

  private async enqueueGroup (host: string | null, calls: LuaCall[]): Promise<LuaOutcome[]> {
    return await new Promise<LuaOutcome[]>(resolve => {
      this.enqueue({ t: 'group', host, calls, settle: resolve })
    })
  }

  /** Compile only; rejects with a LuaError (EINVAL, "name:line: ...") on a syntax error. */
  async check (name: string, source: string): Promise<void> {
    const r = await this.checkJob(null, { name, version: `check-${++this.checkSeq}`, source }, false)
    if (r.error !== null) throw r.error
  }

  /**
   * Compile and run the script's top level in a sandbox (with the host's
   * globals), then forget it; resolves with the functions it exports.
   */
  async inspect (script: LuaScript, host: string | null = null): Promise<ScriptExports> {
    if (host !== null && !this.hosts.has(host)) throw new Error(`Lua host ${host} is not registered`)
    const r = await this.checkJob(host, { ...script, version: `inspect-${++this.checkSeq}-${script.version}` }, true)
    if (r.error !== null) throw r.error
    return r.exports as ScriptExports
  }

  private async checkJob (host: string | null, script: LuaScript, run: boolean): Promise<{ error: LuaError | null, exports: ScriptExports | null }> {
    checkScript(script)
    return await new Promise(resolve => this.enqueue({ t: 'check', host, script, run, settle: resolve }))
  }

  stats (): LuaPoolStats {
    return { ...this.counts }
  }

  /** Let running messages finish (the watchdog bounds them), fail queued work, stop the workers. */
  async close (): Promise<void> {
    this.closed ??= this.shutDown()
    return await this.closed
  }

  private async shutDown (): Promise<void> {
    this.closing = true
    const err = new LuaError('closed', 'the Lua pool was closed before the call ran')
    for (const job of this.queue.drain()) failJob(job, err, false)
    while (this.slots.some(s => s.busy !== null)) {
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    if (this.watchdog !== null) clearInterval(this.watchdog)
    this.watchdog = null
    await Promise.all(this.slots.map(async s => await s.worker.terminate()))
    for (const s of this.slots) this.closeLines(s)
  }

  // ---- workers ----

  private spawn (index: number): Slot {
    const progress = new SharedArrayBuffer(PROGRESS_SLOTS * 4)
    const config: WorkerConfig = { limits: this.limits, progress, nice: this.nice }
    const worker = new Worker(WORKER_SCRIPT, {
      workerData: config,
      // The wasm heap lives outside the JS heap; this bounds what JS itself can pile up.
      resourceLimits: { maxOldGenerationSizeMb: 256 }
    })
    const slot: Slot = {
      index,
      worker,
      progress: new Int32Array(progress),
      ready: false,
      busy: null,
      hostsSent: new Set(),
      lines: new Map(),
      scripts: new Map(),
      lastSeq: 0,
      lastMoveAt: 0,
      reffed: false
    }
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m))
    worker.on('error', err => this.lost(slot, `the Lua worker failed: ${err.message}`, 'crashed'))
    worker.on('exit', code => this.lost(slot, `the Lua worker exited (code ${code})`, 'crashed'))
    worker.unref()
    return slot
  }

  private onMessage (slot: Slot, m: FromWorker): void {
    if (this.slots[slot.index] !== slot) return
    switch (m.t) {
      case 'ready':
        slot.ready = true
        this.startFailures = 0
        if (this.slots.every(s => s.ready)) for (const w of this.readyWaiters.splice(0)) w.resolve()
        this.dispatch()
        this.updateRefs()
        return
      case 'done': {
        const busy = slot.busy
        if (busy === null || busy.id !== m.id) return
        this.idle(slot)
        busy.jobs.forEach((job, g) => {
          if (job.t === 'group' && g < busy.stolenFrom) job.settle(m.outcomes[g].map(toOutcome))
        })
        this.dispatch()
        return
      }
      case 'checked': {
        const busy = slot.busy
        if (busy === null || busy.id !== m.id) return
        this.idle(slot)
        const job = busy.jobs[0]
        if (job.t === 'check') job.settle({ error: m.error === null ? null : fromWire(m.error), exports: m.exports })
        this.dispatch()
      }
    }
  }

  private idle (slot: Slot): void {
    slot.busy = null
    this.updateRefs()
  }

  /**
   * A worker keeps the process alive while it runs a message, and starting
   * workers do while work waits for them; idle workers do not.
   */
  private updateRefs (): void {
    const waiting = this.queue.length > 0 || this.readyWaiters.length > 0
    for (const slot of this.slots) {
      const want = slot.busy !== null || (waiting && !slot.ready)
      if (want === slot.reffed) continue
      slot.reffed = want
      if (want) slot.worker.ref()
      else slot.worker.unref()
    }
  }

  /** A worker is gone (crashed, or terminated by the watchdog): fail or rerun its message, replace it. */
  private lost (slot: Slot, why: string, kind: 'crashed' | 'timeout'): void {
    if (this.slots[slot.index] !== slot) return
    const busy = slot.busy
    slot.busy = null
    this.closeLines(slot)
    if (!slot.ready && kind === 'crashed' && !this.closing) {
      // It never started: a second try, then give up rather than spin.
      if (++this.startFailures >= 3) {
        this.broken = new LuaError('crashed', `the Lua workers cannot start: ${why}`)
        for (const job of this.queue.drain()) failJob(job, this.broken, false)
        for (const w of this.readyWaiters.splice(0)) w.reject(this.broken)
      }
    }
    if (busy !== null) {
      // Groups it never started go back to the queue as they are; the ones it ran are lost.
      this.steal(slot)
      const g = Atomics.load(slot.progress, PROGRESS_GROUP)
      const c = Atomics.load(slot.progress, PROGRESS_CALL)
      busy.jobs.slice(0, busy.stolenFrom).forEach((job, gi) => {
        if (job.t === 'check') {
          job.settle({ error: new LuaError(kind, `${job.script.name}: ${why}`, { script: job.script.name }), exports: null })
          return
        }
        job.settle(job.calls.map((call, ci) => {
          if (gi === g && ci === c) return { ok: false, error: new LuaError(kind, `${call.script.name}: ${why}`, { script: call.script.name }), rerun: false }
          return { ok: false, error: new LuaError('crashed', `${call.script.name}: lost with its worker (${why})`), rerun: true }
        }))
      })
    }
    if (this.closing) return
    this.counts.workersReplaced++
    this.slots[slot.index] = this.spawn(slot.index)
    this.dispatch()
    this.updateRefs()
  }

  private closeLines (slot: Slot): void {
    for (const port of slot.lines.values()) port.close()
    slot.lines.clear()
  }

  /** Take back the groups of slot's message that its worker has not claimed; returns how many. */
  private steal (slot: Slot): number {
    const busy = slot.busy
    if (busy === null || busy.stolenFrom === 0) return 0
    const first = Atomics.exchange(slot.progress, PROGRESS_NEXT_GROUP, GROUPS_STOLEN)
    if (first >= busy.stolenFrom) return 0
    const stolen = busy.jobs.slice(first, busy.stolenFrom)
    busy.stolenFrom = first
    for (let i = stolen.length - 1; i >= 0; i--) this.queue.unshift(stolen[i])
    this.counts.stolen += stolen.length
    return stolen.length
  }

  private enqueue (job: Job): void {
    if (this.closing) return failJob(job, new LuaError('closed', 'the Lua pool is closed'), false)
    if (this.broken !== null) return failJob(job, this.broken, false)
    this.queue.push(job)
    this.dispatch()
    this.updateRefs()
  }

  private dispatch (): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return
      if (!slot.ready || slot.busy !== null) continue
      this.send(slot)
    }
  }

  private send (slot: Slot): void {
    // Work for a host unregistered since it was queued cannot run.
    for (let job = this.queue.peek(); job !== undefined && job.host !== null && !this.hosts.has(job.host); job = this.queue.peek()) {
      this.queue.shift()
      failJob(job, new LuaError('closed', `Lua host ${job.host} was unregistered before the call ran`), false)
    }
    if (this.queue.length === 0) return
    const id = ++this.nextId
    const hosts: WireHost[] = []
    const transfer: MessagePort[] = []
    const addHost = (h: string | null): void => {
      if (h === null || slot.hostsSent.has(h)) return
      slot.hostsSent.add(h)
      const wire = this.hosts.get(h) as WireHost
      const answer = this.answers.get(h)
      if (answer === undefined) { hosts.push(wire); return }
      const { port1, port2 } = new MessageChannel()
      const signal = new SharedArrayBuffer(4)
      serveMainLine(port1, signal, answer)
      slot.lines.set(h, port1)
      hosts.push({ ...wire, line: { port: port2, signal } })
      transfer.push(port2)
    }
    const first = this.queue.peek() as Job
    let msg: ToWorker
    let jobs: Job[]
    if (first.t === 'check') {
      this.queue.shift()
      jobs = [first]
      addHost(first.host)
      msg = { t: 'check', id, hosts, script: wireScript(first.script, first.host), run: first.run }
    } else {
      jobs = []
      let calls = 0
      while (this.queue.length > 0 && this.queue.peek()?.t === 'group') {
        const job = this.queue.peek() as Extract<Job, { t: 'group' }>
        if (job.host !== null && !this.hosts.has(job.host)) break
        if (jobs.length > 0 && calls + job.calls.length > this.maxCalls) break
        this.queue.shift()
        jobs.push(job)
        calls += job.calls.length
      }
      const scripts: WireScript[] = []
      const groups: WireGroup[] = (jobs as Array<Extract<Job, { t: 'group' }>>).map(job => {
        addHost(job.host)
        return {
          host: job.host,
          calls: job.calls.map((call): WireCall => {
            const key = scriptKey(call.script, job.host)
            if (!slot.scripts.has(key)) scripts.push(wireScript(call.script, job.host))
            slot.scripts.set(key, id)
            return { key, fn: call.fn, input: wireInput(call.input), ctx: call.ctx }
          })
        }
      })
      const forget: string[] = []
      if (slot.scripts.size > this.maxScripts) {
        // Map order is insertion order; re-inserting on use would cost a delete per call, so evict by last use.
        const byAge = [...slot.scripts.entries()].filter(([, used]) => used !== id).sort((a, b) => a[1] - b[1])
        for (const [key] of byAge.slice(0, slot.scripts.size - this.maxScripts)) {
          slot.scripts.delete(key)
          forget.push(key)
        }
      }
      this.counts.calls += calls
      msg = { t: 'run', id, hosts, scripts, forget, groups }
    }
    this.counts.messages++
    slot.busy = { id, jobs, stolenFrom: jobs.length }
    Atomics.store(slot.progress, PROGRESS_NEXT_GROUP, msg.t === 'run' ? 0 : GROUPS_STOLEN)
    slot.lastSeq = Atomics.load(slot.progress, PROGRESS_SEQ)
    slot.lastMoveAt = Date.now()
    if (!slot.reffed) { slot.reffed = true; slot.worker.ref() }
    slot.worker.postMessage(msg, transfer)
    this.armWatchdog()
  }

  private armWatchdog (): void {
    if (this.watchdog !== null) return
    this.watchdog = setInterval(() => this.tick(), WATCHDOG_TICK_MS)
    this.watchdog.unref()
  }

  private tick (): void {
    const now = Date.now()
    let anyBusy = false
    for (const slot of this.slots) {
      if (slot.busy === null) continue
      anyBusy = true
      const seq = Atomics.load(slot.progress, PROGRESS_SEQ)
      if (seq !== slot.lastSeq) {
        slot.lastSeq = seq
        slot.lastMoveAt = now
        continue
      }
      const stillMs = now - slot.lastMoveAt
      // Stuck behind a slow call: let idle workers have what it has not started.
      if (stillMs >= STEAL_AFTER_MS && this.steal(slot) > 0) this.dispatch()
      const budget = Atomics.load(slot.progress, PROGRESS_TIME_MS) || this.limits.timeMs
      if (stillMs > budget + this.graceMs) {
        const why = `did not return within its time budget of ${budget} ms (+${this.graceMs} ms grace); its worker was terminated`
        const worker = slot.worker
        this.lost(slot, why, 'timeout')
        worker.terminate().catch(() => {})
      }
    }
    if (!anyBusy && this.watchdog !== null) {
      clearInterval(this.watchdog)
      this.watchdog = null
    }
  }
}
