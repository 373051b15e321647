// The health of background work (trims, purges, merges of stored journals,
// the store's commits): what failed, since when, how often, and the retry
// schedule. Work that runs without a caller to report to never fails
// silently: it records its failures here, listeners (a server's cluster log,
// a mount's stderr) hear of every change of state, and `cudele status` shows
// what is not ok.

import { errnoOf } from './errors'

export type HealthState = 'ok' | 'warn' | 'error'

export interface HealthCheck {
  /** What the check is about, e.g. 'mds.trim'. */
  check: string
  state: HealthState
  message: string
  /** Since when it has been in this state (ms since the epoch). */
  sinceMs: number
  /** Failures in a row (0 once it works again). */
  failures: number
}

export type HealthListener = (c: HealthCheck) => void

/** Failures in a row after which a warning becomes an error. */
const ERROR_AFTER_FAILURES = 5

export class Health {
  private readonly checks = new Map<string, HealthCheck>()
  private readonly listeners: HealthListener[] = []

  /** Background work failed (it will be retried). Listeners hear of the first failure and of it turning into an error. */
  failed (check: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    const prev = this.checks.get(check)
    const failures = (prev?.failures ?? 0) + 1
    const state: HealthState = failures >= ERROR_AFTER_FAILURES || errnoOf(err) === 28 /* ENOSPC */ ? 'error' : 'warn'
    const c: HealthCheck = { check, state, message, sinceMs: prev && prev.state === state ? prev.sinceMs : Date.now(), failures }
    this.checks.set(check, c)
    if (!prev || prev.state !== state) this.tell(c)
  }

  /** The work succeeded: back to ok (listeners hear of the recovery). */
  ok (check: string): void {
    const prev = this.checks.get(check)
    if (!prev) return
    this.checks.delete(check)
    this.tell({ check, state: 'ok', message: `works again after ${prev.failures} failure(s)`, sinceMs: Date.now(), failures: 0 })
  }

  /** The checks that are not ok. */
  list (): HealthCheck[] {
    return [...this.checks.values()]
  }

  onChange (l: HealthListener): void {
    this.listeners.push(l)
  }

  private tell (c: HealthCheck): void {
    for (const l of this.listeners) l(c)
  }
}

/** How long background work waits before its next try after failures in a row: doubling, capped. */
export class Backoff {
  private failures = 0

  constructor (private readonly firstMs: number, private readonly maxMs: number) {}

  failed (): number {
    this.failures++
    return this.delayMs
  }

  succeeded (): void {
    this.failures = 0
  }

  get delayMs (): number {
    return this.failures === 0 ? 0 : Math.min(this.maxMs, this.firstMs * 2 ** (this.failures - 1))
  }
}

/**
 * Run background work until it succeeds: each failure is recorded in health
 * (under `check`) and the work tried again after the backoff; `stopped` ends
 * the retries (the server is shutting down).
 */
export function retryInBackground (work: () => Promise<void>, opts: { health: Health, check: string, backoff: Backoff, stopped: () => boolean }): void {
  const attempt = (): void => {
    if (opts.stopped()) return
    work().then(
      () => {
        opts.backoff.succeeded()
        opts.health.ok(opts.check)
      },
      (err: unknown) => {
        const delay = opts.backoff.failed()
        opts.health.failed(opts.check, new Error(`${err instanceof Error ? err.message : String(err)} (retried in ${delay} ms)`))
        setTimeout(attempt, delay).unref()
      }
    )
  }
  attempt()
}
