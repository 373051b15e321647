// The cudele library.
//
//   import { connect } from 'cudele'
//   const fs = await connect('unix:/run/cudele.sock')
//   const dir = await fs.mkdir(1, 'results', 0o755, { uid: 0, gid: 0, pid: process.pid })
//   const { fh } = await fs.create(dir.ino, 'a', 0o644, 0o1, { uid: 0, gid: 0, pid: process.pid })
//   await fs.write(fh, 0, Buffer.from('hello'))
//   await fs.release(fh)
//   await fs.close()
//
// The same inode-level operations the FUSE adapter uses (lookup, getattr,
// create, mkdir, rename, read, write, ... by parent inode and name; the root
// is inode 1), over RPC to a `cudele serve` process.

import { Client, DEFAULT_CLIENT_OPTIONS } from './client/client'
import { RemoteBackend, type RemoteOptions } from './client/remote'

export { Client } from './client/client'
export type { Attr, Caller, DirEntry, FsStats, Ino, SetAttr } from './mds/types'
export { ROOT_INO } from './mds/types'

export interface Connection extends Client {
  /** Flush, wait until every change is safe, end the session. */
  close (): Promise<void>
}

export async function connect (address: string, opts: Partial<RemoteOptions> = {}): Promise<Connection> {
  const backend = await RemoteBackend.connect(address, { name: 'cudele-library', ...opts })
  const client = new Client(backend, DEFAULT_CLIENT_OPTIONS) as Connection
  const closeTimers = client.close.bind(client)
  client.close = async () => {
    await client.syncAll().catch(() => {})
    closeTimers()
    await backend.close()
  }
  return client
}
