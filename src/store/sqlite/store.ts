// SqliteStore: the embedded object store backend, caller's-thread side.
//
// Writes are encoded and handed to the writer thread (writer.ts), which owns
// the only write connection and group-commits; a submit resolves when the
// writer reports its commit. Reads run right here on a read-only connection
// (reads.ts): the async read methods just wrap the synchronous ones.

import fs from 'fs'
import path from 'path'
import { Worker } from 'worker_threads'
import Database from 'better-sqlite3'
import {
  CommitInfo, ListRange, LocalReads, ObjectStat, ObjectStore, ObjectWrite, OmapEntry, OmapRange,
  PoolName, StoreError, StoreUsage, SubmitOptions
} from '../types'
import { checkPoolName } from '../check'
import { StoreLock } from '../lock'
import { encodeBatch, EncodedBatch } from './codec'
import { WriterConfig, WriterReply, WriterRequest } from './protocol'
import { Reader } from './reads'
import type { SqliteSnapshotOptions } from './snapshot'
import type { SnapshotReaderSpec } from '../snapshot'
import { checkStoreDir, writerReady } from './open'
import { configureReader, DB_FILE, prepareDatabase } from './schema'

export interface SqliteStoreOptions {
  readOnly?: boolean
  create?: boolean
  /**
   * Move large payloads (>= 32 KiB, owning their whole ArrayBuffer) to the
   * writer thread instead of copying them. Default true. The caller's buffer
   * is detached (reads as empty) once submit returns.
   */
  transferPayloads?: boolean
  /** PASSIVE checkpoint once the WAL holds this many bytes. Default 64 MiB. */
  checkpointWalBytes?: number
  /** PASSIVE checkpoint after this long without writes. Default 1000 ms. */
  idleCheckpointMs?: number
  /** How long commits that fail for lack of space are retried before ENOSPC. Default 2000 ms. */
  fullRetryMs?: number
  /** Bounds of one group commit. Defaults 10,000 batches, 64 MiB. */
  groupMaxBatches?: number
  groupMaxBytes?: number
  /** Told when the store runs out of space, recovers, or hits an I/O error. */
  onHealth?: (event: StoreHealthEvent) => void
}

export type StoreHealth = 'ok' | 'full' | 'ioerror' | 'failed'

export interface StoreHealthEvent {
  state: StoreHealth
  message: string
  bytesFree: number
}

export interface StoreStats {
  /** Write transactions committed since open (each holds one group). */
  commits: number
  /** Batches committed since open. */
  batches: number
  /** Batches rejected (guards, ENOSPC, EIO). */
  failedBatches: number
  checkpoints: number
  /** Commit sequence number of the last commit (persists across opens). */
  seq: number
}

interface Pending {
  resolve: (info: CommitInfo) => void
  reject: (err: StoreError) => void
  batch: boolean
}

const WRITER_SCRIPT = path.join(__dirname, 'writer.js')

export class SqliteStore implements ObjectStore, LocalReads {
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  /** Failure notices received from the writer; sent along with each request. */
  private epoch = 0
  private closing = false
  /** The writer was asked to close: its exit is expected. */
  private writerClosing = false
  private closePromise: Promise<void> | null = null
  private writerFailure: StoreError | null = null
  private closedWaiter: (() => void) | null = null
  private healthState: StoreHealth = 'ok'
  private readonly counts: StoreStats

  private constructor (
    readonly dir: string,
    readonly readOnly: boolean,
    private readonly lock: StoreLock,
    private readonly reader: Reader,
    private readonly readDb: Database.Database,
    private readonly worker: Worker | null,
    seq: number,
    private readonly opts: SqliteStoreOptions
  ) {
    this.counts = { commits: 0, batches: 0, failedBatches: 0, checkpoints: 0, seq }
    if (worker !== null) {
      worker.on('message', (m: WriterReply) => this.onReply(m))
      worker.on('error', err => this.writerDied(`the writer thread failed: ${err.message}`))
      worker.on('exit', code => { if (!this.writerClosing) this.writerDied(`the writer thread exited (code ${code})`) })
      worker.unref()
    }
  }

  /** Open (or create) the store in dir; see openStore in ../index.ts. */
  static async open (dir: string, opts: SqliteStoreOptions = {}): Promise<SqliteStore> {
    dir = path.resolve(dir)
    const readOnly = opts.readOnly === true
    const create = opts.create === true && !readOnly
    const dbPath = path.join(dir, DB_FILE)
    checkStoreDir(dir, dbPath, create)
    const lock = StoreLock.acquire(dir, readOnly ? 'shared' : 'exclusive')
    let worker: Worker | null = null
    let readDb: Database.Database | null = null
    try {
      prepareDatabase(dir, dbPath, { create, readOnly })
      let seq = 0
      if (!readOnly) {
        const config: WriterConfig = {
          dir,
          dbPath,
          checkpointWalBytes: opts.checkpointWalBytes ?? 64 * 1024 * 1024,
          idleCheckpointMs: opts.idleCheckpointMs ?? 1000,
          fullRetryMs: opts.fullRetryMs ?? 2000,
          groupMaxBatches: opts.groupMaxBatches ?? 10_000,
          groupMaxBytes: opts.groupMaxBytes ?? 64 * 1024 * 1024
        }
        // Rarely (about once in a few thousand opens under load) the writer
        // thread ends with code 0 before it reports ready; a second start works.
        for (let attempt = 1; ; attempt++) {
          worker = new Worker(WRITER_SCRIPT, { workerData: config })
          try {
            seq = await writerReady(worker, dir)
            break
          } catch (err) {
            if (attempt >= 3 || !/exited at start \(code 0\)/.test((err as Error).message)) throw err
          }
        }
      }
      readDb = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 })
      configureReader(readDb)
      if (readOnly) seq = readDb.prepare('SELECT seq FROM counters WHERE id = 0').pluck().get() as number
      return new SqliteStore(dir, readOnly, lock, new Reader(readDb), readDb, worker, seq, opts)
    } catch (err) {
      readDb?.close()
      if (worker !== null) await worker.terminate()
      lock.release()
      if (err instanceof StoreError) throw err
      throw new StoreError('EIO', `store ${dir}: cannot open: ${(err as Error).message}`)
    }
  }

  // ---- writes ----

  async createPool (pool: PoolName): Promise<void> {
    checkPoolName(pool)
    await this.request(id => ({ t: 'createPool', id, epoch: this.epoch, name: pool }), false)
  }

  async listPools (): Promise<PoolName[]> {
    this.checkOpen()
    return this.reader.listPools()
  }

  async submit (batch: ObjectWrite[], opts: SubmitOptions): Promise<CommitInfo> {
    this.checkWritable()
    const transfer = this.opts.transferPayloads !== false
    const durable = opts?.durable === true
    const enc = encodeBatch(batch, transfer)
    return await this.request(id => batchRequest(id, this.epoch, durable, enc), true, id => batchRequest(id, this.epoch, durable, encodeBatch(batch, false)))
  }

  async sync (): Promise<CommitInfo> {
    return await this.request(id => ({ t: 'sync', id, epoch: this.epoch }), false)
  }

  private request (make: (id: number) => WriterRequest, batch: boolean, retryWithoutTransfer?: (id: number) => WriterRequest): Promise<CommitInfo> {
    this.checkWritable()
    const worker = this.worker as Worker
    const id = ++this.nextId
    const msg = make(id)
    const promise = new Promise<CommitInfo>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, batch })
    })
    if (this.pending.size === 1) worker.ref()
    try {
      worker.postMessage(msg, msg.t === 'batch' ? [msg.structure, ...msg.payloads] : [])
    } catch (err) {
      // A payload buffer that cannot be detached (e.g. wasm memory): copy everything instead.
      if (retryWithoutTransfer === undefined) { this.settle(id); throw err }
      try {
        const again = retryWithoutTransfer(id)
        worker.postMessage(again, again.t === 'batch' ? [again.structure] : [])
      } catch (err2) {
        this.settle(id)
        throw err2
      }
    }
    return promise
  }

  private settle (id: number): Pending | undefined {
    const p = this.pending.get(id)
    if (p === undefined) return undefined
    this.pending.delete(id)
    if (this.pending.size === 0 && this.worker !== null && !this.closing) this.worker.unref()
    return p
  }

  private onReply (m: WriterReply): void {
    switch (m.t) {
      case 'group': {
        if (m.failEpoch !== undefined && m.failEpoch > this.epoch) this.epoch = m.failEpoch
        if (m.committed) {
          this.counts.commits++
          this.counts.seq = m.seq
        }
        const info = { seq: m.seq }
        for (const id of m.done) {
          const p = this.settle(id)
          if (p?.batch === true) this.counts.batches++
          p?.resolve(info)
        }
        for (const f of m.failed) {
          const p = this.settle(f.id)
          if (p?.batch === true) this.counts.failedBatches++
          p?.reject(new StoreError(f.errno, f.message))
        }
        break
      }
      case 'health':
        this.healthState = m.state
        this.opts.onHealth?.({ state: m.state, message: m.message, bytesFree: m.bytesFree })
        break
      case 'checkpoint':
        this.counts.checkpoints++
        break
      case 'closed':
        this.closedWaiter?.()
        break
      case 'ready': case 'fatal':
        break
    }
  }

  private writerDied (why: string): void {
    if (this.writerFailure !== null) return
    const err = new StoreError('EIO', `store ${this.dir}: ${why}; batches not yet acknowledged may not have been applied`)
    this.writerFailure = err
    this.healthState = 'failed'
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err)
    this.closedWaiter?.()
    this.opts.onHealth?.({ state: 'failed', message: err.message, bytesFree: 0 })
  }

  private checkWritable (): void {
    if (this.readOnly) throw new StoreError('EROFS', `store ${this.dir} is open read-only`)
    this.checkOpen()
    if (this.writerFailure !== null) throw this.writerFailure
  }

  private checkOpen (): void {
    if (this.closing) throw new StoreError('EIO', `store ${this.dir} is closed`)
  }

  // ---- reads ----

  async stat (pool: PoolName, name: string): Promise<ObjectStat | null> { return this.statSync(pool, name) }
  async read (pool: PoolName, name: string, offset: number, length: number): Promise<Uint8Array | null> { return this.readSync(pool, name, offset, length) }
  async omapGet (pool: PoolName, name: string, keys: Uint8Array[]): Promise<OmapEntry[]> { return this.omapGetSync(pool, name, keys) }
  async omapList (pool: PoolName, name: string, range: OmapRange): Promise<OmapEntry[]> { return this.omapListSync(pool, name, range) }
  async list (pool: PoolName, range: ListRange): Promise<string[]> { return this.listSync(pool, range) }

  async getXattr (pool: PoolName, name: string, xattr: string): Promise<Uint8Array | null> {
    this.checkOpen()
    return this.reader.getXattr(pool, name, xattr)
  }

  async listXattrs (pool: PoolName, name: string): Promise<Array<[string, Uint8Array]>> {
    this.checkOpen()
    return this.reader.listXattrs(pool, name)
  }

  statSync (pool: PoolName, name: string): ObjectStat | null {
    this.checkOpen()
    return this.reader.stat(pool, name)
  }

  readSync (pool: PoolName, name: string, offset: number, length: number): Uint8Array | null {
    this.checkOpen()
    return this.reader.read(pool, name, offset, length)
  }

  omapGetSync (pool: PoolName, name: string, keys: Uint8Array[]): OmapEntry[] {
    this.checkOpen()
    return this.reader.omapGet(pool, name, keys)
  }

  omapListSync (pool: PoolName, name: string, range: OmapRange): OmapEntry[] {
    this.checkOpen()
    return this.reader.omapList(pool, name, range)
  }

  listSync (pool: PoolName, range: ListRange): string[] {
    this.checkOpen()
    return this.reader.list(pool, range)
  }

  async usage (): Promise<StoreUsage> {
    this.checkOpen()
    const { dbBytes, objects } = this.reader.footprint()
    let walBytes = 0
    try { walBytes = fs.statSync(path.join(this.dir, DB_FILE + '-wal')).size } catch {}
    const fsStat = fs.statfsSync(this.dir)
    return {
      bytesUsed: dbBytes + walBytes,
      bytesFree: fsStat.bavail * fsStat.bsize,
      bytesFreeTotal: fsStat.bfree * fsStat.bsize,
      bytesTotal: fsStat.blocks * fsStat.bsize,
      objects
    }
  }

  /** Other threads read the database directly, each on its own connection (snapshot.ts). */
  snapshotReader (): SnapshotReaderSpec {
    return { module: path.join(__dirname, 'snapshot.js'), options: { dbPath: path.join(this.dir, DB_FILE) } satisfies SqliteSnapshotOptions }
  }

  // ---- state ----

  /** Counters for tests and benchmarks (group commit shows as commits << batches). */
  stats (): StoreStats {
    return { ...this.counts }
  }

  health (): StoreHealth {
    return this.healthState
  }

  /** Wait for every submitted batch, checkpoint, close both connections, stop the writer, release the lock. */
  async close (): Promise<void> {
    this.closePromise ??= this.shutDown()
    return await this.closePromise
  }

  private async shutDown (): Promise<void> {
    this.closing = true
    const worker = this.worker
    if (worker !== null) worker.ref()
    try {
      // Let every request finish first; then the writer is the last connection
      // and takes the WAL and shared-memory files away when it closes.
      if (this.pending.size > 0) {
        await Promise.allSettled([...this.pending.keys()].map(id => new Promise<void>(resolve => {
          const p = this.pending.get(id) as Pending
          const { resolve: res, reject: rej } = p
          p.resolve = info => { res(info); resolve() }
          p.reject = err => { rej(err); resolve() }
        })))
      }
      this.readDb.close()
      if (worker !== null && this.writerFailure === null) {
        await new Promise<void>(resolve => {
          this.closedWaiter = resolve
          this.writerClosing = true
          worker.postMessage({ t: 'close' } satisfies WriterRequest)
        })
      }
    } finally {
      this.writerClosing = true
      if (worker !== null) await worker.terminate()
      if (this.readDb.open) this.readDb.close()
      this.lock.release()
    }
  }
}

function batchRequest (id: number, epoch: number, durable: boolean, enc: EncodedBatch): WriterRequest {
  let bytes = enc.structure.byteLength
  for (const p of enc.payloads) bytes += p.byteLength
  return { t: 'batch', id, epoch, durable, structure: enc.structure, payloads: enc.payloads, bytes }
}
