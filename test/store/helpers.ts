// Shared bits of the store tests: temporary store directories and byte helpers.

import fs from 'fs'
import os from 'os'
import path from 'path'
import { ChildProcess, spawn } from 'child_process'
import type { Worker } from 'worker_threads'
import { openStore, SqliteStore, SqliteStoreOptions } from '../../src/store'

export function tmpDir (tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cudele-store-${tag}-`))
}

export function rmDir (dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}

/** A fresh store in a temp dir with pool 'p'; close() also removes the dir. */
export async function freshStore (tag: string, opts: SqliteStoreOptions = {}): Promise<{ store: SqliteStore, dir: string, done: () => Promise<void> }> {
  const dir = tmpDir(tag)
  const store = await openStore(dir, { create: true, ...opts })
  await store.createPool('p')
  return {
    store,
    dir,
    done: async () => {
      await store.close()
      rmDir(dir)
    }
  }
}

export function b (s: string): Buffer {
  return Buffer.from(s)
}

/** Deterministic pseudo-random bytes. */
export function pattern (n: number, seed: number): Buffer {
  const out = Buffer.alloc(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

export function str (u: Uint8Array | null): string | null {
  return u === null ? null : Buffer.from(u).toString()
}

/** Spawn test/store/child.js with a mode; resolves lines of its stdout through onLine. */
export function spawnChild (args: string[], onLine: (line: string, child: ChildProcess) => void): { child: ChildProcess, exited: Promise<number | null>, stderr: () => string } {
  const child = spawn(process.execPath, [path.join(__dirname, 'child.js'), ...args], {
    env: { ...process.env, CUDELE_STORE_CHILD: '1' },
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

/** Resolve with the first stdout line of a child that matches, or reject when it exits first. */
export function waitForLine (args: string[], match: RegExp): Promise<{ child: ChildProcess, line: string, exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    let found = false
    const c = spawnChild(args, (line, child) => {
      if (!found && match.test(line)) { found = true; resolve({ child, line, exited: c.exited }) }
    })
    void c.exited.then(code => { if (!found) reject(new Error(`child exited (${code}) before printing ${match}: ${c.stderr()}`)) })
  })
}

/**
 * End a store's writer thread from outside the store, as its death would (an
 * out-of-memory, a bug in it): 'terminated' stops the thread, 'threw' hands
 * it a message it cannot read, so that it throws. The thread is reached
 * through the store's private field: the store itself offers no way to do
 * this, on purpose.
 */
export function killWriter (store: SqliteStore, how: 'terminated' | 'threw'): void {
  const worker = (store as unknown as { worker: Worker | null }).worker
  if (worker === null) throw new Error('the store has no writer thread (read-only)')
  if (how === 'terminated') void worker.terminate()
  else worker.postMessage(null)
}
