// The protocol table: every method a cudele server answers, by name. Its
// entries (in the group files) give each method's argument tuple and reply
// types, whether it mutates, the errnos it answers with, and the shapes the
// server checks its arguments against. Clients call through client.ts and
// servers answer through server.ts, both typed by this table: adding a
// method is one entry here and its handler. The notifies are in notifies.ts.

import { type ErrnoName, FsError } from '../common/errors'
import { adminMethods } from './admin'
import { classMethods } from './classes'
import { cudeleMethods } from './cudele'
import { checkArgs, COMMON_ERRNOS, type Method } from './method'
import { namespaceMethods } from './namespace'

export const METHODS = {
  ...namespaceMethods,
  ...cudeleMethods,
  ...adminMethods,
  ...classMethods
} as const

type Table = typeof METHODS
export type MethodName = keyof Table
/** Methods that change nothing: called again as they are after a reconnect. */
export type QueryName = { [K in MethodName]: Table[K] extends Method<unknown[], unknown, false> ? K : never }[MethodName]
/** Methods that change something: sent with a request header and replayed until safe. */
export type MutationName = { [K in MethodName]: Table[K] extends Method<unknown[], unknown, true> ? K : never }[MethodName]
/** A method's argument tuple (for a mutation, without the request header). */
export type ArgsOf<M extends MethodName> = NonNullable<Table[M]['types']>['args']
export type ReplyOf<M extends MethodName> = NonNullable<Table[M]['types']>['reply']

/** One mutating request, its method and arguments together (what a client keeps for replay). */
export type MutationRequest = { [M in MutationName]: { method: M, args: ArgsOf<M> } }[MutationName]

/** Tie a mutation's name to its arguments (the one place the pair is put together). */
export function mutationRequest<M extends MutationName> (method: M, args: ArgsOf<M>): MutationRequest {
  return { method, args } as MutationRequest
}

/**
 * A mutating request that came from outside (a request log read back, say):
 * its method a change the table knows and its arguments of their shapes, or
 * FsError EINVAL saying what is not.
 */
export function checkedMutation (method: string, args: unknown[]): MutationRequest {
  if (!isMutationName(method)) throw new FsError('EINVAL', `${method} is not a change the protocol knows`)
  checkArgs(method, METHODS[method], args)
  // Checked just above: the arguments are of the method's shapes.
  return { method, args } as MutationRequest
}

export function isMethodName (name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(METHODS, name)
}

export function isMutationName (name: string): name is MutationName {
  return isMethodName(name) && METHODS[name].mutates
}

/** Does the table say this method may answer with this errno? */
export function mayAnswer (method: MethodName, code: ErrnoName): boolean {
  return COMMON_ERRNOS.includes(code) || METHODS[method].errnos.includes(code)
}
