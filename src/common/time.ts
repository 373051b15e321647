// Wall-clock time with sub-microsecond resolution.
//
// Date.now() has millisecond resolution; timestamps in a filesystem carry
// nanoseconds (utimensat, stat). We anchor the monotonic high-resolution clock
// (performance.now(), a double in ms) to the wall clock, and re-anchor when
// the two drift apart (the system clock was set). At today's epoch a double
// in ms resolves about a quarter of a microsecond, and reading it costs far
// less than BigInt arithmetic on process.hrtime.bigint().

export interface Timespec {
  s: number
  /** 0 ≤ ns < 1e9; may be negative seconds for times before 1970. */
  ns: number
}

const REANCHOR_DRIFT_MS = 50
/** Compare with Date.now() every this many calls (it is cheap, but not free). */
const CHECK_EVERY = 1024
let anchorMs = Date.now() - performance.now()
let calls = 0

export function now (): Timespec {
  let ms = anchorMs + performance.now()
  if (++calls >= CHECK_EVERY) {
    calls = 0
    const wall = Date.now()
    if (Math.abs(ms - wall) > REANCHOR_DRIFT_MS) {
      anchorMs = wall - performance.now()
      ms = wall
    }
  }
  const s = Math.floor(ms / 1000)
  const ns = Math.min(999_999_999, Math.round((ms - s * 1000) * 1e6))
  return { s, ns }
}

export function compareTs (a: Timespec, b: Timespec): number {
  return a.s !== b.s ? a.s - b.s : a.ns - b.ns
}

const RELATIME_MAX_AGE_S = 24 * 60 * 60

/**
 * relatime: does a read (or a directory listing) move atime? Only when atime
 * is not later than mtime or ctime, or is a day old; so a file read over and
 * over changes (and journals) nothing.
 */
export function relatimeDue (t: { atime: Timespec, mtime: Timespec, ctime: Timespec }, at: Timespec): boolean {
  return compareTs(t.atime, t.mtime) <= 0 || compareTs(t.atime, t.ctime) <= 0 || at.s - t.atime.s >= RELATIME_MAX_AGE_S
}
