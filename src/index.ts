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

import * as path from 'path'
import { Client, DEFAULT_CLIENT_OPTIONS } from './client/client'
import { RemoteBackend, type RemoteOptions } from './client/remote'
import { defaultJournalRoot } from './cudele/identity'
import type { PolicyEntry } from './cudele/registry'
import { RemoteSubtreeService } from './cudele/remote'
import { CudeleBackend } from './cudele/router'
import { recoverRequestLogs, RequestLog, requestLogName } from './cudele/requestlog'
import type { PolicyInfo } from './cudele/service'
import type { Ino } from './common/types'

export { Client } from './client/client'
export type { Attr, Caller, DirEntry, FsStats, Ino, SetAttr } from './common/types'
export { ROOT_INO } from './common/types'
export { parsePolicy, type Policy } from './cudele/policy'

export interface ConnectOptions extends Partial<RemoteOptions> {
  /**
   * Where client journals of decoupled subtrees and the request log of strong
   * subtrees with durability local go (local_persist); default: a new
   * directory under ~/.local/state/cudele. Given, what an earlier run left
   * there is picked up.
   */
  journalDir?: string
}

export interface Connection extends Client {
  /** Set a directory's policy (the text of a policies.yml). */
  setPolicy (dir: Ino, yaml: string, path?: string): Promise<PolicyEntry>
  policyOf (dir: Ino): Promise<PolicyInfo>
  /**
   * Create many empty files in dir. In a decoupled subtree the create events
   * are appended to the client journal without checks (the plain
   * append_client_journal mechanism; an existing name is replaced at merge);
   * elsewhere it is one request per file.
   */
  createMany (dir: Ino, names: string[], mode?: number): Promise<number>
  /** Merge the decoupled subtree holding dir now (weak consistency). */
  sync (dir: Ino): Promise<void>
  /** Merge it even with invisible consistency. */
  merge (dir: Ino): Promise<void>
  /** Flush, merge or keep decoupled subtrees as their policies say, wait until every change is safe, end the session. */
  close (): Promise<void>
}

export async function connect (address: string, opts: ConnectOptions = {}): Promise<Connection> {
  const backend = await RemoteBackend.connect(address, { name: 'cudele-library', ...opts })
  // A journal directory of an earlier run: what it kept for strong subtrees with durability local is replayed first.
  if (opts.journalDir !== undefined) await recoverRequestLogs(address, opts.journalDir, line => console.error(`cudele: ${line}`))
  const journalDir = opts.journalDir ?? path.join(defaultJournalRoot(), `library-${backend.owner}`)
  backend.keeper = new RequestLog(requestLogName(journalDir, backend.clientName), backend.clientName, address, backend.owner)
  const router = new CudeleBackend(backend, new RemoteSubtreeService(backend), backend.owner, { journalDir, source: address })
  await router.start()
  const client = new Client(router, DEFAULT_CLIENT_OPTIONS) as unknown as Connection
  const stopTimers = Client.prototype.close.bind(client)
  client.setPolicy = (dir, yaml, p) => router.setPolicy(dir, yaml, p ?? `inode ${dir}`)
  client.policyOf = dir => router.service.policyOf(dir)
  client.createMany = (dir, names, mode = 0o644) => router.createMany(dir, names, mode, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: process.pid })
  client.sync = dir => router.mergeAt(dir, false)
  client.merge = dir => router.mergeAt(dir, true)
  client.close = async () => {
    await client.syncAll().catch(() => {})
    stopTimers()
    await router.close()
    await backend.close()
  }
  return client
}

