// The store lock: one writer (an embedded mount or a server) holds a store
// directory exclusively; read-only openers (fsck without repair) share it with
// each other but never with a writer.
//
// The lock is SQLite's own POSIX advisory locking on DIR/LOCK, a tiny SQLite
// database. The kernel drops POSIX locks when the holding process dies, kill -9
// included, so the lock can never go stale and needs no cleanup. A writer holds
// an EXCLUSIVE lock (locking_mode=EXCLUSIVE plus an open BEGIN EXCLUSIVE); a
// reader holds a SHARED lock (locking_mode=EXCLUSIVE keeps it after its first
// read). SQLite also arbitrates between connections inside one process, so a
// second open in the same process is refused too.
//
// POSIX locks belong to the process and are all dropped when ANY descriptor of
// the file is closed. Nothing may open DIR/LOCK with fs calls while the lock is
// held; who holds it is written to a separate side file, DIR/LOCK.owner, which
// is only there to make the EBUSY message useful.

import fs from 'fs'
import os from 'os'
import path from 'path'
import Database from 'better-sqlite3'
import { StoreError } from './types'

export const LOCK_FILE = 'LOCK'
export const OWNER_FILE = 'LOCK.owner'

export type LockMode = 'exclusive' | 'shared'

interface OwnerInfo {
  pid: number
  host: string
  mode: LockMode
  since: string
}

export class StoreLock {
  private released = false

  private constructor (
    readonly dir: string,
    readonly mode: LockMode,
    private readonly db: Database.Database
  ) {}

  /**
   * Take the lock on a store directory, or fail at once with EBUSY naming the
   * holder. DIR/LOCK is made when missing.
   */
  static acquire (dir: string, mode: LockMode): StoreLock {
    const lockPath = path.join(dir, LOCK_FILE)
    let db: Database.Database
    try {
      // A reader opens the lock file read-only when it can (a store on read-only media);
      // a store whose LOCK went missing gets a new one either way.
      const readonly = mode === 'shared' && fs.existsSync(lockPath)
      db = new Database(lockPath, { readonly, fileMustExist: readonly, timeout: 0 })
    } catch (err) {
      throw new StoreError('EIO', `store ${dir}: cannot open lock file ${lockPath}: ${(err as Error).message}`)
    }
    try {
      db.pragma('locking_mode = EXCLUSIVE')
      if (mode === 'exclusive') {
        // A rollback journal is never written: the transaction stays empty.
        db.exec('BEGIN EXCLUSIVE')
      } else {
        db.prepare('SELECT count(*) FROM sqlite_schema').get()
      }
    } catch (err) {
      db.close()
      if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED') {
        throw new StoreError('EBUSY', busyMessage(dir))
      }
      throw new StoreError('EIO', `store ${dir}: cannot lock ${lockPath}: ${(err as Error).message}`)
    }
    const lock = new StoreLock(dir, mode, db)
    lock.writeOwner()
    return lock
  }

  /**
   * Say who holds the lock. A writer always does (any previous info is stale);
   * a reader leaves the info of another live reader alone, since readers share.
   */
  private writeOwner (): void {
    const info: OwnerInfo = { pid: process.pid, host: os.hostname(), mode: this.mode, since: new Date().toISOString() }
    const file = path.join(this.dir, OWNER_FILE)
    if (this.mode === 'shared') {
      const current = readOwner(this.dir)
      if (current !== null && current.mode === 'shared' && current.host === info.host && pidAlive(current.pid)) return
    }
    const tmp = `${file}.${process.pid}.tmp`
    try {
      fs.writeFileSync(tmp, JSON.stringify(info) + '\n')
      fs.renameSync(tmp, file)
    } catch {
      // A read-only directory: the lock still holds, the EBUSY message is just less specific.
      try { fs.unlinkSync(tmp) } catch {}
    }
  }

  /** Release the lock (and the owner file, when it still names this process). */
  release (): void {
    if (this.released) return
    this.released = true
    const info = readOwner(this.dir)
    if (info !== null && info.pid === process.pid && info.host === os.hostname()) {
      try { fs.unlinkSync(path.join(this.dir, OWNER_FILE)) } catch {}
    }
    if (this.mode === 'exclusive') {
      try { this.db.exec('ROLLBACK') } catch {}
    }
    this.db.close()
  }
}

function readOwner (dir: string): OwnerInfo | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as OwnerInfo
  } catch {
    return null
  }
}

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function busyMessage (dir: string): string {
  const info = readOwner(dir)
  if (info === null) return `store ${dir} is in use by another cudele process`
  const where = info.host === os.hostname() ? '' : ` on ${info.host}`
  const how = info.mode === 'shared' ? ', read-only' : ''
  return `store ${dir} is in use by another cudele process (pid ${info.pid}${where}${how}, since ${info.since})`
}
