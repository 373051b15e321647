// Shapes: what a value that came over the wire must look like, checked at
// run time, each standing for the TypeScript type it guarantees. A peer can
// send anything the value codec carries (src/rpc/values.ts); a shape is how
// the protocol turns that `unknown` into a typed argument, or into a message
// saying what was wrong.
//
// `is` runs for every request (the create path is hot): it allocates nothing
// and stops at the first mismatch. `why` runs only after `is` said no, to
// name the field at fault.

/** A runtime check of a value, standing for the type T it guarantees. */
export interface Shape<T> {
  /** What the value must be, in words: 'an inode number', 'a list of names'. */
  readonly what: string
  readonly is: (v: unknown) => v is T
  /** What is wrong with v (only asked after is(v) was false); default: what it must be and what it is. */
  readonly why?: (v: unknown) => string
}

/** The type a shape stands for. */
export type TypeOf<S> = S extends Shape<infer T> ? T : never

function shape<T> (what: string, is: (v: unknown) => v is T, why?: (v: unknown) => string): Shape<T> {
  return why === undefined ? { what, is } : { what, is, why }
}

/** Why v is not a value of s, in words. */
export function whyNot (s: Shape<unknown>, v: unknown): string {
  return s.why !== undefined ? s.why(v) : `must be ${s.what}, not ${describe(v)}`
}

const MAX_SHOWN = 40

/** A value in a few words, for messages: 'the string "abc"', 'the number -1', 'an object'. */
export function describe (v: unknown): string {
  if (v === undefined) return 'missing'
  if (v === null) return 'null'
  switch (typeof v) {
    case 'string': return `the string ${JSON.stringify(v.length > MAX_SHOWN ? v.slice(0, MAX_SHOWN) + '…' : v)}`
    case 'number': return `the number ${String(v)}`
    case 'boolean': return String(v)
  }
  if (v instanceof Uint8Array) return `${v.length} bytes`
  if (Array.isArray(v)) return `a list of ${v.length}`
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

// ---- primitives ----

export const uint: Shape<number> = shape('a non-negative integer', (v): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)
export const int: Shape<number> = shape('an integer', (v): v is number => typeof v === 'number' && Number.isSafeInteger(v))
export const str: Shape<string> = shape('a string', (v): v is string => typeof v === 'string')
export const bool: Shape<boolean> = shape('true or false', (v): v is boolean => typeof v === 'boolean')
export const bytes: Shape<Uint8Array> = shape('bytes', (v): v is Uint8Array => v instanceof Uint8Array)

export const num: Shape<number> = shape('a number', (v): v is number => typeof v === 'number' && Number.isFinite(v))

/** Exactly this string. */
export function literal<const L extends string> (value: L): Shape<L> {
  return shape(JSON.stringify(value), (v): v is L => v === value)
}

/** One of these strings. */
export function oneOf<const L extends string> (...values: L[]): Shape<L> {
  return shape(values.map(v => JSON.stringify(v)).join(' or '), (v): v is L => (values as unknown[]).includes(v))
}

/** A string of at most max UTF-16 units (longer ones are refused before anything reads them). */
export function shortStr (max: number): Shape<string> {
  return shape(`a string of at most ${max} characters`, (v): v is string => typeof v === 'string' && v.length <= max)
}

/** Plain JSON: what a monitor map holds. Walked whole (admin calls only). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
const JSON_DEPTH_MAX = 100
function isJson (v: unknown, depth: number): v is Json {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true
  if (typeof v === 'number') return Number.isFinite(v)
  if (depth >= JSON_DEPTH_MAX || typeof v !== 'object' || v instanceof Uint8Array) return false
  if (Array.isArray(v)) return v.every(x => isJson(x, depth + 1))
  return Object.values(v).every(x => isJson(x, depth + 1))
}
export const json: Shape<Json> = shape('plain JSON', (v): v is Json => isJson(v, 0))

// ---- combinators ----

export function nullable<T> (s: Shape<T>): Shape<T | null> {
  return shape(`${s.what} or null`, (v): v is T | null => v === null || s.is(v), v => whyNot(s, v))
}

/** Absent (a trailing argument left out, or undefined) or a value of s. */
export function optional<T> (s: Shape<T>): Shape<T | undefined> {
  return shape(`${s.what}, or nothing`, (v): v is T | undefined => v === undefined || s.is(v), v => whyNot(s, v))
}

export function either<A, B> (a: Shape<A>, b: Shape<B>): Shape<A | B> {
  return shape(`${a.what} or ${b.what}`, (v): v is A | B => a.is(v) || b.is(v))
}

/** A list of values of s, at most max of them. */
export function listOf<T> (s: Shape<T>, max = Infinity): Shape<T[]> {
  const what = `a list of ${s.what}${max < Infinity ? ` (at most ${max})` : ''}`
  return shape(what, (v): v is T[] => {
    if (!Array.isArray(v) || v.length > max) return false
    for (let i = 0; i < v.length; i++) if (!s.is(v[i])) return false
    return true
  }, v => {
    if (!Array.isArray(v)) return `must be ${what}, not ${describe(v)}`
    if (v.length > max) return `has ${v.length} items, more than ${max}`
    const i = v.findIndex(x => !s.is(x))
    return `item ${i} ${whyNot(s, v[i])}`
  })
}

type TupleOf<S extends readonly Shape<unknown>[]> = { -readonly [K in keyof S]: TypeOf<S[K]> }

/** A fixed-length list: [ino, count] pairs and the like. */
export function tuple<const S extends readonly Shape<unknown>[]> (...items: S): Shape<TupleOf<S>> {
  const what = `[${items.map(s => s.what).join(', ')}]`
  return shape(what, (v): v is TupleOf<S> => {
    if (!Array.isArray(v) || v.length !== items.length) return false
    for (let i = 0; i < items.length; i++) if (!items[i].is(v[i])) return false
    return true
  }, v => {
    if (!Array.isArray(v) || v.length !== items.length) return `must be ${what}, not ${describe(v)}`
    const i = items.findIndex((s, j) => !s.is(v[j]))
    return `item ${i} ${whyNot(items[i], v[i])}`
  })
}

type Fields = Readonly<Record<string, Shape<unknown>>>
type Flatten<T> = { [K in keyof T]: T[K] }
type RecordOf<R extends Fields, O extends Fields> = Flatten<{ -readonly [K in keyof R]: TypeOf<R[K]> } & { -readonly [K in keyof O]?: TypeOf<O[K]> }>

/**
 * A plain object with the `required` fields and, where present, the
 * `optional` ones (undefined counts as absent). Other fields are let through
 * unread: a later minor version of the protocol may add some.
 */
export function record<const R extends Fields, const O extends Fields = Record<never, never>> (what: string, required: R, optional?: O): Shape<RecordOf<R, O>> {
  const req = Object.entries(required)
  const opt = Object.entries(optional ?? {})
  const fieldWhy = (o: Record<string, unknown>): string => {
    for (const [k, s] of req) if (!s.is(o[k])) return `field ${k} ${whyNot(s, o[k])}`
    for (const [k, s] of opt) if (o[k] !== undefined && !s.is(o[k])) return `field ${k} ${whyNot(s, o[k])}`
    return 'is malformed'
  }
  return shape(what, compileRecordTest<RecordOf<R, O>>(req, opt), v => typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array ? `must be ${what}, not ${describe(v)}` : fieldWhy(v as Record<string, unknown>))
}

/**
 * The test of a record, made as a function of its own that reads each field
 * by a constant name: a loop over the field names makes every read a keyed
 * one, which V8 cannot cache across records, and a caller record took about
 * 5 times as long to check that way (75-150 ns instead of 15-30 ns). The
 * generated code names only our own field names (quoted) and calls the
 * fields' tests; nothing a peer sends goes into it.
 */
function compileRecordTest<T> (req: Array<[string, Shape<unknown>]>, opt: Array<[string, Shape<unknown>]>): (v: unknown) => v is T {
  const lines = ['if (typeof o !== "object" || o === null || Array.isArray(o) || o instanceof Uint8Array) return false']
  req.forEach(([k], i) => lines.push(`if (!r[${i}](o[${JSON.stringify(k)}])) return false`))
  opt.forEach(([k], i) => lines.push(`x = o[${JSON.stringify(k)}]`, `if (x !== undefined && !p[${i}](x)) return false`))
  lines.push('return true')
  // eslint-disable-next-line no-new-func
  const make = new Function('r', 'p', 'Uint8Array', `return function isRecord (o) { let x; ${lines.join('; ')} }`) as
    (r: Array<(v: unknown) => boolean>, p: Array<(v: unknown) => boolean>, u8: typeof Uint8Array) => (v: unknown) => v is T
  return make(req.map(([, s]) => s.is), opt.map(([, s]) => s.is), Uint8Array)
}

/** One of several records, told apart by the string in field `tag`. */
export function tagged<const K extends string, const V extends Readonly<Record<string, Shape<unknown>>>> (what: string, tag: K, variants: V): Shape<TypeOf<V[keyof V]>> {
  const byTag = new Map<unknown, Shape<unknown>>(Object.entries(variants))
  const names = Object.keys(variants).join(', ')
  const variantOf = (v: unknown): Shape<unknown> | undefined =>
    typeof v === 'object' && v !== null ? byTag.get((v as Record<string, unknown>)[tag]) : undefined
  return shape(what, (v): v is TypeOf<V[keyof V]> => variantOf(v)?.is(v) === true, v => {
    const s = variantOf(v)
    if (s !== undefined) return whyNot(s, v)
    if (typeof v !== 'object' || v === null) return `must be ${what}, not ${describe(v)}`
    return `field ${tag} must be one of ${names}, not ${describe((v as Record<string, unknown>)[tag])}`
  })
}
