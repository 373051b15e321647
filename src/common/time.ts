// Wall-clock time with nanosecond resolution.
//
// Date.now() has millisecond resolution; timestamps in a filesystem carry
// nanoseconds (utimensat, stat). We anchor the monotonic high-resolution clock
// to the wall clock once, and re-anchor when the two drift apart (e.g. the
// system clock was set), so timestamps keep ns resolution and stay close to
// the wall clock.

export interface Timespec {
  s: number
  ns: number
}

const REANCHOR_DRIFT_MS = 50
let anchorWallNs = BigInt(Date.now()) * 1_000_000n
let anchorHr = process.hrtime.bigint()

export function now (): Timespec {
  const hr = process.hrtime.bigint()
  let wall = anchorWallNs + (hr - anchorHr)
  const dateMs = Date.now()
  const driftMs = Number(wall / 1_000_000n) - dateMs
  if (driftMs > REANCHOR_DRIFT_MS || driftMs < -REANCHOR_DRIFT_MS) {
    anchorWallNs = BigInt(dateMs) * 1_000_000n
    anchorHr = hr
    wall = anchorWallNs
  }
  return { s: Number(wall / 1_000_000_000n), ns: Number(wall % 1_000_000_000n) }
}

export function compareTs (a: Timespec, b: Timespec): number {
  return a.s !== b.s ? a.s - b.s : a.ns - b.ns
}
