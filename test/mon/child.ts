// A separate process for the monitor crash test. Does nothing unless spawned
// by helpers.spawnChild (node --test also runs every .js under test/).
//
//   propose DIR    open the store and a monitor, restrict map 'crash' to
//                  writer 'w', then forever: log "before N", propose value
//                  {n: N} to 'crash', print "committed N EPOCH" once the
//                  proposal resolved; wait to be killed.

import { openStore } from '../../src/store'
import { openMonitor } from '../../src/mon'

async function main (): Promise<void> {
  const [mode, dir] = process.argv.slice(2)
  if (mode !== 'propose') throw new Error(`unknown mode ${mode}`)
  const store = await openStore(dir, { create: true })
  const mon = await openMonitor(store, { proposalIntervalMs: 1 })
  await mon.setWriters('crash', ['w'], { name: 'mon' })
  for (let n = 1; ; n++) {
    mon.log('info', 'child', `before ${n}`)
    const state = await mon.propose('crash', () => ({ n }), { name: 'w' })
    console.log(`committed ${n} ${state.epoch}`)
  }
}

if (process.env.CUDELE_MON_CHILD === '1') {
  // Never outlive a test that failed before it could kill this process.
  setTimeout(() => process.exit(3), 120_000).unref()
  main().catch(err => {
    console.error(err)
    process.exit(2)
  })
}
