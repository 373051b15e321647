// Host function arguments and results, read from and pushed onto the Lua
// stack through the raw API (see host.ts for what hosts see). One instance of
// each per sandbox, re-pointed at the stack for every host function call.

import { HostError, LuaArgs, LuaReturns } from './host'
import { Heap, LUA_TNIL, LUA_TNUMBER, LUA_TSTRING, LuaState, RawLua, typeName } from './raw'

export class StackArgs implements LuaArgs {
  private L: LuaState = 0
  count = 0

  constructor (private readonly M: RawLua, private readonly heap: Heap) {}

  reset (L: LuaState): void {
    this.L = L
    this.count = this.M._lua_gettop(L)
  }

  type (i: number): string {
    return i > this.count ? 'nil' : typeName(this.M._lua_type(this.L, i))
  }

  private checkString (i: number, what: string): void {
    const t = i > this.count ? LUA_TNIL : this.M._lua_type(this.L, i)
    if (t !== LUA_TSTRING && t !== LUA_TNUMBER) throw new HostError('EINVAL', `${what}: expected a string, got ${typeName(t)}`)
  }

  bytes (i: number, what: string): Buffer {
    this.checkString(i, what)
    return this.heap.toBytes(this.L, i) as Buffer
  }

  latin1 (i: number, what: string): string {
    this.checkString(i, what)
    return this.heap.toLatin1(this.L, i) as string
  }

  text (i: number, what: string): string {
    this.checkString(i, what)
    return this.heap.toText(this.L, i) as string
  }

  int (i: number, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const t = i > this.count ? LUA_TNIL : this.M._lua_type(this.L, i)
    if (t !== LUA_TNUMBER) throw new HostError('EINVAL', `${what}: expected an integer, got ${typeName(t)}`)
    const n = this.M._lua_tonumberx(this.L, i, 0)
    if (!Number.isInteger(n) || n < min || n > max) throw new HostError('EINVAL', `${what}: expected an integer in [${min}, ${max}], got ${n}`)
    return n
  }

  optInt (i: number, what: string, def: number, min?: number, max?: number): number {
    if (i > this.count || this.M._lua_type(this.L, i) === LUA_TNIL) return def
    return this.int(i, what, min, max)
  }

  bool (i: number): boolean {
    return i <= this.count && this.M._lua_toboolean(this.L, i) !== 0
  }
}

export class StackReturns implements LuaReturns {
  private L: LuaState = 0
  count = 0

  constructor (private readonly M: RawLua, private readonly heap: Heap) {}

  reset (L: LuaState): void {
    this.L = L
    this.count = 0
  }

  nil (): void { this.M._lua_pushnil(this.L); this.count++ }
  bytes (b: Uint8Array): void { this.heap.pushBytes(this.L, b); this.count++ }
  latin1 (s: string): void { this.heap.pushBytes(this.L, Buffer.from(s, 'latin1')); this.count++ }
  int (n: number): void { this.M._lua_pushinteger(this.L, BigInt(n)); this.count++ }
  number (n: number): void { this.M._lua_pushnumber(this.L, n); this.count++ }
  bool (b: boolean): void { this.M._lua_pushboolean(this.L, b ? 1 : 0); this.count++ }

  array (items: Array<Uint8Array | string>): void {
    const { M, L } = this
    M._lua_createtable(L, items.length, 0)
    for (let i = 0; i < items.length; i++) {
      this.pushItem(items[i])
      M._lua_rawseti(L, -2, BigInt(i + 1))
    }
    this.count++
  }

  map (entries: Array<[Uint8Array | string, Uint8Array | string]>): void {
    const { M, L } = this
    M._lua_createtable(L, 0, entries.length)
    for (const [k, v] of entries) {
      this.pushItem(k)
      this.pushItem(v)
      M._lua_rawset(L, -3)
    }
    this.count++
  }

  private pushItem (x: Uint8Array | string): void {
    this.heap.pushBytes(this.L, typeof x === 'string' ? Buffer.from(x, 'latin1') : x)
  }
}
