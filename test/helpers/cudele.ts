// Helpers for the Cudele semantics tests (test/cudele/): policies set
// through a mount, views of a subtree taken from child processes, errno
// checks, and a private journal directory for the mounts a test starts.
//
//   const state = useStateHome()              // XDG_STATE_HOME for every mount started from here on
//   await setPolicy(a, 'w', 'consistency: weak\n')
//   const view = await tree(b, 'w')           // names, types, modes, sizes, contents
//   await errnos(b, { create: "open('w/x', 'w')" })   // { create: 'EBUSY' }
//   after(async () => { await cleanupServers(); state.cleanup() })

import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'
import { type sh, type ShResult } from './mount'
import { cudele } from './server'

/** Something whose sh runs in a mountpoint (ClientMount, CudeleMount). */
export interface InMount {
  mnt: string
  sh: (cmd: string, opts?: Parameters<typeof sh>[1]) => Promise<ShResult>
}

/**
 * A fresh XDG_STATE_HOME for the mount processes started from now on (they
 * inherit this process's environment), so client journals and owner names
 * stay out of ~/.local/state. cleanup() puts the old value back and removes it.
 */
export function useStateHome (): { dir: string, cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-state-'))
  const old = process.env.XDG_STATE_HOME
  process.env.XDG_STATE_HOME = dir
  return {
    dir,
    cleanup: () => {
      if (old === undefined) delete process.env.XDG_STATE_HOME
      else process.env.XDG_STATE_HOME = old
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** The system's Python (a version manager's shim takes a quarter of a second to start). */
export const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'

/** Run a Python program in the mountpoint (stdin: the program). */
export function py (m: InMount, program: string, args: string[] = [], timeoutMs = 60000): Promise<ShResult> {
  return m.sh(`${PYTHON} - ${args.map(a => JSON.stringify(a)).join(' ')}`, { input: program, timeoutMs })
}

export async function pyOk (m: InMount, program: string, args: string[] = [], timeoutMs = 60000): Promise<string> {
  const r = await py(m, program, args, timeoutMs)
  if (r.code !== 0) throw new Error(`python in ${m.mnt} failed (${r.code}):\n${program}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r.stdout
}

/** One entry of a view: [type, mode] for directories, [type, mode, size, content] otherwise. */
export type Entry = [string, string] | [string, string, number, string]
export type View = Record<string, Entry>

const TREE = `
import os, sys, json, stat
root = sys.argv[1]
out = {}
for dp, dns, fns in os.walk(root):
    for n in dns + fns:
        p = os.path.join(dp, n)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        mode = oct(stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ['l', mode, st.st_size, os.readlink(p)]
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ['d', mode]
        else:
            with open(p, 'rb') as f:
                data = f.read()
            # Contents up to 200 bytes as text, longer ones as size and a digest.
            import hashlib
            out[rel] = ['f', mode, st.st_size, data.decode('latin1') if len(data) <= 200 else 'sha1:' + hashlib.sha1(data).hexdigest()]
print(json.dumps(out, sort_keys=True))
`

/** What a mount shows under dir (relative to the mountpoint): every entry with type, mode, size and content (after running first, if given). */
export async function tree (m: InMount, dir: string, first?: string): Promise<View> {
  if (first === undefined) return JSON.parse(await pyOk(m, TREE, [dir])) as View
  // A shell command first, then the view, in one child.
  const r = await m.sh(`${first} && ${PYTHON} - ${JSON.stringify(dir)}`, { input: TREE })
  if (r.code !== 0) throw new Error(`"${first}" in ${m.mnt} failed (${r.code}): ${r.stderr}`)
  return JSON.parse(r.stdout) as View
}

/**
 * Like tree, for polling a subtree that changes while it is read: null when a
 * name the walk listed was gone by the time it was read (a merge renamed or
 * removed it between readdir and lstat), as `find` would say "No such file".
 */
export async function treeOrNull (m: InMount, dir: string): Promise<View | null> {
  const r = await py(m, TREE, [dir])
  if (r.code === 0) return JSON.parse(r.stdout) as View
  if (/FileNotFoundError/.test(r.stderr)) return null
  throw new Error(`python in ${m.mnt} failed (${r.code}):\n${TREE}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
}

/**
 * Run Python statements (os is imported) one after another in the mount; for
 * each, 'ok' or the errno name it failed with.
 */
export async function errnos (m: InMount, ops: Record<string, string>): Promise<Record<string, string>> {
  const prog = `
import os, json, errno
out = {}
for name, code in json.loads(${JSON.stringify(JSON.stringify(Object.entries(ops)))}):
    try:
        exec(code)
        out[name] = 'ok'
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
print(json.dumps(out))
`
  return JSON.parse(await pyOk(m, prog)) as Record<string, string>
}

/** Write DIR/policies.yml through the mount with cp (cp reports a failed close). */
export async function writePolicy (m: InMount, dir: string, yaml: string): Promise<ShResult> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-policy-'))
  try {
    const file = path.join(tmp, 'policies.yml')
    fs.writeFileSync(file, yaml)
    return await m.sh(`cp ${JSON.stringify(file)} ${JSON.stringify(path.join(dir, 'policies.yml'))}`)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** Set a policy through the mount; throws if it was refused. */
export async function setPolicy (m: InMount, dir: string, yaml: string): Promise<void> {
  await m.sh(`mkdir -p ${JSON.stringify(dir)}`)
  const r = await writePolicy(m, dir, yaml)
  if (r.code !== 0) throw new Error(`policy for ${dir} refused: ${r.stderr}`)
}

/** `cudele policy show --json DIR` (DIR relative to the mountpoint), parsed. */
export async function policyOf (m: InMount, dir: string): Promise<Record<string, any>> {
  const r = await cudele(`policy show --json "${path.join(m.mnt, dir)}"`)
  if (r.code !== 0) throw new Error(`policy show ${dir} failed: ${r.stderr}`)
  return JSON.parse(r.stdout) as Record<string, any>
}

/** `cudele sync DIR` / `cudele merge DIR` (DIR relative to the mountpoint). */
export function syncDir (m: InMount, dir: string): Promise<ShResult> {
  return cudele(`sync "${path.join(m.mnt, dir)}"`)
}

export function mergeDir (m: InMount, dir: string): Promise<ShResult> {
  return cudele(`merge "${path.join(m.mnt, dir)}"`)
}

export async function syncOk (m: InMount, dir: string, merge = false): Promise<void> {
  const r = merge ? await mergeDir(m, dir) : await syncDir(m, dir)
  if (r.code !== 0) throw new Error(`cudele ${merge ? 'merge' : 'sync'} ${dir} failed (${r.code}): ${r.stderr}`)
}

/** Poll fn until it returns something truthy; throws after timeoutMs. */
export async function until<T> (what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

/** Files with given contents, written (and closed) in the mount: {relative path: content}. Directories are made as needed. */
export async function writeFiles (m: InMount, files: Record<string, string>): Promise<void> {
  await pyOk(m, `
import os, json
files = json.loads(${JSON.stringify(JSON.stringify(files))})
for p, content in files.items():
    d = os.path.dirname(p)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(p, 'w') as f:
        f.write(content)
`)
}

/** The view writeFiles gives for files with these contents (mode 0644, directories 0755). */
export function viewOf (files: Record<string, string>, extra: View = {}): View {
  const v: View = {}
  for (const [p, content] of Object.entries(files)) {
    const parts = p.split('/')
    for (let i = 1; i < parts.length; i++) v[parts.slice(0, i).join('/')] = ['d', '0o755']
    v[p] = ['f', '0o644', Buffer.byteLength(content), content]
  }
  return { ...v, ...extra }
}
