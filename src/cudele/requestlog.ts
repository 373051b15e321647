// local_persist for strong subtrees: the client's request log.
//
// With durability local, a strong subtree's changes are RPCs the MDS does
// not journal: they reach the object store with its next trim. Until then
// the client that made them keeps each one, once the server has carried it
// out and before the application hears back, in a local file: a server crash
// loses nothing once that client is back. A client that stays up replays
// from memory when it reconnects (as for every request); one that crashed
// too replays this file when it mounts again (same mountpoint), under the
// session name it had, so the server recognises what it has already done.
//
// The file: one JSON header line, then frames [u32 length][value] (the RPC
// value encoding): a kept request {t, m, a, i} or a safe mark {s}: every
// request up to s is safe. Writes go to the page cache at once (a crash of
// the client process loses nothing written) and to the disk on fsync. When
// nothing kept is unsafe the file is cut back to its header.

import * as fs from 'fs'
import * as path from 'path'
import { checkedMutation } from '../protocol'
import { decodeValue, encodeValue } from '../rpc'
import { RemoteBackend, type KeptRequest, type RequestKeeper } from '../client/remote'

interface Header {
  cudele: 'request-log'
  version: 1
  /** The server address. */
  source: string
  /** The session name the requests were sent under. */
  client: string
  /** Who that client was as the owner of subtrees (interfere: block): the replay acts for it. */
  owner?: string
}

/** Largest frame read back (a torn or corrupt length must not allocate gigabytes). */
const FRAME_MAX = 256 * 1024 * 1024
/** Rewrite the file (only what is unsafe) once it is this large and most of it is safe. */
const REWRITE_BYTES = 8 * 1024 * 1024
/** How long a recovery waits for what it replayed to be safe. */
const RECOVERY_SAFE_MS = 30_000

export function requestLogName (dir: string, client: string): string {
  return path.join(dir, `requests.${client}.log`)
}

export class RequestLog implements RequestKeeper {
  private fd: number | null = null
  private chain: Promise<void> = Promise.resolve()
  private failure: Error | null = null
  private headerBytes = 0
  private bytes = 0
  /** Kept requests not known safe, in tid order, with their frames. */
  private unsafe: Array<{ tid: number, frame: Buffer }> = []
  private safeTid = 0

  constructor (readonly file: string, readonly clientName: string, private readonly source: string, private readonly owner?: string) {}

  keep (r: KeptRequest): Promise<void> {
    if (r.tid <= this.safeTid) return Promise.resolve()
    const frame = encodeFrame({ t: r.tid, m: r.request.method, a: r.request.args, i: r.ino ?? 0 })
    let i = this.unsafe.length
    while (i > 0 && this.unsafe[i - 1].tid > r.tid) i--
    this.unsafe.splice(i, 0, { tid: r.tid, frame })
    return this.write(frame)
  }

  safe (tid: number): void {
    if (tid > this.safeTid) this.safeTid = tid
    let n = 0
    while (n < this.unsafe.length && this.unsafe[n].tid <= tid) n++
    if (n === 0) return
    this.unsafe.splice(0, n)
    if (this.unsafe.length === 0) {
      this.then(fd => {
        fs.ftruncateSync(fd, this.headerBytes)
        this.bytes = this.headerBytes
      })
    } else if (this.bytes > REWRITE_BYTES) {
      this.then(() => this.rewrite())
    } else {
      this.write(encodeFrame({ s: tid })).catch(() => {})
    }
  }

  async flushed (): Promise<void> {
    await this.chain
    if (this.failure) throw this.failure
    if (this.fd !== null) {
      const fd = this.fd
      await new Promise<void>((resolve, reject) => fs.fdatasync(fd, err => err ? reject(err) : resolve()))
    }
  }

  async close (): Promise<void> {
    await this.chain.catch(() => {})
    if (this.fd === null) return
    try { fs.closeSync(this.fd) } catch {}
    this.fd = null
    try { fs.unlinkSync(this.file) } catch {}
  }

  /** Append at the end as this log knows it (explicit positions: a cut-back file's offset would leave a hole). */
  private write (data: Buffer): Promise<void> {
    return this.then(async fd => {
      let off = 0
      while (off < data.length) {
        off += await new Promise<number>((resolve, reject) => fs.write(fd, data, off, data.length - off, this.bytes + off, (err, n) => err ? reject(err) : resolve(n)))
      }
      this.bytes += data.length
    })
  }

  /** Run fn on the open file after everything before it (the file is made on first use). */
  private then (fn: (fd: number) => void | Promise<void>): Promise<void> {
    const p = this.chain.then(async () => {
      if (this.failure) throw this.failure
      await fn(this.open())
    })
    this.chain = p.catch(err => { this.failure = err as Error })
    return p
  }

  private open (): number {
    if (this.fd !== null) return this.fd
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 })
    const text = this.header()
    this.fd = fs.openSync(this.file, 'w', 0o600)
    fs.writeSync(this.fd, text)
    this.headerBytes = this.bytes = text.length
    return this.fd
  }

  private header (): Buffer {
    const h: Header = { cudele: 'request-log', version: 1, source: this.source, client: this.clientName, owner: this.owner }
    return Buffer.from(JSON.stringify(h) + '\n')
  }

  /** Only what is unsafe, into a new file that replaces the old one. */
  private rewrite (): void {
    const tmp = this.file + '.tmp'
    const fd = fs.openSync(tmp, 'w', 0o600)
    const body = Buffer.concat([this.header(), ...this.unsafe.map(u => u.frame)])
    fs.writeSync(fd, body)
    fs.fdatasyncSync(fd)
    fs.renameSync(tmp, this.file)
    if (this.fd !== null) fs.closeSync(this.fd)
    this.fd = fd
    this.bytes = body.length
  }

  /**
   * The header and the requests of a log that are not marked safe (a torn
   * tail from a crash is ignored). A request the protocol table does not
   * know as a change, or whose arguments are not of its method's shapes, is
   * left out and said in `refused`.
   */
  static read (file: string): { header: Header, requests: KeptRequest[], refused: string[] } {
    const buf = fs.readFileSync(file)
    const nl = buf.indexOf(0x0a)
    const header = JSON.parse(buf.subarray(0, nl < 0 ? 0 : nl).toString() || '{}') as Header
    if (header.cudele !== 'request-log' || header.version !== 1) throw new Error(`${file}: not a cudele request log`)
    const requests: KeptRequest[] = []
    const refused: string[] = []
    let safe = 0
    let pos = nl + 1
    while (pos + 4 <= buf.length) {
      const len = buf.readUInt32BE(pos)
      if (len > FRAME_MAX || pos + 4 + len > buf.length) break
      let v: { t?: number, m?: string, a?: unknown[], i?: number, s?: number }
      try {
        v = decodeValue(buf.subarray(pos + 4, pos + 4 + len)) as typeof v
      } catch {
        break // a frame torn by a crash: nothing after it was acknowledged
      }
      pos += 4 + len
      if (typeof v.s === 'number') {
        safe = Math.max(safe, v.s)
      } else if (typeof v.t === 'number' && typeof v.m === 'string' && Array.isArray(v.a)) {
        try {
          requests.push({ tid: v.t, request: checkedMutation(v.m, v.a), ino: v.i || undefined })
        } catch (err) {
          refused.push(`request ${v.t}: ${(err as Error).message}`)
        }
      }
    }
    return { header, requests: requests.filter(r => r.tid > safe), refused }
  }
}

function encodeFrame (v: Record<string, unknown>): Buffer {
  const body = encodeValue(v)
  const h = Buffer.allocUnsafe(4)
  h.writeUInt32BE(body.length, 0)
  return Buffer.concat([h, body])
}

/**
 * Replay the request logs an earlier run of this client left in dir (it
 * crashed before they were safe), each under its own session name, and wait
 * until the server says they are safe; then they go. Returns how many
 * requests were replayed.
 */
export async function recoverRequestLogs (address: string, dir: string, say: (line: string) => void): Promise<number> {
  let names: string[] = []
  try { names = fs.readdirSync(dir).filter(f => /^requests\.[0-9a-f]+\.log$/.test(f)) } catch {}
  let replayed = 0
  for (const name of names) {
    const file = path.join(dir, name)
    let log: { header: Header, requests: KeptRequest[], refused: string[] }
    try {
      log = RequestLog.read(file)
    } catch (err) {
      say(`cannot read the request log ${file}: ${(err as Error).message}`)
      continue
    }
    if (log.header.source !== address) continue
    if (log.refused.length > 0) say(`${log.refused.length} requests of ${file} cannot be replayed, the first: ${log.refused[0]}`)
    if (log.requests.length > 0) {
      const backend = await RemoteBackend.connect(address, { name: 'cudele-recovery', owner: log.header.owner }, log.header.client)
      const failures: string[] = []
      backend.replayKept(log.requests, (r, err) => failures.push(`${r.request.method} (request ${r.tid}): ${err.message}`))
      await backend.settle(RECOVERY_SAFE_MS)
      if (failures.length > 0) say(`${failures.length} requests of ${file} failed when replayed, the first: ${failures[0]}`)
      const left = backend.unsafeCount
      if (left > 0) {
        // The session stays (the server keeps knowing what it did for it) until it times out.
        backend.disconnect()
        say(`${left} of ${log.requests.length} requests of ${file} were not safe within ${RECOVERY_SAFE_MS} ms; kept for the next mount`)
        continue
      }
      await backend.close()
      replayed += log.requests.length
      say(`replayed ${log.requests.length} requests kept in ${file} (local durability)`)
    }
    try { fs.unlinkSync(file) } catch {}
  }
  return replayed
}
