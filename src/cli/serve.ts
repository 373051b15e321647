// `cudele serve --store DIR --listen ADDR`: the server (store, monitor, MDS) for
// clients that mount with --connect or use the library. Runs in the
// foreground until SIGINT/SIGTERM, then flushes and releases the store. The
// server runs in a worker thread of this process (src/app/serve.ts says why).

import * as path from 'path'
import { type ServeOptions, startServerThread } from '../app/serve'

export async function serveCommand (opts: ServeOptions): Promise<number> {
  const server = startServerThread(opts)
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      console.error(`cudele: ${signal} again: exiting without waiting`)
      process.exit(130)
    }
    stopping = true
    console.error(`cudele: ${signal}: stopping the server`)
    server.stop()
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  const address = await server.ready.catch((err: Error & { code?: string }) => {
    // The RPC layer does not know this command's options: name the one that allows it.
    if (err.code === 'EACCES' && /not a loopback address/.test(err.message)) err.message += ' (cudele serve --allow-remote)'
    throw err
  })
  console.log(`cudele: serving ${path.resolve(opts.store)} at ${address} (pid ${process.pid})`)
  if (process.send) process.send({ ready: true })
  await server.ended
  console.error(`cudele: server stopped; store ${path.resolve(opts.store)} is flushed and closed`)
  return 0
}
