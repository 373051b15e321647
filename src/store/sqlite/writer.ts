// The writer thread: owns the only write connection of a store and commits
// batches with group commit.
//
// Whatever is queued when the thread gets to work is committed in ONE
// transaction (bounded by groupMaxBatches/groupMaxBytes), each batch inside its
// own SAVEPOINT so that a batch whose guard fails is rolled back alone. The
// group is committed with synchronous=FULL when any request in it asked for
// durability, so one fsync serves all of them; otherwise synchronous=NORMAL.
// Automatic checkpoints are off: the thread checkpoints (PASSIVE) when the WAL
// passes checkpointWalBytes or after idleCheckpointMs without work, and
// TRUNCATEs the WAL at close.
//
// Full disk policy. When a group fails for lack of space (SQLITE_FULL, or an
// I/O error while the device has next to nothing free) its transaction is
// rolled back — nothing acknowledged is lost, since earlier groups are already
// committed — and the group stays at the head of the queue. It is retried with
// backoff for up to fullRetryMs (a TRUNCATE checkpoint first, which may give
// back WAL space), and the caller's side hears 'full' at once. If space comes
// back in time, the callers only saw latency. If not, the group and everything
// queued behind it are rejected with ENOSPC, none of it applied, and the store
// stays 'full': later groups are tried once each and rejected at once while the
// device is still full, until a commit succeeds again. Requests sent before the
// caller heard of the failure carry the old epoch and are rejected too, because
// they may depend on the lost batches: a later batch never commits ahead of an
// earlier failed one. Other I/O errors fail the group and its followers the
// same way with EIO, without retrying.

import fs from 'fs'
import path from 'path'
import { parentPort, workerData, receiveMessageOnPort, MessagePort } from 'worker_threads'
import Database from 'better-sqlite3'
import { ObjectWrite, StoreError, StoreErrno } from '../types'
import { Applier } from './apply'
import { decodeBatch } from './codec'
import { FailedRequest, WriterConfig, WriterReply, WriterRequest } from './protocol'
import { configureWriter } from './schema'

type Work = Exclude<WriterRequest, { t: 'close' }> & { writes?: ObjectWrite[] }

const cfg = workerData as WriterConfig
const port = parentPort as MessagePort
const db = new Database(cfg.dbPath, { timeout: 5000 })
configureWriter(db)
const applier = new Applier(db)
const pageBytes = db.pragma('page_size', { simple: true }) as number
const counters = db.prepare('SELECT seq FROM counters WHERE id = 0').pluck()
const bumpCounters = db.prepare('UPDATE counters SET seq = ?, objects = objects + ? WHERE id = 0')

let seq = counters.get() as number
const queue: Work[] = []
let closing = false
/** Requests sent with an epoch below this were sent before the caller heard of a failure. */
let failEpoch = 0
let synchronous: 'NORMAL' | 'FULL' = 'NORMAL'
/** Commits since the WAL was last fsync'd. */
let unsynced = false
let walDirty = false
let dirSynced = false
/** ok; retrying a group that ran out of space; full (gave up, failing fast); io (the last group hit an I/O error). */
let trouble: 'ok' | 'retrying' | 'full' | 'io' = 'ok'
let retryStartMs = 0
let retryDelayMs = 0
let retryTimer: NodeJS.Timeout | null = null
let idleTimer: NodeJS.Timeout | null = null
/** Why the last epoch ended, repeated to the requests rejected for it. */
let lastFailure: { errno: StoreErrno, message: string } = { errno: 'EIO', message: '' }

function post (msg: WriterReply): void {
  port.postMessage(msg)
}

function accept (msg: WriterRequest): void {
  if (msg.t === 'close') closing = true
  else queue.push(msg)
}

// Work starts right in the handler (no extra event-loop turn: a round trip is
// most of a small commit's latency); pump drains whatever else is queued.
port.on('message', (msg: WriterRequest) => {
  accept(msg)
  if (idleTimer !== null) { clearTimeout(idleTimer); idleTimer = null }
  if (retryTimer === null) pump()
})

function drainPort (): void {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) accept(m.message as WriterRequest)
}

function pump (): void {
  drainPort()
  while (queue.length > 0) {
    if (!runGroup()) return // waiting to retry for space
    drainPort()
  }
  if (closing) finishClose()
  else if (walDirty) idleTimer = setTimeout(idleCheckpoint, cfg.idleCheckpointMs)
}

/** Commit one group from the head of the queue. false: it failed for space and a retry is scheduled. */
function runGroup (): boolean {
  rejectStale()
  if (queue.length === 0) return true
  let n = 0
  let bytes = 0
  let durable = false
  let writes = false
  while (n < queue.length && n < cfg.groupMaxBatches && (n === 0 || bytes < cfg.groupMaxBytes)) {
    const r = queue[n++]
    if (r.t === 'batch') { bytes += r.bytes; durable ||= r.durable; writes = true }
    if (r.t === 'sync') durable = true
    if (r.t === 'createPool') writes = true
  }
  const group = queue.slice(0, n)
  try {
    const reply = writes ? commitGroup(group, durable) : syncOnly(group)
    queue.splice(0, n)
    if (trouble !== 'ok') {
      const what = trouble === 'io' ? 'commits succeed again' : 'space is available again'
      trouble = 'ok'
      post({ t: 'health', state: 'ok', message: `store ${cfg.dir}: ${what}`, bytesFree: bytesFree() })
    }
    post(reply)
  } catch (err) {
    if (isSpaceError(err)) return spaceFailure(err)
    trouble = 'io'
    failQueue('EIO', `store ${cfg.dir}: I/O error while committing (${(err as Error).message}); the batch was not applied`)
    post({ t: 'health', state: 'ioerror', message: `store ${cfg.dir}: ${(err as Error).message}`, bytesFree: bytesFree() })
    return true
  }
  if (writes) afterCommit()
  return true
}

function commitGroup (group: Work[], durable: boolean): WriterReply {
  const mode = durable ? 'FULL' : 'NORMAL'
  if (synchronous !== mode) {
    db.pragma(`synchronous = ${mode}`)
    synchronous = mode
  }
  const done: number[] = []
  const failed: FailedRequest[] = []
  const now = Date.now()
  let objects = 0
  db.exec('BEGIN IMMEDIATE')
  try {
    for (const r of group) {
      if (r.t === 'sync') done.push(r.id)
      else if (r.t === 'createPool') { applier.createPool(r.name); done.push(r.id) } else {
        const result = applyBatch(r, now)
        if (typeof result === 'number') { objects += result; done.push(r.id) } else failed.push(result)
      }
    }
    bumpCounters.run(seq + 1, objects)
    db.exec('COMMIT')
  } catch (err) {
    if (db.inTransaction) {
      try { db.exec('ROLLBACK') } catch {}
    }
    applier.forgetPools()
    throw err
  }
  seq++
  unsynced = !durable
  walDirty = true
  return { t: 'group', seq, committed: true, done, failed }
}

/** Apply one batch inside its savepoint: the change in object count, or why it failed alone. */
function applyBatch (r: Extract<Work, { t: 'batch' }>, now: number): number | FailedRequest {
  db.exec('SAVEPOINT batch')
  try {
    r.writes ??= decodeBatch(r.structure, r.payloads)
    let objects = 0
    for (const w of r.writes) objects += applier.apply(w, now)
    db.exec('RELEASE batch')
    return objects
  } catch (err) {
    if (isGroupError(err)) throw err
    // The batch's own fault (a guard, a bad request): undo it alone.
    db.exec('ROLLBACK TO batch')
    db.exec('RELEASE batch')
    if (err instanceof StoreError) return { id: r.id, errno: err.errno, message: err.message }
    const code = (err as { code?: string }).code
    const errno: StoreErrno = code === 'SQLITE_TOOBIG' ? 'EFBIG' : 'EIO'
    return { id: r.id, errno, message: `store ${cfg.dir}: batch failed: ${(err as Error).message}` }
  }
}

/** A group of syncs only: fsync the WAL if anything was committed without it. */
function syncOnly (group: Work[]): WriterReply {
  if (unsynced) {
    const fd = fs.openSync(`${cfg.dbPath}-wal`, 'r+')
    try { fs.fdatasyncSync(fd) } finally { fs.closeSync(fd) }
    if (!dirSynced) {
      const dfd = fs.openSync(path.dirname(cfg.dbPath), 'r')
      try { fs.fsyncSync(dfd) } finally { fs.closeSync(dfd) }
      dirSynced = true
    }
    unsynced = false
  }
  return { t: 'group', seq, committed: false, done: group.map(r => r.id), failed: [] }
}

/**
 * Checkpoint when the WAL has grown past its bound. A checkpoint that fails
 * (the database file cannot grow on a full device) only leaves the WAL longer;
 * the next commit finds out whether space is short.
 */
function afterCommit (): void {
  try {
    const [info] = db.pragma('wal_checkpoint(NOOP)') as Array<{ log: number }>
    if (info.log * (pageBytes + 24) >= cfg.checkpointWalBytes) checkpoint('PASSIVE')
  } catch {}
}

function checkpoint (mode: 'PASSIVE' | 'TRUNCATE'): void {
  const t0 = Date.now()
  const [info] = db.pragma(`wal_checkpoint(${mode})`) as Array<{ busy: number, log: number, checkpointed: number }>
  // A complete checkpoint has synced the WAL and the database file.
  if (info.busy === 0 && info.checkpointed === info.log) { unsynced = false; walDirty = false }
  post({ t: 'checkpoint', mode, walFrames: info.log, ms: Date.now() - t0 })
}

function idleCheckpoint (): void {
  idleTimer = null
  if (queue.length > 0 || !walDirty) return
  try { checkpoint('PASSIVE') } catch {}
}

function spaceFailure (err: unknown): boolean {
  const free = bytesFree()
  const now = Date.now()
  if (trouble === 'ok' || trouble === 'io') {
    trouble = 'retrying'
    retryStartMs = now
    retryDelayMs = 10
    post({ t: 'health', state: 'full', message: `store ${cfg.dir}: no space left on device (${free} bytes free): ${(err as Error).message}`, bytesFree: free })
    // Moving the WAL into the database and truncating it may give space back.
    try { checkpoint('TRUNCATE') } catch {}
  }
  if (trouble === 'retrying' && now - retryStartMs < cfg.fullRetryMs) {
    retryDelayMs = Math.min(retryDelayMs * 2, 250, Math.max(1, cfg.fullRetryMs - (now - retryStartMs)))
    retryTimer = setTimeout(() => { retryTimer = null; pump() }, retryDelayMs)
    return false
  }
  trouble = 'full'
  failQueue('ENOSPC', `store ${cfg.dir}: no space left on device (${free} bytes free); the batch was not applied`)
  return true
}

/**
 * Reject everything queued (what is still in the port too) and start a new
 * epoch: requests sent before the caller hears of this are rejected on arrival.
 */
function failQueue (errno: StoreErrno, message: string): void {
  drainPort()
  failEpoch++
  const failed = queue.splice(0).map(r => ({ id: r.id, errno, message }))
  post({ t: 'group', seq, committed: false, done: [], failed, failEpoch })
  lastFailure = { errno, message }
}

/** Reject the queue's head while it was sent before the caller heard of the last failure. */
function rejectStale (): void {
  let n = 0
  while (n < queue.length && queue[n].epoch < failEpoch) n++
  if (n === 0) return
  const message = `${lastFailure.message.replace(/; the batch was not applied$/, '')}; not applied because an earlier batch failed`
  const failed = queue.splice(0, n).map(r => ({ id: r.id, errno: lastFailure.errno, message }))
  post({ t: 'group', seq, committed: false, done: [], failed })
}

function isSpaceError (err: unknown): boolean {
  const code = (err as { code?: string }).code ?? ''
  if (code === 'SQLITE_FULL') return true
  // Some writes that run out of space surface as I/O errors (fsync, shm growth).
  return code.startsWith('SQLITE_IOERR') && bytesFree() < 1024 * 1024
}

/** Errors that doom the whole transaction rather than one batch. */
function isGroupError (err: unknown): boolean {
  const code = (err as { code?: string }).code ?? ''
  return code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CORRUPT') ||
    code === 'SQLITE_NOMEM' || code.startsWith('SQLITE_BUSY') || code === 'SQLITE_READONLY' || !db.inTransaction
}

function bytesFree (): number {
  try {
    const s = fs.statfsSync(cfg.dir)
    return s.bavail * s.bsize
  } catch {
    return 0
  }
}

function finishClose (): void {
  if (idleTimer !== null) clearTimeout(idleTimer)
  try { checkpoint('TRUNCATE') } catch {}
  db.close()
  post({ t: 'closed' })
  port.close()
}

post({ t: 'ready', seq })
