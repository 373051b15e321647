// The thread `cudele serve` runs the server in (startServerThread in serve.ts
// says why it is a thread): starts it with the options it was given, reports its address, and
// closes it (flushing the store) when the main thread says stop.

import { parentPort, workerData } from 'worker_threads'
import { formatAddress } from '../rpc'
import type { CudeleServer } from '../server/server'
import { type ServeOptions, startServer } from './serve'

export type ServerThreadMessage =
  | { t: 'ready', address: string }
  | { t: 'failed', message: string, code?: string }
  | { t: 'closed' }

function post (m: ServerThreadMessage): void {
  parentPort?.postMessage(m)
}

async function run (): Promise<void> {
  let srv: CudeleServer
  try {
    srv = await startServer(workerData as ServeOptions)
  } catch (err) {
    const e = err as { message?: string, code?: unknown, errno?: unknown }
    const code = typeof e.code === 'string' ? e.code : typeof e.errno === 'string' ? e.errno : undefined
    post({ t: 'failed', message: e.message ?? String(err), code })
    return
  }
  post({ t: 'ready', address: formatAddress(srv.address!) })
  parentPort?.on('message', (m: { t: 'stop' }) => {
    if (m.t !== 'stop') return
    srv.close().then(() => post({ t: 'closed' }), err => post({ t: 'failed', message: (err as Error).message }))
  })
}

if (parentPort) void run()
