// The MDS journal of a store that no MDS has open (`cudele journal`): its
// untrimmed objects read as segments, and segments added after them so that
// the next start replays them. Segments are journal object payloads, the one
// event format client journals share.

import { Decoder } from '../common/codec'
import { METADATA_POOL } from '../common/layout'
import type { LocalStore } from '../store/types'
import { JOURNAL_HEADER, JOURNAL_PREFIX, journalObject, parseJournalObject } from './layout'

export interface JournalSegment {
  seq: number
  bytes: Uint8Array
}

/** Objects listed per store read. */
const LIST_PAGE = 512

/** Every object up to this sequence number is in the metadata store already (0: none). */
function trimmedSeq (store: LocalStore): number {
  const st = store.statSync(METADATA_POOL, JOURNAL_HEADER)
  if (!st) return 0
  const h = new Decoder(store.readSync(METADATA_POOL, JOURNAL_HEADER, 0, st.size) ?? new Uint8Array())
  h.uint()
  return h.uint()
}

/** Sequence numbers of the journal objects in the store, in order. */
function * journalSeqs (store: LocalStore): Generator<{ seq: number, name: string }> {
  let after: string | undefined
  for (;;) {
    const names = store.listSync(METADATA_POOL, { prefix: JOURNAL_PREFIX, after, limit: LIST_PAGE })
    for (const name of names) {
      const seq = parseJournalObject(name)
      if (seq !== null) yield { seq, name }
    }
    if (names.length < LIST_PAGE) return
    after = names[names.length - 1]
  }
}

/** The journal objects not trimmed yet, in order. */
export function readJournalSegments (store: LocalStore): { trimmedSeq: number, segments: JournalSegment[] } {
  const trimmed = trimmedSeq(store)
  const segments: JournalSegment[] = []
  for (const { seq, name } of journalSeqs(store)) {
    if (seq <= trimmed) continue
    const st = store.statSync(METADATA_POOL, name)
    segments.push({ seq, bytes: store.readSync(METADATA_POOL, name, 0, st?.size ?? 0) ?? new Uint8Array() })
  }
  return { trimmedSeq: trimmed, segments }
}

/** Add segments after the last journal object (durably): the next MDS start replays them. */
export async function appendJournalSegments (store: LocalStore, segments: Uint8Array[]): Promise<void> {
  let last = trimmedSeq(store)
  for (const { seq } of journalSeqs(store)) last = Math.max(last, seq)
  const writes = segments.map((bytes, i) => ({ pool: METADATA_POOL, name: journalObject(last + 1 + i), ops: [{ op: 'writeFull' as const, data: bytes }] }))
  await store.submit(writes, { durable: true })
}
