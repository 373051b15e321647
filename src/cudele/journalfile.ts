// local_persist: a decoupled client's journal in a local file, fsync'd.
//
// The file starts with one JSON header line (which subtree, which owner,
// which server), followed by segments: [u32 length][u64 seq][events...], the
// same event bytes the MDS journal holds. Segments are appended in order and
// fsync'd in batches; after a merge the file is rewritten with only what is
// still unmerged. When the client comes back after a crash it reads the file
// and carries on from there.

import * as fs from 'fs'
import * as path from 'path'

export interface JournalFileHeader {
  cudele: 'client-journal'
  version: 1
  /** Where the subtree lives: the server address, or the store directory (embedded). */
  source: string
  root: number
  owner: string
  inoStart: number
  count: number
}

export interface Segment {
  seq: number
  bytes: Uint8Array
}

const SEGMENT_HEADER = 12
/** Largest segment accepted when reading back (a corrupt length must not allocate gigabytes). */
const SEGMENT_MAX = 256 * 1024 * 1024

export class JournalFile {
  private fd: number
  private chain: Promise<void> = Promise.resolve()
  private failure: Error | null = null
  bytes = 0

  private constructor (readonly file: string, fd: number, readonly header: JournalFileHeader) {
    this.fd = fd
  }

  /** Create (or replace) the file for a subtree. */
  static create (file: string, header: JournalFileHeader, segments: Segment[] = []): JournalFile {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    const tmp = file + '.tmp'
    const fd = fs.openSync(tmp, 'w', 0o600)
    fs.writeSync(fd, JSON.stringify(header) + '\n')
    for (const s of segments) fs.writeSync(fd, frame(s))
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fs.renameSync(tmp, file)
    syncDir(path.dirname(file))
    const jf = new JournalFile(file, fs.openSync(file, 'a'), header)
    jf.bytes = fs.fstatSync(jf.fd).size
    return jf
  }

  /** Read a journal file: its header and every whole segment (a torn tail from a crash is ignored). */
  static read (file: string): { header: JournalFileHeader, segments: Segment[] } {
    const buf = fs.readFileSync(file)
    const nl = buf.indexOf(0x0a)
    if (nl < 0) throw new Error(`${file}: not a cudele client journal (no header)`)
    const header = JSON.parse(buf.subarray(0, nl).toString()) as JournalFileHeader
    if (header.cudele !== 'client-journal' || header.version !== 1) throw new Error(`${file}: not a cudele client journal (version ${String(header.version)})`)
    const segments: Segment[] = []
    let pos = nl + 1
    while (pos + SEGMENT_HEADER <= buf.length) {
      const len = buf.readUInt32BE(pos)
      if (len > SEGMENT_MAX || pos + SEGMENT_HEADER + len > buf.length) break
      const seq = Number(buf.readBigUInt64BE(pos + 4))
      segments.push({ seq, bytes: Buffer.from(buf.subarray(pos + SEGMENT_HEADER, pos + SEGMENT_HEADER + len)) })
      pos += SEGMENT_HEADER + len
    }
    return { header, segments }
  }

  /** Reopen an existing file for appending. */
  static reopen (file: string, header: JournalFileHeader): JournalFile {
    const jf = new JournalFile(file, fs.openSync(file, 'a'), header)
    jf.bytes = fs.fstatSync(jf.fd).size
    return jf
  }

  /** Append a segment; resolves once it is written and fsync'd. Appends keep their order. */
  append (seg: Segment): Promise<void> {
    const data = frame(seg)
    this.bytes += data.length
    const p = this.chain.then(async () => {
      if (this.failure) throw this.failure
      await writeAll(this.fd, data)
      await new Promise<void>((resolve, reject) => fs.fdatasync(this.fd, err => err ? reject(err) : resolve()))
    })
    this.chain = p.catch(err => { this.failure = err as Error })
    return p
  }

  /** Everything appended so far is on disk. */
  async flushed (): Promise<void> {
    await this.chain
    if (this.failure) throw this.failure
  }

  /** Keep only these segments (after a merge): the file is rewritten atomically. */
  async rewrite (segments: Segment[]): Promise<void> {
    await this.chain
    fs.closeSync(this.fd)
    const fresh = JournalFile.create(this.file, this.header, segments)
    this.fd = fresh.fd
    this.bytes = fresh.bytes
    this.failure = null
  }

  /** Done with the subtree: the file goes. */
  async remove (): Promise<void> {
    await this.chain.catch(() => {})
    try { fs.closeSync(this.fd) } catch {}
    try { fs.unlinkSync(this.file) } catch {}
  }

  close (): void {
    try { fs.closeSync(this.fd) } catch {}
  }
}

function frame (s: Segment): Buffer {
  const h = Buffer.allocUnsafe(SEGMENT_HEADER)
  h.writeUInt32BE(s.bytes.length, 0)
  h.writeBigUInt64BE(BigInt(s.seq), 4)
  return Buffer.concat([h, s.bytes])
}

async function writeAll (fd: number, data: Buffer): Promise<void> {
  let off = 0
  while (off < data.length) {
    off += await new Promise<number>((resolve, reject) => fs.write(fd, data, off, data.length - off, null, (err, n) => err ? reject(err) : resolve(n)))
  }
}

function syncDir (dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r')
    try { fs.fsyncSync(fd) } finally { fs.closeSync(fd) }
  } catch {}
}
