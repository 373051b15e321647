// The errors a Lua call can end with. Each carries the errno a user sees (via
// FsError) and, for script errors, the script name and line, parsed from
// Lua's own "name:line: message" form.

import { ErrnoName, FsError } from '../common/errors'

/**
 * What went wrong:
 *   syntax    the script does not compile (EINVAL)
 *   runtime   the script raised an error or made a mistake (EIO, or the
 *             errno a host function failed with when the script let it through)
 *   timeout   the time or instruction budget ran out (ETIMEDOUT); also a call
 *             the watchdog stopped by terminating its worker
 *   memory    the sandbox memory budget ran out (ENOMEM)
 *   missing   the script has no such function (ENOENT)
 *   crashed   the worker failed in a way that is not the script's fault (EIO)
 *   closed    the pool was closed before the call ran (ECANCELED)
 */
export type LuaErrorKind = 'syntax' | 'runtime' | 'timeout' | 'memory' | 'missing' | 'crashed' | 'closed'

const DEFAULT_ERRNO: Record<LuaErrorKind, ErrnoName> = {
  syntax: 'EINVAL',
  runtime: 'EIO',
  timeout: 'ETIMEDOUT',
  memory: 'ENOMEM',
  missing: 'ENOENT',
  crashed: 'EIO',
  closed: 'ECANCELED'
}

export class LuaError extends FsError {
  /** The message without the errno prefix, as Lua put it ("counter.lua:12: attempt to ..."). */
  readonly reason: string
  /** The script's chunk name when the message names it ("counter.lua"). */
  readonly script: string | undefined
  /** The line in that script, when known. */
  readonly line: number | undefined

  constructor (readonly kind: LuaErrorKind, reason: string, opts: { errno?: ErrnoName, script?: string } = {}) {
    super(opts.errno ?? DEFAULT_ERRNO[kind], reason)
    this.name = 'LuaError'
    this.reason = reason
    const where = parseWhere(reason)
    this.script = where?.script ?? opts.script
    this.line = where?.line
  }
}

/** "name:12: rest" → { script: name, line: 12 }. */
export function parseWhere (message: string): { script: string, line: number } | null {
  const m = /^([^:\n]+):(\d+):/.exec(message)
  return m === null ? null : { script: m[1], line: Number(m[2]) }
}

/** A plain object that survives postMessage; rebuilt into a LuaError on the other side. */
export interface WireError {
  kind: LuaErrorKind
  reason: string
  errno?: ErrnoName
  script?: string
}

export function fromWire (e: WireError): LuaError {
  return new LuaError(e.kind, e.reason, { errno: e.errno, script: e.script })
}
