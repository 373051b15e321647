// Capabilities: which session may cache or buffer what, per inode.
//
//   CACHE  (shared)    the holder may cache the inode's attributes and data
//   BUFFER (exclusive) the holder may buffer writes (and so change size/mtime
//                      without telling the MDS at once)
//
// BUFFER conflicts with every other session's CACHE or BUFFER; CACHE
// conflicts with other sessions' BUFFER. A session that asks for a
// conflicting capability waits while the MDS revokes it from the holders
// (they flush and let go). How long a holder may take is the inode's cap
// policy:
//   best-effort   no deadline: the holder lets go when it has flushed (a
//                 holder that dies is evicted with its session, which frees it)
//   lease N ms    a grant is valid for N ms and must be renewed; a revoke
//                 waits at most until the holder's grant expires
//   never         nothing is cacheable: no capability is granted and every
//                 access goes to the MDS
//
// The policy lives in the inode as the xattr `user.cudele.caps`
// ("best-effort", "lease=<ms>", "never").

import { CAP_BUFFER, CAP_CACHE, type CapPolicy } from '../common/caps'
import { invariant } from '../common/assert'
import { fsError } from '../common/errors'
import type { Ino } from '../common/types'

/** One session's grant on one inode. */
export interface Grant {
  bits: number
  /** Lease grants: when they stop being valid unless renewed (ms, monotonic). Infinity otherwise. */
  expiresAtMs: number
  /** Bits the MDS has asked the holder to give back. */
  revoking: number
}

/** How the table talks to sessions. */
export interface CapSessions {
  /** Ask a session to give back bits of an inode (it flushes, then calls release). */
  sendRevoke (session: number, ino: Ino, bits: number): void
  /** Is the session still open (not evicted or closed)? */
  isOpen (session: number): boolean
}

interface Waiter {
  session: number
  want: number
  resolve: () => void
}

interface InodeCaps {
  grants: Map<number, Grant>
  waiters: Waiter[]
  timer: NodeJS.Timeout | null
}

function conflicts (want: number, held: number): boolean {
  if (want & CAP_BUFFER) return held !== 0
  if (want & CAP_CACHE) return (held & CAP_BUFFER) !== 0
  return false
}

export interface CapStats {
  grants: number
  revokes: number
  forcedExpiries: number
}

export class CapTable {
  private readonly inodes = new Map<Ino, InodeCaps>()
  readonly stats: CapStats = { grants: 0, revokes: 0, forcedExpiries: 0 }

  constructor (private readonly sessions: CapSessions, private readonly nowMs: () => number = () => performance.now()) {}

  /**
   * Grant `want` bits of ino to session, after revoking what conflicts.
   * Resolves with the grant (bits may include ones already held). With the
   * "never" policy nothing is granted: resolves with bits 0 at once.
   */
  async acquire (ino: Ino, session: number, want: number, policy: CapPolicy): Promise<Grant> {
    if (policy.kind === 'never') return { bits: 0, expiresAtMs: Infinity, revoking: 0 }
    for (;;) {
      if (!this.sessions.isOpen(session)) throw fsError('ESTALE', `session ${session} is closed`)
      // Fetched afresh each round: wake() drops the record of an inode nobody holds.
      const caps = this.caps(ino)
      this.expire(ino, caps)
      const blockers = [...caps.grants].filter(([s, g]) => s !== session && conflicts(want, g.bits))
      if (blockers.length === 0) break
      for (const [s, g] of blockers) {
        const give = want & CAP_BUFFER ? g.bits : g.bits & CAP_BUFFER
        if ((g.revoking & give) !== give) {
          g.revoking |= give
          this.stats.revokes++
          this.sessions.sendRevoke(s, ino, give)
        }
      }
      this.armExpiry(ino, caps)
      await new Promise<void>(resolve => caps.waiters.push({ session, want, resolve }))
    }
    const caps = this.caps(ino)
    const now = this.nowMs()
    // BUFFER is exclusive: whatever this session now holds conflicts with no other holder's grant.
    invariant(![...caps.grants].some(([s, g]) => s !== session && g.expiresAtMs > now && conflicts(want, g.bits)),
      () => `inode ${ino}: session ${session} gets bits ${want} while ${[...caps.grants].filter(([s]) => s !== session).map(([s, g]) => `${s}:${g.bits}`).join(', ')} hold conflicting ones`)
    const expiresAtMs = policy.kind === 'lease' ? now + policy.ms : Infinity
    const g = caps.grants.get(session)
    if (g) {
      g.bits |= want
      // A grant being revoked is not renewed: the revoke's deadline stands (and
      // the revoke stays pending), or a holder that ignores revokes but renews
      // its lease in time would keep the waiters out forever.
      if (g.revoking === 0) g.expiresAtMs = expiresAtMs
      this.stats.grants++
      return { ...g }
    }
    const grant: Grant = { bits: want, expiresAtMs, revoking: 0 }
    caps.grants.set(session, grant)
    this.stats.grants++
    return { ...grant }
  }

  /** A holder gives back bits (after a revoke, or on close). */
  release (ino: Ino, session: number, bits: number): void {
    const caps = this.inodes.get(ino)
    const g = caps?.grants.get(session)
    if (!caps || !g) return
    g.bits &= ~bits
    g.revoking &= ~bits
    if (g.bits === 0) caps.grants.delete(session)
    this.wake(ino, caps)
  }

  /** Everything a session held goes (eviction, unmount). */
  dropSession (session: number): void {
    for (const [ino, caps] of [...this.inodes]) {
      // Waking everyone also wakes the session's own waiters, which then fail (the session is closed).
      if (caps.grants.delete(session) || caps.waiters.some(w => w.session === session)) this.wake(ino, caps)
    }
  }

  /** What a session holds on an inode (0 if nothing, or if its lease ran out). */
  held (ino: Ino, session: number): number {
    const g = this.inodes.get(ino)?.grants.get(session)
    if (!g || g.expiresAtMs <= this.nowMs()) return 0
    return g.bits
  }

  /** Sessions holding any bits of an inode, with their grants. */
  holders (ino: Ino): Array<[number, Grant]> {
    return [...(this.inodes.get(ino)?.grants ?? [])]
  }

  private caps (ino: Ino): InodeCaps {
    let c = this.inodes.get(ino)
    if (!c) {
      c = { grants: new Map(), waiters: [], timer: null }
      this.inodes.set(ino, c)
    }
    return c
  }

  /** Lease grants past their expiry stop counting. */
  private expire (ino: Ino, caps: InodeCaps): void {
    const now = this.nowMs()
    for (const [s, g] of caps.grants) {
      if (g.expiresAtMs <= now) {
        if (g.revoking !== 0) this.stats.forcedExpiries++
        caps.grants.delete(s)
      }
    }
  }

  /** Wake waiters when the earliest lease among the holders runs out. */
  private armExpiry (ino: Ino, caps: InodeCaps): void {
    if (caps.timer) return
    let earliest = Infinity
    for (const g of caps.grants.values()) if (g.revoking !== 0) earliest = Math.min(earliest, g.expiresAtMs)
    if (earliest === Infinity) return
    caps.timer = setTimeout(() => {
      caps.timer = null
      this.wake(ino, caps)
    }, Math.max(0, earliest - this.nowMs()))
  }

  private wake (ino: Ino, caps: InodeCaps): void {
    const waiters = caps.waiters
    caps.waiters = []
    for (const w of waiters) w.resolve()
    if (caps.grants.size === 0 && caps.waiters.length === 0) {
      if (caps.timer) clearTimeout(caps.timer)
      this.inodes.delete(ino)
    }
  }
}
