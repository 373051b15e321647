// Benchmark of the SQLite object store on its own.
//
//   node dist/scripts/bench-store.js [--quick] [--dir DIR]
//
// (a) small omap sets, one per batch or 100 per batch, awaited one by one or
//     many in flight (group commit), durable and not;
// (b) 1 GiB as 4 MiB objects, then one durable sync; read back; beside it the
//     same bytes written to a plain file with fsync, on the same device;
// (c) SQLite bytes per empty file when storing a dentry (20-byte key, 8-byte
//     value) and an inode (8-byte key, 60-byte value) per file.
// --quick shrinks every case for a smoke run. DIR defaults to a temp dir,
// removed afterwards.

import fs from 'fs'
import os from 'os'
import path from 'path'
import { openStore, ObjectWrite, SqliteStore } from '../src/store'

const args = process.argv.slice(2)
const quick = args.includes('--quick')
const dirArg = args.indexOf('--dir') >= 0 ? args[args.indexOf('--dir') + 1] : undefined
const scale = quick ? 0.02 : 1
const MiB = 1024 * 1024

interface Row { name: string, count: number, seconds: number, unit: string, note: string }
const rows: Row[] = []

function report (name: string, count: number, seconds: number, unit: string, note = ''): void {
  rows.push({ name, count, seconds, unit, note })
  console.error(`  ${name}: ${(count / seconds).toFixed(0)} ${unit}/s ${note}`)
}

async function withStore<T> (base: string, tag: string, fn: (s: SqliteStore, dir: string) => Promise<T>): Promise<T> {
  const dir = path.join(base, tag)
  const store = await openStore(dir, { create: true })
  await store.createPool('p')
  try {
    return await fn(store, dir)
  } finally {
    await store.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

function dentryKey (i: number): Buffer {
  // 20 bytes, spread so inserts land all over the key space like real names.
  const h = (Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, '0')
  return Buffer.from(`f${h}-${String(i).padStart(10, '0')}`)
}

function inodeKey (ino: number): Buffer {
  const k = Buffer.alloc(8)
  k.writeBigUInt64BE(BigInt(ino))
  return k
}

/** Run n submissions with at most `inFlight` outstanding. */
async function drive (n: number, inFlight: number, make: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < n) await make(next++)
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane))
}

async function omapCase (base: string, perBatch: number, inFlight: number, durable: boolean, total: number): Promise<void> {
  await withStore(base, `omap-${perBatch}-${inFlight}-${durable ? 'd' : 'n'}`, async store => {
    const value = Buffer.alloc(8, 7)
    const before = store.stats()
    const t0 = performance.now()
    await drive(total / perBatch, inFlight, i => {
      const entries: Array<[Buffer, Buffer]> = []
      for (let k = 0; k < perBatch; k++) entries.push([dentryKey(i * perBatch + k), value])
      return store.submit([{ pool: 'p', name: `dir${i % 16}`, ops: [{ op: 'omapSet', entries }] }], { durable })
    })
    const seconds = (performance.now() - t0) / 1000
    const s = store.stats()
    const commits = s.commits - before.commits
    const batches = s.batches - before.batches
    report(`omap set, ${perBatch}/batch, ${inFlight} in flight, ${durable ? 'durable' : 'not durable'}`, total, seconds, 'sets',
      `${batches} batches in ${commits} commits`)
  })
}

async function bulkCase (base: string, totalBytes: number): Promise<void> {
  const objectBytes = 4 * MiB
  const n = Math.max(1, Math.floor(totalBytes / objectBytes))
  await withStore(base, 'bulk', async store => {
    const t0 = performance.now()
    await drive(n, 4, i => {
      const data = Buffer.alloc(objectBytes, i & 0xff)
      return store.submit([{ pool: 'p', name: `data.${i}`, ops: [{ op: 'writeFull', data }] }], { durable: false })
    })
    await store.sync()
    const wSec = (performance.now() - t0) / 1000
    report(`write ${n} x 4 MiB objects + sync`, n * objectBytes / MiB, wSec, 'MiB', `${store.stats().commits} commits`)
    const t1 = performance.now()
    let check = 0
    for (let i = 0; i < n; i++) {
      const got = store.readSync('p', `data.${i}`, 0, objectBytes)
      if (got === null || got.length !== objectBytes || got[objectBytes - 1] !== (i & 0xff)) throw new Error(`data.${i} read back wrong`)
      check += got.length
    }
    report(`read ${n} x 4 MiB objects`, check / MiB, (performance.now() - t1) / 1000, 'MiB')
  })
  // The device's own speed for the same bytes, for scale.
  const file = path.join(base, 'plain-file')
  const buf = Buffer.alloc(objectBytes, 1)
  const t2 = performance.now()
  const fd = fs.openSync(file, 'w')
  for (let i = 0; i < n; i++) fs.writeSync(fd, buf)
  fs.fsyncSync(fd)
  fs.closeSync(fd)
  report(`plain file: write ${n} x 4 MiB + fsync`, n * objectBytes / MiB, (performance.now() - t2) / 1000, 'MiB', 'same device, for scale')
  fs.rmSync(file)
}

async function footprintCase (base: string, files: number): Promise<void> {
  const dir = path.join(base, 'footprint')
  let store = await openStore(dir, { create: true })
  await store.createPool('meta')
  await store.close()
  const emptyBytes = fs.statSync(path.join(dir, 'store.db')).size
  store = await openStore(dir)
  const inode = Buffer.alloc(60, 3)
  const perBatch = 1000
  const t0 = performance.now()
  await drive(Math.ceil(files / perBatch), 8, b => {
    const dentries: Array<[Buffer, Buffer]> = []
    const inodes: Array<[Buffer, Buffer]> = []
    for (let i = b * perBatch; i < Math.min(files, (b + 1) * perBatch); i++) {
      const ino = 1000 + i
      dentries.push([dentryKey(i), inodeKey(ino)])
      inodes.push([inodeKey(ino), inode])
    }
    const batch: ObjectWrite[] = [
      { pool: 'meta', name: `dir.${b % 100}`, ops: [{ op: 'omapSet', entries: dentries }] },
      { pool: 'meta', name: `inotable.${Math.floor(b / 64)}`, ops: [{ op: 'omapSet', entries: inodes }] }
    ]
    return store.submit(batch, { durable: false })
  })
  const seconds = (performance.now() - t0) / 1000
  await store.close()
  const bytes = fs.statSync(path.join(dir, 'store.db')).size - emptyBytes
  report(`create ${files} empty files (2 omap rows each)`, files, seconds, 'files', `${(bytes / files).toFixed(1)} bytes of SQLite per file`)
  fs.rmSync(dir, { recursive: true, force: true })
}

async function main (): Promise<void> {
  const base = dirArg ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-bench-store-'))
  fs.mkdirSync(base, { recursive: true })
  console.error(`bench-store in ${base}${quick ? ' (quick)' : ''}`)
  try {
    const total = Math.round(100_000 * scale / 100) * 100
    await omapCase(base, 1, 1, false, total)
    await omapCase(base, 1, 1, true, Math.round(2000 * scale / 100) * 100 || 100)
    await omapCase(base, 1, 256, false, total)
    await omapCase(base, 1, 256, true, total)
    await omapCase(base, 100, 1, true, total)
    await omapCase(base, 100, 16, false, total)
    await omapCase(base, 100, 16, true, total)
    await bulkCase(base, Math.round(1024 * scale) * MiB)
    await footprintCase(base, Math.round(1_000_000 * scale))
  } finally {
    if (dirArg === undefined) fs.rmSync(base, { recursive: true, force: true })
  }
  const w = Math.max(...rows.map(r => r.name.length))
  console.log(`${'case'.padEnd(w)}  ${'count'.padStart(9)}  ${'seconds'.padStart(8)}  ${'rate'.padStart(16)}  note`)
  for (const r of rows) {
    const rate = `${(r.count / r.seconds).toFixed(0)} ${r.unit}/s`
    console.log(`${r.name.padEnd(w)}  ${String(r.count).padStart(9)}  ${r.seconds.toFixed(2).padStart(8)}  ${rate.padStart(16)}  ${r.note}`)
  }
}

main().catch(err => {
  console.error(err)
  process.exit(1)
})
