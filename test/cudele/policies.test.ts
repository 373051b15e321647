// Setting policies through a mount (DIR/policies.yml, `cudele policy set`),
// what is refused and how (EINVAL on close, the reason in `cudele log`, the
// old policy stays), inheritance, policy changes while a client holds
// unmerged updates, allocated_inodes, the EXDEV edge of a decoupled subtree,
// and every ready policy in policies/.

import assert from 'node:assert/strict'
import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'
import { after, before, test } from 'node:test'
import { parsePolicy } from '../../src/cudele/policy'
import { cleanupServers, type ClientMount, cudele, mountClient, type ServerProc, startServer } from '../helpers/server'
import { REPO } from '../helpers/mount'
import { errnos, policyOf, py, setPolicy, syncOk, tree, useStateHome, viewOf, writeFiles, writePolicy } from '../helpers/cudele'

const state = useStateHome()
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cudele-policies-'))
let srv: ServerProc
let a: ClientMount
let b: ClientMount

before(async () => {
  srv = await startServer()
  a = await mountClient(srv, 'a')
  b = await mountClient(srv, 'b')
})

after(async () => {
  await cleanupServers()
  state.cleanup()
  fs.rmSync(tmp, { recursive: true, force: true })
})

async function log (): Promise<string> {
  const r = await cudele(`log --connect "${srv.addr}" -n 300`)
  assert.equal(r.code, 0, r.stderr)
  return r.stdout
}

/** A policies.yml outside the mounts, for `cudele policy set`. */
function policyFile (name: string, yaml: string): string {
  const f = path.join(tmp, name)
  fs.writeFileSync(f, yaml)
  return f
}

test('a policy written as DIR/policies.yml through a mount, and with cudele policy set; policy show (text and --json) reports it', { timeout: 60000 }, async () => {
  await b.shOk('mkdir -p set1 set2')
  const def = await policyOf(b, 'set1')
  assert.deepEqual([def.consistency, def.durability, def.version, def.root ?? null], ['strong', 'global', 0, null])
  assert.match(def.source, /^default/)

  await setPolicy(a, 'set1', 'consistency: weak\ndurability: local\nallocated_inodes: 1234\ninterfere: block\nsync_interval: 30s\n')
  const p = await policyOf(b, 'set1')
  const ino = Number((await b.shOk('stat -c %i set1')).trim())
  assert.deepEqual(p, {
    directory: ino,
    source: `/set1 (inode ${ino})`,
    version: 1,
    epoch: p.epoch,
    consistency: 'weak',
    durability: 'local',
    consistency_mechanisms: 'append_client_journal+volatile_apply',
    durability_mechanisms: 'local_persist',
    allocated_inodes: 1234,
    interfere: 'block',
    sync_interval_ms: 30000,
    summary: 'consistency weak (append_client_journal+volatile_apply), durability local (local_persist), allocated_inodes 1234, interfere block, sync_interval 30000 ms',
    means: 'changes go to the client\'s own journal (no round trip) and are merged into the global namespace every 30 s, on cudele sync and on unmount; other clients see them after the merge; the journal is kept in a local file: what the client fsync\'d comes back when it mounts again',
    owner: null,
    owned_here: false,
    unmerged_segments: 0
  })
  assert.ok(p.epoch >= 1)

  const f = policyFile('set2.yml', 'consistency: append_client_journal\ndurability: global_persist\n')
  const r = await cudele(`policy set "${path.join(a.mnt, 'set2')}" "${f}"`)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /policy from \/set2 \(inode \d+\), version 1/)
  assert.match(r.stdout, /consistency invisible \(append_client_journal\), durability global \(global_persist\), allocated_inodes 100, interfere allow, sync_interval off/)
  const text = await cudele(`policy show "${path.join(b.mnt, 'set2')}"`)
  assert.equal(text.code, 0, text.stderr)
  assert.equal(text.stdout, r.stdout.replace(a.mnt, b.mnt))
  assert.equal(await b.shOk('cat set2/policies.yml'), 'consistency: append_client_journal\ndurability: global_persist\n')
  assert.match(await log(), /policy of \/set2 \(inode \d+\) is now version 1, set by \S+: invisible\/global/)

  // A second policy on the same directory: version 2.
  await setPolicy(b, 'set2', 'consistency: strong\n')
  const p2 = await policyOf(a, 'set2')
  assert.deepEqual([p2.version, p2.consistency, p2.durability], [2, 'strong', 'global'])
  assert.ok(p2.epoch > p.epoch)
})

const INVALID: Array<[string, string, RegExp]> = [
  ['YAML error', 'consistency: weak\ndurability: [local\n', /\/bad\/policies\.yml:2: YAML: /],
  ['unknown field', 'consistency: weak\ndurablity: local\n', /\/bad\/policies\.yml:2: durablity: unknown field \(known: consistency, durability, allocated_inodes, interfere, sync_interval\)/],
  ['bad value', 'consistency: weak\ninterfere: sometimes\n', /\/bad\/policies\.yml:2: interfere: expected allow or block/],
  ['bad number', 'allocated_inodes: -5\n', /\/bad\/policies\.yml:1: allocated_inodes: expected a whole number/],
  ['bad duration', 'consistency: weak\n\nsync_interval: soon\n', /\/bad\/policies\.yml:3: sync_interval: expected a duration/],
  ['unknown mechanism', 'consistency: rpcs+telepathy\n', /\/bad\/policies\.yml:1: consistency: unknown mechanism "telepathy"/],
  ['stream+local_persist', 'consistency: rpcs\ndurability: stream+local_persist\n', /\/bad\/policies\.yml:2: durability: stream and local_persist: stream \(global\) is already stronger than local/],
  ['append_client_journal+rpcs', 'consistency: append_client_journal+rpcs\n', /\/bad\/policies\.yml:1: consistency: append_client_journal and rpcs do the same thing/],
  ['sync_interval with strong', 'consistency: strong\nsync_interval: 1s\n', /\/bad\/policies\.yml:2: sync_interval: only decoupled subtrees/]
]

test('invalid policies: the write that makes the file invalid fails with EINVAL and so does close() (cp and a shell say so), the reason with file, line and field is in cudele log and the mount\'s output, the previous policy and policies.yml stay', { timeout: 90000 }, async () => {
  const good = 'consistency: invisible\ndurability: local\nallocated_inodes: 77\n'
  await setPolicy(a, 'bad', good)
  const before = await policyOf(b, 'bad')
  assert.equal(before.version, 1)
  for (const [what, yaml, reason] of INVALID) {
    const r = await writePolicy(a, 'bad', yaml)
    assert.notEqual(r.code, 0, what)
    assert.match(r.stderr, /error writing '.*bad\/policies\.yml': Invalid argument/, what)
    assert.match(await log(), new RegExp(`WARN +mds\\.0: policy for /bad refused: EINVAL: .*${reason.source}`), what)
    assert.match(a.log, new RegExp(`cudele: /bad/policies\\.yml refused: .*${reason.source}`), what)
    assert.deepEqual(await policyOf(b, 'bad'), before, what)
    // The file says what is in force, on both mounts.
    assert.equal(await a.shOk('cat bad/policies.yml'), good, what)
    assert.equal(await b.shOk('cat bad/policies.yml'), good, what)
  }
  // Appending a bad line to the good file: the write and the close fail, the good file stays as it was.
  const appended = await py(b, `
import errno, os
fd = os.open('bad/policies.yml', os.O_WRONLY | os.O_APPEND)
try:
    os.write(fd, b'sync_interval: soon\\n')
except OSError as e:
    print('write', errno.errorcode[e.errno])
try:
    os.close(fd)
except OSError as e:
    print('close', errno.errorcode[e.errno])
`)
  assert.equal(appended.stdout, 'write EINVAL\nclose EINVAL\n', appended.stderr)
  // A shell's redirection ignores errors of close(): the write's error is what it reports.
  const shell = await b.sh(`bash -c 'printf "consistency: sideways\\n" > bad/policies.yml'`)
  assert.notEqual(shell.code, 0)
  assert.match(shell.stderr, /write error: Invalid argument/)
  assert.equal(await a.shOk('cat bad/policies.yml'), good)
  assert.equal(await a.shOk('cat bad/policies.yml'), good)
  // A refused policies.yml that did not exist before is not left behind.
  await a.shOk('mkdir -p bad-new')
  const fresh = await writePolicy(a, 'bad-new', 'consistency: sideways\n')
  assert.notEqual(fresh.code, 0)
  assert.equal(await b.shOk('ls -A bad-new | wc -l'), '0\n')
  assert.equal((await policyOf(a, 'bad-new')).version, 0)
  // A writer that writes in pieces is checked once its lines are whole, and at close.
  const r = await py(b, `
import os, errno
fd = os.open('bad/policies.yml', os.O_WRONLY | os.O_TRUNC)
os.write(fd, b'consistency: side')
try:
    os.write(fd, b'ways\\n')
except OSError as e:
    print('write', errno.errorcode[e.errno])
try:
    os.close(fd)
    print('closed')
except OSError as e:
    print('close', errno.errorcode[e.errno])
`)
  assert.equal(r.stdout, 'write EINVAL\nclose EINVAL\n', r.stderr)
  assert.deepEqual(await policyOf(a, 'bad'), before)

  // cudele policy set checks the file itself first, and names it.
  const f = policyFile('senseless.yml', 'consistency: weak\ndurability: stream+local_persist\n')
  const s = await cudele(`policy set "${path.join(b.mnt, 'bad')}" "${f}"`)
  assert.equal(s.code, 1)
  assert.match(s.stderr, /bad\/policies\.yml:2: durability: stream and local_persist/)
  assert.deepEqual(await policyOf(a, 'bad'), before)
  // A good one still goes in after all that.
  await setPolicy(b, 'bad', 'consistency: weak\n')
  assert.equal((await policyOf(a, 'bad')).version, 2)
})

test('inheritance: a directory without policies.yml shows the nearest ancestor\'s policy and where it comes from', { timeout: 60000 }, async () => {
  await b.shOk('mkdir -p inh/x/y/z inh/other')
  await setPolicy(b, 'inh', fs.readFileSync(path.join(REPO, 'policies', 'batchfs.yml'), 'utf8'))
  await setPolicy(b, 'inh/x', 'consistency: strong\ndurability: none\n')
  const root = await policyOf(a, 'inh')
  const x = await policyOf(a, 'inh/x')
  for (const [dir, from] of [['inh/other', root], ['inh/x/y', x], ['inh/x/y/z', x]] as const) {
    const p = await policyOf(a, dir)
    assert.equal(p.source, from.source, dir)
    assert.equal(p.version, from.version, dir)
    for (const k of ['consistency', 'durability', 'consistency_mechanisms', 'durability_mechanisms', 'allocated_inodes', 'interfere', 'sync_interval_ms']) assert.equal(p[k], from[k], `${dir}: ${k}`)
    assert.notEqual(p.directory, from.directory)
  }
  assert.match(root.source, /^\/inh \(inode \d+\)$/)
  assert.match(x.source, /^\/inh\/x \(inode \d+\)$/)
  assert.deepEqual([root.consistency, root.durability, x.consistency, x.durability], ['weak', 'local', 'strong', 'none'])
})

test('changing the policy of a subtree another client holds unmerged updates in is refused (EBUSY, a clear message); the owner changing it merges first and loses nothing', { timeout: 90000 }, async () => {
  await setPolicy(b, 'held', 'consistency: weak\ndurability: local\ninterfere: allow\n')
  await writeFiles(a, { 'held/a1': 'one', 'held/d/a2': 'two' })
  const owner = (await policyOf(a, 'held')).owner
  assert.ok(owner)
  const before = await policyOf(b, 'held')

  const r = await writePolicy(b, 'held', 'consistency: strong\n')
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /Device or resource busy/)
  const why = `/held is decoupled by client ${owner} with updates not merged yet; that client must merge \\(cudele sync\\) before the policy can change`
  assert.match(await log(), new RegExp(`policy for /held refused: EBUSY: ${why}`))
  assert.match(b.log, new RegExp(`cudele: /held/policies\\.yml refused: EBUSY: ${why}`))
  assert.deepEqual(await policyOf(b, 'held'), before)
  assert.equal(await b.shOk('cat held/policies.yml'), 'consistency: weak\ndurability: local\ninterfere: allow\n')
  const f = policyFile('strong.yml', 'consistency: strong\n')
  const s = await cudele(`policy set "${path.join(b.mnt, 'held')}" "${f}"`)
  assert.equal(s.code, 1)
  assert.match(s.stderr, /the mount refused the policy for .*\/held: EBUSY.* \(see cudele log for the reason\)/)

  // With interfere: block, B cannot even write the file.
  await setPolicy(b, 'held2', 'consistency: weak\ndurability: none\ninterfere: block\n')
  await writeFiles(a, { 'held2/a1': 'one' })
  const before2 = await policyOf(b, 'held2')
  const r2 = await writePolicy(b, 'held2', 'consistency: strong\n')
  assert.notEqual(r2.code, 0)
  assert.match(r2.stderr, /Device or resource busy/)
  assert.deepEqual(await policyOf(b, 'held2'), before2)

  // The owner changes it: its updates are merged first, then the new policy is in force (strong: at once on B too).
  await a.shOk('echo three > held/d/a3 && chmod 600 held/a1')
  const onA = await tree(a, 'held')
  assert.equal(onA['policies.yml'][0], 'f')
  await setPolicy(a, 'held', 'consistency: strong\ndurability: global\n')
  const after = await policyOf(b, 'held')
  assert.deepEqual([after.consistency, after.version, after.owner], ['strong', 2, null])
  const onB = await tree(b, 'held')
  delete onA['policies.yml']
  delete onB['policies.yml']
  assert.deepEqual(onB, onA)
  assert.deepEqual(onB, { ...viewOf({ a1: 'one', 'd/a2': 'two', 'd/a3': 'three\n' }), a1: ['f', '0o600', 3, 'one'] })
  assert.equal(await b.shOk('cat held/policies.yml'), 'consistency: strong\ndurability: global\n')
  await a.shOk('echo four > held/a4')
  assert.deepEqual((await tree(b, 'held')).a4, ['f', '0o644', 5, 'four\n'])

  // Same with cudele policy set, on held2 (interfere: block).
  const g = policyFile('global.yml', 'consistency: weak\ndurability: global\ninterfere: block\n')
  const s2 = await cudele(`policy set "${path.join(a.mnt, 'held2')}" "${g}"`)
  assert.equal(s2.code, 0, s2.stderr)
  assert.deepEqual((await tree(b, 'held2')).a1, ['f', '0o644', 3, 'one'])
  assert.equal((await policyOf(b, 'held2')).durability, 'global')
})

test('allocated_inodes: 5: five creates work, the sixth fails with ENOSPC and the mount says why', { timeout: 60000 }, async () => {
  await setPolicy(b, 'small', 'consistency: weak\ndurability: none\nallocated_inodes: 5\n')
  const r = await py(a, `
import os, errno
for i in range(8):
    try:
        open('small/f%d' % i, 'w').close()
        print(i, 'ok')
    except OSError as e:
        print(i, errno.errorcode[e.errno])
`)
  assert.equal(r.stdout, '0 ok\n1 ok\n2 ok\n3 ok\n4 ok\n5 ENOSPC\n6 ENOSPC\n7 ENOSPC\n', r.stderr)
  assert.match(a.log, /cudele: \/small: the 5 inode numbers this client got for the decoupled subtree \(allocated_inodes\) are used up \(a merge does not give them back\); raise allocated_inodes in its policies\.yml, or unmount/)
  // mkdir needs an inode too.
  assert.deepEqual(await errnos(a, { mkdir: "os.mkdir('small/d')" }), { mkdir: 'ENOSPC' })
  await syncOk(a, 'small')
  assert.deepEqual(Object.keys(await tree(b, 'small')).sort(), ['f0', 'f1', 'f2', 'f3', 'f4', 'policies.yml'])
  // A merge does not give inode numbers back; a new policy with more of them does (the owner merges, lets go, claims anew).
  assert.deepEqual(await errnos(a, { 'after merge': "open('small/f9', 'w').close()" }), { 'after merge': 'ENOSPC' })
  await setPolicy(a, 'small', 'consistency: weak\ndurability: none\nallocated_inodes: 10\n')
  assert.deepEqual(await errnos(a, { create: "open('small/f9', 'w').close()", mkdir: "os.mkdir('small/d')" }), { create: 'ok', mkdir: 'ok' })
  assert.equal((await policyOf(a, 'small')).owned_here, true)
  await syncOk(a, 'small')
  assert.deepEqual(Object.keys(await tree(b, 'small')).sort(), ['d', 'f0', 'f1', 'f2', 'f3', 'f4', 'f9', 'policies.yml'])
})

test('rename and link across the edge of a decoupled subtree: EXDEV; mv still works (it copies)', { timeout: 60000 }, async () => {
  await setPolicy(b, 'edge', 'consistency: weak\ndurability: none\n')
  await writeFiles(a, { 'edge/inside': 'in', 'edge/d/inside2': 'in2', outside: 'out', 'odir/o2': 'o2' })
  assert.equal((await policyOf(a, 'edge')).owned_here, true)
  assert.deepEqual(await errnos(a, {
    'rename in': "os.rename('outside', 'edge/moved')",
    'rename out': "os.rename('edge/inside', 'moved-out')",
    'rename dir in': "os.rename('odir', 'edge/odir')",
    'rename dir out': "os.rename('edge/d', 'd-out')",
    'link in': "os.link('outside', 'edge/l')",
    'link out': "os.link('edge/inside', 'l-out')",
    'rename within': "os.rename('edge/inside', 'edge/d/renamed')",
    'link within': "os.link('edge/d/renamed', 'edge/l2')"
  }), {
    'rename in': 'EXDEV',
    'rename out': 'EXDEV',
    'rename dir in': 'EXDEV',
    'rename dir out': 'EXDEV',
    'link in': 'EXDEV',
    'link out': 'EXDEV',
    'rename within': 'ok',
    'link within': 'ok'
  })
  await a.shOk('mv outside edge/ && mv edge/d/inside2 . && mv odir edge/')
  const inside = await tree(a, 'edge')
  delete inside['policies.yml']
  assert.deepEqual(inside, viewOf({ outside: 'out', 'd/renamed': 'in', l2: 'in', 'odir/o2': 'o2' }))
  assert.equal(await a.shOk('cat inside2 && test ! -e outside && test ! -e odir && echo gone'), 'in2gone\n')
  await syncOk(a, 'edge')
  assert.deepEqual(await tree(b, 'edge'), await tree(a, 'edge'))
})

/** The cells each ready policy should land in: consistency, durability, interfere. */
const READY: Record<string, [string, string, string]> = {
  batchfs: ['weak', 'local', 'block'],
  cephfs: ['strong', 'global', 'allow'],
  checkpoint: ['weak', 'global', 'block'],
  deltafs: ['invisible', 'local', 'block'],
  hdfs: ['weak', 'global', 'allow'],
  home: ['strong', 'global', 'block'],
  posix: ['strong', 'global', 'allow'],
  ramdisk: ['strong', 'none', 'allow'],
  'read-while-writing': ['weak', 'local', 'block']
}

test('every ready policy in policies/ can be set through a mount, and policy show reports its cells', { timeout: 90000 }, async () => {
  const names = fs.readdirSync(path.join(REPO, 'policies')).filter(f => f.endsWith('.yml')).map(f => f.slice(0, -4)).sort()
  assert.deepEqual(names, Object.keys(READY).sort(), 'a ready policy without expected cells here')
  for (const [i, name] of names.entries()) {
    const file = path.join(REPO, 'policies', `${name}.yml`)
    const dir = `ready-${name}`
    await a.shOk(`mkdir ${dir}`)
    if (i % 2 === 0) {
      await setPolicy(a, dir, fs.readFileSync(file, 'utf8'))
    } else {
      const r = await cudele(`policy set "${path.join(a.mnt, dir)}" "${file}"`)
      assert.equal(r.code, 0, `${name}: ${r.stderr}`)
    }
    const p = await policyOf(b, dir)
    const want = parsePolicy(fs.readFileSync(file, 'utf8')).policy
    assert.deepEqual([p.consistency, p.durability, p.interfere], READY[name], name)
    assert.deepEqual(
      [p.consistency_mechanisms, p.durability_mechanisms, p.allocated_inodes, p.sync_interval_ms, p.version],
      [want.consistencyExpr, want.durabilityExpr || 'none', want.allocatedInodes, want.syncIntervalMs, 1], name)
    assert.match(p.source, new RegExp(`^/${dir} \\(inode \\d+\\)$`), name)
  }
})

test('after all of it: the mounts unmount cleanly and fsck is clean', { timeout: 60000 }, async () => {
  assert.equal(await a.stop(), 0)
  assert.equal(await b.stop(), 0)
  assert.equal(await srv.stop(), 0)
  const f = await srv.fsck()
  assert.equal(f.code, 0, f.stdout + f.stderr)
})
