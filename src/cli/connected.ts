// `cudele mount --connect ADDR`: a client process of a cudele server.
//
// The kernel is told to cache nothing (entries, attributes, pages across
// opens): other clients change the namespace behind its back, and every
// lookup must see their changes at once. Capabilities still let this client
// buffer writes to files nobody else has open.

import * as path from 'path'
import { Client, DEFAULT_CLIENT_OPTIONS } from '../client/client'
import { RemoteBackend } from '../client/remote'
import { FuseMount } from '../fuse/mount'
import { clientIdentity } from '../cudele/identity'
import { RemoteSubtreeService } from '../cudele/remote'
import { CudeleBackend } from '../cudele/router'
import { recoverRequestLogs, RequestLog, requestLogName } from '../cudele/requestlog'

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
  const backend = await RemoteBackend.connect(opts.connect, { name: `cudele-mount ${path.resolve(opts.mountpoint)}`, owner: id.owner })
  // Changes an earlier run kept for strong subtrees with durability local, and the server may have lost.
  // Replayed once this session is open: the replay acts for the same owner, whose subtrees stay held meanwhile.
  await recoverRequestLogs(opts.connect, id.journalDir, line => console.error(`cudele: ${line}`))
  const logFile = requestLogName(id.journalDir, backend.clientName)
  backend.keeper = new RequestLog(logFile, backend.clientName, opts.connect, id.owner)
  const router = new CudeleBackend(backend, new RemoteSubtreeService(backend), id.owner, { journalDir: id.journalDir, source: opts.connect })
  await router.start()
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
