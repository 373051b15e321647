// A store in a temp dir with a monitor, a Lua pool and a class runtime on it.

import fs from 'fs'
import os from 'os'
import path from 'path'
import { createLuaPool, LuaPool, LuaPoolOptions } from '../../src/lua'
import { openStore, SqliteStore } from '../../src/store'
import { ClassRuntime, ClassRuntimeOptions } from '../../src/store/classes'
import { FakeMonitor } from './fake-monitor'

export const COUNTER_LUA = fs.readFileSync(path.join(__dirname, '../../../examples/classes/counter.lua'), 'utf8')

export interface World {
  dir: string
  store: SqliteStore
  mon: FakeMonitor
  pool: LuaPool
  rt: ClassRuntime
  /** Close runtime, pool and store (the directory stays). */
  close: () => Promise<void>
}

export function tmpDir (tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cudele-cls-${tag}-`))
}

export async function openWorld (dir: string, opts: { pool?: LuaPoolOptions, runtime?: ClassRuntimeOptions } = {}): Promise<World> {
  const store = await openStore(dir, { create: true })
  await store.createPool('data')
  const mon = await FakeMonitor.open(store)
  const pool = createLuaPool({ workers: 2, ...opts.pool })
  const rt = new ClassRuntime(store, mon, pool, opts.runtime)
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
export async function freshWorld (tag: string, opts: Parameters<typeof openWorld>[1] = {}): Promise<World & { done: () => Promise<void> }> {
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
export function snapshot (store: SqliteStore, pool: string, name: string): unknown {
  const st = store.statSync(pool, name)
  if (st === null) return null
  return {
    size: st.size,
    version: st.version,
    data: str(store.readSync(pool, name, 0, st.size)),
    omap: store.omapListSync(pool, name, { limit: 10000 }).map(e => [str(e.key), str(e.value)])
  }
}
