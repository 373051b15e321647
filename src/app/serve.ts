// Server mode put together: the object store, the monitor, the MDS and the
// server that answers clients over RPC, in the thread that calls startServer
// (`cudele serve` runs it in a worker thread: startServerThread says why).

import * as path from 'path'
import * as v8 from 'v8'
import { Worker } from 'worker_threads'
import { Health } from '../common/health'
import { DEFAULT_MDS_OPTIONS, type MetadataServer, openMds } from '../mds'
import { openMonitor } from '../mon'
import type { Monitor } from '../mon/monitor'
import { formatAddress, RpcServer } from '../rpc'
import { CudeleServer } from '../server/server'
import { DEFAULT_SESSION_OPTIONS, type SessionOptions } from '../server/sessions'
import { openStore } from '../store'
import type { ServerThreadMessage } from './serverthread'

/** Health check of the object store's commits. */
const STORE_CHECK = 'store'

export interface ServeOptions {
  store: string
  listen: string
  sessions?: Partial<SessionOptions>
  cacheInodes?: number
  cacheDentries?: number
  /** How often the MDS trims its dirty metadata into the store (ms). */
  trimIntervalMs?: number
  /** Monitor proposal batching interval (ms). */
  proposalIntervalMs?: number
  /** Allow listening on non-loopback TCP addresses. */
  allowRemote?: boolean
}

/** Open the store, the monitor and the MDS, and serve them at opts.listen. */
export async function startServer (opts: ServeOptions): Promise<CudeleServer> {
  const sessionOptions = { ...DEFAULT_SESSION_OPTIONS, ...opts.sessions }
  let mon: Monitor | null = null
  // Failing background work goes to the cluster log (and `cudele status`);
  // the store logs its own state changes in its own words.
  const health = new Health()
  health.onChange(c => { if (c.check !== STORE_CHECK) mon?.log(c.state === 'ok' ? 'info' : c.state, c.check.split('.')[0] === 'mds' ? 'mds.0' : c.check.split('.')[0], `${c.check}: ${c.message}`) })
  const store = await openStore(path.resolve(opts.store), {
    create: true,
    onHealth: ev => {
      mon?.log(ev.state === 'ok' ? 'info' : ev.state === 'full' ? 'warn' : 'error', 'store', ev.message)
      if (ev.state === 'ok') health.ok(STORE_CHECK)
      else health.failed(STORE_CHECK, new Error(`${ev.state}: ${ev.message}`))
    }
  })
  let mds: MetadataServer | null = null
  const rpc = new RpcServer({ name: 'cudele-server', allowRemote: opts.allowRemote })
  try {
    mon = await openMonitor(store, { proposalIntervalMs: opts.proposalIntervalMs ?? 1 })
    mds = await openMds(store, {
      rootUid: process.getuid?.() ?? 0,
      rootGid: process.getgid?.() ?? 0,
      // Clients reconnecting after a restart reclaim their open files before unlinked ones are purged.
      purgeDelayMs: sessionOptions.timeoutMs,
      mds: {
        ...DEFAULT_MDS_OPTIONS,
        health,
        trimIntervalMs: opts.trimIntervalMs ?? DEFAULT_MDS_OPTIONS.trimIntervalMs,
        cache: {
          inodes: opts.cacheInodes ?? DEFAULT_MDS_OPTIONS.cache.inodes,
          dentries: opts.cacheDentries ?? DEFAULT_MDS_OPTIONS.cache.dentries
        }
      }
    })
    for (const p of mds.replayProblems()) mon.log('error', 'mds.0', `journal replay: ${p}`)
    const srv = new CudeleServer(store, mon, mds, rpc, sessionOptions, health)
    await srv.listen(opts.listen)
    mon.log('info', 'mds.0', `serving ${path.resolve(opts.store)} at ${formatAddress(srv.address!)} (boot ${srv.bootId})`)
    return srv
  } catch (err) {
    await rpc.close().catch(() => {})
    await mds?.close().catch(() => {})
    await mon?.close().catch(() => {})
    await store.close().catch(() => {})
    throw err
  }
}

/**
 * The server thread's young-generation semi-space, MiB. A merge of 20 client
 * journals of 100,000 creates took 15.9 s of server time with 4 MiB, 10.3 s
 * with 32 MiB.
 */
export const SERVER_SEMI_SPACE_MB = 32

export interface ServerThread {
  /** Resolves with the address once the server answers there. */
  ready: Promise<string>
  /** Resolves once the server has stopped and released the store (or the thread ended). */
  ended: Promise<void>
  /** Ask the server to stop: flush everything, release the store. */
  stop (): void
}

/**
 * Run startServer in a worker thread of this process. bin/cudele.js starts
 * every command with a 4 MiB young-generation semi-space, which keeps a
 * mount's resident memory low; a server merging client journals of millions
 * of events spends a third of its time in the garbage collector with it
 * (Fig. 6a, docs/BENCHMARKS.md). A worker gets its own young generation; the
 * process (its pid, its signals, kill -9) stays the one the user started.
 *
 * V8 lets an explicit --max-semi-space-size override a worker's
 * resourceLimits, so the flag itself is raised before the thread starts: it
 * is read when an isolate is made, so the main thread keeps its small young
 * generation and the server thread (and the threads it starts: the store's
 * writer, the Lua pool) get the larger one.
 */
export function startServerThread (opts: ServeOptions): ServerThread {
  v8.setFlagsFromString(`--max-semi-space-size=${SERVER_SEMI_SPACE_MB}`)
  const worker = new Worker(path.join(__dirname, 'serverthread.js'), { workerData: opts })
  let stopping = false
  let onReady: (address: string) => void = () => {}
  let onFailed: (err: Error) => void = () => {}
  const ready = new Promise<string>((resolve, reject) => { onReady = resolve; onFailed = reject })
  const ended = new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => { onFailed(err); reject(err) }
    worker.on('message', (m: ServerThreadMessage) => {
      if (m.t === 'ready') onReady(m.address)
      else if (m.t === 'failed') fail(Object.assign(new Error(m.message), m.code !== undefined ? { code: m.code } : {}))
      else if (m.t === 'closed') resolve()
    })
    worker.on('error', err => fail(err))
    worker.on('exit', code => {
      if (stopping && code === 0) resolve()
      else fail(new Error(`the server thread exited (code ${code})${stopping ? '' : ' without being asked to'}`))
    })
  }).finally(() => { void worker.terminate() })
  // A caller that only waits for `ready` hears of failures there.
  ended.catch(() => {})
  return {
    ready,
    ended,
    stop () {
      stopping = true
      worker.postMessage({ t: 'stop' })
    }
  }
}
