// The figures of `cudele bench cudele` as SVG files, drawn from the medians
// of its report; by hand, from a saved report (`--json > report.json`):
//
//   node dist/src/bench/plots.js docs/ report.json [more reports...]

import * as fs from 'fs'
import * as path from 'path'
import { CELLS, FIG6A_CLIENTS, FIG6A_MODES, FIG6B_CLIENTS, FIG6B_CURVES, FIG6C_INTERVALS, MECHANISM_COST } from './figures'
import type { BenchReport, CaseReport } from './report'
import { type Bar, barChart, COLORS, lineChart } from './svg'

type Medians = Record<string, number>

function count (n: unknown): string {
  return typeof n === 'number' ? n.toLocaleString('en-US') : String(n)
}

/** "value (target ≥ x: pass)" for the small print. */
function versus (value: number, op: '>=' | '<=', goal: number, unit: string): string {
  const pass = op === '>=' ? value >= goal : value <= goal
  return `${count(Number(value.toPrecision(3)))}${unit} (target ${op === '>=' ? '≥' : '≤'} ${count(goal)}${unit}: ${pass ? 'pass' : 'MISS'})`
}

function has (m: Medians, prefix: string): boolean {
  return Object.keys(m).some(k => k.startsWith(prefix))
}

function fig5 (m: Medians, creates: unknown, commit: string): string {
  const mechanisms = new Set(['rpcs', 'append_client_journal', 'volatile_apply', 'nonvolatile_apply'])
  const bar = (name: string, color: string): Bar => {
    const v = m[`fig5/mechanism/${name}`]
    return { label: name, value: v, text: v > 0 ? `${Number(v.toPrecision(3))}×` : `${Number(v.toPrecision(2))}× (≤ 0)`, color }
  }
  return barChart({
    title: `Fig. 5: cost of ${count(creates)} creates, ÷ append_client_journal`,
    yLabel: '× append_client_journal (log scale)',
    logY: true,
    reference: 1,
    panels: [
      { title: 'consistency', bars: MECHANISM_COST.filter(c => mechanisms.has(c.name)).map(c => bar(c.name, COLORS[0])) },
      { title: 'durability', bars: MECHANISM_COST.filter(c => !mechanisms.has(c.name)).map(c => bar(c.name, COLORS[1])) },
      {
        title: 'Table I cells (systems)',
        bars: CELLS.map(c => ({ label: c.system ? `${c.cell} (${c.system})` : c.cell, value: m[`fig5/cell/${c.cell}`], text: `${Number(m[`fig5/cell/${c.cell}`].toPrecision(3))}×`, color: COLORS[2] }))
      }
    ],
    note: [
      `append_client_journal: ${versus(m['fig5/append creates/s'], '>=', 1_000_000, ' creates/s')}; client journal: ${versus(m['fig5/journal bytes per event'], '<=', 100, ' bytes/event')}`,
      `1 library client of cudele serve, medians of per-run ratios; commit ${commit}. Mechanisms whose cost is a difference of two compositions can be ≤ 0 (then drawn at the axis).`
    ]
  })
}

function fig6a (m: Medians, commit: string): string {
  const clients = FIG6A_CLIENTS.filter(n => m[`fig6a/speedup/rpcs/${n}`] !== undefined)
  const most = clients[clients.length - 1]
  const rpcs = m[`fig6a/speedup/rpcs/${most}`]
  const series = (key: string): number => FIG6A_MODES.findIndex(mode => mode.key === key)
  return lineChart({
    title: 'Fig. 6a: creates/s of the job ÷ 1 client with RPCs',
    xLabel: 'clients (each its own process and directory)',
    yLabel: 'speedup over 1 RPC client (log scale)',
    logY: true,
    xTicks: clients,
    series: FIG6A_MODES.map(mode => ({
      name: mode.name,
      dashed: mode.key === 'rpcs16',
      points: clients.map(n => [n, m[`fig6a/speedup/${mode.key}/${n}`]] as [number, number])
    })),
    marks: [
      { name: 'target: create ≥ 100× RPCs', x: most, y: 100 * rpcs, series: series('create') },
      { name: 'target: create+merge ≥ 10× RPCs', x: most, y: 10 * rpcs, series: series('merge') }
    ],
    note: [
      `at ${most} clients: create ${versus(m[`fig6a/vs rpcs/create/${most}`], '>=', 100, '× RPCs')}; create+merge ${versus(m[`fig6a/vs rpcs/merge/${most}`], '>=', 10, '× RPCs')}`,
      `RPCs: strong/global, one create at a time per client; decoupled: invisible/local (create), weak/local (create+merge); commit ${commit}`
    ]
  })
}

function fig6b (m: Medians, commit: string): string[] {
  const out: string[] = []
  const clients = FIG6B_CLIENTS.filter(n => m[`fig6b/slowdown/none/${n}`] !== undefined)
  out.push(lineChart({
    title: 'Fig. 6b: slowest client ÷ 1 client without interference',
    xLabel: 'clients (strong/global, each in its own directory)',
    yLabel: 'slowdown',
    xTicks: clients,
    series: FIG6B_CURVES.map(c => ({ name: c.name, points: clients.map(n => [n, m[`fig6b/slowdown/${c.key}/${n}`]] as [number, number]) })),
    note: `an interfering client creates 1% more files in every directory; allow: they go through; block: EBUSY; commit ${commit}`
  }))
  if (m['fig6b/decoupled/slowdown/none'] !== undefined) {
    out.push(barChart({
      title: 'Fig. 6b, decoupled owner: create+merge ÷ no interference',
      yLabel: 'slowdown',
      reference: 1,
      panels: [{
        title: '',
        bars: FIG6B_CURVES.map((c, i) => ({ label: c.name, value: m[`fig6b/decoupled/slowdown/${c.key}`], text: `${Number(m[`fig6b/decoupled/slowdown/${c.key}`].toPrecision(3))}×`, color: COLORS[i] }))
      }],
      note: `one client in a weak/none subtree; RPC clients create in it meanwhile; commit ${commit}`
    }))
  }
  return out
}

function fig6c (m: Medians, creates: unknown, commit: string): string {
  const intervals = FIG6C_INTERVALS.filter(i => m[`fig6c/slowdown/${i}`] !== undefined)
  return barChart({
    title: 'Fig. 6c: namespace sync, slowdown ÷ sync_interval off',
    yLabel: 'slowdown of the client',
    reference: 1,
    panels: [{
      title: '',
      bars: intervals.map(i => ({ label: `sync_interval ${i}`, value: m[`fig6c/slowdown/${i}`], text: `${Number(m[`fig6c/slowdown/${i}`].toPrecision(3))}×`, color: COLORS[i === 'off' ? 7 : 0] }))
    }],
    note: `1 client, weak/local, ${count(creates)} creates one at a time; commit ${commit}`
  })
}

function untar (m: Medians, members: unknown, commit: string): string {
  const bars: Bar[] = [
    { label: 'tmpfs', value: m['untar/tmpfs'], color: COLORS[7] },
    { label: 'weak/local', value: m['untar/weak'], color: COLORS[2] },
    { label: 'weak/local + sync', value: m['untar/weak+sync'], color: COLORS[2] },
    { label: 'strong/global', value: m['untar/strong'], color: COLORS[0] }
  ].map(b => ({ ...b, text: `${Number(b.value.toPrecision(3))} s` }))
  return barChart({
    title: `untar of ${count(members)} linux-source members through client mounts`,
    // tmpfs is two orders of magnitude faster than the client mounts.
    yLabel: 'seconds (log scale)',
    logY: true,
    panels: [{ title: '', bars }],
    lines: [{ value: 1.5 * m['untar/weak'], label: 'target: strong/global ≥ 1.5 × weak/local' }],
    note: [
      `strong/global ÷ weak/local: ${versus(m['untar/strong ÷ weak'], '>=', 1.5, '×')}; including the merge: ${count(Number(m['untar/strong ÷ weak+sync'].toPrecision(3)))}×`,
      `tar -xf into a subtree of a cudele serve client mount (one mount per subtree), and into tmpfs; commit ${commit}`
    ]
  })
}

/** Write the SVG files of whatever figures the report has; returns their paths. */
export function drawFigures (r: CaseReport, dir: string, commit: string): string[] {
  fs.mkdirSync(dir, { recursive: true })
  const m = r.medians
  const files: Array<[string, string]> = []
  if (has(m, 'fig5/mechanism/')) files.push(['cudele-fig5.svg', fig5(m, r.params.fig5_creates, commit)])
  if (has(m, 'fig6a/speedup/')) files.push(['cudele-fig6a.svg', fig6a(m, commit)])
  if (has(m, 'fig6b/')) {
    const [a, b] = fig6b(m, commit)
    files.push(['cudele-fig6b.svg', a])
    if (b) files.push(['cudele-fig6b-decoupled.svg', b])
  }
  if (has(m, 'fig6c/')) files.push(['cudele-fig6c.svg', fig6c(m, r.params.fig6c_creates, commit)])
  if (has(m, 'untar/')) files.push(['cudele-untar.svg', untar(m, r.params.untar_members, commit)])
  return files.map(([name, svg]) => {
    const f = path.join(dir, name)
    fs.writeFileSync(f, svg)
    return f
  })
}

if (require.main === module) {
  const [dir, ...files] = process.argv.slice(2)
  if (!dir || files.length === 0) {
    process.stderr.write('usage: node dist/src/bench/plots.js DIR REPORT.json [REPORT.json ...]\n')
    process.exit(2)
  }
  // Several reports (say, one per figure) make one set of figures.
  const merged: CaseReport = { case: 'cudele', runs: 0, params: {}, filesystems: {}, samples: {}, medians: {}, tables: [], targets: [], notes: [], extra: {} }
  const commits = new Set<string>()
  for (const file of files) {
    const report = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchReport
    const c = report.cases.find(x => x.case === 'cudele')
    if (!c) {
      process.stderr.write(`${file} has no cudele case\n`)
      process.exit(1)
    }
    Object.assign(merged.params, c.params)
    Object.assign(merged.medians, c.medians)
    commits.add(report.machine.commit)
  }
  for (const f of drawFigures(merged, dir, [...commits].join(', '))) process.stdout.write(`${f}\n`)
}
