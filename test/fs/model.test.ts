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
const OPS = Number(process.env.CUDELE_MODEL_OPS ?? 5000)
const SEEDS = process.env.CUDELE_MODEL_SEEDS !== undefined
  ? process.env.CUDELE_MODEL_SEEDS.split(',').map(Number)
  : Array.from({ length: 6 }, () => Math.floor(Math.random() * 2 ** 31))

let m: CudeleMount
/**
 * The same filesystem with a tiny MDS cache and no kernel caching of names and
 * attributes: every operation reaches the server and goes through eviction and reloading.
 */
let small: CudeleMount
let ref: { dir: string, cleanup: () => void }

before(async () => {
  ref = mountTmpfs(2048)
  m = await mountCudele()
  small = await mountCudele({ args: ['--cache-inodes', '16', '--cache-dentries', '16', '--attr-timeout', '0', '--entry-timeout', '0'] })
})
after(async () => {
  await m?.cleanup()
  await small?.cleanup()
  ref?.cleanup()
})

/**
 * Where a seed runs: one level below a directory of its own, because symbolic
 * links like ../x (which creates through them follow) may point one level up.
 */
function dir (base: string, seed: number): string {
  return path.join(base, `s${seed}`, 'root')
}

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

for (const [k, seed] of SEEDS.entries()) {
  // Every other seed runs on the mount with the tiny cache.
  const on = (): CudeleMount => k % 2 === 0 ? m : small
  test(`seed ${seed}: ${OPS} random operations give the same results on cudele${k % 2 === 0 ? '' : ' (tiny MDS cache, no kernel cache)'} and tmpfs`, { timeout: 300000 }, async () => {
    const [got, want] = await Promise.all([run(seed, dir(on().mnt, seed)), run(seed, dir(ref.dir, seed))])
    assert.equal(got.length, want.length)
    const i = got.findIndex((line, k) => line !== want[k])
    if (i >= 0) {
      assert.fail(`seed ${seed}: operation ${i} differs (CUDELE_MODEL_SEEDS=${seed} to replay)\n` +
        `  before it:\n    ${want.slice(Math.max(0, i - 5), i).join('\n    ')}\n  tmpfs:  ${want[i]}\n  cudele: ${got[i]}`)
    }
    // Not a vacuous run: most kinds of operation succeeded somewhere.
    const succeeded = new Set(want.filter(l => !/-> E[A-Z]+$/.test(l)).map(l => l.split(' ')[1]))
    assert.ok(succeeded.size >= 14, `seed ${seed}: only ${[...succeeded].join(', ')} ever succeeded`)
    const tree = await walk(dir(ref.dir, seed))
    sameTree(await walk(dir(on().mnt, seed)), tree, `seed ${seed}: the final trees differ`)
    trees.set(seed, tree)
  })
}

// Found by the random test: the truncate's commit was not waited for by reads
// when the file had no open handle, so with the store busy (big writes
// committing) open(O_TRUNC) followed by a read returned the old bytes.
test('open(O_TRUNC) then read while the store is busy with other writes reads zeros, not the old data', { timeout: 60000 }, async () => {
  const r = await m.sh(`python3 - <<'EOF'
import os
os.makedirs('busy', exist_ok=True)
bad = []
for i in range(3):
    with open('busy/c', 'wb') as f:
        f.write(b'\\xab' * 4534)
    big = os.open('busy/big', os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for k in range(64):
        os.write(big, os.urandom(1 << 20))
    fd = os.open('busy/c', os.O_RDWR | os.O_TRUNC)
    os.pwrite(fd, b'x' * 10, 3000000)
    got = os.pread(fd, 4534, 0)
    if got != bytes(4534):
        bad.append(i)
    os.close(fd)
    os.close(big)
print(bad)
EOF`, { timeoutMs: 60000 })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout.trim(), '[]', 'rounds where the truncated file read back old data')
})

// Found by the random test: an open directory was not held open in the MDS,
// so once removed it could be purged under its descriptor (fstat: ENOENT).
test('a directory removed while open stays usable through its descriptor until closed, then goes', { timeout: 60000 }, async () => {
  const r = await small.sh(`python3 - <<'EOF'
import os
os.mkdir('gone')
fd = os.open('gone', os.O_RDONLY)
os.rmdir('gone')
# Closing an unlinked file is what sets purges going.
f = open('other', 'w')
os.unlink('other')
f.close()
st = os.fstat(fd)
print(oct(st.st_mode), st.st_nlink, os.listdir(fd))
os.close(fd)
EOF`)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, '0o40755 0 []\n')
  await small.stop()
  const f = await small.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
  assert.match(f.stderr, / 0 pending removal/)
  await small.start()
})

test('after a remount the cudele trees still match tmpfs, and fsck is clean', { timeout: 120000 }, async () => {
  for (const fs of [m, small]) await fs.remount()
  for (const [k, seed] of SEEDS.entries()) {
    const tree = trees.get(seed)
    if (tree !== undefined) sameTree(await walk(dir((k % 2 === 0 ? m : small).mnt, seed)), tree, `seed ${seed}: after a remount the trees differ`)
  }
  for (const fs of [m, small]) {
    await fs.stop()
    const r = await fs.fsck()
    assert.equal(r.code, 0, r.stdout + r.stderr)
    await fs.start()
  }
})
