// Round trips: a tree with every kind of thing tar and cp -a keep (sizes across
// stripe boundaries, a sparse file, set-id and sticky modes, nanosecond
// mtimes, symlinks, hard links, a FIFO, odd names, other owners, xattrs) goes
// into the mount and back out, and must come back identical — before and
// after a remount. Then real tools that lean on the filesystem: git and make.

import assert from 'node:assert/strict'
import * as path from 'path'
import { after, before, test } from 'node:test'
import { type CudeleMount, mountCudele, mountTmpfs, REPO, sh, shOk } from '../helpers/mount'

const TREE = path.join(REPO, 'test', 'fs', 'progs', 'tree.py')
const TAR_OUT = 'tar --xattrs --xattrs-include="user.*" -cpf -'
const TAR_IN = 'tar --xattrs --xattrs-include="user.*" -xpf -'

let m: CudeleMount
let tmp: { dir: string, cleanup: () => void }
let src: string
let original: string

before(async () => {
  tmp = mountTmpfs(512)
  m = await mountCudele()
  src = path.join(tmp.dir, 'src')
  await shOk(`python3 "${TREE}" build "${src}"`)
  original = await walk(src)
})
after(async () => {
  await m?.cleanup()
  tmp?.cleanup()
})

async function walk (dir: string): Promise<string> {
  return await shOk(`python3 "${TREE}" walk "${dir}"`, { timeoutMs: 60000 })
}

/** Compare two tree descriptions, showing the first lines that differ. */
function sameTree (got: string, want: string, what: string): void {
  if (got === want) return
  const g = got.split('\n')
  const w = want.split('\n')
  const onlyGot = g.filter(l => !w.includes(l))
  const onlyWant = w.filter(l => !g.includes(l))
  assert.fail(`${what} differs from the original:\n  expected:\n    ${onlyWant.slice(0, 8).join('\n    ')}\n  got:\n    ${onlyGot.slice(0, 8).join('\n    ')}`)
}

async function diffR (a: string, b: string): Promise<void> {
  const r = await sh(`diff -r --no-dereference -x fifo "${a}" "${b}"`, { timeoutMs: 60000 })
  assert.equal(r.code, 0, `diff -r ${a} ${b}:\n${r.stdout}${r.stderr}`)
}

test('the source tree has what the round trips must keep', () => {
  for (const want of [/^a\/f9437307 file /m, /^sparse file .*size=24117253/m, /^a\/b\/c\/m4755 file 4755 uid=1002 gid=2002/m,
    /^sticky dir 1777/m, /^dangling symlink .*target=does\/not\/exist/m, /^fifo fifo 0640/m, /^triple file .*nlink=3/m,
    /^\\xff\\xfe\\x20not\\x20utf-8 file/m, /xattr:user.bin=00010203/, /mtime=\d+[1-9]\d{0,2} /]) {
    assert.match(original, want)
  }
})

test('tar into the mount and back out: identical', { timeout: 120000 }, async () => {
  await shOk(`mkdir "${m.mnt}/tar" && ${TAR_OUT} -C "${src}" . | ${TAR_IN} -C "${m.mnt}/tar"`)
  sameTree(await walk(path.join(m.mnt, 'tar')), original, 'the tar copy in the mount')
  await diffR(src, path.join(m.mnt, 'tar'))
  const back = path.join(tmp.dir, 'back-tar')
  await shOk(`mkdir "${back}" && ${TAR_OUT} -C "${m.mnt}/tar" . | ${TAR_IN} -C "${back}"`)
  sameTree(await walk(back), original, 'the tar copy back out of the mount')
  await diffR(src, back)
})

test('cp -a into the mount and back out: identical', { timeout: 120000 }, async () => {
  await shOk(`mkdir "${m.mnt}/cp" && cp -a "${src}/." "${m.mnt}/cp/"`)
  sameTree(await walk(path.join(m.mnt, 'cp')), original, 'the cp -a copy in the mount')
  const back = path.join(tmp.dir, 'back-cp')
  await shOk(`mkdir "${back}" && cp -a "${m.mnt}/cp/." "${back}/"`)
  sameTree(await walk(back), original, 'the cp -a copy back out of the mount')
  await diffR(src, back)
})

test('after a remount both copies are still identical, and fsck is clean', { timeout: 120000 }, async () => {
  await m.remount()
  sameTree(await walk(path.join(m.mnt, 'tar')), original, 'the tar copy after a remount')
  sameTree(await walk(path.join(m.mnt, 'cp')), original, 'the cp -a copy after a remount')
  await m.stop()
  const r = await m.fsck()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  await m.start()
})

test('git: init, add, commit, fsck, gc, and a clone out of the mount', { timeout: 120000 }, async () => {
  const git = 'git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main'
  await m.shOk(`mkdir repo && cd repo && ${git} init -q && cp -a "${src}/a" "${src}/deep" "${src}/dangling" "${src}/triple" . && ` +
    `${git} add -A && ${git} commit -qm first && echo more >> triple && ${git} mv a b && ${git} commit -qam second`)
  const fsckOut = await m.shOk(`cd repo && ${git} fsck --full --strict 2>&1`)
  assert.doesNotMatch(fsckOut, /error|missing|corrupt|dangling/i)
  assert.equal(await m.shOk('cd repo && git status --porcelain'), '')
  assert.equal((await m.shOk('cd repo && git rev-list --count HEAD')).trim(), '2')
  await m.shOk(`cd repo && ${git} gc -q && ${git} fsck --full --strict`)
  // A clone outside the mount checks out the same files.
  const clone = path.join(tmp.dir, 'clone')
  await shOk(`git clone -q "${m.mnt}/repo" "${clone}"`)
  await shOk(`cd "${m.mnt}/repo" && git ls-files -s > "${tmp.dir}/ls-mnt" && cd "${clone}" && git ls-files -s > "${tmp.dir}/ls-clone" && cmp "${tmp.dir}/ls-mnt" "${tmp.dir}/ls-clone"`)
  await diffR(path.join(m.mnt, 'repo', 'b'), path.join(clone, 'b'))
})

test('make builds a C program in the mount, and rebuilds only what changed', { timeout: 60000 }, async () => {
  await m.shOk(`mkdir proj && cd proj && printf '%s\\n' '#include <stdio.h>' 'int answer(void);' 'int main(void) { printf("%d\\n", answer()); return 0; }' > main.c && ` +
    `echo 'int answer(void) { return 42; }' > answer.c && ` +
    `printf 'prog: main.o answer.o\\n\\t$(CC) -o $@ $^\\n%%.o: %%.c\\n\\t$(CC) -O2 -c -o $@ $<\\n' > Makefile`)
  await m.shOk('cd proj && make -s')
  assert.equal(await m.shOk('cd proj && ./prog'), '42\n')
  assert.equal((await m.shOk('cd proj && make')).trim(), "make: 'prog' is up to date.")
  await m.shOk('cd proj && sleep 0.01 && echo "int answer(void) { return 7; }" > answer.c')
  const rebuilt = await m.shOk('cd proj && make')
  assert.match(rebuilt, /answer\.o/)
  assert.doesNotMatch(rebuilt, /-o main\.o/)
  assert.equal(await m.shOk('cd proj && ./prog'), '7\n')
})
