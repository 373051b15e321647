// Two client mounts of one server see each other's changes at once: the
// namespace, attributes, data after close, and — through capability revokes —
// the size of a file still being written on the other side. The kernel of a
// client mount caches nothing, so no stale positive or negative entry hides a
// change made elsewhere.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type ClientMount, cleanupServers, mountClient, type ServerProc, startServer } from '../helpers/server'
import { mountCudele, startChild } from '../helpers/mount'

let srv: ServerProc
let a: ClientMount
let b: ClientMount

before(async () => {
  srv = await startServer()
  a = await mountClient(srv, 'a')
  b = await mountClient(srv, 'b')
})
after(cleanupServers)

/** A fresh directory for one test, made on A. */
let dirs = 0
async function dir (): Promise<string> {
  const d = `t${dirs++}`
  await a.shOk(`mkdir ${d}`)
  return d
}

const statLine = (m: ClientMount, paths: string, fmt = '%n %F %a %u %g %h %s'): Promise<string> => m.shOk(`stat -c '${fmt}' ${paths}`)

test('create on A is seen by B at once; unlink on B is seen by A at once', { timeout: 60000 }, async () => {
  const d = await dir()
  await a.shOk(`touch ${d}/x`)
  assert.match(await b.shOk(`ls -l ${d}/x`), /^-rw-r--r-- 1 root root 0 .* t\d+\/x\n$/)
  await b.shOk(`rm ${d}/x`)
  const r = await a.sh(`ls -l ${d}/x`)
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /No such file or directory/)
  assert.equal(await a.shOk(`ls -A ${d}`), '')
})

test('renames of files and directories (within and across directories) are seen on the other side', { timeout: 60000 }, async () => {
  const d = await dir()
  await a.shOk(`mkdir -p ${d}/src/sub && echo one > ${d}/src/sub/f && echo two > ${d}/g && mkdir ${d}/dst`)
  await b.shOk(`mv ${d}/src ${d}/dst/moved && mv ${d}/g ${d}/dst/moved/sub/g2`)
  assert.equal(await a.shOk(`cat ${d}/dst/moved/sub/f ${d}/dst/moved/sub/g2`), 'one\ntwo\n')
  assert.notEqual((await a.sh(`ls ${d}/src`)).code, 0)
  assert.notEqual((await a.sh(`ls ${d}/g`)).code, 0)
  assert.equal(await a.shOk(`ls ${d} ${d}/dst/moved/sub`), `${d}:\ndst\n\n${d}/dst/moved/sub:\nf\ng2\n`)
  // A rename over an existing file on A replaces it for B.
  await a.shOk(`echo new > ${d}/n && mv ${d}/n ${d}/dst/moved/sub/f`)
  assert.equal(await b.shOk(`cat ${d}/dst/moved/sub/f; ls ${d}`), 'new\ndst\n')
  // ".." of a moved directory follows it.
  await a.shOk(`mkdir ${d}/p1 ${d}/p2 ${d}/p1/c`)
  await b.shOk(`mv ${d}/p1/c ${d}/p2/c`)
  assert.equal(await a.shOk(`cd ${d}/p2/c && cd .. && pwd -P | xargs basename && stat -c %h ../p1 ../p2`), 'p2\n2\n3\n')
})

test('chmod, chown and utimes on A are seen by B at once (and the other way)', { timeout: 60000 }, async () => {
  const d = await dir()
  await a.shOk(`touch ${d}/f && mkdir ${d}/sd`)
  assert.equal(await statLine(b, `${d}/f`, '%a %u %g'), '644 0 0\n')
  await a.shOk(`chmod 600 ${d}/f && chown 1234:5678 ${d}/f && touch -m -d '2001-02-03 04:05:06.789' ${d}/f && touch -a -d '1999-01-01 00:00:01' ${d}/f`)
  assert.equal(await statLine(b, `${d}/f`, '%a %u %g %.9Y %.9X'), '600 1234 5678 981173106.789000000 915148801.000000000\n')
  await b.shOk(`chmod 2750 ${d}/sd && chown 7:8 ${d}/sd && touch -d '2020-05-05 05:05:05' ${d}/sd`)
  assert.equal(await statLine(a, `${d}/sd`, '%a %u %g %Y'), '2750 7 8 1588655105\n')
  // ctime moves on A's view after B's chmod.
  const before = Number(await a.shOk(`stat -c %.9Z ${d}/f`))
  await new Promise(resolve => setTimeout(resolve, 20))
  await b.shOk(`chmod 640 ${d}/f`)
  const [mode, ctime] = (await a.shOk(`stat -c '%a %.9Z' ${d}/f`)).trim().split(' ')
  assert.equal(mode, '640')
  assert.ok(Number(ctime) > before, `ctime ${ctime} after chmod on B, ${before} before`)
})

test('data written and closed on A reads byte-identical on B (small, and > 4 MiB across stripes)', { timeout: 90000 }, async () => {
  const d = await dir()
  await a.shOk(`printf 'hello\\n' > ${d}/small && head -c 9437185 /dev/urandom > ${d}/big`)
  const sum = await a.shOk(`cd ${d} && md5sum small big`)
  assert.equal(await b.shOk(`cd ${d} && md5sum small big`), sum)
  assert.equal(await statLine(b, `${d}/big`, '%s'), '9437185\n')
  // B overwrites the middle (crossing the 4 MiB stripe boundary) and appends; A sees exactly that.
  await b.shOk(`printf 'XYZXYZ' | dd of=${d}/big bs=1 seek=4194301 conv=notrunc status=none && printf 'end' >> ${d}/big`)
  const py = `import sys; d=open('${d}/big','rb').read(); sys.stdout.write('%d %s %s' % (len(d), d[4194301:4194307].decode(), d[-3:].decode()))`
  assert.equal(await a.shOk(`python3 -c "${py}"`), '9437188 XYZXYZ end')
  assert.equal(await a.shOk(`cd ${d} && md5sum big`), await b.shOk(`cd ${d} && md5sum big`))
  // A truncation on A is seen by B.
  await a.shOk(`truncate -s 4194304 ${d}/big`)
  assert.equal(await statLine(b, `${d}/big`, '%s'), '4194304\n')
  assert.equal(await a.shOk(`cd ${d} && md5sum big`), await b.shOk(`cd ${d} && md5sum big`))
})

test('mkdir and rmdir on one side, seen on the other; rmdir of a directory the other side filled fails', { timeout: 60000 }, async () => {
  const d = await dir()
  await a.shOk(`mkdir ${d}/m1 ${d}/m2`)
  assert.equal(await b.shOk(`stat -c '%F %h' ${d}/m1; stat -c %h ${d}`), 'directory 2\n4\n')
  await b.shOk(`rmdir ${d}/m1`)
  assert.equal(await a.shOk(`ls ${d}; stat -c %h ${d}`), 'm2\n3\n')
  await b.shOk(`touch ${d}/m2/inside`)
  const r = await a.sh(`rmdir ${d}/m2`)
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /not empty/i)
  await b.shOk(`rm ${d}/m2/inside`)
  await a.shOk(`rmdir ${d}/m2`)
  assert.equal(await b.shOk(`ls -A ${d}`), '')
})

test('hard links: nlink seen on both sides, data shared, unlink of one name keeps the other', { timeout: 60000 }, async () => {
  const d = await dir()
  await a.shOk(`echo linked > ${d}/f && ln ${d}/f ${d}/l1`)
  assert.equal(await statLine(b, `${d}/f ${d}/l1`, '%h'), '2\n2\n')
  await b.shOk(`ln ${d}/l1 ${d}/l2`)
  assert.equal(await statLine(a, `${d}/f ${d}/l1 ${d}/l2`, '%h'), '3\n3\n3\n')
  assert.equal(await a.shOk(`stat -c %i ${d}/f ${d}/l2 | uniq | wc -l`), '1\n')
  await a.shOk(`echo more >> ${d}/l2`)
  assert.equal(await b.shOk(`cat ${d}/f`), 'linked\nmore\n')
  await b.shOk(`rm ${d}/f`)
  assert.equal(await statLine(a, `${d}/l1 ${d}/l2`, '%h'), '2\n2\n')
  assert.equal(await a.shOk(`cat ${d}/l1`), 'linked\nmore\n')
})

test('symlinks made on A resolve on B', { timeout: 60000 }, async () => {
  const d = await dir()
  await a.shOk(`mkdir ${d}/real && echo target > ${d}/real/t && ln -s real/t ${d}/rel && ln -s "$PWD/${d}/real" ${d}/abs && ln -s nowhere ${d}/dangling`)
  assert.equal(await b.shOk(`readlink ${d}/rel ${d}/dangling && cat ${d}/rel && stat -c %F ${d}/rel`), 'real/t\nnowhere\ntarget\nsymbolic link\n')
  // An absolute link names A's mountpoint; resolve it relative to B's instead.
  assert.equal(await b.shOk(`basename "$(readlink ${d}/abs)" && ls ${d}/abs/`), 'real\nt\n')
  assert.notEqual((await b.sh(`cat ${d}/dangling`)).code, 0)
  // Creating the missing target on B makes the dangling link work on A.
  await b.shOk(`echo now > ${d}/nowhere`)
  assert.equal(await a.shOk(`cat ${d}/dangling`), 'now\n')
})

test('a file still being written on A: stat on B sees the size written so far, and the data', { timeout: 60000 }, async () => {
  const d = await dir()
  // The writer holds the file open (BUFFER capability: its writes are buffered) and waits.
  const w = startChild('python3', ['-u', '-c', `
import os, sys
fd = os.open('${d}/growing', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b'a' * 1000)
print('wrote 1000', flush=True)
sys.stdin.readline()
os.write(fd, b'b' * 70000)
print('wrote 71000', flush=True)
sys.stdin.readline()
os.close(fd)
print('closed', flush=True)
`], { cwd: a.mnt, stdin: true })
  await w.waitFor(/^wrote 1000$/)
  assert.equal(await statLine(b, `${d}/growing`, '%s'), '1000\n')
  w.child.stdin?.write('\n')
  await w.waitFor(/^wrote 71000$/)
  assert.equal(await statLine(b, `${d}/growing`, '%s'), '71000\n')
  const py = `import sys; d=open('${d}/growing','rb').read(); sys.stdout.write('%d %d %d' % (len(d), d.count(b'a'), d.count(b'b')))`
  assert.equal(await b.shOk(`python3 -c "${py}"`), '71000 1000 70000')
  w.child.stdin?.end('\n')
  await w.waitFor(/^closed$/)
  assert.equal(await w.exit(), 0)
  assert.equal(await a.shOk(`python3 -c "${py}"`), '71000 1000 70000')
})

test('a reader on B that keeps the file open sees A\'s appends (size and data), like tail -f', { timeout: 60000 }, async () => {
  const d = await dir()
  await a.shOk(`echo first > ${d}/log`)
  const r = startChild('python3', ['-u', '-c', `
import os, sys
f = open('${d}/log', 'rb')
for i in range(3):
    print('read', repr(f.read()), os.fstat(f.fileno()).st_size, os.stat('${d}/log').st_size, flush=True)
    sys.stdin.readline()
`], { cwd: b.mnt, stdin: true })
  assert.equal(await r.waitFor(/^read /), "read b'first\\n' 6 6")
  await a.shOk(`echo second >> ${d}/log`)
  r.child.stdin?.write('\n')
  assert.equal(await r.waitFor(/^read b'second/), "read b'second\\n' 13 13")
  // Also while A still holds the file open for writing (B's stat revokes A's BUFFER).
  const w = startChild('python3', ['-u', '-c', `
import os, sys
fd = os.open('${d}/log', os.O_WRONLY | os.O_APPEND)
os.write(fd, b'third\\n')
print('wrote', flush=True)
sys.stdin.readline()
`], { cwd: a.mnt, stdin: true })
  await w.waitFor(/^wrote$/)
  r.child.stdin?.write('\n')
  assert.equal(await r.waitFor(/^read b'third/), "read b'third\\n' 19 19")
  r.child.stdin?.end('\n')
  w.child.stdin?.end('\n')
  assert.equal(await r.exit(), 0)
  assert.equal(await w.exit(), 0)
})

test('a negative lookup on B does not hide a file A creates afterwards', { timeout: 60000 }, async () => {
  const d = await dir()
  for (let i = 0; i < 3; i++) {
    assert.notEqual((await b.sh(`stat ${d}/late${i}`)).code, 0)
    // The kernel's dentry cache is per mount, so a negative entry from this stat would hide the file below.
    await a.shOk(`echo ${i} > ${d}/late${i}`)
    assert.equal(await b.shOk(`cat ${d}/late${i}`), `${i}\n`)
  }
  // The same for a name that existed, was removed on B, and is created again on A.
  await b.shOk(`rm ${d}/late0 && ! test -e ${d}/late0`)
  await a.shOk(`mkdir ${d}/late0`)
  assert.equal(await b.shOk(`stat -c %F ${d}/late0`), 'directory\n')
})

test('the embedded mount still works', { timeout: 60000 }, async () => {
  const m = await mountCudele()
  try {
    await m.shOk('mkdir d && echo embedded > d/f && ln -s d/f l && mv d e')
    assert.equal(await m.shOk('cat e/f l 2>&1; ls'), 'embedded\ncat: l: No such file or directory\ne\nl\n')
    await m.remount()
    assert.equal(await m.shOk('cat e/f'), 'embedded\n')
  } finally {
    await m.cleanup()
  }
})
