// Budgets of the Lua sandbox. Every Lua feature (object classes, Mantle
// balancers, Tintenfisch generators) runs under these, so a faulty or hostile
// script costs at most one call's budget and never the server.

export interface LuaLimits {
  /**
   * Wall-clock budget of one call (and of one script's top level when it
   * loads). Checked every 1,000 VM instructions; a call stuck inside one C
   * function (a pathological string pattern) is caught by the pool's watchdog
   * at timeMs + graceMs, which terminates and replaces the worker.
   */
  timeMs: number
  /** VM instructions one call may execute (counted in steps of 1,000). */
  instructions: number
  /**
   * Bytes the Lua state of one sandbox (one worker) may hold: compiled
   * scripts, their globals and whatever a running call allocates. An
   * allocation past it fails like an out-of-memory in Lua ("not enough memory").
   */
  memoryBytes: number
}

export const DEFAULT_LIMITS: Readonly<LuaLimits> = Object.freeze({
  timeMs: 500,
  instructions: 20_000_000,
  memoryBytes: 64 * 1024 * 1024
})

/** The VM instructions between two budget checks (one JS call from the hook each time). */
export const HOOK_EVERY_INSTRUCTIONS = 1000

/** The largest script source the sandbox compiles. */
export const MAX_SOURCE_BYTES = 1024 * 1024

/** Limits for a call: the host's overrides over the pool's, each a positive number. */
export function resolveLimits (base: Readonly<LuaLimits>, over: Partial<LuaLimits> | undefined): LuaLimits {
  const out: LuaLimits = { ...base, ...stripUndefined(over ?? {}) }
  for (const [k, v] of Object.entries(out)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new RangeError(`Lua limit ${k} must be a positive number (got ${String(v)})`)
    }
  }
  return out
}

function stripUndefined<T extends object> (o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}
