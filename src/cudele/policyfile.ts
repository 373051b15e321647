// The life cycle of a policies.yml written through a mount: the policy is
// set (checked, committed through the monitor) when the file is closed after
// a write; a refused one makes close() fail with EINVAL and gets the file's
// previous contents back (or the file goes, if it was created for it), so
// the file keeps saying what is in force.

import { dataObject } from '../common/layout'
import type { Ino } from '../common/types'
import type { ClientBackend } from '../client/backend'
import { POLICY_FILE, type SeenNames } from './names'
import { POLICY_FILE_MAX_BYTES } from './policy'

/** policies.yml files tracked at once before the tables start over. */
const TRACKED_MAX = 1000

export class PolicyFiles {
  /**
   * policies.yml files open for writing here: their contents before (null:
   * created here), put back when the policy written is refused.
   */
  private readonly writes = new Map<Ino, { before: Buffer | null, opens: number }>()
  /** policies.yml files this client created and has not opened yet. */
  private readonly createdHere = new Set<Ino>()

  constructor (
    private readonly base: ClientBackend,
    private readonly names: SeenNames,
    /** Set the policy the file now says: merge what this client decoupled there first, then commit. */
    private readonly apply: (dir: Ino, text: string, path: string) => Promise<void>
  ) {}

  /** This client created a policies.yml. */
  created (ino: Ino): void {
    if (this.createdHere.size > TRACKED_MAX) this.createdHere.clear()
    this.createdHere.add(ino)
  }

  /** A file was opened; a policies.yml opened for writing is remembered as it is now (before O_TRUNC cuts it). */
  async openedForWrite (ino: Ino): Promise<void> {
    if (this.names.policyFileDir(ino) === undefined) return
    const created = this.createdHere.delete(ino)
    const w = this.writes.get(ino)
    if (w) {
      w.opens++
      return
    }
    let before: Buffer | null = null
    if (!created) {
      const size = (await this.base.getattr(ino)).size
      // Larger than any policy: a file that never held one, not worth keeping a copy of.
      if (size > POLICY_FILE_MAX_BYTES) return
      const got = size === 0 ? null : await this.base.readData(dataObject(ino, 0), 0, size)
      before = Buffer.alloc(size)
      if (got) before.set(got.subarray(0, size), 0)
    }
    if (this.writes.size > TRACKED_MAX) this.writes.clear()
    this.writes.set(ino, { before, opens: 1 })
  }

  released (ino: Ino): void {
    const w = this.writes.get(ino)
    if (w && --w.opens === 0) this.writes.delete(ino)
  }

  /** A file written through a handle was closed: a policies.yml is checked and set, or refused. */
  async closedAfterWrite (ino: Ino, content: () => Promise<Buffer>, rewrite: (data: Buffer) => Promise<void>): Promise<void> {
    const dir = this.names.policyFileDir(ino)
    if (dir === undefined) return
    const bytes = await content()
    const path = this.names.pathOf(dir)
    try {
      await this.apply(dir, bytes.toString('utf8'), path)
    } catch (err) {
      const msg = (err as Error).message.replace(/^EINVAL: /, '')
      console.error(`cudele: ${path}/${POLICY_FILE} refused: ${msg}`)
      await this.putBack(dir, ino, rewrite).catch(e => console.error(`cudele: ${path}/${POLICY_FILE}: the previous contents could not be put back: ${(e as Error).message}`))
      throw err
    }
    const w = this.writes.get(ino)
    if (w) w.before = bytes
  }

  /** A refused policies.yml: back to what it held before it was opened for writing here. */
  private async putBack (dir: Ino, ino: Ino, rewrite: (data: Buffer) => Promise<void>): Promise<void> {
    const w = this.writes.get(ino)
    if (!w) return
    if (w.before !== null) return await rewrite(w.before)
    // Created for the refused policy: it goes (if the name still means this file).
    const now = await this.base.lookupOrNull(dir, POLICY_FILE)
    if (now?.ino === ino) await this.base.unlink(dir, POLICY_FILE)
  }
}
