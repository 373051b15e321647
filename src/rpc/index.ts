// RPC between cudele clients and servers: a framed, versioned binary protocol
// over unix sockets and TCP with pipelining and batching. See frame.ts for
// the wire format, values.ts for the value encoding, connection.ts for
// batching, backpressure and closing.

export { Address, DEFAULT_ADDRESS, DEFAULT_PORT, formatAddress, isLoopbackIp, parseAddress, toAddress } from './address'
export { connect, ConnectOptions } from './connect'
export { CallOptions, CloseReason, ConnectionOptions, ConnectionStats, PeerInfo, RpcConnection } from './connection'
export { fromWire, toWireError } from './errors'
export { DEFAULT_MAX_FRAME, FrameType, PROTOCOL_MAJOR, PROTOCOL_MINOR, PROTOCOL_NAME } from './frame'
export { AnyNotifyHandler, Handlers, MethodHandler, NotifyHandler, RequestHandler } from './handlers'
export { RpcServer, ServerOptions } from './server'
export { decodeValue, encodeValue, Value } from './values'
