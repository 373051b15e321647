// Crashes: the server is killed (SIGKILL) at random moments of a write-heavy
// run. After each crash the store must check clean (the journal replays, no
// orphans, sizes match the data objects), every file that was fsync'd (or
// whose directory was) must read back exactly, and no file may hold a byte
// that was never written at its offset. Rounds run on the same store, so
// state accumulates across crashes.
//
// CUDELE_CRASH_SEED=<n> replays a run; the seed is in every failure message.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import * as path from 'path'
import { after, before, test } from 'node:test'
import { type CudeleMount, isMounted, mountCudele, PROGS, sh, startChild } from '../helpers/mount'
import { prng } from './progs/content'

const WORKLOAD = path.join(PROGS, 'crash-workload.js')
const ROUNDS = 12
const seed = Number(process.env.CUDELE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31))
const rnd = prng(seed)

let m: CudeleMount
/** One log for all runs: the checker needs every rename ("R" lines) of every round. */
let log: string

before(async () => {
  m = await mountCudele()
  log = path.join(m.root, 'crash.log')
  fs.writeFileSync(log, '')
})
after(async () => { await m?.cleanup() })

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

interface Verified { logged: number, files: number, bytes: number, bigFiles: number, problems: Array<{ path: string, problem: string }> }

/** Run a workload, SIGKILL the server after delayMs, and check the workload only failed because of that. */
async function crashDuring (args: string[], delayMs: number, what: string): Promise<void> {
  const w = startChild(process.execPath, [WORKLOAD, ...args])
  await w.waitFor(/^START$/, 20000)
  await sleep(delayMs)
  assert.ok(w.child.exitCode === null, `${what}: the workload ended before the crash:\n${w.stdout()}\n${w.stderr()}`)
  const killedAt = Date.now()
  await m.kill()
  assert.equal(isMounted(m.mnt), false, `${what}: the mount is still there after the server was killed`)
  await w.exit(15000)
  const stop = w.stdout().split('\n').find(l => l.startsWith('STOP ') || l.startsWith('DONE '))
  assert.ok(stop !== undefined && stop.startsWith('STOP '), `${what}: the workload did not stop on the crash:\n${w.stdout()}\n${w.stderr()}`)
  const at = Number(stop.split(' ')[1])
  // Any error before the kill is a bug of the filesystem, not the crash.
  assert.ok(at >= killedAt - 1, `${what}: the workload failed ${killedAt - at} ms before the crash: ${stop}`)
}

async function fsckClean (what: string): Promise<number> {
  const r = await m.fsck()
  assert.equal(r.code, 0, `${what}: fsck after the crash is not clean (exit ${r.code}):\n${r.stdout}${r.stderr}`)
  const replayed = /(\d+) journal events replayed/.exec(r.stderr)
  assert.ok(replayed, `${what}: unexpected fsck summary: ${r.stderr}`)
  return Number(replayed[1])
}

async function verify (what: string): Promise<Verified> {
  const r = await sh(`"${process.execPath}" "${WORKLOAD}" verify "${m.mnt}" "${log}"`, { timeoutMs: 120000 })
  assert.equal(r.code, 0, `${what}: verifier failed: ${r.stderr}`)
  const v = JSON.parse(r.stdout) as Verified
  assert.deepEqual(v.problems, [], `${what}: ${v.problems.length} problem(s) after the crash`)
  return v
}

test(`kill -9 at random moments of a write-heavy run, ${ROUNDS} rounds on one store (seed ${seed})`, { timeout: 300000 }, async () => {
  let replayedTotal = 0
  let last: Verified | null = null
  for (let round = 0; round < ROUNDS; round++) {
    const what = `seed ${seed} round ${round}`
    const delay = 100 + Math.floor(rnd() * 2900)
    await crashDuring(['mixed', m.mnt, log, String(seed + round), `r${round}`], delay, `${what} (kill after ${delay} ms)`)
    replayedTotal += await fsckClean(what)
    await m.start()
    last = await verify(what)
  }
  // The run must have had something to lose: fsync'd files, and crashes with journal left to replay.
  assert.ok(last !== null && last.logged >= 20, `seed ${seed}: only ${last?.logged} fsync'd files over ${ROUNDS} rounds`)
  assert.ok(last.files >= 40, `seed ${seed}: only ${last.files} files survived in all`)
  assert.ok(replayedTotal > 0, `seed ${seed}: no crash left journal events to replay`)
})

test(`kill -9 during a large single-file write (seed ${seed})`, { timeout: 180000 }, async () => {
  for (let round = 0; round < 4; round++) {
    const what = `seed ${seed} big round ${round}`
    const delay = 300 + Math.floor(rnd() * 2700)
    await crashDuring(['big', m.mnt, log, String(seed + 100 + round), `g${round}`], delay, `${what} (kill after ${delay} ms)`)
    await fsckClean(what)
    await m.start()
    const v = await verify(what)
    assert.ok(v.bigFiles >= round + 1, `${what}: no fsync of the big file was logged before the crash`)
  }
})

test('kill -9 right after fsync of a directory keeps that directory\'s new entries', { timeout: 60000 }, async () => {
  for (let round = 0; round < 3; round++) {
    const dir = `dirsync-${round}`
    const count = 200
    const w = startChild(process.execPath, [WORKLOAD, 'dirsync', m.mnt, dir, String(count)])
    await w.waitFor(/^synced$/, 30000)
    await m.kill()
    await w.exit(0) // it waits to be killed
    await fsckClean(`dirsync round ${round}`)
    await m.start()
    const r = await m.node(`
      const fs = require('fs'); const c = require(${JSON.stringify(path.join(PROGS, 'content.js'))})
      const out = []
      for (let i = 0; i < ${count}; i++) {
        const p = '${dir}/e' + i
        let st
        try { st = fs.lstatSync(p) } catch (e) { out.push(p + ': ' + e.code); continue }
        const kind = i % 4
        if (kind === 1 ? !st.isDirectory() : kind === 2 ? !st.isSymbolicLink() : !st.isFile()) { out.push(p + ': wrong type'); continue }
        if (kind === 2 && fs.readlinkSync(p) !== 'target-' + i) out.push(p + ': wrong target')
        const size = kind === 0 ? 1000 + i * 37 : kind === 3 ? 10 + i : -1
        if (size >= 0 && !fs.readFileSync(p).equals(c.expected('${dir}/e' + i, 0, size))) out.push(p + ': contents differ')
        if (kind === 3 && fs.existsSync(p + '.tmp')) out.push(p + '.tmp: still there after its rename')
      }
      console.log(JSON.stringify(out))`)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), [], `round ${round}: entries lost after fsync of the directory`)
  }
})
