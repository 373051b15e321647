// Differential random testing (the JuiceFS idea): the same seeded sequence of
// operations runs in a directory on cudele and in one on tmpfs; every
// operation's result (ok, errno, or what it read) and the final trees must be
// the same — and the cudele trees again after a remount.
//
// CUDELE_MODEL_SEEDS=1,2,3 and CUDELE_MODEL_OPS=n replay a failure.

import assert from 'node:assert/strict'
import * as path from 'path'
import { after, before, test } from 'node:test'
import { type CudeleMount, mountCudele, mountTmpfs, REPO, shOk } from '../helpers/mount'

const MODEL = path.join(REPO, 'test', 'fs', 'progs', 'model.py')
const OPS = Number(process.env.CUDELE_MODEL_OPS ?? 4000)
const SEEDS = process.env.CUDELE_MODEL_SEEDS !== undefined
  ? process.env.CUDELE_MODEL_SEEDS.split(',').map(Number)
  : Array.from({ length: 4 }, () => Math.floor(Math.random() * 2 ** 31))

let m: CudeleMount
let ref: { dir: string, cleanup: () => void }

before(async () => {
  ref = mountTmpfs(2048)
  m = await mountCudele()
})
after(async () => {
  await m?.cleanup()
  ref?.cleanup()
})

async function run (seed: number, root: string): Promise<string[]> {
  return (await shOk(`python3 "${MODEL}" run ${seed} ${OPS} "${root}"`, { timeoutMs: 240000 })).split('\n')
}

async function walk (root: string): Promise<string> {
  return await shOk(`python3 "${MODEL}" walk "${root}"`, { timeoutMs: 60000 })
}

function sameTree (got: string, want: string, what: string): void {
  if (got === want) return
  const g = got.split('\n')
  const w = want.split('\n')
  assert.fail(`${what}:\n  only on tmpfs:\n    ${w.filter(l => !g.includes(l)).slice(0, 10).join('\n    ')}\n  only on cudele:\n    ${g.filter(l => !w.includes(l)).slice(0, 10).join('\n    ')}`)
}

const trees = new Map<number, string>()

for (const seed of SEEDS) {
  test(`seed ${seed}: ${OPS} random operations give the same results on cudele and tmpfs`, { timeout: 300000 }, async () => {
    const [got, want] = await Promise.all([run(seed, path.join(m.mnt, `s${seed}`)), run(seed, path.join(ref.dir, `s${seed}`))])
    assert.equal(got.length, want.length)
    const i = got.findIndex((line, k) => line !== want[k])
    if (i >= 0) {
      assert.fail(`seed ${seed}: operation ${i} differs (CUDELE_MODEL_SEEDS=${seed} to replay)\n` +
        `  before it:\n    ${want.slice(Math.max(0, i - 5), i).join('\n    ')}\n  tmpfs:  ${want[i]}\n  cudele: ${got[i]}`)
    }
    // Not a vacuous run: most kinds of operation succeeded somewhere.
    const succeeded = new Set(want.filter(l => !/-> E[A-Z]+$/.test(l)).map(l => l.split(' ')[1]))
    assert.ok(succeeded.size >= 14, `seed ${seed}: only ${[...succeeded].join(', ')} ever succeeded`)
    const tree = await walk(path.join(ref.dir, `s${seed}`))
    sameTree(await walk(path.join(m.mnt, `s${seed}`)), tree, `seed ${seed}: the final trees differ`)
    trees.set(seed, tree)
  })
}

test('after a remount the cudele trees still match tmpfs, and fsck is clean', { timeout: 120000 }, async () => {
  await m.remount()
  for (const [seed, tree] of trees) sameTree(await walk(path.join(m.mnt, `s${seed}`)), tree, `seed ${seed}: after a remount the trees differ`)
  await m.stop()
  const r = await m.fsck()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  await m.start()
})
