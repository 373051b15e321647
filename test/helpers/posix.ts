// Helpers for the POSIX behaviour suite (test/fs/posix-*.test.ts): run Python
// scripts (for syscalls shell tools lack, and exact errno names) in child
// processes, as root or as another user, on a cudele mount and on a tmpfs, and
// snapshot a whole tree so a remount can be checked to change nothing.

import { spawn } from 'child_process'
import * as fs from 'fs'
import type { ShResult } from './mount'

/** The system Python: pyenv's shims live under /root, which other users cannot reach. */
export const PY = '/usr/bin/python3'

export interface RunOptions {
  cwd: string
  /** Run as this uid/gid (via setpriv, no supplementary groups unless given). */
  uid?: number
  gid?: number
  groups?: number[]
  input?: string
  timeoutMs?: number
}

function wrapUser (argv: string[], opts: RunOptions): string[] {
  if (opts.uid === undefined) return argv
  const groups = opts.groups && opts.groups.length > 0 ? [`--groups=${opts.groups.join(',')}`] : ['--clear-groups']
  return ['setpriv', `--reuid=${opts.uid}`, `--regid=${opts.gid ?? opts.uid}`, ...groups, ...argv]
}

/** Run argv in a child process (no shell). */
export function run (argv: string[], opts: RunOptions): Promise<ShResult> {
  const full = wrapUser(argv, opts)
  return new Promise((resolve, reject) => {
    const child = spawn(full[0], full.slice(1), { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out after ${opts.timeoutMs ?? 120000} ms: ${full.join(' ').slice(0, 300)}\n${stderr}`))
    }, opts.timeoutMs ?? 120000)
    child.on('error', reject)
    child.on('close', code => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
    // A child that exits without reading its input must not fail the test with EPIPE.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

/** A shell command, optionally as another user. */
export async function shAs (cmd: string, opts: RunOptions): Promise<ShResult> {
  return await run(['sh', '-c', cmd], opts)
}

/**
 * Definitions every script gets:
 *   E(f, *args)            'ok' or the errno name (ENOENT, ...) of the OSError f raised
 *   renameat2(a, b, flags) raises OSError like os.rename
 *   utimensat(path, atime, mtime)  each a (sec, nsec) pair, or NOW / OMIT
 *   b2s(bytes)             bytes as a str, one char per byte (latin1), for JSON
 *   out(value)             print value as the JSON result
 */
const PRELUDE = String.raw`
import ctypes, errno, hashlib, json, os, socket, stat, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def E(f, *a, **k):
    try:
        f(*a, **k)
        return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def _check(rc, *names):
    if rc != 0:
        n = ctypes.get_errno()
        raise OSError(n, os.strerror(n), *names)
def fsenc(p):
    return p if isinstance(p, bytes) else os.fsencode(p)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
def renameat2(a, b, flags):
    _check(libc.renameat2(-100, fsenc(a), -100, fsenc(b), ctypes.c_uint(flags)), a, b)
class _TS(ctypes.Structure):
    _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]
NOW, OMIT = (0, (1 << 30) - 1), (0, (1 << 30) - 2)
def utimensat(path, atime, mtime, nofollow=False):
    ts = (_TS * 2)(_TS(*atime), _TS(*mtime))
    _check(libc.utimensat(-100, fsenc(path), ts, 0x100 if nofollow else 0), path)
def b2s(b):
    return b.decode('latin1')
def out(v):
    print(json.dumps(v))
`

/** Run a Python script (with the prelude) in cwd; returns the raw result. */
export async function py (script: string, opts: RunOptions & { args?: string[] }): Promise<ShResult> {
  return await run([PY, '-c', PRELUDE + script, ...(opts.args ?? [])], opts)
}

/** Run a Python script that ends with out(...); returns the parsed value, throws with its output if it failed. */
export async function pyJson (script: string, opts: RunOptions & { args?: string[] }): Promise<any> {
  const r = await py(script, opts)
  const lines = r.stdout.trim().split('\n')
  if (r.code !== 0 || lines.length === 0 || lines[lines.length - 1] === '') {
    throw new Error(`python failed (${r.code}) in ${opts.cwd}:\n${script}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  }
  return JSON.parse(lines[lines.length - 1])
}

/**
 * Everything stat, readlink, listxattr and reading the files can tell about a
 * tree (paths relative to it, byte names as latin1), one line per entry, sorted.
 * atime is left out (reads may change it); regular files larger than
 * hashLimitBytes are not read (their size still counts).
 */
export async function snapshot (dir: string, hashLimitBytes = 64 * 1024 * 1024): Promise<string> {
  const r = await py(String.raw`
root = b'.'
limit = int(sys.argv[1])
lines = []
def entry(p):
    st = os.lstat(p)
    f = [b2s(p), oct(st.st_mode), st.st_ino, st.st_nlink, st.st_uid, st.st_gid, st.st_size, st.st_rdev,
         st.st_mtime_ns, st.st_ctime_ns]
    if stat.S_ISLNK(st.st_mode):
        f.append(b2s(os.readlink(p)))
    elif stat.S_ISREG(st.st_mode) and st.st_size <= limit:
        h = hashlib.sha256()
        with open(p, 'rb') as fh:
            while True:
                b = fh.read(1 << 20)
                if not b:
                    break
                h.update(b)
        f.append(h.hexdigest())
    if not stat.S_ISLNK(st.st_mode):
        for n in sorted(os.listxattr(p)):
            f.append([n, os.getxattr(p, n).hex()])
    lines.append(json.dumps(f))
    if stat.S_ISDIR(st.st_mode):
        for n in sorted(os.listdir(p)):
            entry(os.path.join(p, n))
entry(root)
print('\n'.join(lines))
`, { cwd: dir, args: [String(hashLimitBytes)], timeoutMs: 300000 })
  if (r.code !== 0) throw new Error(`snapshot of ${dir} failed: ${r.stderr}`)
  return r.stdout
}

/** Make a temp dir's ancestors traversable by other users (mkdtemp makes them 0700). */
export function openUp (dir: string): void {
  fs.chmodSync(dir, 0o755)
}

/** Parse the summary line of `cudele fsck`: counts by name. */
export function fsckCounts (stdout: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of stdout.matchAll(/(\d+) ([a-z][a-z ]*?)(?=[,;(]|$)/gm)) out[m[2].trim()] = Number(m[1])
  return out
}

export interface Pair {
  /** The cudele mountpoint and the tmpfs to compare with. */
  cudele: string
  tmpfs: string
}

/**
 * Run the same script in a fresh subdirectory `sub` of both trees (it starts
 * with cwd there) and assert both give the same JSON result; returns it.
 */
export async function sameAsTmpfs (pair: Pair, sub: string, script: string, opts: Omit<RunOptions, 'cwd'> & { args?: string[] } = {}): Promise<any> {
  const setup = `os.makedirs(${JSON.stringify(sub)}, exist_ok=True)\nos.chdir(${JSON.stringify(sub)})\n`
  const [c, t] = await Promise.all([
    pyJson(setup + script, { ...opts, cwd: pair.cudele }),
    pyJson(setup + script, { ...opts, cwd: pair.tmpfs })
  ])
  if (JSON.stringify(c) !== JSON.stringify(t)) {
    throw new Error(`cudele and tmpfs differ in ${sub}:\ncudele: ${JSON.stringify(c, null, 1)}\ntmpfs:  ${JSON.stringify(t, null, 1)}`)
  }
  return c
}
