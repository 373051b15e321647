// `cudele bench seq`: 1 GiB written with dd bs=1M conv=fsync, then read back
// with cold caches (kernel caches dropped; cudele remounted), on cudele, the
// fuse-native reference with and without big writes, the lowlevel reference
// and tmpfs.

import * as path from 'path'
import type { BenchContext } from './context'
import { FS_DESCRIPTIONS, type FsKind, type Mounted, mountFs } from './mounts'
import { type CaseReport, Samples, target } from './report'
import { cpuSeconds, dropCaches, fmt, log, run } from './util'

async function dd (args: string[]): Promise<{ bytes: number, seconds: number }> {
  const r = await run('dd', args, { timeoutMs: 3600_000 })
  if (r.code !== 0) throw new Error(`dd ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
  const m = /(\d+) bytes .* copied, ([\d.e+-]+) s/.exec(r.stderr)
  if (!m) throw new Error(`cannot read dd's report: ${r.stderr.trim()}`)
  return { bytes: Number(m[1]), seconds: Number(m[2]) }
}

export async function seqCase (ctx: BenchContext): Promise<CaseReport> {
  const sizeMiB = ctx.opts.sizeMiB ?? 1024
  const runs = ctx.opts.runs
  const kinds = ctx.kinds(['cudele', 'fuse-native-big', 'fuse-native', 'lowlevel', 'tmpfs'])
  const S = new Samples()
  const expected = sizeMiB * 2 ** 20

  for (let r = 1; r <= runs; r++) {
    for (const kind of kinds) {
      const slot = ctx.slot(`seq-${kind}`)
      const opts = ctx.mountOptions(kind, slot, { sizeMiB: sizeMiB + 512 })
      let m: Mounted | null = await mountFs(kind, slot.mnt, opts)
      try {
        const file = path.join(slot.mnt, 'big')
        dropCaches()
        const cpu0 = cpuSeconds(m.pid)
        const w = await dd(['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${sizeMiB}`, 'conv=fsync'])
        const cpu1 = cpuSeconds(m.pid)
        if (cpu0 !== null && cpu1 !== null) S.add(`${kind}/write server cpu s`, cpu1 - cpu0)
        if (w.bytes !== expected) throw new Error(`dd wrote ${w.bytes} bytes, not ${expected}`)
        if (kind === 'cudele') {
          // Cold read: a new server with empty caches.
          const mm = m
          m = null
          await mm.stop()
          m = await mountFs(kind, slot.mnt, opts)
        }
        dropCaches()
        const rd = await dd([`if=${file}`, 'of=/dev/null', 'bs=1M'])
        if (rd.bytes !== expected) throw new Error(`dd read ${rd.bytes} bytes back, not ${expected}`)
        S.add(`${kind}/write`, w.bytes / 1e6 / w.seconds)
        S.add(`${kind}/read`, rd.bytes / 1e6 / rd.seconds)
        log(`seq run ${r}/${runs}, ${kind}: write ${fmt(w.bytes / 1e6 / w.seconds)} MB/s, read ${fmt(rd.bytes / 1e6 / rd.seconds)} MB/s`)
      } finally {
        if (m) await m.stop()
      }
      ctx.release(slot)
    }
  }

  const ref = kinds.includes('fuse-native-big') ? 'fuse-native-big' : null
  const rows: string[][] = []
  for (const kind of kinds) {
    rows.push([
      kind,
      fmt(S.median(`${kind}/write`)),
      fmt(S.median(`${kind}/read`)),
      ref ? fmt(S.ratio(`${kind}/write`, `${ref}/write`), 2) : '-',
      ref ? fmt(S.ratio(`${kind}/read`, `${ref}/read`), 2) : '-',
      S.has(`${kind}/write server cpu s`) ? fmt(S.median(`${kind}/write server cpu s`)) : '-'
    ])
  }
  const targets = []
  if (kinds.includes('cudele') && ref) {
    targets.push(target('cudele write MB/s ÷ fuse-native big-writes write MB/s', S.ratio('cudele/write', `${ref}/write`), '>=', 0.7))
  }
  const notes = [
    `write: dd if=/dev/zero of=MNT/big bs=1M count=${sizeMiB} conv=fsync; read: dd if=MNT/big of=/dev/null bs=1M; MB/s = 10^6 bytes per second, from dd's own time`,
    'kernel caches are dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before the write and before the read; cudele is unmounted and mounted again between them, so its server starts the read cold (tmpfs keeps its pages in memory regardless)'
  ]
  if (kinds.includes('fuse-native') && kinds.includes('fuse-native-big')) {
    notes.push(`fuse-native without big writes writes at ${fmt(S.ratio('fuse-native/write', 'fuse-native-big/write'), 2)}× its big-writes speed`)
  }
  const filesystems: Record<string, string> = {}
  for (const k of kinds) filesystems[k] = FS_DESCRIPTIONS[k as FsKind]
  return {
    case: 'seq',
    runs,
    params: { sizeMiB },
    filesystems,
    samples: S.data,
    medians: S.medians(),
    tables: [{
      title: `sequential ${sizeMiB} MiB, MB/s`,
      columns: ['filesystem', 'write MB/s', 'read MB/s', 'write × fn-big', 'read × fn-big', 'server CPU s (write)'],
      rows
    }],
    targets,
    notes,
    extra: {}
  }
}
