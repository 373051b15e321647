// Answering the protocol: handlers registered by method name, typed by the
// table, behind the checks every request passes first. A handler gets its
// arguments as the table's tuple, never what the peer sent unchecked: a
// value of the wrong shape is answered with EINVAL naming the method and
// the argument, and the handler does not run.
//
// The table lists the errnos each method answers with; an error reply with
// one it does not list is reported once per method and errno (unlisted), so
// the table and the code cannot drift apart quietly.

import type { ErrnoName } from '../common/errors'
import type { RpcConnection, RpcServer } from '../rpc'
import { checkArgs, checkHead, HEAD_LENGTH, type RequestHead } from './method'
import { type ArgsOf, isMethodName, mayAnswer, METHODS, type MethodName, type MutationName, type QueryName, type ReplyOf } from './table'

type Answer<R> = R | Promise<R>
export type QueryHandler<M extends QueryName> = (args: ArgsOf<M>, conn: RpcConnection) => Answer<ReplyOf<M>>
export type MutationHandler<M extends MutationName> = (args: ArgsOf<M>, conn: RpcConnection, head: RequestHead) => Answer<ReplyOf<M>>

export interface ProtocolServerOptions {
  /** An error reply with an errno the table does not list for its method (told once per pair). */
  unlisted?: (method: MethodName, code: ErrnoName) => void
}

export class ProtocolServer {
  private readonly answered = new Set<MethodName>()
  private readonly reported = new Set<string>()

  constructor (private readonly rpc: RpcServer, opts: ProtocolServerOptions = {}) {
    const unlisted = opts.unlisted
    if (unlisted !== undefined) {
      rpc.onErrorReply((method, code) => {
        if (!isMethodName(method) || mayAnswer(method, code)) return
        const key = `${method} ${code}`
        if (this.reported.has(key)) return
        this.reported.add(key)
        unlisted(method, code)
      })
    }
  }

  /** Answer a method that changes nothing. */
  handle<M extends QueryName> (method: M, fn: QueryHandler<M>): void {
    const entry = METHODS[method]
    this.answered.add(method)
    this.rpc.handle(method, (args, conn) => {
      checkArgs(method, entry, args)
      return fn(args as ArgsOf<M>, conn)
    })
  }

  /** Answer a mutating method: its request header is checked and handed over apart from its arguments. */
  handleMutation<M extends MutationName> (method: M, fn: MutationHandler<M>): void {
    const entry = METHODS[method]
    this.answered.add(method)
    this.rpc.handle(method, (args, conn) => {
      const head = checkHead(method, args)
      checkArgs(method, entry, args, HEAD_LENGTH)
      return fn(args.slice(HEAD_LENGTH) as ArgsOf<M>, conn, head)
    })
  }

  /** Methods of the table nothing answers yet (a server answers them all: see CudeleServer.listen). */
  unanswered (): MethodName[] {
    return (Object.keys(METHODS) as MethodName[]).filter(m => !this.answered.has(m))
  }
}
