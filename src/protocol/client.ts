// Calling the server through the protocol table: the method name picks the
// argument tuple and the reply type. Underneath, the RPC connection carries
// any value (src/rpc); replies are the server's and are taken as the table
// says they are.

import type { CallOptions, RpcConnection } from '../rpc'
import type { RequestHead } from './method'
import type { ArgsOf, MutationRequest, QueryName, ReplyOf } from './table'

/** Call a method that changes nothing. Rejects with the server's FsError (or ENOTCONN, ETIMEDOUT). */
export function call<M extends QueryName> (conn: RpcConnection, method: M, args: ArgsOf<M>, opts?: CallOptions): Promise<ReplyOf<M>> {
  return conn.call(method, args, opts) as Promise<ReplyOf<M>>
}

/** Send a mutating request with its header; the reply is the method's. */
export function send<R extends MutationRequest> (conn: RpcConnection, request: R, head: RequestHead): Promise<ReplyOf<R['method']>> {
  return conn.call(request.method, [head.tid, head.firstUnsafe, head.replay, ...request.args]) as Promise<ReplyOf<R['method']>>
}
