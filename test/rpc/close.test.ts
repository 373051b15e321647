// Connections that end: pending calls reject with ENOTCONN saying why,
// whichever side closes and however; connect() fails clearly and can be
// called again with the same address once a server is back.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'net'
import { FsError } from '../../src/common/errors'
import { connect, RpcServer, CloseReason } from '../../src/rpc'
import { sleep, sockDir, spawnChild, startServer, TRANSPORTS, waitFor } from './helpers'

/** The same outcome, with a handler attached at once (a rejection nobody handles yet fails the test run). */
function settle<T> (p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

function isNotConn (why: RegExp) {
  return (err: Error): boolean => {
    assert.ok(err instanceof FsError, String(err))
    assert.equal(err.code, 'ENOTCONN')
    assert.match(err.message, why)
    return true
  }
}

for (const transport of TRANSPORTS) {
  test(`${transport}: server close rejects pending calls with ENOTCONN and the reason`, async () => {
    const env = await startServer(transport)
    try {
      env.server.handle('hang', () => new Promise(() => {}))
      const c = await env.client()
      const reasons: CloseReason[] = []
      c.on('close', r => reasons.push(r))
      const pending = Array.from({ length: 50 }, () => settle(c.call('hang')))
      await waitFor(() => [...env.server.connections].some(s => s.stats().activeRequests === 50), 2000, 'the calls to arrive')
      const t0 = Date.now()
      await env.server.close('maintenance')
      assert.ok(Date.now() - t0 < 1900, `server.close took ${Date.now() - t0} ms`)
      for (const p of pending) await assert.rejects(p, isNotConn(/hang: the connection to .* closed before the reply came \(the peer closed the connection: maintenance\)/))
      assert.equal(reasons.length, 1)
      assert.deepEqual(reasons[0], { code: 'ENOTCONN', message: 'the peer closed the connection: maintenance', remote: true })
      await assert.rejects(c.call('hang'), isNotConn(/hang: the connection to .* is closed \(the peer closed the connection: maintenance\)/))
      await assert.rejects(c.ping(), { code: 'ENOTCONN' })
    } finally { await env.done() }
  })

  test(`${transport}: a client's close rejects its own pending calls; the server sees the close`, async () => {
    const env = await startServer(transport)
    try {
      env.server.handle('hang', () => new Promise(() => {}))
      const serverSide: CloseReason[] = []
      env.server.onConnection(conn => conn.on('close', r => serverSide.push(r)))
      const c = await env.client()
      const p = c.call('hang')
      await sleep(20)
      c.close('done here')
      await assert.rejects(p, isNotConn(/\(done here\)/))
      assert.deepEqual(c.closeReason, { code: 'ENOTCONN', message: 'done here', remote: false })
      await waitFor(() => serverSide.length === 1, 2000, 'the server to see the close')
      assert.equal(serverSide[0].message, 'the peer closed the connection: done here')
      await waitFor(() => env.server.connections.size === 0, 2000, 'the server to forget the connection')
      c.close() // again: nothing happens
    } finally { await env.done() }
  })
}

test('a server process killed with SIGKILL: pending calls reject with ENOTCONN; connect() again once a new server runs', async () => {
  for (const transport of ['unix', 'tcp'] as const) {
    const d = sockDir()
    try {
      const want = transport === 'unix' ? `unix:${d.sock()}` : 'tcp:127.0.0.1:0'
      const first = spawnChild(['serve', want])
      const addr = (await first.ready).replace(/^listening /, '')
      const c = await connect(addr)
      assert.equal(await c.call('pid'), first.child.pid)
      const closed = new Promise<CloseReason>(resolve => c.once('close', resolve))
      const pending = Array.from({ length: 20 }, () => settle(c.call('hang')))
      assert.deepEqual(await c.call('echo', [1, 'a']), [1, 'a'])
      first.child.kill('SIGKILL')
      for (const p of pending) await assert.rejects(p, isNotConn(/hang: the connection to .* closed before the reply came/))
      const reason = await closed
      assert.equal(reason.remote, true)
      await first.exited
      // Nobody there now (the unix socket file is left behind, stale).
      await assert.rejects(connect(addr, { timeoutMs: 2000 }), (err: FsError) => {
        assert.equal(err.code, 'ECONNREFUSED')
        assert.match(err.message, /cannot connect to .*: connection refused \(is the server running\?\)/)
        return true
      })
      if (transport === 'unix') {
        // A new server replaces the stale socket; the same address works again.
        const second = spawnChild(['serve', addr])
        try {
          assert.equal((await second.ready), `listening ${addr}`)
          const c2 = await connect(addr)
          assert.equal(await c2.call('pid'), second.child.pid)
          c2.close()
        } finally {
          second.child.kill('SIGKILL')
          await second.exited
        }
      }
    } finally { d.cleanup() }
  }
})

test('connect() errors: no socket, refused, a server that never answers the hello', async () => {
  const d = sockDir()
  try {
    await assert.rejects(connect(`unix:${d.sock('missing.sock')}`), { code: 'ENOENT', message: /cannot connect to unix:.*missing\.sock: no such socket \(is the server running\?\)/ })
    await assert.rejects(connect('tcp:127.0.0.1:1'), { code: 'ECONNREFUSED' })
    await assert.rejects(connect('bogus'), { code: 'EINVAL', message: /bad address 'bogus'/ })
    const sockets: net.Socket[] = []
    const mute = net.createServer(s => sockets.push(s))
    await new Promise<void>(resolve => mute.listen(d.sock('mute.sock'), resolve))
    try {
      const t0 = Date.now()
      await assert.rejects(connect(`unix:${d.sock('mute.sock')}`, { timeoutMs: 200 }), { code: 'ETIMEDOUT', message: /connecting to unix:.*mute\.sock timed out after 200 ms/ })
      assert.ok(Date.now() - t0 < 1000)
      await waitFor(() => sockets.length === 1 && sockets[0].destroyed === false, 1000, 'the socket')
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise(resolve => mute.close(resolve))
    }
  } finally { d.cleanup() }
})

test('a socket that never says hello is dropped after the handshake timeout, told why; server close reaches open clients', async () => {
  const d = sockDir()
  const server = new RpcServer({ log: () => {}, handshakeTimeoutMs: 100 })
  try {
    await server.listen(`unix:${d.sock()}`)
    // A raw socket that never says hello is dropped after the handshake timeout.
    const raw = net.connect(d.sock())
    let got = Buffer.alloc(0)
    raw.on('data', chunk => { got = Buffer.concat([got, chunk]) })
    const rawClosed = new Promise(resolve => raw.once('close', resolve))
    raw.on('error', () => {})
    await rawClosed
    assert.match(got.toString('latin1'), /no hello from client #1 on unix:.* within 100 ms/)
    const c = await connect(`unix:${d.sock()}`)
    assert.equal(c.closed, false)
    await server.close()
    await waitFor(() => c.closed, 2000, 'the client to see the close')
  } finally {
    await server.close()
    d.cleanup()
  }
})
