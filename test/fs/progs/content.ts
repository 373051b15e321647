// Deterministic file contents for the crash and scale tests: the bytes of a
// file at any offset follow from its id alone, so a checker can tell, for any
// byte read back after a crash, whether it is what was written there.
// (A library module: running it does nothing.)

import { createHash } from 'crypto'

/** 32-bit FNV-1a of a string. */
export function hash32 (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

/** A seeded PRNG in [0, 1) (mulberry32). */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const BLOCK = 64 * 1024
let cacheKey = ''
let cacheBlock: Buffer = Buffer.alloc(0)

function block (h: number, index: number): Buffer {
  const key = `${h}:${index}`
  if (key === cacheKey) return cacheBlock
  const words = new Uint32Array(BLOCK / 4)
  let x = (h ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    words[i] = x
  }
  cacheKey = key
  cacheBlock = Buffer.from(words.buffer)
  return cacheBlock
}

/** The bytes of file `id` at [off, off + len). */
export function expected (id: string, off: number, len: number): Buffer {
  const out = Buffer.allocUnsafe(len)
  const h = hash32(id)
  let pos = off
  while (pos < off + len) {
    const b = Math.floor(pos / BLOCK)
    const from = pos - b * BLOCK
    const n = Math.min(BLOCK - from, off + len - pos)
    block(h, b).copy(out, pos - off, from, from + n)
    pos += n
  }
  return out
}

/** The full size a workload file of this id is written to: 0 B – 3 MiB, mostly small. */
export function sizeFor (id: string): number {
  const r = prng(hash32(id + '#size'))
  const k = r()
  const v = r()
  if (k < 0.1) return 0
  if (k < 0.4) return 1 + Math.floor(v * 4096)
  if (k < 0.7) return 4096 + Math.floor(v * 252 * 1024)
  return 256 * 1024 + Math.floor(v * (3 * 1024 * 1024 - 256 * 1024 + 1))
}

export function sha256 (buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex')
}

/**
 * The first offset in [off, off + got.length) where got is neither what file
 * `id` has there nor zero (a hole or an unstored tail reads as zeros; anything
 * else was never written there). -1 when there is none.
 */
export function firstForeignByte (id: string, off: number, got: Buffer): number {
  const want = expected(id, off, got.length)
  if (got.equals(want)) return -1
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== 0 && got[i] !== want[i]) return off + i
  }
  return -1
}

/** The first offset of got (which starts at off) that is not zero, or -1. */
export function firstNonZero (off: number, got: Buffer): number {
  for (let i = 0; i < got.length; i++) if (got[i] !== 0) return off + i
  return -1
}
