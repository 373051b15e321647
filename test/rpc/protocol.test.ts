// The wire protocol against peers that get it wrong: a different major
// version is refused on both sides with a clear message; malformed, oversized
// and foreign frames close only that connection, with a logged reason, and
// never the process; frames split anywhere reassemble.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'net'
import { connect } from '../../src/rpc'
import { encodeFrame, FrameParser, FrameType, PROTOCOL_MAJOR } from '../../src/rpc/frame'
import { Reader, Writer } from '../../src/rpc/values'
import { sleep, sockDir, startServer, TRANSPORTS, waitFor } from './helpers'

interface RawFrame { version: number, type: number, id: number, values: unknown[] }

/** A hand-driven peer: writes whatever bytes it is told, collects the frames it gets. */
function rawPeer (socket: net.Socket): { frames: RawFrame[], closed: Promise<void>, send: (b: Buffer) => void } {
  const frames: RawFrame[] = []
  const parser = new FrameParser(1 << 30, (buf, start, end) => {
    const r = new Reader(buf, start + 2, end)
    const id = r.varint()
    const values: unknown[] = []
    while (!r.done) values.push(r.value())
    frames.push({ version: buf[start], type: buf[start + 1], id, values })
    return true
  })
  socket.on('data', d => parser.push(d))
  socket.on('error', () => {})
  const closed = new Promise<void>(resolve => socket.once('close', () => resolve()))
  return { frames, closed, send: b => socket.write(b) }
}

function hello (version = PROTOCOL_MAJOR, minor = 0): Buffer {
  return encodeFrame(FrameType.HELLO, 0, w => w.value({ proto: 'cudele-rpc', minor, name: 'raw', pid: 4242 }), version)
}

function frame (type: number, id: number, ...values: unknown[]): Buffer {
  return encodeFrame(type, id, w => { for (const v of values) w.value(v) })
}

async function rawConnect (addr: string): Promise<net.Socket> {
  const m = /^unix:(.*)$/.exec(addr)
  const s = m !== null ? net.connect(m[1]) : net.connect(Number(addr.split(':')[2]), '127.0.0.1')
  await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  return s
}

for (const transport of TRANSPORTS) {
  test(`${transport}: a client of another major version is refused, and told why`, async () => {
    const env = await startServer(transport)
    try {
      const s = await rawConnect(env.addr)
      const peer = rawPeer(s)
      peer.send(hello(PROTOCOL_MAJOR + 1, 3))
      await peer.closed
      assert.equal(peer.frames.length, 1)
      const [bye] = peer.frames
      assert.equal(bye.type, FrameType.GOODBYE)
      assert.equal(bye.values[0], 'EPROTO')
      const expected = `protocol version mismatch: this server speaks cudele-rpc ${PROTOCOL_MAJOR}.0, the client (raw pid 4242) ${PROTOCOL_MAJOR + 1}.3; run the same major version on both sides`
      assert.equal(bye.values[1], expected)
      assert.ok(env.logs.some(l => l.includes(expected)), env.logs.join('\n'))
      assert.equal(env.server.connections.size, 0)
    } finally { await env.done() }
  })
}

test('a server of another major version is refused by connect(), and told why', async () => {
  const d = sockDir()
  const got: RawFrame[][] = []
  const server = net.createServer(s => {
    const peer = rawPeer(s)
    got.push(peer.frames)
    s.once('data', () => s.write(encodeFrame(FrameType.WELCOME, 0, w => w.value({ proto: 'cudele-rpc', minor: 1, name: 'future-server', pid: 7 }), PROTOCOL_MAJOR + 1)))
  })
  await new Promise<void>(resolve => server.listen(d.sock(), resolve))
  try {
    const logs: string[] = []
    await assert.rejects(connect(`unix:${d.sock()}`, { log: m => logs.push(m) }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EPROTO')
      assert.match(err.message, new RegExp(`^EPROTO: cannot connect to unix:.*: protocol version mismatch: the server at unix:.* \\(future-server pid 7\\) speaks cudele-rpc ${PROTOCOL_MAJOR + 1}\\.1, this client ${PROTOCOL_MAJOR}\\.0`))
      return true
    })
    assert.ok(logs.some(l => /protocol version mismatch/.test(l)))
    // The server got our hello, then our goodbye saying why.
    await waitFor(() => got[0]?.length === 2, 2000, 'the goodbye')
    assert.equal(got[0][0].type, FrameType.HELLO)
    assert.equal(got[0][1].type, FrameType.GOODBYE)
    assert.match(String(got[0][1].values[1]), /protocol version mismatch/)
  } finally {
    await new Promise(resolve => server.close(resolve))
    d.cleanup()
  }
})

/** Bytes after a good hello that must close the connection, and the log line that says why. */
const BAD: Array<[string, () => Buffer, RegExp]> = [
  ['unknown frame type', () => encodeFrame(0x42, 1), /unexpected unknown\(0x42\) frame/],
  ['request args not an array', () => frame(FrameType.REQUEST, 1, 'echo', 5), /the arguments of echo are not an array/],
  ['truncated value', () => encodeFrame(FrameType.REQUEST, 1, w => { w.value('echo'); w.u8(0x0b); w.varint(3); w.value(1) }), /malformed frame: .*runs past the end|truncated/],
  ['unknown value tag', () => encodeFrame(FrameType.REQUEST, 1, w => { w.value('echo'); w.u8(0x1f) }), /malformed frame: unknown value tag 0x1f/],
  ['method not a string', () => frame(FrameType.REQUEST, 1, 7, []), /malformed frame: expected a string/],
  ['frame too short', () => Buffer.from([0, 0, 0, 1, PROTOCOL_MAJOR]), /a frame of 1 bytes, too short for a header/],
  ['second hello', () => hello(), /unexpected hello frame/],
  ['version changes', () => encodeFrame(FrameType.REQUEST, 1, w => { w.value('echo'); w.value([]) }, PROTOCOL_MAJOR + 1), /protocol version 2 after agreeing on 1/],
  ['oversized frame', () => Buffer.from([0x10, 0, 0, 0, PROTOCOL_MAJOR, FrameType.REQUEST]), /a frame of 268435456 bytes, over the limit of 67108864 bytes/],
  ['varint id too long', () => Buffer.from([0, 0, 0, 11, PROTOCOL_MAJOR, FrameType.PING, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), /varint longer than 8 bytes/]
]

for (const transport of TRANSPORTS) {
  test(`${transport}: malformed and oversized frames close only that connection, with a logged reason`, async () => {
    const env = await startServer(transport)
    try {
      env.server.handle('echo', args => args)
      const good = await env.client()
      for (const [what, bytes, why] of BAD) {
        const s = await rawConnect(env.addr)
        const peer = rawPeer(s)
        peer.send(hello())
        await waitFor(() => peer.frames.length === 1, 2000, `${what}: the welcome`)
        assert.equal(peer.frames[0].type, FrameType.WELCOME)
        // A good request first: it is answered.
        peer.send(frame(FrameType.REQUEST, 9, 'echo', ['ok']))
        await waitFor(() => peer.frames.length === 2, 2000, `${what}: the reply`)
        const before = env.logs.length
        peer.send(bytes())
        await peer.closed
        const last = peer.frames[peer.frames.length - 1]
        assert.equal(last.type, FrameType.GOODBYE, what)
        assert.match(String(last.values[1]), why, what)
        assert.ok(env.logs.slice(before).some(l => /closing the connection to raw pid 4242/.test(l) && why.test(l)), `${what}: ${env.logs.slice(before).join('\n')}`)
        // Everyone else carries on.
        assert.deepEqual(await good.call('echo', [what]), [what])
      }
    } finally { await env.done() }
  })
}

test('peers that do not speak the protocol are turned away at once', async () => {
  const env = await startServer('tcp')
  try {
    env.server.handle('echo', args => args)
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /the first frame claims 1195725856 bytes; the peer does not speak cudele-rpc/],
      [frame(FrameType.REQUEST, 1, 'echo', []), /expected a hello frame, got request/],
      [encodeFrame(FrameType.HELLO, 0, w => w.value({ proto: 'other' })), /not cudele-rpc's/]
    ]
    for (const [bytes, why] of cases) {
      const s = await rawConnect(env.addr)
      const peer = rawPeer(s)
      const before = env.logs.length
      peer.send(bytes)
      await peer.closed
      assert.ok(env.logs.slice(before).some(l => why.test(l)), env.logs.slice(before).join('\n'))
    }
    const c = await env.client()
    assert.deepEqual(await c.call('echo', [1]), [1])
  } finally { await env.done() }
})

test('frames split at every byte boundary, and many frames in one chunk, parse the same', async () => {
  const w = new Writer()
  const frames: Buffer[] = []
  for (let i = 0; i < 50; i++) {
    frames.push(frame(FrameType.REQUEST, i + 1, `m${i}`, [i, 'x'.repeat(i * 37), Buffer.alloc(i * 100, i)]))
  }
  for (const f of frames) w.raw(f)
  const stream = Buffer.from(w.take())
  const expect = frames.map(f => f.subarray(4).toString('hex'))
  const collect = (chunks: Buffer[]): string[] => {
    const out: string[] = []
    const p = new FrameParser(1 << 20, (buf, start, end) => { out.push(buf.subarray(start, end).toString('hex')); return true })
    for (const c of chunks) p.push(c)
    assert.equal(p.buffered, 0)
    return out
  }
  assert.deepEqual(collect([stream]), expect)
  assert.deepEqual(collect([...stream].map(b => Buffer.from([b]))), expect)
  for (let seed = 1; seed < 30; seed++) {
    const chunks: Buffer[] = []
    let pos = 0
    let x = seed
    while (pos < stream.length) {
      x = (x * 1103515245 + 12345) % 2147483648
      const n = 1 + (x % 3000)
      chunks.push(stream.subarray(pos, pos + n))
      pos += n
    }
    assert.deepEqual(collect(chunks), expect, `seed ${seed}`)
  }
})

test('a real client trickling bytes one at a time is served', async () => {
  const env = await startServer('unix')
  try {
    env.server.handle('echo', args => args)
    const s = await rawConnect(env.addr)
    const peer = rawPeer(s)
    s.setNoDelay(true)
    const bytes = Buffer.concat([hello(), frame(FrameType.REQUEST, 5, 'echo', ['slow', Buffer.alloc(3000, 7)]), frame(FrameType.PING, 6)])
    for (const b of bytes) {
      s.write(Buffer.from([b]))
      if (b % 16 === 0) await sleep(0)
    }
    await waitFor(() => peer.frames.length === 3, 5000, 'welcome, reply, pong')
    assert.deepEqual(peer.frames.map(f => [f.type, f.id]), [[FrameType.WELCOME, 0], [FrameType.REPLY, 5], [FrameType.PONG, 6]])
    assert.deepEqual(peer.frames[1].values[0], ['slow', Buffer.alloc(3000, 7)])
    s.destroy()
  } finally { await env.done() }
})
