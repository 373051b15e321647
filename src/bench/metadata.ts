// `cudele bench metadata`: N empty files created, stat'ed and unlinked
// (scripts/bench/mdbench.c) with 1 and 4 workers, on cudele, the two
// reference filesystems and tmpfs.

import type { BenchContext } from './context'
import { FS_DESCRIPTIONS, type FsKind, withMount } from './mounts'
import { type CaseReport, Samples, target } from './report'
import { cpuSeconds, dropCaches, fmt, log } from './util'

const PHASES = ['create', 'stat', 'unlink'] as const
const WORKERS = [1, 4]

export async function metadataCase (ctx: BenchContext): Promise<CaseReport> {
  const files = ctx.opts.files ?? 20_000
  const runs = ctx.opts.runs
  const kinds = ctx.kinds(['cudele', 'fuse-native', 'lowlevel', 'tmpfs'])
  const S = new Samples()
  // FUSE requests per operation, per phase, counted by the lowlevel reference.
  const requests: Record<string, Record<string, number>> = {}

  for (let run = 1; run <= runs; run++) {
    for (const w of WORKERS) {
      for (const kind of kinds) {
        const slot = ctx.slot(`metadata-${kind}`)
        await withMount(kind, slot.mnt, ctx.mountOptions(kind, slot, { sizeMiB: 1024 }), async m => {
          const line: string[] = []
          for (const phase of PHASES) {
            // Every phase starts with the kernel's dentry and inode caches
            // empty, so that it measures the filesystem server, not the cache.
            dropCaches()
            const before = kind === 'lowlevel' ? await ctx.lowlevelStats(m.mnt) : null
            const cpu0 = cpuSeconds(m.pid)
            const r = await ctx.mdbenchRun(m.mnt, ['--files', files, '--workers', w, '--phases', phase, '--tag', 'md'])
            const cpu1 = cpuSeconds(m.pid)
            const p = r.phases[phase]
            if (!p) throw new Error(`mdbench gave no ${phase} figure`)
            S.add(`${kind}/w${w}/${phase}`, p.ops_per_s)
            // Server CPU per operation (µs), setup of mdbench's directories included.
            if (cpu0 !== null && cpu1 !== null) S.add(`${kind}/w${w}/${phase} server cpu µs/op`, (cpu1 - cpu0) * 1e6 / files)
            line.push(`${phase} ${fmt(p.ops_per_s)}/s`)
            if (before && run === 1) {
              const after = await ctx.lowlevelStats(m.mnt)
              const per: Record<string, number> = {}
              for (const [op, n] of Object.entries(after.requests)) {
                // The getxattr that read `after` is counted in it.
                const d = n - (before.requests[op] ?? 0) - (op === 'getxattr' ? 1 : 0)
                if (d > 0) per[op] = d / files
              }
              requests[`w${w}/${phase}`] = per
            }
          }
          log(`metadata run ${run}/${runs}, ${w} worker(s), ${kind}: ${line.join(', ')}`)
        })
        ctx.release(slot)
      }
    }
  }

  const tables = []
  const rows: string[][] = []
  const ref = kinds.includes('fuse-native') ? 'fuse-native' : null
  for (const w of WORKERS) {
    for (const kind of kinds) {
      const row = [kind, String(w)]
      for (const phase of PHASES) row.push(fmt(S.median(`${kind}/w${w}/${phase}`)))
      for (const phase of PHASES) row.push(ref ? fmt(S.ratio(`${kind}/w${w}/${phase}`, `${ref}/w${w}/${phase}`), 2) : '-')
      rows.push(row)
    }
  }
  tables.push({
    title: `operations per second, ${files} files in all (split over the workers, one directory each)`,
    columns: ['filesystem', 'workers', 'create/s', 'stat/s', 'unlink/s', 'create ×fn', 'stat ×fn', 'unlink ×fn'],
    rows
  })

  const cpuRows: string[][] = []
  for (const w of WORKERS) {
    for (const kind of kinds) {
      if (!S.has(`${kind}/w${w}/create server cpu µs/op`)) continue
      cpuRows.push([kind, String(w), ...PHASES.map(phase => fmt(S.median(`${kind}/w${w}/${phase} server cpu µs/op`)))])
    }
  }
  if (cpuRows.length > 0) {
    tables.push({
      title: 'CPU time of the FUSE server process (user + system, all threads), µs per operation',
      columns: ['filesystem', 'workers', 'create', 'stat', 'unlink'],
      rows: cpuRows
    })
  }

  // What a request costs on each reference: microseconds per operation, FUSE
  // requests per operation (as the lowlevel reference counts them), and the
  // difference per request.
  const costRows: string[][] = []
  const cost: Record<string, unknown> = {}
  if (kinds.includes('fuse-native') && kinds.includes('lowlevel')) {
    for (const w of WORKERS) {
      for (const phase of PHASES) {
        const usFn = 1e6 / S.median(`fuse-native/w${w}/${phase}`)
        const usLl = 1e6 / S.median(`lowlevel/w${w}/${phase}`)
        const per = requests[`w${w}/${phase}`] ?? {}
        const nreq = Object.values(per).reduce((a, b) => a + b, 0)
        const diff = nreq >= 0.5 ? (usFn - usLl) / nreq : NaN
        cost[`w${w}/${phase}`] = { usPerOpFuseNative: usFn, usPerOpLowlevel: usLl, requestsPerOp: per, usPerRequestDifference: diff }
        costRows.push([`${phase}, ${w} worker(s)`, fmt(usFn), fmt(usLl), Object.entries(per).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(' + ') || '-', fmt(diff)])
      }
    }
    tables.push({
      title: 'the two references: wall-clock microseconds per operation (all workers together), and per FUSE request',
      columns: ['phase', 'fuse-native µs/op', 'lowlevel µs/op', 'FUSE requests per op (lowlevel counts)', 'fn − ll µs per request'],
      rows: costRows
    })
  }

  const targets = []
  if (kinds.includes('cudele') && ref) {
    targets.push(target('cudele creates/s ÷ fuse-native creates/s, 1 worker', S.ratio('cudele/w1/create', `${ref}/w1/create`), '>=', 0.7))
  }
  const filesystems: Record<string, string> = {}
  for (const k of kinds) filesystems[k] = FS_DESCRIPTIONS[k as FsKind]
  return {
    case: 'metadata',
    runs,
    params: { files, workers: WORKERS.join(' and '), phases: 'create (open O_CREAT|O_EXCL + close), stat, unlink; each phase a separate mdbench run on the same mount' },
    filesystems,
    samples: S.data,
    medians: S.medians(),
    tables,
    targets,
    notes: [
      'each (run, workers, filesystem) gets a fresh mount (for cudele, a fresh store); each phase is one mdbench run, started after sync and echo 3 > /proc/sys/vm/drop_caches, so that stat and unlink look names up in the server rather than in the kernel\'s dentry cache (tmpfs keeps its dentries regardless)',
      'entry and attribute timeouts are each filesystem\'s defaults: cudele 5 s, lowlevel reference 1 s, fuse-native libfuse 2\'s 1 s (negative entries: 5 s, 1 s, not cached)'
    ],
    extra: { requestsPerOp: requests, referenceCost: cost }
  }
}
