// Client journals into the namespace (Cudele's merge): the events a
// decoupled client appended are applied blindly on top of what the MDS has
// (the decoupled client's updates win over what others did meanwhile), and
// recorded in the MDS journal so that a crash loses nothing a merge was
// acknowledged for.

import { Encoder } from '../common/codec'
import { fsError } from '../common/errors'
import type { Ino } from '../common/types'
import { applyEvent } from './apply'
import { decodeEvents, describeEvent, encodeEvent, type Event, EventType } from './events'
import type { ApplyResult, RequestContext } from './index'
import type { Journal } from './journal'
import type { Namespace } from './namespace'

/** What a merge needs of the MDS it merges into. */
export interface MergeHost {
  readonly ns: Namespace
  readonly journal: Journal
  /** Journal the marker that precedes a request's first journaled event. */
  marker (req: RequestContext): void
  /** The namespace changed: trim now if the cache holds too many dirty entries. */
  changed (): void
}

/** Events only the MDS writes (claims, request markers, purges, merge marks) have no place in a client journal. */
function refuseServerEvents (events: Event[]): void {
  for (const ev of events) {
    if (ev.type === EventType.Claim || ev.type === EventType.Unclaim || ev.type === EventType.Request || ev.type === EventType.Purge || ev.type === EventType.Merged) {
      throw fsError('EINVAL', `a client journal may not hold ${describeEvent(ev)}`)
    }
  }
}

/**
 * Apply a client journal's events blindly (an administrator's apply, or
 * nonvolatile apply). journal: also stream them into the MDS journal;
 * otherwise they live in memory until the next trim.
 */
export function applyClientEvents (h: MergeHost, events: Event[], journal: boolean, merged?: { root: Ino, seq: number }, req?: RequestContext): ApplyResult {
  refuseServerEvents(events)
  let applied = 0
  let skipped = 0
  h.journal.together(() => {
    // The marker shares the journal object with the events it covers.
    if (req && journal) h.marker(req)
    for (const ev of events) {
      if (applyEvent(h.ns, ev)) {
        applied++
        if (journal) h.journal.append(ev)
      } else {
        skipped++
      }
    }
    if (merged) {
      const m: Event = { type: EventType.Merged, root: merged.root, seq: merged.seq }
      applyEvent(h.ns, m)
      if (journal) h.journal.append(m)
    }
  })
  // Unjournaled events reach the store with the next trim, and so does the
  // record that this request was done: the two stay together.
  if (req && !journal) h.ns.completed.add(req.client, req.tid)
  return { applied, skipped }
}

/**
 * Merge client journal segments (volatile apply): their events are applied
 * to the in-memory metadata and the segments themselves go into the MDS
 * journal as they are, wrapped by the request marker and the Merged event,
 * in one journal object: replay after a crash sees them in the same order
 * as everything journaled after them, and the trim writes the result to the
 * metadata store in the background.
 */
export function mergeSegments (h: MergeHost, segments: Uint8Array[], merged: { root: Ino, seq: number }, req?: RequestContext): ApplyResult & { committed: Promise<unknown> } {
  const events = segments.flatMap(bytes => decodeEvents(bytes))
  refuseServerEvents(events)
  let applied = 0
  let skipped = 0
  for (const ev of events) {
    if (applyEvent(h.ns, ev)) applied++
    else skipped++
  }
  const head = new Encoder(64)
  if (req) {
    req.journaled = true
    const marker: Event = { type: EventType.Request, client: req.client, tid: req.tid }
    applyEvent(h.ns, marker)
    encodeEvent(head, marker)
  }
  const tail = new Encoder(32)
  const m: Event = { type: EventType.Merged, root: merged.root, seq: merged.seq }
  applyEvent(h.ns, m)
  encodeEvent(tail, m)
  const bytes = Buffer.concat([head.view(), ...segments, tail.view()])
  const committed = h.journal.appendEncoded(bytes, events.length + 2)
  h.changed()
  return { applied, skipped, committed }
}
