// A dentry's record in its directory object's omap: key = the name's bytes,
// value = inode number and type (so readdir needs no inode reads).

import { Decoder, Encoder } from '../common/codec'
import type { Ino } from '../common/types'

export function encodeDentry (ino: Ino, type: number): Buffer {
  const enc = new Encoder(12)
  encodeDentryInto(enc, ino, type)
  return enc.finish()
}

/** The record into enc (reset first): its view() holds it. */
export function encodeDentryInto (enc: Encoder, ino: Ino, type: number): void {
  enc.reset()
  enc.uint(ino).uint(type >>> 12)
}

export function decodeDentry (value: Uint8Array): { ino: Ino, type: number } {
  const d = new Decoder(value)
  const ino = d.uint()
  return { ino, type: d.uint() << 12 }
}
