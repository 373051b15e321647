// Embedded mode put together: one process hosts the object store, the
// monitor, the MDS and one client, and serves the mount.

import * as path from 'path'
import { Client, DEFAULT_CLIENT_OPTIONS } from '../client/client'
import { EmbeddedBackend } from '../client/backend'
import { DEFAULT_ADAPTER_OPTIONS } from '../fuse/adapter'
import { FuseMount } from '../fuse/mount'
import { Health } from '../common/health'
import { DEFAULT_MDS_OPTIONS, type MetadataServer, openMds } from '../mds'
import { openStore, type SqliteStore } from '../store'
import { clientIdentity } from '../cudele/identity'
import { LocalSubtreeService } from '../cudele/local'
import { POLICYMAP, SubtreeRegistry } from '../cudele/registry'
import { CudeleBackend } from '../cudele/router'
import { openMonitor, type Monitor } from '../mon'

export interface EmbeddedOptions {
  store: string
  mountpoint: string
  cacheInodes?: number
  cacheDentries?: number
  entryTimeout?: number
  attrTimeout?: number
  allowOther?: boolean
  fuseOptions?: string[]
  /** Where client journals of decoupled subtrees go (local_persist). */
  journalDir?: string
}

export interface Embedded {
  store: SqliteStore
  mds: MetadataServer
  client: Client
  mount: FuseMount
  /** Flush everything and release the store (after the session ended). */
  shutdown (): Promise<void>
}

export async function startEmbedded (opts: EmbeddedOptions): Promise<Embedded> {
  // Failing background work (trims, purges) is said in the mount's output as it fails and recovers.
  const health = new Health()
  health.onChange(c => console.error(`cudele: ${c.check}: ${c.state === 'ok' ? '' : c.state + ': '}${c.message}`))
  const store = await openStore(path.resolve(opts.store), {
    create: true,
    onHealth: ev => { if (ev.state !== 'ok') console.error(`cudele: store ${ev.state}: ${ev.message}`) }
  })
  let mds: MetadataServer | null = null
  let client: Client | null = null
  let mon: Monitor | null = null
  let registry: SubtreeRegistry | null = null
  let router: CudeleBackend | null = null
  try {
    mds = await openMds(store, {
      rootUid: process.getuid?.() ?? 0,
      rootGid: process.getgid?.() ?? 0,
      mds: {
        ...DEFAULT_MDS_OPTIONS,
        health,
        cache: {
          inodes: opts.cacheInodes ?? DEFAULT_MDS_OPTIONS.cache.inodes,
          dentries: opts.cacheDentries ?? DEFAULT_MDS_OPTIONS.cache.dentries
        }
      }
    })
    for (const p of mds.replayProblems()) console.error(`cudele: replay: ${p}`)
    mon = await openMonitor(store, { proposalIntervalMs: 1 })
    const m0 = mon
    // The mount's local disk is the store's: local durability of strong subtrees is the MDS's journal.
    registry = new SubtreeRegistry(mds, store, mon, { localIsStore: true })
    const source = path.resolve(opts.store)
    const id = clientIdentity(source, opts.mountpoint, opts.journalDir)
    const service = new LocalSubtreeService(registry, store, fn => { m0.subscribe(POLICYMAP, 0, st => fn(st.epoch)) })
    router = new CudeleBackend(new EmbeddedBackend(mds, store), service, id.owner, { journalDir: id.journalDir, source })
    await router.start()
    client = new Client(router, DEFAULT_CLIENT_OPTIONS)
    const isRoot = process.getuid?.() === 0
    const mount = await FuseMount.mount(client, {
      mountpoint: opts.mountpoint,
      fsname: `cudele:${path.resolve(opts.store)}`,
      allowOther: opts.allowOther ?? isRoot,
      autoUnmount: true,
      options: opts.fuseOptions,
      adapter: {
        ...DEFAULT_ADAPTER_OPTIONS,
        entryTimeout: opts.entryTimeout ?? DEFAULT_ADAPTER_OPTIONS.entryTimeout,
        attrTimeout: opts.attrTimeout ?? DEFAULT_ADAPTER_OPTIONS.attrTimeout
      }
    })
    const m = mds
    const c = client
    const mo = mon
    const reg = registry
    const r = router
    return {
      store,
      mds: m,
      client: c,
      mount,
      async shutdown () {
        await c.syncAll().catch(err => console.error(`cudele: flushing file data failed: ${(err as Error).message}`))
        c.close()
        await r.close()
        reg.close()
        await m.close()
        await mo.close()
        await store.close()
      }
    }
  } catch (err) {
    client?.close()
    registry?.close()
    await mds?.close().catch(() => {})
    await mon?.close().catch(() => {})
    await store.close().catch(() => {})
    throw err
  }
}
