// Open files and purges: an inode whose last link is gone stays (a stray)
// while anyone has it open; once nobody does, it is purged: its data objects
// (or a directory's dentry object) and the inode go in one journal batch.
//
// Purges run one at a time in the background. One that fails is retried with
// backoff: an inode whose purge could not start goes back on the queue; data
// removals whose batch failed are kept and written again (the inode is gone
// from the namespace by then). Failures go to the MDS's health, never nowhere.

import { DATA_POOL, dataObjectPrefix, METADATA_POOL } from '../common/layout'
import { Backoff, type Health } from '../common/health'
import { type Ino, isDir, isReg } from '../common/types'
import type { ObjectWrite } from '../store/types'
import type { Inode } from './inode'
import { dirObject } from './layout'
import type { Mds } from './mds'

export const PURGE_CHECK = 'mds.purge'

export interface PurgeOptions {
  /** Objects listed per store read while purging a file's data. */
  listLimit: number
  /** First retry after a failed purge (ms); doubles with each failure in a row. */
  retryFirstMs: number
  retryMaxMs: number
}

export class Purger {
  private readonly opens = new Map<Ino, number>()
  private readonly queue = new Set<Ino>()
  /** Purges of inodes with unjournaled changes: queued again once a trim has stored them. */
  private readonly afterTrim = new Set<Ino>()
  /** Data removals of purges whose batch failed: written again before anything else. */
  private failedRemovals: ObjectWrite[] = []
  private running = false
  /** Purges wait until then (ms, monotonic): after a restart, for clients to reclaim open files; after a failure, the backoff. */
  private notBeforeMs = 0
  private readonly backoff: Backoff

  constructor (
    private readonly mds: Mds,
    private readonly options: PurgeOptions,
    private readonly health: Health,
    /** May purges run now? (Not in a read-only or closed MDS, nor in a private copy.) */
    private readonly allowed: () => boolean,
    /** The inode is purged: the Purge event. */
    private readonly purged: (ino: Ino) => void
  ) {
    this.backoff = new Backoff(options.retryFirstMs, options.retryMaxMs)
  }

  isOpen (ino: Ino): boolean {
    return this.opens.has(ino)
  }

  get openCount (): number {
    return this.opens.size
  }

  /** Is a purge running now? */
  get busy (): boolean {
    return this.running
  }

  open (ino: Ino): void {
    this.opens.set(ino, (this.opens.get(ino) ?? 0) + 1)
  }

  /** The inode was closed once; its last close purges it if it has no links left. */
  release (ino: Ino): void {
    const n = (this.opens.get(ino) ?? 0) - 1
    if (n > 0) {
      this.opens.set(ino, n)
      return
    }
    this.opens.delete(ino)
    const inode = this.mds.ns.cache.getInode(ino)
    if (inode && inode.nlink === 0) {
      this.queue.add(ino)
      this.kick()
    }
  }

  /** An inode lost its last link (or was left a stray before a restart): purged once nobody has it open. */
  linksGone (ino: Ino): void {
    if (!this.opens.has(ino)) this.queue.add(ino)
  }

  /** Hold purges for ms (clients reconnecting after a restart reclaim their open files first). */
  holdFor (ms: number): void {
    this.notBeforeMs = performance.now() + ms
    setTimeout(() => this.kick(), ms).unref()
  }

  /** A trim stored what waiting purges depend on. */
  trimmed (): void {
    if (this.afterTrim.size === 0) return
    for (const ino of this.afterTrim) this.queue.add(ino)
    this.afterTrim.clear()
    this.kick()
  }

  kick (): void {
    if (this.running || (this.queue.size === 0 && this.failedRemovals.length === 0) || !this.allowed()) return
    if (performance.now() < this.notBeforeMs) return
    this.running = true
    this.purgeAll().then(
      () => {
        this.backoff.succeeded()
        this.health.ok(PURGE_CHECK)
      },
      (err: Error) => {
        const delay = this.backoff.failed()
        this.notBeforeMs = performance.now() + delay
        this.health.failed(PURGE_CHECK, new Error(`purge failed (${this.queue.size} inodes and ${this.failedRemovals.length} data objects wait; retried in ${delay} ms): ${err.message}`))
        setTimeout(() => this.kick(), delay).unref()
      }
    ).finally(() => {
      this.running = false
      if (this.queue.size > 0 && performance.now() >= this.notBeforeMs) setImmediate(() => this.kick())
    })
  }

  private async purgeAll (): Promise<void> {
    if (this.failedRemovals.length > 0) {
      const again = this.failedRemovals
      this.failedRemovals = []
      await this.removeObjects(again)
    }
    for (const ino of [...this.queue]) {
      this.queue.delete(ino)
      if (this.opens.has(ino)) continue
      const inode = this.mds.ns.cache.getInode(ino)
      if (!inode || inode.nlink > 0) {
        this.mds.ns.strays.remove(ino)
        continue
      }
      await this.purgeInode(inode)
    }
  }

  /** Drop an unreferenced inode: its data objects and the inode go in one batch. */
  private async purgeInode (inode: Inode): Promise<void> {
    const { ns, journal, store, unstreamed } = this.mds
    // An unlink that was not journaled is kept only once a trim stores it: purged
    // before, a crash would bring the file back without its data. The purge
    // waits for the next trim rather than forcing one (unlinks in a subtree
    // without stream would otherwise each cost a trim).
    if (unstreamed.has(inode.ino)) {
      this.afterTrim.add(inode.ino)
      return
    }
    const removals: ObjectWrite[] = []
    if (isDir(inode.mode)) {
      removals.push({ pool: METADATA_POOL, name: dirObject(inode.ino), ops: [{ op: 'remove' }] })
    } else if (isReg(inode.mode)) {
      // Data committed by the last close (the client flushes at release) may
      // still be on its way to the store: listed too early, it would outlive the inode.
      await journal.settled()
      // Linked again (linkat) or reopened meanwhile: not ours to remove (a later release queues it again).
      const current = ns.cache.getInode(inode.ino)
      if (!current || current.nlink > 0 || this.opens.has(inode.ino)) return
      const prefix = dataObjectPrefix(inode.ino)
      let after: string | undefined
      try {
        for (;;) {
          const names = store.listSync(DATA_POOL, { prefix, after, limit: this.options.listLimit })
          for (const name of names) removals.push({ pool: DATA_POOL, name, ops: [{ op: 'remove' }] })
          if (names.length < this.options.listLimit) break
          after = names[names.length - 1]
        }
      } catch (err) {
        // Nothing is purged yet: the inode waits for the next try.
        this.queue.add(inode.ino)
        throw err
      }
    }
    this.purged(inode.ino)
    await this.removeObjects(removals)
  }

  private async removeObjects (removals: ObjectWrite[]): Promise<void> {
    try {
      await this.mds.journal.submit(removals, false)
    } catch (err) {
      this.failedRemovals = this.failedRemovals.concat(removals)
      throw err
    }
  }
}
