// `cudele policy check|show|set`, `cudele sync`, `cudele merge`.
//
// These work through a mounted cudele filesystem: the mount answers the
// virtual attributes user.cudele.* of its directories (src/cudele/router.ts),
// so they reach the right server (or embedded store) without another address.

import * as fs from 'fs'
import * as path from 'path'
import { loadBinding } from '../fuse/native'
import { parsePolicy, describePolicy } from '../cudele/policy'
import { VXATTR } from '../cudele/service'

function checkDir (dir: string): string {
  const full = path.resolve(dir)
  let st: fs.Stats
  try {
    st = fs.statSync(full)
  } catch (err) {
    throw new Error(`${full}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (err as Error).message}`)
  }
  if (!st.isDirectory()) throw new Error(`${full} is not a directory`)
  return full
}

function viaMount<T> (dir: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'EOPNOTSUPP' || code === 'ENODATA') throw new Error(`${dir} is not in a mounted cudele filesystem`)
    throw err
  }
}

export function policyCheck (file: string): number {
  const text = fs.readFileSync(file, 'utf8')
  try {
    const { policy } = parsePolicy(text, file)
    console.log(`${file}: ok: ${describePolicy(policy)}`)
    return 0
  } catch (err) {
    console.error((err as Error).message.replace(/^EINVAL: /, ''))
    return 1
  }
}

export function policyShow (dir: string, json: boolean): number {
  const full = checkDir(dir)
  const raw = viaMount(full, () => loadBinding().xattrGet(full, VXATTR.policy))
  if (!raw) throw new Error(`${full} is not in a mounted cudele filesystem`)
  const report = JSON.parse(raw.toString()) as Record<string, unknown>
  if (json) {
    console.log(JSON.stringify(report, null, 2))
    return 0
  }
  console.log(`${full}:`)
  console.log(`  policy from ${String(report.source)}${report.version ? `, version ${String(report.version)}` : ''}`)
  console.log(`  ${String(report.summary)}`)
  if (report.means) console.log(`  what it means: ${String(report.means)}`)
  if (report.owner) console.log(`  decoupled by client ${String(report.owner)}${report.owned_here ? ' (this mount)' : ''}; unmerged journal segments here: ${String(report.unmerged_segments)}`)
  return 0
}

/** Set a policy: checked here first, then written as DIR/policies.yml through the mount (checked again there). */
export function policySet (dir: string, file: string): number {
  const full = checkDir(dir)
  const text = fs.readFileSync(file, 'utf8')
  try {
    parsePolicy(text, path.join(full, 'policies.yml'))
  } catch (err) {
    console.error((err as Error).message.replace(/^EINVAL: /, ''))
    return 1
  }
  try {
    fs.writeFileSync(path.join(full, 'policies.yml'), text)
  } catch (err) {
    console.error(`cudele: the mount refused the policy for ${full}: ${(err as Error).message} (see cudele log for the reason)`)
    return 1
  }
  return policyShow(full, false)
}

export function syncOrMerge (dir: string, merge: boolean): number {
  const full = checkDir(dir)
  try {
    viaMount(full, () => loadBinding().xattrSet(full, merge ? VXATTR.merge : VXATTR.sync, '1'))
  } catch (err) {
    // The mount can only answer with an errno: say why, from the policy in force.
    const code = (err as { code?: string }).code
    if (code !== 'EINVAL' && code !== 'EBUSY') throw err
    let report: Record<string, unknown> | null = null
    try {
      report = JSON.parse(loadBinding().xattrGet(full, VXATTR.policy)?.toString() ?? 'null') as Record<string, unknown> | null
    } catch {}
    if (code === 'EINVAL' && report?.consistency === 'invisible') {
      throw Object.assign(new Error(`${full} has invisible consistency (policy from ${String(report.source)}): it is merged only by \`cudele merge ${dir}\`, not by sync`), { code })
    }
    if (code === 'EBUSY' && report?.owner) {
      throw Object.assign(new Error(`${full} is decoupled by client ${String(report.owner)}, not by this mount: only that client can merge it`), { code })
    }
    throw err
  }
  return 0
}
