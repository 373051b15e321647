// `cudele bench <case>`: benchmarks that compare cudele with reference
// filesystems measured in the same run (the machine may be shared and noisy:
// every case runs --runs times and reports medians, and ratios are taken
// within a run). Every case mounts what it needs itself and always unmounts
// it, also when it fails or is interrupted. Figures: docs/BENCHMARKS.md.

import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'
import type { Argv } from 'yargs'
import { BenchContext, type BenchOptions } from '../bench/context'
import { cudeleCase, cudeleOne, describeMeasurement, FIGURES } from '../bench/cudele'
import { durableCase } from '../bench/durable'
import { metadataCase } from '../bench/metadata'
import { millionCase } from '../bench/million'
import { emergencyCleanup, FS_KINDS, type FsKind } from '../bench/mounts'
import { summarize } from '../bench/profile'
import { type BenchReport, type CaseReport, formatCase, formatReport, markdownCase } from '../bench/report'
import { rpcCase } from '../bench/rpc'
import { seqCase } from '../bench/seq'
import { untarCase } from '../bench/untar'
import { log, machine } from '../bench/util'

export const BENCH_CASES = ['metadata', 'durable', 'untar', 'seq', 'million', 'rpc', 'cudele'] as const
type CaseName = typeof BENCH_CASES[number]

const CASES: Record<CaseName, (ctx: BenchContext) => Promise<CaseReport>> = {
  metadata: metadataCase,
  durable: durableCase,
  untar: untarCase,
  seq: seqCase,
  million: millionCase,
  rpc: rpcCase,
  cudele: cudeleCase
}

export const BENCH_DESCRIPTION = 'run a benchmark against reference filesystems measured in the same run (see bench --help)'

const CASES_TEXT = `cases:
  metadata  20,000 empty files created, stat'ed, unlinked by 1 and 4 workers: cudele,
            the fuse-native and lowlevel references, tmpfs
  durable   files created and fsync'd one by one by 1 and 4 writers: cudele (tmpfs for scale)
  untar     the linux-source-6.1 tarball extracted (all of it, or --members N): cudele,
            the fuse-native reference, tmpfs; cudele's tree is checked against tmpfs's
  seq       1 GiB written with dd conv=fsync and read back cold: cudele, the fuse-native
            reference with and without big writes, the lowlevel reference, tmpfs
  million   1,000,000 empty files in 1,000 directories, then listed: the server's peak RSS
            and the store's bytes per file
  rpc       creates/s of one \`cudele serve\` when every create is an RPC (strong/global):
            1, 4 and 16 library clients over a Unix socket (1 and 16 requests in
            flight each), and mdbench through one and through two client mounts
  cudele    the paper's §V with library clients of a \`cudele serve\`: Fig. 5 (cost of each
            mechanism and Table I cell), Fig. 6a (1-20 clients: RPCs vs decoupled),
            Fig. 6b (interference, allow vs block), Fig. 6c (sync_interval), and an
            untar through client mounts into strong/global vs weak/local vs tmpfs;
            with --mechanism, one measurement
  all       every case above, one after the other`

export function benchBuilder (y: Argv): Argv<any> {
  return y
    .usage(`cudele bench <case> [options]\n\nRun a benchmark; it mounts what it compares (cudele on a fresh store, the\nreference filesystems of scripts/ref/, tmpfs) and unmounts everything at the end.\nRun as root. Every figure is the median of --runs runs.\n\n${CASES_TEXT}`)
    .wrap(Math.min(100, y.terminalWidth()))
    .positional('case', { type: 'string', choices: [...BENCH_CASES, 'all'], demandOption: true, describe: 'which benchmark' })
    .option('runs', { type: 'number', default: 3, describe: 'runs of every measurement (the report gives medians)' })
    .option('files', { type: 'number', describe: 'files for metadata (20000), durable (4000), million (1000000) and per client mount in rpc (10000)' })
    .option('members', { type: 'number', describe: 'untar: extract only the first N members of the tarball (default all)' })
    .option('size-mib', { type: 'number', describe: 'seq: MiB to write and read (default 1024)' })
    .option('fs', { type: 'string', describe: `only these filesystems, comma-separated (${FS_KINDS.join(', ')})` })
    .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON (progress still goes to stderr)' })
    .option('markdown', { type: 'boolean', default: false, describe: 'print the tables as Markdown (for docs/BENCHMARKS.md)' })
    .option('cpu-prof', { type: 'string', describe: 'write CPU profiles of the cudele servers into this directory and print where their time goes' })
    .option('node-options', { type: 'string', describe: 'node options for the cudele servers, e.g. --node-options=--trace-gc' })
    .option('server-log', { type: 'string', describe: 'keep the output of every cudele server in this directory' })
    .option('dir', { type: 'string', describe: 'put mountpoints and cudele stores under this directory (default the OS temp directory)' })
    .option('mount-arg', { type: 'array', string: true, describe: 'extra argument for `cudele mount` (repeat for more)' })
    .option('clients', { type: 'number', describe: 'cudele: library clients (processes) of one measurement (default 1)' })
    .option('creates', { type: 'number', describe: 'cudele: files each client creates (default 100000); rpc: each library client (default 20000)' })
    .option('mechanism', { type: 'string', describe: 'cudele: one measurement of this composition (e.g. append_client_journal+local_persist) or Table I cell (e.g. weak/local)' })
    .option('inflight', { type: 'number', describe: 'cudele: requests each client keeps in flight when every create is a request (default 16)' })
    .option('figure', { type: 'array', string: true, describe: `cudele: only these figures (${FIGURES.join(', ')})` })
    .option('svg', { type: 'string', describe: 'cudele: draw the figures as SVG files into this directory' })
    .example('cudele bench metadata', '')
    .example('cudele bench untar --members 20000 --json', '')
    .example('npm run bench -- seq --runs 5', '')
    .example('cudele bench cudele --clients 20 --creates 100000 --mechanism append_client_journal --json', '')
    .example('cudele bench cudele --figure fig6a --svg docs', '')
    .example('cudele bench rpc --runs 3 --cpu-prof /tmp/prof', '')
}

export interface BenchArgs {
  case: string
  runs: number
  files?: number
  members?: number
  sizeMib?: number
  fs?: string
  json: boolean
  markdown: boolean
  cpuProf?: string
  nodeOptions?: string
  serverLog?: string
  dir?: string
  mountArg?: string[]
  clients?: number
  creates?: number
  mechanism?: string
  inflight?: number
  figure?: string[]
  svg?: string
}

export async function benchCommand (a: BenchArgs, argv: string[]): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('benchmarks mount filesystems and drop caches: run them as root')
  if (!Number.isInteger(a.runs) || a.runs < 1) throw new Error('--runs must be a positive integer')
  let kinds: FsKind[] | undefined
  if (a.fs !== undefined) {
    kinds = a.fs.split(',').map(s => s.trim()).filter(s => s !== '') as FsKind[]
    for (const k of kinds) if (!FS_KINDS.includes(k)) throw new Error(`unknown filesystem ${k} (${FS_KINDS.join(', ')})`)
  }
  const opts: BenchOptions = {
    runs: a.runs,
    files: a.files,
    members: a.members,
    sizeMiB: a.sizeMib,
    fs: kinds,
    cpuProf: a.cpuProf,
    nodeOptions: a.nodeOptions,
    serverLog: a.serverLog,
    dir: a.dir,
    mountArgs: a.mountArg,
    clients: a.clients,
    creates: a.creates,
    mechanism: a.mechanism,
    inflight: a.inflight,
    figures: a.figure?.flatMap(f => f.split(',')).map(f => f.trim()).filter(f => f !== ''),
    svgDir: a.svg === undefined ? undefined : path.resolve(a.svg)
  }
  for (const [k, v] of [['clients', a.clients], ['creates', a.creates], ['inflight', a.inflight]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new Error(`--${k} must be a positive integer`)
  }
  for (const f of opts.figures ?? []) if (!FIGURES.includes(f)) throw new Error(`unknown figure ${f} (${FIGURES.join(', ')})`)
  if ((a.mechanism !== undefined || a.figure !== undefined || a.svg !== undefined) && a.case !== 'cudele') throw new Error('--mechanism, --figure and --svg go with the cudele case')
  const cases: CaseName[] = a.case === 'all' ? [...BENCH_CASES] : [a.case as CaseName]
  const parent = path.resolve(opts.dir ?? os.tmpdir())
  fs.mkdirSync(parent, { recursive: true })
  const work = fs.mkdtempSync(path.join(parent, 'cudele-benchrun-'))
  if (opts.cpuProf) fs.mkdirSync(opts.cpuProf, { recursive: true })

  // Whatever happens, take every mount down and remove the work directory.
  const cleanup = (): void => {
    emergencyCleanup()
    try { fs.rmSync(work, { recursive: true, force: true }) } catch {}
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`${sig}: unmounting everything and stopping`)
    cleanup()
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('exit', cleanup)

  if (a.case === 'cudele' && a.mechanism !== undefined) {
    // One measurement: one object (with the machine it ran on).
    try {
      const ctx = new BenchContext(opts, work)
      const m = await cudeleOne(ctx)
      const out = { ...m, command: `cudele ${argv.join(' ')}`, machine: machine(work) }
      process.stdout.write(a.json ? JSON.stringify(out) + '\n' : `${describeMeasurement(m)}\n`)
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      cleanup()
      process.off('exit', cleanup)
    }
    return 0
  }

  const report: BenchReport = {
    started: new Date().toISOString(),
    command: `cudele ${argv.join(' ')}`,
    machine: machine(work),
    cases: []
  }
  if (!a.json) process.stdout.write(formatReport(report))
  try {
    const ctx = new BenchContext(opts, work)
    await ctx.init()
    for (const name of cases) {
      const profilesBefore = new Set(opts.cpuProf ? fs.readdirSync(opts.cpuProf) : [])
      log(`${name}: starting (${opts.runs} run(s))`)
      const r = await CASES[name](ctx)
      report.cases.push(r)
      if (a.markdown && !a.json) process.stdout.write(`\n### ${r.case}\n\n${markdownCase(r)}`)
      else if (!a.json) process.stdout.write(`\n${formatCase(r)}\n`)
      if (opts.cpuProf) {
        for (const f of fs.readdirSync(opts.cpuProf).filter(f => f.endsWith('.cpuprofile') && !profilesBefore.has(f)).sort()) {
          process.stderr.write(`\n${summarize(path.join(opts.cpuProf, f), 20)}\n`)
        }
      }
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    cleanup()
    process.off('exit', cleanup)
  }
  if (a.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  return 0
}
