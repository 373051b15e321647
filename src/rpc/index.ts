// RPC between cudele clients and servers: a framed, versioned binary protocol
// over unix sockets and TCP, with pipelining and batching. It carries any
// value the codec knows; what cudele's methods take and answer is
// src/protocol's (the protocol table), which is how code outside src/rpc
// calls and answers them.
//
//   const server = new RpcServer({ log })            // loopback only unless allowRemote
//   server.handle('echo', args => args)               // args: unknown[], whatever the peer sent
//   server.onConnection(conn => { conn.data = newSession(conn); conn.on('close', r => ...) })
//   await server.listen('unix:/run/cudele.sock')      // or 'tcp:127.0.0.1:6789'
//
//   const conn = await connect('unix:/run/cudele.sock', { timeoutMs: 5000 })
//   conn.onNotify('invalidate', ([ino]) => ...)       // register right after connect (or in setup)
//   const v = await conn.call('echo', [1, 'name'])    // rejects with the server's FsError
//   conn.notify('release', [ino])                      // one way, either direction
//   conn.on('close', reason => ...)                    // pending calls reject with ENOTCONN
//
// Either side can call, notify and handle. There is no reconnection here: the
// session layer calls connect() again and replays. See frame.ts for the wire
// format, values.ts for the value encoding, connection.ts for pipelining and
// closing, handshake.ts, dispatch.ts (answering), outbox.ts (batching and
// backpressure), heartbeat.ts, and server.ts for listening.

export { Address, DEFAULT_ADDRESS, DEFAULT_PORT, formatAddress, isLoopbackIp, parseAddress, toAddress } from './address'
export { connect, ConnectOptions } from './connect'
export { CallOptions, CloseReason, ConnectionOptions, ConnectionStats, PeerInfo, RpcConnection } from './connection'
export { fromWire, toWireError } from './errors'
export { DEFAULT_MAX_FRAME, FrameType, PROTOCOL_MAJOR, PROTOCOL_MINOR, PROTOCOL_NAME } from './frame'
export { AnyNotifyHandler, ErrorReplyListener, Handlers, MethodHandler, NotifyHandler, RequestHandler } from './handlers'
export { RpcServer, ServerOptions } from './server'
export { decodeValue, encodeValue, Value } from './values'
