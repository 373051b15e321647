// `cudele serve --store DIR --listen ADDR`: the server (store, monitor, MDS) for
// clients that mount with --connect or use the library. Runs in the
// foreground until SIGINT/SIGTERM, then flushes and releases the store.

import * as path from 'path'
import { formatAddress } from '../rpc'
import { CudeleServer, type ServeOptions } from '../server/server'

export async function serveCommand (opts: ServeOptions): Promise<number> {
  const srv = await CudeleServer.start(opts)
  console.log(`cudele: serving ${path.resolve(opts.store)} at ${formatAddress(srv.address!)} (pid ${process.pid})`)
  if (process.send) process.send({ ready: true })
  await new Promise<void>(resolve => {
    let stopping = false
    const stop = (signal: string): void => {
      if (stopping) {
        console.error(`cudele: ${signal} again: exiting without waiting`)
        process.exit(130)
      }
      stopping = true
      console.error(`cudele: ${signal}: stopping the server`)
      resolve()
    }
    process.on('SIGINT', () => stop('SIGINT'))
    process.on('SIGTERM', () => stop('SIGTERM'))
  })
  await srv.close()
  console.error(`cudele: server stopped; store ${path.resolve(opts.store)} is flushed and closed`)
  return 0
}
