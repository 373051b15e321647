// What one entry of the protocol table says about a method or a notify: its
// arguments (names and shapes, hence the argument tuple's type), its reply's
// type, whether it mutates, the errnos it answers with, and what it does.
// The group files (namespace.ts, cudele.ts, ...) are lists of these; the
// checks here are what the server runs on every request before its handler.
//
// Mutating methods travel as [tid, firstUnsafe, replay, ...args]: the
// client's transaction id, the oldest transaction it still keeps for replay,
// and whether this is a replay after a reconnect (a replayed create sends the
// inode number it got the first time instead of true). The client keeps them
// until the server says they are safe and sends them again after a
// reconnect; the server recognises the ones it already carried out.

import { type ErrnoName, FsError } from '../common/errors'
import { bool, describe, either, type Shape, uint, whyNot } from './shape'
import { tid } from './vocabulary'

/** One argument: its name (for messages) and its shape. */
export interface Arg<T> {
  readonly name: string
  readonly shape: Shape<T>
}

export function arg<T> (name: string, shape: Shape<T>): Arg<T> {
  return { name, shape }
}

/** Stands for the reply's type (nothing at run time: replies come from the server and are trusted). */
export interface Reply<R> { readonly reply?: R }
export function reply<R> (): Reply<R> { return {} }

/** A method's entry; A is its argument tuple, R its reply, Mut whether it mutates. */
export interface Method<A extends unknown[], R, Mut extends boolean> {
  readonly doc: string
  readonly args: readonly Arg<unknown>[]
  /** The arguments' shape tests, in order (what checkArgs runs). */
  readonly tests: ReadonlyArray<(v: unknown) => boolean>
  /** How many trailing arguments may be left out (they are then undefined). */
  readonly optionalArgs: number
  readonly mutates: Mut
  /**
   * A create: its reply is the new inode's Attr, and its replay after a
   * reconnect asks for the same inode number (the replay field of the header).
   */
  readonly creates: boolean
  /** The errnos this method answers with besides the ones every method may (COMMON_ERRNOS). */
  readonly errnos: readonly ErrnoName[]
  /** Types only. */
  readonly types?: { args: A, reply: R }
}

/** A notify's entry: one-way, no reply. */
export interface Notify<A extends unknown[]> {
  readonly doc: string
  /** Who sends it. */
  readonly from: 'server' | 'client'
  readonly args: readonly Arg<unknown>[]
  readonly tests: ReadonlyArray<(v: unknown) => boolean>
  readonly optionalArgs: number
  readonly types?: { args: A }
}

/**
 * What any method may answer with: EINVAL (arguments of the wrong shape, see
 * checkArgs), EIO (a fault in the server, logged there with its stack),
 * EOPNOTSUPP (a method this server does not have), ENOTCONN (the connection
 * closed before the reply), ETIMEDOUT (no reply in the caller's time).
 */
export const COMMON_ERRNOS: readonly ErrnoName[] = ['EINVAL', 'EIO', 'EOPNOTSUPP', 'ENOTCONN', 'ETIMEDOUT']

/** The argument types of a list of Args, as a tuple. */
export type ArgTypes<P extends readonly Arg<unknown>[]> = { -readonly [K in keyof P]: P[K] extends Arg<infer T> ? T : never }

interface Spec<P extends readonly Arg<unknown>[], R> {
  doc: string
  args: P
  reply: Reply<R>
  errnos: readonly ErrnoName[]
}

function testsOf (args: readonly Arg<unknown>[]): Array<(v: unknown) => boolean> {
  return args.map(a => a.shape.is)
}

function optionalCount (args: readonly Arg<unknown>[]): number {
  let n = 0
  for (let i = args.length - 1; i >= 0 && args[i].shape.is(undefined); i--) n++
  return n
}

/** A method that changes nothing: the client simply calls it again after a reconnect. */
export function query<const P extends readonly Arg<unknown>[], R> (spec: Spec<P, R>): Method<ArgTypes<P>, R, false> {
  return { doc: spec.doc, args: spec.args, tests: testsOf(spec.args), optionalArgs: optionalCount(spec.args), mutates: false, creates: false, errnos: spec.errnos }
}

/** A method that changes something: it carries the request header and is replayed until safe. */
export function mutation<const P extends readonly Arg<unknown>[], R> (spec: Spec<P, R> & { creates?: boolean }): Method<ArgTypes<P>, R, true> {
  return { doc: spec.doc, args: spec.args, tests: testsOf(spec.args), optionalArgs: optionalCount(spec.args), mutates: true, creates: spec.creates === true, errnos: spec.errnos }
}

export function notification<const P extends readonly Arg<unknown>[]> (spec: { doc: string, from: 'server' | 'client', args: P }): Notify<ArgTypes<P>> {
  return { doc: spec.doc, from: spec.from, args: spec.args, tests: testsOf(spec.args), optionalArgs: optionalCount(spec.args) }
}

// ---- checks ----

function badArg (what: string, i: number, a: Arg<unknown>, v: unknown): FsError {
  return new FsError('EINVAL', `${what}: argument ${i + 1} (${a.name}) ${whyNot(a.shape, v)}`)
}

/**
 * Check the arguments args[from..] against an entry; throws FsError EINVAL
 * naming the method (`what`) and the argument at fault. Trailing arguments
 * the entry allows to be left out may be; arguments past the entry's are
 * ignored (a later minor version may add optional ones).
 */
export function checkArgs (what: string, entry: Pick<Method<unknown[], unknown, boolean>, 'args' | 'tests' | 'optionalArgs'>, args: readonly unknown[], from = 0): void {
  const tests = entry.tests
  if (args.length - from < tests.length - entry.optionalArgs) throw missingArg(what, entry, Math.max(0, args.length - from))
  for (let i = 0; i < tests.length; i++) {
    if (!tests[i](args[from + i])) throw badArg(what, i, entry.args[i], args[from + i])
  }
}

function missingArg (what: string, entry: Pick<Method<unknown[], unknown, boolean>, 'args' | 'optionalArgs'>, given: number): FsError {
  const needed = entry.args.length - entry.optionalArgs
  const takes = `${entry.optionalArgs > 0 ? 'at least ' : ''}${needed} argument${needed === 1 ? '' : 's'}`
  return new FsError('EINVAL', `${what}: takes ${takes}, got ${given} (argument ${given + 1}, ${entry.args[given].name}, is missing)`)
}

/** The header of a mutating request. */
export interface RequestHead {
  tid: number
  /** The oldest request the client still keeps (0: none); below it, all are safe. */
  firstUnsafe: number
  /** false for a first send, true for a replay, the inode number for a replayed create. */
  replay: boolean | number
}

/** How many values the header takes in front of a mutation's arguments. */
export const HEAD_LENGTH = 3
const replayShape = either(bool, uint)

/** The header of a mutating request, checked (EINVAL naming the field). */
export function checkHead (what: string, args: readonly unknown[]): RequestHead {
  const [t, firstUnsafe, replay] = args
  if (!tid.is(t)) throw new FsError('EINVAL', `${what}: the request's transaction id ${whyNot(tid, t)}`)
  if (!uint.is(firstUnsafe)) throw new FsError('EINVAL', `${what}: the request's oldest unsafe transaction ${whyNot(uint, firstUnsafe)}`)
  if (!replayShape.is(replay)) throw new FsError('EINVAL', `${what}: the request's replay flag must be true, false or an inode number, not ${describe(replay)}`)
  return { tid: t, firstUnsafe, replay }
}
