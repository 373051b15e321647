// The journal event format: createMany's batch encoding gives the same bytes
// as encoding each create on its own, and names of every length and byte
// value survive a round trip.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Decoder, Encoder } from '../../src/common/codec'
import { decodeEvents, encodeCreates, encodeEvent, EventType, type MknodEvent } from '../../src/mds/events'
import { S_IFREG } from '../../src/common/types'

test('encodeCreates writes exactly what encodeEvent writes for each create, names short and long, bytes 0-255', () => {
  const names = ['a', 'f12345', 'x'.repeat(24), 'y'.repeat(25), 'z'.repeat(255), String.fromCharCode(...Array.from({ length: 200 }, (_, i) => 1 + i)), 'é\u00ff\u0080']
  const time = { s: -5, ns: 999_999_999 }
  for (const [parent, firstIno, uid] of [[1, 0x1000, 0], [2 ** 40, 2 ** 50, 65534]]) {
    const one = new Encoder(8)
    const events: MknodEvent[] = names.map((name, i) => ({ type: EventType.Mknod, parent, name, ino: firstIno + i, mode: S_IFREG | 0o644, uid, gid: 7, rdev: 0, time, target: '' }))
    for (const ev of events) encodeEvent(one, ev)
    const batch = new Encoder(8)
    encodeCreates(batch, parent, names, firstIno, S_IFREG | 0o644, uid, 7, time)
    assert.deepEqual(batch.finish(), one.finish())
    assert.deepEqual(decodeEvents(batch.finish()), events)
  }
})

test('short and long byte strings round-trip through the encoder', () => {
  const enc = new Encoder(4)
  const strs = ['', 'a', 'b'.repeat(24), 'c'.repeat(25), '\u0000\u00ff', 'd'.repeat(10_000)]
  const raws = [new Uint8Array(0), Uint8Array.from([1, 2, 3]), new Uint8Array(24).fill(9), new Uint8Array(25).fill(8), new Uint8Array(5000).fill(7)]
  for (const s of strs) enc.str(s)
  for (const r of raws) enc.raw(r)
  const bytes = enc.finish()
  const d = new Decoder(bytes)
  for (const s of strs) assert.equal(d.str(), s)
  assert.deepEqual(bytes.subarray(d.pos), Buffer.concat(raws))
})
