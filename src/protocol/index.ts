// The cudele protocol: what a client may ask a server and what it hears
// back, as one typed table (table.ts, the group files, notifies.ts). Code
// outside src/protocol uses this file only.
//
//   const attr = await call(conn, 'lookup', [parent, name])           // Promise<Attr>
//   await send(conn, mutationRequest('mknod', [p, n, mode, 0, caller]), { tid, firstUnsafe, replay: false })
//   onNotify(conn, 'revoke', ([ino, bits]) => ...)                      // checked: [number, number]
//
//   const ps = new ProtocolServer(rpc, { unlisted: (m, code) => ... })
//   ps.handle('getattr', ([ino], conn) => mds.getattr(ino))           // ino: number, checked before
//   ps.handleMutation('unlink', ([parent, name], conn, head) => ...)   // head: tid, firstUnsafe, replay
//
// Beneath it src/rpc carries any value; this layer is where a value from a
// peer becomes a typed argument, or EINVAL naming the method and argument.

export type { StatusReport } from './admin'
export type { ClassCallReply } from './classes'
export type { MergeResult } from './cudele'
export { call, send } from './client'
export { checkArgs, COMMON_ERRNOS, type Method, type Notify, type RequestHead } from './method'
export type { CapsGrant, OpenReply, SessionOpened } from './namespace'
export { SESSION_NAME_MAX } from './namespace'
export { NOTIFIES, notify, onNotify, type NotifyArgs, type NotifyName, type NotifyTarget } from './notifies'
export { ProtocolServer, type MutationHandler, type ProtocolServerOptions, type QueryHandler } from './server'
export {
  type ArgsOf, checkedMutation, isMethodName, isMutationName, mayAnswer, METHODS, type MethodName, type MutationName,
  mutationRequest, type MutationRequest, type QueryName, type ReplyOf
} from './table'
