// Shared bits of the monitor tests: a store in a temp dir with a monitor on it,
// reopening both, and a child process that can be killed mid-flight.

import fs from 'fs'
import os from 'os'
import path from 'path'
import { ChildProcess, spawn } from 'child_process'
import { openStore, SqliteStore } from '../../src/store'
import { Monitor, MonitorOptions, openMonitor } from '../../src/mon'
import { FaultStore } from '../helpers/faultstore'

export function tmpDir (tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cudele-mon-${tag}-`))
}

export interface MonFixture {
  dir: string
  store: SqliteStore
  /** With { faults: true }: the wrapper the monitor writes through, to make its commits fail. */
  faults: FaultStore | null
  mon: Monitor
  /** Close monitor and store, open both again on the same directory. */
  reopen: (opts?: MonitorOptions) => Promise<void>
  /** Close monitor and store and remove the directory. */
  done: () => Promise<void>
}

export async function freshMonitor (tag: string, opts: MonitorOptions = {}, fixture: { faults?: boolean } = {}): Promise<MonFixture> {
  const dir = tmpDir(tag)
  const store = await openStore(dir, { create: true })
  const faults = fixture.faults === true ? new FaultStore(store) : null
  const f: MonFixture = {
    dir,
    store,
    faults,
    mon: await openMonitor(faults ?? store, opts),
    reopen: async (again = opts) => {
      await f.mon.close()
      await f.store.close()
      f.store = await openStore(dir)
      f.faults = f.faults === null ? null : new FaultStore(f.store)
      f.mon = await openMonitor(f.faults ?? f.store, again)
    },
    done: async () => {
      await f.mon.close()
      await f.store.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  return f
}

export const cli = { name: 'cli' }

export function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** The error a promise rejected with (fails when it resolves). */
export async function rejection (p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a rejection, the promise resolved')
}

/** Spawn test/mon/child.js; onLine gets each stdout line. */
export function spawnChild (args: string[], onLine: (line: string, child: ChildProcess) => void): { child: ChildProcess, exited: Promise<number | null>, stderr: () => string } {
  const child = spawn(process.execPath, [path.join(__dirname, 'child.js'), ...args], {
    env: { ...process.env, CUDELE_MON_CHILD: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let err = ''
  let buf = ''
  child.stderr?.on('data', d => { err += String(d) })
  child.stdout?.on('data', d => {
    buf += String(d)
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      onLine(line, child)
    }
  })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  return { child, exited, stderr: () => err }
}
