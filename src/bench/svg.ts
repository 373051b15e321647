// Small SVG charts for the benchmark figures: line charts (x: a number, one
// line per series) and bar charts (one or more panels side by side), with a
// linear or logarithmic y axis. Plain strings, no dependencies; what a
// browser or an image viewer shows, and what a diff can read.

export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf', '#7f7f7f']

const FONT = 'font-family="Helvetica, Arial, sans-serif"'

export interface LineSeries {
  name: string
  points: Array<[number, number]>
  dashed?: boolean
}

export interface LineChart {
  title: string
  xLabel: string
  yLabel: string
  series: LineSeries[]
  logY?: boolean
  /** x values to label (default: every x of the series). */
  xTicks?: number[]
  /** Targets drawn as hollow markers, each named in the legend. */
  marks?: Mark[]
  /** Small print under the plot (what was measured, where), one string per line. */
  note?: string | string[]
}

/** A target point of a line chart (e.g. "at 20 clients, 100× the RPC curve"). */
export interface Mark {
  name: string
  x: number
  y: number
  /** The series whose color the marker takes. */
  series?: number
}

export interface Bar {
  label: string
  value: number
  /** Text over the bar (default: the value). */
  text?: string
  color?: string
}

export interface BarPanel {
  title: string
  bars: Bar[]
}

export interface BarChart {
  title: string
  yLabel: string
  panels: BarPanel[]
  logY?: boolean
  /** A horizontal reference line (e.g. 1 for "same as the baseline"). */
  reference?: number
  /** Named horizontal lines (targets), labelled at the right end. */
  lines?: Array<{ value: number, label: string }>
  note?: string | string[]
}

interface Scale {
  at: (v: number) => number
  ticks: Array<{ v: number, label: string }>
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** A number as a short label: 3 significant digits, k/M for large values. */
export function shortNumber (v: number): string {
  const a = Math.abs(v)
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`
  if (a >= 100) return String(Math.round(v))
  return String(Number(v.toPrecision(a >= 1 ? 3 : 2)))
}

/** Round steps (1, 2, 5 × 10^k) for a linear axis from 0 (or below) to max. */
function linearScale (lo: number, hi: number, y0: number, y1: number): Scale {
  const min = Math.min(0, lo)
  const max = hi > min ? hi : min + 1
  const raw = (max - min) / 5
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw) ?? 10 * mag
  const top = Math.ceil(max / step) * step
  const bottom = Math.floor(min / step) * step
  const at = (v: number): number => y0 + (v - bottom) / (top - bottom) * (y1 - y0)
  const ticks = []
  for (let v = bottom; v <= top + step / 2; v += step) ticks.push({ v, label: shortNumber(Number(v.toPrecision(12))) })
  return { at, ticks }
}

/** Decades (with 2 and 5 between them when there are few) for a logarithmic axis. */
function logScale (lo: number, hi: number, y0: number, y1: number): Scale {
  const a = Math.floor(Math.log10(Math.max(lo, 1e-12)))
  let b = Math.ceil(Math.log10(Math.max(hi, 1e-12)))
  if (b <= a) b = a + 1
  const at = (v: number): number => y0 + (Math.log10(Math.max(v, 10 ** a)) - a) / (b - a) * (y1 - y0)
  const ticks = []
  for (let e = a; e <= b; e++) {
    ticks.push({ v: 10 ** e, label: shortNumber(10 ** e) })
    if (b - a <= 3 && e < b) for (const m of [2, 5]) ticks.push({ v: m * 10 ** e, label: shortNumber(m * 10 ** e) })
  }
  return { at, ticks }
}

function yScale (values: number[], logY: boolean, y0: number, y1: number): Scale {
  const finite = values.filter(v => Number.isFinite(v) && (!logY || v > 0))
  const lo = finite.length > 0 ? Math.min(...finite) : 1
  const hi = finite.length > 0 ? Math.max(...finite) : 1
  return logY ? logScale(lo, hi, y0, y1) : linearScale(lo, hi, y0, y1)
}

const NOTE_LINE = 14

/** The note's lines, each wrapped at spaces to fit the image (10 px text: about 5.6 px a character). */
function noteLines (note: string | string[] | undefined, width: number): string[] {
  const max = Math.floor((width - 20) / 5.6)
  const out: string[] = []
  for (const para of note === undefined ? [] : typeof note === 'string' ? [note] : note) {
    let line = ''
    for (const word of para.split(' ')) {
      if (line !== '' && line.length + 1 + word.length > max) {
        out.push(line)
        line = word
      } else line = line === '' ? word : `${line} ${word}`
    }
    out.push(line)
  }
  return out
}

/** The chart with its title and, under height, the note's lines (the image grows to hold them). */
function frame (width: number, height: number, title: string, body: string[], note?: string | string[]): string {
  const lines = noteLines(note, width)
  const total = height + Math.max(0, lines.length - 1) * NOTE_LINE
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${total}" viewBox="0 0 ${width} ${total}" ${FONT} font-size="12">`,
    `<rect width="${width}" height="${total}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...body,
    ...lines.map((l, i) => `<text x="10" y="${height - 8 + i * NOTE_LINE}" font-size="10" fill="#555">${esc(l)}</text>`),
    '</svg>'
  ].join('\n') + '\n'
}

/** The y axis: grid lines, tick labels and the axis label, for a plot area from (x0, top) to (x1, bottom). */
function yAxis (s: Scale, x0: number, x1: number, label: string, top: number, bottom: number): string[] {
  const out: string[] = []
  for (const t of s.ticks) {
    const y = s.at(t.v)
    if (y < top - 0.5 || y > bottom + 0.5) continue
    out.push(`<line x1="${x0}" y1="${y.toFixed(1)}" x2="${x1}" y2="${y.toFixed(1)}" stroke="#ddd"/>`)
    out.push(`<text x="${x0 - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${esc(t.label)}</text>`)
  }
  const mid = (top + bottom) / 2
  out.push(`<text x="16" y="${mid}" text-anchor="middle" transform="rotate(-90 16 ${mid})">${esc(label)}</text>`)
  out.push(`<line x1="${x0}" y1="${top}" x2="${x0}" y2="${bottom}" stroke="black"/>`)
  return out
}

export function lineChart (c: LineChart): string {
  const width = 740
  const height = 420
  const left = 70
  const right = 240
  const top = 40
  const bottom = height - 70
  const xs = [...new Set(c.series.flatMap(s => s.points.map(p => p[0])))].sort((a, b) => a - b)
  const xMin = Math.min(...xs)
  const xMax = Math.max(...xs)
  const xAt = (v: number): number => left + (xMax === xMin ? 0.5 : (v - xMin) / (xMax - xMin)) * (width - left - right)
  const y = yScale([...c.series.flatMap(s => s.points.map(p => p[1])), ...(c.marks ?? []).map(m => m.y)], c.logY ?? false, bottom, top)
  const body = yAxis(y, left, width - right, c.yLabel, top, bottom)
  body.push(`<line x1="${left}" y1="${bottom}" x2="${width - right}" y2="${bottom}" stroke="black"/>`)
  for (const x of c.xTicks ?? xs) {
    body.push(`<text x="${xAt(x).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${esc(shortNumber(x))}</text>`)
  }
  body.push(`<text x="${(left + width - right) / 2}" y="${bottom + 36}" text-anchor="middle">${esc(c.xLabel)}</text>`)
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]
    const pts = s.points.filter(p => Number.isFinite(p[1]) && (!c.logY || p[1] > 0)).sort((a, b) => a[0] - b[0])
    const d = pts.map(p => `${xAt(p[0]).toFixed(1)},${y.at(p[1]).toFixed(1)}`).join(' ')
    body.push(`<polyline points="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`)
    for (const p of pts) body.push(`<circle cx="${xAt(p[0]).toFixed(1)}" cy="${y.at(p[1]).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${s.name}: ${shortNumber(p[0])} → ${shortNumber(p[1])}`)}</title></circle>`)
    const ly = top + 10 + i * 20
    body.push(`<line x1="${width - right + 12}" y1="${ly}" x2="${width - right + 36}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`)
    body.push(`<text x="${width - right + 42}" y="${ly + 4}">${esc(s.name)}</text>`)
  })
  // Targets: hollow triangles, in the legend under the series.
  const marks = (c.marks ?? []).filter(m => Number.isFinite(m.y) && (!c.logY || m.y > 0))
  marks.forEach((m, i) => {
    const color = COLORS[(m.series ?? 0) % COLORS.length]
    const tri = (x: number, yy: number): string => `${x.toFixed(1)},${(yy - 6).toFixed(1)} ${(x - 6).toFixed(1)},${(yy + 5).toFixed(1)} ${(x + 6).toFixed(1)},${(yy + 5).toFixed(1)}`
    body.push(`<polygon points="${tri(xAt(m.x), y.at(m.y))}" fill="white" stroke="${color}" stroke-width="2"><title>${esc(`${m.name}: ${shortNumber(m.y)}`)}</title></polygon>`)
    const ly = top + 10 + (c.series.length + i) * 20 + 10
    body.push(`<polygon points="${tri(width - right + 24, ly)}" fill="white" stroke="${color}" stroke-width="2"/>`)
    body.push(`<text x="${width - right + 42}" y="${ly + 4}" font-size="11">${esc(m.name)}</text>`)
  })
  return frame(width, height, c.title, body, c.note)
}

export function barChart (c: BarChart): string {
  const slot = 58
  const gap = 30
  const left = 70
  const top = 56
  const plotHeight = 300
  const bottom = top + plotHeight
  const labelSpace = Math.min(140, 6.2 * Math.max(0, ...c.panels.flatMap(p => p.bars.map(b => b.label.length))))
  const height = bottom + labelSpace + 40
  const widths = c.panels.map(p => Math.max(1, p.bars.length) * slot)
  // Room for the title (15 px bold: about 9.5 px a character) and, right of the bars, for the labels of the lines.
  const lineLabels = Math.max(0, ...(c.lines ?? []).map(l => 6.5 * l.label.length + 20))
  const width = Math.ceil(Math.max(420, c.title.length * 9.5 + 20, left + widths.reduce((a, b) => a + b, 0) + gap * (c.panels.length - 1) + 20 + lineLabels))
  const values = c.panels.flatMap(p => p.bars.map(b => b.value))
  if (c.reference !== undefined) values.push(c.reference)
  for (const l of c.lines ?? []) values.push(l.value)
  const y = yScale(values, c.logY ?? false, bottom, top)
  const body = yAxis(y, left, width - 10, c.yLabel, top, bottom)
  const base = c.logY ? bottom : y.at(0)
  let x = left + 10
  c.panels.forEach((p, pi) => {
    const w = widths[pi]
    if (c.panels.length > 1) body.push(`<text x="${x + w / 2}" y="${top - 4}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`)
    p.bars.forEach((b, bi) => {
      const cx = x + bi * slot + slot / 2
      const ok = Number.isFinite(b.value) && (!c.logY || b.value > 0)
      const yv = ok ? y.at(b.value) : base
      const color = b.color ?? COLORS[pi % COLORS.length]
      body.push(`<rect x="${(cx - slot * 0.35).toFixed(1)}" y="${Math.min(yv, base).toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${Math.abs(base - yv).toFixed(1)}" fill="${color}"><title>${esc(`${b.label}: ${ok ? b.text ?? shortNumber(b.value) : 'n/a'}`)}</title></rect>`)
      body.push(`<text x="${cx}" y="${(Math.min(yv, base) - 4).toFixed(1)}" text-anchor="middle" font-size="11">${esc(ok ? b.text ?? shortNumber(b.value) : 'n/a')}</text>`)
      body.push(`<text x="${cx}" y="${bottom + 12}" text-anchor="end" transform="rotate(-40 ${cx} ${bottom + 12})">${esc(b.label)}</text>`)
    })
    x += w + gap
  })
  body.push(`<line x1="${left}" y1="${base.toFixed(1)}" x2="${width - 10}" y2="${base.toFixed(1)}" stroke="black"/>`)
  if (c.reference !== undefined) {
    const ry = y.at(c.reference).toFixed(1)
    body.push(`<line x1="${left}" y1="${ry}" x2="${width - 10}" y2="${ry}" stroke="#444" stroke-dasharray="4 3"/>`)
  }
  for (const l of c.lines ?? []) {
    if (!Number.isFinite(l.value) || (c.logY === true && l.value <= 0)) continue
    const ly = y.at(l.value)
    body.push(`<line x1="${left}" y1="${ly.toFixed(1)}" x2="${width - 10}" y2="${ly.toFixed(1)}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="8 4"/>`)
    body.push(`<text x="${width - 12}" y="${(ly - 5).toFixed(1)}" text-anchor="end" font-size="11" fill="#d62728">${esc(l.label)}</text>`)
  }
  return frame(width, height, c.title, body, c.note)
}
