// `cudele bench million`: 1,000,000 empty files in 1,000 directories, made
// through a cudele mount by 4 mdbench workers, then listed with find; the
// server's resident memory is sampled every second, and the store's size per
// file is measured after a clean unmount. The tree is listed again after a
// remount (the server starts with empty caches).

import * as fs from 'fs'
import * as path from 'path'
import type { BenchContext } from './context'
import { FS_DESCRIPTIONS, type Mounted, withMount } from './mounts'
import { type CaseReport, Samples, target } from './report'
import { fileBytes, fmt, log, shOk } from './util'

const WORKERS = 4

function statusKiB (pid: number, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/** Sample VmRSS of the server every second until stopped; returns the peak in bytes and the samples (s, MB). */
function rssSampler (pid: number): { stop: () => { sampledPeak: number, hwm: number, samples: number, timeline: Array<[number, number]> } } {
  let peak = 0
  let n = 0
  const t0 = Date.now()
  const timeline: Array<[number, number]> = []
  const sample = (): void => {
    const kib = statusKiB(pid, 'VmRSS')
    if (kib !== null) {
      peak = Math.max(peak, kib * 1024)
      n++
      timeline.push([Math.round((Date.now() - t0) / 100) / 10, Math.round(kib * 1.024) / 1000])
    }
  }
  sample()
  const timer = setInterval(sample, 1000)
  return {
    stop () {
      sample()
      clearInterval(timer)
      // The kernel's own high-water mark, for what falls between samples.
      const hwm = (statusKiB(pid, 'VmHWM') ?? 0) * 1024
      return { sampledPeak: peak, hwm, samples: n, timeline }
    }
  }
}

async function list (m: Mounted): Promise<{ entries: number, seconds: number }> {
  const r = await shOk(`find '${m.mnt}' | wc -l`, { timeoutMs: 4 * 3600_000 })
  return { entries: Number(r.stdout.trim()), seconds: r.seconds }
}

export async function millionCase (ctx: BenchContext): Promise<CaseReport> {
  const files = ctx.opts.files ?? 1_000_000
  const dirs = Math.max(WORKERS, Math.round(files / 1000 / WORKERS) * WORKERS)
  const runs = ctx.opts.runs
  const S = new Samples()
  const stores: Array<Record<string, number>> = []
  const timelines: Array<Array<[number, number]>> = []
  // Entries find should see: the root, the workers' directories, their subdirectories, the files.
  const expectedEntries = 1 + WORKERS + dirs + files

  for (let r = 1; r <= runs; r++) {
    const slot = ctx.slot('million-cudele')
    const opts = ctx.mountOptions('cudele', slot)
    await withMount('cudele', slot.mnt, opts, async m => {
      if (m.pid === null) throw new Error('no server pid')
      const rss = rssSampler(m.pid)
      const c = await ctx.mdbenchRun(m.mnt, ['--files', files, '--workers', WORKERS, '--dirs', dirs / WORKERS, '--phases', 'create', '--tag', 'mm'])
      const l = await list(m)
      const peak = rss.stop()
      timelines.push(peak.timeline)
      if (l.entries !== expectedEntries) throw new Error(`find listed ${l.entries} entries, not ${expectedEntries}`)
      S.add('create/s', c.phases.create?.ops_per_s ?? NaN)
      S.add('list seconds', l.seconds)
      S.add('peak RSS MB (sampled)', peak.sampledPeak / 1e6)
      S.add('peak RSS MB (VmHWM)', peak.hwm / 1e6)
      log(`million run ${r}/${runs}: ${fmt(c.phases.create?.ops_per_s)} creates/s, find ${fmt(l.seconds)} s, peak RSS ${fmt(peak.hwm / 1e6)} MB (sampled ${fmt(peak.sampledPeak / 1e6)} MB)`)
    })
    const sizes = fileBytes(['store.db', 'store.db-wal', 'store.db-shm'].map(f => path.join(slot.store, f)))
    stores.push(sizes)
    const bytes = sizes['store.db'] + sizes['store.db-wal']
    S.add('store bytes per file', bytes / files)
    log(`million run ${r}/${runs}: store.db ${sizes['store.db']} + store.db-wal ${sizes['store.db-wal']} bytes = ${fmt(bytes / files)} bytes per file`)
    // Cold: a new server lists the tree from the store.
    await withMount('cudele', slot.mnt, opts, async m => {
      if (m.pid === null) throw new Error('no server pid')
      const rss = rssSampler(m.pid)
      const l = await list(m)
      const peak = rss.stop()
      if (l.entries !== expectedEntries) throw new Error(`find listed ${l.entries} entries after the remount, not ${expectedEntries}`)
      S.add('cold list seconds', l.seconds)
      S.add('cold list peak RSS MB (VmHWM)', peak.hwm / 1e6)
      log(`million run ${r}/${runs}, after a remount: find ${fmt(l.seconds)} s, peak RSS ${fmt(peak.hwm / 1e6)} MB`)
    })
    ctx.release(slot)
  }

  const rows = Object.keys(S.data).map(k => [k, fmt(S.median(k)), S.data[k].map(x => fmt(x)).join(' ')])
  const peak = Math.max(S.median('peak RSS MB (VmHWM)'), S.has('cold list peak RSS MB (VmHWM)') ? S.median('cold list peak RSS MB (VmHWM)') : 0)
  return {
    case: 'million',
    runs,
    params: { files, directories: dirs, workers: WORKERS },
    filesystems: { cudele: FS_DESCRIPTIONS.cudele },
    samples: S.data,
    medians: S.medians(),
    tables: [{
      title: `${files} empty files in ${dirs} directories (${WORKERS} mdbench workers), then find | wc -l; again after a remount`,
      columns: ['measure', 'median', 'runs'],
      rows
    }],
    targets: [
      target('peak RSS of the server, MB (10^6 bytes; VmHWM, ≥ the 1 s samples)', peak, '<', 400),
      target('store bytes per file (store.db + store.db-wal after unmount)', S.median('store bytes per file'), '<=', 250)
    ],
    notes: ['RSS is VmRSS from /proc/PID/status, sampled every second, and VmHWM (the kernel\'s high-water mark) read at the end of each phase'],
    extra: { storeFiles: stores, rssTimelines: timelines }
  }
}
