// Capability bits and policies: what a client may cache or buffer per inode,
// and how long a holder may keep it (the inode's `user.cudele.caps`). Shared
// by the client, which holds capabilities, and the MDS, which grants and
// revokes them (src/mds/caps.ts says how).

import { fsError } from './errors'

export const CAP_CACHE = 1
export const CAP_BUFFER = 2

export type CapPolicy = { kind: 'best-effort' } | { kind: 'lease', ms: number } | { kind: 'never' }

export const CAP_POLICY_XATTR = 'user.cudele.caps'
export const DEFAULT_CAP_POLICY: CapPolicy = { kind: 'best-effort' }
/** Longest lease accepted (a day). */
const LEASE_MS_MAX = 86_400_000

export function parseCapPolicy (text: string): CapPolicy {
  const t = text.trim()
  if (t === 'best-effort') return { kind: 'best-effort' }
  if (t === 'never') return { kind: 'never' }
  const m = /^lease=(\d+)$/.exec(t)
  if (m) {
    const ms = Number(m[1])
    if (ms < 1 || ms > LEASE_MS_MAX) throw fsError('EINVAL', `cap policy ${JSON.stringify(t)}: the lease must be 1..${LEASE_MS_MAX} ms`)
    return { kind: 'lease', ms }
  }
  throw fsError('EINVAL', `cap policy ${JSON.stringify(t)}: expected best-effort, lease=<ms> or never`)
}

export function formatCapPolicy (p: CapPolicy): string {
  return p.kind === 'lease' ? `lease=${p.ms}` : p.kind
}
