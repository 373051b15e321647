// Cudele's mechanisms and the little language that composes them.
//
// A policy names, for consistency and for durability, either a cell of
// Table I (strong/weak/invisible, global/local/none) or an explicit
// composition of mechanisms: `a+b` runs a then b (a sequence), `a||b` runs
// them side by side (parallel); `||` binds tighter than `+`, and parentheses
// group. For example `append_client_journal+(local_persist||global_persist)`.
// Mechanisms may be spelled as the paper does: `Append Client Journal`,
// `RPCs`, `local-persist`.

import { fsError } from '../common/errors'

export const MECHANISMS = [
  'rpcs',
  'append_client_journal',
  'volatile_apply',
  'nonvolatile_apply',
  'stream',
  'local_persist',
  'global_persist'
] as const

export type Mechanism = typeof MECHANISMS[number]

/** What each mechanism is for (the paper's Fig. 4), for error messages and `policy show`. */
export const MECHANISM_ROLE: Record<Mechanism, string> = {
  rpcs: 'every operation is a request to the MDS',
  append_client_journal: 'operations are appended to the client\'s own journal (no round trip)',
  volatile_apply: 'the client journal is applied straight into the MDS\'s in-memory metadata',
  nonvolatile_apply: 'the client journal is written to the object store and replayed by the MDS from there',
  stream: 'the MDS streams its journal to the object store',
  local_persist: 'the client journal is written to a local file and fsync\'d',
  global_persist: 'the client journal is pushed into the object store'
}

export const CONSISTENCY_MECHANISMS: ReadonlySet<Mechanism> = new Set(['rpcs', 'append_client_journal', 'volatile_apply', 'nonvolatile_apply'])
export const DURABILITY_MECHANISMS: ReadonlySet<Mechanism> = new Set(['stream', 'local_persist', 'global_persist'])

/** A composition: a sequence of parallel groups of mechanisms. */
export type Composition =
  | { kind: 'mechanism', name: Mechanism }
  | { kind: 'seq', parts: Composition[] }
  | { kind: 'par', parts: Composition[] }

/** Longest composition text accepted. */
const COMPOSITION_MAX_CHARS = 512

/** Parse `a+b||c` (|| binds tighter than +). Throws EINVAL naming the problem and its column. */
export function parseComposition (text: string): Composition {
  if (text.length > COMPOSITION_MAX_CHARS) throw fsError('EINVAL', `composition is ${text.length} characters; the limit is ${COMPOSITION_MAX_CHARS}`)
  const tokens: Array<{ t: string, col: number }> = []
  // A mechanism is one word, or several joined by spaces or dashes (the paper's spelling).
  const re = /\s*(\|\||\+|\(|\)|[A-Za-z_][A-Za-z0-9_]*(?:[ \t-]+[A-Za-z_][A-Za-z0-9_]*)*|\S)/gy
  let m: RegExpExecArray | null
  while ((m = re.exec(text)) !== null) {
    if (m[1] === undefined) break
    tokens.push({ t: m[1], col: m.index + m[0].indexOf(m[1]) + 1 })
  }
  let i = 0
  const peek = (): string | undefined => tokens[i]?.t
  const fail = (why: string): never => {
    const col = tokens[i]?.col ?? text.length + 1
    throw fsError('EINVAL', `${why} at column ${col} of ${JSON.stringify(text)}`)
  }
  const factor = (): Composition => {
    const tok = peek()
    if (tok === undefined) return fail('a mechanism is missing')
    if (tok === '(') {
      i++
      const inner = seq()
      if (peek() !== ')') fail('")" expected')
      i++
      return inner
    }
    if (!/^[A-Za-z_]/.test(tok)) return fail(`unexpected ${JSON.stringify(tok)}`)
    const name = normalizeMechanism(tok)
    if (!name) return fail(`unknown mechanism ${JSON.stringify(tok)} (known: ${MECHANISMS.join(', ')})`)
    i++
    return { kind: 'mechanism', name }
  }
  const par = (): Composition => {
    const parts = [factor()]
    while (peek() === '||') {
      i++
      parts.push(factor())
    }
    return parts.length === 1 ? parts[0] : { kind: 'par', parts }
  }
  const seq = (): Composition => {
    const parts = [par()]
    while (peek() === '+') {
      i++
      parts.push(par())
    }
    return parts.length === 1 ? parts[0] : { kind: 'seq', parts }
  }
  if (tokens.length === 0) fail('an empty composition')
  const c = seq()
  if (i < tokens.length) fail(`unexpected ${JSON.stringify(tokens[i].t)}`)
  return c
}

/** Accept the paper's spellings too: "RPCs", "append client journal", "Append-Client-Journal". */
export function normalizeMechanism (word: string): Mechanism | null {
  const w = word.trim().toLowerCase().replace(/[\s-]+/g, '_')
  return (MECHANISMS as readonly string[]).includes(w) ? w as Mechanism : null
}

/** The part of a composition made of the mechanisms in keep, with its structure (null: none of them). */
export function projectComposition (c: Composition, keep: ReadonlySet<Mechanism>): Composition | null {
  if (c.kind === 'mechanism') return keep.has(c.name) ? c : null
  const parts = c.parts.map(p => projectComposition(p, keep)).filter((p): p is Composition => p !== null)
  if (parts.length === 0) return null
  return parts.length === 1 ? parts[0] : { kind: c.kind, parts }
}

/** Every mechanism a composition uses, in order of first appearance. */
export function mechanismsOf (c: Composition): Mechanism[] {
  const out: Mechanism[] = []
  const walk = (x: Composition): void => {
    if (x.kind === 'mechanism') out.push(x.name)
    else x.parts.forEach(walk)
  }
  walk(c)
  return out
}

/** The canonical text of a composition. */
export function formatComposition (c: Composition): string {
  if (c.kind === 'mechanism') return c.name
  if (c.kind === 'par') return c.parts.map(p => p.kind === 'seq' ? `(${formatComposition(p)})` : formatComposition(p)).join('||')
  return c.parts.map(formatComposition).join('+')
}

/** Does a run strictly before b (in a sequence), at any depth? */
export function runsBefore (c: Composition, a: Mechanism, b: Mechanism): boolean {
  const order = (x: Composition): Mechanism[][] => {
    // Each step of a sequence is a set of mechanisms that run together.
    if (x.kind === 'mechanism') return [[x.name]]
    if (x.kind === 'par') return [x.parts.flatMap(p => order(p).flat())]
    return x.parts.flatMap(order)
  }
  const steps = order(c)
  const ia = steps.findIndex(s => s.includes(a))
  const ib = steps.findIndex(s => s.includes(b))
  return ia >= 0 && ib >= 0 && ia < ib
}

/** Do a and b run in parallel (the same step)? */
export function runsTogether (c: Composition, a: Mechanism, b: Mechanism): boolean {
  return !runsBefore(c, a, b) && !runsBefore(c, b, a) && mechanismsOf(c).includes(a) && mechanismsOf(c).includes(b)
}
