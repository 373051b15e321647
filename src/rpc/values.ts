// A compact, self-describing binary encoding of the JS values RPC arguments
// and results are made of. Every value starts with a tag byte:
//
//   0x80..0xff   integer 0..127 (the tag is the value | 0x80)
//   0x20..0x3f   latin1 string of 0..31 chars (tag 0x20 | length), then the bytes
//   0x40..0x4f   array of 0..15 values (tag 0x40 | count), then the values
//   0x50..0x5f   object of 0..15 keys (tag 0x50 | count), then the pairs
//   0x00 null    0x01 undefined    0x02 false    0x03 true
//   0x04 uint    varint, integer 128..2^53
//   0x05 nint    varint n, the integer -n (n from 1 to 2^53)
//   0x06 f64     8 bytes little endian: any other number (fractions, -0,
//                NaN, ±Infinity, integers beyond 2^53)
//   0x07 latin1  varint n, n bytes: a string whose chars are all <= 0xff,
//                one byte per char. Filenames travel as such "byte strings"
//                (see common/codec.ts), so they come back exactly.
//   0x08 utf8    varint n, n bytes of UTF-8: any other well-formed string
//   0x09 utf16   varint n, n bytes UTF-16LE: a string with lone surrogates,
//                which UTF-8 cannot carry
//   0x0a bytes   varint n, n bytes: a Buffer or Uint8Array (decodes as Buffer)
//   0x0b array   varint n, n values
//   0x0c object  varint n, n pairs of (string value, value): a plain object
//
// Varints are unsigned LEB128, at most 8 bytes (53 bits). Objects keep their
// keys in insertion order, and keys whose value is undefined; holes in sparse
// arrays come back as undefined. Anything else
// (bigint, Map, Date, class instances, functions, cycles) is refused with a
// TypeError naming where in the value it sits.
//
// Decoding returns Buffers of 1 KiB or more as slices of the received frame
// (zero copy; the frame buffer is never reused, see frame.ts); smaller ones
// are copied, so a small value kept for long (a cached xattr) does not pin a
// whole socket read buffer.

import { writeLatin1 } from '../common/codec'

export const T_NULL = 0x00
export const T_UNDEFINED = 0x01
export const T_FALSE = 0x02
export const T_TRUE = 0x03
export const T_UINT = 0x04
export const T_NINT = 0x05
export const T_F64 = 0x06
export const T_LATIN1 = 0x07
export const T_UTF8 = 0x08
export const T_UTF16 = 0x09
export const T_BYTES = 0x0a
export const T_ARRAY = 0x0b
export const T_OBJECT = 0x0c
export const T_FIXINT = 0x80
export const T_FIXSTR = 0x20
export const T_FIXARRAY = 0x40
export const T_FIXOBJECT = 0x50
const FIXSTR_MAX = 31
const FIXCOUNT_MAX = 15

/** Values this codec carries. */
export type Value =
  | null | undefined | boolean | number | string | Uint8Array
  | Value[] | { [key: string]: Value }

export const MAX_DEPTH = 256
export const ZERO_COPY_MIN = 1024
const MAX_INT = 2 ** 53
/** Fresh output buffers are this big; a bigger frame gets a buffer of its own size. */
const SLAB = 64 * 1024
/** Strings shorter than this are read char by char: cheaper than a call into the runtime (writeLatin1 writes them so). */
const SHORT_STRING = 32

/** Thrown for a value that cannot be encoded; `path` says where it sits. */
export class EncodeError extends TypeError {
  path: string[] = []
  constructor (readonly what: string) {
    super(what)
    this.name = 'EncodeError'
  }

  where (): string {
    return this.path.length === 0 ? 'the value' : this.path.join('')
  }

  refresh (): void {
    this.message = `cannot encode ${this.what} at ${this.where()}`
  }
}

/** Thrown for bytes that are not a valid encoding. */
export class DecodeError extends RangeError {
  constructor (message: string) {
    super(message)
    this.name = 'DecodeError'
  }
}

// Object keys repeat (every attribute record has the same ten), and so do
// method names: decoding hands out the same string for the same short key,
// which saves building it and lets V8 find the property (or the Map entry)
// by a string it has already internalized.
const KEY_CACHE_MASK = 1023
const keyCache: Array<string | undefined> = new Array(KEY_CACHE_MASK + 1)

const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)

/**
 * An append-only output buffer. Bytes before `base` have been handed out
 * (take()) and are never written again, so buffers handed to a socket stay
 * valid while the writer carries on after them.
 *
 * Positions (mark(), rollback(), offset()) count the bytes written since the
 * last take(). When a value does not fit, grow() moves to a bigger buffer,
 * but copies only what follows `keepFrom` (the frame being encoded): what
 * came before is set aside as it is, so a burst of big frames is copied once,
 * not again at every growth.
 */
export class Writer {
  buf: Buffer
  pos = 0
  base = 0
  /** Where the frame being encoded starts (a position): grow() keeps it in one piece. */
  keepFrom = 0
  private sealed: Buffer[] = []
  private sealedBytes = 0

  constructor (initial = SLAB) {
    this.buf = Buffer.allocUnsafe(initial)
  }

  /** Bytes written since the last take(). */
  get length (): number { return this.sealedBytes + this.pos - this.base }

  ensure (n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n)
  }

  private grow (n: number): void {
    let from = this.base
    if (this.keepFrom > this.sealedBytes) {
      const cut = this.offset(this.keepFrom)
      this.sealed.push(this.buf.subarray(this.base, cut))
      this.sealedBytes += cut - this.base
      from = cut
    }
    const live = this.pos - from
    const need = live + n
    const size = need <= SLAB / 2 ? SLAB : need + (need >>> 1)
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, from, this.pos)
    this.buf = next
    this.base = 0
    this.pos = live
  }

  /** Hand out the bytes written since the last take(), without copying (unless grow() split them). */
  take (): Buffer {
    const parts = this.takeAll()
    return parts.length === 1 ? parts[0] : Buffer.concat(parts)
  }

  /** The bytes written since the last take(), in order, as one or more buffers. */
  takeAll (): Buffer[] {
    const parts = this.sealed
    parts.push(this.buf.subarray(this.base, this.pos))
    this.sealed = []
    this.sealedBytes = 0
    this.keepFrom = 0
    this.base = this.pos
    // Don't keep a huge buffer alive for small frames once it has been handed out.
    if (this.buf.length > 4 * SLAB && this.pos > SLAB) {
      this.buf = Buffer.allocUnsafe(SLAB)
      this.base = this.pos = 0
    }
    return parts
  }

  /** The current position. */
  mark (): number {
    return this.length
  }

  /** Forget everything written after position m (not before keepFrom). */
  rollback (m: number): void {
    this.pos = this.offset(m)
  }

  /** Where position m (not before keepFrom) is in buf. */
  offset (m: number): number {
    return this.base + m - this.sealedBytes
  }

  u8 (v: number): void {
    this.ensure(1)
    this.buf[this.pos++] = v
  }

  /** Unsigned varint, v an integer from 0 to 2^53. */
  varint (v: number): void {
    this.ensure(8)
    const buf = this.buf
    let pos = this.pos
    // `v & 0x7f` is exact for integers up to 2^53: ToInt32 keeps the low bits.
    while (v > 0xffffffff) {
      buf[pos++] = (v & 0x7f) | 0x80
      v = Math.floor(v / 128)
    }
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    buf[pos++] = v
    this.pos = pos
  }

  f64 (v: number): void {
    this.ensure(8)
    f64[0] = v
    this.buf.set(f64Bytes, this.pos)
    this.pos += 8
  }

  raw (b: Uint8Array): void {
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }

  /** A string with its tag: latin1 when every char fits a byte, else UTF-8 (or UTF-16 if it must). */
  string (s: string): void {
    const n = s.length
    let i = 0
    while (i < n && s.charCodeAt(i) <= 0xff) i++
    if (i === n) {
      this.ensure(9 + n)
      if (n <= FIXSTR_MAX) {
        this.buf[this.pos++] = T_FIXSTR | n
      } else {
        this.buf[this.pos++] = T_LATIN1
        this.varint(n)
      }
      this.pos += writeLatin1(this.buf, this.pos, s)
      return
    }
    if (hasLoneSurrogate(s, i)) {
      this.ensure(9 + 2 * n)
      this.buf[this.pos++] = T_UTF16
      this.varint(2 * n)
      this.pos += this.buf.write(s, this.pos, 2 * n, 'utf16le')
      return
    }
    const bytes = Buffer.byteLength(s, 'utf8')
    this.ensure(9 + bytes)
    this.buf[this.pos++] = T_UTF8
    this.varint(bytes)
    this.pos += this.buf.write(s, this.pos, bytes, 'utf8')
  }

  /** Any supported value, with its tag. */
  value (v: unknown): void {
    writeValue(this, v, 0)
  }
}

function hasLoneSurrogate (s: string, from: number): boolean {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    if (c >= 0xdc00) return true
    const d = s.charCodeAt(i + 1)
    if (!(d >= 0xdc00 && d <= 0xdfff)) return true
    i++
  }
  return false
}

function describe (v: unknown): string {
  if (typeof v === 'object' && v !== null) {
    const ctor = (v as { constructor?: { name?: string } }).constructor?.name
    return ctor !== undefined && ctor !== '' ? `a ${ctor}` : 'an object with a custom prototype'
  }
  return `a ${typeof v}`
}

function writeValue (w: Writer, v: unknown, depth: number): void {
  switch (typeof v) {
    case 'number':
      writeNumber(w, v)
      return
    case 'string':
      w.string(v)
      return
    case 'boolean':
      w.u8(v ? T_TRUE : T_FALSE)
      return
    case 'undefined':
      w.u8(T_UNDEFINED)
      return
    case 'object':
      if (v === null) { w.u8(T_NULL); return }
      if (depth >= MAX_DEPTH) throw new EncodeError(`a value nested deeper than ${MAX_DEPTH} levels (a cycle?)`)
      if (v instanceof Uint8Array) {
        w.ensure(9)
        w.buf[w.pos++] = T_BYTES
        w.varint(v.length)
        w.raw(v)
        return
      }
      if (Array.isArray(v)) { writeArray(w, v, depth); return }
      {
        const proto = Object.getPrototypeOf(v)
        if (proto !== Object.prototype && proto !== null) throw new EncodeError(describe(v))
      }
      writeObject(w, v as Record<string, unknown>, depth)
      return
    default:
      throw new EncodeError(describe(v))
  }
}

function writeNumber (w: Writer, v: number): void {
  if (Number.isInteger(v)) {
    if (v >= 0) {
      if (v < 0x80) {
        if (v === 0 && 1 / v < 0) { w.u8(T_F64); w.f64(v); return } // -0
        w.u8(T_FIXINT | v)
        return
      }
      if (v <= MAX_INT) { w.u8(T_UINT); w.varint(v); return }
    } else if (v >= -MAX_INT) {
      w.u8(T_NINT)
      w.varint(-v)
      return
    }
  }
  w.u8(T_F64)
  w.f64(v)
}

function writeArray (w: Writer, a: unknown[], depth: number): void {
  const n = a.length
  if (n <= FIXCOUNT_MAX) {
    w.u8(T_FIXARRAY | n)
  } else {
    w.u8(T_ARRAY)
    w.varint(n)
  }
  for (let i = 0; i < n; i++) {
    try {
      writeValue(w, a[i], depth + 1)
    } catch (err) {
      if (err instanceof EncodeError) err.path.unshift(`[${i}]`)
      throw err
    }
  }
}

function writeObject (w: Writer, o: Record<string, unknown>, depth: number): void {
  const keys = Object.keys(o)
  if (keys.length <= FIXCOUNT_MAX) {
    w.u8(T_FIXOBJECT | keys.length)
  } else {
    w.u8(T_OBJECT)
    w.varint(keys.length)
  }
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]
    w.string(k)
    try {
      writeValue(w, o[k], depth + 1)
    } catch (err) {
      if (err instanceof EncodeError) err.path.unshift(/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`)
      throw err
    }
  }
}

/** Reads values from a byte range; throws DecodeError on anything malformed. */
export class Reader {
  constructor (public buf: Buffer, public pos: number, public end: number) {}

  reset (buf: Buffer, pos: number, end: number): void {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  get done (): boolean { return this.pos >= this.end }

  u8 (): number {
    if (this.pos >= this.end) throw new DecodeError('truncated value')
    return this.buf[this.pos++]
  }

  varint (): number {
    const buf = this.buf
    const end = this.end
    let pos = this.pos
    let v = 0
    let shift = 0
    // The first 4 bytes (28 bits) with integer ops, the rest with multiplication.
    for (; shift < 28; shift += 7) {
      if (pos >= end) throw new DecodeError('truncated varint')
      const b = buf[pos++]
      v |= (b & 0x7f) << shift
      if (b < 0x80) { this.pos = pos; return v }
    }
    let mul = 2 ** 28
    for (let i = 4; ; i++) {
      if (i >= 8) throw new DecodeError('varint longer than 8 bytes')
      if (pos >= end) throw new DecodeError('truncated varint')
      const b = buf[pos++]
      v += (b & 0x7f) * mul
      if (b < 0x80) break
      mul *= 128
    }
    if (v > MAX_INT) throw new DecodeError('varint beyond 2^53')
    this.pos = pos
    return v
  }

  /** n bytes from the current position (checked). */
  private span (n: number): number {
    const start = this.pos
    if (n > this.end - start) throw new DecodeError(`a length of ${n} runs past the end of the frame`)
    this.pos = start + n
    return start
  }

  string (): string {
    const tag = this.u8()
    if ((tag & 0xe0) === T_FIXSTR) return this.stringBody(T_LATIN1, tag & FIXSTR_MAX)
    if (tag !== T_LATIN1 && tag !== T_UTF8 && tag !== T_UTF16) throw new DecodeError(`expected a string, found tag 0x${tag.toString(16)}`)
    return this.stringBody(tag, this.varint())
  }

  private stringBody (tag: number, n: number): string {
    const start = this.span(n)
    const buf = this.buf
    if (tag === T_LATIN1) {
      if (n < SHORT_STRING) {
        let s = ''
        for (let i = start; i < start + n; i++) s += String.fromCharCode(buf[i])
        return s
      }
      return buf.toString('latin1', start, start + n)
    }
    if (tag === T_UTF8) return buf.toString('utf8', start, start + n)
    if (n % 2 !== 0) throw new DecodeError('UTF-16 string of an odd number of bytes')
    return buf.toString('utf16le', start, start + n)
  }

  value (): unknown {
    return this.read(0)
  }

  private read (depth: number): unknown {
    const tag = this.u8()
    if (tag >= T_FIXINT) return tag & 0x7f
    if (tag >= T_FIXSTR) {
      if (tag < T_FIXARRAY) return this.stringBody(T_LATIN1, tag & FIXSTR_MAX)
      if (tag < T_FIXOBJECT) return this.array(tag & FIXCOUNT_MAX, depth)
      if (tag < T_FIXOBJECT + FIXCOUNT_MAX + 1) return this.object(tag & FIXCOUNT_MAX, depth)
      throw new DecodeError(`unknown value tag 0x${tag.toString(16)}`)
    }
    switch (tag) {
      case T_NULL: return null
      case T_UNDEFINED: return undefined
      case T_FALSE: return false
      case T_TRUE: return true
      case T_UINT: return this.varint()
      case T_NINT: {
        const n = this.varint()
        if (n === 0) throw new DecodeError('negative integer zero')
        return -n
      }
      case T_F64: {
        const start = this.span(8)
        for (let i = 0; i < 8; i++) f64Bytes[i] = this.buf[start + i]
        return f64[0]
      }
      case T_LATIN1:
      case T_UTF8:
      case T_UTF16:
        return this.stringBody(tag, this.varint())
      case T_BYTES: {
        const n = this.varint()
        const start = this.span(n)
        if (n >= ZERO_COPY_MIN) return this.buf.subarray(start, start + n)
        const out = Buffer.allocUnsafe(n)
        this.buf.copy(out, 0, start, start + n)
        return out
      }
      case T_ARRAY:
        return this.array(this.varint(), depth)
      case T_OBJECT:
        return this.object(this.varint(), depth)
      default:
        throw new DecodeError(`unknown value tag 0x${tag.toString(16)}`)
    }
  }

  private array (n: number, depth: number): unknown[] {
    if (depth >= MAX_DEPTH) throw new DecodeError(`values nested deeper than ${MAX_DEPTH} levels`)
    // Every element takes at least a byte: refuse counts the frame cannot hold before allocating.
    if (n > this.end - this.pos) throw new DecodeError(`an array of ${n} elements runs past the end of the frame`)
    const a = new Array(n)
    for (let i = 0; i < n; i++) a[i] = this.read(depth + 1)
    return a
  }

  /** A string value, for object keys and method names: short latin1 ones come from keyCache. */
  name (): string {
    const tag = this.buf[this.pos]
    if ((tag & 0xe0) !== T_FIXSTR || this.pos >= this.end) return this.string()
    const n = tag & FIXSTR_MAX
    const start = this.pos + 1
    if (n > this.end - start) throw new DecodeError(`a length of ${n} runs past the end of the frame`)
    const buf = this.buf
    let h = n
    for (let i = start; i < start + n; i++) h = (h * 31 + buf[i]) & KEY_CACHE_MASK
    let s = keyCache[h]
    let hit = s !== undefined && s.length === n
    if (hit) {
      for (let i = 0; i < n; i++) {
        if ((s as string).charCodeAt(i) !== buf[start + i]) { hit = false; break }
      }
    }
    if (!hit) {
      s = ''
      for (let i = start; i < start + n; i++) s += String.fromCharCode(buf[i])
      keyCache[h] = s
    }
    this.pos = start + n
    return s as string
  }

  private object (n: number, depth: number): Record<string, unknown> {
    if (depth >= MAX_DEPTH) throw new DecodeError(`values nested deeper than ${MAX_DEPTH} levels`)
    if (2 * n > this.end - this.pos) throw new DecodeError(`an object of ${n} keys runs past the end of the frame`)
    const o: Record<string, unknown> = {}
    for (let i = 0; i < n; i++) {
      const k = this.name()
      const v = this.read(depth + 1)
      // Plain assignment of '__proto__' would set the prototype instead of a key.
      if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
      else o[k] = v
    }
    return o
  }
}

/** Encode one value into a buffer of its own. Throws EncodeError (a TypeError) for unsupported values. */
export function encodeValue (v: unknown): Buffer {
  const w = new Writer(256)
  try {
    w.value(v)
  } catch (err) {
    if (err instanceof EncodeError) err.refresh()
    throw err
  }
  return w.take()
}

/** Decode one value that fills `buf` exactly. Throws DecodeError for malformed input. */
export function decodeValue (buf: Uint8Array): unknown {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length)
  const r = new Reader(b, 0, b.length)
  const v = r.value()
  if (!r.done) throw new DecodeError(`${r.end - r.pos} bytes left after the value`)
  return v
}
