// One well-formed argument tuple for every method of the protocol table
// (for a mutation, without its request header), typed by the table: a
// method added to the table without an example here fails to compile, and
// an example that no longer fits its method too. The tests take one
// argument at a time and put values of other shapes in its place.

import type { ArgsOf, MethodName } from '../../src/protocol'

const caller = { uid: 0, gid: 0, pid: 1 }
const now = { s: 1_700_000_000, ns: 5 }
const write = { pool: 'data', name: '2a.0', ops: [{ op: 'write' as const, offset: 0, data: Buffer.from('x') }] }

export const EXAMPLES: { [M in MethodName]: ArgsOf<M> } = {
  'session.open': ['client-a', { opens: [[2, 1]], caps: [[2, 3]] }, 'owner_a'],
  'session.close': [],
  lookup: [1, 'name'],
  lookupOrNull: [1, 'name'],
  getattr: [1],
  readlink: [1],
  readdir: [1, null, 100],
  getxattr: [1, 'user.a'],
  listxattr: [1],
  statfs: [],
  sync: [true, false],
  'data.read': ['2a.0', 0, 4096],
  'data.list': ['2a.', null, 10],
  open: [1, 0],
  release: [1],
  'caps.acquire': [1, 1],
  'caps.release': [1, 1],
  mknod: [1, 'f', 0o100644, 0, caller],
  mkdir: [1, 'd', 0o755, caller],
  symlink: [1, 'l', 'target', caller],
  link: [2, 1, 'g'],
  unlink: [1, 'f'],
  rmdir: [1, 'd'],
  rename: [1, 'a', 1, 'b', 0],
  setattr: [1, { mode: 0o644, atime: 'now', mtime: now, size: 3, grow: true }],
  setxattr: [1, 'user.a', Buffer.from('v'), 0],
  removexattr: [1, 'user.a'],
  'data.commit': [2, [write], { size: 1, mtime: now, ctime: now }, false],
  'cudele.policyOf': [1],
  'cudele.policyEpoch': [],
  'cudele.setPolicy': [1, 'consistency: weak\n', '/p', 'owner_a'],
  'cudele.claim': [1, 'owner_a'],
  'cudele.merge': [1, 'owner_a', [[1, Buffer.from([])]]],
  'cudele.release': [1, 'owner_a'],
  'cudele.putSegment': [1, 'owner_a', 1, Buffer.from([])],
  'cudele.dropSegments': [1, 'owner_a', 1],
  'cudele.storedSegments': [1, 'owner_a'],
  'data.write': [[write], false],
  'journal.apply': [[Buffer.from([])]],
  status: [20],
  log: [10, null],
  'log.follow': [0],
  'mon.get': ['policymap', 1],
  'mon.maps': [],
  'mon.set': ['testmap', 'k', { a: [1, 'two', null] }, 'tester'],
  'mon.writers': ['testmap', ['tester'], 'tester'],
  'mon.subscribe': ['policymap', 0],
  'class.install': ['c', 'return {}', 'tester'],
  'class.list': [],
  'class.call': ['data', 'obj', 'c.f', 'input']
}

/** Values of every shape the codec carries; each argument refuses some of them. */
export const STRANGERS: unknown[] = [
  'x', '', -1, 1.5, 2 ** 60, Number.NaN, null, true, {}, [], [1], Buffer.from('b'),
  { uid: 'a', gid: 0, pid: 0 }, { s: 1.5, ns: 0 }, { pool: 'data', name: 'n', ops: [{ op: 'omapClear' }] }
]
