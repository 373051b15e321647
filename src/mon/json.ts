// Map values as JSON text: what a change function returns is checked and
// serialized once, and what subscribers get is parsed from that text and
// frozen, so one committed value is shared by every reader and none of them
// can change it under the others.

import { fsError } from '../common/errors'
import type { JsonValue } from './types'
import { MAX_MAP_VALUE_BYTES } from './options'

/** Nesting deeper than this is refused (JSON.parse and our walk recurse). */
const MAX_DEPTH = 100

/**
 * The JSON text of a value a change function returned, or EINVAL naming what
 * is not JSON (undefined, a function, NaN, a Date, a promise from an async
 * change ...), or EFBIG when the text is over MAX_MAP_VALUE_BYTES.
 */
export function serializeValue (map: string, value: unknown): string {
  const bad = notJson(value, 0)
  if (bad !== null) throw fsError('EINVAL', `map ${map}: the change returned ${bad}; a map value must be plain JSON`)
  const text = JSON.stringify(value)
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_MAP_VALUE_BYTES) {
    throw fsError('EFBIG', `map ${map}: the new value is ${bytes} bytes of JSON, above the limit of ${MAX_MAP_VALUE_BYTES}`)
  }
  return text
}

/** A parsed, deeply frozen value: what get() and subscribers see. */
export function frozenValue (text: string): JsonValue {
  return deepFreeze(JSON.parse(text) as JsonValue)
}

/** A fresh, mutable copy for a change function. */
export function mutableValue (text: string): JsonValue {
  return JSON.parse(text) as JsonValue
}

function deepFreeze (v: JsonValue): JsonValue {
  if (v !== null && typeof v === 'object') {
    for (const child of Object.values(v)) deepFreeze(child)
    Object.freeze(v)
  }
  return v
}

/** null when v is plain JSON; otherwise a description of the first thing that is not. */
function notJson (v: unknown, depth: number): string | null {
  if (depth > MAX_DEPTH) return `a value nested deeper than ${MAX_DEPTH} levels`
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return null
    case 'number':
      return Number.isFinite(v) ? null : `the number ${String(v)}`
    case 'object': {
      if (v === null) return null
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const bad = notJson(v[i], depth + 1)
          if (bad !== null) return bad
        }
        return null
      }
      const proto = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) {
        const name = typeof (v as { constructor?: { name?: unknown } }).constructor?.name === 'string'
          ? (v as { constructor: { name: string } }).constructor.name
          : 'an object'
        return name === 'Promise' ? 'a Promise (a change must be synchronous)' : `a ${name}`
      }
      for (const key of Object.keys(v)) {
        const bad = notJson((v as Record<string, unknown>)[key], depth + 1)
        if (bad !== null) return bad
      }
      return null
    }
    default:
      return typeof v === 'undefined' ? 'undefined' : `a ${typeof v}`
  }
}
