// The workloads of the crash tests, run as child processes against a mount
// whose server the test kills. Does nothing unless given a mode.
//
//   mixed MNT LOG SEED TAG   create files (0 B – 3 MiB, contents from content.ts)
//                            in several directories, rename and delete some,
//                            fsync some files and sometimes a directory; after
//                            each fsync returns, append to LOG (outside the mount,
//                            fsync'd): "F path sha256 size" (file fsync'd) or
//                            "D path sha256 size" (closed file whose directory
//                            was fsync'd). A file is never touched after it is
//                            logged. "R path id" before a rename replaces path
//                            with file id. Runs until the mount fails under it.
//   big MNT LOG SEED TAG     write one large file with 1 B – 1 MiB writes, holes
//                            now and then, rewrites of earlier ranges; logs
//                            "H path start end" before leaving a hole and
//                            "B path size" after each fsync.
//   dirsync MNT DIR N        make N entries of all kinds in MNT/DIR (and rename
//                            some), close them, fsync DIR, print "synced" and wait.
//   verify MNT LOG           check a remounted tree against LOG; prints JSON
//                            { logged, files, bytes, problems }.
//
// Every path in LOG is relative to MNT. Paths are "<dir>/<id>" or
// "<dir>/<id>~<n>" after a rename; the id fixes the file's contents and size.

import * as fs from 'fs'
import * as path from 'path'
import { expected, firstForeignByte, firstNonZero, prng, sha256, sizeFor } from './content'

const MiB = 1024 * 1024

function openLog (file: string): (line: string) => void {
  const fd = fs.openSync(file, 'a')
  return line => {
    fs.writeSync(fd, line + '\n')
    fs.fsyncSync(fd)
  }
}

/** Run a workload until the mount fails under it, then say when and how. */
function untilFailure (name: string, body: () => void): void {
  try {
    console.log('START')
    body()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    console.log(`STOP ${Date.now()} ${e.code ?? 'none'} ${JSON.stringify(e.message)}`)
    return
  }
  console.log(`DONE ${Date.now()} ${name}`)
}

function writeAll (fd: number, buf: Buffer, pos: number, rnd: () => number): void {
  let off = 0
  while (off < buf.length) {
    const n = Math.min(buf.length - off, 1 + Math.floor(rnd() * (rnd() < 0.5 ? 64 * 1024 : MiB)))
    off += fs.writeSync(fd, buf, off, n, pos + off)
  }
}

function mixed (mnt: string, logFile: string, seed: number, tag: string): void {
  const rnd = prng(seed)
  const log = openLog(logFile)
  const dirs = ['a', 'b', 'c', 'a/x', 'b/y']
  for (const d of dirs) fs.mkdirSync(path.join(mnt, d), { recursive: true })
  // Files not logged (so still free to rename or delete): path → id.
  const volatile = new Map<string, string>()
  let n = 0
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)]
  untilFailure('mixed', () => {
    for (;;) {
      const r = rnd()
      const vol = [...volatile.keys()]
      if (r < 0.55 || vol.length === 0) {
        const id = `${tag}-${n++}`
        const rel = `${pick(dirs)}/${id}`
        const data = expected(id, 0, sizeFor(id))
        const fd = fs.openSync(path.join(mnt, rel), 'wx', 0o644)
        writeAll(fd, data, 0, rnd)
        if (rnd() < 0.35) {
          fs.fsyncSync(fd)
          fs.closeSync(fd)
          log(`F ${rel} ${sha256(data)} ${data.length}`)
        } else {
          fs.closeSync(fd)
          volatile.set(rel, id)
        }
      } else if (r < 0.65) {
        const from = pick(vol)
        const id = volatile.get(from) as string
        // Sometimes onto another volatile file (replacing it), mostly to a new name.
        const onto = rnd() < 0.2 ? pick(vol) : `${pick(dirs)}/${id}~${n++}`
        // A name that gets another file's contents: say so first, the checker accepts either.
        if (volatile.has(onto) && onto !== from) log(`R ${onto} ${id}`)
        fs.renameSync(path.join(mnt, from), path.join(mnt, onto))
        volatile.delete(from)
        volatile.delete(onto)
        volatile.set(onto, id)
      } else if (r < 0.75) {
        const victim = pick(vol)
        fs.unlinkSync(path.join(mnt, victim))
        volatile.delete(victim)
      } else if (r < 0.8) {
        const d = `${pick(dirs)}/s-${tag}-${n++}`
        fs.mkdirSync(path.join(mnt, d))
        dirs.push(d)
      } else if (r < 0.85) {
        // fsync a directory: its closed files' entries (and the data written before) must survive.
        const d = pick(dirs)
        const fd = fs.openSync(path.join(mnt, d), 'r')
        fs.fsyncSync(fd)
        fs.closeSync(fd)
        for (const [rel, id] of [...volatile]) {
          if (path.dirname(rel) !== d) continue
          const size = sizeFor(id)
          log(`D ${rel} ${sha256(expected(id, 0, size))} ${size}`)
          volatile.delete(rel)
        }
      } else {
        // Reads while writing: a volatile file reads back what was written.
        const rel = pick(vol)
        const id = volatile.get(rel) as string
        const got = fs.readFileSync(path.join(mnt, rel))
        if (!got.equals(expected(id, 0, sizeFor(id)))) throw new Error(`read back of ${rel} before any crash differs`)
      }
    }
  })
}

function big (mnt: string, logFile: string, seed: number, tag: string): void {
  const rnd = prng(seed)
  const log = openLog(logFile)
  const limit = 160 * MiB
  untilFailure('big', () => {
    for (let k = 0; ; k++) {
      const rel = `big-${tag}-${k}`
      const fd = fs.openSync(path.join(mnt, rel), 'wx+', 0o644)
      let pos = 0
      let synced = 0
      const holes: Array<[number, number]> = []
      while (pos < limit) {
        if (rnd() < 0.04) {
          const gap = 1 + Math.floor(rnd() * 6 * MiB)
          log(`H ${rel} ${pos} ${pos + gap}`)
          holes.push([pos, pos + gap])
          pos += gap
        }
        const len = 1 + Math.floor(rnd() * (rnd() < 0.2 ? 4096 : MiB))
        fs.writeSync(fd, expected(rel, pos, len), 0, len, pos)
        pos += len
        if (rnd() < 0.05) {
          // Read an earlier range back and rewrite it with the same bytes:
          // exercises reads of buffered and stored data and read-modify-write of stripes.
          const s = Math.floor(rnd() * pos)
          const l = Math.min(pos - s, 1 + Math.floor(rnd() * 256 * 1024))
          const want = image(rel, s, l, holes)
          const cur = Buffer.alloc(l)
          fs.readSync(fd, cur, 0, l, s)
          if (!cur.equals(want)) throw new Error(`read back of ${rel} [${s}, ${s + l}) before any crash differs`)
          fs.writeSync(fd, want, 0, l, s)
        }
        if (pos - synced > 8 * MiB || rnd() < 0.02) {
          fs.fsyncSync(fd)
          synced = pos
          log(`B ${rel} ${pos}`)
        }
      }
      fs.closeSync(fd)
    }
  })
}

/** What a big file holds at [s, s + l): its data, with the holes as zeros. */
function image (rel: string, s: number, l: number, holes: Array<[number, number]>): Buffer {
  const out = expected(rel, s, l)
  for (const [hs, he] of holes) {
    const a = Math.max(s, hs)
    const b = Math.min(s + l, he)
    if (a < b) out.fill(0, a - s, b - s)
  }
  return out
}

function dirsync (mnt: string, dir: string, count: number): void {
  const d = path.join(mnt, dir)
  fs.mkdirSync(d, { recursive: true })
  for (let i = 0; i < count; i++) {
    const kind = i % 4
    const name = path.join(d, `e${i}`)
    if (kind === 0) fs.writeFileSync(name, expected(`${dir}/e${i}`, 0, 1000 + i * 37))
    else if (kind === 1) fs.mkdirSync(name)
    else if (kind === 2) fs.symlinkSync(`target-${i}`, name)
    else {
      fs.writeFileSync(name + '.tmp', expected(`${dir}/e${i}`, 0, 10 + i))
      fs.renameSync(name + '.tmp', name)
    }
  }
  const fd = fs.openSync(d, 'r')
  fs.fsyncSync(fd)
  console.log('synced')
  setInterval(() => {}, 1000)
}

interface Problem { path: string, problem: string }

function verify (mnt: string, logFile: string): void {
  const problems: Problem[] = []
  const text = fs.readFileSync(logFile, 'utf8')
  const lines = text.split('\n').slice(0, text.endsWith('\n') ? -1 : undefined).filter(l => l !== '')
  const holes = new Map<string, Array<[number, number]>>()
  const bigSynced = new Map<string, number>()
  const aliases = new Map<string, string[]>()
  let logged = 0
  for (const line of lines) {
    const [kind, rel, a, b] = line.split(' ')
    if (kind === 'H') {
      const list = holes.get(rel) ?? []
      list.push([Number(a), Number(b)])
      holes.set(rel, list)
      continue
    }
    if (kind === 'R') {
      aliases.set(rel, [...(aliases.get(rel) ?? []), a])
      continue
    }
    if (kind === 'B') {
      bigSynced.set(rel, Math.max(bigSynced.get(rel) ?? 0, Number(a)))
      continue
    }
    logged++
    const p = path.join(mnt, rel)
    let st: fs.Stats
    try {
      st = fs.lstatSync(p)
    } catch (err) {
      problems.push({ path: rel, problem: `${kind === 'F' ? 'fsync\'d' : 'dir-fsync\'d'} file is missing (${(err as Error).message})` })
      continue
    }
    if (!st.isFile()) problems.push({ path: rel, problem: 'is not a regular file' })
    else if (st.size !== Number(b)) problems.push({ path: rel, problem: `size ${st.size}, expected ${b}` })
    else if (sha256(fs.readFileSync(p)) !== a) problems.push({ path: rel, problem: 'contents differ' })
  }
  // Every file there, logged or not: no id twice (a half-done rename), no size
  // beyond what was written, no byte that is neither written data nor zero.
  const ids = new Map<string, string>()
  let files = 0
  let bytes = 0
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(mnt, rel), { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) {
        if (r !== 'lost+found') walk(r)
        continue
      }
      if (!e.isFile()) continue
      files++
      if (e.name.startsWith('big-')) {
        checkBig(mnt, r, holes.get(r) ?? [], bigSynced.get(r) ?? 0, problems)
        continue
      }
      // The file its name was made for, or one renamed over it.
      const got = fs.readFileSync(path.join(mnt, r))
      bytes += got.length
      const candidates = [e.name.split('~')[0], ...(aliases.get(r) ?? [])]
      const id = candidates.find(c => got.length <= sizeFor(c) && firstForeignByte(c, 0, got) < 0)
      if (id === undefined) {
        const c = candidates[0]
        if (got.length > sizeFor(c)) problems.push({ path: r, problem: `size ${got.length} is more than the ${sizeFor(c)} bytes written` })
        const bad = firstForeignByte(c, 0, got.subarray(0, sizeFor(c)))
        if (bad >= 0) problems.push({ path: r, problem: `byte ${bad} was never written there${candidates.length > 1 ? ` (nor by ${candidates.slice(1).join(', ')})` : ''}` })
        continue
      }
      const seen = ids.get(id)
      if (seen !== undefined) problems.push({ path: r, problem: `same file (${id}) as ${seen}` })
      ids.set(id, r)
    }
  }
  walk('')
  for (const rel of bigSynced.keys()) {
    if (!fs.existsSync(path.join(mnt, rel))) problems.push({ path: rel, problem: 'fsync\'d big file is missing' })
  }
  console.log(JSON.stringify({ logged, files, bytes, bigFiles: bigSynced.size, problems }))
}

function checkBig (mnt: string, rel: string, holes: Array<[number, number]>, synced: number, problems: Problem[]): void {
  const fd = fs.openSync(path.join(mnt, rel), 'r')
  try {
    const size = fs.fstatSync(fd).size
    if (size < synced) problems.push({ path: rel, problem: `size ${size} is less than the ${synced} bytes fsync'd` })
    const buf = Buffer.alloc(4 * MiB)
    for (let off = 0; off < size; off += buf.length) {
      const got = buf.subarray(0, fs.readSync(fd, buf, 0, Math.min(buf.length, size - off), off))
      // Split the chunk at hole boundaries: holes must read as zeros; written
      // ranges must match exactly below the fsync'd size and be data-or-zero above it.
      const cuts = new Set<number>([off, off + got.length, synced])
      for (const [s, e] of holes) { cuts.add(s); cuts.add(e) }
      const points = [...cuts].filter(x => x >= off && x <= off + got.length).sort((x, y) => x - y)
      for (let i = 0; i + 1 < points.length; i++) {
        const s = points[i]
        const e = points[i + 1]
        if (s === e) continue
        const part = got.subarray(s - off, e - off)
        if (holes.some(([hs, he]) => s >= hs && s < he)) {
          const bad = firstNonZero(s, part)
          if (bad >= 0) problems.push({ path: rel, problem: `byte ${bad} in a hole is not zero` })
        } else if (s < synced) {
          if (!part.equals(expected(rel, s, part.length))) problems.push({ path: rel, problem: `fsync'd range [${s}, ${e}) differs` })
        } else {
          const bad = firstForeignByte(rel, s, part)
          if (bad >= 0) problems.push({ path: rel, problem: `byte ${bad} past the fsync'd size was never written there` })
        }
        if (problems.length > 20) return
      }
    }
  } finally {
    fs.closeSync(fd)
  }
}

const [mode, ...args] = process.argv.slice(2)
if (mode === 'mixed') mixed(args[0], args[1], Number(args[2]), args[3])
else if (mode === 'big') big(args[0], args[1], Number(args[2]), args[3])
else if (mode === 'dirsync') dirsync(args[0], args[1], Number(args[2]))
else if (mode === 'verify') verify(args[0], args[1])
