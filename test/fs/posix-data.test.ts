// POSIX file data behaviour through a real mount: open flags (O_EXCL, O_TRUNC,
// O_APPEND), read/write at any offset (checked against an in-memory model),
// sparse files and truncation, open-but-unlinked files, fsync and friends,
// statfs. Scripts run in child processes; where a result does not depend on
// timing, the same script runs on a tmpfs and must agree. The last tests
// remount and run fsck.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import { after, before, test } from 'node:test'
import { type CudeleMount, mountCudele, mountTmpfs } from '../helpers/mount'
import { fsckCounts, openUp, type Pair, pyJson, run, sameAsTmpfs, snapshot } from '../helpers/posix'

let m: CudeleMount
let tmp: { dir: string, cleanup: () => void }
let pair: Pair
const MiB = 1024 * 1024

before(async () => {
  m = await mountCudele()
  openUp(m.root)
  tmp = mountTmpfs(512)
  pair = { cudele: m.mnt, tmpfs: tmp.dir }
})
after(async () => {
  tmp?.cleanup()
  await m?.cleanup()
})

/** The server's fsck summary (the store must not be mounted). */
async function fsckSummary (): Promise<Record<string, number>> {
  const r = await m.fsck()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  return fsckCounts(r.stderr)
}

test('O_EXCL, O_TRUNC (size 0, new mtime, also with O_RDONLY), O_CREAT mode', async () => {
  const r = await sameAsTmpfs(pair, 'trunc', `
os.umask(0o022)
fd = os.open('f', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640); os.write(fd, b'x' * 5000); os.close(fd)
res = {'excl': E(os.open, 'f', os.O_WRONLY | os.O_CREAT | os.O_EXCL), 'mode': oct(stat.S_IMODE(os.stat('f').st_mode))}
os.utime('f', ns=(10**18, 10**18))
fd = os.open('f', os.O_WRONLY | os.O_TRUNC); st = os.fstat(fd); os.close(fd)
res['trunc'] = [st.st_size, st.st_mtime_ns > 10**18, st.st_ctime_ns > 10**18, os.stat('f').st_size]
open('g', 'w').write('keep?')
fd = os.open('g', os.O_RDONLY | os.O_TRUNC); os.close(fd)
res['rdonly trunc'] = os.stat('g').st_size
os.utime('f', ns=(10**18, 10**18))
fd = os.open('f', os.O_WRONLY | os.O_TRUNC); os.close(fd)
res['trunc of empty file sets mtime'] = os.stat('f').st_mtime_ns > 10**18
# Truncating through one descriptor is seen by another.
open('h', 'w').write('0123456789')
a = os.open('h', os.O_RDONLY); b = os.open('h', os.O_WRONLY | os.O_TRUNC); os.write(b, b'ab'); os.close(b)
res['other fd'] = [os.fstat(a).st_size, b2s(os.pread(a, 100, 0))]; os.close(a)
out(res)
`)
  assert.equal(r.excl, 'EEXIST')
  assert.equal(r.mode, '0o640')
  assert.deepEqual(r.trunc, [0, true, true, 0])
  assert.equal(r['rdonly trunc'], 0)
  assert.equal(r['trunc of empty file sets mtime'], true)
  assert.deepEqual(r['other fd'], [2, 'ab'])
})

test('O_APPEND appends whatever the file offset, and pwrite on it appends too (Linux)', async () => {
  const r = await sameAsTmpfs(pair, 'append', `
open('a', 'w').write('abc')
fd = os.open('a', os.O_WRONLY | os.O_APPEND)
os.lseek(fd, 0, os.SEEK_SET); os.write(fd, b'XYZ')
os.lseek(fd, 1, os.SEEK_SET); os.write(fd, b'123')
pos = os.lseek(fd, 0, os.SEEK_CUR)
os.pwrite(fd, b'<p>', 0)
os.close(fd)
# Another descriptor extends the file meanwhile: appends go after its data.
fd = os.open('a', os.O_WRONLY | os.O_APPEND); other = os.open('a', os.O_WRONLY)
os.pwrite(other, b'----', 12); os.write(fd, b'end'); os.close(fd); os.close(other)
out([open('a').read(), pos])
`)
  assert.deepEqual(r, ['abcXYZ123<p>----end', 9])
})

test('two processes appending concurrently lose no bytes', async () => {
  const writer = (tag: string): Promise<unknown> => pyJson(`
fd = os.open('log', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
line = (sys.argv[1] * 63 + '\\n').encode()
for i in range(4000): os.write(fd, line)
os.close(fd)
out('done')
`, { cwd: m.mnt, args: [tag] })
  await Promise.all([writer('a'), writer('b'), writer('c')])
  const r = await pyJson(`
data = open('log', 'rb').read()
lines = data.split(b'\\n')[:-1]
out({'size': len(data), 'intact': all(len(l) == 63 and len(set(l)) == 1 for l in lines),
     'counts': {t: sum(1 for l in lines if l[:1] == t.encode()) for t in 'abc'}})
`, { cwd: m.mnt })
  assert.deepEqual(r, { size: 3 * 4000 * 64, intact: true, counts: { a: 4000, b: 4000, c: 4000 } })
})

test('read and write at any offset agree with an in-memory model (random ops across stripes)', async () => {
  const r = await pyJson(`
import random
rnd = random.Random(7)
SPAN = 13 * 1024 * 1024
model = bytearray()
fd = os.open('model', os.O_RDWR | os.O_CREAT, 0o644)
other = os.open('model', os.O_RDONLY)
bad = []
for i in range(400):
    op = rnd.random()
    if op < 0.55:
        off = rnd.randrange(SPAN); n = rnd.choice([1, 17, 4096, 65536, 300000, 1 << 20, 5 << 20])
        data = rnd.randbytes(n)
        if off > len(model): model.extend(bytes(off - len(model)))
        model[off:off + n] = data
        assert os.pwrite(fd, data, off) == n
    elif op < 0.65:
        size = rnd.randrange(SPAN)
        os.ftruncate(fd, size)
        if size < len(model): del model[size:]
        else: model.extend(bytes(size - len(model)))
    else:
        off = rnd.randrange(SPAN + 1000); n = rnd.choice([1, 1000, 131072, 3 << 20])
        got = os.pread(rnd.choice([fd, other]), n, off)
        if got != bytes(model[off:off + n]): bad.append((i, off, n, len(got)))
    if os.fstat(other).st_size != len(model): bad.append((i, 'size', os.fstat(other).st_size, len(model)))
os.close(fd); os.close(other)
whole = open('model', 'rb').read()
out({'bad': bad[:5], 'size': [len(whole), len(model)], 'same': whole == bytes(model),
     'sha': hashlib.sha256(model).hexdigest()})
`, { cwd: m.mnt, timeoutMs: 240000 })
  assert.deepEqual(r.bad, [])
  assert.equal(r.same, true)
  // Read back from a fresh process, and remember the digest for after the remount.
  const sum = (await run(['sha256sum', 'model'], { cwd: m.mnt })).stdout.split(' ')[0]
  assert.equal(sum, r.sha)
})

test('short reads at EOF, reads past EOF, zero-length writes, overwrite in the middle', async () => {
  const r = await sameAsTmpfs(pair, 'rw', `
fd = os.open('f', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'0123456789')
res = {'zero write': os.write(fd, b''), 'size': os.fstat(fd).st_size}
os.pwrite(fd, b'ab', 4)
res['at eof'] = [b2s(os.pread(fd, 100, 7)), b2s(os.pread(fd, 100, 10)), b2s(os.pread(fd, 100, 1 << 40))]
res['content'] = open('f').read()
res['read on O_WRONLY'] = E(os.read, os.open('f', os.O_WRONLY), 1)
res['write on O_RDONLY'] = E(os.write, os.open('f', os.O_RDONLY), b'x')
res['read a dir'] = E(os.read, os.open('.', os.O_RDONLY), 1)
os.close(fd)
out(res)
`)
  assert.deepEqual(r, {
    'zero write': 0,
    size: 10,
    'at eof': ['789', '', ''],
    content: '0123ab6789',
    'read on O_WRONLY': 'EBADF',
    'write on O_RDONLY': 'EBADF',
    'read a dir': 'EISDIR'
  })
})

test('shared mmap writes reach the file; mmap reads see write(2) data', async () => {
  const r = await sameAsTmpfs(pair, 'mmap', `
import mmap
fd = os.open('mm', os.O_RDWR | os.O_CREAT, 0o644); os.ftruncate(fd, 5 << 20)
mm = mmap.mmap(fd, 5 << 20)
mm[100:105] = b'hello'; mm[(5 << 20) - 5:] = b'world'; mm.flush()
os.pwrite(fd, b'WRITE', 4 << 20)
seen = mm[4 << 20:(4 << 20) + 5]
mm.close(); os.close(fd)
with open('mm', 'rb') as fh:
    data = fh.read()
out([b2s(data[100:105]), b2s(data[-5:]), b2s(seen), len(data), data.count(0) == len(data) - 15])
`)
  assert.deepEqual(r, ['hello', 'world', 'WRITE', 5 * MiB, true])
})

test('sparse files: holes read as zeros, writes far beyond EOF, truncate -s grow and shrink', async () => {
  const script = `
GiB = 1 << 30
with open('sp', 'wb') as fh:
    fh.seek(10_000_000); fh.write(b'x')
res = {'size': os.stat('sp').st_size, 'hole zeros': open('sp', 'rb').read(10_000_000) == bytes(10_000_000)}
with open('far', 'wb') as fh:
    fh.write(b'start'); fh.seek(5 * GiB); fh.write(b'end')
with open('far', 'rb') as fh:
    fh.seek(5 * GiB - 3); tail = fh.read(100)
    fh.seek(3 * GiB + 12345); middle = fh.read(1 << 20)
res['far'] = [os.stat('far').st_size, b2s(tail), middle == bytes(1 << 20), b2s(open('far', 'rb').read(5))]
out(res)
`
  const r = await sameAsTmpfs(pair, 'sparse', script)
  assert.deepEqual(r, { size: 10_000_001, 'hole zeros': true, far: [5 * 1024 * MiB + 3, '\0\0\0end', true, 'start'] })
  // truncate(1) from the shell: grow, shrink, grow again; the regrown part reads as zeros.
  const sh = `cd sparse && head -c ${6 * MiB} /dev/urandom > t && truncate -s 100 t && stat -c %s t && truncate -s 9M t && stat -c %s t &&
    dd if=t bs=100 skip=1 status=none | tr -d '\\000' | wc -c && truncate -s 0 t && stat -c %s t && truncate -s 1G t && stat -c %s t`
  assert.equal(await m.shOk(sh), `100\n${9 * MiB}\n0\n0\n${1024 * MiB}\n`)
})

test('st_blocks counts what a sparse file stores, not its size (du)', async () => {
  const r = await sameAsTmpfs(pair, 'blocks', `
with open('sp', 'wb') as fh:
    fh.seek(1 << 30); fh.write(b'x')
res = {'sparse': os.stat('sp').st_blocks * 512 < (1 << 20)}
blocks = lambda p: os.stat(p).st_blocks
open('small', 'wb').write(b'x' * 10000); res['small'] = blocks('small')
with open('small', 'r+b') as fh: fh.write(b'y' * 100)
res['overwritten'] = blocks('small')
os.truncate('small', 5000); res['shrunk'] = blocks('small')
os.truncate('small', 1 << 20); res['grown by truncate'] = blocks('small')
os.truncate('small', 0); res['emptied'] = blocks('small')
with open('two', 'wb') as fh:
    fh.write(b'a'); fh.seek(8 << 20); fh.write(b'b')
res['two stripes'] = blocks('two')
with open('big', 'wb') as fh:
    for i in range(48): fh.write(b'z' * (128 << 10))
res['big'] = blocks('big')
os.truncate('big', 5 << 20); res['big shrunk'] = blocks('big')
out(res)
`)
  assert.deepEqual(r, {
    sparse: true, small: 24, overwritten: 24, shrunk: 16, 'grown by truncate': 16, emptied: 0,
    'two stripes': 16, big: 12288, 'big shrunk': 10240
  })
})

test('ftruncate on an open descriptor, with buffered writes; data after shrink and grow is zeros', async () => {
  const r = await sameAsTmpfs(pair, 'ftrunc', `
fd = os.open('f', os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b'A' * (6 << 20))            # spans two stripes
os.ftruncate(fd, (1 << 20) + 5)
res = {'shrunk': os.fstat(fd).st_size}
os.ftruncate(fd, 6 << 20)
data = os.pread(fd, 6 << 20, 0)
res['regrown'] = [len(data), data[:(1 << 20) + 5] == b'A' * ((1 << 20) + 5), data[(1 << 20) + 5:].count(0)]
# Write past the end, shrink below the write before it is flushed, grow again.
os.pwrite(fd, b'B' * 1000, 5 << 20)
os.ftruncate(fd, 10)
os.ftruncate(fd, 6 << 20)
res['after unflushed write'] = os.pread(fd, 6 << 20, 0).count(0)
os.close(fd)
# Truncate by path while another descriptor is open with data of its own.
fd = os.open('g', os.O_RDWR | os.O_CREAT, 0o644); os.write(fd, b'G' * 10000)
os.truncate('g', 3)
os.write(fd, b'H')                         # at offset 10000: a hole from 3 to 10000
os.close(fd)
g = open('g', 'rb').read()
res['g'] = [len(g), b2s(g[:3]), g[3:10000].count(0), b2s(g[10000:])]
res['truncate a dir'] = E(os.truncate, '.', 0)
res['negative'] = E(os.truncate, 'g', -1)
out(res)
`)
  assert.deepEqual(r, {
    shrunk: MiB + 5,
    regrown: [6 * MiB, true, 5 * MiB - 5],
    'after unflushed write': 6 * MiB - 10,
    g: [10001, 'GGG', 9997, 'H'],
    'truncate a dir': 'EISDIR',
    negative: 'EINVAL'
  })
})

test('fallocate: posix_fallocate grows, KEEP_SIZE does not, PUNCH_HOLE zeroes; other modes are refused like tmpfs', async () => {
  const r = await sameAsTmpfs(pair, 'fallocate', `
FL_KEEP, FL_PUNCH, FL_ZERO, FL_COLLAPSE = 1, 2, 0x10, 8
fd = os.open('f', os.O_RDWR | os.O_CREAT, 0o644)
def fa(mode, off, n):
    return E(lambda: _check(libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(n))))
res = {'posix_fallocate': [E(os.posix_fallocate, fd, 0, 10000), os.fstat(fd).st_size, os.pread(fd, 20000, 0) == bytes(10000)]}
os.pwrite(fd, b'x' * 10000, 0)
res['keep size'] = [fa(FL_KEEP, 0, 20000), os.fstat(fd).st_size]
res['punch'] = [fa(FL_PUNCH | FL_KEEP, 100, 200), os.pread(fd, 400, 0).count(0), os.fstat(fd).st_size,
                os.pread(fd, 10000, 0) == b'x' * 100 + bytes(200) + b'x' * 9700]
res['punch past eof'] = [fa(FL_PUNCH | FL_KEEP, 9000, 5000), os.fstat(fd).st_size, os.pread(fd, 2000, 8000).count(0)]
res['punch without keep size'] = fa(FL_PUNCH, 0, 10)
res['zero range'] = fa(FL_ZERO, 0, 10)
res['collapse'] = fa(FL_COLLAPSE, 0, 4096)
res['grow across stripes'] = [fa(0, 9 << 20, 100), os.fstat(fd).st_size, os.pread(fd, 100, 9 << 20) == bytes(100)]
res['bad length'] = fa(0, 0, 0)
os.close(fd)
out(res)
`)
  assert.deepEqual(r, {
    posix_fallocate: ['ok', 10000, true],
    'keep size': ['ok', 10000],
    punch: ['ok', 200, 10000, true],
    'punch past eof': ['ok', 10000, 1000],
    'punch without keep size': 'ENOTSUP',
    'zero range': 'ENOTSUP',
    collapse: 'ENOTSUP',
    'grow across stripes': ['ok', 9 * MiB + 100, true],
    'bad length': 'EINVAL'
  })
})

test('copy_file_range and cp copy whole files inside the mount', async () => {
  const r = await pyJson(`
open('cfr-src', 'wb').write(os.urandom((9 << 20) + 123))
i = os.open('cfr-src', os.O_RDONLY); o = os.open('cfr-dst', os.O_WRONLY | os.O_CREAT, 0o644)
n = 0
while True:
    k = os.copy_file_range(i, o, 1 << 30)
    if k == 0: break
    n += k
os.close(i); os.close(o)
out([n, open('cfr-src', 'rb').read() == open('cfr-dst', 'rb').read()])
`, { cwd: m.mnt })
  assert.deepEqual(r, [9 * MiB + 123, true])
  await m.shOk('cp cfr-src cfr-cp && cmp cfr-src cfr-cp && cp --sparse=always sparse/sp sp-copy && cmp sparse/sp sp-copy')
})

test('truncation exactly at and around stripe boundaries (4 MiB) keeps the right bytes', async () => {
  const r = await sameAsTmpfs(pair, 'stripes', `
M = 1 << 20
pattern = bytes((i * 31 + i // 4096) % 256 for i in range(12 * M))
fd = os.open('f', os.O_RDWR | os.O_CREAT, 0o644); os.write(fd, pattern); os.fsync(fd)
res = []
for size in (8 * M, 8 * M + 1, 4 * M, 4 * M - 1, 4 * M + 1, 0, 12 * M):
    os.ftruncate(fd, size)
    data = os.pread(fd, 12 * M, 0)
    res.append([size, len(data), hashlib.sha256(data).hexdigest()[:16]])
# What is left after the shrink to 4 MiB + 1 and regrow: only zeros after 0 (it went to 0 in between).
res.append(os.pread(fd, 12 * M, 0).count(0) == 12 * M)
os.pwrite(fd, pattern[:5 * M], 3 * M); os.ftruncate(fd, 4 * M)
res.append(os.pread(fd, 12 * M, 0) == bytes(3 * M) + pattern[:M])
os.close(fd)
out(res)
`)
  assert.equal(r.length, 9)
  assert.deepEqual(r.slice(7), [true, true])
})

test('the largest file is 2^53 - 1 bytes: writes beyond give EFBIG, truncate EINVAL (tmpfs allows 2^63 - 1)', async () => {
  const r = await pyJson(`
open('maxsize', 'w').close(); fd = os.open('maxsize', os.O_RDWR)
out([E(os.truncate, 'maxsize', 2**50), E(os.pwrite, fd, b'x', 2**50 + 10), os.fstat(fd).st_size,
     E(os.pwrite, fd, b'x', 2**53), E(os.truncate, 'maxsize', 2**53), E(os.truncate, 'maxsize', 2**63 - 1),
     os.stat('maxsize').st_size, os.pread(fd, 20, 2**50) == bytes(10) + b'x'])
`, { cwd: m.mnt })
  assert.deepEqual(r, ['ok', 'ok', 2 ** 50 + 11, 'EFBIG', 'EINVAL', 'EINVAL', 2 ** 50 + 11, true])
  await m.shOk('rm maxsize')
})

test('an open but unlinked file keeps its data, readable and writable, until the last close', async () => {
  await m.shOk(`mkdir unlinked && head -c ${9 * MiB} /dev/urandom > unlinked/big && printf 'before' > unlinked/small`)
  await m.stop()
  const objectsBefore = (await fsckSummary())['data objects']
  await m.start()
  // One process holds the files open; another unlinks them; the holder keeps working on them.
  const r = await pyJson(`
import subprocess
big = os.open('unlinked/big', os.O_RDWR); small = os.open('unlinked/small', os.O_RDWR)
digest = hashlib.sha256(os.pread(big, 9 << 20, 0)).hexdigest()
subprocess.run(['rm', 'unlinked/big', 'unlinked/small'], check=True)
res = {'listing': os.listdir('unlinked'), 'nlink': [os.fstat(big).st_nlink, os.fstat(small).st_nlink],
       'stat by name': E(os.stat, 'unlinked/big')}
res['big intact'] = hashlib.sha256(os.pread(big, 9 << 20, 0)).hexdigest() == digest
os.lseek(small, 0, os.SEEK_END); os.write(small, b'-after'); os.fsync(small)
os.pwrite(big, b'tail', 12 << 20)
res['small'] = b2s(os.pread(small, 100, 0))
res['big size'] = os.fstat(big).st_size
res['big tail'] = b2s(os.pread(big, 4, 12 << 20))
# A second descriptor through /proc still reaches the unlinked file.
again = os.open('/proc/self/fd/%d' % small, os.O_RDONLY); res['reopen'] = b2s(os.read(again, 100)); os.close(again)
os.close(big); os.close(small)
out(res)
`, { cwd: m.mnt })
  assert.deepEqual(r, {
    listing: [],
    nlink: [0, 0],
    'stat by name': 'ENOENT',
    'big intact': true,
    small: 'before-after',
    'big size': 12 * MiB + 4,
    'big tail': 'tail',
    reopen: 'before-after'
  })
  // After the last close the inodes and their data objects go away.
  await m.stop()
  const s = await fsckSummary()
  assert.equal(s['pending removal'], 0)
  assert.ok(s['data objects'] <= objectsBefore - 3, `data objects ${objectsBefore} -> ${s['data objects']}`)
  await m.start()
})

test('files unlinked while open with buffered writes leave no data behind after the last close', async () => {
  await pyJson(`
os.mkdir('unlinked-buffered')
for i in range(100):
    p = 'unlinked-buffered/f%d' % i
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, os.urandom(1 << 20)); os.pwrite(fd, b't', 9 << 20)   # buffered, in two stripes
    os.unlink(p); os.close(fd)
out(0)
`, { cwd: m.mnt })
  await m.stop()
  const r = await m.fsck()
  assert.equal(r.code, 0, `fsck found data of removed files:\n${r.stdout.split('\n').slice(0, 5).join('\n')}\n${r.stderr}`)
  assert.equal(fsckCounts(r.stderr)['pending removal'], 0)
  await m.start()
})

test('fsync, fdatasync, fsync of a directory, close, sync and syncfs succeed', async () => {
  const r = await pyJson(`
os.mkdir('durable')
fd = os.open('durable/f', os.O_RDWR | os.O_CREAT, 0o644); os.write(fd, b'd' * 100000)
res = [E(os.fsync, fd), E(os.fdatasync, fd)]
dfd = os.open('durable', os.O_RDONLY | os.O_DIRECTORY); res += [E(os.fsync, dfd), E(os.fdatasync, dfd)]; os.close(dfd)
rfd = os.open('durable/f', os.O_RDONLY); res.append(E(os.fsync, rfd)); os.close(rfd)
res.append(E(os.close, fd))
res.append(libc.syncfs(os.open('.', os.O_RDONLY)))
out(res)
`, { cwd: m.mnt })
  assert.deepEqual(r, ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 0])
  await m.shOk('sync && dd if=/dev/zero of=durable/dd bs=64k count=16 conv=fsync status=none && sync durable/dd')
})

test('statfs: real block counts that track the disk under the store, name length 255', async () => {
  const r = await pyJson(`
a = os.statvfs('.'); b = os.statvfs(sys.argv[1])
out({'cudele': [a.f_bsize, a.f_frsize, a.f_blocks, a.f_bfree, a.f_bavail, a.f_files, a.f_ffree, a.f_namemax],
     'host': [b.f_frsize, b.f_blocks, b.f_bfree, b.f_bavail]})
`, { cwd: m.mnt, args: [m.store] })
  const [bsize, frsize, blocks, bfree, bavail, files, ffree, namemax] = r.cudele
  const [hostFrsize, hostBlocks, hostBfree, hostBavail] = r.host
  assert.equal(namemax, 255)
  assert.ok(bsize > 0 && frsize > 0 && blocks > 0 && bfree > 0 && bavail > 0 && files > 0 && ffree > 0, JSON.stringify(r))
  assert.ok(bfree >= bavail && blocks >= bfree)
  assert.equal(blocks * frsize, hostBlocks * hostFrsize, 'the same total as the disk')
  const slack = 256 * MiB // other processes write to the same disk meanwhile
  assert.ok(Math.abs(bavail * frsize - hostBavail * hostFrsize) < slack, `available ${bavail * frsize} vs disk ${hostBavail * hostFrsize}`)
  assert.ok(Math.abs(bfree * frsize - hostBfree * hostFrsize) < slack, `free ${bfree * frsize} vs disk ${hostBfree * hostFrsize}`)
  // df and stat -f see the same.
  const df = (await m.shOk('df -B1 --output=size,avail . | tail -1')).trim().split(/\s+/).map(Number)
  assert.equal(df[0], blocks * frsize)
  assert.equal((await m.shOk('stat -f -c %l .')).trim(), '255')
  // Writing a big file (and fsyncing it) shows up as less free space.
  const freeBefore = bavail * frsize
  await m.shOk('head -c 300M /dev/zero > statfs-fill && sync statfs-fill')
  const afterFill = await pyJson('a = os.statvfs("."); out(a.f_bavail * a.f_frsize)', { cwd: m.mnt })
  assert.ok(freeBefore - afterFill > 200 * MiB, `free ${freeBefore} -> ${afterFill}`)
  await m.shOk('rm statfs-fill')
})

let tree: string

test('everything above survives a remount unchanged', async () => {
  tree = await snapshot(m.mnt)
  const modelSum = (await run(['sha256sum', 'model'], { cwd: m.mnt })).stdout
  await m.remount()
  assert.equal(await snapshot(m.mnt), tree)
  assert.equal((await run(['sha256sum', 'model'], { cwd: m.mnt })).stdout, modelSum)
  // The 5 GiB sparse file is not hashed by the snapshot: check its ends and a hole.
  const far = await pyJson(`
with open('sparse/far', 'rb') as fh:
    head = fh.read(5); fh.seek(5 << 30); tail = fh.read(10); fh.seek(4 << 30); hole = fh.read(1 << 20)
out([b2s(head), b2s(tail), hole == bytes(1 << 20), os.stat('sparse/far').st_size])
`, { cwd: m.mnt })
  assert.deepEqual(far, ['start', 'end', true, 5 * 1024 * MiB + 3])
})

test('fsck is clean, with nothing pending removal', async () => {
  assert.equal(await m.stop(), 0, m.log)
  assert.equal((await fsckSummary())['pending removal'], 0)
  await m.start()
  assert.equal(fs.existsSync(m.mnt), true)
})
