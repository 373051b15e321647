// The measurements behind the paper's Fig. 5 and Fig. 6a/b/c, with library
// clients of a fresh `cudele serve` per point (see cudele.ts). Every figure
// runs --runs times; each normalized value is taken within one run (against
// that run's baseline) and the report gives medians of those.

import type { BenchContext } from './context'
import { measure, type Measurement } from './cudele'
import { type Samples, type Table, type Target, target } from './report'
import { fmt, log } from './util'

export interface FigureOut {
  params: Record<string, unknown>
  tables: Table[]
  targets: Target[]
  notes: string[]
}

/** Files each client creates, unless --creates says otherwise (the paper's 100,000). */
const CREATES = 100_000

// ---- Fig. 5: the cost of each mechanism and of each cell of Table I ----

/** Table I, with the systems the paper (and policies/) put in each cell. */
export const CELLS: Array<{ cell: string, system: string }> = [
  { cell: 'invisible/none', system: '' },
  { cell: 'invisible/local', system: 'DeltaFS' },
  { cell: 'invisible/global', system: '' },
  { cell: 'weak/none', system: '' },
  { cell: 'weak/local', system: 'BatchFS' },
  { cell: 'weak/global', system: 'HDFS-like' },
  { cell: 'strong/none', system: 'RAMDisk' },
  { cell: 'strong/local', system: '' },
  { cell: 'strong/global', system: 'POSIX, CephFS' }
]

const NONVOLATILE = 'append_client_journal+nonvolatile_apply'

/**
 * What each mechanism costs, from the measured phases of one run: its own
 * phase where it has one, else the difference its composition makes.
 */
export const MECHANISM_COST: Array<{ name: string, how: string, seconds: (m: Record<string, Measurement>) => number }> = [
  { name: 'rpcs', how: 'strong/none (rpcs): creates', seconds: m => m['strong/none'].phases.create!.seconds },
  { name: 'append_client_journal', how: 'invisible/none (append_client_journal): creates', seconds: m => m['invisible/none'].phases.create!.seconds },
  { name: 'volatile_apply', how: 'weak/none: the merge', seconds: m => m['weak/none'].phases.apply!.seconds },
  { name: 'nonvolatile_apply', how: `${NONVOLATILE}: the merge`, seconds: m => m[NONVOLATILE].phases.apply!.seconds },
  { name: 'stream', how: 'strong/global (rpcs+stream) − strong/none (rpcs), all phases', seconds: m => m['strong/global'].seconds - m['strong/none'].seconds },
  { name: 'local_persist', how: 'invisible/local − invisible/none, all phases', seconds: m => m['invisible/local'].seconds - m['invisible/none'].seconds },
  { name: 'global_persist', how: 'invisible/global − invisible/none, all phases', seconds: m => m['invisible/global'].seconds - m['invisible/none'].seconds }
]

export async function fig5 (ctx: BenchContext, S: Samples): Promise<FigureOut> {
  const creates = ctx.opts.creates ?? CREATES
  const runs = ctx.opts.runs
  const configs = [...CELLS.map(c => c.cell), NONVOLATILE]
  let bytesPerEvent = NaN
  for (let r = 1; r <= runs; r++) {
    const m: Record<string, Measurement> = {}
    for (const c of configs) {
      m[c] = await measure(ctx, { clients: 1, creates, mechanism: c })
      for (const [phase, p] of Object.entries(m[c].phases)) S.add(`fig5/${c}/${phase}`, p.seconds)
      S.add(`fig5/${c}/total`, m[c].seconds)
    }
    const base = MECHANISM_COST[1].seconds(m)
    for (const mc of MECHANISM_COST) S.add(`fig5/mechanism/${mc.name}`, mc.seconds(m) / base)
    for (const c of CELLS) S.add(`fig5/cell/${c.cell}`, m[c.cell].seconds / base)
    S.add('fig5/append creates/s', creates / base)
    const j = m['invisible/none'].journal
    if (j) S.add('fig5/journal bytes per event', j.bytesPerEvent)
    bytesPerEvent = S.median('fig5/journal bytes per event')
    log(`fig5 run ${r}/${runs}: append_client_journal ${fmt(creates / base)} creates/s; ${MECHANISM_COST.map(mc => `${mc.name} ${fmt(mc.seconds(m) / base)}×`).join(', ')}`)
  }
  const phaseCell = (c: string, p: string): string => S.has(`fig5/${c}/${p}`) ? fmt(S.median(`fig5/${c}/${p}`)) : '-'
  return {
    params: { fig5_creates: creates },
    tables: [
      {
        title: `Fig. 5: cost of each mechanism, 1 client, ${creates} creates, ÷ append_client_journal's time in the same run`,
        columns: ['mechanism', '× append_client_journal', 'measured as'],
        rows: MECHANISM_COST.map(mc => [mc.name, fmt(S.median(`fig5/mechanism/${mc.name}`)), mc.how])
      },
      {
        title: `Fig. 5: each cell of Table I end to end (creates, persist, merge), ÷ append_client_journal's time`,
        columns: ['cell', 'system', '× append_client_journal', 'create s', 'persist s', 'merge s', 'creates/s end to end'],
        rows: [...CELLS, { cell: NONVOLATILE, system: '' }].map(c => [
          c.cell, c.system, S.has(`fig5/cell/${c.cell}`) ? fmt(S.median(`fig5/cell/${c.cell}`)) : '-',
          phaseCell(c.cell, 'create'), phaseCell(c.cell, 'persist'), phaseCell(c.cell, 'apply'),
          fmt(creates / S.median(`fig5/${c.cell}/total`))
        ])
      }
    ],
    targets: [
      target('append_client_journal, creates/s of one library client', S.median('fig5/append creates/s'), '>=', 1_000_000),
      target('bytes per client journal event (create)', bytesPerEvent, '<=', 100)
    ],
    notes: [
      'Fig. 5: each cell is set as a policy (consistency/durability) on the client\'s directory; create = createMany in batches of 1,000 (decoupled) or one mknod request per file (rpcs, 16 in flight); persist = everything as durable as the policy says (fsync of the local journal, journal objects in the store, or the MDS journal committed); merge = cudele merge'
    ]
  }
}

// ---- Fig. 6a: 1-20 clients, RPCs vs decoupled create vs create+merge ----

export const FIG6A_MODES: Array<{ key: string, name: string, mechanism: string, inflight?: number, rpc: boolean }> = [
  { key: 'rpcs', name: 'RPCs', mechanism: 'strong/global', inflight: 1, rpc: true },
  { key: 'rpcs16', name: 'RPCs, 16 in flight', mechanism: 'strong/global', inflight: 16, rpc: true },
  { key: 'create', name: 'decoupled: create', mechanism: 'invisible/local', rpc: false },
  { key: 'merge', name: 'decoupled: create+merge', mechanism: 'weak/local', rpc: false }
]
export const FIG6A_CLIENTS = [1, 2, 5, 10, 20]
/** Files per RPC client: a fifth of the decoupled clients' (the RPC points would take minutes each). */
const FIG6A_RPC_CREATES = 20_000

export async function fig6a (ctx: BenchContext, S: Samples): Promise<FigureOut> {
  const creates = ctx.opts.creates ?? CREATES
  const rpcCreates = Math.min(creates, FIG6A_RPC_CREATES)
  const clients = ctx.opts.clients !== undefined ? FIG6A_CLIENTS.filter(n => n <= (ctx.opts.clients as number)) : FIG6A_CLIENTS
  const runs = ctx.opts.runs
  for (let r = 1; r <= runs; r++) {
    const rate: Record<string, number> = {}
    for (const n of clients) {
      for (const mode of FIG6A_MODES) {
        const m = await measure(ctx, { clients: n, creates: mode.rpc ? rpcCreates : creates, mechanism: mode.mechanism, inflight: mode.inflight })
        rate[`${mode.key}/${n}`] = m.creates_per_s
        S.add(`fig6a/${mode.key}/${n}`, m.creates_per_s)
        log(`fig6a run ${r}/${runs}, ${n} client(s), ${mode.name}: ${fmt(m.creates_per_s)} creates/s`)
      }
      for (const mode of FIG6A_MODES) {
        S.add(`fig6a/speedup/${mode.key}/${n}`, rate[`${mode.key}/${n}`] / rate['rpcs/1'])
        if (mode.key !== 'rpcs') S.add(`fig6a/vs rpcs/${mode.key}/${n}`, rate[`${mode.key}/${n}`] / rate[`rpcs/${n}`])
        if (mode.key !== 'rpcs16' && mode.key !== 'rpcs') S.add(`fig6a/vs rpcs16/${mode.key}/${n}`, rate[`${mode.key}/${n}`] / rate[`rpcs16/${n}`])
      }
    }
  }
  const most = clients[clients.length - 1]
  return {
    params: { fig6a_clients: clients.join(' '), fig6a_creates: creates, fig6a_rpc_creates: rpcCreates },
    tables: [{
      title: `Fig. 6a: creates/s of the whole job (all clients, each in its own directory); decoupled clients ${creates} files each, RPC clients ${rpcCreates}`,
      columns: ['clients', ...FIG6A_MODES.map(m => m.name), 'create ÷ RPCs', 'create+merge ÷ RPCs', 'create ÷ RPCs 16', 'create+merge ÷ RPCs 16'],
      rows: clients.map(n => [
        String(n),
        ...FIG6A_MODES.map(m => fmt(S.median(`fig6a/${m.key}/${n}`))),
        fmt(S.median(`fig6a/vs rpcs/create/${n}`)), fmt(S.median(`fig6a/vs rpcs/merge/${n}`)),
        fmt(S.median(`fig6a/vs rpcs16/create/${n}`)), fmt(S.median(`fig6a/vs rpcs16/merge/${n}`))
      ])
    }],
    targets: [
      target(`${most} clients: decoupled create ÷ RPCs (one create at a time per client)`, S.median(`fig6a/vs rpcs/create/${most}`), '>=', 100),
      target(`${most} clients: decoupled create+merge ÷ RPCs (one create at a time per client)`, S.median(`fig6a/vs rpcs/merge/${most}`), '>=', 10)
    ],
    notes: [
      `Fig. 6a: RPCs = strong/global, each client waiting for each create (as a POSIX application does; "16 in flight": a library client pipelining 16 requests); decoupled: create = invisible/local (createMany in batches of 1,000, then the local journal fsync'd); create+merge = weak/local, all clients' merges arriving at once (the paper's pessimistic case). Ratios are taken between points of the same run.`
    ]
  }
}

// ---- Fig. 6b: interfering clients, allow vs block ----

export const FIG6B_CLIENTS = [1, 2, 4, 8]
/** Files per client in Fig. 6b (RPCs), and what the interfering client creates in each directory (1%, as the paper's 1,000 of 100,000). */
const FIG6B_CREATES = 10_000
export const FIG6B_CURVES: Array<{ key: string, name: string, interfere: 'allow' | 'block', interfering: boolean }> = [
  { key: 'none', name: 'no interference', interfere: 'allow', interfering: false },
  { key: 'allow', name: 'interference (allow)', interfere: 'allow', interfering: true },
  { key: 'block', name: 'interference (block)', interfere: 'block', interfering: true }
]
/** The decoupled variant: one client owns a weak subtree; RPC clients create in it meanwhile. */
const FIG6B_INTERFERERS = 4
const FIG6B_INTERFERER_FILES = 1000

export async function fig6b (ctx: BenchContext, S: Samples): Promise<FigureOut> {
  const runs = ctx.opts.runs
  const creates = Math.min(ctx.opts.creates ?? CREATES, FIG6B_CREATES)
  const decoupledCreates = ctx.opts.creates ?? CREATES
  const files = Math.max(1, Math.round(creates / 100))
  const interference: Record<string, { created: number, ebusy: number, failed: number, firstError: string | null }> = {}
  for (let r = 1; r <= runs; r++) {
    let base = NaN
    for (const n of FIG6B_CLIENTS) {
      for (const c of FIG6B_CURVES) {
        const m = await measure(ctx, { clients: n, creates, mechanism: 'strong/global', inflight: 1, interfere: c.interfere, interfereFiles: c.interfering ? files : undefined })
        const slowest = m.phases.create!.slowestSeconds
        if (n === 1 && c.key === 'none') base = slowest
        S.add(`fig6b/${c.key}/${n}`, slowest)
        S.add(`fig6b/slowdown/${c.key}/${n}`, slowest / base)
        if (m.interference) interference[`${c.key}/${n}`] = m.interference
        log(`fig6b run ${r}/${runs}, ${n} client(s), ${c.name}: slowest client ${fmt(slowest)} s${m.interference ? ` (interfering client: ${m.interference.created} created, ${m.interference.ebusy} EBUSY, ${m.interference.failed} other errors)` : ''}`)
      }
    }
    let dbase = NaN
    for (const c of FIG6B_CURVES) {
      const m = await measure(ctx, {
        clients: 1,
        creates: decoupledCreates,
        mechanism: 'weak/none',
        interfere: c.interfere,
        interferers: c.interfering ? FIG6B_INTERFERERS : undefined,
        interfereFiles: c.interfering ? FIG6B_INTERFERER_FILES : undefined
      })
      if (c.key === 'none') dbase = m.seconds
      S.add(`fig6b/decoupled/${c.key}`, m.seconds)
      S.add(`fig6b/decoupled/slowdown/${c.key}`, m.seconds / dbase)
      if (m.interference) interference[`decoupled/${c.key}`] = m.interference
      log(`fig6b run ${r}/${runs}, decoupled owner, ${c.name}: create+merge ${fmt(m.seconds)} s${m.interference ? ` (interfering clients: ${m.interference.created} created, ${m.interference.ebusy} EBUSY)` : ''}`)
    }
  }
  const count = (k: string): string => {
    const i = interference[k]
    return i ? `${i.created} created, ${i.ebusy} EBUSY${i.failed > 0 ? `, ${i.failed} failed (${i.firstError ?? ''})` : ''}` : '-'
  }
  return {
    params: { fig6b_clients: FIG6B_CLIENTS.join(' '), fig6b_creates: creates, fig6b_interfering_files_per_dir: files, fig6b_decoupled_creates: decoupledCreates },
    tables: [
      {
        title: `Fig. 6b: slowest client's time ÷ 1 client without interference (strong/global, ${creates} creates per client, one at a time; the interfering client creates ${files} files in every directory)`,
        columns: ['clients', ...FIG6B_CURVES.map(c => c.name), 'interfering client (allow)', 'interfering client (block)'],
        rows: FIG6B_CLIENTS.map(n => [String(n), ...FIG6B_CURVES.map(c => fmt(S.median(`fig6b/slowdown/${c.key}/${n}`))), count(`allow/${n}`), count(`block/${n}`)])
      },
      {
        title: `Fig. 6b, decoupled: one client creates ${decoupledCreates} files in a weak/none subtree and merges, while ${FIG6B_INTERFERERS} RPC clients each try ${FIG6B_INTERFERER_FILES} creates in it`,
        columns: ['interference', 'create+merge s', '÷ no interference', 'interfering clients'],
        rows: FIG6B_CURVES.map(c => [c.name, fmt(S.median(`fig6b/decoupled/${c.key}`)), fmt(S.median(`fig6b/decoupled/slowdown/${c.key}`)), count(`decoupled/${c.key}`)])
      }
    ],
    targets: [],
    notes: ['Fig. 6b: interfere allow/block is the policy of each client\'s directory (home.yml with allow or block); with block the first client to change a directory owns it and the interfering client\'s creates there get EBUSY; with allow they go through and (in a decoupled subtree) lose at merge']
  }
}

// ---- Fig. 6c: namespace sync (sync_interval) ----

export const FIG6C_INTERVALS = ['off', '100ms', '250ms', '500ms', '1s', '2s']
/** Updates the client makes (the paper's 1 million), one mknod each (validated against the subtree, one journal event each). */
const FIG6C_CREATES = 1_000_000

export async function fig6c (ctx: BenchContext, S: Samples): Promise<FigureOut> {
  const runs = ctx.opts.runs
  const creates = ctx.opts.creates ?? FIG6C_CREATES
  const merges: Record<string, number> = {}
  for (let r = 1; r <= runs; r++) {
    let base = NaN
    for (const interval of FIG6C_INTERVALS) {
      const m = await measure(ctx, {
        clients: 1,
        creates,
        mechanism: 'weak/local',
        method: 'mknod',
        inflight: 1,
        syncInterval: interval === 'off' ? undefined : interval,
        phases: ['create']
      })
      // The job is the creates; the final merge (also with sync_interval off) is not part of it.
      const seconds = m.phases.create!.seconds
      if (interval === 'off') base = seconds
      S.add(`fig6c/${interval}`, seconds)
      S.add(`fig6c/slowdown/${interval}`, seconds / base)
      merges[interval] = m.journal?.merges ?? 0
      log(`fig6c run ${r}/${runs}, sync_interval ${interval}: ${fmt(seconds)} s for ${creates} creates (${fmt(seconds / base)}×), ${merges[interval]} merges in all`)
    }
  }
  return {
    params: { fig6c_creates: creates },
    tables: [{
      title: `Fig. 6c: one client making ${creates} creates in a weak/local subtree that merges every sync_interval; time ÷ sync_interval off`,
      columns: ['sync_interval', 'seconds', '× off', 'creates/s', 'merges done by the end of the creates (last run)'],
      rows: FIG6C_INTERVALS.map(i => [i, fmt(S.median(`fig6c/${i}`)), fmt(S.median(`fig6c/slowdown/${i}`)), fmt(creates / S.median(`fig6c/${i}`)), String(merges[i] ?? '-')])
    }],
    targets: [],
    notes: ['Fig. 6c: the client makes one mknod at a time (each checked against its copy of the subtree and appended to the client journal) and lets its event loop run every 1,000 creates; merges run in the background while it goes on; what is left unmerged at the end is not merged (not part of the job)']
  }
}

