// `cudele fsck --store DIR [--repair]`

import * as path from 'path'
import { checkNamespace, type FsckReport, openMds } from '../mds'
import { ROOT_INO } from '../common/types'
import { openStore, type SqliteStore } from '../store'

/** Exit codes, in the spirit of e2fsck. */
export const FSCK_CLEAN = 0
export const FSCK_REPAIRED = 1
export const FSCK_PROBLEMS = 4
export const FSCK_FAILED = 8

const REPAIR_PASSES = 4

export interface FsckResult {
  code: number
  report: FsckReport
  repaired: number
}

async function check (store: SqliteStore, lostFound?: number): Promise<FsckReport> {
  const mds = await openMds(store, { readOnly: true })
  try {
    return checkNamespace(mds, store, { lostFound })
  } finally {
    await mds.close()
  }
}

export async function fsck (storeDir: string, repair: boolean, out: (line: string) => void): Promise<FsckResult> {
  const store = await openStore(path.resolve(storeDir), { readOnly: !repair })
  try {
    if (!repair) {
      const report = await check(store)
      for (const p of report.problems) out(`${p.kind}: ${p.message}`)
      return { code: report.problems.length === 0 ? FSCK_CLEAN : FSCK_PROBLEMS, report, repaired: 0 }
    }
    // Fold the journal into the store (and finish pending purges) the way a mount would.
    const mds = await openMds(store)
    let lostFound: number | undefined
    const existing = mds.lookupOrNull(ROOT_INO, 'lost+found')
    const first = checkNamespace(mds, store)
    if (first.problems.some(p => p.kind === 'orphan-inode')) {
      lostFound = existing?.ino ?? mds.mkdir(ROOT_INO, 'lost+found', 0o700, { uid: 0, gid: 0, pid: 0 }).ino
    }
    await mds.close()
    let repaired = 0
    let report = await check(store, lostFound)
    for (let pass = 0; pass < REPAIR_PASSES && report.problems.some(p => p.fix.length > 0); pass++) {
      for (const p of report.problems) {
        if (p.fix.length === 0) continue
        out(`fixed ${p.kind}: ${p.message}`)
        await store.submit(p.fix, { durable: false })
        repaired++
      }
      await store.sync()
      report = await check(store, lostFound)
    }
    for (const p of report.problems) out(`${p.kind}: ${p.message}`)
    const code = report.problems.length > 0 ? FSCK_PROBLEMS : repaired > 0 ? FSCK_REPAIRED : FSCK_CLEAN
    return { code, report, repaired }
  } finally {
    await store.close()
  }
}
