// A library client that never gives capabilities back, as a hung or hostile
// client would: the server's revokes reach its backend, which waits forever
// for the client to flush instead of flushing and releasing. Leases and
// session eviction must still free what it holds (test/server/caps.test.ts).
//
// (Also loaded by library clients in child processes: see libraryChild's
// ignoreRevokes option in server.ts.)

import type { RemoteBackend } from '../../src/client/remote'
import type { Connection } from '../../src/index'

export function ignoreRevokes (c: Connection): Connection {
  const backend = (c as unknown as { remote: RemoteBackend }).remote
  backend.setCapListener({ revoke: () => new Promise<void>(() => {}) })
  return c
}
