// A Lua worker thread: one sandbox, the hosts its scripts use, and a loop
// that runs the pool's messages one at a time. Lua never runs on the main
// thread: a script that spins here blocks only this worker, and the pool's
// watchdog terminates it if it outlives its budget.

import fs from 'fs'
import os from 'os'
import { parentPort, workerData } from 'worker_threads'
import { WireError } from './errors'
import { CreateLuaHost, LuaHost } from './host'
import { LuaLimits, resolveLimits } from './limits'
import { MainLine } from './mainline'
import {
  FromWorker, PROGRESS_CALL, PROGRESS_GROUP, PROGRESS_NEXT_GROUP, PROGRESS_SEQ, PROGRESS_TIME_MS, ToWorker, WireHost, WireOutcome, WireScript,
  WorkerConfig
} from './protocol'
import { Sandbox } from './sandbox'

const config = workerData as WorkerConfig
const progress = new Int32Array(config.progress)
const port = parentPort as NonNullable<typeof parentPort>

interface HostState {
  wire: WireHost
  host: LuaHost | null
  /** The host's line to the main thread, if it has one. */
  line: MainLine | null
  /** Why the host could not be built (its calls fail with this). */
  failure: string | null
  limits: LuaLimits
}

const hosts = new Map<string, HostState>()
const scripts = new Map<string, WireScript>()
let sandbox: Sandbox

/** A fresh sandbox with every host and script this worker knows (after a runtime fault). */
async function rebuild (): Promise<void> {
  sandbox?.close()
  sandbox = await Sandbox.create(config.limits)
  for (const h of hosts.values()) registerInSandbox(h)
  for (const s of scripts.values()) sandbox.defineScript(s.key, s.chunkname, s.source, s.host)
}

function registerInSandbox (h: HostState): void {
  if (h.host === null) return
  try {
    sandbox.registerHost(h.wire.id, h.host)
  } catch (err) {
    h.failure = (err as Error).message
  }
}

function addHosts (list: WireHost[]): void {
  for (const wire of list) {
    const line = wire.line === undefined ? null : new MainLine(wire.line.port, wire.line.signal)
    const h: HostState = { wire, host: null, line, failure: null, limits: config.limits }
    try {
      h.limits = resolveLimits(config.limits, wire.limits)
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const mod = require(wire.spec.module) as { createLuaHost?: CreateLuaHost }
      if (typeof mod.createLuaHost !== 'function') throw new Error(`${wire.spec.module} does not export createLuaHost`)
      h.host = mod.createLuaHost(wire.spec.options, line)
    } catch (err) {
      h.failure = `host ${wire.id}: ${(err as Error).message}`
    }
    hosts.set(wire.id, h)
    registerInSandbox(h)
  }
}

function addScripts (list: WireScript[], forget: string[]): void {
  for (const key of forget) {
    scripts.delete(key)
    sandbox.forgetScript(key)
  }
  for (const s of list) {
    scripts.set(s.key, s)
    sandbox.defineScript(s.key, s.chunkname, s.source, s.host)
  }
}

function crashed (reason: string): WireError {
  return { kind: 'crashed', reason }
}

async function run (msg: Extract<ToWorker, { t: 'run' }>): Promise<WireOutcome[][]> {
  addHosts(msg.hosts)
  addScripts(msg.scripts, msg.forget)
  const all: WireOutcome[][] = []
  for (let g = 0; g < msg.groups.length; g++) {
    if (Atomics.compareExchange(progress, PROGRESS_NEXT_GROUP, g, g + 1) !== g) {
      // The pool took the rest to run elsewhere.
      while (all.length < msg.groups.length) all.push([])
      break
    }
    const group = msg.groups[g]
    const state = group.host === null ? null : hosts.get(group.host) ?? null
    const outcomes: WireOutcome[] = []
    all.push(outcomes)
    if (group.host !== null && (state === null || state.host === null || state.failure !== null)) {
      const why = state?.failure ?? `host ${group.host} was never sent to this worker`
      for (let i = 0; i < group.calls.length; i++) outcomes.push({ ok: false, error: crashed(why) })
      continue
    }
    const host = state?.host ?? null
    const limits = state?.limits ?? config.limits
    let groupOpen = false
    try {
      host?.beginGroup?.()
      groupOpen = true
      for (let c = 0; c < group.calls.length; c++) {
        const call = group.calls[c]
        Atomics.store(progress, PROGRESS_GROUP, g)
        Atomics.store(progress, PROGRESS_CALL, c)
        Atomics.store(progress, PROGRESS_TIME_MS, limits.timeMs)
        Atomics.add(progress, PROGRESS_SEQ, 1)
        if (sandbox.dead) await rebuild()
        sandbox.setLimits(limits)
        if (host?.beginCall !== undefined && !host.beginCall(call.ctx)) {
          outcomes.push({ ok: false, error: crashed('deferred by the host'), rerun: true })
          continue
        }
        const input = typeof call.input === 'string' ? Buffer.from(call.input, 'utf8') : call.input
        const r = sandbox.call(call.key, call.fn, input)
        const extra = host?.endCall?.(r.ok)
        outcomes.push(r.ok ? { ok: true, output: r.value, host: extra } : { ok: false, error: r.error, host: extra })
        sandbox.relieveMemory()
      }
    } catch (err) {
      // A host failed (e.g. its store connection): the rest of the group cannot run.
      const why = crashed(`host ${group.host ?? ''}: ${(err as Error).message}`)
      while (outcomes.length < group.calls.length) outcomes.push({ ok: false, error: why })
    } finally {
      if (groupOpen) {
        try { host?.endGroup?.() } catch {}
      }
    }
  }
  return all
}

async function check (msg: Extract<ToWorker, { t: 'check' }>): Promise<FromWorker> {
  addHosts(msg.hosts)
  const s = msg.script
  const state = s.host === null ? null : hosts.get(s.host)
  const limits = state?.limits ?? config.limits
  Atomics.store(progress, PROGRESS_TIME_MS, limits.timeMs)
  Atomics.add(progress, PROGRESS_SEQ, 1)
  if (sandbox.dead) await rebuild()
  sandbox.setLimits(limits)
  if (!msg.run) {
    const r = sandbox.compile(s.chunkname, s.source)
    return { t: 'checked', id: msg.id, error: r.ok ? null : r.error, exports: null }
  }
  if (state !== null && state !== undefined && state.failure !== null) {
    return { t: 'checked', id: msg.id, error: crashed(state.failure), exports: null }
  }
  sandbox.defineScript(s.key, s.chunkname, s.source, s.host)
  try {
    const r = sandbox.load(s.key)
    return { t: 'checked', id: msg.id, error: r.ok ? null : r.error, exports: r.ok ? r.value : null }
  } finally {
    sandbox.forgetScript(s.key)
    sandbox.relieveMemory()
  }
}

function drop (ids: string[]): void {
  for (const id of ids) {
    const h = hosts.get(id)
    hosts.delete(id)
    try { h?.host?.close?.() } catch {}
    h?.line?.close()
    for (const s of [...scripts.values()]) {
      if (s.host === id) { scripts.delete(s.key); sandbox.forgetScript(s.key) }
    }
  }
}

async function handle (msg: ToWorker): Promise<void> {
  if (msg.t === 'drop') return drop(msg.hosts)
  Atomics.add(progress, PROGRESS_SEQ, 1)
  sandbox.renewArena()
  let reply: FromWorker
  if (msg.t === 'run') reply = { t: 'done', id: msg.id, outcomes: await run(msg) }
  else reply = await check(msg)
  port.postMessage(reply)
}

let chain: Promise<void> = Promise.resolve()

/**
 * Run this thread below the main thread's priority (Linux: setpriority on the
 * thread id), so scripts spinning in every worker cannot starve the thread
 * that serves clients of CPU.
 */
function lowerPriority (): void {
  if (config.nice === undefined || config.nice <= 0) return
  try {
    const tid = Number(/task\/(\d+)$/.exec(fs.readlinkSync('/proc/thread-self'))?.[1])
    if (Number.isInteger(tid) && tid > 0) os.setPriority(tid, Math.min(19, os.getPriority(tid) + config.nice))
  } catch {
    // Not Linux, or not allowed: run at normal priority.
  }
}

async function main (): Promise<void> {
  lowerPriority()
  sandbox = await Sandbox.create(config.limits)
  port.on('message', (msg: ToWorker) => {
    chain = chain.then(async () => await handle(msg)).catch(err => {
      // A bug of ours, not a script's: let the pool see the worker die and replace it.
      setImmediate(() => { throw err })
    })
  })
  port.postMessage({ t: 'ready' } satisfies FromWorker)
}

main().catch(err => {
  setImmediate(() => { throw err })
})
