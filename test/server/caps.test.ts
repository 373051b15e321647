// Capabilities on ordinary files, through library clients: who may buffer
// writes, how long another client's open waits for the holder to give BUFFER
// back under each policy (user.cudele.caps: lease=<ms>, best-effort, never),
// and that what the holder wrote before the handover is what the next client
// reads.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { connect, type Connection, ROOT_INO } from '../../src/index'
import { CAP_BUFFER } from '../../src/common/caps'
import { ignoreRevokes } from '../helpers/revokes'
import { cleanupServers, libraryChild, type ServerProc, startServer } from '../helpers/server'

const O_RDONLY = 0
const O_WRONLY = 1
const SESSION_TIMEOUT_MS = 2000

const caller = { uid: 0, gid: 0, pid: process.pid }
let srv: ServerProc
const clients: Connection[] = []

before(async () => {
  srv = await startServer({ args: ['--session-timeout', String(SESSION_TIMEOUT_MS), '--heartbeat', '250'] })
})
after(async () => {
  for (const c of clients) await c.close().catch(() => {})
  await cleanupServers()
})

async function client (): Promise<Connection> {
  const c = await connect(srv.addr)
  clients.push(c)
  return c
}

let files = 0
/** A new empty file in the root with the given cap policy (null: none set, i.e. best-effort). */
async function file (c: Connection, policy: string | null): Promise<number> {
  const attr = await c.mknod(ROOT_INO, `f${files++}`, 0o100644, 0, caller)
  if (policy !== null) await c.setxattr(attr.ino, 'user.cudele.caps', Buffer.from(policy), 0)
  return attr.ino
}

/** The capability bits a client's open file holds (what its writes may do). */
function capsOf (c: Connection, ino: number): number {
  return (c as unknown as { files: Map<number, { caps: number }> }).files.get(ino)?.caps ?? 0
}

async function timed<T> (p: Promise<T>): Promise<{ value: T, ms: number }> {
  const t0 = performance.now()
  const value = await p
  return { value, ms: performance.now() - t0 }
}

test('lease=300, the holder ignores the revoke: the other open waits for the lease (~300 ms), then reads what was written before', { timeout: 30000 }, async () => {
  const a = ignoreRevokes(await client())
  const b = await client()
  const ino = await file(b, 'lease=300')
  const wa = await a.open(ino, O_WRONLY)
  assert.equal(capsOf(a, ino) & CAP_BUFFER, CAP_BUFFER, 'the writer got BUFFER')
  await a.write(wa.fh, 0, Buffer.from('written under the lease'))
  const { value: rb, ms } = await timed(b.open(ino, O_RDONLY))
  assert.ok(ms >= 250, `B's open completed after ${ms.toFixed(0)} ms, before the lease ran out`)
  assert.ok(ms < 2000, `B's open took ${ms.toFixed(0)} ms`)
  assert.equal(rb.attr.size, 23)
  assert.equal((await b.read(rb.fh, 0, 100)).toString(), 'written under the lease')
  await b.release(rb.fh)
  await a.release(wa.fh)
  assert.equal((await b.getattr(ino)).size, 23)
})

test('lease=5000, a cooperating holder: the other open does not wait for the lease and sees the buffered data', { timeout: 30000 }, async () => {
  const a = await client()
  const b = await client()
  // A lease far longer than a revoke's round trip, even on a busy machine.
  const ino = await file(b, 'lease=5000')
  const wa = await a.open(ino, O_WRONLY)
  assert.equal(capsOf(a, ino) & CAP_BUFFER, CAP_BUFFER)
  await a.write(wa.fh, 0, Buffer.from('abc'))
  await a.write(wa.fh, 3, Buffer.from('def'))
  const { value: rb, ms } = await timed(b.open(ino, O_RDONLY))
  assert.ok(ms < 2500, `B's open took ${ms.toFixed(0)} ms, as if it waited for the lease`)
  assert.equal((await b.read(rb.fh, 0, 100)).toString(), 'abcdef')
  await b.release(rb.fh)
  await a.release(wa.fh)
})

test('best-effort, a cooperating holder: a second writer gets in at once and sees the first one\'s buffered data; then the roles swap', { timeout: 30000 }, async () => {
  const a = await client()
  const b = await client()
  const ino = await file(b, null)
  const wa = await a.open(ino, O_WRONLY)
  assert.equal(capsOf(a, ino) & CAP_BUFFER, CAP_BUFFER)
  const big = Buffer.alloc(5 * 1024 * 1024, 'x')
  await a.write(wa.fh, 0, Buffer.from('A1'))
  await a.write(wa.fh, 1024 * 1024, big)
  const { value: wb, ms } = await timed(b.open(ino, O_WRONLY))
  assert.ok(ms < 1000, `B's open took ${ms.toFixed(0)} ms`)
  // B now holds BUFFER; A writes through.
  assert.equal(capsOf(b, ino) & CAP_BUFFER, CAP_BUFFER)
  assert.equal(capsOf(a, ino) & CAP_BUFFER, 0)
  assert.equal(wb.attr.size, 6 * 1024 * 1024)
  const got = await b.read(wb.fh, 0, 6 * 1024 * 1024)
  assert.equal(got.subarray(0, 2).toString(), 'A1')
  assert.ok(got.subarray(2, 1024 * 1024).every(x => x === 0), 'the hole reads as zeros')
  assert.ok(got.subarray(1024 * 1024).equals(big), 'the 5 MiB A buffered, byte for byte')
  await b.write(wb.fh, 0, Buffer.from('B1'))
  // A's open revokes B's BUFFER: B flushes first.
  const ra = await a.open(ino, O_RDONLY)
  assert.equal((await a.read(ra.fh, 0, 2)).toString(), 'B1')
  for (const [c, fh] of [[a, ra.fh], [a, wa.fh], [b, wb.fh]] as const) await c.release(fh)
})

test('best-effort, a holder that ignores the revoke: the other open waits until the holder is evicted (session timeout)', { timeout: 60000 }, async () => {
  const b = await client()
  const ino = await file(b, null)
  // The holder lives in a child process, so it can die without closing anything.
  const holder = libraryChild(srv, `
    const r = await c.open(${ino}, ${O_WRONLY})
    await c.write(r.fh, 0, Buffer.from('held and flushed'))
    await c.fsync(r.fh, false)
    await c.write(r.fh, 16, Buffer.from(', then buffered'))
    log('holding')
    await new Promise(() => {})`, { ignoreRevokes: true })
  await holder.waitFor(/^holding$/, 20000)
  let done = false
  const t0 = performance.now()
  const opening = b.open(ino, O_WRONLY).then(r => { done = true; return r })
  // A live holder that never answers keeps its BUFFER as long as it lives (no deadline).
  await new Promise(resolve => setTimeout(resolve, SESSION_TIMEOUT_MS + 1000))
  assert.equal(done, false, 'B got in while the holder was alive and holding')
  holder.child.kill('SIGKILL')
  await holder.exit()
  const killedAt = performance.now()
  const rb = await opening
  const sinceKill = performance.now() - killedAt
  assert.ok(sinceKill < SESSION_TIMEOUT_MS + 2000, `B's open came ${sinceKill.toFixed(0)} ms after the holder died (session timeout ${SESSION_TIMEOUT_MS} ms)`)
  assert.ok(sinceKill > SESSION_TIMEOUT_MS / 2, `B's open came ${sinceKill.toFixed(0)} ms after the holder died, before it could have been evicted`)
  // Even a holder that ignores revokes flushes writes older than a second by
  // itself (flushAgeMs), and it lived for longer than that: all of it is there.
  assert.equal((await b.read(rb.fh, 0, 100)).toString(), 'held and flushed, then buffered')
  assert.equal(rb.attr.size, 31)
  await b.write(rb.fh, 31, Buffer.from(' by B'))
  await b.release(rb.fh)
  assert.equal((await b.getattr(ino)).size, 36)
  assert.ok(performance.now() - t0 < 20000)
})

test('never: the writer gets no BUFFER; each write reaches the server before it returns', { timeout: 30000 }, async () => {
  const a = await client()
  const b = await client()
  const ino = await file(b, 'never')
  const wa = await a.open(ino, O_WRONLY)
  assert.equal(capsOf(a, ino), 0, 'no capability under "never"')
  const { value: rb, ms } = await timed(b.open(ino, O_RDONLY))
  // Nothing to wait for: not a revoke, not the session timeout (2 s).
  assert.ok(ms < 1500, `B's open took ${ms.toFixed(0)} ms`)
  let expect = ''
  for (let i = 0; i < 5; i++) {
    const chunk = `write ${i};`
    await a.write(wa.fh, expect.length, Buffer.from(chunk))
    expect += chunk
    // B's reads go to the store (B caches nothing either): each write is there at once.
    assert.equal((await b.getattr(ino)).size, expect.length)
    assert.equal((await b.read(rb.fh, 0, 1000)).toString(), expect)
  }
  // And a second writer is not held up either; the writes interleave as issued.
  const wb = await b.open(ino, O_WRONLY)
  await b.write(wb.fh, 0, Buffer.from('WRITE'))
  const ra = await a.open(ino, O_RDONLY)
  assert.equal((await a.read(ra.fh, 0, 1000)).toString(), 'WRITE' + expect.slice(5))
  for (const [c, fh] of [[a, wa.fh], [a, ra.fh], [b, rb.fh], [b, wb.fh]] as const) await c.release(fh)
})

test('never: two writers of one file at different offsets; neither sets the size back', {
  timeout: 30000
}, async () => {
  const a = await client()
  const b = await client()
  const ino = await file(b, 'never')
  const wa = await a.open(ino, O_WRONLY)
  const wb = await b.open(ino, O_WRONLY)
  await a.write(wa.fh, 0, Buffer.from('A'.repeat(10)))
  await b.write(wb.fh, 100, Buffer.from('B'.repeat(10)))
  // (Not asked through A: a getattr there would refresh A's idea of the size.)
  assert.equal((await b.getattr(ino)).size, 110)
  await a.write(wa.fh, 10, Buffer.from('a'.repeat(10)))
  assert.equal((await b.getattr(ino)).size, 110, 'A\'s second write set the size back')
  const rb = await b.open(ino, O_RDONLY)
  const got = await b.read(rb.fh, 0, 200)
  assert.equal(got.length, 110)
  assert.equal(got.subarray(100).toString(), 'B'.repeat(10))
  for (const [c, fh] of [[a, wa.fh], [b, wb.fh], [b, rb.fh]] as const) await c.release(fh)
})
