// The value codec: decode(encode(v)) deep-equals v for every value it
// carries, found by hand-picked edge cases and by a seeded random generator;
// malformed input fails with DecodeError and never anything worse.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeValue, encodeValue } from '../../src/rpc'
import { beginFrame, encodeFrame, endFrame, FrameType } from '../../src/rpc/frame'
import { DecodeError, EncodeError, Writer, ZERO_COPY_MIN } from '../../src/rpc/values'

function roundTrip (v: unknown): unknown {
  return decodeValue(encodeValue(v))
}

function same (v: unknown): void {
  assert.deepStrictEqual(roundTrip(v), v)
}

test('scalars: null, undefined, booleans', () => {
  for (const v of [null, undefined, true, false]) assert.equal(roundTrip(v), v)
})

test('integers, including near ±2^53, keep their exact value', () => {
  const ints = [0, 1, 127, 128, 255, 256, 16383, 16384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1,
    2 ** 49, 2 ** 52 + 1, 2 ** 53 - 2, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 2 ** 60, Number.MAX_VALUE]
  for (const n of ints) {
    assert.equal(roundTrip(n), n, `${n}`)
    assert.equal(roundTrip(-n), -n, `-${n}`)
  }
  // Compact: small integers take one byte, 2^53 - 1 eight bytes plus the tag.
  assert.equal(encodeValue(5).length, 1)
  assert.equal(encodeValue(2 ** 53 - 1).length, 9)
  assert.equal(encodeValue(-1).length, 2)
})

test('doubles: -0, NaN, infinities, subnormals, fractions', () => {
  for (const v of [-0, NaN, Infinity, -Infinity, 5e-324, -5e-324, 0.1, -1.5, Math.PI, 1e300, 2 ** -1074]) {
    assert.ok(Object.is(roundTrip(v), v), `${v}`)
  }
  assert.ok(Object.is(roundTrip(-0), -0))
})

test('byte strings with chars 0x80-0xff come back exactly, one byte per char', () => {
  let all = ''
  for (let c = 0; c <= 0xff; c++) all += String.fromCharCode(c)
  same(all)
  assert.equal(encodeValue(all).length, 1 + 2 + 256)
  assert.equal(encodeValue('name.txt').length, 1 + 8)
  // A filename read as latin1 from raw UTF-8 bytes: "é" is 0xc3 0xa9.
  const name = Buffer.from('café-\u{1F600}.txt', 'utf8').toString('latin1')
  same(name)
  assert.deepEqual(Buffer.from(roundTrip(name) as string, 'latin1'), Buffer.from('café-\u{1F600}.txt', 'utf8'))
  // Invalid UTF-8 sequences are just bytes here.
  same('\xff\xfe\x80\x00\xc0\xaf')
  same('')
  same('x'.repeat(100_000))
  same('\xe9'.repeat(100_000))
})

test('unicode strings: BMP, astral, and lone surrogates', () => {
  for (const s of ['héllo wörld ☃', '日本語のファイル名', '\u{1F600}\u{10FFFF}', 'a\ud800b', '\udc00', 'x\ud83d', '\ud83d\ude00\ud800', '☃'.repeat(50_000)]) {
    same(s)
  }
})

test('buffers: empty, small, big; Uint8Array decodes as Buffer', () => {
  for (const n of [0, 1, 100, ZERO_COPY_MIN - 1, ZERO_COPY_MIN, 65536, 5 * 1024 * 1024]) {
    const b = Buffer.alloc(n)
    for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff
    same(b)
  }
  const u = new Uint8Array([1, 2, 3])
  const back = roundTrip(u) as Buffer
  assert.ok(Buffer.isBuffer(back))
  assert.deepEqual([...back], [1, 2, 3])
  // A view into a bigger buffer encodes only its own bytes.
  const big = Buffer.from('0123456789')
  same(big.subarray(3, 6))
})

test('small decoded buffers are copies, big ones slices of the input', () => {
  const enc = encodeValue([Buffer.alloc(10, 1), Buffer.alloc(ZERO_COPY_MIN, 2)])
  const [small, large] = decodeValue(enc) as Buffer[]
  assert.notEqual(small.buffer, enc.buffer)
  assert.equal(large.buffer, enc.buffer)
})

test('arrays and objects, nested; key order, undefined members and odd keys kept', () => {
  same([])
  same({})
  same([1, [2, [3, [4, []]]], { a: { b: { c: [null, undefined, true] } } }])
  same({ z: 1, a: 2, m: undefined, '': 3, 'with space': 4, '\xe9\xff': 5, 日本: 6, 10: 'ten' })
  const o = roundTrip({ b: 1, a: 2 }) as object
  assert.deepEqual(Object.keys(o), ['b', 'a'])
  same([undefined, null, 3])
  // A hole in a sparse array comes back as undefined.
  assert.deepStrictEqual(roundTrip([1, , 3]), [1, undefined, 3]) // eslint-disable-line no-sparse-arrays
  // An attribute record like the MDS sends.
  const attr = { ino: 1234567, mode: 0o100644, nlink: 1, uid: 1000, gid: 1000, rdev: 0, size: 4096, atime: { s: 1700000000, ns: 123456789 }, mtime: { s: 1700000000, ns: 1 }, ctime: { s: -5, ns: 999999999 } }
  same(attr)
  assert.ok(encodeValue(attr).length <= 120, `attr encodes in ${encodeValue(attr).length} bytes`)
})

test('a __proto__ key is data, not a prototype', () => {
  const v = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}')
  const back = roundTrip(v) as Record<string, unknown>
  assert.equal(Object.getPrototypeOf(back), Object.prototype)
  assert.deepEqual(Object.keys(back), ['__proto__', 'x'])
  assert.equal(({} as Record<string, unknown>).polluted, undefined)
  assert.deepEqual(Object.getOwnPropertyDescriptor(back, '__proto__')?.value, { polluted: true })
})

test('unsupported values are refused with where they are', () => {
  const cases: Array<[unknown, RegExp]> = [
    [10n, /cannot encode a bigint at the value/],
    [{ a: [1, new Map()] }, /cannot encode a Map at \.a\[1\]/],
    [{ 'odd key': new Date() }, /a Date at \["odd key"\]/],
    [[() => 1], /a function at \[0\]/],
    [Symbol('s'), /a symbol/],
    [new (class Thing {})(), /a Thing/],
    [new Set([1]), /a Set/],
    [new Float64Array(2), /a Float64Array/]
  ]
  for (const [v, re] of cases) {
    assert.throws(() => encodeValue(v), (err: Error) => err instanceof TypeError && err instanceof EncodeError && re.test(err.message), String(re))
  }
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  assert.throws(() => encodeValue(cyclic), /nested deeper than \d+ levels \(a cycle\?\)/)
  // A null-prototype object is plain enough.
  const bare = Object.create(null) as Record<string, unknown>
  bare.k = 1
  assert.deepEqual({ ...(roundTrip(bare) as object) }, { k: 1 })
})

// ---- random values -------------------------------------------------------

/** xorshift32: reproducible randomness. */
function rng (seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x / 0x100000000
  }
}

function randomValue (r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 4 ? 9 : 11))
  const int = (n: number): number => Math.floor(r() * n)
  switch (pick) {
    case 0: return [null, undefined, true, false][int(4)]
    case 1: {
      const mag = [1, 128, 2 ** 14, 2 ** 21, 2 ** 28, 2 ** 35, 2 ** 42, 2 ** 49, 2 ** 53][int(9)]
      const v = Math.floor(r() * mag) + (r() < 0.1 ? mag - int(3) : 0)
      return r() < 0.5 ? -v : v
    }
    case 2: {
      // Any 64-bit pattern: NaNs, infinities, subnormals, -0.
      const b = Buffer.alloc(8)
      for (let i = 0; i < 8; i++) b[i] = int(256)
      return b.readDoubleLE(0)
    }
    case 3: { // byte string
      let s = ''
      const n = int(40)
      for (let i = 0; i < n; i++) s += String.fromCharCode(int(256))
      return s
    }
    case 4: { // any UTF-16 code units, lone surrogates included
      let s = ''
      const n = int(20)
      for (let i = 0; i < n; i++) s += String.fromCharCode(r() < 0.7 ? int(0x800) : int(0x10000))
      return s
    }
    case 5: { // well-formed unicode
      let s = ''
      const n = int(20)
      for (let i = 0; i < n; i++) {
        const cp = r() < 0.5 ? int(0x80) : int(0x110000)
        s += String.fromCodePoint(cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp)
      }
      return s
    }
    case 6:
    case 7: {
      const n = r() < 0.05 ? ZERO_COPY_MIN + int(5000) : int(64)
      const b = Buffer.alloc(n)
      for (let i = 0; i < n; i++) b[i] = int(256)
      return b
    }
    case 8: return int(128)
    case 9: return Array.from({ length: int(8) }, () => randomValue(r, depth + 1))
    default: {
      const o: Record<string, unknown> = {}
      const n = int(8)
      for (let i = 0; i < n; i++) {
        const k = r() < 0.8 ? `k${int(20)}` : (randomValue(r, 99) as unknown)
        if (typeof k === 'string') o[k] = randomValue(r, depth + 1)
      }
      return o
    }
  }
}

test('property: decode(encode(v)) deep-equals v for 5000 random values', () => {
  for (let seed = 1; seed <= 5000; seed++) {
    const r = rng(seed)
    const v = randomValue(r, 0)
    let back: unknown
    try {
      back = roundTrip(v)
    } catch (err) {
      assert.fail(`seed ${seed}: ${(err as Error).message}`)
    }
    assert.deepStrictEqual(back, v, `seed ${seed}`)
  }
})

test('property: truncated, corrupted and random bytes fail with DecodeError only', () => {
  let failures = 0
  for (let seed = 1; seed <= 3000; seed++) {
    const r = rng(seed * 7919)
    const enc = Buffer.from(encodeValue(randomValue(r, 0)))
    const inputs: Buffer[] = [enc.subarray(0, Math.floor(r() * enc.length))]
    const flipped = Buffer.from(enc)
    if (flipped.length > 0) flipped[Math.floor(r() * flipped.length)] ^= 1 << Math.floor(r() * 8)
    inputs.push(flipped)
    const noise = Buffer.alloc(1 + Math.floor(r() * 40))
    for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(r() * 256)
    inputs.push(noise)
    for (const input of inputs) {
      try {
        decodeValue(input)
      } catch (err) {
        failures++
        assert.ok(err instanceof DecodeError, `seed ${seed}: ${(err as Error).stack}`)
      }
    }
  }
  assert.ok(failures > 1000)
})

test('hostile lengths and nesting are refused before allocating', () => {
  // An array claiming 2^50 elements in a 10-byte input.
  assert.throws(() => decodeValue(Buffer.from([0x0b, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])), DecodeError)
  assert.throws(() => decodeValue(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x7f])), /runs past the end/)
  assert.throws(() => decodeValue(Buffer.from([0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), /longer than 8 bytes/)
  assert.throws(() => decodeValue(Buffer.from([0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])), /beyond 2\^53/)
  assert.throws(() => decodeValue(Buffer.alloc(100_000, 0x0b)), /nested deeper/)
  assert.throws(() => decodeValue(Buffer.alloc(100_000, 0x41)), /nested deeper/)
  assert.throws(() => decodeValue(Buffer.from([0x1f])), /unknown value tag 0x1f/)
  assert.throws(() => decodeValue(Buffer.from([0x60])), /unknown value tag 0x60/)
  assert.throws(() => decodeValue(Buffer.from([0x00, 0x00])), /1 bytes left/)
})

test('object keys: thousands of distinct short keys (cache collisions) decode right', () => {
  const o: Record<string, number> = {}
  for (let i = 0; i < 5000; i++) o[`k${(i * 7919) % 100000}`] = i
  for (let i = 0; i < 300; i++) o[String.fromCharCode(0x80 + (i % 128), i % 256, 0xff)] = -i
  same(o)
  same([o, o, { k1: 1, k2: 2 }])
})

test('a writer growing across many frames copies each once and rolls a failed frame back', () => {
  const w = new Writer(1024)
  const expect: Buffer[] = []
  for (let i = 0; i < 40; i++) {
    const big = Buffer.alloc(i % 3 === 0 ? 300_000 : 17, i)
    const mark = beginFrame(w, FrameType.NOTIFY, i)
    w.value(`m${i}`)
    if (i % 5 === 4) {
      // Fails after a big value grew the buffer: nothing of it may remain.
      assert.throws(() => w.value([big, new Map()]), EncodeError)
      w.rollback(mark)
      continue
    }
    w.value([big])
    endFrame(w, mark, 1 << 30)
    expect.push(encodeFrame(FrameType.NOTIFY, i, x => { x.value(`m${i}`); x.value([big]) }))
  }
  const parts = w.takeAll()
  assert.ok(parts.length > 1, 'big frames were set aside, not copied again')
  assert.deepEqual(Buffer.concat(parts), Buffer.concat(expect))
  assert.equal(w.length, 0)
  const after = encodeFrame(FrameType.PING, 1)
  const m = beginFrame(w, FrameType.PING, 1)
  endFrame(w, m, 100)
  assert.deepEqual(w.take(), after)
})
