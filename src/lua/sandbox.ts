// One Lua sandbox: a Lua state in its own wasm instance, inside one worker
// thread. It enforces the budgets and turns every way a call can fail into a
// WireError; nothing a script does escapes as a JavaScript exception, except
// a fault of the runtime itself (a wasm trap, a Lua panic), after which the
// sandbox is `dead` and the worker builds a new one.
//
// Budgets, and what they cost:
//   - memory: our own lua_Alloc counts every byte the state holds and refuses
//     past memoryBytes (one JS call per Lua allocation);
//   - instructions and time: a count hook every 1,000 VM instructions (one JS
//     call, ~1% of a tight loop) adds to the instruction count and compares
//     performance.now() with the deadline. Once a budget is blown the hook
//     fires on every instruction and raises each time, so pcall cannot
//     swallow it: the first instruction after the pcall raises again;
//   - a call stuck in one C function (string patterns) never reaches the
//     hook: the pool's watchdog terminates the worker (see pool.ts).
//
// Every entry into Lua goes through one protected call whose body (a C
// function of ours) pushes the arguments, so even an allocation failure while
// pushing the input is an ordinary Lua error, never a panic.

import { performance } from 'perf_hooks'
import type { ErrnoName } from '../common/errors'
import { WireError } from './errors'
import { HostError, HostFunction, LuaHost } from './host'
import { HOOK_EVERY_INSTRUCTIONS, LuaLimits } from './limits'
import { PRELUDE_LUA } from './prelude'
import {
  Heap, loadRawLua, LUA_ERRMEM, LUA_MASKCOUNT, LUA_OK, LUA_REGISTRYINDEX, LUA_TNIL, LUA_TNUMBER, LUA_TSTRING,
  LuaState, Ptr, RawLua, typeName
} from './raw'
import { StackArgs, StackReturns } from './stack'

export type SandboxResult<T> = { ok: true, value: T } | { ok: false, error: WireError }

export interface ScriptExports {
  /** Exported function names, sorted. */
  functions: string[]
  /** Whether the script returned a table (rather than defining global functions). */
  returnedTable: boolean
}

interface ScriptEntry {
  chunkname: string
  source: Buffer
  host: string | null
  /** Registry reference of the exports table, once the top level ran. */
  exportsRef: number | null
  exports: ScriptExports | null
  /** A syntax error is final; other load failures (budget) are retried on the next call. */
  syntaxError: WireError | null
}

interface HostEntry {
  host: LuaHost
  globalsRef: number
}

/** Refs of the prelude's functions. */
interface PreludeRefs { newEnv: number, finish: number, dispatch: number, gc: number }

type BudgetKind = 'instructions' | 'time'

const MiB = 1024 * 1024

export class Sandbox {
  private readonly heap: Heap
  private readonly L: LuaState
  private readonly fnPtrs: Ptr[] = []
  private readonly hookPtr: Ptr
  private readonly entryPtr: Ptr
  private readonly msghPtr: Ptr
  private refs: PreludeRefs = { newEnv: 0, finish: 0, dispatch: 0, gc: 0 }
  private readonly scripts = new Map<string, ScriptEntry>()
  private readonly hosts = new Map<string, HostEntry>()
  private readonly args: StackArgs
  /** Function names as bytes, so a call does not encode its name each time. */
  private readonly fnNames = new Map<string, Buffer>()
  private readonly rets: StackReturns

  private memoryUsed = 0
  private refused = false
  private ticks = 0
  private tickLimit = 0
  private deadline = 0
  private blown: BudgetKind | null = null
  private blownText = ''
  private limits: LuaLimits
  private entryBody: ((L: LuaState) => number) | null = null
  private syntaxFailure = false
  private lastHostError: { text: string, errno: ErrnoName } | null = null
  /** A runtime fault happened: the state must not be used again. */
  dead = false

  private constructor (private readonly M: RawLua, limits: LuaLimits) {
    this.limits = limits
    const alloc = M.addFunction((_ud: number, ptr: number, osize: number, nsize: number) => this.allocate(ptr, osize, nsize), 'iiiii')
    this.fnPtrs.push(alloc)
    this.L = M._lua_newstate(alloc, 0)
    if (this.L === 0) throw new Error('cannot create a Lua state')
    this.heap = new Heap(M)
    this.args = new StackArgs(M, this.heap)
    this.rets = new StackReturns(M, this.heap)
    this.hookPtr = this.addFn((L: number) => { this.onHook(L) }, 'vii')
    this.entryPtr = this.addFn((L: number) => this.runEntry(L), 'ii')
    this.msghPtr = this.addFn((L: number) => this.messageHandler(L), 'ii')
    const panic = this.addFn((L: number) => {
      throw new Error(`Lua panic: ${this.heap.toText(L, -1) ?? '(no message)'}`)
    }, 'ii')
    M._lua_atpanic(this.L, panic)
    this.openLibraries()
  }

  static async create (limits: LuaLimits): Promise<Sandbox> {
    return new Sandbox(await loadRawLua(), limits)
  }

  private addFn (fn: (...a: number[]) => number | void, sig: string): Ptr {
    const p = this.M.addFunction(fn, sig)
    this.fnPtrs.push(p)
    return p
  }

  // ---- setup ----

  private openLibraries (): void {
    const { M, L, heap } = this
    // luaopen_base fills the global table itself; the others return their table.
    M._luaopen_base(L)
    M._lua_settop(L, 0)
    for (const [name, open] of [['string', M._luaopen_string], ['table', M._luaopen_table], ['math', M._luaopen_math], ['utf8', M._luaopen_utf8]] as const) {
      open.call(M, L)
      M._lua_setglobal(L, heap.cstr(name))
    }
    const prelude = Buffer.from(PRELUDE_LUA, 'utf8')
    const r = this.protectedRun(L => {
      const st = M._luaL_loadbufferx(L, heap.put(prelude), prelude.length, heap.cstr('=prelude', 0), heap.cstr('t', 1))
      if (st !== LUA_OK) M._lua_error(L)
      M._lua_callk(L, 0, 4, 0, 0)
      // Stack: new_env, finish, dispatch, gc. luaL_ref pops the top.
      this.refs.gc = M._luaL_ref(L, LUA_REGISTRYINDEX)
      this.refs.dispatch = M._luaL_ref(L, LUA_REGISTRYINDEX)
      this.refs.finish = M._luaL_ref(L, LUA_REGISTRYINDEX)
      this.refs.newEnv = M._luaL_ref(L, LUA_REGISTRYINDEX)
      return 0
    }, 0, 'prelude')
    if (!r.ok) throw new Error(`the sandbox prelude failed: ${r.error.reason}`)
  }

  /** Make a host's functions and globals available to scripts bound to it. */
  registerHost (id: string, host: LuaHost): void {
    const { M, heap } = this
    const ptrs = Object.entries(host.functions).map(([name, fn]) => [name, this.hostTrampoline(id, name, fn)] as const)
    const src = Buffer.from(host.globals, 'utf8')
    let globalsRef = 0
    const r = this.protectedRun(L => {
      const st = M._luaL_loadbufferx(L, heap.put(src), src.length, heap.cstr(`=host ${id}`, 0), heap.cstr('t', 1))
      if (st !== LUA_OK) M._lua_error(L)
      const chunk = M._lua_gettop(L)
      M._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.refs.newEnv))
      M._lua_pushnil(L)
      M._lua_callk(L, 1, 1, 0, 0)
      M._lua_setupvalue(L, chunk, 1)
      M._lua_createtable(L, 0, ptrs.length)
      for (const [name, ptr] of ptrs) {
        M._lua_pushcclosure(L, ptr, 0)
        M._lua_setfield(L, -2, heap.cstr(name, 0))
      }
      M._lua_callk(L, 1, 1, 0, 0)
      globalsRef = M._luaL_ref(L, LUA_REGISTRYINDEX)
      return 0
    }, 0, `host ${id}`)
    if (!r.ok) throw new Error(`host ${id}: its globals failed to load: ${r.error.reason}`)
    this.hosts.set(id, { host, globalsRef })
  }

  hostOf (id: string): LuaHost | undefined {
    return this.hosts.get(id)?.host
  }

  // ---- scripts ----

  defineScript (key: string, chunkname: string, source: string, host: string | null): void {
    this.forgetScript(key)
    this.scripts.set(key, { chunkname, source: Buffer.from(source, 'utf8'), host, exportsRef: null, exports: null, syntaxError: null })
  }

  forgetScript (key: string): void {
    const s = this.scripts.get(key)
    if (s === undefined) return
    if (s.exportsRef !== null) this.M._luaL_unref(this.L, LUA_REGISTRYINDEX, s.exportsRef)
    this.scripts.delete(key)
  }

  hasScript (key: string): boolean {
    return this.scripts.has(key)
  }

  /** Compile only: syntax errors with their line, nothing runs. */
  compile (chunkname: string, source: string): SandboxResult<null> {
    const { M, heap } = this
    const src = Buffer.from(source, 'utf8')
    const r = this.protectedRun(L => {
      const st = M._luaL_loadbufferx(L, heap.put(src), src.length, heap.cstr('=' + chunkname, 0), heap.cstr('t', 1))
      if (st !== LUA_OK) { this.syntaxFailure = true; M._lua_error(L) }
      return 0
    }, 0, chunkname)
    return r.ok ? { ok: true, value: null } : r
  }

  /** Run a script's top level (once per sandbox) and report its exports. */
  load (key: string): SandboxResult<ScriptExports> {
    const s = this.scripts.get(key)
    if (s === undefined) return { ok: false, error: { kind: 'crashed', reason: `script ${key} was never sent to this worker` } }
    if (s.exports !== null) return { ok: true, value: s.exports }
    if (s.syntaxError !== null) return { ok: false, error: s.syntaxError }
    const { M, heap } = this
    const hostRef = s.host === null ? null : this.hosts.get(s.host)?.globalsRef
    if (hostRef === undefined) return { ok: false, error: { kind: 'crashed', reason: `${s.chunkname}: host ${s.host ?? ''} is not registered in this worker` } }
    let names = ''
    let returnedTable = false
    let ref = 0
    const r = this.protectedRun(L => {
      const st = M._luaL_loadbufferx(L, heap.put(s.source), s.source.length, heap.cstr('=' + s.chunkname, 0), heap.cstr('t', 1))
      if (st !== LUA_OK) { this.syntaxFailure = true; M._lua_error(L) }
      // [chunk] → new_env(host globals) → [chunk, env, mt]
      M._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.refs.newEnv))
      if (hostRef === null) M._lua_pushnil(L)
      else M._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(hostRef))
      M._lua_callk(L, 1, 2, 0, 0)
      M._lua_pushvalue(L, 2)
      M._lua_setupvalue(L, 1, 1) // the chunk's only upvalue is _ENV
      // [chunk, env, mt, finish, env, mt, chunk()] → finish(...) → [chunk, env, mt, exports, names, returnedTable]
      M._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.refs.finish))
      M._lua_pushvalue(L, 2)
      M._lua_pushvalue(L, 3)
      M._lua_pushvalue(L, 1)
      M._lua_callk(L, 0, 1, 0, 0)
      M._lua_callk(L, 3, 3, 0, 0)
      names = heap.toText(L, 5) ?? ''
      returnedTable = M._lua_toboolean(L, 6) !== 0
      M._lua_settop(L, 4)
      ref = M._luaL_ref(L, LUA_REGISTRYINDEX)
      return 0
    }, 0, s.chunkname)
    if (!r.ok) {
      if (r.error.kind === 'syntax') s.syntaxError = r.error
      return r
    }
    s.exportsRef = ref
    s.exports = { functions: names === '' ? [] : names.split(','), returnedTable }
    return { ok: true, value: s.exports }
  }

  /** Call an exported function with one string argument; its result as bytes (null for nil). */
  call (key: string, fn: string, input: Uint8Array): SandboxResult<Buffer | null> {
    const loaded = this.load(key)
    if (!loaded.ok) return loaded
    const s = this.scripts.get(key) as ScriptEntry
    const { M, heap } = this
    let fnBytes = this.fnNames.get(fn)
    if (fnBytes === undefined) {
      fnBytes = Buffer.from(fn, 'utf8')
      if (this.fnNames.size < 1024) this.fnNames.set(fn, fnBytes)
    }
    const fnName = fnBytes
    let code = 0
    let out: Buffer | null = null
    const r = this.protectedRun(L => {
      M._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.refs.dispatch))
      M._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(s.exportsRef as number))
      heap.pushBytes(L, fnName)
      heap.pushBytes(L, input)
      M._lua_callk(L, 3, 2, 0, 0)
      code = Number(M._lua_tointegerx(L, 1, 0))
      out = M._lua_type(L, 2) === LUA_TNIL ? null : heap.toBytes(L, 2)
      return 0
    }, 0, s.chunkname)
    heap.trim()
    if (!r.ok) return r
    if (code === 1) return { ok: false, error: { kind: 'missing', reason: `${s.chunkname}: no function '${fn}' (it exports: ${(s.exports?.functions ?? []).join(', ') || 'nothing'})`, script: s.chunkname } }
    return { ok: true, value: out }
  }

  /** A new message begins: bytes handed out for the last one stay with it (see Heap.toBytes). */
  renewArena (): void {
    this.heap.renewArena()
  }

  setLimits (limits: LuaLimits): void {
    this.limits = limits
  }

  memory (): { used: number, max: number } {
    return { used: this.memoryUsed, max: this.limits.memoryBytes }
  }

  /**
   * After a call: collect garbage when memory runs high, and if the compiled
   * scripts alone fill most of the budget, drop them (they compile again on
   * their next call) so one heavy script cannot starve the others for good.
   */
  relieveMemory (): void {
    const max = this.limits.memoryBytes
    if (this.memoryUsed < 0.75 * max) return
    this.collect()
    if (this.memoryUsed < 0.5 * max) return
    for (const s of this.scripts.values()) {
      if (s.exportsRef !== null) this.M._luaL_unref(this.L, LUA_REGISTRYINDEX, s.exportsRef)
      s.exportsRef = null
      s.exports = null
    }
    this.collect()
  }

  private collect (): void {
    const { M } = this
    this.protectedRun(L => {
      M._lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.refs.gc))
      M._lua_callk(L, 0, 0, 0, 0)
      return 0
    }, 0, 'gc')
  }

  close (): void {
    if (!this.dead) {
      try { this.M._lua_close(this.L) } catch {}
    }
    for (const p of this.fnPtrs) {
      try { this.M.removeFunction(p) } catch {}
    }
    this.dead = true
  }

  // ---- the protected entry ----

  /**
   * Run body inside lua_pcall under a fresh budget; body runs as a C function
   * (so it may raise Lua errors) and its stack starts empty.
   */
  private protectedRun (body: (L: LuaState) => number, nresults: number, chunkname: string): SandboxResult<null> {
    const { M, L } = this
    if (this.dead) return { ok: false, error: { kind: 'crashed', reason: `${chunkname}: the sandbox was lost to an earlier fault` } }
    this.arm()
    this.entryBody = body
    try {
      M._lua_settop(L, 0)
      M._lua_pushcclosure(L, this.msghPtr, 0)
      M._lua_pushcclosure(L, this.entryPtr, 0)
      const status = M._lua_pcallk(L, 0, nresults, 1, 0, 0)
      if (status === LUA_OK) return { ok: true, value: null }
      return { ok: false, error: this.classify(status, chunkname) }
    } catch (err) {
      // Not a Lua error: a wasm trap or a panic. The state may be corrupt.
      this.dead = true
      return { ok: false, error: { kind: 'crashed', reason: `${chunkname}: the Lua runtime failed: ${(err as Error)?.message ?? String(err)}`, script: chunkname } }
    } finally {
      this.entryBody = null
      if (!this.dead) M._lua_settop(L, 0)
    }
  }

  private runEntry (L: LuaState): number {
    const body = this.entryBody
    if (body === null) return 0
    return body(L)
  }

  private arm (): void {
    this.ticks = 0
    this.tickLimit = Math.max(1, Math.ceil(this.limits.instructions / HOOK_EVERY_INSTRUCTIONS))
    this.deadline = performance.now() + this.limits.timeMs
    this.blown = null
    this.blownText = ''
    this.refused = false
    this.syntaxFailure = false
    this.lastHostError = null
    this.M._lua_sethook(this.L, this.hookPtr, LUA_MASKCOUNT, Math.min(HOOK_EVERY_INSTRUCTIONS, this.limits.instructions))
  }

  private classify (status: number, chunkname: string): WireError {
    const text = this.errorText(status)
    const named = text.startsWith(chunkname + ':') ? text : `${chunkname}: ${text}`
    if (this.blown !== null) {
      return { kind: 'timeout', reason: this.blownText !== '' ? this.blownText : `${chunkname}: ${this.budgetMessage(this.blown)}`, script: chunkname }
    }
    if (status === LUA_ERRMEM || (this.refused && text === 'not enough memory')) {
      return { kind: 'memory', reason: `${chunkname}: memory budget of ${formatBytes(this.limits.memoryBytes)} exceeded (not enough memory)`, script: chunkname }
    }
    if (this.syntaxFailure) return { kind: 'syntax', reason: named, script: chunkname }
    const host = this.lastHostError
    if (host !== null && host.text === text) return { kind: 'runtime', reason: named, errno: host.errno, script: chunkname }
    return { kind: 'runtime', reason: named, script: chunkname }
  }

  private errorText (status: number): string {
    const { M, L } = this
    const t = M._lua_type(L, -1)
    if (t === LUA_TSTRING || t === LUA_TNUMBER) return this.heap.toText(L, -1) ?? ''
    return status === LUA_ERRMEM ? 'not enough memory' : `(error object is a ${typeName(t)} value)`
  }

  private budgetMessage (kind: BudgetKind): string {
    return kind === 'time'
      ? `time budget of ${this.limits.timeMs} ms exceeded`
      : `instruction budget of ${this.limits.instructions} instructions exceeded`
  }

  // ---- callbacks from wasm ----

  private allocate (ptr: number, osize: number, nsize: number): number {
    const M = this.M
    if (nsize === 0) {
      if (ptr !== 0) {
        this.memoryUsed -= osize
        M._free(ptr)
      }
      return 0
    }
    // With ptr NULL, osize is a type tag, not a size.
    const grow = ptr !== 0 ? nsize - osize : nsize
    if (grow > 0 && this.memoryUsed + grow > this.limits.memoryBytes) {
      this.refused = true
      return 0
    }
    const p = M._realloc(ptr, nsize)
    if (p !== 0) this.memoryUsed += grow
    return p
  }

  private onHook (L: LuaState): void {
    const { M } = this
    if (this.blown === null) {
      if (++this.ticks > this.tickLimit) this.blown = 'instructions'
      else if (performance.now() > this.deadline) this.blown = 'time'
      else return
      // From now on every instruction raises: no pcall can swallow the budget.
      M._lua_sethook(L, this.hookPtr, LUA_MASKCOUNT, 1)
    }
    M._luaL_where(L, 0)
    this.heap.pushString(L, this.budgetMessage(this.blown))
    M._lua_concat(L, 2)
    if (this.blownText === '') this.blownText = this.heap.toText(L, -1) ?? ''
    M._lua_error(L)
  }

  /** Lua's message handler: give non-string error values a position and a readable text. */
  private messageHandler (L: LuaState): number {
    const { M } = this
    const t = M._lua_type(L, 1)
    if (t === LUA_TSTRING || t === LUA_TNUMBER) return 1
    // Level 1 is error() itself, level 2 the function that called it.
    M._luaL_where(L, 2)
    this.heap.pushString(L, `error object is a ${typeName(t)} value (raise a string: error("message"))`)
    M._lua_concat(L, 2)
    return 1
  }

  private hostTrampoline (hostId: string, name: string, fn: HostFunction): Ptr {
    return this.addFn((L: number) => {
      this.args.reset(L)
      this.rets.reset(L)
      try {
        fn(this.args, this.rets)
      } catch (err) {
        // A number is Lua's own error unwinding (emscripten longjmp): let it pass.
        if (typeof err === 'number') throw err
        this.raiseHostError(L, err)
      }
      return this.rets.count
    }, 'ii')
  }

  private raiseHostError (L: LuaState, err: unknown): never {
    const { M } = this
    M._lua_settop(L, 0)
    M._luaL_where(L, 1)
    this.heap.pushString(L, err instanceof Error ? err.message : String(err))
    M._lua_concat(L, 2)
    const text = this.heap.toText(L, -1) ?? ''
    const errno = err instanceof HostError ? err.errno : (typeof (err as { errno?: unknown })?.errno === 'string' ? (err as { errno: ErrnoName }).errno : 'EIO')
    this.lastHostError = { text, errno }
    M._lua_error(L)
    throw new Error('unreachable: lua_error returned')
  }
}

function formatBytes (n: number): string {
  return n % MiB === 0 ? `${n / MiB} MiB` : `${n} bytes`
}
