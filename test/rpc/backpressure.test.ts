// Backpressure: a peer that does not read makes senders wait with a bounded
// queue instead of growing memory, and a peer that sends requests without
// reading replies gets stopped at maxConcurrentRequests.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RpcConnection } from '../../src/rpc'
import { sleep, startServer, TRANSPORTS, waitFor } from './helpers'

const MiB = 1024 * 1024

function settle<T> (p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

/** Bytes in ArrayBuffers (Buffers live there): what an unbounded queue would grow. */
function bufferBytes (): number {
  return process.memoryUsage().arrayBuffers
}

for (const transport of TRANSPORTS) {
  test(`${transport}: 200 MiB of calls to a paused peer: the queue stays bounded, memory flat, everything arrives`, async () => {
    const bound = 8 * MiB
    const env = await startServer(transport)
    try {
      let serverConn: RpcConnection | undefined
      env.server.onConnection(conn => { serverConn = conn; conn.pauseReading() })
      let received = 0
      env.server.handle('put', ([b]) => { received += (b as Buffer).length; return (b as Buffer).length })
      const c = await env.client({ maxQueuedBytes: bound })
      await waitFor(() => serverConn !== undefined, 2000, 'the connection')
      const buf = Buffer.alloc(MiB, 0x5a)
      global.gc?.()
      const mem0 = bufferBytes()
      let maxQueued = 0
      let maxMem = 0
      const sample = (): void => {
        const st = c.stats()
        maxQueued = Math.max(maxQueued, st.queuedBytes)
        maxMem = Math.max(maxMem, bufferBytes() - mem0)
      }
      const calls: Array<Promise<unknown>> = []
      for (let i = 0; i < 200; i++) {
        calls.push(settle(c.call('put', [buf])))
        sample()
      }
      // Let the socket fill up and stall.
      for (let i = 0; i < 20; i++) { await sleep(10); sample() }
      const st = c.stats()
      assert.equal(st.pendingCalls, 200)
      assert.ok(st.deferred >= 100, `${st.deferred} calls wait in the FIFO`)
      assert.equal(received, 0)
      assert.ok(maxQueued <= bound + MiB + 64, `queued ${maxQueued} bytes, bound ${bound}`)
      assert.ok(maxMem < 48 * MiB, `buffer memory grew by ${(maxMem / MiB).toFixed(1)} MiB while 200 MiB wait`)
      assert.equal(c.writable, false)

      serverConn?.resumeReading()
      const sizes = await Promise.all(calls)
      assert.ok(sizes.every(n => n === MiB))
      assert.equal(received, 200 * MiB)
      assert.equal(c.stats().queuedBytes, 0)
      assert.equal(c.writable, true)
    } finally { await env.done() }
  })

  test(`${transport}: a producer pacing itself with whenWritable stalls while the peer does not read`, async () => {
    const bound = 4 * MiB
    const env = await startServer(transport, { maxQueuedBytes: bound })
    try {
      let serverConn: RpcConnection | undefined
      env.server.onConnection(conn => { serverConn = conn })
      const c = await env.client()
      let got = 0
      c.onNotify('chunk', ([b]) => { got += (b as Buffer).length })
      c.pauseReading()
      await waitFor(() => serverConn !== undefined, 2000, 'the connection')
      const conn = serverConn as RpcConnection
      const buf = Buffer.alloc(MiB, 1)
      let sent = 0
      let maxQueued = 0
      const producer = (async () => {
        for (let i = 0; i < 200; i++) {
          await conn.whenWritable()
          conn.notify('chunk', [buf])
          sent++
          maxQueued = Math.max(maxQueued, conn.stats().queuedBytes)
          assert.equal(conn.stats().deferred, 0, 'a paced producer never fills the FIFO')
        }
      })()
      // The producer stalls: kernel buffers and our queue take what they can, then nothing moves.
      let last = -1
      for (let i = 0; i < 100 && sent !== last; i++) {
        last = sent
        await sleep(100)
      }
      assert.equal(sent, last, 'the producer stalled')
      assert.ok(sent < 100, `the producer sent ${sent} MiB to a peer that does not read`)
      c.resumeReading()
      await producer
      await waitFor(() => got === 200 * MiB, 10_000, 'all chunks')
      assert.ok(maxQueued <= bound + MiB + 64, `queued ${maxQueued}`)
    } finally { await env.done() }
  })

  test(`${transport}: a client that does not read its replies stops the server reading at maxConcurrentRequests`, async () => {
    const env = await startServer(transport, { maxConcurrentRequests: 32, maxQueuedBytes: 2 * MiB })
    try {
      let serverConn: RpcConnection | undefined
      env.server.onConnection(conn => { serverConn = conn })
      const reply = Buffer.alloc(256 * 1024, 3)
      env.server.handle('get', () => reply)
      const c = await env.client()
      c.pauseReading()
      const calls = Array.from({ length: 400 }, () => settle(c.call('get')))
      let maxActive = 0
      let maxQueued = 0
      const framesSeen: number[] = []
      for (let i = 0; i < 30; i++) {
        await sleep(10)
        const st = serverConn?.stats()
        maxActive = Math.max(maxActive, st?.activeRequests ?? 0)
        maxQueued = Math.max(maxQueued, st?.queuedBytes ?? 0)
        framesSeen.push(st?.framesReceived ?? 0)
      }
      // All 400 requests are in the server's socket, but it stopped taking
      // them once 32 replies were waiting for a reader.
      assert.ok(maxActive > 0 && maxActive <= 32, `${maxActive} requests in progress at once`)
      const taken = framesSeen[framesSeen.length - 1] - 1
      assert.ok(taken < 400 && taken === framesSeen[10] - 1, `the server took ${framesSeen.join(',')} frames`)
      assert.ok(maxQueued <= 2 * MiB + reply.length + 64, `server queued ${maxQueued}`)
      c.resumeReading()
      const replies = await Promise.all(calls)
      assert.ok(replies.every(r => (r as Buffer).length === reply.length))
      assert.equal(serverConn?.stats().activeRequests, 0)
    } finally { await env.done() }
  })
}

test('slow handlers: the server takes at most maxConcurrentRequests at a time and catches up', async () => {
  const env = await startServer('unix', { maxConcurrentRequests: 64 })
  try {
    let open = false
    let active = 0
    let maxActive = 0
    const waiting: Array<() => void> = []
    env.server.handle('hold', async ([i]) => {
      active++
      maxActive = Math.max(maxActive, active)
      if (!open) await new Promise<void>(resolve => waiting.push(resolve))
      active--
      return i
    })
    const c = await env.client()
    const calls = Array.from({ length: 3000 }, (_, i) => settle(c.call('hold', [i])))
    await waitFor(() => active === 64, 2000, '64 handlers')
    await sleep(100)
    assert.equal(active, 64)
    open = true
    for (const w of waiting) w()
    const results = await Promise.all(calls)
    assert.deepEqual(results, Array.from({ length: 3000 }, (_, i) => i))
    assert.equal(maxActive, 64)
  } finally { await env.done() }
})
