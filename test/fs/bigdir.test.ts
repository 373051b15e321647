// A directory of 100,000 entries: create, list, find, stat, remove half; a
// listing that runs while entries come and go shows every untouched entry
// exactly once; everything still adds up after a remount.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import * as path from 'path'
import { after, before, test } from 'node:test'
import { type CudeleMount, mountCudele, REPO, shOk, startChild } from '../helpers/mount'

const N = 100_000
const name = (prefix: string, i: number): string => prefix + String(i).padStart(6, '0')

let m: CudeleMount
let tool: string

before(async () => {
  m = await mountCudele()
  tool = path.join(m.root, 'bigdir')
  await shOk(`gcc -O2 -Wall -o "${tool}" "${path.join(REPO, 'test', 'fs', 'progs', 'bigdir.c')}"`)
})
after(async () => { await m?.cleanup() })

/** The names in dir (from `ls -f`, so in the filesystem's own order, with . and ..). */
async function listing (dir: string): Promise<string[]> {
  const out = await m.shOk(`ls -f "${dir}"`, { timeoutMs: 60000 })
  return out.split('\n').slice(0, -1)
}

function assertExactly (names: string[], want: Set<string>, what: string): void {
  const seen = new Set<string>()
  const dups: string[] = []
  for (const n of names) {
    if (seen.has(n)) dups.push(n)
    seen.add(n)
  }
  assert.deepEqual(dups.slice(0, 10), [], `${what}: names listed twice`)
  const missing = [...want].filter(n => !seen.has(n))
  const extra = [...seen].filter(n => !want.has(n))
  assert.deepEqual({ missing: missing.slice(0, 10), extra: extra.slice(0, 10) }, { missing: [], extra: [] },
    `${what}: ${missing.length} missing, ${extra.length} unexpected`)
}

/** What the directory should hold: the odd f-names (after the half removal), minus and plus the churn. */
let expected = new Set<string>()

test('100,000 entries: create, ls -f, find, stat a sample, remove half, list again', { timeout: 120000 }, async () => {
  await m.shOk(`mkdir big && "${tool}" mk big f 0 ${N}`, { timeoutMs: 90000 })
  const all = await listing('big')
  assert.equal(all.length, N + 2)
  const want = new Set<string>(['.', '..'])
  for (let i = 0; i < N; i++) want.add(name('f', i))
  assertExactly(all, want, 'after creating')
  assert.equal((await m.shOk('find big -type f | wc -l')).trim(), String(N))
  assert.equal((await m.shOk('find big -mindepth 1 -not -type f | wc -l')).trim(), '0')

  // stat a random sample: there, empty, regular; a name never made is not.
  const sample = Array.from({ length: 300 }, () => name('f', Math.floor(Math.random() * N)))
  const st = await m.shOk(`cd big && stat -c '%n %s %F %h %a' ${sample.join(' ')}`)
  assert.deepEqual(st.split('\n').slice(0, -1), sample.map(n => `${n} 0 regular empty file 1 644`))
  const missing = await m.sh('stat big/f100000 big/g000000')
  assert.notEqual(missing.code, 0)
  assert.match(missing.stderr, /No such file or directory/)

  // Remove the even names.
  await m.shOk(`"${tool}" rm big f 0 ${N / 2} 2`, { timeoutMs: 90000 })
  expected = new Set(['.', '..'])
  for (let i = 1; i < N; i += 2) expected.add(name('f', i))
  assertExactly(await listing('big'), expected, 'after removing half')
  assert.equal((await m.shOk('find big -type f | wc -l')).trim(), String(N / 2))
  assert.equal((await m.shOk('stat -c %h big')).trim(), '2')
})

test('a listing while names are created and others removed shows each untouched entry exactly once', { timeout: 120000 }, async (t) => {
  const churn = 10_000
  const stop = path.join(m.root, 'churn-done')
  fs.rmSync(stop, { force: true })
  // Removed during the listing: f000001, f000005, ... (every other odd name below 40,000).
  const removed = new Set<string>()
  for (let i = 0; i < churn; i++) removed.add(name('f', 1 + i * 4))
  const created = new Set<string>()
  for (let i = 0; i < churn; i++) created.add(name('g', i))
  const stable = [...expected].filter(n => !removed.has(n))

  const lister = startChild(tool, ['list', path.join(m.mnt, 'big'), stop, '40'])
  const mutator = startChild(tool, ['churn', path.join(m.mnt, 'big'), 'g', String(churn), 'f', '1', '4', stop])
  const [mc, lc] = await Promise.all([mutator.exit(90000), lister.exit(90000)])
  assert.equal(mc, 0, `churn failed: ${mutator.stderr()}`)
  assert.equal(lc, 0, `lister failed: ${lister.stderr()}`)

  const lines = lister.stdout().split('\n')
  let passes = 0
  let during = 0
  for (let i = 0; i < lines.length && lines[i].startsWith('PASS ');) {
    const startedDuring = lines[i] === 'PASS 1'
    let j = i + 1
    const names: string[] = []
    while (j < lines.length && !lines[j].startsWith('END ')) names.push(lines[j++])
    assert.ok(j < lines.length, 'a listing pass did not finish')
    passes++
    if (startedDuring && lines[j] === 'END 1') during++
    const what = `listing pass ${passes}${startedDuring ? ' (during the churn)' : ''}`
    const seen = new Map<string, number>()
    for (const n of names) seen.set(n, (seen.get(n) ?? 0) + 1)
    const dups = [...seen].filter(([, c]) => c > 1).map(([n]) => n)
    assert.deepEqual(dups.slice(0, 10), [], `${what}: ${dups.length} names listed more than once`)
    const lost = stable.filter(n => !seen.has(n))
    assert.deepEqual(lost.slice(0, 10), [], `${what}: ${lost.length} untouched entries missing`)
    const strange = [...seen.keys()].filter(n => !expected.has(n) && !created.has(n))
    assert.deepEqual(strange.slice(0, 10), [], `${what}: names that never existed`)
    i = j + 1
  }
  t.diagnostic(`${passes} listing passes, ${during} of them entirely during the churn`)
  assert.ok(passes >= 2, `only ${passes} listing passes`)
  assert.ok(during >= 1, `no listing pass ran entirely during the churn (${passes} passes)`)

  for (const n of removed) expected.delete(n)
  for (const n of created) expected.add(n)
  assertExactly(await listing('big'), expected, 'after the churn')
})

test('after a remount the big directory lists the same, and fsck is clean', { timeout: 120000 }, async () => {
  await m.remount()
  const names = await listing('big')
  assert.equal(names.length, expected.size)
  assertExactly(names, expected, 'after the remount')
  assert.equal((await m.shOk('find big -type f | wc -l')).trim(), String(expected.size - 2))
  const st = await m.shOk('cd big && stat -c "%n %s %F" f000003 g000007 f099999')
  assert.equal(st, 'f000003 0 regular empty file\ng000007 0 regular empty file\nf099999 0 regular empty file\n')
  await m.stop()
  const r = await m.fsck()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  await m.start()
})
