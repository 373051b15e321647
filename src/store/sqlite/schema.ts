// The on-disk layout of a SQLite store: tables, pragmas, and the checks that
// tell a cudele store from any other SQLite file.
//
// Small-object overhead decides the table shapes: a cudele empty file is two
// omap rows, so omap is WITHOUT ROWID keyed by the integer object id (no second
// index, no rowid per row). Payload lives in fixed-size chunks whose rowid is
// derived from (object id, chunk index), so one B-tree holds every payload and
// a range of rowids is one object's payload.

import Database from 'better-sqlite3'
import { StoreError } from '../types'

/** Payload chunk size. Partial writes read-modify-write only the chunks they touch. */
export const CHUNK_BYTES = 64 * 1024
/** Chunk rowid = objectId * CHUNKS_PER_OBJECT + chunkIndex. */
export const CHUNKS_PER_OBJECT = 2 ** 20
/** The largest payload an object can have: 64 GiB. */
export const MAX_OBJECT_BYTES = CHUNK_BYTES * CHUNKS_PER_OBJECT

/** 'CDLE' in the SQLite header: marks store.db as a cudele store. */
export const APPLICATION_ID = 0x43444c45
/** Bumped whenever the tables change incompatibly. */
export const SCHEMA_VERSION = 1

export const DB_FILE = 'store.db'

const DDL = `
CREATE TABLE IF NOT EXISTS counters (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  seq INTEGER NOT NULL,      -- last commit sequence number (CommitInfo.seq)
  objects INTEGER NOT NULL   -- live object count, kept so usage() needs no scan
);
INSERT OR IGNORE INTO counters (id, seq, objects) VALUES (0, 0, 0);
CREATE TABLE IF NOT EXISTS pools (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS objects (
  id INTEGER PRIMARY KEY,
  pool INTEGER NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  version INTEGER NOT NULL,
  mtime INTEGER NOT NULL,
  UNIQUE (pool, name)
);
CREATE TABLE IF NOT EXISTS omap (
  oid INTEGER NOT NULL,
  key BLOB NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (oid, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS xattrs (
  oid INTEGER NOT NULL,
  name TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (oid, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunks (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL         -- only up to the chunk's last written byte; the rest reads as zeros
);
`

/**
 * Open store.db for setup: create the tables in a new store, or check that an
 * existing file is a cudele store of a version this code understands.
 * Returns with the database in WAL mode and closes the connection.
 */
export function prepareDatabase (dir: string, dbPath: string, opts: { create: boolean, readOnly: boolean }): void {
  let db: Database.Database
  try {
    db = new Database(dbPath, { readonly: opts.readOnly, fileMustExist: !opts.create, timeout: 5000 })
  } catch (err) {
    throw new StoreError('EIO', `store ${dir}: cannot open ${dbPath}: ${(err as Error).message}`)
  }
  try {
    let appId: number
    try {
      appId = db.pragma('application_id', { simple: true }) as number
    } catch (err) {
      throw new StoreError('EINVAL', `${dir} is not a cudele store: ${dbPath} is not a SQLite database (${(err as Error).message})`)
    }
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as { n: number }
    if (appId === 0 && tables.n === 0) {
      if (opts.readOnly || !opts.create) throw new StoreError('EINVAL', `${dir} is not a cudele store: ${dbPath} is empty`)
      // page_size must be set before the first table exists. 8 KiB rather than
      // SQLite's 4 KiB: a trim that sets millions of omap rows ran 8% faster
      // in the writer (Fig. 6a's merges), the same cache holds more keys per
      // level, and fsync'd creates were no slower (bench durable). Stores
      // made with 4 KiB pages keep them.
      db.pragma('page_size = 8192')
      db.pragma('journal_mode = WAL')
      db.transaction(() => {
        db.exec(DDL)
        db.pragma(`application_id = ${APPLICATION_ID}`)
        db.pragma(`user_version = ${SCHEMA_VERSION}`)
      })()
      return
    }
    if (appId !== APPLICATION_ID) {
      throw new StoreError('EINVAL', `${dir} is not a cudele store: ${dbPath} belongs to another application (application_id ${appId})`)
    }
    const version = db.pragma('user_version', { simple: true }) as number
    if (version !== SCHEMA_VERSION) {
      throw new StoreError('EINVAL', `store ${dir}: schema version ${version} is not supported (this cudele reads version ${SCHEMA_VERSION})`)
    }
    if (!opts.readOnly && db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL')
  } finally {
    db.close()
  }
}

/** Pragmas of the one write connection (in the writer thread). */
export function configureWriter (db: Database.Database): void {
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  // The writer checkpoints on its own schedule (size or idle), never inside a commit.
  db.pragma('wal_autocheckpoint = 0')
  // After a checkpoint resets the WAL, give back space beyond this.
  db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`)
  db.pragma('temp_store = MEMORY')
  db.pragma('cache_size = -16384')
  db.pragma('foreign_keys = OFF')
}

/** Pragmas of a read connection (main thread). */
export function configureReader (db: Database.Database): void {
  db.pragma('cache_size = -16384')
  db.pragma('temp_store = MEMORY')
}
