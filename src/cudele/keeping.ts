// local_persist for strong subtrees (durability local): the changes this
// client sends to the MDS in such a subtree are also kept in its local
// request log until the server says they are safe, so that a crash of the
// server, of the client or of both loses nothing the client fsync'd (the
// log is replayed when it mounts again). Only a client of a server keeps
// them: in an embedded mount the local disk is the store's.

import type { Attr, Ino } from '../common/types'
import type { ClientBackend } from '../client/backend'
import type { SeenNames } from './names'
import { keepsRequestsLocally } from './policy'
import type { PolicyInfo } from './service'

/** Inodes remembered as being in such subtrees before the set starts over (it only widens what is kept). */
const KEPT_INODES_MAX = 1_000_000

export class LocalKeeping {
  /** Strong subtrees with durability local, as the last policymap said: none, nothing to check. */
  policies = 0
  /** Inodes seen in such subtrees (their inode-only changes are kept too). */
  private readonly inodes = new Set<Ino>()

  constructor (
    private readonly base: ClientBackend,
    private readonly policyOf: (dir: Ino) => Promise<PolicyInfo>,
    private readonly names: SeenNames
  ) {}

  /** Is dir in a strong subtree with durability local (changes there are kept)? */
  async keptIn (dir: Ino): Promise<boolean> {
    if (this.policies === 0 || this.base.keepLocally === undefined) return false
    return keepsRequestsLocally((await this.policyOf(dir)).policy)
  }

  /** Are inode-only changes to ino kept (it was seen in such a subtree)? */
  async keptInode (ino: Ino): Promise<boolean> {
    if (this.policies === 0) return false
    return this.inodes.has(ino) || (this.names.knowsDir(ino) && await this.keptIn(ino))
  }

  /** Run a change through the MDS, kept in the local request log when keep says so. */
  async run<T> (keep: boolean, fn: () => T | Promise<T>): Promise<T> {
    if (!keep || this.base.keepLocally === undefined) return await fn()
    return await this.base.keepLocally(async () => await fn())
  }

  /** An inode looked up or made in a kept subtree: its inode-only changes are kept from now on. */
  note (keep: boolean, a: Attr | null): void {
    if (!keep || !a) return
    if (this.inodes.size > KEPT_INODES_MAX) this.inodes.clear()
    this.inodes.add(a.ino)
  }
}
