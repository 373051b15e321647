// The protocol table on its own: every method has well-formed arguments
// its checks accept, every argument refuses values of other shapes with
// EINVAL naming the method and the argument, the request header is checked,
// trailing optional arguments may be left out, calls are typed by the table,
// and a request log read back keeps only requests the table accepts.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'
import { test } from 'node:test'
import { RequestLog } from '../../src/cudele/requestlog'
import { call, checkArgs, checkedMutation, METHODS, type MethodName, NOTIFIES, send } from '../../src/protocol'
import { encodeValue, type RpcConnection } from '../../src/rpc'
import { EXAMPLES, STRANGERS } from './examples'

const names = Object.keys(METHODS) as MethodName[]

function einval (fn: () => void): string {
  try {
    fn()
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'EINVAL', (err as Error).message)
    return (err as Error).message
  }
  assert.fail('no error')
}

test('every method has an example its checks accept, and each entry says what it does and how it fails', () => {
  assert.deepEqual(Object.keys(EXAMPLES).sort(), [...names].sort())
  for (const m of names) {
    checkArgs(m, METHODS[m], EXAMPLES[m])
    assert.ok(METHODS[m].doc.length > 10, `${m} has no doc`)
    assert.ok(METHODS[m].errnos.every(e => /^E[A-Z0-9]+$/.test(e)), `${m}: ${METHODS[m].errnos.join(' ')}`)
  }
  for (const [n, entry] of Object.entries(NOTIFIES)) assert.ok(entry.doc.length > 10, `notify ${n} has no doc`)
})

test('an argument of another shape is refused with EINVAL naming the method and the argument', () => {
  for (const m of names) {
    const entry = METHODS[m]
    entry.args.forEach((a, i) => {
      let refused = 0
      for (const v of STRANGERS) {
        if (a.shape.is(v)) continue
        const args: unknown[] = [...EXAMPLES[m]]
        args[i] = v
        const msg = einval(() => checkArgs(m, entry, args))
        assert.ok(msg.startsWith(`EINVAL: ${m}: argument ${i + 1} (${a.name}) `), msg)
        refused++
      }
      assert.ok(refused > 0, `${m} argument ${a.name} takes anything`)
    })
  }
})

test('fields of records are checked one by one, and the message names the one at fault', () => {
  const mknod = METHODS.mknod
  assert.match(einval(() => checkArgs('mknod', mknod, [1, 'f', 0o644, 0, { uid: 0, gid: -3, pid: 1 }])),
    /^EINVAL: mknod: argument 5 \(caller\) field gid must be a non-negative integer, not the number -3$/)
  assert.match(einval(() => checkArgs('setattr', METHODS.setattr, [1, { atime: 'later' }])), /argument 2 \(change\) field atime must be/)
  // Fields the shape does not know are let through unread (a later minor version may add some).
  checkArgs('setattr', METHODS.setattr, [1, { mode: 0o600, colour: 'blue' }])
  const w = { pool: 'data', name: 'x', ops: [{ op: 'write', offset: 0, data: 'not bytes' }] }
  assert.match(einval(() => checkArgs('data.commit', METHODS['data.commit'], [2, [w], {}, false])),
    /argument 2 \(writes\) item 0 field ops item 0 field data must be bytes, not the string "not bytes"/)
  const omap = { pool: 'data', name: 'x', ops: [{ op: 'omapClear' }] }
  assert.match(einval(() => checkArgs('data.write', METHODS['data.write'], [[omap], false])), /field op must be one of create, write, .*not the string "omapClear"/)
})

test('missing arguments are refused, optional trailing ones may be left out, extra ones are ignored', () => {
  assert.match(einval(() => checkArgs('mknod', METHODS.mknod, [1, 'f'])), /^EINVAL: mknod: takes 5 arguments, got 2 \(argument 3, mode, is missing\)$/)
  checkArgs('status', METHODS.status, [])
  checkArgs('sync', METHODS.sync, [true])
  checkArgs('log', METHODS.log, [])
  checkArgs('lookup', METHODS.lookup, [1, 'n', 'from a later version'])
  assert.match(einval(() => checkArgs('sync', METHODS.sync, [])), /^EINVAL: sync: takes at least 1 argument, got 0 \(argument 1, durable, is missing\)$/)
})

test('mutations are the changes a client replays; creates are marked', () => {
  const mutations = names.filter(m => METHODS[m].mutates).sort()
  assert.deepEqual(mutations, ['cudele.merge', 'data.commit', 'link', 'mkdir', 'mknod', 'open', 'release', 'removexattr', 'rename', 'rmdir', 'setattr', 'setxattr', 'symlink', 'unlink'])
  assert.deepEqual(names.filter(m => METHODS[m].creates).sort(), ['mkdir', 'mknod', 'symlink'])
})

test('calls are typed by the table', () => {
  // Compiled, never run: each @ts-expect-error line must not compile.
  const typed = (conn: RpcConnection): unknown[] => [
    call(conn, 'lookup', [1, 'name']).then(a => a.ino),
    // @ts-expect-error: a name is a string
    call(conn, 'lookup', [1, 2]),
    // @ts-expect-error: mknod is a change: it goes with send() and a request header
    call(conn, 'mknod', [1, 'f', 0o644, 0, { uid: 0, gid: 0, pid: 0 }]),
    // @ts-expect-error: no such method
    call(conn, 'lookUp', [1, 'name']),
    // @ts-expect-error: the reply of getattr has no field name
    call(conn, 'getattr', [1]).then(a => a.name),
    send(conn, checkedMutation('unlink', [1, 'f']), { tid: 1, firstUnsafe: 1, replay: false })
  ]
  assert.equal(typeof typed, 'function')
})

test('a request log read back keeps the requests the table accepts and says which it cannot replay', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-protocol-'))
  try {
    const file = path.join(dir, 'requests.ab.log')
    const frame = (v: unknown): Buffer => {
      const body = encodeValue(v)
      const h = Buffer.alloc(4)
      h.writeUInt32BE(body.length)
      return Buffer.concat([h, body])
    }
    fs.writeFileSync(file, Buffer.concat([
      Buffer.from(JSON.stringify({ cudele: 'request-log', version: 1, source: 'unix:/x', client: 'ab' }) + '\n'),
      frame({ t: 1, m: 'mknod', a: [1, 'a', 0o100644, 0, { uid: 0, gid: 0, pid: 1 }], i: 7 }),
      frame({ t: 2, m: 'lookup', a: [1, 'a'], i: 0 }),
      frame({ t: 3, m: 'mkdir', a: [1, 5, 0o755, { uid: 0, gid: 0, pid: 1 }], i: 0 }),
      frame({ t: 4, m: 'unlink', a: [1, 'a'], i: 0 })
    ]))
    const log = RequestLog.read(file)
    assert.deepEqual(log.requests.map(r => [r.tid, r.request.method, r.ino]), [[1, 'mknod', 7], [4, 'unlink', undefined]])
    assert.equal(log.refused.length, 2)
    assert.match(log.refused[0], /^request 2: EINVAL: lookup is not a change the protocol knows$/)
    assert.match(log.refused[1], /^request 3: EINVAL: mkdir: argument 2 \(name\) must be a name/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
