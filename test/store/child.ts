// A separate process for the store tests (lock, crash durability). Does
// nothing unless spawned by helpers.spawnChild.
//
//   hold DIR           open DIR as the writer, print "locked", wait to be killed
//   hold-ro DIR        the same, read-only
//   try DIR [ro]       try to open DIR; print "opened" or "error ERRNO MESSAGE"
//   durable DIR N      submit N durable batches one after another, print "acked I"
//                      after each resolves, then wait to be killed

import { openStore, StoreError } from '../../src/store'

async function main (): Promise<void> {
  const [mode, dir, arg] = process.argv.slice(2)
  if (mode === 'hold' || mode === 'hold-ro') {
    await openStore(dir, { create: mode === 'hold', readOnly: mode === 'hold-ro' })
    console.log('locked')
    setInterval(() => {}, 1000)
    return
  }
  if (mode === 'try') {
    try {
      const s = await openStore(dir, { readOnly: arg === 'ro' })
      console.log('opened')
      await s.close()
    } catch (err) {
      console.log(`error ${(err as StoreError).errno} ${(err as Error).message}`)
    }
    return
  }
  if (mode === 'durable') {
    const store = await openStore(dir, { create: true })
    await store.createPool('p')
    for (let i = 0; i < Number(arg); i++) {
      const value = Buffer.alloc(100, i & 0xff)
      await store.submit([
        { pool: 'p', name: `obj${i}`, ops: [{ op: 'create', exclusive: true }, { op: 'writeFull', data: value }] },
        { pool: 'p', name: 'index', ops: [{ op: 'omapSet', entries: [[Buffer.from(`k${String(i).padStart(6, '0')}`), Buffer.from(String(i))]] }] }
      ], { durable: true })
      console.log(`acked ${i}`)
    }
    // Non-durable batches after the durable ones: the test does not count on them.
    for (let i = 0; ; i++) {
      await store.submit([{ pool: 'p', name: 'noise', ops: [{ op: 'append', data: Buffer.alloc(1000, 1) }] }], { durable: false })
    }
  }
}

if (process.env.CUDELE_STORE_CHILD === '1') {
  // Never outlive a test that failed before it could kill this process.
  setTimeout(() => process.exit(3), 120_000).unref()
  main().catch(err => {
    console.error(err)
    process.exit(2)
  })
}
