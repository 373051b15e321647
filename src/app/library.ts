// The library client (`import { connect } from 'cudele'`): the same
// inode-level operations the FUSE adapter uses, over RPC to a `cudele serve`
// process, with Cudele's subtree policies in force, plus the calls a program
// uses to set and act on policies.

import * as path from 'path'
import { Client, DEFAULT_CLIENT_OPTIONS } from '../client/client'
import type { RemoteBackend, RemoteOptions } from '../client/remote'
import type { Ino } from '../common/types'
import { defaultJournalRoot } from '../cudele/identity'
import type { PolicyEntry } from '../cudele/registry'
import type { CudeleBackend } from '../cudele/router'
import type { PolicyInfo } from '../cudele/service'
import { connectClient } from './connected'

export interface ConnectOptions extends Partial<RemoteOptions> {
  /**
   * Where client journals of decoupled subtrees and the request log of strong
   * subtrees with durability local go (local_persist); default: a new
   * directory under ~/.local/state/cudele. Given, what an earlier run left
   * there is picked up.
   */
  journalDir?: string
}

export class Connection extends Client {
  constructor (private readonly router: CudeleBackend, private readonly remote: RemoteBackend) {
    super(router, DEFAULT_CLIENT_OPTIONS)
  }

  /** Set a directory's policy (the text of a policies.yml). */
  async setPolicy (dir: Ino, yaml: string, p?: string): Promise<PolicyEntry> {
    return await this.router.setPolicy(dir, yaml, p ?? `inode ${dir}`)
  }

  async policyOf (dir: Ino): Promise<PolicyInfo> {
    return await this.router.service.policyOf(dir)
  }

  /**
   * Create many empty files in dir. In a decoupled subtree the create events
   * are appended to the client journal without checks (the plain
   * append_client_journal mechanism; an existing name is replaced at merge);
   * elsewhere it is one request per file.
   */
  async createMany (dir: Ino, names: string[], mode = 0o644): Promise<number> {
    return await this.router.createMany(dir, names, mode, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, pid: process.pid })
  }

  /** Merge the decoupled subtree holding dir now (weak consistency). */
  async sync (dir: Ino): Promise<void> {
    await this.router.mergeAt(dir, false)
  }

  /** Merge it even with invisible consistency. */
  async merge (dir: Ino): Promise<void> {
    await this.router.mergeAt(dir, true)
  }

  /** Flush, merge or keep decoupled subtrees as their policies say, wait until every change is safe, end the session. */
  override async close (): Promise<void> {
    await this.syncAll().catch(() => {})
    super.close()
    await this.router.close()
    await this.remote.close()
  }
}

export async function connect (address: string, opts: ConnectOptions = {}): Promise<Connection> {
  // A journal directory of an earlier run: what it kept for strong subtrees with durability local is replayed first.
  const { backend, router } = await connectClient(address, { name: 'cudele-library', ...opts },
    b => opts.journalDir ?? path.join(defaultJournalRoot(), `library-${b.owner}`), opts.journalDir !== undefined)
  return new Connection(router, backend)
}
