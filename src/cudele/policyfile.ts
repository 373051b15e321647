// The life cycle of a policies.yml written through a mount: the policy is
// set (checked, committed through the monitor) when the file is closed after
// a write; a refused one makes close() fail with EINVAL and gets the file's
// previous contents back (or the file goes, if it was created for it), so
// the file keeps saying what is in force.

import { dataObject } from '../common/layout'
import type { Ino } from '../common/types'
import type { ClientBackend, KernelInvalidator } from '../client/backend'
import { POLICY_FILE, type SeenNames } from './names'
import { parsePolicy, POLICY_FILE_MAX_BYTES } from './policy'

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
  /** The kernel of this client's mount, told when a refused file goes behind its back. */
  kernel: KernelInvalidator | null = null
  /** What a refused write would have made of a file: offered at close, so the refusal takes the usual path (and reaches the cluster log). */
  private readonly refusedContent = new Map<Ino, Buffer>()

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

  /** Is ino a policies.yml (whose writes are vetted)? */
  isPolicyFile (ino: Ino): boolean {
    return this.names.policyFileDir(ino) !== undefined
  }

  /**
   * A write to a policies.yml would leave this content: refused (EINVAL,
   * with the file, line and field) when it ends a line and is no valid
   * policy. A write that stops mid-line is let through: a writer that writes
   * in pieces is checked once its lines are whole, and at close.
   */
  vet (ino: Ino, content: Buffer): void {
    const dir = this.names.policyFileDir(ino)
    if (dir === undefined || content.length === 0 || content[content.length - 1] !== 0x0a) return
    const path = this.names.pathOf(dir)
    try {
      parsePolicy(content.toString('utf8'), `${path.replace(/\/$/, '')}/${POLICY_FILE}`)
    } catch (err) {
      if (this.refusedContent.size > TRACKED_MAX) this.refusedContent.clear()
      this.refusedContent.set(ino, content)
      throw err
    }
  }

  /** A file written through a handle was closed: a policies.yml is checked and set, or refused. */
  async closedAfterWrite (ino: Ino, content: () => Promise<Buffer>, rewrite: (data: Buffer) => Promise<void>, refused: boolean): Promise<void> {
    const dir = this.names.policyFileDir(ino)
    if (dir === undefined) return
    const path = this.names.pathOf(dir)
    // After a refused write the file does not hold what was meant: that is what is checked (and refused again, where it is said).
    const meant = refused ? this.refusedContent.get(ino) : undefined
    this.refusedContent.delete(ino)
    const bytes = meant ?? await content()
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
    if (now?.ino !== ino) return
    await this.base.unlink(dir, POLICY_FILE)
    // The kernel still has the name (an embedded mount lets it keep entries):
    // without this, the next create of policies.yml opens the removed file (ENOENT).
    this.kernel?.entry(dir, POLICY_FILE)
  }
}
