// The cudele library.
//
//   import { connect } from 'cudele'
//   const fs = await connect('unix:/run/cudele.sock')
//   const dir = await fs.mkdir(1, 'results', 0o755, { uid: 0, gid: 0, pid: process.pid })
//   await fs.setPolicy(dir.ino, 'consistency: weak\ndurability: local\nallocated_inodes: 100000\n')
//   const { fh } = await fs.create(dir.ino, 'a', 0o644, 0o1, { uid: 0, gid: 0, pid: process.pid })
//   await fs.write(fh, 0, Buffer.from('hello'))
//   await fs.release(fh)
//   await fs.sync(dir.ino)          // merge the decoupled subtree now
//   await fs.close()
//
// The same inode-level operations the FUSE adapter uses (lookup, getattr,
// create, mkdir, rename, read, write, ... by parent inode and name; the root
// is inode 1), over RPC to a `cudele serve` process, with Cudele's subtree
// policies in force.

export { connect, Connection, type ConnectOptions } from './app/library'
export { Client } from './client/client'
export type { Attr, Caller, DirEntry, FsStats, Ino, SetAttr } from './common/types'
export { ROOT_INO } from './common/types'
export { parsePolicy, type Policy } from './cudele/policy'
