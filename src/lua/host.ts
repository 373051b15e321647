// Hosts: what a Lua feature plugs into the sandbox. Object classes give their
// scripts `cls.*` (reads of one object, buffered writes), Mantle will give
// its scripts the balancer's metrics, and so on. A host is a module loaded in
// every worker that uses it; the pool tells the worker where it is:
//
//   pool.registerHost('cls', { module: require.resolve('./host'), options: {...} })
//
// The module exports `createLuaHost(options)`, returning a LuaHost. Its
// functions become C functions of the sandbox (a call costs well under a
// microsecond plus what the function does); its `globals` Lua source turns
// them into the globals its scripts see.
//
// A host registered with an answer function also gets a line to the main
// thread (mainline.ts): its functions may ask the main thread something and
// wait for the answer, for what only that thread can reach.
//
// Calls must be safe to run again: when a worker is replaced in the middle of
// a message, the calls of that message that were not at fault are run again
// on another worker. A host therefore buffers effects and hands them back
// from endCall; it never applies them itself.

import type { ErrnoName } from '../common/errors'

/** Arguments of a host function call, read from the Lua stack (1-based). */
export interface LuaArgs {
  readonly count: number
  /** 'nil', 'string', 'number', 'table', ... ('nil' past the last argument). */
  type (i: number): string
  /** A string argument (a number is converted), as a copy of its bytes. */
  bytes (i: number, what: string): Buffer
  /** The same as latin1 text: one char per byte, so it compares like the bytes. */
  latin1 (i: number, what: string): string
  /** A string argument as UTF-8 text. */
  text (i: number, what: string): string
  /** An integer argument in [min, max]. */
  int (i: number, what: string, min?: number, max?: number): number
  optInt (i: number, what: string, def: number, min?: number, max?: number): number
  /** Lua truthiness (nil and false are false). */
  bool (i: number): boolean
}

/** Results of a host function call, pushed in order. */
export interface LuaReturns {
  nil (): void
  bytes (b: Uint8Array): void
  latin1 (s: string): void
  int (n: number): void
  number (n: number): void
  bool (b: boolean): void
  /** An array {v1, v2, ...} of strings. */
  array (items: Array<Uint8Array | string>): void
  /** A table {[k] = v} of strings (string items are latin1). */
  map (entries: Array<[Uint8Array | string, Uint8Array | string]>): void
}

export type HostFunction = (args: LuaArgs, ret: LuaReturns) => void

/**
 * An error a host function raises into the script, with the errno the call
 * fails with if the script lets it through ("cls.remove: no such object",
 * ENOENT). The script sees "counter.lua:12: <message>".
 */
export class HostError extends Error {
  constructor (readonly errno: ErrnoName, message: string) {
    super(message)
    this.name = 'HostError'
  }
}

export interface LuaHost {
  /** Functions callable from `globals`, by name. */
  functions: Record<string, HostFunction>
  /**
   * Lua source run once per sandbox with the table of those functions as its
   * argument (`local H = ...`); it returns a table of globals every script of
   * this host gets (each script gets its own copy of each table in it).
   */
  globals: string
  /** Before a group of calls (calls of one group may build on each other, e.g. one object's chain). */
  beginGroup? (): void
  /** After the group, whatever happened. */
  endGroup? (): void
  /** Before each call, with the ctx given to pool.call. Return false to defer the call (it comes back as rerun). */
  beginCall? (ctx: unknown): boolean
  /** After each call: ok when it succeeded. The value goes back with the outcome (must survive postMessage). */
  endCall? (ok: boolean): unknown
  /** The host was unregistered (or the worker is stopping): release what it holds (connections, files). */
  close? (): void
}

/** How the pool tells a worker to build a host. */
export interface LuaHostSpec {
  /** Absolute path of a module exporting createLuaHost(options): LuaHost. */
  module: string
  /** Passed to createLuaHost; must survive postMessage. */
  options?: unknown
}

/** A host's synchronous line to the main thread (mainline.ts). */
export interface HostLine {
  /** The main thread's answer to request (both must survive postMessage); throws a HostError when it failed. */
  ask (request: unknown): unknown
}

/** line: the host's line to the main thread, when it was registered with an answer function; else null. */
export type CreateLuaHost = (options: unknown, line: HostLine | null) => LuaHost
