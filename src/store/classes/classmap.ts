// The classmap: which version of each object class is current, kept by the
// monitor (Malacology §4.1) so every store-side runtime sees the same one.
//
//   classmap = { counter: { version: 3, object: "counter.3", sha256: "…", methods: ["get", "incr", "reset"] } }
//
// The script itself is the payload of object <name>.<version> in pool
// `classes`, written once (create exclusive) before the map names it, so a
// version number always means the same source.

import type { JsonValue } from '../../mon/types'

export const CLASSMAP = 'classmap'
export const CLASS_POOL = 'classes'
/** The largest class script. */
export const MAX_CLASS_SOURCE_BYTES = 256 * 1024

const NAME_RE = /^[a-z][a-z0-9_]{0,63}$/
const METHOD_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/

export interface ClassEntry {
  version: number
  /** Object in pool `classes` that holds the script. */
  object: string
  /** Hex SHA-256 of the script; a runtime refuses an object that does not match. */
  sha256: string
  methods: string[]
}

export function classObjectName (name: string, version: number): string {
  return `${name}.${version}`
}

/** Why a class name is unusable, or null. Names are what `class.method` is split on, so no dots. */
export function badClassName (name: unknown): string | null {
  if (typeof name !== 'string' || !NAME_RE.test(name)) {
    return `class name ${JSON.stringify(name)} must be 1-64 characters of a-z, 0-9 and _, starting with a letter`
  }
  return null
}

export function isMethodName (name: string): boolean {
  return METHOD_RE.test(name)
}

/** The entries of a classmap value; anything malformed is left out (and named in `bad`). */
export function parseClassmap (value: JsonValue): { classes: Map<string, ClassEntry>, bad: string[] } {
  const classes = new Map<string, ClassEntry>()
  const bad: string[] = []
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { classes, bad }
  for (const [name, raw] of Object.entries(value)) {
    const e = raw as Partial<ClassEntry> | null
    if (badClassName(name) !== null || e === null || typeof e !== 'object' ||
        typeof e.version !== 'number' || !Number.isSafeInteger(e.version) || e.version < 1 ||
        typeof e.object !== 'string' || typeof e.sha256 !== 'string' || !Array.isArray(e.methods) ||
        !e.methods.every(m => typeof m === 'string')) {
      bad.push(name)
      continue
    }
    classes.set(name, { version: e.version, object: e.object, sha256: e.sha256, methods: [...e.methods] })
  }
  return { classes, bad }
}
