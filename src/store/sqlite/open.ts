// The steps of opening a store that need no SqliteStore yet: checking the
// directory, and waiting for the writer thread to come up.

import fs from 'fs'
import { Worker } from 'worker_threads'
import { StoreError } from '../types'
import { LOCK_FILE, OWNER_FILE } from '../lock'
import { WriterReply } from './protocol'
import { DB_FILE } from './schema'

/** Refuse a directory that exists but is not a cudele store; make a missing one when creating. */
export function checkStoreDir (dir: string, dbPath: string, create: boolean): void {
  let st: fs.Stats
  try {
    st = fs.statSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StoreError('EIO', `store ${dir}: ${(err as Error).message}`)
    if (!create) throw new StoreError('ENOENT', `store ${dir} does not exist`)
    fs.mkdirSync(dir, { recursive: true })
    return
  }
  if (!st.isDirectory()) throw new StoreError('EINVAL', `${dir} is not a cudele store: it is not a directory`)
  if (fs.existsSync(dbPath)) return
  const others = fs.readdirSync(dir).filter(f => f !== LOCK_FILE && f !== OWNER_FILE)
  if (others.length > 0) throw new StoreError('EINVAL', `${dir} is not a cudele store: it has no ${DB_FILE} and is not empty`)
  if (!create) throw new StoreError('EINVAL', `${dir} is not a cudele store: it has no ${DB_FILE} (open with create to make one)`)
}

export function writerReady (worker: Worker, dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: WriterReply): void => {
      if (m.t !== 'ready') return
      cleanup()
      resolve(m.seq)
    }
    const onError = (err: Error): void => { cleanup(); reject(new StoreError('EIO', `store ${dir}: the writer thread failed to start: ${err.message}`)) }
    const onExit = (code: number): void => { cleanup(); reject(new StoreError('EIO', `store ${dir}: the writer thread exited at start (code ${code})`)) }
    const cleanup = (): void => {
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
    }
    worker.on('message', onMessage)
    worker.on('error', onError)
    worker.on('exit', onExit)
  })
}
