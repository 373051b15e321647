// How the monitor keeps its state in the object store. Pool `mon`, written by
// the monitor alone:
//
//   maps         omap: map name (UTF-8) -> {"epoch": E, "writers": [...] | null}
//                The index: every map's latest epoch and its writers. A map
//                whose writers were set before its first proposal has epoch 0.
//   map.<name>   omap: epoch (8-byte big-endian) -> {"t": committedAtMs, "v": value}
//                One entry per epoch, the last `historyEpochs` of them.
//   clusterlog   omap: seq (8-byte big-endian) -> {"t": ms, "l": level, "w": who, "m": message}
//                The last `logPersistedEntries` entries.
//
// A round writes the new epoch entries, their index entries and the trimming
// of old epochs in one batch, so the index never names an epoch that is not
// stored, and a restart needs one listing of the index plus one omap read
// per map. Keys are big-endian so the omap's byte order is epoch order, and
// trimming is one range removal.

import { u64Key, keyToU64 } from '../common/codec'
import { fsError } from '../common/errors'
import type { ObjectStore, ObjectWrite } from '../store/types'
import type { JsonValue, LogEntry, LogLevel } from './types'

export const MON_POOL = 'mon'
export const INDEX_OBJECT = 'maps'
export const LOG_OBJECT = 'clusterlog'

/** Entries read per omap listing while loading. */
const LOAD_PAGE = 1000

export function mapObject (map: string): string {
  return `map.${map}`
}

/** A map as the store holds it: the latest epoch and who may write it. */
export interface StoredMap {
  name: string
  epoch: number
  writers: string[] | null
  /** JSON text of the latest value ('null' at epoch 0). */
  valueText: string
  committedAtMs: number
}

export interface StoredEpoch {
  valueText: string
  committedAtMs: number
}

// ---- writes ----

/** The new epoch of a map, with the trimming of epochs beyond the kept history. */
export function epochWrite (map: string, epoch: number, valueText: string, committedAtMs: number, historyEpochs: number): ObjectWrite {
  const ops: ObjectWrite['ops'] = [
    // Built as text: the value is already serialized, and it stays byte-identical to what was checked.
    { op: 'omapSet', entries: [[u64Key(epoch), Buffer.from(`{"t":${committedAtMs},"v":${valueText}}`)]] }
  ]
  const firstKept = epoch - historyEpochs + 1
  if (firstKept > 1) ops.push({ op: 'omapRemoveRange', start: u64Key(0), end: u64Key(firstKept) })
  return { pool: MON_POOL, name: mapObject(map), ops }
}

export function indexWrite (entries: Array<{ name: string, epoch: number, writers: string[] | null }>): ObjectWrite {
  return {
    pool: MON_POOL,
    name: INDEX_OBJECT,
    ops: [{
      op: 'omapSet',
      entries: entries.map(e => [Buffer.from(e.name, 'utf8'), Buffer.from(JSON.stringify({ epoch: e.epoch, writers: e.writers }))])
    }]
  }
}

/** New log entries, with the trimming of those beyond the kept count. */
export function logWrite (entries: readonly LogEntry[], persistedEntries: number): ObjectWrite {
  const ops: ObjectWrite['ops'] = [{
    op: 'omapSet',
    entries: entries.map(e => [u64Key(e.seq), Buffer.from(JSON.stringify({ t: e.timeMs, l: e.level, w: e.who, m: e.message }))])
  }]
  const firstKept = entries[entries.length - 1].seq - persistedEntries + 1
  if (firstKept > 1) ops.push({ op: 'omapRemoveRange', start: u64Key(0), end: u64Key(firstKept) })
  return { pool: MON_POOL, name: LOG_OBJECT, ops }
}

// ---- reads ----

/** Every map in the index with its latest epoch's value. */
export async function loadMaps (store: ObjectStore): Promise<StoredMap[]> {
  const out: StoredMap[] = []
  let after: Uint8Array | undefined
  for (;;) {
    const page = await store.omapList(MON_POOL, INDEX_OBJECT, { after, limit: LOAD_PAGE })
    for (const e of page) {
      const name = Buffer.from(e.key).toString('utf8')
      const rec = parseRecord(e.value, `index entry of map ${name}`) as { epoch?: unknown, writers?: unknown }
      if (typeof rec.epoch !== 'number' || !Number.isInteger(rec.epoch) || rec.epoch < 0 ||
          !(rec.writers === null || (Array.isArray(rec.writers) && rec.writers.every(w => typeof w === 'string')))) {
        throw corrupt(`index entry of map ${name} is malformed`)
      }
      const map: StoredMap = { name, epoch: rec.epoch, writers: rec.writers as string[] | null, valueText: 'null', committedAtMs: 0 }
      if (map.epoch > 0) {
        const latest = await readEpoch(store, name, map.epoch)
        if (latest === null) throw corrupt(`the index names epoch ${map.epoch} of map ${name}, which is not stored`)
        map.valueText = latest.valueText
        map.committedAtMs = latest.committedAtMs
      }
      out.push(map)
    }
    if (page.length < LOAD_PAGE) return out
    after = page[page.length - 1].key
  }
}

export async function readEpoch (store: ObjectStore, map: string, epoch: number): Promise<StoredEpoch | null> {
  const [e] = await store.omapGet(MON_POOL, mapObject(map), [u64Key(epoch)])
  if (e === undefined) return null
  const rec = parseRecord(e.value, `epoch ${epoch} of map ${map}`) as { t?: unknown, v?: JsonValue }
  if (typeof rec.t !== 'number' || !('v' in rec)) throw corrupt(`epoch ${epoch} of map ${map} is malformed`)
  return { valueText: JSON.stringify(rec.v), committedAtMs: rec.t }
}

const LEVELS: ReadonlySet<string> = new Set<LogLevel>(['debug', 'info', 'warn', 'error'])

/** The last `keep` cluster log entries, oldest first. */
export async function loadLog (store: ObjectStore, keep: number): Promise<LogEntry[]> {
  let out: LogEntry[] = []
  let after: Uint8Array | undefined
  for (;;) {
    const page = await store.omapList(MON_POOL, LOG_OBJECT, { after, limit: LOAD_PAGE })
    for (const e of page) {
      const seq = keyToU64(e.key)
      const rec = parseRecord(e.value, `cluster log entry ${seq}`) as { t?: unknown, l?: unknown, w?: unknown, m?: unknown }
      if (typeof rec.t !== 'number' || typeof rec.l !== 'string' || !LEVELS.has(rec.l) || typeof rec.w !== 'string' || typeof rec.m !== 'string') {
        throw corrupt(`cluster log entry ${seq} is malformed`)
      }
      out.push({ seq, timeMs: rec.t, level: rec.l as LogLevel, who: rec.w, message: rec.m })
    }
    // More than `keep` are stored only if the limit was lowered since they were written.
    if (out.length > 2 * keep) out = out.slice(-keep)
    if (page.length < LOAD_PAGE) return out.slice(-keep)
    after = page[page.length - 1].key
  }
}

function parseRecord (value: Uint8Array, what: string): Record<string, unknown> {
  let rec: unknown
  try {
    rec = JSON.parse(Buffer.from(value).toString('utf8'))
  } catch (err) {
    throw corrupt(`${what} is not JSON (${(err as Error).message})`)
  }
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) throw corrupt(`${what} is not a JSON object`)
  return rec as Record<string, unknown>
}

function corrupt (what: string): Error {
  return fsError('EIO', `monitor store (pool ${MON_POOL}): ${what}`)
}
