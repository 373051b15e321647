// The Lua runtime: one sandbox design (wasmoon's Lua 5.4 in WebAssembly, run
// through its raw C API) shared by every Lua feature: object classes today,
// the Mantle balancer and Tintenfisch generators later.
//
//   const pool = createLuaPool({ workers: 2, limits: { timeMs: 200, memoryBytes: 32 << 20 } })
//   await pool.check('f.lua', source)                       // syntax errors with their line
//   const out = await pool.call({ name: 'f.lua', version: 1, source }, 'fn', 'input')
//   await pool.close()
//
// Features that give scripts an API of their own register a host (host.ts).

export { createLuaPool, LuaPool } from './pool'
export type { LuaCall, LuaOutcome, LuaPoolOptions, LuaPoolStats, LuaScript, ScriptExports } from './pool'
export { LuaError, parseWhere } from './errors'
export type { LuaErrorKind } from './errors'
export { DEFAULT_LIMITS, HOOK_EVERY_INSTRUCTIONS, MAX_SOURCE_BYTES } from './limits'
export type { LuaLimits } from './limits'
export { HostError } from './host'
export type { CreateLuaHost, HostFunction, HostLine, LuaArgs, LuaHost, LuaHostSpec, LuaReturns } from './host'
export type { HostAnswer } from './mainline'
