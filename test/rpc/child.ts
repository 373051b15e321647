// A separate server process for the RPC tests. Does nothing unless spawned by
// helpers.spawnChild.
//
//   serve ADDR     listen on ADDR (print "listening ADDR"), answer echo and
//                  hang (never replies), until killed

import { RpcServer } from '../../src/rpc'

async function main (): Promise<void> {
  const [mode, addr] = process.argv.slice(2)
  if (mode === 'serve') {
    const server = new RpcServer()
    server.handle('echo', args => args)
    server.handle('hang', () => new Promise(() => {}))
    server.handle('pid', () => process.pid)
    const a = await server.listen(addr)
    console.log(`listening ${a.kind === 'unix' ? `unix:${a.path}` : `tcp:127.0.0.1:${a.port}`}`)
  }
}

if (process.env.CUDELE_RPC_CHILD === '1') {
  // Never outlive a test that failed before it could kill this process.
  setTimeout(() => process.exit(3), 60_000).unref()
  main().catch(err => {
    console.error(err)
    process.exit(2)
  })
}
