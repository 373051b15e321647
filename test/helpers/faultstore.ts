// A store that fails writes on command, for tests, over any backend: the
// faults live here, in test-only storage, and the production stores carry
// no hooks for them (TigerBeetle's src/testing/storage.zig is the model).
//
//   const store = new FaultStore(await openStore(dir, { create: true }))
//   store.crashAtWrite(3)           // the 3rd write from now, and every later one, is refused: EIO
//   store.failCommits(2, 'ENOSPC')  // the next 2 batches fail and apply nothing
//   store.delayCommits(50)          // batches reach the store 50 ms late, in order
//
// Failures keep the contract of src/store/types.ts: a failed batch applies
// nothing, and after a batch fails with ENOSPC or EIO, batches (and syncs)
// submitted before its rejection was delivered fail too. A crash is a
// writer that died: what was acknowledged stays, everything from the crash
// on is refused (with applied: the batch at the crash reaches the store but
// its acknowledgement is lost, as when a writer dies just after its commit).
// Reads always pass through.

import type {
  CommitInfo, ListRange, LocalReads, ObjectStat, ObjectStore, ObjectWrite, OmapEntry, OmapRange, PoolName, StoreErrno,
  StoreUsage, SubmitOptions
} from '../../src/store'
import { SnapshotReaderSpec, StoreError } from '../../src/store'

type Inner = ObjectStore & Partial<LocalReads> & { readonly dir?: string }

interface Failure {
  errno: StoreErrno
  message: string
  /** Resolves on the turn of the event loop that delivers the failure (as a reply from a writer thread would come). */
  delivered?: Promise<void>
}

export class FaultStore implements ObjectStore, LocalReads {
  /** Batches submitted through this store. */
  writes = 0
  private crashIn = 0
  private crashApplied = false
  private crashed: StoreError | null = null
  private failLeft = 0
  private failWith: Failure = { errno: 'EIO', message: '' }
  /** A failure not delivered yet: what is submitted meanwhile fails with it. */
  private undelivered: Failure | null = null
  private delayMs = 0
  /** Resolves when the last delayed request has been handed to the inner store. */
  private tail: Promise<void> = Promise.resolve()
  private queued = 0

  constructor (readonly inner: Inner) {}

  get dir (): string | undefined {
    return this.inner.dir
  }

  /** The nth write from now (1: the next) and every write after it are refused with EIO. */
  crashAtWrite (n: number, opts: { applied?: boolean } = {}): void {
    if (!Number.isInteger(n) || n < 1) throw new Error('crashAtWrite: n must be a positive integer')
    this.crashIn = n
    this.crashApplied = opts.applied === true
  }

  /** The next n batches fail with errno, applying nothing. */
  failCommits (n: number, errno: StoreErrno = 'EIO', message = `the commit failed (${errno}, injected)`): void {
    this.failLeft = n
    this.failWith = { errno, message: `store: ${message}; the batch was not applied` }
  }

  /** Batches, syncs and pool creations reach the inner store ms after they are made (0: at once again). */
  delayCommits (ms: number): void {
    this.delayMs = ms
  }

  async createPool (pool: PoolName): Promise<void> {
    if (this.crashed !== null) throw this.crashed
    return await this.forward(async () => await this.inner.createPool(pool))
  }

  async submit (batch: ObjectWrite[], opts: SubmitOptions): Promise<CommitInfo> {
    this.writes++
    if (this.crashed !== null) throw this.crashed
    if (this.crashIn > 0 && --this.crashIn === 0) {
      this.crashed = new StoreError('EIO', 'store: the writer died (injected); batches not yet acknowledged may not have been applied')
      const crashed = this.crashed
      if (this.crashApplied) await this.forward(async () => await this.inner.submit(batch, opts)).catch(() => {})
      throw crashed
    }
    // Every decision is taken now, at the call, before any await: submission order is what counts.
    if (this.undelivered !== null) return await this.behind(this.undelivered)
    if (this.failLeft > 0) {
      this.failLeft--
      const f: Failure = { ...this.failWith }
      f.delivered = new Promise(resolve => setImmediate(() => { this.undelivered = null; resolve() }))
      this.undelivered = f
      await f.delivered
      throw this.failure(f)
    }
    return await this.forward(async () => await this.inner.submit(batch, opts))
  }

  async sync (): Promise<CommitInfo> {
    if (this.crashed !== null) throw this.crashed
    if (this.undelivered !== null) return await this.behind(this.undelivered)
    return await this.forward(async () => await this.inner.sync())
  }

  /** Made before the caller could know of failure f: fail with it, delivered right after it. */
  private async behind (f: Failure): Promise<never> {
    await f.delivered
    throw this.failure(f, 'not applied because an earlier batch failed')
  }

  private failure (f: Failure, instead?: string): StoreError {
    return new StoreError(f.errno, instead === undefined ? f.message : f.message.replace(/the batch was not applied$/, instead))
  }

  /** Hand a request to the inner store now, or after the delay, never ahead of an earlier one. */
  private async forward<T> (fn: () => Promise<T>): Promise<T> {
    if (this.delayMs === 0 && this.queued === 0) return await fn()
    const at = Date.now() + this.delayMs
    this.queued++
    const gate = this.tail.then(async () => await new Promise<void>(resolve => setTimeout(resolve, Math.max(0, at - Date.now()))))
    this.tail = gate
    await gate
    this.queued--
    return await fn()
  }

  // ---- reads pass through ----

  async listPools (): Promise<PoolName[]> { return await this.inner.listPools() }
  async stat (pool: PoolName, name: string): Promise<ObjectStat | null> { return await this.inner.stat(pool, name) }
  async read (pool: PoolName, name: string, offset: number, length: number): Promise<Uint8Array | null> { return await this.inner.read(pool, name, offset, length) }
  async omapGet (pool: PoolName, name: string, keys: Uint8Array[]): Promise<OmapEntry[]> { return await this.inner.omapGet(pool, name, keys) }
  async omapList (pool: PoolName, name: string, range: OmapRange): Promise<OmapEntry[]> { return await this.inner.omapList(pool, name, range) }
  async getXattr (pool: PoolName, name: string, xattr: string): Promise<Uint8Array | null> { return await this.inner.getXattr(pool, name, xattr) }
  async listXattrs (pool: PoolName, name: string): Promise<Array<[string, Uint8Array]>> { return await this.inner.listXattrs(pool, name) }
  async list (pool: PoolName, range: ListRange): Promise<string[]> { return await this.inner.list(pool, range) }
  async usage (): Promise<StoreUsage> { return await this.inner.usage() }

  statSync (pool: PoolName, name: string): ObjectStat | null { return this.local().statSync(pool, name) }
  readSync (pool: PoolName, name: string, offset: number, length: number): Uint8Array | null { return this.local().readSync(pool, name, offset, length) }
  omapGetSync (pool: PoolName, name: string, keys: Uint8Array[]): OmapEntry[] { return this.local().omapGetSync(pool, name, keys) }
  omapListSync (pool: PoolName, name: string, range: OmapRange): OmapEntry[] { return this.local().omapListSync(pool, name, range) }
  listSync (pool: PoolName, range: ListRange): string[] { return this.local().listSync(pool, range) }

  snapshotReader (): SnapshotReaderSpec | null {
    return this.inner.snapshotReader?.() ?? null
  }

  private local (): LocalReads {
    if (typeof this.inner.readSync !== 'function') throw new Error('the wrapped store has no synchronous local reads')
    return this.inner as LocalReads
  }

  /** Finish what was handed on (delayed requests too), then close the inner store. */
  async close (): Promise<void> {
    await this.tail
    await this.inner.close()
  }
}
