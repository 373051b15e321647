// Addresses: parsing with clear errors, loopback-only binds unless allowed,
// stale unix sockets replaced and live ones refused.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'fs'
import path from 'path'
import { connect, DEFAULT_ADDRESS, formatAddress, isLoopbackIp, parseAddress, RpcServer } from '../../src/rpc'
import { sockDir, spawnChild } from './helpers'

test('parseAddress: the forms it takes', () => {
  assert.deepEqual(parseAddress('unix:/run/cudele.sock'), { kind: 'unix', path: '/run/cudele.sock' })
  assert.deepEqual(parseAddress('unix:rel/x.sock'), { kind: 'unix', path: path.resolve('rel/x.sock') })
  assert.deepEqual(parseAddress('tcp:127.0.0.1:6789'), { kind: 'tcp', host: '127.0.0.1', port: 6789 })
  assert.deepEqual(parseAddress('tcp:localhost'), { kind: 'tcp', host: 'localhost', port: 6789 })
  assert.deepEqual(parseAddress('tcp::7000'), { kind: 'tcp', host: '127.0.0.1', port: 7000 })
  assert.deepEqual(parseAddress('tcp:7000'), { kind: 'tcp', host: '127.0.0.1', port: 7000 })
  assert.deepEqual(parseAddress('tcp:[::1]:80'), { kind: 'tcp', host: '::1', port: 80 })
  assert.deepEqual(parseAddress('tcp:[::1]'), { kind: 'tcp', host: '::1', port: 6789 })
  assert.deepEqual(parseAddress('tcp:my-host.example:0'), { kind: 'tcp', host: 'my-host.example', port: 0 })
  assert.deepEqual(parseAddress(DEFAULT_ADDRESS), { kind: 'tcp', host: '127.0.0.1', port: 6789 })
  for (const a of ['unix:/a/b.sock', 'tcp:127.0.0.1:1', 'tcp:[::1]:2']) assert.equal(formatAddress(parseAddress(a)), a)
})

test('parseAddress: errors say what is wrong and what is expected', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['/tmp/x.sock', /no scheme/],
    ['http://x', /unknown scheme 'http:'/],
    ['unix:', /no socket path after unix:/],
    ['tcp:host:99999', /port '99999' is not a number from 0 to 65535/],
    ['tcp:host:http', /port 'http'/],
    ['tcp:::1:80', /IPv6 host must be written in brackets/],
    ['tcp:[::1', /closing '\]'/],
    ['tcp:[zz]:1', /'zz' is not an IPv6 address/],
    ['tcp:a b:1', /'a b' is not a host name/]
  ]
  for (const [text, why] of bad) {
    assert.throws(() => parseAddress(text), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EINVAL', text)
      assert.match(err.message, why, text)
      assert.match(err.message, /expected unix:\/path\/to\.sock or tcp:HOST:PORT/)
      return true
    })
  }
  assert.throws(() => parseAddress(`unix:/tmp/${'x'.repeat(200)}.sock`), { code: 'ENAMETOOLONG', message: /at most 107/ })
})

test('loopback addresses', () => {
  for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackIp(ip), true, ip)
  for (const ip of ['0.0.0.0', '10.0.0.1', '::', '128.0.0.1', '::ffff:10.0.0.1', 'localhost']) assert.equal(isLoopbackIp(ip), false, ip)
})

test('non-loopback binds are refused unless allowed', async () => {
  const s = new RpcServer({ log: () => {} })
  await assert.rejects(s.listen('tcp:0.0.0.0:0'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EACCES')
    assert.match(err.message, /refusing to listen on tcp:0\.0\.0\.0:0: it is not a loopback address, and the RPC protocol has no authentication or encryption; allow remote listening explicitly/)
    return true
  })
  await s.close()
  const open = new RpcServer({ log: () => {}, allowRemote: true })
  try {
    const a = await open.listen('tcp:0.0.0.0:0')
    assert.equal(a.kind, 'tcp')
    const c = await connect(`tcp:127.0.0.1:${(a as { port: number }).port}`)
    c.close()
  } finally { await open.close() }
  const local = new RpcServer({ log: () => {} })
  try {
    const a = await local.listen('tcp:localhost:0')
    assert.ok((a as { port: number }).port > 0)
    await assert.rejects(local.listen('tcp:localhost:0'), { code: 'EISCONN' })
  } finally { await local.close() }
})

test('a stale unix socket is replaced; a live one is refused; other files are left alone', async () => {
  const d = sockDir()
  try {
    const addr = `unix:${d.sock()}`
    // A server killed with SIGKILL leaves its socket file behind.
    const dead = spawnChild(['serve', addr])
    await dead.ready
    dead.child.kill('SIGKILL')
    await dead.exited
    assert.ok(fs.lstatSync(d.sock()).isSocket())
    const s1 = new RpcServer({ log: () => {} })
    s1.handle('who', () => 's1')
    await s1.listen(addr)
    try {
      const c = await connect(addr)
      assert.equal(await c.call('who'), 's1')
      // A second server on the same path is refused, and the first keeps serving.
      const s2 = new RpcServer({ log: () => {} })
      await assert.rejects(s2.listen(addr), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'EADDRINUSE')
        assert.equal(err.message, `EADDRINUSE: cannot listen on ${addr}: a server is running there (it accepted a connection); stop it first`)
        return true
      })
      assert.equal(await c.call('who'), 's1')
      c.close()
    } finally { await s1.close() }
    assert.equal(fs.existsSync(d.sock()), false, 'close() removes the socket file')

    const file = d.sock('plain-file')
    fs.writeFileSync(file, 'data')
    const s3 = new RpcServer({ log: () => {} })
    await assert.rejects(s3.listen(`unix:${file}`), { code: 'EEXIST', message: /exists and is not a socket/ })
    assert.equal(fs.readFileSync(file, 'utf8'), 'data')
    await assert.rejects(s3.listen(`unix:${d.dir}/no/such/dir/x.sock`), { code: 'ENOENT', message: /the directory .*no\/such\/dir does not exist/ })
  } finally { d.cleanup() }
})

test('a TCP port in use is refused clearly', async () => {
  const s1 = new RpcServer({ log: () => {} })
  const a = await s1.listen('tcp:127.0.0.1:0')
  try {
    const s2 = new RpcServer({ log: () => {} })
    await assert.rejects(s2.listen(a), { code: 'EADDRINUSE', message: `EADDRINUSE: cannot listen on ${formatAddress(a)}: the address is in use by another process` })
  } finally { await s1.close() }
})
