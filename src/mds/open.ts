// Bringing an MDS up on a store: format a new store, load the inode
// allocator and stray set, replay the journal objects left since the last trim.

import { Decoder, keyToU64, u64Key } from '../common/codec'
import { now } from '../common/time'
import type { LocalReads, LocalStore } from '../store/types'
import { DEFAULT_MDS_OPTIONS, Mds, type MdsOptions } from './mds'
import { encodeInode } from './inode'
import { Journal, readJournal } from './journal'
import { dirObject, FIRST_INO, FORMAT_OBJECT, FORMAT_VERSION, inodeShardObject, INOTABLE_OBJECT, JOURNAL_HEADER, SESSIONS_OBJECT, STRAY_OBJECT, CLAIMS_OBJECT } from './layout'
import { DATA_POOL, METADATA_POOL } from '../common/layout'
import type { Claim } from './namespace'
import { encodeInoTable, encodeJournalHeader } from './trim'
import { ROOT_INO, S_IFDIR, type Ino } from '../common/types'

export interface OpenMdsOptions {
  mds?: MdsOptions
  readOnly?: boolean
  /** Owner of the root directory of a new filesystem. */
  rootUid?: number
  rootGid?: number
  /** Hold purges of unlinked inodes this long after start (server mode: clients reconnect and reclaim open files). */
  purgeDelayMs?: number
}

export async function formatIfNew (store: LocalStore, opts: OpenMdsOptions): Promise<boolean> {
  if (store.statSync(METADATA_POOL, FORMAT_OBJECT)) return false
  const existing = store.listSync(METADATA_POOL, { limit: 1 })
  if (existing.length > 0) throw new Error('the store holds objects but no cudele format marker; refusing to format over it')
  await store.createPool(METADATA_POOL)
  await store.createPool(DATA_POOL)
  const t = now()
  const root = {
    ino: ROOT_INO, mode: S_IFDIR | 0o755, uid: opts.rootUid ?? 0, gid: opts.rootGid ?? 0, nlink: 2, size: 0, rdev: 0,
    atime: t, mtime: t, ctime: t, parent: ROOT_INO, nentries: 0, target: '', xattrs: null, blocks: 0
  }
  await store.submit([
    { pool: METADATA_POOL, name: inodeShardObject(ROOT_INO), ops: [{ op: 'omapSet', entries: [[u64Key(ROOT_INO), encodeInode(root)]] }] },
    { pool: METADATA_POOL, name: dirObject(ROOT_INO), ops: [{ op: 'create', exclusive: true }] },
    { pool: METADATA_POOL, name: INOTABLE_OBJECT, ops: [{ op: 'writeFull', data: encodeInoTable(FIRST_INO) }] },
    { pool: METADATA_POOL, name: JOURNAL_HEADER, ops: [{ op: 'writeFull', data: encodeJournalHeader(0) }] },
    { pool: METADATA_POOL, name: FORMAT_OBJECT, ops: [{ op: 'writeFull', data: Buffer.from(`cudele ${FORMAT_VERSION}\n`) }] }
  ], { durable: true })
  return true
}

function readSmall (store: LocalReads, name: string): Decoder | null {
  const st = store.statSync(METADATA_POOL, name)
  if (!st) return null
  const payload = store.readSync(METADATA_POOL, name, 0, st.size)
  return payload ? new Decoder(payload) : null
}

export function readFormat (store: LocalReads): number | null {
  const st = store.statSync(METADATA_POOL, FORMAT_OBJECT)
  if (!st) return null
  const text = Buffer.from(store.readSync(METADATA_POOL, FORMAT_OBJECT, 0, st.size) ?? []).toString()
  const m = /^cudele (\d+)/.exec(text)
  return m ? Number(m[1]) : -1
}

/** Each client's completed requests, as the last trim left them. */
export function readCompleted (store: LocalReads): Array<{ client: string, floor: number, tids: number[] }> {
  const out: Array<{ client: string, floor: number, tids: number[] }> = []
  let after: Uint8Array | undefined
  for (;;) {
    const rows = store.omapListSync(METADATA_POOL, SESSIONS_OBJECT, { after, limit: 1024 })
    for (const r of rows) {
      const d = new Decoder(r.value)
      const floor = d.uint()
      const n = d.uint()
      const tids: number[] = []
      for (let i = 0; i < n; i++) tids.push(d.uint())
      out.push({ client: Buffer.from(r.key).toString('latin1'), floor, tids })
    }
    if (rows.length < 1024) return out
    after = rows[rows.length - 1].key
  }
}

export function readClaims (store: LocalReads): Claim[] {
  const out: Claim[] = []
  let after: Uint8Array | undefined
  for (;;) {
    const rows = store.omapListSync(METADATA_POOL, CLAIMS_OBJECT, { after, limit: 1024 })
    for (const r of rows) {
      const d = new Decoder(r.value)
      const owner = d.str()
      const inoStart = d.uint()
      const count = d.uint()
      const mergedSeq = d.done ? 0 : d.uint()
      // Claims stored before the used mark was kept: 0, nothing known.
      out.push({ root: keyToU64(r.key), owner, inoStart, count, mergedSeq, used: d.done ? 0 : d.uint() })
    }
    if (rows.length < 1024) return out
    after = rows[rows.length - 1].key
  }
}

export function readStrays (store: LocalReads): Ino[] {
  const out: Ino[] = []
  let after: Uint8Array | undefined
  for (;;) {
    const rows = store.omapListSync(METADATA_POOL, STRAY_OBJECT, { after, limit: 1024 })
    for (const r of rows) out.push(keyToU64(r.key))
    if (rows.length < 1024) return out
    after = rows[rows.length - 1].key
  }
}

/** Open the MDS on a store: format it if new (unless read-only), then replay. */
export async function openMds (store: LocalStore, opts: OpenMdsOptions = {}): Promise<Mds> {
  if (!opts.readOnly) await formatIfNew(store, opts)
  const format = readFormat(store)
  if (format === null) throw new Error('this store has no cudele filesystem (no format marker)')
  if (format !== FORMAT_VERSION) throw new Error(`this store has filesystem format ${format}; this cudele reads format ${FORMAT_VERSION}`)

  const inotable = readSmall(store, INOTABLE_OBJECT)
  const header = readSmall(store, JOURNAL_HEADER)
  if (!inotable || !header) throw new Error('the store lacks its inode table or journal header')
  inotable.uint()
  const nextIno = inotable.uint()
  header.uint()
  const trimmedSeq = header.uint()

  const journal = new Journal(store, trimmedSeq + 1, trimmedSeq)
  const mds = new Mds(store, journal, nextIno, readStrays(store), opts.mds ?? DEFAULT_MDS_OPTIONS, opts.readOnly === true)
  for (const c of readCompleted(store)) mds.ns.completed.load(c.client, c.floor, c.tids)
  for (const c of readClaims(store)) mds.ns.claims.load(c)
  for (const { seq, events } of readJournal(store, trimmedSeq)) {
    mds.replay(seq, events)
    journal.stats.replayed += events.length
    journal.nextSeq = seq + 1
  }
  mds.start({ purgeDelayMs: opts.purgeDelayMs })
  return mds
}
