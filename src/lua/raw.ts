// The Lua C API as wasmoon's WebAssembly build exports it, called directly.
//
// wasmoon's own layer (LuaEngine, proxies, cwrap/ccall) costs 30-110 µs per
// JS→Lua call; the raw exports cost well under a microsecond each. We use
// only the raw exports, with our own byte transfer through the wasm heap, so
// strings stay bytes (Lua strings are not UTF-8) and hot paths allocate
// nothing in JavaScript beyond the result.
//
// Worker-side only: a LuaState lives in the wasm instance of one worker.

import { LuaFactory } from 'wasmoon'

export type Ptr = number
export type LuaState = number

/** The exports we call. Pointers are numbers; lua_Integer is a BigInt (the build uses WASM_BIGINT). */
export interface RawLua {
  HEAPU8: Uint8Array
  HEAPU32: Uint32Array
  HEAP32: Int32Array
  _malloc (size: number): Ptr
  _free (p: Ptr): void
  _realloc (p: Ptr, size: number): Ptr
  addFunction (fn: (...args: number[]) => number | void, sig: string): Ptr
  removeFunction (p: Ptr): void

  _lua_newstate (alloc: Ptr, ud: Ptr): LuaState
  _lua_close (L: LuaState): void
  _lua_atpanic (L: LuaState, fn: Ptr): Ptr
  _luaopen_base (L: LuaState): number
  _luaopen_string (L: LuaState): number
  _luaopen_table (L: LuaState): number
  _luaopen_math (L: LuaState): number
  _luaopen_utf8 (L: LuaState): number

  _lua_gettop (L: LuaState): number
  _lua_settop (L: LuaState, idx: number): void
  _lua_pushvalue (L: LuaState, idx: number): void
  _lua_type (L: LuaState, idx: number): number
  _lua_typename (L: LuaState, tp: number): Ptr
  _lua_toboolean (L: LuaState, idx: number): number
  _lua_tolstring (L: LuaState, idx: number, len: Ptr): Ptr
  _lua_tonumberx (L: LuaState, idx: number, isnum: Ptr): number
  _lua_tointegerx (L: LuaState, idx: number, isnum: Ptr): bigint
  _lua_isinteger (L: LuaState, idx: number): number
  _lua_rawlen (L: LuaState, idx: number): number

  _lua_pushnil (L: LuaState): void
  _lua_pushnumber (L: LuaState, n: number): void
  _lua_pushinteger (L: LuaState, n: bigint): void
  _lua_pushlstring (L: LuaState, s: Ptr, len: number): Ptr
  _lua_pushstring (L: LuaState, s: Ptr): Ptr
  _lua_pushboolean (L: LuaState, b: number): void
  _lua_pushcclosure (L: LuaState, fn: Ptr, n: number): void

  _lua_getglobal (L: LuaState, name: Ptr): number
  _lua_setglobal (L: LuaState, name: Ptr): void
  _lua_getfield (L: LuaState, idx: number, k: Ptr): number
  _lua_setfield (L: LuaState, idx: number, k: Ptr): void
  _lua_rawgeti (L: LuaState, idx: number, n: bigint): number
  _lua_rawseti (L: LuaState, idx: number, n: bigint): void
  _lua_rawset (L: LuaState, idx: number): void
  _lua_createtable (L: LuaState, narr: number, nrec: number): void
  _lua_setupvalue (L: LuaState, funcindex: number, n: number): Ptr

  _luaL_ref (L: LuaState, t: number): number
  _luaL_unref (L: LuaState, t: number, ref: number): void
  _luaL_loadbufferx (L: LuaState, buf: Ptr, size: number, name: Ptr, mode: Ptr): number
  _luaL_where (L: LuaState, level: number): void
  _lua_concat (L: LuaState, n: number): void
  _lua_error (L: LuaState): number
  _lua_pcallk (L: LuaState, nargs: number, nresults: number, msgh: number, ctx: number, k: Ptr): number
  _lua_callk (L: LuaState, nargs: number, nresults: number, ctx: number, k: Ptr): void
  _lua_sethook (L: LuaState, fn: Ptr, mask: number, count: number): void
}

export const LUA_OK = 0
export const LUA_ERRRUN = 2
export const LUA_ERRSYNTAX = 3
export const LUA_ERRMEM = 4
export const LUA_ERRERR = 5

export const LUA_TNIL = 0
export const LUA_TBOOLEAN = 1
export const LUA_TNUMBER = 3
export const LUA_TSTRING = 4
export const LUA_TTABLE = 5
export const LUA_TFUNCTION = 6

export const LUA_MASKCOUNT = 8
export const LUA_MULTRET = -1
/** -LUAI_MAXSTACK - 1000, as in luaconf.h (LUAI_MAXSTACK = 1,000,000). */
export const LUA_REGISTRYINDEX = -1001000

const TYPE_NAMES = ['nil', 'boolean', 'userdata', 'number', 'string', 'table', 'function', 'userdata', 'thread']

export function typeName (t: number): string {
  return TYPE_NAMES[t] ?? 'no value'
}

/** A fresh instance of the Lua wasm module (its own memory: one per sandbox). */
export async function loadRawLua (): Promise<RawLua> {
  const factory = new LuaFactory()
  const lw = await factory.getLuaModule()
  return lw.module as unknown as RawLua
}

/**
 * Byte transfer between JavaScript and the wasm heap. One scratch area holds
 * whatever is being pushed; it grows on demand and shrinks back after big
 * transfers so one large call does not pin memory for the life of the worker.
 */
export class Heap {
  private scratch: Ptr
  private scratchBytes: number
  /** Where lua_tolstring writes a length. */
  readonly lenCell: Ptr
  /** Small C strings (names, modes), one slot per concurrent use. */
  private readonly cstrings: Ptr
  private static readonly CSTRING_SLOT = 256
  private static readonly BASE_SCRATCH = 64 * 1024
  private static readonly ARENA_BYTES = 64 * 1024
  private static readonly ARENA_MAX_ITEM = 4 * 1024
  private arena = new ArrayBuffer(Heap.ARENA_BYTES)
  private arenaUsed = 0

  constructor (private readonly M: RawLua) {
    this.scratchBytes = Heap.BASE_SCRATCH
    this.scratch = this.alloc(this.scratchBytes)
    this.lenCell = this.alloc(8)
    this.cstrings = this.alloc(Heap.CSTRING_SLOT * 4)
  }

  private alloc (n: number): Ptr {
    const p = this.M._malloc(n)
    if (p === 0) throw new Error(`the wasm heap cannot allocate ${n} bytes`)
    return p
  }

  /** Copy bytes into the scratch area; returns its address (valid until the next put). */
  put (bytes: Uint8Array): Ptr {
    if (bytes.length > this.scratchBytes) {
      this.M._free(this.scratch)
      this.scratchBytes = Math.max(bytes.length, this.scratchBytes * 2)
      this.scratch = this.alloc(this.scratchBytes)
    }
    this.M.HEAPU8.set(bytes, this.scratch)
    return this.scratch
  }

  /** Give back a scratch area grown by a large transfer. */
  trim (): void {
    if (this.scratchBytes > 16 * Heap.BASE_SCRATCH) {
      this.M._free(this.scratch)
      this.scratchBytes = Heap.BASE_SCRATCH
      this.scratch = this.alloc(this.scratchBytes)
    }
  }

  /** A NUL-terminated copy of a short ASCII/UTF-8 string in slot 0-3. */
  cstr (s: string, slot = 0): Ptr {
    const bytes = Buffer.from(s + '\0', 'utf8')
    if (bytes.length > Heap.CSTRING_SLOT) throw new RangeError(`C string too long: ${s.slice(0, 40)}...`)
    const p = this.cstrings + slot * Heap.CSTRING_SLOT
    this.M.HEAPU8.set(bytes, p)
    return p
  }

  /** Push bytes as a Lua string. May raise a Lua error (out of memory): call inside a protected call. */
  pushBytes (L: LuaState, bytes: Uint8Array): void {
    const p = this.put(bytes)
    this.M._lua_pushlstring(L, p, bytes.length)
  }

  pushString (L: LuaState, s: string): void {
    this.pushBytes(L, Buffer.from(s, 'utf8'))
  }

  /**
   * A copy of the string (or number, converted in place) at idx; null for
   * other types. Small copies are carved from an arena that the worker
   * renews for each message: postMessage clones each distinct ArrayBuffer
   * once, so a reply carrying hundreds of small strings costs one copy of
   * one arena instead of hundreds of buffers. Large ones get their own.
   */
  toBytes (L: LuaState, idx: number): Buffer | null {
    const p = this.M._lua_tolstring(L, idx, this.lenCell)
    if (p === 0) return null
    const len = this.M.HEAPU32[this.lenCell >> 2]
    const src = this.M.HEAPU8.subarray(p, p + len)
    if (len > Heap.ARENA_MAX_ITEM) {
      const copy = new Uint8Array(len)
      copy.set(src)
      return Buffer.from(copy.buffer, 0, len)
    }
    if (this.arenaUsed + len > this.arena.byteLength) {
      this.arena = new ArrayBuffer(Heap.ARENA_BYTES)
      this.arenaUsed = 0
    }
    const out = Buffer.from(this.arena, this.arenaUsed, len)
    out.set(src)
    this.arenaUsed += len
    return out
  }

  /** Start a fresh arena: what was carved so far belongs to the message just sent. */
  renewArena (): void {
    if (this.arenaUsed === 0) return
    this.arena = new ArrayBuffer(Heap.ARENA_BYTES)
    this.arenaUsed = 0
  }

  /** The string at idx as latin1 text (one char per byte: sorts like the bytes), without an intermediate copy. */
  toLatin1 (L: LuaState, idx: number): string | null {
    const p = this.M._lua_tolstring(L, idx, this.lenCell)
    if (p === 0) return null
    const len = this.M.HEAPU32[this.lenCell >> 2]
    return Buffer.from(this.M.HEAPU8.buffer, this.M.HEAPU8.byteOffset + p, len).toString('latin1')
  }

  toText (L: LuaState, idx: number): string | null {
    const p = this.M._lua_tolstring(L, idx, this.lenCell)
    if (p === 0) return null
    const len = this.M.HEAPU32[this.lenCell >> 2]
    return Buffer.from(this.M.HEAPU8.buffer, this.M.HEAPU8.byteOffset + p, len).toString('utf8')
  }

  /** A C string at p (e.g. lua_typename's result). */
  readCString (p: Ptr): string {
    const heap = this.M.HEAPU8
    let end = p
    while (heap[end] !== 0) end++
    return Buffer.from(heap.buffer, heap.byteOffset + p, end - p).toString('utf8')
  }
}
