// What a benchmark case reports: raw samples per run, medians, tables,
// targets; printed as text or as JSON.

import type { Machine } from './util'
import { fmt, median } from './util'

export interface Table {
  title: string
  columns: string[]
  rows: string[][]
}

export interface Target {
  name: string
  /** The measured figure (a median over runs). */
  value: number
  /** The target as text, e.g. ">= 0.7". */
  target: string
  pass: boolean
}

export interface CaseReport {
  case: string
  runs: number
  params: Record<string, unknown>
  /** The filesystems compared, with what they are. */
  filesystems: Record<string, string>
  /** Every measurement, one value per run, in run order. */
  samples: Record<string, number[]>
  medians: Record<string, number>
  tables: Table[]
  targets: Target[]
  notes: string[]
  extra: Record<string, unknown>
}

export interface BenchReport {
  started: string
  command: string
  machine: Machine
  cases: CaseReport[]
}

/** Measurements keyed by name; each key gets one value per run. */
export class Samples {
  readonly data: Record<string, number[]> = {}

  add (key: string, value: number): void {
    (this.data[key] ??= []).push(value)
  }

  has (key: string): boolean {
    return (this.data[key]?.length ?? 0) > 0
  }

  median (key: string): number {
    return median(this.data[key] ?? [])
  }

  /** Median over runs of a/b, each ratio taken within one run. */
  ratio (a: string, b: string): number {
    const xs = this.data[a] ?? []
    const ys = this.data[b] ?? []
    const n = Math.min(xs.length, ys.length)
    const rs: number[] = []
    for (let i = 0; i < n; i++) rs.push(xs[i] / ys[i])
    return median(rs)
  }

  medians (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const k of Object.keys(this.data)) out[k] = this.median(k)
    return out
  }
}

export function target (name: string, value: number, op: '>=' | '<=' | '<', limit: number): Target {
  const pass = op === '>=' ? value >= limit : op === '<=' ? value <= limit : value < limit
  return { name, value, target: `${op} ${limit}`, pass }
}

export function formatTable (t: Table): string {
  const widths = t.columns.map((c, i) => Math.max(c.length, ...t.rows.map(r => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join('  ').trimEnd()
  return [t.title, line(t.columns), line(widths.map(w => '-'.repeat(w))), ...t.rows.map(line)].join('\n')
}

export function formatCase (r: CaseReport): string {
  const out: string[] = []
  out.push(`== ${r.case} (median of ${r.runs} run${r.runs === 1 ? '' : 's'}; ratios are medians of per-run ratios)`)
  out.push(`parameters: ${Object.entries(r.params).map(([k, v]) => `${k}=${String(v)}`).join(', ')}`)
  for (const [k, v] of Object.entries(r.filesystems)) out.push(`  ${k}: ${v}`)
  for (const t of r.tables) out.push('', formatTable(t))
  if (r.targets.length > 0) {
    out.push('', 'targets:')
    for (const t of r.targets) out.push(`  ${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${fmt(t.value)} (target ${t.target})`)
  }
  for (const n of r.notes) out.push(`note: ${n}`)
  return out.join('\n')
}

export function formatReport (r: BenchReport): string {
  const m = r.machine
  const head = [
    `cudele bench — ${r.started}`,
    `command: ${r.command} (commit ${m.commit})`,
    `machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, kernel ${m.kernel}, node ${m.node}; work directory on ${m.disk}; load average at start ${m.loadavg.join(' ')}`
  ]
  return [head.join('\n'), ...r.cases.map(formatCase)].join('\n\n') + '\n'
}

/** A table as Markdown (for docs/BENCHMARKS.md). */
export function markdownTable (t: Table): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|')
  const lines = [`| ${t.columns.map(esc).join(' | ')} |`, `|${t.columns.map((_c, i) => i === 0 ? ' --- ' : ' ---: ').join('|')}|`]
  for (const r of t.rows) lines.push(`| ${r.map(esc).join(' | ')} |`)
  return lines.join('\n')
}

export function markdownCase (r: CaseReport): string {
  const out: string[] = []
  for (const t of r.tables) out.push(`${t.title}:`, '', markdownTable(t), '')
  if (r.targets.length > 0) {
    for (const t of r.targets) out.push(`- **${t.pass ? 'PASS' : 'MISS'}** ${t.name}: ${fmt(t.value)} (target ${t.target})`)
    out.push('')
  }
  return out.join('\n')
}
