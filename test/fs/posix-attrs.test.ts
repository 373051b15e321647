// POSIX attribute behaviour through a real mount: chmod, chown, utimens with
// nanoseconds (UTIME_NOW, UTIME_OMIT, times before 1970), and which operations
// move mtime and ctime of files and directories. Scripts run in child
// processes; the same script runs on a tmpfs and must agree. The last tests
// remount (times must come back to the nanosecond) and run fsck.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type CudeleMount, mountCudele, mountTmpfs } from '../helpers/mount'
import { fsckCounts, openUp, type Pair, pyJson, sameAsTmpfs, snapshot } from '../helpers/posix'

let m: CudeleMount
let tmp: { dir: string, cleanup: () => void }
let pair: Pair

before(async () => {
  m = await mountCudele()
  openUp(m.root)
  tmp = mountTmpfs(64)
  pair = { cudele: m.mnt, tmpfs: tmp.dir }
})
after(async () => {
  tmp?.cleanup()
  await m?.cleanup()
})

/**
 * A Python function changed(path, op) for the scripts below: which of
 * atime/mtime/ctime op moves (a string such as 'mc'); the times are first set
 * far in the past so any change shows, and ctime is compared after a pause.
 */
const CHANGED = `
def times(p):
    st = os.lstat(p)
    return (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)
def changed(paths, op):
    if isinstance(paths, str): paths = [paths]
    for p in paths: os.utime(p, ns=(10**18, 10**18), follow_symlinks=False)
    before = [times(p) for p in paths]
    time.sleep(0.01)
    op()
    res = []
    for p, b in zip(paths, before):
        a = times(p)
        res.append(''.join(c for c, x, y in zip('amc', b, a) if x != y))
    return res if len(res) > 1 else res[0]
`

test('chmod: every mode bit, through symlinks, ctime moves and mtime does not', async () => {
  const r = await sameAsTmpfs(pair, 'chmod', CHANGED + `
open('f', 'w').close(); os.mkdir('d'); os.symlink('f', 'sl')
res = {}
for mode in (0o7777, 0o4755, 0o2711, 0o1777, 0o0, 0o644):
    os.chmod('f', mode); res[oct(mode)] = oct(stat.S_IMODE(os.stat('f').st_mode))
os.chmod('d', 0o3750); res['dir'] = oct(os.stat('d').st_mode)
os.chmod('sl', 0o600); res['via symlink'] = [oct(stat.S_IMODE(os.stat('f').st_mode)), oct(stat.S_IMODE(os.lstat('sl').st_mode))]
res['times'] = changed('f', lambda: os.chmod('f', 0o640))
res['same mode again'] = changed('f', lambda: os.chmod('f', 0o640))
res['missing'] = E(os.chmod, 'nope', 0o644)
res['fchmod'] = [E(os.fchmod, os.open('f', os.O_RDONLY), 0o604), oct(stat.S_IMODE(os.stat('f').st_mode))]
out(res)
`)
  assert.equal(r['0o7777'], '0o7777')
  assert.equal(r['0o2711'], '0o2711')
  assert.equal(r['0o0'], '0o0')
  assert.equal(r.dir, '0o43750')
  assert.deepEqual(r['via symlink'], ['0o600', '0o777'])
  assert.equal(r.times, 'c')
  assert.equal(r.missing, 'ENOENT')
  assert.deepEqual(r.fchmod, ['ok', '0o604'])
})

test('chown: owner and group, lchown of a symlink, setuid and setgid cleared, ctime', async () => {
  const r = await sameAsTmpfs(pair, 'chown', CHANGED + `
open('f', 'w').close(); os.symlink('f', 'sl')
os.chown('f', 1234, 5678)
res = {'chown': [os.stat('f').st_uid, os.stat('f').st_gid]}
os.chown('f', -1, 42); res['group only'] = [os.stat('f').st_uid, os.stat('f').st_gid]
os.chown('sl', 7, 8, follow_symlinks=False)
res['lchown'] = [os.lstat('sl').st_uid, os.lstat('sl').st_gid, os.stat('f').st_uid, os.stat('f').st_gid]
os.chmod('f', 0o6755); os.chown('f', 1000, 1000); res['suid cleared'] = oct(stat.S_IMODE(os.stat('f').st_mode))
os.chmod('f', 0o2745); os.chown('f', 1001, -1); res['sgid without group x kept'] = oct(stat.S_IMODE(os.stat('f').st_mode))
res['times'] = changed('f', lambda: os.chown('f', 2000, 2000))
res['no-op chown'] = changed('f', lambda: os.chown('f', -1, -1))
res['big ids'] = [E(os.chown, 'f', 4294967294, 4294967294), os.stat('f').st_uid]
out(res)
`)
  assert.deepEqual(r.chown, [1234, 5678])
  assert.deepEqual(r['group only'], [1234, 42])
  assert.deepEqual(r.lchown, [7, 8, 1234, 42])
  assert.equal(r['suid cleared'], '0o755')
  assert.equal(r.times, 'c')
  assert.equal(r['no-op chown'], 'c')
  assert.deepEqual(r['big ids'], ['ok', 4294967294])
})

test('utimens: nanoseconds, UTIME_NOW and UTIME_OMIT, times before 1970 and far ahead', async () => {
  const r = await sameAsTmpfs(pair, 'utimens', `
open('f', 'w').close(); os.symlink('f', 'sl')
def t(p='f', follow=True):
    st = os.stat(p, follow_symlinks=follow); return [st.st_atime_ns, st.st_mtime_ns]
res = {}
os.utime('f', ns=(1000000000123456789, 1100000000987654321)); res['ns'] = t()
os.utime('f', ns=(-315619199750000000, -1)); res['before 1970'] = t()
os.utime('f', ns=(0, 0)); res['epoch'] = t()
os.utime('f', ns=(253402300799999999999, 4102444800000000001)); res['far'] = t()
utimensat('f', (1500000000, 5), OMIT); res['omit mtime'] = t()
utimensat('f', OMIT, (1600000000, 6)); res['omit atime'] = t()
c0 = os.stat('f').st_ctime_ns; time.sleep(0.01)
utimensat('f', OMIT, OMIT); res['omit both keeps ctime'] = os.stat('f').st_ctime_ns == c0
now = time.time_ns(); utimensat('f', NOW, (1700000000, 7)); a, mt = t()
res['now atime'] = [abs(a - now) < 5 * 10**9, mt]
os.utime('f', ns=(1, 2)); os.utime('f'); a, mt = t()
res['utime(None)'] = abs(a - time.time_ns()) < 5 * 10**9 and a == mt
os.utime('sl', ns=(3, 4), follow_symlinks=False); res['symlink itself'] = [t('sl', False), t('f')[1] != 4]
res['invalid nsec'] = E(utimensat, 'f', (0, 1000000000), OMIT)
res['missing'] = E(os.utime, 'nope', ns=(1, 1))
out(res)
`)
  assert.deepEqual(r.ns, [1000000000123456789, 1100000000987654321])
  assert.deepEqual(r['before 1970'], [-315619199750000000, -1])
  assert.deepEqual(r.epoch, [0, 0])
  assert.deepEqual(r['omit mtime'], [1500000000000000005, r.far[1]])
  assert.deepEqual(r['omit atime'], [1500000000000000005, 1600000000000000006])
  assert.equal(r['omit both keeps ctime'], true)
  assert.deepEqual(r['now atime'], [true, 1700000000000000007])
  assert.equal(r['utime(None)'], true)
  assert.deepEqual(r['symlink itself'], [[3, 4], true])
  assert.equal(r['invalid nsec'], 'EINVAL')
  // touch(1) with a fractional date, and -a / -m alone.
  const out = await m.shOk(`cd utimens && touch -d '2001-02-03 04:05:06.123456789' g && stat -c '%x|%y' g &&
    touch -a -d '2010-01-01 00:00:00.5' g && touch -m -d '1969-07-20 20:17:40.000000001' g && stat -c '%x|%y' g`)
  assert.equal(out, '2001-02-03 04:05:06.123456789 +0000|2001-02-03 04:05:06.123456789 +0000\n' +
    '2010-01-01 00:00:00.500000000 +0000|1969-07-20 20:17:40.000000001 +0000\n')
})

test('times set on an open file with buffered writes stick after close (cp -a, tar)', async () => {
  const r = await sameAsTmpfs(pair, 'settimes-open', `
fd = os.open('f', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b'x' * 300000)
os.utime(fd, ns=(1000000000111111111, 1000000000222222222))
os.close(fd)
a = [os.stat('f').st_atime_ns, os.stat('f').st_mtime_ns]
# By path, before the close, from another descriptor's point of view.
fd = os.open('g', os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b'y' * 5000)
os.utime('g', ns=(3, 4)); os.close(fd)
b = [os.stat('g').st_atime_ns, os.stat('g').st_mtime_ns]
# A write after the utime moves mtime again.
fd = os.open('h', os.O_WRONLY | os.O_CREAT, 0o644); os.write(fd, b'z'); os.utime(fd, ns=(5, 6)); os.write(fd, b'z'); os.close(fd)
c = os.stat('h').st_mtime_ns > 10**18
out([a, b, c])
`)
  assert.deepEqual(r, [[1000000000111111111, 1000000000222222222], [3, 4], true])
})

test('metadata changes while writes are buffered keep their later ctime, before and after close', async () => {
  const r = await sameAsTmpfs(pair, 'ctime-buffered', `
fd = os.open('f', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b'x' * 1000)
time.sleep(0.05)
t = time.time_ns() - 20_000_000  # kernel timestamps are coarse: allow a tick
res = {}
for name, op in (('chmod', lambda: os.chmod('f', 0o600)), ('setxattr', lambda: os.setxattr('f', 'user.x', b'1')),
                 ('chown', lambda: os.chown('f', 5, 5)), ('link', lambda: os.link('f', 'g'))):
    op(); res[name] = os.stat('f').st_ctime_ns >= t
mtime = os.stat('f').st_mtime_ns
os.close(fd)
time.sleep(1.5)  # cudele flushes buffered writes within a second or at close
st = os.stat('f')
res['after close'] = [st.st_ctime_ns >= t, st.st_mtime_ns == mtime, st.st_mtime_ns < t]
out(res)
`)
  assert.deepEqual(r, { chmod: true, setxattr: true, chown: true, link: true, 'after close': [true, true, true] })
})

test('which operations move a file\'s mtime and ctime', async () => {
  const r = await sameAsTmpfs(pair, 'filetimes', CHANGED + `
open('f', 'w').write('0123456789'); os.mkdir('d')
def write():
    with open('f', 'r+b') as fh: fh.write(b'x')
def append():
    with open('f', 'ab') as fh: fh.write(b'y')
def read():
    with open('f', 'rb') as fh: fh.read()
res = {
  'write': changed('f', write), 'append': changed('f', append),
  'truncate': changed('f', lambda: os.truncate('f', 3)), 'truncate same size': changed('f', lambda: os.truncate('f', 3)),
  'open O_TRUNC': changed('f', lambda: os.close(os.open('f', os.O_WRONLY | os.O_TRUNC))),
  'chmod': changed('f', lambda: os.chmod('f', 0o600)),
  'link': changed('f', lambda: os.link('f', 'f2')),
  'unlink other link': changed('f', lambda: os.unlink('f2')),
  'rename': changed('d', lambda: os.rename('f', 'd/f')),
  'setxattr': changed('d/f', lambda: os.setxattr('d/f', 'user.x', b'1')),
  'removexattr': changed('d/f', lambda: os.removexattr('d/f', 'user.x')),
  'open for write without writing': changed('d/f', lambda: os.close(os.open('d/f', os.O_WRONLY))),
  'stat': changed('d/f', lambda: os.stat('d/f')),
}
out(res)
`)
  assert.deepEqual(r, {
    write: 'mc',
    append: 'mc',
    truncate: 'mc',
    'truncate same size': 'mc',
    'open O_TRUNC': 'mc',
    chmod: 'c',
    link: 'c',
    'unlink other link': 'c',
    rename: 'mc', // 'd' is the directory the file moved into
    setxattr: 'c',
    removexattr: 'c',
    'open for write without writing': '',
    stat: ''
  })
  // The renamed file itself (the name changes, so not through changed()).
  const renamed = await sameAsTmpfs(pair, 'filetimes2', CHANGED + `
open('f', 'w').close(); os.utime('f', ns=(10**18, 10**18)); b = times('f')
time.sleep(0.01); os.rename('f', 'g'); a = times('g')
out(''.join(c for c, x, y in zip('amc', b, a) if x != y))
`)
  assert.equal(renamed, 'c')
})

test('a directory\'s mtime and ctime move when entries are added, removed or renamed', async () => {
  const r = await sameAsTmpfs(pair, 'dirtimes', CHANGED + `
os.mkdir('d'); os.mkdir('e'); open('d/keep', 'w').close()
res = {
  'create': changed('d', lambda: open('d/new', 'w').close()),
  'mkdir': changed('d', lambda: os.mkdir('d/sub')),
  'symlink': changed('d', lambda: os.symlink('x', 'd/sl')),
  'mknod': changed('d', lambda: os.mkfifo('d/fifo')),
  'link': changed('d', lambda: os.link('d/new', 'd/new2')),
  'unlink': changed('d', lambda: os.unlink('d/new2')),
  'rmdir': changed('d', lambda: os.rmdir('d/sub')),
  'rename within': changed('d', lambda: os.rename('d/new', 'd/renamed')),
  'rename out and in': changed(['d', 'e'], lambda: os.rename('d/renamed', 'e/moved')),
  'write to a child': changed('d', lambda: open('d/keep', 'w').write('data')),
  'chmod of a child': changed('d', lambda: os.chmod('d/keep', 0o600)),
  'failed create': changed('d', lambda: E(os.mkdir, 'd/keep')),
  'chmod of the dir': changed('d', lambda: os.chmod('d', 0o700)),
}
out(res)
`)
  assert.deepEqual(r, {
    create: 'mc',
    mkdir: 'mc',
    symlink: 'mc',
    mknod: 'mc',
    link: 'mc',
    unlink: 'mc',
    rmdir: 'mc',
    'rename within': 'mc',
    'rename out and in': ['mc', 'mc'],
    'write to a child': '',
    'chmod of a child': '',
    'failed create': '',
    'chmod of the dir': 'c'
  })
})

test('reading a file moves its atime (relatime), as on tmpfs', async () => {
  const r = await sameAsTmpfs(pair, 'atime', CHANGED + `
open('f', 'w').write('data'); os.mkdir('d')
res = [changed('f', lambda: open('f').read()), changed('d', lambda: os.listdir('d'))]
# Once atime is past mtime and ctime (and recent), reading again moves nothing.
def again(p, op):
    op(); t = times(p); time.sleep(0.01); op(); return times(p) == t
res.append([again('f', lambda: open('f').read()), again('d', lambda: os.listdir('d'))])
ahead = time.time_ns() + 10**12
os.utime('f', ns=(ahead, 10**18)); open('f').read(); res.append(os.stat('f').st_atime_ns == ahead)
# A write moves mtime past atime: the next read moves atime again; opening to write does not.
with open('f', 'a') as fh: fh.write('more')
res.append(changed('f', lambda: open('f', 'a').close()))
os.utime('f', ns=(10**18, 10**18)); time.sleep(0.01)
with open('f', 'a') as fh: fh.write('x')
res.append(os.stat('f').st_atime_ns == 10**18)
open('f').read(); res.append(os.stat('f').st_atime_ns > 10**18)
out(res)
`)
  assert.deepEqual(r, ['a', 'a', [true, true], true, '', true, true])
})

let tree: string

test('times, modes and owners survive a remount to the nanosecond', async () => {
  tree = await snapshot(m.mnt)
  const atimes = await pyJson('out([os.stat(p).st_atime_ns for p in ("utimens/f", "utimens/g")])', { cwd: m.mnt })
  await m.remount()
  assert.equal(await snapshot(m.mnt), tree)
  assert.deepEqual(await pyJson('out([os.stat(p).st_atime_ns for p in ("utimens/f", "utimens/g")])', { cwd: m.mnt }), atimes)
  assert.equal(await m.shOk('stat -c "%y %u:%g %a" utimens/g chown/f'),
    '1969-07-20 20:17:40.000000001 +0000 0:0 644\n2001-09-09 01:46:40.000000000 +0000 4294967294:4294967294 2745\n')
})

test('fsck is clean', async () => {
  assert.equal(await m.stop(), 0, m.log)
  const r = await m.fsck()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  assert.equal(fsckCounts(r.stderr)['pending removal'], 0)
  await m.start()
  assert.equal(await snapshot(m.mnt), tree)
})
