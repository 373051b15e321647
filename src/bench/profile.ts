// Summaries of V8 CPU profiles (.cpuprofile, as `node --cpu-prof` writes
// them): self time per function and per file, to see where a server's time
// goes. `cudele bench CASE --cpu-prof DIR` profiles every cudele server it
// starts and prints these summaries; by hand:
//
//   node dist/src/bench/profile.js FILE.cpuprofile [TOP]

import * as fs from 'fs'
import * as path from 'path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

function short (url: string): string {
  if (url === '') return ''
  const p = url.replace(/^file:\/\//, '')
  const i = p.indexOf('/dist/')
  if (i >= 0) return p.slice(i + 1)
  const j = p.indexOf('/node_modules/')
  if (j >= 0) return p.slice(j + 1)
  return path.basename(p)
}

export function summarize (file: string, top = 25): string {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile
  const byId = new Map(prof.nodes.map(n => [n.id, n]))
  // Self time per node from the samples and their time deltas.
  const self = new Map<number, number>()
  const samples = prof.samples ?? []
  const deltas = prof.timeDeltas ?? []
  for (let i = 0; i < samples.length; i++) {
    const dt = deltas[i + 1] ?? 0
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt)
  }
  const total = (prof.endTime - prof.startTime)
  const fn = new Map<string, number>()
  const file2 = new Map<string, number>()
  for (const [id, us] of self) {
    const n = byId.get(id)
    if (!n) continue
    const f = short(n.callFrame.url)
    const name = `${n.callFrame.functionName || '(anonymous)'} ${f}${f ? `:${n.callFrame.lineNumber + 1}` : ''}`
    fn.set(name, (fn.get(name) ?? 0) + us)
    const key = f || n.callFrame.functionName
    file2.set(key, (file2.get(key) ?? 0) + us)
  }
  const lines: string[] = []
  const pct = (us: number): string => `${(100 * us / total).toFixed(1).padStart(5)}%`
  lines.push(`${path.basename(file)}: ${(total / 1e6).toFixed(1)} s profiled`)
  lines.push('  self time by function:')
  for (const [name, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${pct(us)} ${(us / 1e3).toFixed(0).padStart(7)} ms  ${name}`)
  lines.push('  self time by file:')
  for (const [name, us] of [...file2].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`    ${pct(us)} ${(us / 1e3).toFixed(0).padStart(7)} ms  ${name}`)
  return lines.join('\n')
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2)
  if (!file) {
    console.error('usage: node dist/src/bench/profile.js FILE.cpuprofile [TOP]')
    process.exit(2)
  }
  console.log(summarize(file, top ? Number(top) : 25))
}
