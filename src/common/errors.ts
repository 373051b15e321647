// Errors that carry the errno a filesystem user will see, and the reason in words.

import { constants } from 'os'

export type ErrnoName = keyof typeof constants.errno

export class FsError extends Error {
  /** Positive errno value, e.g. 2 for ENOENT. */
  readonly errno: number
  constructor (readonly code: ErrnoName, message: string) {
    // These are expected outcomes (ENOENT on lookup, EEXIST on create), thrown
    // on hot paths: skip the stack trace, which costs more than the operation.
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(`${code}: ${message}`)
    Error.stackTraceLimit = limit
    this.name = 'FsError'
    this.errno = constants.errno[code]
  }
}

export function fsError (code: ErrnoName, message: string): FsError {
  return new FsError(code, message)
}

/** The positive errno for any thrown value: FsError and store errors keep theirs, anything else is EIO. */
export function errnoOf (err: unknown): number {
  if (err instanceof FsError) return err.errno
  const code = (err as { errno?: unknown, code?: unknown })?.code ?? (err as { errno?: unknown })?.errno
  if (typeof code === 'string' && code in constants.errno) return constants.errno[code as ErrnoName]
  return constants.errno.EIO
}

export const E = constants.errno
