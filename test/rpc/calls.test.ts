// Calls, replies, errors and notifies over both transports: pipelining with
// out-of-order replies, batching, error codes, unknown methods, notifies both
// ways, per-connection handlers, timeouts, pings and heartbeats.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import net from 'net'
import { FsError } from '../../src/common/errors'
import { StoreError } from '../../src/store/types'
import { connect, RpcConnection } from '../../src/rpc'
import { encodeFrame, FrameParser, FrameType } from '../../src/rpc/frame'
import { sleep, sockDir, startServer, TRANSPORTS, waitFor } from './helpers'

for (const transport of TRANSPORTS) {
  test(`${transport}: thousands of concurrent calls from several clients, replies out of order`, async () => {
    const env = await startServer(transport)
    try {
      env.server.handle('delayEcho', async ([ms, v]) => {
        await sleep(ms as number)
        return v
      })
      const clients = await Promise.all([1, 2, 3, 4].map(() => env.client()))
      const order: number[] = []
      const calls: Array<Promise<void>> = []
      for (let i = 0; i < 2000; i++) {
        const c = clients[i % clients.length]
        const payload = { i, name: `f${i}\xe9\xff`, data: Buffer.alloc(i % 50, i & 0xff) }
        const ms = (i * 7919) % 20
        calls.push(c.call('delayEcho', [ms, payload]).then(v => {
          assert.deepStrictEqual(v, payload)
          order.push(i)
        }))
      }
      await Promise.all(calls)
      assert.equal(order.length, 2000)
      assert.notDeepEqual(order, [...order].sort((a, b) => a - b), 'replies came back in order: handlers did not overlap')
      for (const c of clients) assert.equal(c.stats().pendingCalls, 0)
    } finally { await env.done() }
  })

  test(`${transport}: frames written in one turn go out in one write, both ways`, async () => {
    const env = await startServer(transport)
    try {
      let serverConn: RpcConnection | undefined
      env.server.onConnection(c => { serverConn = c })
      env.server.handle('inc', ([n]) => (n as number) + 1)
      const c = await env.client()
      await c.call('inc', [0])
      const before = c.stats()
      const serverBefore = (serverConn as RpcConnection).stats()
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => c.call('inc', [i])))
      assert.deepEqual(results, Array.from({ length: 200 }, (_, i) => i + 1))
      const after = c.stats()
      const serverAfter = (serverConn as RpcConnection).stats()
      assert.equal(after.framesSent - before.framesSent, 200)
      assert.equal(after.writes - before.writes, 1, 'the client wrote 200 calls in one write')
      assert.equal(serverAfter.framesSent - serverBefore.framesSent, 200)
      // The server replies to each chunk it reads with one write: a handful at most.
      const serverWrites = serverAfter.writes - serverBefore.writes
      assert.ok(serverWrites <= serverAfter.reads - serverBefore.reads && serverWrites <= 5, `server wrote ${serverWrites} times`)
    } finally { await env.done() }
  })

  test(`${transport}: thrown errors come back as FsError with the same code and message; the connection stays up`, async () => {
    const env = await startServer(transport)
    try {
      env.server.handle('fs', () => { throw new FsError('ENOENT', 'no entry "x" in directory 1') })
      env.server.handle('fsAsync', async () => { await sleep(1); throw new FsError('ENOTEMPTY', 'directory 7 is not empty') })
      env.server.handle('store', () => Promise.reject(new StoreError('EEXIST', 'object p/x exists')))
      env.server.handle('node', async () => fs.promises.readFile('/nonexistent/cudele-rpc-test'))
      env.server.handle('bug', () => { const o: any = undefined; return o.field })
      env.server.handle('string', () => { throw 'a bare string' }) // eslint-disable-line no-throw-literal
      env.server.handle('odd', () => { throw Object.assign(new Error('custom'), { code: 'ERR_SOMETHING' }) })
      env.server.handle('ok', () => 'fine')
      const c = await env.client()
      const expectErr = async (method: string, code: string, message: string | RegExp): Promise<void> => {
        await assert.rejects(c.call(method), (err: Error) => {
          assert.ok(err instanceof FsError, `${method}: ${err.constructor.name}`)
          assert.equal(err.code, code)
          assert.equal(err.errno, require('os').constants.errno[code])
          if (typeof message === 'string') assert.equal(err.message, message)
          else assert.match(err.message, message)
          return true
        })
      }
      await expectErr('fs', 'ENOENT', 'ENOENT: no entry "x" in directory 1')
      await expectErr('fsAsync', 'ENOTEMPTY', 'ENOTEMPTY: directory 7 is not empty')
      await expectErr('store', 'EEXIST', 'EEXIST: object p/x exists')
      await expectErr('node', 'ENOENT', "ENOENT: no such file or directory, open '/nonexistent/cudele-rpc-test'")
      await expectErr('bug', 'EIO', /^EIO: bug: Cannot read properties of undefined/)
      await expectErr('string', 'EIO', 'EIO: string: a bare string')
      await expectErr('odd', 'EIO', 'EIO: odd: custom')
      assert.equal(await c.call('ok'), 'fine')
      // Expected failures are not logged; bugs are, with their stack.
      assert.equal(env.logs.filter(l => /ENOENT|ENOTEMPTY|EEXIST/.test(l)).length, 0, env.logs.join('\n'))
      assert.ok(env.logs.some(l => /bug from .* failed: TypeError: Cannot read properties/.test(l) && /at /.test(l)), env.logs.join('\n'))
    } finally { await env.done() }
  })

  test(`${transport}: unknown methods get EOPNOTSUPP; the catch-all handler sees the method name`, async () => {
    const env = await startServer(transport)
    try {
      env.server.handle('known', () => 1)
      const c = await env.client()
      await assert.rejects(c.call('nope', [1, 2]), { code: 'EOPNOTSUPP', message: "EOPNOTSUPP: unknown method 'nope'" })
      assert.equal(await c.call('known'), 1)
      env.server.onRequest((method, args) => ({ method, args }))
      assert.deepEqual(await c.call('anything', [1, 'x']), { method: 'anything', args: [1, 'x'] })
      assert.equal(await c.call('known'), 1)
    } finally { await env.done() }
  })

  test(`${transport}: notifies go both ways, in order with replies`, async () => {
    const env = await startServer(transport)
    try {
      const fromClients: unknown[][] = []
      env.server.onNotify('hello', (args) => fromClients.push(args))
      // The server invalidates, then replies: the client sees them in that order.
      env.server.handle('touch', ([ino], conn) => {
        conn.notify('invalidate', [ino])
        return 'touched'
      })
      env.server.onConnection(conn => conn.notify('welcome', ['map', 7]))
      const seen: string[] = []
      // Handlers registered right after connect() resolves see what the server sent with its welcome.
      const c = await env.client()
      c.onNotify('invalidate', ([ino]) => seen.push(`invalidate ${ino as number}`))
      c.onNotify((method, args) => seen.push(`${method} ${JSON.stringify(args)}`))
      await waitFor(() => seen.length > 0, 2000, 'the welcome notify')
      assert.deepEqual(seen, ['welcome ["map",7]'])
      // So do handlers registered in setup.
      const early: unknown[] = []
      const c2 = await connect(env.addr, { setup: conn => conn.onNotify('welcome', args => early.push(args)) })
      await waitFor(() => early.length > 0, 2000, 'the welcome notify in setup')
      c2.close()
      const r = await c.call('touch', [42]).then(v => { seen.push(String(v)); return v })
      assert.equal(r, 'touched')
      assert.deepEqual(seen.slice(1), ['invalidate 42', 'touched'])
      for (let i = 0; i < 100; i++) assert.equal(c.notify('hello', [i, 'x']), true)
      await waitFor(() => fromClients.length === 100, 2000, 'the client notifies')
      assert.deepEqual(fromClients.map(a => a[0]), Array.from({ length: 100 }, (_, i) => i))
      env.server.broadcast('bye', [1])
      await waitFor(() => seen.includes('bye [1]'), 2000, 'the broadcast')
      // A notify without a handler is dropped and logged once.
      c.notify('nobody', [])
      c.notify('nobody', [])
      await c.call('touch', [1])
      assert.equal(env.logs.filter(l => /no handler for notify 'nobody'/.test(l)).length, 1, env.logs.join('\n'))
      // A failing notify handler is logged and changes nothing else.
      env.server.onNotify('boom', () => { throw new Error('notify handler bug') })
      c.notify('boom', [])
      assert.equal(await c.call('touch', [2]), 'touched')
      assert.ok(env.logs.some(l => /notify boom .* failed: Error: notify handler bug/.test(l)), env.logs.join('\n'))
      c.close()
      assert.equal(c.notify('late', []), false)
    } finally { await env.done() }
  })

  test(`${transport}: per-connection handlers, the data slot, the peer's version`, async () => {
    const env = await startServer(transport)
    try {
      env.server.handle('who', (args, conn) => (conn.data as { session?: string } | undefined)?.session ?? 'nobody')
      let n = 0
      env.server.onConnection(conn => {
        conn.data = { session: `s${++n}` }
        if (n === 2) conn.handle('who', () => 'overridden')
      })
      const a = await env.client({ name: 'test-client' })
      const b = await env.client()
      assert.equal(await a.call('who'), 's1')
      assert.equal(await b.call('who'), 'overridden')
      assert.equal(a.remoteVersion?.major, 1)
      assert.equal(a.remoteVersion?.pid, process.pid)
      const [conn] = [...env.server.connections].filter(c => c.remoteVersion?.name === 'test-client')
      assert.ok(conn !== undefined, 'the server knows the client by name')
      assert.match(conn.peer, /test-client pid \d+/)
      // Calls work from the server to the client too.
      a.handle('clientSide', ([x]) => (x as number) * 2)
      assert.equal(await conn.call('clientSide', [21]), 42)
    } finally { await env.done() }
  })

  test(`${transport}: call timeouts, pings, and values that cannot be sent`, async () => {
    const env = await startServer(transport, { maxFrameBytes: 1024 * 1024 })
    try {
      let release: (() => void) | undefined
      env.server.handle('wait', () => new Promise<string>(resolve => { release = () => resolve('late') }))
      env.server.handle('map', () => new Map())
      env.server.handle('big', () => Buffer.alloc(2 * 1024 * 1024))
      env.server.handle('len', ([b]) => (b as Buffer).length)
      const c = await env.client({ maxFrameBytes: 1024 * 1024 })
      await assert.rejects(c.call('wait', [], { timeoutMs: 50 }), { code: 'ETIMEDOUT', message: /wait: no reply from .* within 50 ms/ })
      release?.() // the late reply is dropped quietly
      assert.equal(await c.call('len', [Buffer.alloc(1000)]), 1000)
      const rtt = await c.ping()
      assert.ok(rtt >= 0 && rtt < 1000)
      // The caller's bad arguments: rejected at once, nothing sent.
      await assert.rejects(c.call('len', [new Set()]), { code: 'EINVAL', message: /len: cannot encode a Set at \[0\]/ })
      await assert.rejects(c.call('len', [Buffer.alloc(2 * 1024 * 1024)]), { code: 'EMSGSIZE', message: /exceeds the limit of 1048576 bytes/ })
      assert.throws(() => c.notify('x', [Buffer.alloc(2 * 1024 * 1024)]), { code: 'EMSGSIZE' })
      // The handler's bad results: an error reply, and a log line.
      await assert.rejects(c.call('map'), { code: 'EIO', message: /map: the reply cannot be sent: cannot encode a Map/ })
      await assert.rejects(c.call('big'), { code: 'EMSGSIZE', message: /big: the reply cannot be sent/ })
      assert.equal(await c.call('len', [Buffer.alloc(10)]), 10)
      assert.ok(env.logs.some(l => /reply to map .* cannot be sent/.test(l)))
    } finally { await env.done() }
  })
}

/** A fake server: does the handshake, then never answers anything. */
async function silentServer (path: string): Promise<{ server: net.Server, sockets: net.Socket[] }> {
  const sockets: net.Socket[] = []
  const server = net.createServer(s => {
    sockets.push(s)
    const parser = new FrameParser(1 << 20, (buf, start) => {
      if (buf[start + 1] === FrameType.HELLO) s.write(encodeFrame(FrameType.WELCOME, 0, w => w.value({ proto: 'cudele-rpc', minor: 0, name: 'silent', pid: 0 })))
      return true
    })
    s.on('data', d => parser.push(d))
    s.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(path, resolve))
  return { server, sockets }
}

test('heartbeat: a silent peer is closed after the timeout; pending calls reject with ENOTCONN', async () => {
  const d = sockDir()
  const { server, sockets } = await silentServer(d.sock())
  try {
    const logs: string[] = []
    const c = await connect(`unix:${d.sock()}`, { heartbeatMs: 40, heartbeatTimeoutMs: 150, log: m => logs.push(m) })
    const closed = new Promise(resolve => c.once('close', resolve))
    const t0 = Date.now()
    await assert.rejects(c.call('anything'), (err: FsError) => {
      assert.equal(err.code, 'ENOTCONN')
      assert.match(err.message, /anything: the connection to unix:.* closed before the reply came \(heartbeat timeout: nothing received from .* for \d+ ms\)/)
      return true
    })
    const elapsed = Date.now() - t0
    assert.ok(elapsed >= 140 && elapsed < 3000, `closed after ${elapsed} ms`)
    assert.deepEqual(await closed, c.closeReason)
    assert.equal(c.closeReason?.code, 'ETIMEDOUT')
    assert.ok(logs.some(l => /nothing received for/.test(l)))
  } finally {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => server.close(resolve))
    d.cleanup()
  }
})

test('heartbeat: an idle but healthy connection stays up, pings answered both ways', async () => {
  const env = await startServer('unix', { heartbeatMs: 30, heartbeatTimeoutMs: 100 })
  try {
    env.server.handle('x', () => 1)
    const c = await env.client({ heartbeatMs: 30, heartbeatTimeoutMs: 100 })
    const before = c.stats()
    await sleep(400)
    assert.equal(c.closed, false)
    assert.ok(c.stats().framesReceived > before.framesReceived, 'pings or pongs arrived')
    assert.equal(await c.call('x'), 1)
    assert.deepEqual(env.logs, [])
  } finally { await env.done() }
})
