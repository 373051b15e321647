// `cudele bench rpc`: metadata throughput of one `cudele serve` when every
// create is an RPC the MDS journals (a strong/global subtree, the defaults).
//
// - library clients: 1, 4 and 16 processes over a Unix socket, each in its
//   own directory, creating --creates files (default 20,000) one at a time
//   and with 16 requests in flight (src/bench/creates.ts);
// - FUSE: mdbench (scripts/bench/mdbench.c) creating files through one client
//   mount, and through two client mounts of the same server at once.
//
// Every point gets a fresh server (and store). The server's CPU per create
// says what the MDS costs when the wall clock is noisy; --cpu-prof DIR
// profiles the servers.

import * as path from 'path'
import type { BenchContext } from './context'
import { measure } from './cudele'
import { type Mounted, mountFs } from './mounts'
import { type CaseReport, Samples, target } from './report'
import { cpuSeconds, fmt, log } from './util'

export const RPC_CLIENTS = [1, 4, 16]
export const RPC_INFLIGHT = [1, 16]
/** Files each library client creates, unless --creates says otherwise. */
const CREATES = 20_000
/** Files each client mount creates, unless --files says otherwise. */
const MOUNT_FILES = 10_000
/** mdbench workers per client mount. */
const MOUNT_WORKERS = [1, 4]
const TARGET = 30_000

async function libraryPoints (ctx: BenchContext, S: Samples, run: number): Promise<void> {
  const creates = ctx.opts.creates ?? CREATES
  for (const n of RPC_CLIENTS) {
    for (const inflight of RPC_INFLIGHT) {
      const m = await measure(ctx, { clients: n, creates, mechanism: 'strong/global', inflight })
      const c = m.phases.create
      if (!c) throw new Error('no create phase')
      const rate = n * creates / c.seconds
      S.add(`rpc/lib/${n}/${inflight}`, rate)
      S.add(`rpc/lib/${n}/${inflight}/end to end`, m.creates_per_s)
      if (c.serverCpuSeconds !== null) S.add(`rpc/lib/${n}/${inflight}/server cpu µs`, c.serverCpuSeconds * 1e6 / (n * creates))
      S.add(`rpc/lib/${n}/${inflight}/client cpu µs`, c.clientCpuSeconds * 1e6 / (n * creates))
      log(`rpc run ${run}/${ctx.opts.runs}, ${n} library client(s), ${inflight} in flight: ${fmt(rate)} creates/s (server ${fmt(c.serverCpuSeconds !== null ? c.serverCpuSeconds * 1e6 / (n * creates) : null)} µs of CPU per create)`)
    }
  }
}

async function mountPoints (ctx: BenchContext, S: Samples, run: number): Promise<void> {
  const files = ctx.opts.files ?? MOUNT_FILES
  for (const workers of MOUNT_WORKERS) {
    for (const count of [1, 2]) {
      await ctx.withServer('rpc-mounts', async (server, slot) => {
        const mounts: Mounted[] = []
        try {
          for (let i = 0; i < count; i++) {
            const mnt = path.join(slot.root, `mnt${i}`)
            mounts.push(await mountFs('cudele', mnt, { connect: server.address, args: ctx.opts.mountArgs, env: { XDG_STATE_HOME: path.join(slot.root, 'state') } }))
          }
          const cpu0 = cpuSeconds(server.pid)
          const t0 = performance.now()
          // Each mount gets its own tag, hence its own worker directories.
          const rs = await Promise.all(mounts.map((m, i) => ctx.mdbenchRun(m.mnt, ['--files', files, '--workers', workers, '--phases', 'create', '--tag', `m${i}`])))
          const seconds = (performance.now() - t0) / 1000
          const cpu1 = cpuSeconds(server.pid)
          const total = files * count
          const rate = total / seconds
          const key = `rpc/mounts/${count}/${workers}`
          S.add(key, rate)
          if (cpu0 !== null && cpu1 !== null) S.add(`${key}/server cpu µs`, (cpu1 - cpu0) * 1e6 / total)
          const clientCpu = mounts.reduce((s, m) => s + (cpuSeconds(m.pid) ?? 0), 0)
          S.add(`${key}/client mount cpu s`, clientCpu)
          log(`rpc run ${run}/${ctx.opts.runs}, ${count} client mount(s), ${workers} mdbench worker(s) each: ${fmt(rate)} creates/s (${rs.map(r => fmt(r.phases.create?.ops_per_s)).join(' + ')} per mount)`)
        } finally {
          for (const m of mounts.reverse()) await m.stop().catch(err => log(`unmount: ${(err as Error).message}`))
        }
      })
    }
  }
}

export async function rpcCase (ctx: BenchContext): Promise<CaseReport> {
  const S = new Samples()
  const runs = ctx.opts.runs
  const creates = ctx.opts.creates ?? CREATES
  const files = ctx.opts.files ?? MOUNT_FILES
  for (let r = 1; r <= runs; r++) {
    await libraryPoints(ctx, S, r)
    await mountPoints(ctx, S, r)
  }
  const med = (k: string): string => S.has(k) ? fmt(S.median(k)) : '-'
  return {
    case: 'rpc',
    runs,
    params: { creates_per_library_client: creates, files_per_mount: files, clients: RPC_CLIENTS.join(' '), in_flight: RPC_INFLIGHT.join(' '), mdbench_workers_per_mount: MOUNT_WORKERS.join(' ') },
    filesystems: {
      'cudele serve': 'cudele serve --store DIR --listen unix:SOCK, a fresh store for every point; no policies.yml: strong/global (rpcs+stream)',
      'library clients': 'one process each (src/bench/createclient.ts), mknod one name at a time, 1 or 16 requests in flight',
      'client mounts': 'cudele mount MNT --connect unix:SOCK; mdbench creates (open O_CREAT|O_EXCL + close)'
    },
    samples: S.data,
    medians: S.medians(),
    tables: [
      {
        title: `library clients over a Unix socket, ${creates} creates each (each its own directory); creates/s of all clients together (create phase)`,
        columns: ['clients', 'in flight per client', 'creates/s', 'server CPU µs per create', 'client CPU µs per create (all clients)', 'creates/s incl. the final journal commit'],
        rows: RPC_CLIENTS.flatMap(n => RPC_INFLIGHT.map(i => [String(n), String(i), med(`rpc/lib/${n}/${i}`), med(`rpc/lib/${n}/${i}/server cpu µs`), med(`rpc/lib/${n}/${i}/client cpu µs`), med(`rpc/lib/${n}/${i}/end to end`)]))
      },
      {
        title: `client mounts of one cudele serve: mdbench on each mount at once, ${files} files per mount`,
        columns: ['client mounts', 'mdbench workers per mount', 'creates/s (all mounts)', 'server CPU µs per create', '2 mounts ÷ 1 mount'],
        rows: MOUNT_WORKERS.flatMap(w => [1, 2].map(c => [String(c), String(w), med(`rpc/mounts/${c}/${w}`), med(`rpc/mounts/${c}/${w}/server cpu µs`), c === 2 && S.has(`rpc/mounts/1/${w}`) ? fmt(S.ratio(`rpc/mounts/2/${w}`, `rpc/mounts/1/${w}`)) : '-']))
      }
    ],
    targets: [
      target('16 library clients (16 creates in flight each), creates/s together', S.median(`rpc/lib/16/16`), '>=', TARGET),
      target('16 library clients (one create at a time each), creates/s together', S.median(`rpc/lib/16/1`), '>=', TARGET)
    ],
    notes: [
      'every create is one mknod RPC; the MDS journals it (group commit into the object store) and answers; the creates/s column counts until the last answer, the last column until the client has also been told that its last create is safe (syncAll)',
      'client mounts: each create is lookup + create + flush + release + getattr through the kernel, each of which the client mount forwards to the server as needed'
    ],
    extra: {}
  }
}
