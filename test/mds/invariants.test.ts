// Invariants at the MDS's boundaries fail loudly: a broken one throws
// InvariantError (a bug, not bad input) instead of doing silent damage.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InvariantError } from '../../src/common/assert'
import { ClaimTable, InoTable } from '../../src/mds/namespace'

test('two decoupled subtrees never get overlapping inode ranges', () => {
  const claims = new ClaimTable()
  claims.set({ root: 10, owner: 'a', inoStart: 5000, count: 100, mergedSeq: 0, used: 0 })
  // The same subtree may be set again (a merge, a reconnect) ...
  claims.set({ root: 10, owner: 'a', inoStart: 5000, count: 100, mergedSeq: 3, used: 5010 })
  // ... and ranges that only touch are fine.
  claims.set({ root: 11, owner: 'b', inoStart: 5100, count: 50, mergedSeq: 0, used: 0 })
  assert.throws(() => claims.set({ root: 12, owner: 'c', inoStart: 5090, count: 20, mergedSeq: 0, used: 0 }),
    (err: Error) => err instanceof InvariantError && /overlaps another claim/.test(err.message))
  assert.equal(claims.byRoot.has(12), false, 'the overlapping claim is not taken')
})

test('the inode allocator refuses nonsense reservations', () => {
  const t = new InoTable(4096)
  assert.equal(t.reserve(10), 4096)
  assert.throws(() => t.reserve(-5), InvariantError)
  assert.throws(() => t.reserve(1.5), InvariantError)
  assert.equal(t.alloc(), 4106)
})
