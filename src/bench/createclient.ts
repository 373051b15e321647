// One library client of `cudele bench cudele`, in a process of its own (as
// the paper's clients are): it connects to a `cudele serve`, makes its own
// directory with the policy under test, and on the runner's word runs one
// phase at a time — create M files, persist (wait until everything is as
// durable as the policy says), apply (merge the client journal) — or, as an
// interfering client, creates files in other clients' directories.
//
// The runner forks this file and talks to it over the IPC channel (see
// ClientRequest / ClientReply); nothing is timed before the runner says go.

import { connect, type Connection } from '../index'
import type { Ino } from '../common/types'

export type Phase = 'create' | 'persist' | 'apply'

export interface ClientSetup {
  address: string
  /** Where this client's journals go (local_persist). */
  journalDir: string
  /** Its directory under the root (made here); null for an interfering client. */
  dir: string | null
  /** The policies.yml text for that directory (null: none, the defaults). */
  policy: string | null
  creates: number
  /** batch: createMany (append_client_journal in a decoupled subtree); mknod: one request or journal event per file. */
  method: 'batch' | 'mknod'
  /** Names per createMany. */
  batch: number
  /** mknod requests in flight at once. */
  inflight: number
}

export type ClientRequest =
  | { op: 'setup', setup: ClientSetup }
  | { op: 'phase', phase: Phase }
  | { op: 'interfere', dirs: Ino[], files: number }
  | { op: 'stats' }
  | { op: 'close' }

export interface PhaseTiming {
  seconds: number
  /** CPU seconds of this process during the phase (user + system). */
  cpuSeconds: number
}

export interface InterferenceCount {
  attempted: number
  created: number
  /** Refused with EBUSY (interfere: block). */
  ebusy: number
  /** Failed otherwise (the first error is in `firstError`). */
  failed: number
  firstError: string | null
  seconds: number
}

export interface JournalStats {
  events: number
  bytes: number
  merges: number
  mergedEvents: number
}

export type ClientReply =
  | { op: 'ready', ino: Ino | null }
  | { op: 'done', phase: Phase, timing: PhaseTiming }
  | { op: 'interfered', count: InterferenceCount }
  | { op: 'stats', journal: JournalStats | null }
  | { op: 'closed' }
  | { op: 'error', message: string }

const caller = { uid: 0, gid: 0, pid: process.pid }

/**
 * How long the server may stay silent before a client gives up on the
 * connection. The default (10 s) is shorter than the server takes to merge
 * 20 journals of 100,000 events that arrive together: it answers nothing,
 * heartbeats included, until it has merged the ones ahead of them.
 */
const DEAD_SERVER_MS = 600_000

/** One-at-a-time creates let the event loop run after this many. */
const YIELD_EVERY = 1000

class BenchClient {
  private fs: Connection | null = null
  private ino: Ino | null = null
  private names: string[] = []

  constructor (private setupArgs: ClientSetup | null = null) {}

  async setup (s: ClientSetup): Promise<Ino | null> {
    this.setupArgs = s
    this.fs = await connect(s.address, { journalDir: s.journalDir, name: 'cudele-bench', deadServerMs: DEAD_SERVER_MS })
    if (s.dir === null) return null
    const d = await this.fs.mkdir(1, s.dir, 0o755, caller)
    this.ino = d.ino
    if (s.policy !== null) await this.fs.setPolicy(d.ino, s.policy, `/${s.dir}`)
    // The first change claims a decoupled subtree (or, with interfere: block,
    // a strong one): done here, so that the timed phases do not include it.
    await this.fs.createMany(d.ino, ['.claim'])
    this.names = Array.from({ length: s.creates }, (_, i) => `f${i}`)
    return d.ino
  }

  async phase (p: Phase): Promise<PhaseTiming> {
    const fs = this.conn()
    const ino = this.ino as Ino
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    if (p === 'create') await this.create(fs, ino)
    else if (p === 'persist') await fs.syncAll()
    else await fs.merge(ino)
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 }
  }

  private async create (fs: Connection, ino: Ino): Promise<void> {
    const s = this.setupArgs as ClientSetup
    if (s.method === 'batch') {
      for (let i = 0; i < this.names.length; i += s.batch) await fs.createMany(ino, this.names.slice(i, i + s.batch))
      return
    }
    let next = 0
    const names = this.names
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const i = next++
        await fs.mknod(ino, names[i], 0o100644, 0, caller)
        // In a decoupled subtree mknod never waits for I/O, so a loop of them
        // would never let timers run (sync_interval's merges among them), as
        // an application doing anything else between its creates would.
        if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise(resolve => setImmediate(resolve))
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, s.inflight) }, worker))
  }

  /** Create `files` files in each of these directories, whatever the answers. */
  async interfere (dirs: Ino[], files: number): Promise<InterferenceCount> {
    const fs = this.conn()
    const s = this.setupArgs as ClientSetup
    const count: InterferenceCount = { attempted: 0, created: 0, ebusy: 0, failed: 0, firstError: null, seconds: 0 }
    const todo: Array<[Ino, string]> = []
    for (let i = 0; i < files; i++) for (const d of dirs) todo.push([d, `x${process.pid}-${i}`])
    const t0 = performance.now()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const [d, name] = todo[next++]
        count.attempted++
        try {
          await fs.mknod(d, name, 0o100644, 0, caller)
          count.created++
        } catch (err) {
          const code = (err as { code?: string }).code
          if (code === 'EBUSY') count.ebusy++
          else {
            count.failed++
            count.firstError ??= (err as Error).message
          }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, s.inflight) }, worker))
    count.seconds = (performance.now() - t0) / 1000
    return count
  }

  async stats (): Promise<JournalStats | null> {
    if (this.ino === null) return null
    const r = JSON.parse((await this.conn().getxattr(this.ino, 'user.cudele.journal')).toString()) as Record<string, unknown>
    if (r.decoupled !== true) return null
    return {
      events: Number(r.journal_events),
      bytes: Number(r.journal_bytes),
      merges: Number(r.merges),
      mergedEvents: Number(r.merged_events)
    }
  }

  async close (): Promise<void> {
    await this.fs?.close()
    this.fs = null
  }

  private conn (): Connection {
    if (!this.fs) throw new Error('not set up')
    return this.fs
  }
}

function reply (m: ClientReply): void {
  process.send?.(m)
}

if (require.main === module && process.send) {
  const client = new BenchClient()
  // One request at a time, in order.
  let queue = Promise.resolve()
  process.on('message', (m: ClientRequest) => {
    queue = queue.then(async () => {
      try {
        if (m.op === 'setup') reply({ op: 'ready', ino: await client.setup(m.setup) })
        else if (m.op === 'phase') reply({ op: 'done', phase: m.phase, timing: await client.phase(m.phase) })
        else if (m.op === 'interfere') reply({ op: 'interfered', count: await client.interfere(m.dirs, m.files) })
        else if (m.op === 'stats') reply({ op: 'stats', journal: await client.stats() })
        else {
          await client.close()
          reply({ op: 'closed' })
          process.disconnect()
        }
      } catch (err) {
        reply({ op: 'error', message: (err as Error).stack ?? String(err) })
      }
    })
  })
  process.on('disconnect', () => { setTimeout(() => process.exit(0), 100).unref() })
}
