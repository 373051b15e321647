// Invariants: what must hold at the boundaries between layers, checked
// where a broken one would otherwise do silent damage (an inode number handed
// out twice, two writers buffering one file, a journal trimmed past what it
// wrote). A broken invariant is a bug in cudele, not bad input: it throws
// InvariantError, which tests see at once and a server reports as EIO.

export class InvariantError extends Error {
  constructor (message: string) {
    super(`invariant broken: ${message}`)
    this.name = 'InvariantError'
  }
}

/** Throw InvariantError unless cond holds; `what` says what should have held (a function: built only on failure). */
export function invariant (cond: unknown, what: string | (() => string)): asserts cond {
  if (!cond) throw new InvariantError(typeof what === 'string' ? what : what())
}
