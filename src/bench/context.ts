// What every case gets: its options, the work directory (mountpoints and
// cudele stores), the compiled workload programs, and fresh places to mount.

import * as fs from 'fs'
import * as path from 'path'
import { type FsKind, type MountOptions, type Served, serveCudele } from './mounts'
import { compile, runOk } from './util'

export interface BenchOptions {
  runs: number
  /** Files for mdbench-based cases (each case has its own default). */
  files?: number
  /** untar: members of the linux-source tarball to extract (default all). */
  members?: number
  /** seq: MiB to write and read (default 1024). */
  sizeMiB?: number
  /** Only these filesystems (default: each case's own list). */
  fs?: FsKind[]
  /** Write a CPU profile of every cudele server into this directory. */
  cpuProf?: string
  /** More node options for the cudele servers (for instance --trace-gc). */
  nodeOptions?: string
  /** Keep every cudele server's output in this directory (one file per mount). */
  serverLog?: string
  /** Parent of the work directory (default the OS temp dir). */
  dir?: string
  /** Extra `cudele mount` arguments. */
  mountArgs?: string[]
  /** cudele: library clients, files each, and the mechanism composition (or Table I cell) of one measurement. */
  clients?: number
  creates?: number
  mechanism?: string
  /** cudele: requests each client keeps in flight when every create is a request (rpcs). */
  inflight?: number
  /** cudele: which figures to make (fig5, fig6a, fig6b, fig6c, untar). */
  figures?: string[]
  /** cudele: write the figures as SVG files into this directory. */
  svgDir?: string
}

export interface Slot {
  root: string
  mnt: string
  store: string
}

export class BenchContext {
  private next = 0
  mdbench = ''
  getxattr = ''

  constructor (readonly opts: BenchOptions, readonly work: string) {}

  async init (): Promise<void> {
    this.mdbench = await compile('mdbench')
    this.getxattr = await compile('getxattr')
  }

  /** The filesystems of a case: its own list, or the --fs list instead. */
  kinds (defaults: FsKind[]): FsKind[] {
    return this.opts.fs ?? defaults
  }

  /** A fresh directory for one mount (and its store, for cudele). */
  slot (label: string): Slot {
    const root = path.join(this.work, `${String(this.next++).padStart(3, '0')}-${label}`)
    fs.mkdirSync(root, { recursive: true })
    return { root, mnt: path.join(root, 'mnt'), store: path.join(root, 'store') }
  }

  /** Remove a slot once its mount is gone (stores can be large). */
  release (s: Slot): void {
    fs.rmSync(s.root, { recursive: true, force: true })
  }

  mountOptions (kind: FsKind, s: Slot, extra: MountOptions = {}): MountOptions {
    if (kind !== 'cudele') return extra
    const nodeOptions = [
      this.opts.cpuProf ? `--cpu-prof --cpu-prof-dir=${path.resolve(this.opts.cpuProf)}` : '',
      this.opts.nodeOptions ?? ''
    ].join(' ').trim()
    return {
      store: s.store,
      args: this.opts.mountArgs,
      nodeOptions: nodeOptions === '' ? undefined : nodeOptions,
      logFile: this.opts.serverLog ? path.join(path.resolve(this.opts.serverLog), `${path.basename(s.root)}.log`) : undefined,
      ...extra
    }
  }

  /** Start `cudele serve` on a fresh store, run fn, and always stop the server and remove the store. */
  async withServer<T> (label: string, fn: (server: Served, slot: Slot) => Promise<T>, args: string[] = []): Promise<T> {
    const slot = this.slot(label)
    const opts = this.mountOptions('cudele', slot)
    const server = await serveCudele(slot.store, path.join(slot.root, 's.sock'), { nodeOptions: opts.nodeOptions, logFile: opts.logFile, args })
    try {
      return await fn(server, slot)
    } finally {
      await server.stop()
      this.release(slot)
    }
  }

  /** Run mdbench on dir and return its parsed JSON. */
  async mdbenchRun (dir: string, args: Array<string | number>): Promise<MdbenchResult> {
    const r = await runOk(this.mdbench, [dir, ...args.map(String)], { timeoutMs: 4 * 3600_000 })
    return JSON.parse(r.stdout) as MdbenchResult
  }

  /** Request counters of scripts/ref/memfs-lowlevel.js mounted at mnt. */
  async lowlevelStats (mnt: string): Promise<{ requests: Record<string, number>, writes: number, maxWrite: number }> {
    const r = await runOk(this.getxattr, [mnt, 'user.memfs.stats'])
    return JSON.parse(r.stdout)
  }
}

export interface MdbenchPhase {
  ops: number
  seconds: number
  ops_per_s: number
}

export interface MdbenchResult {
  files: number
  workers: number
  dirs: number
  fsync: boolean
  phases: Partial<Record<'create' | 'stat' | 'unlink', MdbenchPhase>>
}
