// Permissions through a real mount, as other users (setpriv in child
// processes; root mounts with allow_other and default_permissions): access(),
// EACCES and EPERM cases, sticky directories, ownership of new files, setgid
// directories, setuid/setgid bits cleared on write and chown, umask. Each
// script also runs on a tmpfs and must give the same result. The last tests
// remount and run fsck.

import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { type CudeleMount, mountCudele, mountTmpfs } from '../helpers/mount'
import { openUp, type Pair, pyJson, sameAsTmpfs, shAs, snapshot } from '../helpers/posix'

let m: CudeleMount
let tmp: { dir: string, cleanup: () => void }
let pair: Pair

const ALICE = { uid: 1000, gid: 1000 }
const BOB = { uid: 1001, gid: 1001 }

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

/** As root, on both trees: run a setup script in a fresh directory `sub`. */
async function setup (sub: string, script: string): Promise<void> {
  await sameAsTmpfs(pair, sub, script + '\nout(0)\n')
}

test('the mount is shared with other users (allow_other, default_permissions)', async () => {
  const opts = (await pyJson(`
for l in open('/proc/mounts'):
    f = l.split()
    if f[1] == sys.argv[1]: out(f[3].split(','))
`, { cwd: '/', args: [m.mnt] })) as string[]
  assert.ok(opts.includes('allow_other') && opts.includes('default_permissions'), opts.join(','))
  const r = await shAs('id -u && ls -a . >/dev/null && echo listed', { cwd: m.mnt, ...ALICE })
  assert.equal(r.stdout, '1000\nlisted\n', r.stderr)
})

test('access() and opens as a user follow the owner, group and other bits; root bypasses all but exec', async () => {
  await setup('access', `
os.chmod('.', 0o755)
for name, mode, uid, gid in (('own600', 0o600, 1000, 1000), ('own400', 0o400, 1000, 1000), ('own000', 0o000, 1000, 1000),
                             ('grp060', 0o060, 0, 1000), ('oth004', 0o004, 0, 0), ('oth002', 0o002, 0, 0),
                             ('none', 0o000, 0, 0), ('exec711', 0o711, 0, 0), ('grp070own700', 0o070, 1000, 1000)):
    open(name, 'w').write('#!/bin/sh\\necho ran\\n'); os.chown(name, uid, gid); os.chmod(name, mode)
os.mkdir('noexec'); os.chmod('noexec', 0o644); open('noexec/f', 'w').close()
`)
  const script = `
res = {}
for n in sorted(os.listdir('.')):
    if n == 'noexec': continue
    res[n] = ''.join(c for c, m in (('r', os.R_OK), ('w', os.W_OK), ('x', os.X_OK)) if os.access(n, m))
    res[n + ' open r'] = E(lambda: os.close(os.open(n, os.O_RDONLY)))
    res[n + ' open w'] = E(lambda: os.close(os.open(n, os.O_WRONLY)))
res['search denied'] = [E(os.stat, 'noexec/f'), E(os.listdir, 'noexec'), os.access('noexec', os.X_OK)]
out(res)
`
  const alice = await sameAsTmpfs(pair, 'access', script, ALICE)
  assert.equal(alice.own600, 'rw')
  assert.equal(alice.own400, 'r')
  assert.equal(alice['own400 open w'], 'EACCES')
  assert.equal(alice.own000, '')
  assert.equal(alice.grp060, 'rw')
  assert.equal(alice.oth004, 'r')
  assert.equal(alice.oth002, 'w')
  assert.equal(alice.none, '')
  assert.equal(alice['none open r'], 'EACCES')
  assert.equal(alice.exec711, 'x')
  assert.equal(alice.grp070own700, '', 'the owner bits apply to the owner, even when the group bits allow more')
  assert.deepEqual(alice['search denied'], ['EACCES', 'ok', false], 'read without search lists names only')
  const root = await sameAsTmpfs(pair, 'access', script)
  assert.equal(root.none, 'rw')
  assert.equal(root['none open w'], 'ok')
  assert.equal(root.exec711, 'rwx')
  assert.equal(root.own600, 'rw', 'root cannot execute a file that has no execute bit')
  // Running a program needs its x bit.
  assert.equal((await shAs('./exec711 && ./own600', { cwd: `${m.mnt}/access`, ...ALICE })).stdout, '')
  assert.equal((await shAs('sh ./oth004', { cwd: `${m.mnt}/access`, ...ALICE })).stdout, 'ran\n')
})

test('EACCES: writing a 0444 file, creating, removing and renaming in a 0555 directory', async () => {
  await setup('eacces', `
os.chmod('.', 0o777)
os.mkdir('ro'); open('ro/inside', 'w').close(); os.chmod('ro', 0o555); os.chown('ro', 1000, 1000)
os.mkdir('rw'); os.chmod('rw', 0o777)
open('rofile', 'w').write('keep'); os.chmod('rofile', 0o444); os.chown('rofile', 1000, 1000)
os.mkdir('listonly'); open('listonly/f', 'w').close(); os.chmod('listonly', 0o444)
os.mkdir('searchonly'); open('searchonly/f', 'w').write('x'); os.chmod('searchonly', 0o311)
os.mkdir('rw/roots-dir'); os.mkdir('rw2'); os.chmod('rw2', 0o777)
`)
  const r = await sameAsTmpfs(pair, 'eacces', `
res = {
  'write 0444': E(open, 'rofile', 'w'), 'append 0444': E(open, 'rofile', 'a'), 'truncate 0444': E(os.truncate, 'rofile', 0),
  'create in 0555': E(open, 'ro/new', 'w'), 'mkdir in 0555': E(os.mkdir, 'ro/d'), 'symlink in 0555': E(os.symlink, 'x', 'ro/l'),
  'unlink in 0555': E(os.unlink, 'ro/inside'), 'rename out of 0555': E(os.rename, 'ro/inside', 'rw/x'),
  'rename into 0555': E(os.rename, 'rofile', 'ro/x'), 'link into 0555': E(os.link, 'rofile', 'ro/x'),
  'mkfifo in 0555': E(os.mkfifo, 'ro/p'),
  'move an unwritable dir to another parent': E(os.rename, 'rw/roots-dir', 'rw2/moved'),
  'rename an unwritable dir in place': E(os.rename, 'rw/roots-dir', 'rw/renamed'),
  'list without x': sorted(os.listdir('listonly')), 'stat without x': E(os.stat, 'listonly/f'),
  'list without r': E(os.listdir, 'searchonly'), 'open without r': open('searchonly/f').read(),
  'still there': [open('rofile').read(), sorted(os.listdir('ro'))],
}
# The owner may chmod their own read-only file and then write it.
os.chmod('rofile', 0o644); open('rofile', 'w').write('mine now'); res['after chmod'] = open('rofile').read()
out(res)
`, ALICE)
  for (const k of ['write 0444', 'append 0444', 'truncate 0444', 'create in 0555', 'mkdir in 0555', 'symlink in 0555',
    'unlink in 0555', 'rename out of 0555', 'rename into 0555', 'link into 0555', 'mkfifo in 0555', 'stat without x', 'list without r',
    'move an unwritable dir to another parent']) {
    assert.equal(r[k], 'EACCES', k)
  }
  assert.equal(r['rename an unwritable dir in place'], 'ok', 'its ".." does not change')
  assert.deepEqual(r['list without x'], ['f'])
  assert.equal(r['open without r'], 'x')
  assert.deepEqual(r['still there'], ['keep', ['inside']])
  assert.equal(r['after chmod'], 'mine now')
})

test('EPERM: chmod, chown, utimes and hard links of files one does not own', async () => {
  await setup('eperm', `
os.chmod('.', 0o777)
open('roots', 'w').close(); os.chmod('roots', 0o666)
open('alices', 'w').close(); os.chown('alices', 1000, 1000)
open('secret', 'w').close(); os.chmod('secret', 0o600)
`)
  const r = await sameAsTmpfs(pair, 'eperm', `
res = {
  'chmod other': E(os.chmod, 'roots', 0o777), 'chown other': E(os.chown, 'roots', 1000, 1000),
  'chown own to other user': E(os.chown, 'alices', 1001, -1), 'chgrp own to non-member': E(os.chown, 'alices', -1, 4242),
  'chown own to self': E(os.chown, 'alices', 1000, 1000),
  'utime other explicit': E(os.utime, 'roots', ns=(1, 1)), 'utime other now (writable)': E(os.utime, 'roots'),
  'utime other now (not writable)': E(os.utime, 'secret'),
  'utime own explicit': E(os.utime, 'alices', ns=(5, 5)),
  'link to unowned unreadable': E(os.link, 'secret', 'l1'),
  'link to own': E(os.link, 'alices', 'l2'),
}
out(res)
`, ALICE)
  assert.equal(r['chmod other'], 'EPERM')
  assert.equal(r['chown other'], 'EPERM')
  assert.equal(r['chown own to other user'], 'EPERM')
  assert.equal(r['chgrp own to non-member'], 'EPERM')
  assert.equal(r['chown own to self'], 'ok')
  assert.equal(r['utime other explicit'], 'EPERM')
  assert.equal(r['utime other now (writable)'], 'ok')
  assert.equal(r['utime other now (not writable)'], 'EACCES')
  assert.equal(r['utime own explicit'], 'ok')
  assert.equal(r['link to own'], 'ok')
  // chgrp to a group the user is in works.
  const g = await sameAsTmpfs(pair, 'eperm', `
os.chown('alices', -1, 4242); out(os.stat('alices').st_gid)
`, { ...ALICE, groups: [4242] })
  assert.equal(g, 4242)
})

test('sticky directories: only the owner of an entry (or of the directory) may remove or rename it', async () => {
  await setup('sticky', `
os.mkdir('tmp'); os.chmod('tmp', 0o1777)
os.mkdir('alices-tmp'); os.chown('alices-tmp', 1000, 1000); os.chmod('alices-tmp', 0o1777)
`)
  await sameAsTmpfs(pair, 'sticky', `
open('tmp/a-file', 'w').close(); os.mkdir('tmp/a-dir'); open('alices-tmp/a-file', 'w').close()
out(0)
`, ALICE)
  const bob = await sameAsTmpfs(pair, 'sticky', `
open('tmp/b-file', 'w').close(); open('alices-tmp/b-file', 'w').close()
out({'unlink alice\\'s': E(os.unlink, 'tmp/a-file'), 'rmdir alice\\'s': E(os.rmdir, 'tmp/a-dir'),
     'rename alice\\'s': E(os.rename, 'tmp/a-file', 'tmp/stolen'), 'replace alice\\'s': E(os.rename, 'tmp/b-file', 'tmp/a-file'),
     'unlink own': E(os.unlink, 'tmp/b-file'), 'mode': oct(os.stat('tmp').st_mode)})
`, BOB)
  assert.deepEqual(bob, {
    "unlink alice's": 'EPERM',
    "rmdir alice's": 'EPERM',
    "rename alice's": 'EPERM',
    "replace alice's": 'EPERM',
    'unlink own': 'ok',
    mode: '0o41777'
  })
  // Alice owns the second directory, so she may remove Bob's entry there.
  const alice = await sameAsTmpfs(pair, 'sticky', `
out([E(os.unlink, 'alices-tmp/b-file'), E(os.unlink, 'tmp/a-file'), E(os.rmdir, 'tmp/a-dir')])
`, ALICE)
  assert.deepEqual(alice, ['ok', 'ok', 'ok'])
})

test('new files, directories, symlinks and nodes belong to the caller\'s uid and gid', async () => {
  await setup('owner', 'os.chmod(".", 0o777)')
  const r = await sameAsTmpfs(pair, 'owner', `
os.umask(0o022)
open('f', 'w').close(); os.mkdir('d'); os.symlink('f', 'l'); os.mkfifo('p'); os.link('f', 'h')
s = socket.socket(socket.AF_UNIX); s.bind('s'); s.close()
out({n: [os.lstat(n).st_uid, os.lstat(n).st_gid] for n in ('f', 'd', 'l', 'p', 's', 'h')})
`, { uid: 1000, gid: 1234, groups: [4242] })
  for (const [n, ids] of Object.entries(r)) assert.deepEqual(ids, [1000, 1234], n)
  const sh = await shAs('touch shell-made && mkdir shell-dir && stat -c "%u %g" shell-made shell-dir', { cwd: `${m.mnt}/owner`, uid: 1001, gid: 1001 })
  assert.equal(sh.stdout, '1001 1001\n1001 1001\n', sh.stderr)
})

test('setgid directories: new entries take the directory\'s group, new subdirectories keep the bit', async () => {
  await setup('setgid', `
os.mkdir('sg'); os.chown('sg', 0, 4242); os.chmod('sg', 0o2777)
open('sg/by-root', 'w').close(); os.mkdir('sg/root-sub')
`)
  const r = await sameAsTmpfs(pair, 'setgid', `
os.umask(0o022)
open('sg/by-alice', 'w').close(); os.mkdir('sg/alice-sub'); os.symlink('x', 'sg/alice-link'); os.mkfifo('sg/alice-fifo')
os.mkdir('sg/alice-sub/deeper')
fd = os.open('sg/sgid-exec', os.O_CREAT | os.O_WRONLY, 0o2755); os.close(fd)
def d(n):
    st = os.lstat(n); return [st.st_uid, st.st_gid, oct(st.st_mode)]
out({n: d('sg/' + n) for n in ('by-root', 'root-sub', 'by-alice', 'alice-sub', 'alice-sub/deeper', 'alice-link', 'alice-fifo', 'sgid-exec')})
`, ALICE)
  assert.deepEqual(r['by-root'], [0, 4242, '0o100644'])
  assert.deepEqual(r['root-sub'], [0, 4242, '0o42755'])
  assert.deepEqual(r['by-alice'], [1000, 4242, '0o100644'])
  assert.deepEqual(r['alice-sub'], [1000, 4242, '0o42755'])
  assert.deepEqual(r['alice-sub/deeper'], [1000, 4242, '0o42755'])
  assert.deepEqual(r['alice-link'].slice(0, 2), [1000, 4242])
  // Alice is not in group 4242: the kernel strips the setgid bit she asked for.
  assert.deepEqual(r['sgid-exec'], [1000, 4242, '0o100755'])
})

test('writing, truncating or chowning a setuid/setgid file clears the bits', async () => {
  await setup('killpriv', `
os.chmod('.', 0o777)
for n in ('w', 't', 'o'):
    open(n, 'w').write('x'); os.chmod(n, 0o6777)
open('mine', 'w').close(); os.chown('mine', 1000, 1000); os.chmod('mine', 0o6755)
`)
  const r = await sameAsTmpfs(pair, 'killpriv', `
def mode(n): return oct(stat.S_IMODE(os.stat(n).st_mode))
with open('w', 'a') as fh: fh.write('more')
os.truncate('t', 0)
os.chown('mine', 1000, 1000)
out({'write': mode('w'), 'truncate': mode('t'), 'untouched': mode('o'), 'chown': mode('mine')})
`, ALICE)
  assert.deepEqual(r, { write: '0o777', truncate: '0o777', untouched: '0o6777', chown: '0o755' })
  // chmod g+s on one's own file in a group one is not in: the bit is dropped.
  const g = await sameAsTmpfs(pair, 'killpriv', `
os.chown('mine', -1, 1000); os.chmod('mine', 0o2755); a = oct(os.stat('mine').st_mode)
out(a)
`, ALICE)
  assert.equal(g, '0o102755')
  const root = await sameAsTmpfs(pair, 'killpriv', `
os.chown('mine', 1000, 4242); os.chmod('mine', 0o2755); a = oct(os.stat('mine').st_mode)
out(a)
`)
  assert.equal(root, '0o102755')
  const notMember = await sameAsTmpfs(pair, 'killpriv', `
os.chmod('mine', 0o2755); out(oct(os.stat('mine').st_mode))
`, ALICE)
  assert.equal(notMember, '0o100755')
})

test('writing a setgid file without group execute, as a non-member, clears setgid', async () => {
  await setup('killpriv2', `
os.chmod('.', 0o777)
open('grp-noexec', 'w').close(); os.chmod('grp-noexec', 0o2666)
`)
  const r = await sameAsTmpfs(pair, 'killpriv2', `
with open('grp-noexec', 'a') as fh: fh.write('more')
out(oct(stat.S_IMODE(os.stat('grp-noexec').st_mode)))
`, ALICE)
  assert.equal(r, '0o666')
})

test('the umask applies to new files and directories', async () => {
  await setup('umask', 'os.chmod(".", 0o777)')
  const r = await sameAsTmpfs(pair, 'umask', `
res = {}
for mask in (0o077, 0o027, 0o000):
    os.umask(mask)
    f = 'f%o' % mask; d = 'd%o' % mask
    os.close(os.open(f, os.O_CREAT | os.O_WRONLY, 0o666)); os.mkdir(d, 0o777); os.mkfifo('p%o' % mask, 0o666)
    res['%o' % mask] = [oct(stat.S_IMODE(os.stat(n).st_mode)) for n in (f, d, 'p%o' % mask)]
out(res)
`, ALICE)
  assert.deepEqual(r, { 77: ['0o600', '0o700', '0o600'], 27: ['0o640', '0o750', '0o640'], 0: ['0o666', '0o777', '0o666'] })
})

let tree: string

test('owners, groups and modes survive a remount; permissions still apply', async () => {
  tree = await snapshot(m.mnt)
  await m.remount()
  assert.equal(await snapshot(m.mnt), tree)
  const r = await shAs('cat access/none; echo rc=$?; rm sticky/tmp/b-file 2>&1; ls -ld setgid/sg/alice-sub | cut -c1-10',
    { cwd: m.mnt, ...BOB })
  assert.match(r.stdout + r.stderr, /rc=1/)
  assert.match(r.stdout, /drwxr-sr-x/)
})

test('fsck is clean', async () => {
  assert.equal(await m.stop(), 0, m.log)
  const r = await m.fsck()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  await m.start()
  assert.equal(await snapshot(m.mnt), tree)
})
