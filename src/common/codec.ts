// Compact binary encoding used by every on-disk format (inodes, dentries,
// journal events): unsigned LEB128 varints (zigzag for signed values),
// length-prefixed byte strings.
//
// Numbers are JS numbers (exact up to 2^53): inode numbers, sizes and
// timestamps all fit.

const INITIAL_BYTES = 256
/** Strings and byte strings shorter than this are copied byte by byte: cheaper than a call into the runtime. */
const SHORT_BYTES = 32

/** Write s (one char per byte, latin1) into buf at pos; returns the bytes written (s.length). */
export function writeLatin1 (buf: Buffer, pos: number, s: string): number {
  const n = s.length
  if (n >= SHORT_BYTES) return buf.write(s, pos, n, 'latin1')
  for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i)
  return n
}

/** Write n as the 8-byte big-endian key u64Key makes, into buf at pos. */
export function writeU64Key (buf: Buffer, pos: number, n: number): void {
  buf.writeUInt32BE(Math.floor(n / 0x100000000), pos)
  buf.writeUInt32BE(n >>> 0, pos + 4)
}

export class Encoder {
  private buf: Buffer
  private pos = 0

  constructor (initialBytes = INITIAL_BYTES) {
    this.buf = Buffer.allocUnsafe(initialBytes)
  }

  get length (): number { return this.pos }

  private ensure (n: number): void {
    if (this.pos + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + n) size *= 2
    const next = Buffer.allocUnsafe(size)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  u8 (v: number): this {
    this.ensure(1)
    this.buf[this.pos++] = v
    return this
  }

  /** Unsigned varint; v must be a non-negative integer below 2^53. */
  uint (v: number): this {
    this.ensure(8)
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    this.buf[this.pos++] = v
    return this
  }

  /** Signed varint (zigzag): |v| must be below 2^52. Timestamps before 1970 are negative. */
  sint (v: number): this {
    return this.uint(v < 0 ? -2 * v - 1 : 2 * v)
  }

  bytes (b: Uint8Array): this {
    this.uint(b.length)
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
    return this
  }

  /** A byte string (one char per byte, latin1): how names travel through cudele. */
  str (s: string): this {
    this.uint(s.length)
    this.ensure(s.length)
    this.pos += writeLatin1(this.buf, this.pos, s)
    return this
  }

  /** Raw bytes without a length prefix. */
  raw (b: Uint8Array): this {
    const n = b.length
    this.ensure(n)
    if (n < SHORT_BYTES) {
      const buf = this.buf
      let pos = this.pos
      for (let i = 0; i < n; i++) buf[pos++] = b[i]
      this.pos = pos
    } else {
      this.buf.set(b, this.pos)
      this.pos += n
    }
    return this
  }

  /** A copy of the encoded bytes, in a buffer of their exact size. */
  finish (): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos))
  }

  /** The encoded bytes without copying (valid until the next write). */
  view (): Buffer {
    return this.buf.subarray(0, this.pos)
  }

  reset (): void {
    this.pos = 0
  }
}

export class Decoder {
  pos = 0
  constructor (private readonly buf: Uint8Array, start = 0, private readonly end = buf.length) {
    this.pos = start
  }

  get done (): boolean { return this.pos >= this.end }

  u8 (): number {
    if (this.pos >= this.end) throw new RangeError('truncated record')
    return this.buf[this.pos++]
  }

  uint (): number {
    let v = 0
    let mul = 1
    for (;;) {
      if (this.pos >= this.end) throw new RangeError('truncated varint')
      const b = this.buf[this.pos++]
      v += (b & 0x7f) * mul
      if (b < 0x80) return v
      mul *= 0x80
      if (mul > 2 ** 56) throw new RangeError('varint too long')
    }
  }

  bytes (): Buffer {
    const n = this.uint()
    if (this.pos + n > this.end) throw new RangeError('truncated bytes')
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n))
    this.pos += n
    return out
  }

  sint (): number {
    const u = this.uint()
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2
  }

  str (): string {
    const n = this.uint()
    if (this.pos + n > this.end) throw new RangeError('truncated string')
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, n).toString('latin1')
    this.pos += n
    return s
  }
}

/** Byte-string (latin1) helpers: names keep every byte, whatever the encoding. */
export function nameToBytes (name: string): Buffer {
  return Buffer.from(name, 'latin1')
}

export function bytesToName (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1')
}

/** 8-byte big-endian key: sorts numerically as bytes. */
export function u64Key (n: number): Buffer {
  const b = Buffer.allocUnsafe(8)
  writeU64Key(b, 0, n)
  return b
}

export function keyToU64 (b: Uint8Array): number {
  const v = Buffer.from(b.buffer, b.byteOffset, b.length)
  return v.readUInt32BE(0) * 0x100000000 + v.readUInt32BE(4)
}
