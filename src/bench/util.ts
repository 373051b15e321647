// Helpers for `cudele bench`: child processes, the compiled workload
// programs, the cache directory, medians, the machine description.

import { spawn, spawnSync } from 'child_process'
import { createHash } from 'crypto'
import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'

/** The repository root (this file runs from dist/src/bench/). */
export const REPO = path.resolve(__dirname, '..', '..', '..')
export const CLI = path.join(REPO, 'bin', 'cudele.js')

/**
 * The node options bin/cudele.js asks for in its `#!/usr/bin/env -S node ...`
 * line (--max-semi-space-size=4: a mount's memory depends on it). A bench
 * runs `process.execPath CLI ...`, which skips the shebang, so every cudele
 * process it starts gets these on its command line instead.
 */
export const CLI_NODE_ARGS: string[] = (() => {
  const first = fs.readFileSync(CLI, 'utf8').split('\n', 1)[0]
  const m = /^#!\S*env\s+-S\s+node\s*(.*)$/.exec(first)
  return m ? m[1].split(/\s+/).filter(a => a !== '') : []
})()

/** Progress goes to stderr, so that stdout holds only the report (or JSON). */
export function log (msg: string): void {
  process.stderr.write(`bench: ${msg}\n`)
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
  /** Wall-clock seconds from spawn to exit. */
  seconds: number
}

/** Run a program (no shell), collecting its output and its wall-clock time. */
export function run (cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    const timer = opts.timeoutMs !== undefined
      ? setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs)
      : null
    child.on('error', err => {
      if (timer) clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr, seconds })
    })
  })
}

/** Like run, but throws with the output when the program fails. */
export async function runOk (cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed with code ${r.code}\n${r.stderr.trim().split('\n').slice(-10).join('\n')}`)
  }
  return r
}

/** A shell command line (for pipelines), like runOk. */
export function shOk (cmd: string, opts: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  return runOk('sh', ['-c', cmd], opts)
}

export function median (xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Where compiled programs and the tarballs are kept between runs. */
export function cacheDir (): string {
  const dir = process.env.CUDELE_BENCH_CACHE ?? '/var/tmp/cudele-bench'
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

/**
 * Compile scripts/bench/NAME.c with `cc -O2` into the cache (once per
 * version of the source) and return the binary's path.
 */
export async function compile (name: string): Promise<string> {
  const src = path.join(REPO, 'scripts', 'bench', `${name}.c`)
  const text = fs.readFileSync(src)
  const hash = createHash('sha1').update(text).digest('hex').slice(0, 12)
  const bin = path.join(cacheDir(), `${name}-${hash}`)
  if (fs.existsSync(bin)) return bin
  const tmp = `${bin}.${process.pid}.tmp`
  await runOk('cc', ['-O2', '-o', tmp, src])
  fs.renameSync(tmp, bin)
  return bin
}

/** Write back dirty pages and drop the kernel's page, dentry and inode caches. */
export function dropCaches (): void {
  spawnSync('sync')
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
  } catch (err) {
    throw new Error(`cannot drop caches (needs root): ${(err as Error).message}`)
  }
}

export interface Machine {
  cpu: string
  cores: number
  ramGiB: number
  kernel: string
  node: string
  /** The device and filesystem holding the work directory (where cudele's stores live). */
  disk: string
  loadavg: number[]
  /** The commit benchmarked, "+dirty" if the working tree has uncommitted changes under src/ or native/. */
  commit: string
}

export function machine (workDir: string): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown'
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))
    if (m) cpu = m[1].trim()
  } catch {}
  let disk = 'unknown'
  const r = spawnSync('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,SIZE', '--target', workDir], { encoding: 'utf8' })
  if (r.status === 0) {
    const [source, fstype, size] = r.stdout.trim().split(/\s+/)
    let kind = ''
    const dev = /^\/dev\/([a-z]+)/.exec(source ?? '')
    if (dev) {
      try {
        const rot = fs.readFileSync(`/sys/block/${dev[1]}/queue/rotational`, 'utf8').trim()
        kind = rot === '1' ? ', rotational' : ', non-rotational'
      } catch {}
    }
    disk = `${source} (${fstype}, ${size}${kind})`
  }
  return {
    cpu,
    cores: os.cpus().length,
    ramGiB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    kernel: os.release(),
    node: process.version,
    disk,
    loadavg: os.loadavg().map(x => Math.round(x * 100) / 100),
    commit: gitCommit()
  }
}

function gitCommit (): string {
  // A copy made by scripts/bench/snapshot.sh names its commit in .bench-commit.
  try { return `${fs.readFileSync(path.join(REPO, '.bench-commit'), 'utf8').trim()} (snapshot)` } catch {}
  const head = spawnSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
  if (head.status !== 0) return 'unknown'
  const dirty = spawnSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'src', 'native'], { encoding: 'utf8' })
  return head.stdout.trim() + (dirty.stdout.trim() !== '' ? '+dirty' : '')
}

/** CPU seconds (user + system, all threads) a process has used so far; null if it is gone. */
export function cpuSeconds (pid: number | null): number | null {
  if (pid === null) return null
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start at ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS
  } catch {
    return null
  }
}

const CLOCK_TICKS = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })
  const n = Number(r.stdout?.trim())
  return Number.isFinite(n) && n > 0 ? n : 100
})()

export function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Round for display: 3 significant digits, at least an integer for large values. */
export function fmt (x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '-'
  if (Math.abs(x) >= 10 ** digits) return Math.round(x).toString()
  return Number(x.toPrecision(digits)).toString()
}

export function ratio (a: number, b: number): number {
  return b === 0 ? NaN : a / b
}

/** Sum of the sizes of these files (missing ones count 0). */
export function fileBytes (files: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const f of files) {
    try {
      out[path.basename(f)] = fs.statSync(f).size
    } catch {
      out[path.basename(f)] = 0
    }
  }
  return out
}
