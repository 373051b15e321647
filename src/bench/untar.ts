// `cudele bench untar`: extract the Debian linux-source-6.1 tarball (all of it,
// or its first --members members) into cudele, the fuse-native reference and
// tmpfs; then check that cudele's tree, read back after a remount, is the
// same as tmpfs's.

import * as fs from 'fs'
import * as path from 'path'
import type { BenchContext } from './context'
import { FS_DESCRIPTIONS, type FsKind, type Mounted, mountFs, withMount } from './mounts'
import { type CaseReport, Samples, target } from './report'
import { cacheDir, cpuSeconds, fmt, log, run, runOk, shOk } from './util'

const PACKAGE = 'linux-source-6.1'
const TARBALL = `/usr/src/${PACKAGE}.tar.xz`

/** The plain (decompressed) tarball in the cache; installs the package if needed. */
async function fullTar (): Promise<string> {
  const tar = path.join(cacheDir(), `${PACKAGE}.tar`)
  if (fs.existsSync(tar)) return tar
  if (!fs.existsSync(TARBALL)) {
    log(`${TARBALL} is missing: installing the Debian package ${PACKAGE} with apt-get (waits for the apt lock)`)
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const install = (): Promise<Awaited<ReturnType<typeof run>>> =>
      run('apt-get', ['-o', 'DPkg::Lock::Timeout=1800', 'install', '-y', '--no-install-recommends', PACKAGE], { env })
    let r = await install()
    if (r.code !== 0) {
      log('apt-get install failed; running apt-get update and trying again')
      await run('apt-get', ['-o', 'DPkg::Lock::Timeout=1800', 'update'], { env })
      r = await install()
    }
    if (r.code !== 0 || !fs.existsSync(TARBALL)) throw new Error(`apt-get install ${PACKAGE} failed (${r.code}):\n${r.stderr.trim().split('\n').slice(-5).join('\n')}`)
  }
  log(`decompressing ${TARBALL} once into ${tar}`)
  const part = `${tar}.${process.pid}.part`
  try {
    await shOk(`xz -dc -T0 '${TARBALL}' > '${part}'`)
    fs.renameSync(part, tar)
  } finally {
    fs.rmSync(part, { force: true })
  }
  return tar
}

/** Members of a tarball and the 512-byte block each starts at (tar -tR). */
async function memberBlocks (tar: string): Promise<number[]> {
  const r = await runOk('tar', ['-tRf', tar])
  const blocks: number[] = []
  for (const line of r.stdout.split('\n')) {
    const m = /^block (\d+): (.*)$/.exec(line)
    if (m && !m[2].startsWith('** ')) blocks.push(Number(m[1]))
  }
  return blocks
}

/**
 * The tarball to extract: the full one, or one made of its first `members`
 * members (cut at the block where member members+1 starts, as `tar -tR`
 * reports it, and closed with an end-of-archive marker) — kept in the cache.
 */
export async function tarball (members: number | undefined): Promise<{ tar: string, members: number }> {
  const full = await fullTar()
  const countFile = `${full}.members`
  let total: number
  if (fs.existsSync(countFile)) total = Number(fs.readFileSync(countFile, 'utf8'))
  else {
    total = (await memberBlocks(full)).length
    fs.writeFileSync(countFile, String(total))
  }
  if (members === undefined || members >= total) return { tar: full, members: total }
  const sub = path.join(cacheDir(), `${PACKAGE}-first-${members}.tar`)
  if (!fs.existsSync(sub)) {
    log(`making ${sub} from the first ${members} members`)
    const blocks = await memberBlocks(full)
    const end = blocks[members] * 512
    const part = `${sub}.${process.pid}.part`
    try {
      const src = fs.openSync(full, 'r')
      const dst = fs.openSync(part, 'w')
      const buf = Buffer.alloc(1 << 20)
      for (let pos = 0; pos < end;) {
        const n = fs.readSync(src, buf, 0, Math.min(buf.length, end - pos), pos)
        if (n <= 0) throw new Error(`short read from ${full}`)
        fs.writeSync(dst, buf, 0, n)
        pos += n
      }
      fs.writeSync(dst, Buffer.alloc(10240)) // end of archive: at least two zero blocks
      fs.closeSync(src)
      fs.closeSync(dst)
      const check = await shOk(`tar -tf '${part}' | wc -l`)
      if (Number(check.stdout.trim()) !== members) throw new Error(`the subset tarball has ${check.stdout.trim()} members, not ${members}`)
      fs.renameSync(part, sub)
    } finally {
      fs.rmSync(part, { force: true })
    }
  }
  return { tar: sub, members }
}

export async function extract (tar: string, m: Mounted): Promise<{ seconds: number, warnings: string[] }> {
  const r = await run('tar', ['-xf', tar, '-C', m.mnt], { timeoutMs: 4 * 3600_000 })
  const warnings = r.stderr.trim() === '' ? [] : r.stderr.trim().split('\n')
  if (r.code !== 0) {
    if (m.kind === 'cudele' || m.kind === 'tmpfs') throw new Error(`tar -xf into ${m.kind} failed with code ${r.code}:\n${warnings.slice(0, 10).join('\n')}`)
    log(`tar into ${m.kind} exited with ${r.code} (${warnings.length} message(s), first: ${warnings[0] ?? ''})`)
  }
  return { seconds: r.seconds, warnings }
}

export interface Verification {
  diffOk: boolean
  diffOutput: string
  entries: number
  statMismatches: number
  /** Mismatches by file type and field, e.g. "regular file mtime": 78579. */
  statMismatchKinds: Record<string, number>
  statExamples: string[]
  ignored: string
}

/** Compare two trees: diff -r, then the lists of `stat -c '%n %F %a %s %Y'` (directory sizes aside). */
export async function verify (expected: string, actual: string, extractedAfter: number): Promise<Verification> {
  const d = await run('diff', ['-r', '--no-dereference', expected, actual], { timeoutMs: 3600_000 })
  const list = async (root: string): Promise<Map<string, string[]>> => {
    const r = await shOk('find . -print0 | sort -z | xargs -0 stat -c \'%n|%F|%a|%s|%Y\'', { cwd: root, timeoutMs: 3600_000 })
    const out = new Map<string, string[]>()
    for (const line of r.stdout.split('\n')) {
      if (line === '') continue
      const f = line.split('|')
      const name = f.slice(0, f.length - 4).join('|')
      out.set(name, f.slice(f.length - 4))
    }
    return out
  }
  const a = await list(expected)
  const b = await list(actual)
  const examples: string[] = []
  const kinds: Record<string, number> = {}
  let mismatches = 0
  let dirsNotRestored = 0
  const note = (s: string, kind: string): void => {
    mismatches++
    kinds[kind] = (kinds[kind] ?? 0) + 1
    if (examples.length < 10) examples.push(s)
  }
  // The roots are the mountpoints, not part of the tarball.
  a.delete('.')
  b.delete('.')
  for (const [name, fa] of a) {
    const fb = b.get(name)
    if (!fb) { note(`${name}: missing`, 'missing'); continue }
    const [type, mode, size, mtime] = fa
    const [typeB, modeB, sizeB, mtimeB] = fb
    const dir = type === 'directory'
    const fields = []
    if (type !== typeB) fields.push('type')
    if (mode !== modeB) fields.push('mode')
    if (!dir && size !== sizeB) fields.push('size')
    // GNU tar restores a directory's mtime when it leaves the directory; when
    // members of it come later in the archive (…/perf/ … …/perf-security.rst
    // … …/perf/x.rst) the mtime ends up being the time of the extraction, on
    // any filesystem. Those are left out.
    const notRestored = dir && Number(mtime) >= extractedAfter
    if (notRestored) dirsNotRestored++
    if (mtime !== mtimeB && !notRestored) fields.push('mtime')
    if (fields.length > 0) note(`${name}: tmpfs ${fa.join(' ')}, cudele ${fb.join(' ')}`, `${type} ${fields.join('+')}`)
  }
  for (const name of b.keys()) if (!a.has(name)) note(`${name}: extra in cudele`, 'extra')
  return {
    diffOk: d.code === 0,
    diffOutput: (d.stdout + d.stderr).split('\n').slice(0, 10).join('\n'),
    entries: a.size,
    statMismatches: mismatches,
    statMismatchKinds: kinds,
    statExamples: examples,
    ignored: `the size of directories (filesystem-specific), the mountpoints themselves, and the mtime of ${dirsNotRestored} directories that tar did not restore (later than the start of the tmpfs extraction)`
  }
}

export async function untarCase (ctx: BenchContext): Promise<CaseReport> {
  const runs = ctx.opts.runs
  const { tar, members } = await tarball(ctx.opts.members)
  const bytes = fs.statSync(tar).size
  const kinds = ctx.kinds(['tmpfs', 'fuse-native', 'cudele'])
  const S = new Samples()
  const warnings: Record<string, number> = {}
  // FUSE requests per member, as the lowlevel reference counts them (with --fs ...,lowlevel).
  let requests: Record<string, number> | null = null
  let verification: Verification | null = null
  let tmpStart = 0

  for (let r = 1; r <= runs; r++) {
    // tmpfs first, kept mounted until cudele's tree has been compared with it.
    const tmpSlot = ctx.slot('untar-tmpfs')
    const tmp = kinds.includes('tmpfs') ? await mountFs('tmpfs', tmpSlot.mnt, { sizeMiB: 8192 }) : null
    try {
      if (tmp) {
        tmpStart = Math.floor(Date.now() / 1000)
        const e = await extract(tar, tmp)
        S.add('tmpfs/extract', e.seconds)
        S.add('tmpfs/extract+umount', e.seconds)
        log(`untar run ${r}/${runs}, tmpfs: ${fmt(e.seconds)} s`)
      }
      for (const kind of kinds.filter(k => k !== 'tmpfs')) {
        const slot = ctx.slot(`untar-${kind}`)
        const m = await mountFs(kind, slot.mnt, ctx.mountOptions(kind, slot))
        let stopped = false
        try {
          const before = kind === 'lowlevel' && r === 1 ? await ctx.lowlevelStats(m.mnt) : null
          const cpu0 = cpuSeconds(m.pid)
          const e = await extract(tar, m)
          const cpu1 = cpuSeconds(m.pid)
          if (cpu0 !== null && cpu1 !== null) S.add(`${kind}/server cpu`, cpu1 - cpu0)
          if (before) {
            const after = await ctx.lowlevelStats(m.mnt)
            requests = {}
            for (const [op, n] of Object.entries(after.requests)) {
              const d = n - (before.requests[op] ?? 0) - (op === 'getxattr' ? 1 : 0)
              if (d > 0) requests[op] = Math.round(d / members * 1000) / 1000
            }
            log(`untar: FUSE requests per member on the lowlevel reference: ${JSON.stringify(requests)}`)
          }
          warnings[kind] = Math.max(warnings[kind] ?? 0, e.warnings.length)
          const t0 = process.hrtime.bigint()
          stopped = true
          await m.stop()
          const umount = Number(process.hrtime.bigint() - t0) / 1e9
          S.add(`${kind}/extract`, e.seconds)
          S.add(`${kind}/extract+umount`, e.seconds + umount)
          log(`untar run ${r}/${runs}, ${kind}: ${fmt(e.seconds)} s (+ ${fmt(umount)} s to unmount)`)
          if (kind === 'cudele' && tmp && r === 1) {
            // Read the tree back from the store, not from caches.
            await withMount('cudele', slot.mnt, ctx.mountOptions('cudele', slot), async m2 => {
              const t1 = process.hrtime.bigint()
              verification = await verify(tmp.mnt, m2.mnt, tmpStart)
              const v = verification
              log(`untar verification (${fmt(Number(process.hrtime.bigint() - t1) / 1e9)} s): diff -r ${v.diffOk ? 'identical' : 'DIFFERS'}, ${v.entries} entries, ${v.statMismatches} stat mismatch(es)${v.statMismatches > 0 ? ` (${Object.entries(v.statMismatchKinds).map(([k, n]) => `${k}: ${n}`).join(', ')}; e.g. ${v.statExamples[0]})` : ''}`)
            })
          }
        } finally {
          if (!stopped) await m.stop().catch(err => log(`unmount after a failure: ${(err as Error).message}`))
        }
        ctx.release(slot)
      }
    } finally {
      await tmp?.stop()
      ctx.release(tmpSlot)
    }
  }

  const ref = kinds.includes('fuse-native') ? 'fuse-native' : null
  const rows: string[][] = []
  for (const kind of kinds) {
    rows.push([
      kind,
      fmt(S.median(`${kind}/extract`)),
      ref ? fmt(S.ratio(`${kind}/extract`, `${ref}/extract`), 2) : '-',
      kinds.includes('tmpfs') ? fmt(S.ratio(`${kind}/extract`, 'tmpfs/extract'), 2) : '-',
      fmt(S.median(`${kind}/extract+umount`)),
      fmt(members / S.median(`${kind}/extract`)),
      S.has(`${kind}/server cpu`) ? fmt(S.median(`${kind}/server cpu`)) : '-'
    ])
  }
  const targets = []
  if (kinds.includes('cudele') && ref) {
    targets.push(target(`cudele's extraction time ÷ fuse-native's (${members} members)`, S.ratio('cudele/extract', `${ref}/extract`), '<=', 1.5))
  }
  const v = verification as Verification | null
  if (v) {
    targets.push({ name: 'cudele tree after a remount = tmpfs tree (diff -r, stat mode/size/mtime)', value: v.diffOk && v.statMismatches === 0 ? 1 : 0, target: 'identical', pass: v.diffOk && v.statMismatches === 0 })
  }
  const filesystems: Record<string, string> = {}
  for (const k of kinds) filesystems[k] = FS_DESCRIPTIONS[k as FsKind]
  const notes = [`server CPU s: user + system CPU seconds of the FUSE server process (all threads) during tar`, `tar -xf ${tar} -C MNT, as root (so owners, modes and mtimes are restored); wall-clock seconds of tar; "+ umount" adds the time to unmount (for cudele: flushing buffered data and the journal)`]
  for (const [k, n] of Object.entries(warnings)) if (n > 0) notes.push(`tar printed ${n} message(s) extracting into ${k}`)
  if (v && v.statMismatches > 0) {
    notes.push(`verification: ${v.statMismatches} of ${v.entries} entries differ from tmpfs (${Object.entries(v.statMismatchKinds).map(([k, n]) => `${k}: ${n}`).join(', ')}), e.g. ${v.statExamples.slice(0, 3).join('; ')}`)
  }
  return {
    case: 'untar',
    runs,
    params: { tarball: tar, members, bytes },
    filesystems,
    samples: S.data,
    medians: S.medians(),
    tables: [{
      title: `extracting ${members} members (${fmt(bytes / 1e6)} MB)`,
      columns: ['filesystem', 'seconds', '× fuse-native', '× tmpfs', 'seconds incl. umount', 'members/s', 'server CPU s'],
      rows
    }],
    targets,
    notes,
    extra: { verification: v, requestsPerMember: requests }
  }
}
