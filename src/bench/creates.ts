// The create workload of `cudele bench cudele`: N library clients, each its
// own process with its own directory under one policy, create M files each;
// then, as the policy's mechanisms say, persist and apply. Phases are
// separated by barriers and timed by the runner from "go" to the last
// client's answer, so a phase's time is the whole job's (the paper's Fig. 6a
// view); each client's own time is kept too (the slowest client: Fig. 6b).

import { type ChildProcess, fork } from 'child_process'
import * as fs from 'fs'
import * as path from 'path'
import { type Composition, CONSISTENCY_MECHANISMS, formatComposition, type Mechanism, parseComposition } from '../cudele/mechanisms'
import { parsePolicy, type Policy } from '../cudele/policy'
import type { Ino } from '../common/types'
import type { ClientReply, ClientRequest, ClientSetup, InterferenceCount, JournalStats, Phase } from './createclient'
import type { Served } from './mounts'
import { cpuSeconds, sleep } from './util'

/** A composition, or a Table I cell as CONSISTENCY/DURABILITY (e.g. weak/local), turned into a policy. */
export function policyFor (mechanism: string, extra: { allocatedInodes: number, interfere?: 'allow' | 'block', syncInterval?: string }): { yaml: string, policy: Policy } {
  let consistency: string
  let durability: string
  const cell = /^\s*(invisible|weak|strong)\s*\/\s*(none|local|global)\s*$/i.exec(mechanism)
  if (cell) {
    consistency = cell[1].toLowerCase()
    durability = cell[2].toLowerCase()
  } else {
    const c = parseComposition(mechanism)
    consistency = formatOrNull(restrict(c, m => CONSISTENCY_MECHANISMS.has(m))) ?? ''
    durability = formatOrNull(restrict(c, m => !CONSISTENCY_MECHANISMS.has(m))) ?? 'none'
    if (consistency === '') throw new Error(`${mechanism}: updates need a path (rpcs or append_client_journal)`)
  }
  const lines = [`consistency: ${consistency}`, `durability: ${durability}`, `allocated_inodes: ${extra.allocatedInodes}`]
  if (extra.interfere) lines.push(`interfere: ${extra.interfere}`)
  if (extra.syncInterval) lines.push(`sync_interval: ${extra.syncInterval}`)
  const yaml = lines.join('\n') + '\n'
  return { yaml, policy: parsePolicy(yaml, `--mechanism ${mechanism}`).policy }
}

/** The part of a composition made of the mechanisms `keep` accepts (null: none). */
function restrict (c: Composition, keep: (m: Mechanism) => boolean): Composition | null {
  if (c.kind === 'mechanism') return keep(c.name) ? c : null
  const parts = c.parts.map(p => restrict(p, keep)).filter((p): p is Composition => p !== null)
  if (parts.length === 0) return null
  return parts.length === 1 ? parts[0] : { kind: c.kind, parts }
}

function formatOrNull (c: Composition | null): string | null {
  return c === null ? null : formatComposition(c)
}

/** The phases a policy's mechanisms make a client go through after its creates. */
export function phasesOf (p: Policy | null): Phase[] {
  const phases: Phase[] = ['create']
  if (p === null) return phases
  if (p.mechanisms.some(m => m === 'stream' || m === 'local_persist' || m === 'global_persist')) phases.push('persist')
  if (p.mechanisms.includes('volatile_apply') || p.mechanisms.includes('nonvolatile_apply')) phases.push('apply')
  return phases
}

export interface CreatesSpec {
  clients: number
  creates: number
  /** policies.yml text for every client's directory (null: the defaults). */
  yaml: string | null
  phases: Phase[]
  method: 'batch' | 'mknod'
  batch?: number
  inflight?: number
  /** Interfering clients, each creating interfereFiles files in every client's directory while they create. */
  interferers?: number
  interfereFiles?: number
  /** Where the clients' local journals go. */
  journalDir: string
  /**
   * Kill the clients after the phases instead of closing them (a close
   * merges a weak subtree: minutes for a large journal nobody measures).
   * The server must be thrown away afterwards.
   */
  abandon?: boolean
}

export interface PhaseResult {
  /** From "go" to the last client's answer. */
  seconds: number
  /** The slowest client's own time. */
  slowestSeconds: number
  /** Each client's own time. */
  clientSeconds: number[]
  /** CPU seconds of the clients together, and of the server, during the phase. */
  clientCpuSeconds: number
  serverCpuSeconds: number | null
}

export interface CreatesResult {
  clients: number
  creates: number
  /** All phases, end to end. */
  seconds: number
  creates_per_s: number
  phases: Partial<Record<Phase, PhaseResult>>
  /** Client journal events and bytes, summed over clients (decoupled subtrees). */
  journal: (JournalStats & { bytesPerEvent: number }) | null
  /** What the interfering clients got, summed (seconds: the slowest's). */
  interference: InterferenceCount | null
}

const SETUP_MS = 120_000
const PHASE_MS = 3600_000

/** A forked client and the replies it has sent that nobody has taken yet. */
class ClientProcess {
  private readonly child: ChildProcess
  private readonly replies: ClientReply[] = []
  private waiter: ((r: ClientReply) => void) | null = null
  private exitError: Error | null = null

  constructor () {
    this.child = fork(path.join(__dirname, 'createclient.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.child.on('message', (m: ClientReply) => {
      if (this.waiter) {
        const w = this.waiter
        this.waiter = null
        w(m)
      } else this.replies.push(m)
    })
    this.child.on('exit', (code, signal) => {
      this.exitError = new Error(`a bench client exited (${code ?? signal})`)
      if (this.waiter) this.waiter({ op: 'error', message: this.exitError.message })
    })
  }

  send (m: ClientRequest): void {
    this.child.send(m)
  }

  /** The next reply, which must be of kind `op`. */
  async next<K extends ClientReply['op']> (op: K, timeoutMs: number): Promise<Extract<ClientReply, { op: K }>> {
    const r = this.replies.shift() ?? await new Promise<ClientReply>((resolve, reject) => {
      if (this.exitError) { reject(this.exitError); return }
      const timer = setTimeout(() => { this.waiter = null; reject(new Error(`a bench client gave no ${op} in ${timeoutMs / 1000} s`)) }, timeoutMs)
      this.waiter = m => { clearTimeout(timer); resolve(m) }
    })
    if (r.op === 'error') throw new Error(`bench client: ${r.message}`)
    if (r.op !== op) throw new Error(`bench client: expected ${op}, got ${r.op}`)
    return r as Extract<ClientReply, { op: K }>
  }

  async request<K extends ClientReply['op']> (m: ClientRequest, op: K, timeoutMs: number): Promise<Extract<ClientReply, { op: K }>> {
    this.send(m)
    return await this.next(op, timeoutMs)
  }

  kill (): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
  }

  async closed (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { this.kill(); resolve() }, 30_000)
      this.child.once('exit', () => { clearTimeout(timer); resolve() })
    })
  }
}

function sumCounts (cs: InterferenceCount[]): InterferenceCount {
  const out: InterferenceCount = { attempted: 0, created: 0, ebusy: 0, failed: 0, firstError: null, seconds: 0 }
  for (const c of cs) {
    out.attempted += c.attempted
    out.created += c.created
    out.ebusy += c.ebusy
    out.failed += c.failed
    out.firstError ??= c.firstError
    out.seconds = Math.max(out.seconds, c.seconds)
  }
  return out
}

let runSeq = 0

/** Run the create workload against a server; every client is gone when this returns. */
export async function runCreates (server: Served, spec: CreatesSpec): Promise<CreatesResult> {
  const run = `r${process.pid}-${runSeq++}`
  fs.mkdirSync(spec.journalDir, { recursive: true })
  const setup = (dir: string | null): ClientSetup => ({
    address: server.address,
    journalDir: path.join(spec.journalDir, dir ?? `${run}-interferer`),
    dir,
    policy: dir === null ? null : spec.yaml,
    creates: spec.creates,
    method: spec.method,
    batch: spec.batch ?? 1000,
    inflight: spec.inflight ?? 16
  })
  const clients = Array.from({ length: spec.clients }, () => new ClientProcess())
  const interferers = Array.from({ length: spec.interfereFiles !== undefined ? spec.interferers ?? 1 : 0 }, () => new ClientProcess())
  const all = [...clients, ...interferers]
  try {
    const inos = (await Promise.all(clients.map((c, i) => c.request({ op: 'setup', setup: setup(`${run}-c${i}`) }, 'ready', SETUP_MS)))).map(r => r.ino as Ino)
    await Promise.all(interferers.map(c => c.request({ op: 'setup', setup: setup(null) }, 'ready', SETUP_MS)))

    const phases: Partial<Record<Phase, PhaseResult>> = {}
    let interference: InterferenceCount | null = null
    for (const phase of spec.phases) {
      const cpu0 = cpuSeconds(server.pid)
      const t0 = performance.now()
      for (const c of clients) c.send({ op: 'phase', phase })
      const interfering = phase === 'create' && interferers.length > 0
        ? Promise.all(interferers.map(c => c.request({ op: 'interfere', dirs: inos, files: spec.interfereFiles as number }, 'interfered', PHASE_MS)))
        : null
      const done = await Promise.all(clients.map(c => c.next('done', PHASE_MS)))
      const seconds = (performance.now() - t0) / 1000
      const cpu1 = cpuSeconds(server.pid)
      if (interfering) interference = sumCounts((await interfering).map(r => r.count))
      const own = done.map(d => d.timing.seconds)
      phases[phase] = {
        seconds,
        slowestSeconds: Math.max(...own),
        clientSeconds: own,
        clientCpuSeconds: done.reduce((s, d) => s + d.timing.cpuSeconds, 0),
        serverCpuSeconds: cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null
      }
      // Let what a phase set going in the background (group commits, trims) settle before the next one.
      if (phase !== spec.phases[spec.phases.length - 1]) await sleep(50)
    }

    const stats = await Promise.all(clients.map(c => c.request({ op: 'stats' }, 'stats', SETUP_MS)))
    let journal: CreatesResult['journal'] = null
    for (const s of stats) {
      if (!s.journal) continue
      journal ??= { events: 0, bytes: 0, merges: 0, mergedEvents: 0, bytesPerEvent: 0 }
      journal.events += s.journal.events
      journal.bytes += s.journal.bytes
      journal.merges += s.journal.merges
      journal.mergedEvents += s.journal.mergedEvents
    }
    if (journal) journal.bytesPerEvent = journal.events > 0 ? journal.bytes / journal.events : NaN
    const seconds = Object.values(phases).reduce((s, p) => s + p.seconds, 0)
    if (!spec.abandon) await Promise.all(all.map(c => c.request({ op: 'close' }, 'closed', SETUP_MS)))
    return {
      clients: spec.clients,
      creates: spec.creates,
      seconds,
      creates_per_s: spec.clients * spec.creates / seconds,
      phases,
      journal,
      interference
    }
  } finally {
    for (const c of all) c.kill()
    await Promise.all(all.map(c => c.closed()))
  }
}
