// Measuring how fast a new epoch reaches subscribers (Malacology Fig. 6):
// the time from the commit of an update (its store batch resolved) until
// every subscriber has it. Subscribers are given as registrations, so the
// same measurement serves in-process listeners now and remote subscribers
// (through the RPC layer) later.

import { performance } from 'perf_hooks'

/**
 * Sets up one subscriber. It must call onEpoch(epoch) when that subscriber
 * has the epoch live (for a remote one: when the client side has it), and
 * returns how to stop it.
 */
export type SubscriberRegistration = (onEpoch: (epoch: number) => void) => (() => void) | Promise<() => void>

export interface PropagationRun {
  /** Updates made one after another, each awaited. */
  updates: number
  subscribers: SubscriberRegistration[]
  /** Make update i; resolve with the epoch that holds it, once committed. */
  propose: (i: number) => Promise<number>
  /** performance.now() when the store batch holding an epoch resolved (e.g. from MonitorOptions.onCommit). */
  commitTimeOf: (epoch: number) => number | undefined
  /** Give up on an update that has not reached every subscriber after this long. Default 10,000 ms. */
  timeoutMs?: number
}

export interface LatencySummary {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

export interface PropagationResult {
  /** Commit until every subscriber has the epoch, ms. */
  propagationMs: LatencySummary
  /** propose() called until it resolved, ms: the proposal cost (interval, durable commit, local delivery). */
  proposeMs: LatencySummary
  /** The raw propagation samples, in update order. */
  samples: number[]
}

export async function measurePropagation (run: PropagationRun): Promise<PropagationResult> {
  const timeoutMs = run.timeoutMs ?? 10_000
  /** Per subscriber: the epochs it got and when, in order (in-process ones get them before propose resolves). */
  const arrivals: Array<Array<{ epoch: number, at: number }>> = run.subscribers.map(() => [])
  let wake: (() => void) | null = null
  const stops = await Promise.all(run.subscribers.map(async (register, i) => await register(epoch => {
    const mine = arrivals[i]
    if (mine.length === 0 || epoch > mine[mine.length - 1].epoch) mine.push({ epoch, at: performance.now() })
    wake?.()
  })))
  /** When the last subscriber got `epoch` or a newer one (a remote one may skip epochs); null if one has not yet. */
  const reachedAll = (epoch: number): number | null => {
    let last = 0
    for (const mine of arrivals) {
      const first = mine.find(a => a.epoch >= epoch)
      if (first === undefined) return null
      last = Math.max(last, first.at)
    }
    return last
  }
  const propagation: number[] = []
  const propose: number[] = []
  try {
    for (let i = 0; i < run.updates; i++) {
      const t0 = performance.now()
      const epoch = await run.propose(i)
      propose.push(performance.now() - t0)
      let at = reachedAll(epoch)
      if (at === null) {
        at = await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => {
            wake = null
            reject(new Error(`epoch ${epoch} did not reach every subscriber within ${timeoutMs} ms`))
          }, timeoutMs)
          wake = () => {
            const t = reachedAll(epoch)
            if (t === null) return
            wake = null
            clearTimeout(timer)
            resolve(t)
          }
        })
      }
      const committedAt = run.commitTimeOf(epoch)
      if (committedAt === undefined) throw new Error(`no commit time for epoch ${epoch}`)
      propagation.push(at - committedAt)
      // Only the latest arrival of each subscriber matters from here on.
      for (const mine of arrivals) mine.splice(0, mine.length - 1)
    }
  } finally {
    for (const stop of stops) stop()
  }
  return { propagationMs: summarize(propagation), proposeMs: summarize(propose), samples: propagation }
}

export function summarize (xs: readonly number[]): LatencySummary {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number): number => s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]
  return {
    count: s.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: s.length === 0 ? NaN : s[s.length - 1],
    mean: s.length === 0 ? NaN : s.reduce((a, b) => a + b, 0) / s.length
  }
}
