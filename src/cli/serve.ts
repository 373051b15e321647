// `cudele serve --store DIR --listen ADDR`: the server (store, monitor, MDS) for
// clients that mount with --connect or use the library. Runs in the
// foreground until SIGINT/SIGTERM, then flushes and releases the store.
//
// The server itself runs in a worker thread of this process (serverthread.ts)
// for one reason: its heap settings. bin/cudele.js starts every command with
// a 4 MiB young-generation semi-space, which keeps a mount's resident memory
// low; a server merging client journals of millions of events spends a third
// of its time in the garbage collector with it (Fig. 6a, docs/BENCHMARKS.md).
// A worker gets its own young generation; the process (its pid, its signals,
// kill -9) stays the one the user started.
//
// V8 lets an explicit --max-semi-space-size override a worker's
// resourceLimits, so the flag itself is raised before the thread starts: it
// is read when an isolate is made, so the main thread keeps its small young
// generation and the server thread (and the threads it starts: the store's
// writer, the Lua pool) get the larger one.

import * as path from 'path'
import * as v8 from 'v8'
import { Worker } from 'worker_threads'
import type { ServeOptions } from '../server/server'
import type { ServerThreadMessage } from './serverthread'

/**
 * The server thread's young-generation semi-space, MiB. A merge of 20 client
 * journals of 100,000 creates took 15.9 s of server time with 4 MiB, 10.3 s
 * with 32 MiB.
 */
export const SERVER_SEMI_SPACE_MB = 32

export async function serveCommand (opts: ServeOptions): Promise<number> {
  v8.setFlagsFromString(`--max-semi-space-size=${SERVER_SEMI_SPACE_MB}`)
  const worker = new Worker(path.join(__dirname, 'serverthread.js'), { workerData: opts })
  let stopping = false
  const ended = new Promise<number>((resolve, reject) => {
    worker.on('message', (m: ServerThreadMessage) => {
      if (m.t === 'ready') {
        console.log(`cudele: serving ${path.resolve(opts.store)} at ${m.address} (pid ${process.pid})`)
        if (process.send) process.send({ ready: true })
      } else if (m.t === 'failed') {
        reject(Object.assign(new Error(m.message), m.code !== undefined ? { code: m.code } : {}))
      } else if (m.t === 'closed') {
        console.error(`cudele: server stopped; store ${path.resolve(opts.store)} is flushed and closed`)
        resolve(0)
      }
    })
    worker.on('error', err => reject(err))
    worker.on('exit', code => {
      if (stopping) resolve(code === 0 ? 0 : 1)
      else reject(new Error(`the server thread exited (code ${code}) without being asked to`))
    })
  })
  const stop = (signal: string): void => {
    if (stopping) {
      console.error(`cudele: ${signal} again: exiting without waiting`)
      process.exit(130)
    }
    stopping = true
    console.error(`cudele: ${signal}: stopping the server`)
    worker.postMessage({ t: 'stop' })
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  try {
    return await ended
  } finally {
    await worker.terminate()
  }
}
