// Extended attributes through a real mount, compared with tmpfs: set, get,
// list and remove; XATTR_CREATE/XATTR_REPLACE; ENODATA; binary and 64 KiB
// values; size probes and ERANGE; name limits; namespaces; permissions for
// other users; getfattr/setfattr when installed. The last tests remount and
// run fsck.

import assert from 'node:assert/strict'
import { spawnSync } from 'child_process'
import { after, before, test } from 'node:test'
import { type CudeleMount, mountCudele, mountTmpfs } from '../helpers/mount'
import { openUp, type Pair, pyJson, sameAsTmpfs, snapshot } from '../helpers/posix'

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

test('set, get, list and remove on files and directories; flags and ENODATA', async () => {
  const r = await sameAsTmpfs(pair, 'basic', `
open('f', 'w').close(); os.mkdir('d')
res = {}
os.setxattr('f', 'user.a', b'1'); os.setxattr('f', 'user.b', b'two')
res['get'] = [b2s(os.getxattr('f', 'user.a')), b2s(os.getxattr('f', 'user.b'))]
res['list'] = sorted(os.listxattr('f'))
res['create existing'] = E(os.setxattr, 'f', 'user.a', b'x', os.XATTR_CREATE)
res['create new'] = E(os.setxattr, 'f', 'user.c', b'c', os.XATTR_CREATE)
res['replace missing'] = E(os.setxattr, 'f', 'user.nope', b'x', os.XATTR_REPLACE)
res['replace existing'] = [E(os.setxattr, 'f', 'user.a', b'new', os.XATTR_REPLACE), b2s(os.getxattr('f', 'user.a'))]
res['both flags'] = E(os.setxattr, 'f', 'user.a', b'x', os.XATTR_CREATE | os.XATTR_REPLACE)
res['get missing'] = E(os.getxattr, 'f', 'user.nope')
res['remove missing'] = E(os.removexattr, 'f', 'user.nope')
res['remove'] = [E(os.removexattr, 'f', 'user.b'), sorted(os.listxattr('f')), E(os.getxattr, 'f', 'user.b')]
res['overwrite shorter'] = [E(os.setxattr, 'f', 'user.c', b'c' * 100), E(os.setxattr, 'f', 'user.c', b'z'), b2s(os.getxattr('f', 'user.c'))]
os.setxattr('d', 'user.dir', b'on a dir'); res['dir'] = [b2s(os.getxattr('d', 'user.dir')), os.listxattr('d')]
res['empty list'] = os.listxattr('.')
res['missing file'] = E(os.getxattr, 'nope', 'user.a')
res['via fd'] = [E(os.setxattr, os.open('f', os.O_RDONLY), 'user.fd', b'fd'), b2s(os.getxattr('f', 'user.fd'))]
out(res)
`)
  assert.deepEqual(r.get, ['1', 'two'])
  assert.deepEqual(r.list, ['user.a', 'user.b'])
  assert.equal(r['create existing'], 'EEXIST')
  assert.equal(r['create new'], 'ok')
  assert.equal(r['replace missing'], 'ENODATA')
  assert.deepEqual(r['replace existing'], ['ok', 'new'])
  assert.equal(r['get missing'], 'ENODATA')
  assert.equal(r['remove missing'], 'ENODATA')
  assert.deepEqual(r.remove, ['ok', ['user.a', 'user.c'], 'ENODATA'])
  assert.deepEqual(r['overwrite shorter'], ['ok', 'ok', 'z'])
  assert.deepEqual(r.dir, ['on a dir', ['user.dir']])
  assert.deepEqual(r['empty list'], [])
  assert.equal(r['missing file'], 'ENOENT')
})

test('values: binary bytes, empty, exactly 64 KiB; larger gives E2BIG', async () => {
  const r = await sameAsTmpfs(pair, 'values', `
open('f', 'w').close()
binary = bytes(range(256)) * 3 + b'\\0\\0end\\0'
big = bytes((i * 7919) % 251 for i in range(65536))
res = {'binary': [E(os.setxattr, 'f', 'user.bin', binary), os.getxattr('f', 'user.bin') == binary],
       'empty': [E(os.setxattr, 'f', 'user.empty', b''), b2s(os.getxattr('f', 'user.empty'))],
       '64 KiB': [E(os.setxattr, 'f', 'user.big', big), os.getxattr('f', 'user.big') == big],
       'too big': E(os.setxattr, 'f', 'user.huge', big + b'!')}
out(res)
`)
  assert.deepEqual(r, { binary: ['ok', true], empty: ['ok', ''], '64 KiB': ['ok', true], 'too big': 'E2BIG' })
})

test('size probes: size 0 returns the length; a short buffer gives ERANGE', async () => {
  const r = await sameAsTmpfs(pair, 'probe', `
open('f', 'w').close()
os.setxattr('f', 'user.k', b'v' * 300); os.setxattr('f', 'user.other', b'')
def getx(name, size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.getxattr(b'f', name, buf if size else None, ctypes.c_size_t(size))
    return n if n >= 0 else errno.errorcode[ctypes.get_errno()]
def listx(size):
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.listxattr(b'f', buf if size else None, ctypes.c_size_t(size))
    if size == 0: return n
    # The order of names is unspecified (tmpfs lists the newest first).
    return [n, sorted(b2s(buf.raw[:n]).split('\\0'))] if n >= 0 else errno.errorcode[ctypes.get_errno()]
out({'get probe': getx(b'user.k', 0), 'get short': getx(b'user.k', 299), 'get exact': getx(b'user.k', 300),
     'get empty value probe': getx(b'user.other', 0), 'get missing probe': getx(b'user.nope', 0),
     'list probe': listx(0), 'list short': listx(5), 'list exact': listx(listx(0))})
`)
  assert.deepEqual(r, {
    'get probe': 300,
    'get short': 'ERANGE',
    'get exact': 300,
    'get empty value probe': 0,
    'get missing probe': 'ENODATA',
    'list probe': 18,
    'list short': 'ERANGE',
    'list exact': [18, ['', 'user.k', 'user.other']]
  })
})

test('names: 255 bytes work, 256 give ERANGE, empty is invalid, binary bytes round-trip, many names list', async () => {
  const r = await sameAsTmpfs(pair, 'names', `
open('f', 'w').close(); open('g', 'w').close()
n255 = 'user.' + 'n' * 250; n256 = n255 + 'n'
res = {'255': [E(os.setxattr, 'f', n255, b'ok'), b2s(os.getxattr('f', n255))],
       '256 set': E(os.setxattr, 'f', n256, b'x'), '256 get': E(os.getxattr, 'f', n256),
       '256 remove': E(os.removexattr, 'f', n256),
       'empty': E(os.setxattr, 'f', '', b'x'), 'prefix only': E(os.setxattr, 'f', 'user.', b'x'),
       'get prefix only': E(os.getxattr, 'f', 'trusted.')}
binname = b'user.\\xff\\x80\\xe9'
res['binary name'] = [E(os.setxattr, b'f', binname, b'b'), binname in [os.fsencode(n) for n in os.listxattr(b'f')],
                      b2s(os.getxattr(b'f', binname))]
for i in range(200): os.setxattr('g', 'user.attr%03d' % i, b'%d' % i)
names = os.listxattr('g')
res['many'] = [len(names), sorted(names) == ['user.attr%03d' % i for i in range(200)],
               all(os.getxattr('g', 'user.attr%03d' % i) == b'%d' % i for i in range(200))]
out(res)
`)
  assert.deepEqual(r['255'], ['ok', 'ok'])
  assert.equal(r['256 set'], 'ERANGE')
  assert.equal(r['256 get'], 'ERANGE')
  assert.equal(r['prefix only'], 'EINVAL')
  assert.equal(r['get prefix only'], 'EINVAL')
  assert.deepEqual(r['binary name'], ['ok', true, 'b'])
  assert.deepEqual(r.many, [200, true, true])
})

test('namespaces: trusted and security work for root, unknown prefixes are refused, symlinks take trusted only', async () => {
  const r = await sameAsTmpfs(pair, 'ns', `
open('f', 'w').close(); os.symlink('f', 'sl')
out({'trusted': [E(os.setxattr, 'f', 'trusted.t', b'1'), b2s(os.getxattr('f', 'trusted.t'))],
     'security': [E(os.setxattr, 'f', 'security.s', b'2'), b2s(os.getxattr('f', 'security.s'))],
     'unknown': E(os.setxattr, 'f', 'bogus.x', b'1'), 'no dot': E(os.setxattr, 'f', 'user', b'1'),
     'get unknown': E(os.getxattr, 'f', 'bogus.x'),
     'user on symlink': E(os.setxattr, 'sl', 'user.u', b'1', follow_symlinks=False),
     'trusted on symlink': [E(os.setxattr, 'sl', 'trusted.l', b'l', follow_symlinks=False),
                            b2s(os.getxattr('sl', 'trusted.l', follow_symlinks=False)), 'trusted.l' in os.listxattr('f')],
     'through symlink': [E(os.setxattr, 'sl', 'user.via', b'v'), b2s(os.getxattr('f', 'user.via'))],
     'list': sorted(os.listxattr('f'))})
`)
  assert.deepEqual(r.trusted, ['ok', '1'])
  assert.deepEqual(r.security, ['ok', '2'])
  assert.equal(r.unknown, 'ENOTSUP')
  assert.equal(r['get unknown'], 'ENOTSUP')
  assert.equal(r['user on symlink'], 'EPERM')
  assert.deepEqual(r['trusted on symlink'], ['ok', 'l', false])
  assert.deepEqual(r['through symlink'], ['ok', 'v'])
  assert.deepEqual(r.list, ['security.s', 'trusted.t', 'user.via'])
})

test('other users: user.* needs write permission to set and read permission to get; trusted.* is hidden', async () => {
  await sameAsTmpfs(pair, 'perm', `
open('mine', 'w').close(); os.chown('mine', 1000, 1000)
open('theirs', 'w').close(); os.chmod('theirs', 0o644); os.setxattr('theirs', 'user.x', b'x'); os.setxattr('theirs', 'trusted.t', b't')
open('secret', 'w').close(); os.chmod('secret', 0o600); os.setxattr('secret', 'user.x', b'x')
os.chmod('.', 0o755)
out(0)
`)
  const r = await sameAsTmpfs(pair, 'perm', `
out({'own': [E(os.setxattr, 'mine', 'user.m', b'm'), b2s(os.getxattr('mine', 'user.m'))],
     'set on read-only': E(os.setxattr, 'theirs', 'user.y', b'y'),
     'get readable': b2s(os.getxattr('theirs', 'user.x')),
     'remove on read-only': E(os.removexattr, 'theirs', 'user.x'),
     'get unreadable': E(os.getxattr, 'secret', 'user.x'),
     'trusted get': E(os.getxattr, 'theirs', 'trusted.t'),
     'trusted set': E(os.setxattr, 'mine', 'trusted.t', b't'),
     'list hides trusted': sorted(os.listxattr('theirs'))})
`, { uid: 1000, gid: 1000 })
  assert.deepEqual(r, {
    own: ['ok', 'm'],
    'set on read-only': 'EACCES',
    'get readable': 'x',
    'remove on read-only': 'EACCES',
    'get unreadable': 'EACCES',
    'trusted get': 'ENODATA',
    'trusted set': 'EPERM',
    'list hides trusted': ['user.x']
  })
})

test('getfattr and setfattr, when the attr package is installed', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v getfattr && command -v setfattr']).status !== 0) {
    t.skip('getfattr/setfattr are not installed')
    return
  }
  const out = await m.shOk(`mkdir -p tools && touch tools/f && setfattr -n user.tool -v hello tools/f &&
    setfattr -n user.hex -v 0x00ff10 tools/f && getfattr -d -e hex tools/f && setfattr -x user.tool tools/f && getfattr -d tools/f`)
  assert.match(out, /user\.hex=0x00ff10/)
  assert.match(out, /user\.tool=0x68656c6c6f/)
  assert.doesNotMatch(out.split('\n\n').slice(1).join('\n'), /user\.tool/)
})

let tree: string

test('extended attributes survive a remount', async () => {
  tree = await snapshot(m.mnt)
  assert.match(tree, /user\.attr199/)
  await m.remount()
  assert.equal(await snapshot(m.mnt), tree)
  const r = await pyJson(`
out([len(os.listxattr('names/g')), os.getxattr('values/f', 'user.big') == bytes((i * 7919) % 251 for i in range(65536)),
     b2s(os.getxattr('ns/sl', 'trusted.l', follow_symlinks=False)), E(os.getxattr, 'basic/f', 'user.b')])
`, { cwd: m.mnt })
  assert.deepEqual(r, [200, true, 'l', 'ENODATA'])
})

test('fsck is clean', async () => {
  assert.equal(await m.stop(), 0, m.log)
  const r = await m.fsck()
  assert.equal(r.code, 0, r.stdout + r.stderr)
  await m.start()
  assert.equal(await snapshot(m.mnt), tree)
})
