// The paper's flash crowd of creates through the filesystem: the Debian
// linux-source-6.1 tarball (its first --members members, default 20,000)
// extracted by tar into a strong/global subtree and into a weak/local one,
// each through its own client mount of one `cudele serve` (so every request
// of the strong subtree crosses the socket), and into tmpfs, in the same run.
// The weak subtree is then merged (`cudele sync`) and, in the first run, read
// back through the other client's mount and compared with tmpfs's tree.

import * as fs from 'fs'
import * as path from 'path'
import type { BenchContext } from './context'
import { type Mounted, mountFs } from './mounts'
import { type Samples, type Table, type Target, target } from './report'
import { extract, tarball, verify, type Verification } from './untar'
import { CLI, CLI_NODE_ARGS, fmt, log, runOk } from './util'
import type { FigureOut } from './figures'

/** Members extracted unless --members says otherwise. */
const MEMBERS = 20_000

export const UNTAR_SUBTREES: Array<{ key: string, name: string, yaml: (members: number) => string }> = [
  { key: 'strong', name: 'strong/global', yaml: () => 'consistency: strong\ndurability: global\n' },
  { key: 'weak', name: 'weak/local', yaml: members => `consistency: weak\ndurability: local\nallocated_inodes: ${members + 1000}\n` }
]

/** Make dir in the mount with a policies.yml (checked by the mount when it is closed). */
function subtree (m: Mounted, name: string, yaml: string): string {
  const dir = path.join(m.mnt, name)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'policies.yml'), yaml)
  return dir
}

export async function untarSubtrees (ctx: BenchContext, S: Samples): Promise<FigureOut> {
  const runs = ctx.opts.runs
  const { tar, members } = await tarball(ctx.opts.members ?? MEMBERS)
  let verification: Verification | null = null
  for (let r = 1; r <= runs; r++) {
    const tmpSlot = ctx.slot('untar-tmpfs')
    const tmp = await mountFs('tmpfs', tmpSlot.mnt, { sizeMiB: 8192 })
    try {
      const tmpStart = Math.floor(Date.now() / 1000)
      const e = await extract(tar, tmp)
      S.add('untar/tmpfs', e.seconds)
      log(`untar-subtrees run ${r}/${runs}, tmpfs: ${fmt(e.seconds)} s`)
      await ctx.withServer('untar-serve', async (server, slot) => {
        // One client mount per subtree; their client journals stay in the slot.
        const mounts: Mounted[] = []
        try {
          for (const s of UNTAR_SUBTREES) {
            const mnt = path.join(slot.root, `mnt-${s.key}`)
            mounts.push(await mountFs('cudele', mnt, { connect: server.address, args: ctx.opts.mountArgs, env: { XDG_STATE_HOME: path.join(slot.root, 'state') } }))
          }
          // Alternate which subtree goes first, so neither always gets the fresher server.
          const order = r % 2 === 1 ? [0, 1] : [1, 0]
          for (const i of order) {
            const s = UNTAR_SUBTREES[i]
            const m = mounts[i]
            const dir = subtree(m, s.key, s.yaml(members))
            const x = await extract(tar, { ...m, mnt: dir })
            S.add(`untar/${s.key}`, x.seconds)
            let sync = 0
            if (s.key === 'weak') {
              const t0 = performance.now()
              await runOk(process.execPath, [...CLI_NODE_ARGS, CLI, 'sync', dir], { timeoutMs: 3600_000 })
              sync = (performance.now() - t0) / 1000
              S.add('untar/weak sync', sync)
              S.add('untar/weak+sync', x.seconds + sync)
            }
            log(`untar-subtrees run ${r}/${runs}, ${s.name} through a client mount: ${fmt(x.seconds)} s${s.key === 'weak' ? ` + ${fmt(sync)} s to merge (cudele sync)` : ''}`)
          }
          S.add('untar/strong ÷ weak', S.data['untar/strong'][r - 1] / S.data['untar/weak'][r - 1])
          S.add('untar/strong ÷ weak+sync', S.data['untar/strong'][r - 1] / S.data['untar/weak+sync'][r - 1])
          if (r === 1) {
            // The merged subtree, seen through the other client's mount.
            const t0 = performance.now()
            // The tarball has one top directory; the subtree holds it and its policies.yml.
            const top = fs.readdirSync(tmp.mnt).filter(n => n !== 'lost+found')
            if (top.length !== 1) throw new Error(`expected one top directory in the tarball, found ${top.join(', ')}`)
            verification = await verify(path.join(tmp.mnt, top[0]), path.join(mounts[0].mnt, 'weak', top[0]), tmpStart)
            const v = verification
            log(`untar-subtrees verification (${fmt((performance.now() - t0) / 1000)} s): the merged weak/local tree seen by the other client: diff -r ${v.diffOk ? 'identical' : 'DIFFERS'}, ${v.entries} entries, ${v.statMismatches} stat mismatch(es)${v.statMismatches > 0 ? ` (e.g. ${v.statExamples[0]})` : ''}`)
          }
        } finally {
          for (const m of mounts.reverse()) await m.stop().catch(err => log(`unmount: ${(err as Error).message}`))
        }
      })
    } finally {
      await tmp.stop()
      ctx.release(tmpSlot)
    }
  }
  const v = verification as Verification | null
  const rows: string[][] = [
    ['tmpfs', fmt(S.median('untar/tmpfs')), '-', '1', fmt(members / S.median('untar/tmpfs'))],
    ['strong/global (client mount)', fmt(S.median('untar/strong')), '-', fmt(S.ratio('untar/strong', 'untar/tmpfs')), fmt(members / S.median('untar/strong'))],
    ['weak/local (client mount)', fmt(S.median('untar/weak')), fmt(S.median('untar/weak sync')), fmt(S.ratio('untar/weak', 'untar/tmpfs')), fmt(members / S.median('untar/weak'))]
  ]
  const table: Table = {
    title: `untar of ${members} members of ${path.basename(tar)} through client mounts of one cudele serve`,
    columns: ['subtree', 'tar seconds', 'cudele sync seconds', '× tmpfs', 'members/s'],
    rows
  }
  const targets: Target[] = [
    target('untar: strong/global time ÷ weak/local time (client mounts of cudele serve)', S.median('untar/strong ÷ weak'), '>=', 1.5)
  ]
  if (v) targets.push({ name: 'untar: merged weak/local tree seen by the other client = tmpfs tree', value: v.diffOk && v.statMismatches === 0 ? 1 : 0, target: 'identical', pass: v.diffOk && v.statMismatches === 0 })
  return {
    params: { untar_members: members, untar_tarball: tar },
    tables: [table],
    targets,
    notes: [
      `untar: strong/global ÷ weak/local including the merge (cudele sync): ${fmt(S.median('untar/strong ÷ weak+sync'))} (median of per-run ratios)`,
      ...(v && v.statMismatches > 0 ? [`untar verification: ${v.statMismatches} of ${v.entries} entries differ (${Object.entries(v.statMismatchKinds).map(([k, n]) => `${k}: ${n}`).join(', ')}), e.g. ${v.statExamples.slice(0, 3).join('; ')}`] : [])
    ]
  }
}
