// `cudele bench cudele`: the paper's §V (Fig. 5, Fig. 6a/b/c, Table I) on
// this implementation, with library clients of a `cudele serve` started for
// each measurement (a fresh store every time), and an untar through client
// mounts of such a server.
//
//   cudele bench cudele --clients N --creates M --mechanism COMPOSITION --json
//
// is one measurement (one JSON object); without --mechanism it makes the
// figures (--figure, default all), and with --svg DIR draws them there.

import * as path from 'path'
import type { BenchContext } from './context'
import type { Phase } from './createclient'
import { type CreatesResult, phasesOf, policyFor, runCreates } from './creates'
import { fig5, fig6a, fig6b, fig6c, type FigureOut } from './figures'
import { drawFigures } from './plots'
import { type CaseReport, Samples } from './report'
import { untarSubtrees } from './untarsubtrees'
import { fmt, log, machine } from './util'

/** Names per createMany call of a decoupled client. */
export const BATCH = 1000
/** mknod requests each RPC client keeps in flight. */
export const INFLIGHT = 16
/**
 * The server's session timeout. With the default (30 s), merging 20 client
 * journals of 100,000 events that arrive together keeps the server from
 * hearing the clients' heartbeats for longer than that: it evicts them, and
 * their merges fail with ESTALE (docs/BENCHMARKS.md, Fig. 6a).
 */
const SESSION_TIMEOUT_MS = 600_000

export interface Measurement extends CreatesResult {
  mechanism: string
  policy: string
}

export interface MeasureOptions {
  clients: number
  creates: number
  mechanism: string
  /** batch: createMany; mknod: one create at a time (default: batch when decoupled). */
  method?: 'batch' | 'mknod'
  interfere?: 'allow' | 'block'
  syncInterval?: string
  interferers?: number
  interfereFiles?: number
  /** mknod requests each client keeps in flight (default INFLIGHT). */
  inflight?: number
  /** Only these phases (default: those the mechanisms make), and kill the clients afterwards instead of closing them. */
  phases?: Phase[]
  /** Spare inode numbers over the creates (the interfering client's, a claim's own file). */
  allocatedInodes?: number
}

/** One measurement on a fresh server. */
export async function measure (ctx: BenchContext, o: MeasureOptions): Promise<Measurement> {
  const { yaml, policy } = policyFor(o.mechanism, { allocatedInodes: o.allocatedInodes ?? o.creates + 10, interfere: o.interfere, syncInterval: o.syncInterval })
  const decoupled = policy.mechanisms.includes('append_client_journal')
  return await ctx.withServer('cudele-serve', async (server, slot) => {
    const r = await runCreates(server, {
      clients: o.clients,
      creates: o.creates,
      yaml,
      phases: o.phases ?? phasesOf(policy),
      abandon: o.phases !== undefined,
      method: o.method ?? (decoupled ? 'batch' : 'mknod'),
      batch: BATCH,
      inflight: o.inflight ?? INFLIGHT,
      interferers: o.interferers,
      interfereFiles: o.interfereFiles,
      journalDir: path.join(slot.root, 'journals')
    })
    return { mechanism: o.mechanism, policy: yaml, ...r }
  }, ['--session-timeout', String(SESSION_TIMEOUT_MS)])
}

export function describeMeasurement (m: Measurement): string {
  const phases = Object.entries(m.phases).map(([p, r]) => `${p} ${fmt(r.seconds)} s`).join(', ')
  const j = m.journal ? `; journal ${m.journal.events} events, ${fmt(m.journal.bytesPerEvent)} bytes/event` : ''
  return `${m.mechanism}: ${m.clients} × ${m.creates} creates in ${fmt(m.seconds)} s = ${fmt(m.creates_per_s)} creates/s (${phases})${j}`
}

/** `--mechanism`: one measurement, as one JSON-able object. */
export async function cudeleOne (ctx: BenchContext): Promise<Measurement> {
  const o = ctx.opts
  const m = await measure(ctx, { clients: o.clients ?? 1, creates: o.creates ?? 100_000, mechanism: o.mechanism as string, inflight: o.inflight })
  log(describeMeasurement(m))
  return m
}

export const FIGURES = ['fig5', 'fig6a', 'fig6b', 'fig6c', 'untar']

const MAKERS: Record<string, (ctx: BenchContext, S: Samples) => Promise<FigureOut>> = { fig5, fig6a, fig6b, fig6c, untar: untarSubtrees }

/** The figures (all, or --figure ...), as one report; with --svg DIR, drawn there too. */
export async function cudeleCase (ctx: BenchContext): Promise<CaseReport> {
  const S = new Samples()
  const out: CaseReport = {
    case: 'cudele',
    runs: ctx.opts.runs,
    params: {},
    filesystems: {
      'cudele serve': 'cudele serve --store DIR --listen unix:SOCK, a fresh store for every measurement',
      'library clients': 'one process each (src/bench/createclient.ts), connected with the cudele library',
      'client mounts': 'cudele mount MNT --connect unix:SOCK (untar)',
      tmpfs: 'the kernel\'s tmpfs (untar)'
    },
    samples: S.data,
    medians: {},
    tables: [],
    targets: [],
    notes: [],
    extra: {}
  }
  for (const name of ctx.opts.figures ?? FIGURES) {
    const t0 = performance.now()
    log(`cudele: ${name}`)
    const f = await MAKERS[name](ctx, S)
    Object.assign(out.params, f.params)
    out.tables.push(...f.tables)
    out.targets.push(...f.targets)
    out.notes.push(...f.notes)
    log(`cudele: ${name} took ${fmt((performance.now() - t0) / 1000)} s`)
  }
  out.medians = S.medians()
  if (ctx.opts.svgDir) {
    for (const f of drawFigures(out, ctx.opts.svgDir, machine(ctx.work).commit)) log(`wrote ${f}`)
  }
  return out
}
