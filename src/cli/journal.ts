// `cudele journal inspect|export|import|apply`: the one event format, seen
// from outside. Sources are a client journal file (.cj, written by
// local_persist) or a store's MDS journal (the objects not yet trimmed).
//
//   inspect SRC            events per type, bytes per event (and each event with --events)
//   export SRC OUT         the events as a client journal file (or JSON lines with --json)
//   import FILE --store D  add a file's events to a stopped store's MDS journal; the next start replays them
//   apply FILE --store D   apply a file's events to a stopped store now (blindly, like a merge)
//   apply FILE --connect A the same on a running server

import * as fs from 'fs'
import * as path from 'path'
import { JournalFile, type JournalFileHeader, type Segment } from '../cudele/journalfile'
import { Decoder } from '../common/codec'
import { appendJournalSegments, decodeEvent, eventName, type Event, isMarkerEvent, openMds, readJournalSegments } from '../mds'
import { call } from '../protocol'
import { connect } from '../rpc'
import { openStore } from '../store'

export interface JournalSource {
  file?: string
  store?: string
}

interface Loaded {
  what: string
  header: JournalFileHeader | null
  segments: Segment[]
}

function load (src: JournalSource): Loaded {
  if (src.file) {
    const { header, segments } = JournalFile.read(src.file)
    return { what: `client journal ${src.file} (owner ${header.owner}, subtree ${header.root}, inodes ${header.inoStart}..${header.inoStart + header.count - 1})`, header, segments }
  }
  throw new Error('give a client journal file, or --store DIR')
}

async function loadStore (dir: string): Promise<Loaded> {
  const store = await openStore(path.resolve(dir), { readOnly: true })
  try {
    const { trimmedSeq, segments } = readJournalSegments(store)
    return { what: `MDS journal of ${path.resolve(dir)} (untrimmed objects after ${trimmedSeq})`, header: null, segments }
  } finally {
    await store.close()
  }
}

function* events (segments: Segment[]): Generator<{ seq: number, index: number, ev: Event, bytes: number }> {
  for (const s of segments) {
    const d = new Decoder(s.bytes)
    let index = 0
    while (!d.done) {
      const start = d.pos
      const ev = decodeEvent(d)
      yield { seq: s.seq, index: index++, ev, bytes: d.pos - start }
    }
  }
}

function show (ev: Event): string {
  const o = { ...ev } as Record<string, unknown>
  delete o.type
  return `${eventName(ev)} ${JSON.stringify(o, (_k, v: unknown) => v instanceof Uint8Array ? `<${v.length} bytes>` : v)}`
}

export async function journalInspect (src: JournalSource, listEvents: boolean): Promise<number> {
  const l = src.store ? await loadStore(src.store) : load(src)
  const counts = new Map<string, { n: number, bytes: number }>()
  let total = 0
  let bytes = 0
  for (const e of events(l.segments)) {
    total++
    bytes += e.bytes
    const c = counts.get(eventName(e.ev)) ?? { n: 0, bytes: 0 }
    c.n++
    c.bytes += e.bytes
    counts.set(eventName(e.ev), c)
    if (listEvents) console.log(`${e.seq}.${e.index} ${show(e.ev)}`)
  }
  console.log(`${l.what}: ${l.segments.length} segments, ${total} events, ${bytes} bytes (${total ? (bytes / total).toFixed(1) : 0} bytes per event)`)
  for (const [name, c] of [...counts].sort((a, b) => b[1].n - a[1].n)) {
    console.log(`  ${name.padEnd(12)} ${String(c.n).padStart(10)} events ${(c.bytes / c.n).toFixed(1).padStart(7)} bytes each`)
  }
  return 0
}

export async function journalExport (src: JournalSource, out: string, json: boolean): Promise<number> {
  const l = src.store ? await loadStore(src.store) : load(src)
  if (json) {
    const lines: string[] = []
    for (const e of events(l.segments)) lines.push(JSON.stringify({ seq: e.seq, index: e.index, ...e.ev, type: eventName(e.ev) }, (_k, v: unknown) => v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v))
    fs.writeFileSync(out, lines.join('\n') + (lines.length ? '\n' : ''))
  } else {
    const header: JournalFileHeader = l.header ?? { cudele: 'client-journal', version: 1, source: src.store ? path.resolve(src.store) : '', root: 1, owner: 'export', inoStart: 0, count: 0 }
    JournalFile.create(path.resolve(out), header, l.segments).close()
  }
  let n = 0
  for (const _ of events(l.segments)) n++
  console.log(`exported ${n} events in ${l.segments.length} segments to ${out}`)
  return 0
}

/** Events of a file that may change a namespace (markers of requests, claims and merges stay behind). */
function namespaceEvents (l: Loaded): Event[] {
  const out: Event[] = []
  for (const e of events(l.segments)) {
    if (!isMarkerEvent(e.ev)) out.push(e.ev)
  }
  return out
}

/** Add a file's segments to a stopped store's MDS journal: replayed at the next start. */
export async function journalImport (file: string, storeDir: string): Promise<number> {
  const l = load({ file })
  const store = await openStore(path.resolve(storeDir))
  try {
    await appendJournalSegments(store, l.segments.map(seg => seg.bytes))
    console.log(`imported ${l.segments.length} segments into the MDS journal of ${path.resolve(storeDir)}; they are replayed at the next mount or serve`)
    return 0
  } finally {
    await store.close()
  }
}

/** Apply a file's events now: to a stopped store, or through a running server. */
export async function journalApply (file: string, target: { store?: string, connect?: string }): Promise<number> {
  const l = load({ file })
  const evs = namespaceEvents(l)
  if (target.connect) {
    const conn = await connect(target.connect, { name: 'cudele-journal' })
    try {
      const r = await call(conn, 'journal.apply', [l.segments.map(s => s.bytes)])
      console.log(`applied ${r.applied} events, ${r.skipped} could not apply (their target was gone)`)
      return r.skipped > 0 ? 1 : 0
    } finally {
      conn.close()
    }
  }
  if (!target.store) throw new Error('journal apply needs --store DIR or --connect ADDR')
  const store = await openStore(path.resolve(target.store))
  const mds = await openMds(store)
  try {
    const r = mds.applyClientEvents(evs, true)
    await mds.sync(true)
    console.log(`applied ${r.applied} events, ${r.skipped} could not apply (their target was gone)`)
    return r.skipped > 0 ? 1 : 0
  } finally {
    await mds.close()
    await store.close()
  }
}

