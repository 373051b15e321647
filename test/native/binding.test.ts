// Tests of the FUSE binding in native/ (contract: src/fuse/native.ts).
//
// Most tests mount scripts/ref/memfs-lowlevel.js in a child process and drive
// the mount with ordinary tools run as further child processes: a process must
// never make synchronous file calls on a mount it serves itself. The tests
// that mount in this process only touch the mount from asynchronous children.
//
// Needs root (or at least /dev/fuse and fusermount3) and the built binding;
// otherwise the tests are skipped with the reason.

import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process'
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { ATTR, ATTR_LENGTH, Handlers, ReqId, Session, loadBinding } from '../../src/fuse/native'

function findRoot (): string {
  let dir = __dirname
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error('package.json not found above ' + __dirname)
    dir = up
  }
  return dir
}

const ROOT = findRoot()
const MEMFS = path.join(ROOT, 'scripts', 'ref', 'memfs-lowlevel.js')
const BINDING = path.join(ROOT, 'native', 'build', 'Release', 'cudele_fuse.node')
const ENV = { ...process.env, TZ: 'UTC', LC_ALL: 'C' }

function skipReason (): string | false {
  if (process.platform !== 'linux') return 'FUSE tests need Linux'
  if (!fs.existsSync('/dev/fuse')) return '/dev/fuse is missing'
  if (!fs.existsSync(BINDING)) return 'native binding not built (npm install)'
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'FUSE tests run as root'
  return false
}

// ---- mount bookkeeping ------------------------------------------------------

interface Mount {
  dir: string
  mnt: string
  proc: ChildProcess | null
  stderr: string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

const mounts = new Set<Mount>()
const tempDirs = new Set<string>()

function unescapeMountinfo (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/** The fusectl connection id (device minor) of the mount at mnt, or null when not mounted. */
function connectionOf (mnt: string): string | null {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ')
    if (f.length > 4 && unescapeMountinfo(f[4]) === mnt) return f[2].split(':')[1]
  }
  return null
}

function isMounted (mnt: string): boolean {
  return connectionOf(mnt) !== null
}

/** Take a mount down whatever state it is in: kill the server, detach, abort a hung connection. */
function forceCleanup (m: Mount): void {
  const conn = connectionOf(m.mnt)
  if (m.proc !== null && m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL')
  if (conn !== null) {
    spawnSync('umount', ['-l', m.mnt], { timeout: 10000 })
    const ctl = '/sys/fs/fuse/connections'
    try {
      if (fs.existsSync(ctl) && fs.readdirSync(ctl).length === 0) {
        spawnSync('mount', ['-t', 'fusectl', 'none', ctl], { timeout: 10000 })
      }
      const abort = path.join(ctl, conn, 'abort')
      if (fs.existsSync(abort)) fs.writeFileSync(abort, '1')
    } catch {
      // the connection went away meanwhile
    }
  }
  mounts.delete(m)
  if (!isMounted(m.mnt)) fs.rmSync(m.dir, { recursive: true, force: true })
}

function tempDir (): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-native-')))
  fs.chmodSync(dir, 0o755) // other users (the uid test) must reach the mount
  tempDirs.add(dir)
  return dir
}

/** Start memfs-lowlevel on a fresh directory; resolves once it printed "ready". */
async function startMemfs (...args: string[]): Promise<Mount> {
  const dir = tempDir()
  const mnt = path.join(dir, 'mnt')
  fs.mkdirSync(mnt)
  const proc = spawn(process.execPath, [MEMFS, mnt, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const m: Mount = {
    dir,
    mnt,
    proc,
    stderr: '',
    exited: new Promise(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })))
  }
  mounts.add(m)
  proc.stderr!.on('data', (d: Buffer) => { m.stderr += d.toString() })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`memfs not ready after 10 s: ${m.stderr}`)), 10000)
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready\n')) {
        clearTimeout(timer)
        resolve()
      }
    })
    proc.on('exit', code => {
      clearTimeout(timer)
      reject(new Error(`memfs exited with ${code} before ready: ${m.stderr}`))
    })
  })
  assert.ok(isMounted(mnt), 'mounted after ready')
  return m
}

async function stopMemfs (m: Mount): Promise<void> {
  if (m.proc !== null && m.proc.exitCode === null) {
    m.proc.kill('SIGTERM')
    await within(m.exited, 5000, 'memfs exit').catch(() => undefined)
  }
  forceCleanup(m)
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** p, or a rejection naming what did not happen within ms. */
async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Run a shell command in a child process (never on this thread's own mount). */
function sh (cmd: string, timeout = 120000): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8', timeout, env: ENV, maxBuffer: 64 * 1024 * 1024 })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }
}

function shOk (cmd: string, timeout?: number): string {
  const r = sh(cmd, timeout)
  assert.equal(r.status, 0, `${cmd}\nexit ${r.status}\n${r.stderr}`)
  return r.stdout
}

/** The same, asynchronously: for mounts served by this very process. */
function shAsync (cmd: string, timeout = 30000): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile('sh', ['-c', cmd], { encoding: 'utf8', timeout, env: ENV }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

interface MemfsStats { requests: Record<string, number>, writes: number, maxWrite: number, forgets: number }

function memfsStats (mnt: string): MemfsStats {
  const out = shOk(`python3 -c 'import os,sys; sys.stdout.write(os.getxattr(sys.argv[1], "user.memfs.stats").decode())' '${mnt}'`)
  return JSON.parse(out) as MemfsStats
}

const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`

after(() => {
  for (const m of [...mounts]) forceCleanup(m)
  for (const d of tempDirs) {
    if (fs.existsSync(d) && !fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(d)) {
      fs.rmSync(d, { recursive: true, force: true })
    }
  }
})

// ---- tests -------------------------------------------------------------------

describe('native FUSE binding with memfs-lowlevel', { skip: skipReason() }, () => {
  test('files, directories, symlinks and renames round-trip byte for byte', async () => {
    const m = await startMemfs()
    try {
      const src = path.join(m.dir, 'src.bin')
      fs.writeFileSync(src, crypto.randomBytes(5 * 1024 * 1024 + 12345))
      const mnt = q(m.mnt)
      shOk(`mkdir ${mnt}/d && cp ${q(src)} ${mnt}/d/a && cmp ${q(src)} ${mnt}/d/a`)
      // Small unaligned writes and a read back through another process.
      shOk(`dd if=${q(src)} of=${mnt}/d/b bs=4097 status=none && cat ${mnt}/d/b > ${q(m.dir)}/back && cmp ${q(src)} ${q(m.dir)}/back`)
      shOk(`printf hello > ${mnt}/d/c && mv ${mnt}/d/c ${mnt}/e && ln -s e ${mnt}/link`)
      assert.equal(shOk(`cat ${mnt}/link`), 'hello')
      assert.equal(shOk(`readlink ${mnt}/link`).trim(), 'e')
      assert.equal(shOk(`stat -c %s ${mnt}/d/a`).trim(), String(5 * 1024 * 1024 + 12345))
      shOk(`rm ${mnt}/d/b && truncate -s 3 ${mnt}/e`)
      assert.equal(shOk(`cat ${mnt}/e`), 'hel')
      assert.deepEqual(shOk(`ls ${mnt} ${mnt}/d`).split('\n').filter(Boolean), [`${m.mnt}:`, 'd', 'e', 'link', `${m.mnt}/d:`, 'a'])
      const r = sh(`rmdir ${mnt}/d`)
      assert.notEqual(r.status, 0)
      assert.match(r.stderr, /not empty/i)
    } finally {
      await stopMemfs(m)
    }
  })

  test('nanosecond timestamps survive touch -d and stat', async () => {
    const m = await startMemfs()
    try {
      const f = q(path.join(m.mnt, 'f'))
      shOk(`touch ${f} && touch -d '2001-02-03 04:05:06.123456789' ${f}`)
      assert.equal(shOk(`stat -c %y ${f}`).trim(), '2001-02-03 04:05:06.123456789 +0000')
      shOk(`touch -a -d '1999-12-31 23:59:59.000000001' ${f}`)
      assert.equal(shOk(`stat -c %x ${f}`).trim(), '1999-12-31 23:59:59.000000001 +0000')
    } finally {
      await stopMemfs(m)
    }
  })

  test('new files belong to the uid and gid of the process that creates them', async () => {
    const m = await startMemfs('-o', 'allow_other')
    try {
      const pub = path.join(m.mnt, 'pub')
      shOk(`mkdir ${q(pub)} && chmod 0777 ${q(pub)}`)
      shOk(`setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'echo x > ${pub}/file && mkdir ${pub}/dir && ln -s file ${pub}/sym'`)
      for (const name of ['file', 'dir', 'sym']) {
        assert.equal(shOk(`stat -c %u:%g ${q(path.join(pub, name))}`).trim(), '1000:1000', name)
      }
      assert.equal(shOk(`stat -c %u:%g ${q(pub)}`).trim(), '0:0')
    } finally {
      await stopMemfs(m)
    }
  })

  test('a 1 MiB write() arrives as one 1 MiB request', async () => {
    const m = await startMemfs()
    try {
      const before = memfsStats(m.mnt)
      shOk(`dd if=/dev/zero of=${q(path.join(m.mnt, 'big'))} bs=1M count=16 status=none`)
      const stats = memfsStats(m.mnt)
      assert.equal(stats.maxWrite, 1024 * 1024)
      assert.equal(stats.writes - before.writes, 16)
    } finally {
      await stopMemfs(m)
    }
  })

  for (const plus of [false, true]) {
    test(`readdir${plus ? 'plus' : ''} of a 10,000-entry directory lists every name once`, async () => {
      const m = plus ? await startMemfs('--readdirplus') : await startMemfs()
      try {
        const dir = path.join(m.mnt, 'many')
        shOk(`mkdir ${q(dir)} && python3 -c 'import os,sys
for i in range(10000): os.close(os.open(os.path.join(sys.argv[1], "f%05d" % i), os.O_CREAT | os.O_WRONLY))' ${q(dir)}`)
        const names = shOk(`ls -f ${q(dir)}`).split('\n').filter(Boolean)
        assert.equal(names.length, 10002)
        const files = new Set(names.filter(n => n !== '.' && n !== '..'))
        assert.equal(files.size, 10000)
        for (let i = 0; i < 10000; i++) assert.ok(files.has('f' + String(i).padStart(5, '0')), `f${i} listed`)
        // With attributes as well (readdirplus fills them in without lookups).
        const long = shOk(`ls -l ${q(dir)} | grep -c '^-rw'`).trim()
        assert.equal(long, '10000')
        if (plus) assert.ok((memfsStats(m.mnt).requests.readdirplus ?? 0) > 0, 'readdirplus used')
      } finally {
        await stopMemfs(m)
      }
    })
  }

  test('forgets reach the filesystem in batches', async () => {
    const m = await startMemfs()
    try {
      const dir = path.join(m.mnt, 'gone')
      shOk(`mkdir ${q(dir)} && cd ${q(dir)} && python3 -c 'import os
for i in range(3000): os.close(os.open("f%d" % i, os.O_CREAT | os.O_WRONLY))
for i in range(3000): os.unlink("f%d" % i)'`)
      // Unlinked inodes are evicted at once, so the kernel forgets all 3000 (and memfs frees them).
      let stats = memfsStats(m.mnt)
      for (let i = 0; i < 50 && stats.forgets < 3000; i++) {
        await sleep(100)
        stats = memfsStats(m.mnt)
      }
      assert.ok(stats.forgets >= 3000, `forgets: ${stats.forgets}`)
    } finally {
      await stopMemfs(m)
    }
  })

  test('a 256-byte name fails with ENAMETOOLONG, 255 bytes works', async () => {
    const m = await startMemfs()
    try {
      const py = (name: string, op: string): string => shOk(`python3 -c 'import os,sys,errno
p = os.path.join(sys.argv[1], "${name}")
try:
    ${op}
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' ${q(m.mnt)}`).trim()
      const long = 'x'.repeat(256)
      const max = 'y'.repeat(255)
      assert.equal(py(long, 'open(p, "w").close()'), 'ENAMETOOLONG')
      assert.equal(py(long, 'os.stat(p)'), 'ENAMETOOLONG')
      assert.equal(py(long, 'os.mkdir(p)'), 'ENAMETOOLONG')
      assert.equal(py(max, 'open(p, "w").close()'), 'ok')
      assert.equal(py(max, 'os.stat(p)'), 'ok')
    } finally {
      await stopMemfs(m)
    }
  })

  test('umount from outside ends the server cleanly', async () => {
    const m = await startMemfs()
    try {
      shOk(`echo data > ${q(path.join(m.mnt, 'f'))}`)
      shOk(`umount ${q(m.mnt)}`)
      const end = await within(m.exited, 10000, 'server exit')
      assert.deepEqual(end, { code: 0, signal: null })
      assert.equal(isMounted(m.mnt), false)
    } finally {
      await stopMemfs(m)
    }
  })

  test('SIGTERM unmounts and the server exits through exit()', async () => {
    const m = await startMemfs()
    try {
      m.proc!.kill('SIGTERM')
      const end = await within(m.exited, 10000, 'server exit')
      assert.deepEqual(end, { code: 0, signal: null })
      assert.equal(isMounted(m.mnt), false)
      assert.equal(m.stderr, '')
    } finally {
      await stopMemfs(m)
    }
  })

  test('kill -9 of a server mounted with auto_unmount leaves no mount behind', async () => {
    const m = await startMemfs('-o', 'auto_unmount')
    try {
      shOk(`echo data > ${q(path.join(m.mnt, 'f'))}`)
      m.proc!.kill('SIGKILL')
      await m.exited
      let mounted = isMounted(m.mnt)
      for (let i = 0; i < 50 && mounted; i++) {
        await sleep(100)
        mounted = isMounted(m.mnt)
      }
      assert.equal(mounted, false, 'mount gone within 5 s')
    } finally {
      await stopMemfs(m)
    }
  })
})

describe('native FUSE binding in this process', { skip: skipReason() }, () => {
  test('mount errors say why, with an errno code', async () => {
    const binding = loadBinding()
    const attr = new Float64Array(ATTR_LENGTH)
    const dir = tempDir()
    const file = path.join(dir, 'file')
    fs.writeFileSync(file, '')
    const cases: Array<[string, string, RegExp]> = [
      [path.join(dir, 'missing'), 'ENOENT', /does not exist/],
      [file, 'ENOTDIR', /not a directory/]
    ]
    for (const [where, code, why] of cases) {
      assert.throws(() => binding.mount(where, { options: [] }, {}, attr), (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, code)
        assert.match(err.message, why)
        return true
      })
    }
    assert.throws(() => binding.mount(dir, { options: ['no_such_option'] }, {}, attr), { code: 'EINVAL' })
    // Already mounted: a memfs child serves it; the check only reads the mount table.
    const m = await startMemfs()
    try {
      assert.throws(() => binding.mount(m.mnt, { options: [] }, {}, attr), { code: 'EBUSY' })
    } finally {
      await stopMemfs(m)
    }
  })

  test('replies validate their request id; notifications never block a handler', async () => {
    const binding = loadBinding()
    const attr = new Float64Array(ATTR_LENGTH)
    const mnt = path.join(tempDir(), 'mnt')
    fs.mkdirSync(mnt)
    const checks: string[] = []
    let session: Session | null = null
    let exited!: () => void
    const exitSeen = new Promise<void>(resolve => { exited = resolve })
    let ready!: () => void
    const readySeen = new Promise<void>(resolve => { ready = resolve })
    const handlers: Partial<Handlers> = {
      init () { ready() },
      exit () { exited() },
      getattr (req: ReqId, ino: number) {
        attr.fill(0)
        attr[ATTR.ino] = ino
        attr[ATTR.mode] = 0o040755
        attr[ATTR.nlink] = 2
        session!.replyAttr(req, 0)
      },
      lookup (req: ReqId, parent: number, name: string) {
        // The kernel holds the directory's lock until this lookup is answered;
        // the invalidation must queue instead of waiting for it.
        session!.notifyInvalEntry(parent, name)
        session!.notifyInvalInode(parent, 0, 0)
        attr[ATTR.ino] = 0
        checks.push(`first:${session!.replyEntry(req, 0, 0)}`)
        checks.push(`second:${session!.replyEntry(req, 0, 0)}`)
        checks.push(`unknown:${session!.replyErr(req + 1, 2)}`)
        checks.push(`readdir-unknown:${session!.replyReaddir(req, 4096, [])}`)
      }
    }
    session = binding.mount(mnt, { options: ['fsname=inproc'] }, handlers, attr)
    const forced: Mount = { dir: path.dirname(mnt), mnt, proc: null, stderr: '', exited: Promise.resolve({ code: 0, signal: null }) }
    mounts.add(forced)
    try {
      assert.equal(typeof session.fd, 'number')
      await within(readySeen, 10000, 'init')
      const r = await shAsync(`stat ${q(path.join(mnt, 'nothing'))}`)
      assert.notEqual(r.code, 0)
      assert.match(r.stderr, /No such file/)
      assert.deepEqual(checks.slice(0, 4), ['first:true', 'second:false', 'unknown:false', 'readdir-unknown:-1'])
      session.unmount()
      await within(exitSeen, 10000, 'exit() after unmount()')
      assert.equal(isMounted(mnt), false)
      assert.equal(session.replyErr(1, 2), false)
      session.unmount()
    } finally {
      forceCleanup(forced)
    }
  })
})
