// The monitor: versioned service metadata (maps with epochs) and the cluster log.
//
//   const store = await openStore(dir, { create: true })
//   const mon = await openMonitor(store, { proposalIntervalMs: 1 })
//   await mon.propose('policymap', v => ({ ...(v as object), '/a': 'weak' }), { name: 'cli' })
//   mon.subscribe('policymap', 0, state => { ... })
//   await mon.close()   // then close the store: it belongs to the caller

import type { ObjectStore } from '../store/types'
import { Monitor } from './monitor'
import type { MonitorOptions } from './options'

export * from './types'
export { Monitor } from './monitor'
export * from './options'
export { MON_POOL } from './persist'

/** Open the monitor on a store; it must be the only writer of the store's pool `mon`. */
export async function openMonitor (store: ObjectStore, opts: MonitorOptions = {}): Promise<Monitor> {
  return await Monitor.open(store, opts)
}
