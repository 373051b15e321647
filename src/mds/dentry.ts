// A dentry's record in its directory object's omap: key = the name's bytes,
// value = inode number and type (so readdir needs no inode reads).

import { Decoder, Encoder } from '../common/codec'
import type { Ino } from './types'

export function encodeDentry (ino: Ino, type: number): Buffer {
  return new Encoder(12).uint(ino).uint(type >>> 12).finish()
}

export function decodeDentry (value: Uint8Array): { ino: Ino, type: number } {
  const d = new Decoder(value)
  const ino = d.uint()
  return { ino, type: d.uint() << 12 }
}
