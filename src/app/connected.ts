// A client of a cudele server put together: the remote backend (session,
// replay, capabilities), Cudele's router with its request log for strong
// subtrees with durability local, and the client with its data path — as a
// mount (`cudele mount --connect ADDR`, startConnected) or as the library
// (connect, in library.ts).
//
// A mount tells the kernel to cache nothing (entries, attributes, pages
// across opens): other clients change the namespace behind its back, and
// every lookup must see their changes at once. Capabilities still let this
// client buffer writes to files nobody else has open.

import * as path from 'path'
import { Client, DEFAULT_CLIENT_OPTIONS } from '../client/client'
import { RemoteBackend, type RemoteOptions } from '../client/remote'
import { FuseMount } from '../fuse/mount'
import { clientIdentity } from '../cudele/identity'
import { RemoteSubtreeService } from '../cudele/remote'
import { CudeleBackend } from '../cudele/router'
import { recoverRequestLogs, RequestLog, requestLogName } from '../cudele/requestlog'

/** The parts of one client of a server, below its Client. */
export interface ClientStack {
  backend: RemoteBackend
  /** What the Client calls: Cudele's router over the backend. */
  router: CudeleBackend
  /** Where this client keeps its requests to strong/local subtrees until they are safe. */
  logFile: string
}

/**
 * Connect and put the client together. `recover`: first replay what an
 * earlier run left in the journal directory's request logs (changes the
 * server may have lost); the replay acts for the same owner, whose subtrees
 * stay held meanwhile.
 */
export async function connectClient (address: string, remote: Partial<RemoteOptions> & { name: string }, journalDir: (backend: RemoteBackend) => string, recover: boolean): Promise<ClientStack> {
  const backend = await RemoteBackend.connect(address, remote)
  const dir = journalDir(backend)
  if (recover) await recoverRequestLogs(address, dir, line => console.error(`cudele: ${line}`))
  const logFile = requestLogName(dir, backend.clientName)
  backend.keeper = new RequestLog(logFile, backend.clientName, address, backend.owner)
  const router = new CudeleBackend(backend, new RemoteSubtreeService(backend), backend.owner, { journalDir: dir, source: address })
  await router.start()
  return { backend, router, logFile }
}

export interface ConnectedOptions {
  connect: string
  mountpoint: string
  allowOther?: boolean
  fuseOptions?: string[]
  journalDir?: string
}

/** Seconds the kernel keeps names and attributes in a decoupled subtree this client owns. */
const OWNED_TIMEOUT_S = 1

export interface Connected {
  client: Client
  backend: RemoteBackend
  mount: FuseMount
  shutdown (): Promise<void>
}

export async function startConnected (opts: ConnectedOptions): Promise<Connected> {
  const id = clientIdentity(opts.connect, opts.mountpoint, opts.journalDir)
  const { backend, router, logFile } = await connectClient(opts.connect, { name: `cudele-mount ${path.resolve(opts.mountpoint)}`, owner: id.owner }, () => id.journalDir, true)
  const client = new Client(router, DEFAULT_CLIENT_OPTIONS)
  try {
    const mount = await FuseMount.mount(client, {
      mountpoint: opts.mountpoint,
      fsname: `cudele:${opts.connect}`,
      allowOther: opts.allowOther ?? process.getuid?.() === 0,
      autoUnmount: true,
      options: opts.fuseOptions,
      // Other clients change the namespace: the kernel asks every time, except
      // in this client's own decoupled subtrees.
      adapter: { entryTimeout: 0, attrTimeout: 0, negativeTimeout: 0, keepCache: false, ownedTimeout: OWNED_TIMEOUT_S }
    })
    return {
      client,
      backend,
      mount,
      async shutdown () {
        await client.syncAll().catch(err => console.error(`cudele: flushing file data failed: ${(err as Error).message}`))
        client.close()
        await router.close()
        await backend.close()
        const left = backend.unsafeCount
        if (left > 0) console.error(`cudele: the server did not store ${left} request(s) in time; they stay in ${logFile} and are replayed when ${opts.mountpoint} is mounted from ${opts.connect} again`)
      }
    }
  } catch (err) {
    client.close()
    await backend.close().catch(() => {})
    throw err
  }
}
