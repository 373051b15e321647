// A store with a monitor, a Lua pool and a class runtime on it, on either
// backend: SQLite (the workers read it on their own connections) or the
// memory store (their reads are relayed to this thread). Tests about what a
// class call means run on both (CLASS_BACKENDS).

import { test } from 'node:test'
import fs from 'fs'
import os from 'os'
import path from 'path'
import { createLuaPool, LuaPool, LuaPoolOptions } from '../../src/lua'
import { MemoryStore, openStore } from '../../src/store'
import { ClassRuntime, ClassRuntimeOptions, ClassStore } from '../../src/store/classes'
import { FakeMonitor } from './fake-monitor'

export const COUNTER_LUA = fs.readFileSync(path.join(__dirname, '../../../examples/classes/counter.lua'), 'utf8')

export interface ClassBackend {
  name: string
  /** The store in dir (SQLite: created there, or reopened; memory: dir is not used). */
  open: (dir: string) => Promise<ClassStore>
}

export const sqliteClasses: ClassBackend = { name: 'sqlite', open: async dir => await openStore(dir, { create: true }) }
export const memoryClasses: ClassBackend = { name: 'memory', open: async () => new MemoryStore() }
export const CLASS_BACKENDS: ClassBackend[] = [sqliteClasses, memoryClasses]

/** A test run once per backend, named for it. */
export function classTest (name: string, fn: (backend: ClassBackend) => Promise<void>): void {
  for (const backend of CLASS_BACKENDS) test(`${backend.name}: ${name}`, async () => await fn(backend))
}

export interface World {
  dir: string
  store: ClassStore
  mon: FakeMonitor
  pool: LuaPool
  rt: ClassRuntime
  /** Close runtime, pool and store (the directory stays). */
  close: () => Promise<void>
}

export function tmpDir (tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cudele-cls-${tag}-`))
}

export interface WorldOptions {
  backend?: ClassBackend
  pool?: LuaPoolOptions
  runtime?: ClassRuntimeOptions
  /** Give the runtime this view of the store instead of the store itself (a wrapper that meddles). */
  wrap?: (store: ClassStore) => ClassStore
}

export async function openWorld (dir: string, opts: WorldOptions = {}): Promise<World> {
  const store = await (opts.backend ?? sqliteClasses).open(dir)
  await store.createPool('data')
  const mon = await FakeMonitor.open(store)
  const pool = createLuaPool({ workers: 2, ...opts.pool })
  const rt = new ClassRuntime(opts.wrap?.(store) ?? store, mon, pool, opts.runtime)
  return {
    dir, store, mon, pool, rt,
    close: async () => {
      await rt.close()
      await pool.close()
      await store.close()
    }
  }
}

/** A world in a fresh temp dir, removed by done(). */
export async function freshWorld (tag: string, opts: WorldOptions = {}): Promise<World & { done: () => Promise<void> }> {
  const dir = tmpDir(tag)
  const w = await openWorld(dir, opts)
  return { ...w, done: async () => { await w.close(); fs.rmSync(dir, { recursive: true, force: true }) } }
}

export const BY = { name: 'cli' }

export function b (s: string): Buffer {
  return Buffer.from(s)
}

export function str (u: Uint8Array | null | undefined): string | null {
  return u === null || u === undefined ? null : Buffer.from(u).toString()
}

/** Everything about an object, for "left untouched" checks. */
export function snapshot (store: ClassStore, pool: string, name: string): unknown {
  const st = store.statSync(pool, name)
  if (st === null) return null
  return {
    size: st.size,
    version: st.version,
    data: str(store.readSync(pool, name, 0, st.size)),
    omap: store.omapListSync(pool, name, { limit: 10000 }).map(e => [str(e.key), str(e.value)])
  }
}
