// Byte-string ordering shared by the store backends and their tests: omap keys
// sort as unsigned bytes, shorter first on a common prefix (memcmp order, which
// is also SQLite's BLOB order).

export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(asBuffer(a), asBuffer(b))
}

/**
 * The least key greater than every key that starts with prefix, or undefined
 * when there is none (the prefix is empty or all 0xff).
 */
export function prefixUpperBound (prefix: Uint8Array): Uint8Array | undefined {
  let n = prefix.length
  while (n > 0 && prefix[n - 1] === 0xff) n--
  if (n === 0) return undefined
  const out = Buffer.from(prefix.subarray(0, n))
  out[n - 1]++
  return out
}

function asBuffer (a: Uint8Array): Buffer {
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength)
}
