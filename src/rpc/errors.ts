// How a thrown error crosses the wire, and how it comes back out.
//
// Anything thrown with an errno name as its string `code` (FsError, Node's
// system errors) or `errno` (StoreError) travels as that code and its message;
// the caller's promise rejects with an FsError of the same code and the same
// message. Anything else is a bug on the serving side: it travels as EIO with
// the method name in front of its message, and the server logs it with its
// stack.

import { constants } from 'os'
import { ErrnoName, FsError } from '../common/errors'

export function isErrnoName (code: unknown): code is ErrnoName {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(constants.errno, code)
}

export interface WireError {
  code: ErrnoName
  message: string
  /** Not an expected failure (no errno): worth a log line on the serving side. */
  internal: boolean
}

export function toWireError (err: unknown, method: string): WireError {
  const e = err as { code?: unknown, errno?: unknown, message?: unknown } | null | undefined
  const code = isErrnoName(e?.code) ? e?.code : isErrnoName(e?.errno) ? e?.errno : undefined
  let message = typeof e?.message === 'string' ? e.message : String(err)
  if (code !== undefined) {
    // FsError and Node put "CODE: " in front of the message; FsError on the
    // other side puts it back.
    if (message.startsWith(`${code}: `)) message = message.slice(code.length + 2)
    return { code, message, internal: false }
  }
  return { code: 'EIO', message: `${method}: ${message}`, internal: true }
}

/** The error a caller sees for an error reply. */
export function fromWire (code: string, message: string): FsError {
  if (isErrnoName(code)) return new FsError(code, message)
  // A peer on another platform may know errno names we don't.
  return new FsError('EIO', `${code}: ${message}`)
}
