// Messages between the pool (main thread) and its Lua workers.
//
// A 'run' message carries groups of calls; a worker answers with one outcome
// per call, in order. Scripts and hosts travel once per worker: the pool
// remembers what each worker has and sends only what is new (and tells it
// what to forget, so a worker holds a bounded number of scripts).
//
// Progress goes through shared memory, not messages, so the pool's watchdog
// can tell a busy worker from a stuck one without the worker's cooperation:
//   progress[SEQ]   bumped when a message starts and when each call starts
//   progress[GROUP] / progress[CALL]   the call running now
//   progress[TIME_MS]   that call's time budget
//   progress[NEXT_GROUP]   the first group of the message nobody claimed yet:
//     the worker claims group g with compareExchange(g → g+1) before running
//     it; the pool takes the unclaimed tail away with exchange(→ STOLEN) to
//     run it on another worker when this one is stuck behind a slow call.
//     Exactly one side gets each group.

import type { MessagePort } from 'worker_threads'
import type { WireError } from './errors'
import type { LuaHostSpec } from './host'
import type { LuaLimits } from './limits'
import type { ScriptExports } from './sandbox'

export const PROGRESS_SEQ = 0
export const PROGRESS_GROUP = 1
export const PROGRESS_CALL = 2
export const PROGRESS_TIME_MS = 3
export const PROGRESS_NEXT_GROUP = 4
export const PROGRESS_SLOTS = 5
/** What NEXT_GROUP holds once the pool took the unclaimed groups away. */
export const GROUPS_STOLEN = 0x3fffffff

export interface WorkerConfig {
  limits: LuaLimits
  progress: SharedArrayBuffer
  /** How much lower than the main thread the worker runs (nice increment, Linux). */
  nice?: number
}

export interface WireHost {
  id: string
  spec: LuaHostSpec
  limits?: Partial<LuaLimits>
  /** The host's line to the main thread (mainline.ts), one per worker: the port (transferred) and the wake-up counter. */
  line?: { port: MessagePort, signal: SharedArrayBuffer }
}

export interface WireScript {
  key: string
  chunkname: string
  source: string
  host: string | null
}

export interface WireCall {
  key: string
  fn: string
  /** A string is passed as its UTF-8 bytes. */
  input: string | Uint8Array
  ctx?: unknown
}

export interface WireGroup {
  host: string | null
  calls: WireCall[]
}

export type WireOutcome =
  | { ok: true, output: Uint8Array | null, host?: unknown }
  | { ok: false, error: WireError, rerun?: boolean, host?: unknown }

export type ToWorker =
  | { t: 'run', id: number, hosts: WireHost[], scripts: WireScript[], forget: string[], groups: WireGroup[] }
  /** Compile only; with run, also run the top level and report the exports. */
  | { t: 'check', id: number, hosts: WireHost[], script: WireScript, run: boolean }
  /** Forget hosts (and the scripts bound to them); no reply. */
  | { t: 'drop', hosts: string[] }

export type FromWorker =
  | { t: 'ready' }
  /** One entry per group; groups the pool took away have no outcomes (an empty array). */
  | { t: 'done', id: number, outcomes: WireOutcome[][] }
  | { t: 'checked', id: number, error: WireError | null, exports: ScriptExports | null }
