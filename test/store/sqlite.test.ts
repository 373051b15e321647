// The SQLite backend against the store suite; once more for the model test
// with payloads copied instead of moved to the writer thread. What only this
// backend has is in writer.test.ts, faults.test.ts, space.test.ts,
// lock.test.ts and crash.test.ts.

import { sqliteBackend } from './backends'
import { modelTest } from './model'
import { storeSuite } from './suite'

storeSuite(sqliteBackend())
modelTest(sqliteBackend({ transferPayloads: false }, 'sqlite, payloads copied'))
