// What the pool queues and sends: scripts, calls and their outcomes, and the
// conversions to and from the messages workers get (protocol.ts).

import { fromWire, LuaError, WireError } from './errors'
import { MAX_SOURCE_BYTES } from './limits'
import type { WireOutcome, WireScript } from './protocol'
import type { ScriptExports } from './sandbox'

/** A script: its chunk name (as errors show it, e.g. "counter.lua"), a version and its source. */
export interface LuaScript {
  name: string
  version: number | string
  source: string
}

export interface LuaCall {
  script: LuaScript
  fn: string
  input: string | Uint8Array
  /** Handed to the host's beginCall (must survive postMessage). */
  ctx?: unknown
}

export type LuaOutcome =
  | { ok: true, output: Buffer, host?: unknown }
  /** rerun: the call did not run, or its effects were lost, through no fault of its own: run it again. */
  | { ok: false, error: LuaError, rerun: boolean, host?: unknown }

/** A unit of queued work: a group of calls that go to one worker together, or a script check. */
export type Job =
  | { t: 'group', host: string | null, calls: LuaCall[], settle: (o: LuaOutcome[]) => void }
  | { t: 'check', host: string | null, script: LuaScript, run: boolean, settle: (r: { error: LuaError | null, exports: ScriptExports | null }) => void }

export function toOutcome (o: WireOutcome): LuaOutcome {
  if (o.ok) {
    const u = o.output
    // Small outputs arrive as views into a shared arena; a caller keeping one must not keep the arena.
    const out = u === null ? Buffer.alloc(0) : u.byteLength === u.buffer.byteLength ? Buffer.from(u.buffer, u.byteOffset, u.byteLength) : Buffer.from(u)
    return { ok: true, output: out, host: o.host }
  }
  return { ok: false, error: fromWire(o.error as WireError), rerun: o.rerun === true, host: o.host }
}

export function failJob (job: Job, err: LuaError, rerun: boolean): void {
  if (job.t === 'check') job.settle({ error: err, exports: null })
  else job.settle(job.calls.map(() => ({ ok: false, error: err, rerun })))
}

export function scriptKey (s: LuaScript, host: string | null): string {
  return `${host ?? ''}\u0000${s.name}\u0000${String(s.version)}`
}

export function wireScript (s: LuaScript, host: string | null): WireScript {
  return { key: scriptKey(s, host), chunkname: s.name, source: s.source, host }
}

/** An input the worker gets without copying Node's shared 8 KiB buffer pool along with it. */
export function wireInput (input: string | Uint8Array): string | Uint8Array {
  if (typeof input === 'string') return input
  if (input.byteOffset === 0 && input.byteLength === input.buffer.byteLength) return input
  return new Uint8Array(input)
}

/** Scripts already checked (callers pass the same object for every call of a script). */
const checkedScripts = new WeakSet<LuaScript>()

export function checkScript (s: LuaScript): void {
  if (checkedScripts.has(s)) return
  if (typeof s?.name !== 'string' || s.name === '' || /[\n\u0000]/.test(s.name)) throw new LuaError('syntax', 'a script needs a name (one line)')
  if (typeof s.source !== 'string') throw new LuaError('syntax', `${s.name}: the source must be a string`)
  if (Buffer.byteLength(s.source) > MAX_SOURCE_BYTES) throw new LuaError('syntax', `${s.name}: the source is larger than ${MAX_SOURCE_BYTES} bytes`)
  checkedScripts.add(s)
}
