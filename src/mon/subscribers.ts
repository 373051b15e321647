// Subscribers of maps: in-process listeners (the RPC server registers one per
// remote subscriber through the same call). Each listener gets each epoch
// once and in order: it remembers the last epoch it was given, so a state it
// already has (from the synchronous first call of subscribe) is not sent again.

import { fsError } from '../common/errors'
import type { MapState } from './types'
import { MAX_SUBSCRIBERS_PER_MAP } from './options'

interface Subscriber {
  listener: (state: MapState) => void
  lastEpoch: number
  active: boolean
}

export class Subscribers {
  private readonly byMap = new Map<string, Set<Subscriber>>()

  /** onError: a listener threw (the others are still told). */
  constructor (private readonly onError: (map: string, epoch: number, err: unknown) => void) {}

  add (map: string, fromEpoch: number, listener: (state: MapState) => void, current: MapState): () => void {
    let set = this.byMap.get(map)
    if (set === undefined) {
      set = new Set()
      this.byMap.set(map, set)
    }
    if (set.size >= MAX_SUBSCRIBERS_PER_MAP) {
      throw fsError('EAGAIN', `map ${map}: already ${MAX_SUBSCRIBERS_PER_MAP} subscribers, the limit`)
    }
    const sub: Subscriber = { listener, lastEpoch: fromEpoch, active: true }
    set.add(sub)
    if (current.epoch > fromEpoch) this.tell(map, sub, current)
    const registered = set
    return () => {
      if (!sub.active) return
      sub.active = false
      registered.delete(sub)
      if (registered.size === 0 && this.byMap.get(map) === registered) this.byMap.delete(map)
    }
  }

  /** Tell every subscriber of state.name about a new epoch. */
  publish (state: MapState): void {
    const set = this.byMap.get(state.name)
    if (set === undefined) return
    // A snapshot: a listener may subscribe or unsubscribe others while we go.
    for (const sub of [...set]) {
      if (sub.active && state.epoch > sub.lastEpoch) this.tell(state.name, sub, state)
    }
  }

  count (map: string): number {
    return this.byMap.get(map)?.size ?? 0
  }

  private tell (map: string, sub: Subscriber, state: MapState): void {
    sub.lastEpoch = state.epoch
    try {
      sub.listener(state)
    } catch (err) {
      this.onError(map, state.epoch, err)
    }
  }
}
