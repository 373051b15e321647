// A tiny monitor for the class tests, with the contract of src/mon/types.ts
// that the class runtime depends on: propose runs the change at commit time
// on a copy of the value, persists the new epoch in the store, pushes it to
// subscribers and only then resolves; subscribe tells the current epoch at
// once, synchronously. Maps persist in pool `fakemon` (one object per map),
// so a monitor opened again on the same store finds them, as the real one does.

import type { JsonValue, LogEntry, LogLevel, MapChange, MapState, MonitorApi, Proposer } from '../../src/mon/types'
import type { LocalReads, ObjectStore } from '../../src/store/types'

const POOL = 'fakemon'

export class FakeMonitor implements MonitorApi {
  private readonly states = new Map<string, MapState>()
  private readonly listeners = new Map<string, Set<(s: MapState) => void>>()
  private readonly entries: LogEntry[] = []
  private seq = 0
  /** Serializes proposals, like the monitor's one-round-at-a-time. */
  private chain: Promise<unknown> = Promise.resolve()

  private constructor (private readonly store: ObjectStore & LocalReads) {}

  static async open (store: ObjectStore & LocalReads): Promise<FakeMonitor> {
    const mon = new FakeMonitor(store)
    await store.createPool(POOL)
    for (const name of await store.list(POOL, { limit: 1000 })) {
      const bytes = store.readSync(POOL, name, 0, 1 << 24)
      if (bytes !== null) mon.states.set(name, JSON.parse(Buffer.from(bytes).toString()) as MapState)
    }
    return mon
  }

  get (map: string): MapState {
    return this.states.get(map) ?? { name: map, epoch: 0, value: null, committedAtMs: 0 }
  }

  maps (): string[] {
    return [...this.states.keys()].sort()
  }

  async propose (map: string, change: MapChange, _by: Proposer): Promise<MapState> {
    const run = this.chain.then(async () => {
      const cur = this.get(map)
      const value = change(JSON.parse(JSON.stringify(cur.value)) as JsonValue)
      const state: MapState = { name: map, epoch: cur.epoch + 1, value: deepFreeze(JSON.parse(JSON.stringify(value))), committedAtMs: Date.now() }
      await this.store.submit([{ pool: POOL, name: map, ops: [{ op: 'writeFull', data: Buffer.from(JSON.stringify(state)) }] }], { durable: true })
      this.states.set(map, state)
      for (const l of this.listeners.get(map) ?? []) l(state)
      return state
    })
    this.chain = run.catch(() => {})
    return await run
  }

  subscribe (map: string, fromEpoch: number, listener: (state: MapState) => void): () => void {
    let set = this.listeners.get(map)
    if (set === undefined) { set = new Set(); this.listeners.set(map, set) }
    set.add(listener)
    const cur = this.get(map)
    if (cur.epoch > fromEpoch) listener(cur)
    return () => { set?.delete(listener) }
  }

  async setWriters (): Promise<void> {}
  writers (): string[] | null { return null }
  async getEpoch (map: string, epoch: number): Promise<MapState | null> {
    const cur = this.get(map)
    return cur.epoch === epoch ? cur : null
  }

  log (level: LogLevel, who: string, message: string): void {
    this.entries.push({ seq: ++this.seq, timeMs: Date.now(), level, who, message })
  }

  recentLog (limit: number, afterSeq = 0): LogEntry[] {
    return this.entries.filter(e => e.seq > afterSeq).slice(-limit)
  }

  followLog (afterSeq: number, listener: (entry: LogEntry) => void): () => void {
    for (const e of this.entries) if (e.seq > afterSeq) listener(e)
    return () => {}
  }
}

function deepFreeze<T> (v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v as object)) deepFreeze(x)
    Object.freeze(v)
  }
  return v
}
