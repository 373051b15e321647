// Omap entries packed back to back in one buffer.
//
// A trim after a large merge sets millions of omap entries. As [key, value]
// pairs each entry costs three JS objects (the pair and two Buffer views),
// made on the MDS's thread, walked twice by the batch encoder, made again by
// the decoder on the writer's thread: most of the garbage of such a trim.
// Packed, an entry is bytes in a buffer: for each, a u32 (little-endian) key
// length, the key, a u32 value length, the value — the layout the SQLite
// store's batch encoding gives a [key, value] list, so the encoder copies it
// in one piece and the writer walks it in place.

import { writeLatin1, writeU64Key } from '../common/codec'

/** Entries of one omapSet, packed. Iterating yields [key, value] pairs (views into the buffer). */
export class PackedOmap implements Iterable<[Uint8Array, Uint8Array]> {
  constructor (readonly bytes: Uint8Array, readonly count: number) {}

  forEach (fn: (key: Uint8Array, value: Uint8Array) => void): void {
    const b = this.bytes
    let pos = 0
    for (let i = 0; i < this.count; i++) {
      const kl = readU32(b, pos)
      const key = b.subarray(pos + 4, pos + 4 + kl)
      pos += 4 + kl
      const vl = readU32(b, pos)
      const value = b.subarray(pos + 4, pos + 4 + vl)
      pos += 4 + vl
      fn(key, value)
    }
  }

  [Symbol.iterator] (): Iterator<[Uint8Array, Uint8Array]> {
    const out: Array<[Uint8Array, Uint8Array]> = []
    this.forEach((k, v) => out.push([k, v]))
    return out[Symbol.iterator]()
  }

  /**
   * Entries packed in `bytes` from `pos` on (count of them), or null when the
   * bytes do not hold that many well-formed entries. Returns the view and the
   * position after it.
   */
  static view (bytes: Uint8Array, pos: number, count: number): { entries: PackedOmap, end: number } | null {
    let p = pos
    for (let i = 0; i < 2 * count; i++) {
      if (p + 4 > bytes.length) return null
      const n = readU32(bytes, p)
      if (p + 4 + n > bytes.length) return null
      p += 4 + n
    }
    return { entries: new PackedOmap(bytes.subarray(pos, p), count), end: p }
  }
}

function readU32 (b: Uint8Array, pos: number): number {
  return (b[pos] | (b[pos + 1] << 8) | (b[pos + 2] << 16)) + b[pos + 3] * 0x1000000
}

/**
 * Packs the entries of many objects, one object after the other, into shared
 * slabs: begin(), add entries, finish() gives that object's PackedOmap.
 */
export class OmapPacker {
  private static readonly SLAB_BYTES = 1024 * 1024
  private buf = Buffer.allocUnsafe(OmapPacker.SLAB_BYTES)
  private start = 0
  private pos = 0
  private count = 0

  begin (): void {
    this.start = this.pos
    this.count = 0
  }

  /** An entry whose key is a latin1 string (a dentry name) and whose value is bytes. */
  addNamed (name: string, value: Uint8Array): void {
    this.room(8 + name.length + value.length)
    this.buf.writeUInt32LE(name.length, this.pos)
    this.pos += 4 + writeLatin1(this.buf, this.pos + 4, name)
    this.value(value)
  }

  /** An entry whose key is a big-endian u64 (an inode number: the store sorts them by number). */
  addU64 (n: number, value: Uint8Array): void {
    this.room(16 + value.length)
    this.buf.writeUInt32LE(8, this.pos)
    writeU64Key(this.buf, this.pos + 4, n)
    this.pos += 12
    this.value(value)
  }

  get entries (): number {
    return this.count
  }

  finish (): PackedOmap {
    return new PackedOmap(this.buf.subarray(this.start, this.pos), this.count)
  }

  private value (value: Uint8Array): void {
    this.buf.writeUInt32LE(value.length, this.pos)
    this.buf.set(value, this.pos + 4)
    this.pos += 4 + value.length
    this.count++
  }

  /** Room for n more bytes; the current object's entries move to a new slab if needed. */
  private room (n: number): void {
    if (this.pos + n <= this.buf.length) return
    const used = this.pos - this.start
    const next = Buffer.allocUnsafe(Math.max(OmapPacker.SLAB_BYTES, 2 * (used + n)))
    this.buf.copy(next, 0, this.start, this.pos)
    this.buf = next
    this.start = 0
    this.pos = used
  }
}

/** Every entry of an omapSet, packed or not. */
export function forEachOmapEntry (entries: OmapEntries, fn: (key: Uint8Array, value: Uint8Array) => void): void {
  if (entries instanceof PackedOmap) entries.forEach(fn)
  else for (const [k, v] of entries) fn(k, v)
}

export type OmapEntries = Array<[key: Uint8Array, value: Uint8Array]> | PackedOmap
