// `cudele bench durable`: 1 and 4 writers, each creating files and fsync'ing
// every one before closing it (mdbench --fsync). With group commit, four
// writers' fsyncs share commits, so four writers should make files at least
// twice as fast as one; if an fsync blocked the JavaScript thread, they could
// not.

import type { BenchContext } from './context'
import { FS_DESCRIPTIONS, type FsKind, withMount } from './mounts'
import { type CaseReport, Samples, target } from './report'
import { fmt, log } from './util'

const WORKERS = [1, 4]

export async function durableCase (ctx: BenchContext): Promise<CaseReport> {
  const files = ctx.opts.files ?? 4000
  const runs = ctx.opts.runs
  const kinds = ctx.kinds(['cudele', 'tmpfs'])
  const S = new Samples()

  for (let run = 1; run <= runs; run++) {
    for (const kind of kinds) {
      for (const w of WORKERS) {
        const slot = ctx.slot(`durable-${kind}`)
        await withMount(kind, slot.mnt, ctx.mountOptions(kind, slot, { sizeMiB: 1024 }), async m => {
          const r = await ctx.mdbenchRun(m.mnt, ['--files', files, '--workers', w, '--fsync', '--tag', 'du'])
          for (const phase of ['create', 'stat', 'unlink'] as const) {
            const p = r.phases[phase]
            if (p) S.add(`${kind}/w${w}/${phase}`, p.ops_per_s)
          }
          log(`durable run ${run}/${runs}, ${kind}, ${w} writer(s): ${fmt(r.phases.create?.ops_per_s)} fsync'd creates/s`)
        })
        ctx.release(slot)
      }
    }
  }

  const rows: string[][] = []
  for (const kind of kinds) {
    const c1 = S.median(`${kind}/w1/create`)
    const c4 = S.median(`${kind}/w4/create`)
    rows.push([kind, fmt(c1), fmt(c4), fmt(S.ratio(`${kind}/w4/create`, `${kind}/w1/create`), 2), fmt(1e3 / c1), fmt(4e3 / c4)])
  }
  const targets = []
  if (kinds.includes('cudele')) {
    targets.push(target('cudele fsync\'d creates/s with 4 writers ÷ with 1 writer', S.ratio('cudele/w4/create', 'cudele/w1/create'), '>=', 2))
  }
  const filesystems: Record<string, string> = {}
  for (const k of kinds) filesystems[k] = FS_DESCRIPTIONS[k as FsKind]
  return {
    case: 'durable',
    runs,
    params: { files, writers: WORKERS.join(' and '), workload: 'mdbench --fsync: open O_CREAT|O_EXCL, fsync, close' },
    filesystems,
    samples: S.data,
    medians: S.medians(),
    tables: [{
      title: `fsync'd file creations per second (${files} files in all, split over the writers)`,
      columns: ['filesystem', '1 writer /s', '4 writers /s', '4 ÷ 1', 'ms per fsync\'d create, 1 writer', 'ms per create per writer, 4 writers'],
      rows
    }],
    targets,
    notes: ['tmpfs is there for scale only: its fsync does nothing'],
    extra: {}
  }
}
