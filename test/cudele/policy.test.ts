// Policy files: every Table I cell, explicit compositions, defaults, and
// malformed input refused with file, line and field.

import assert from 'node:assert/strict'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'node:test'
import { parseComposition, formatComposition } from '../../src/cudele/mechanisms'
import { DEFAULT_POLICY, parsePolicy, PolicyError, policyMeaning } from '../../src/cudele/policy'

const TABLE_I: Array<[string, string, string, string]> = [
  // consistency, durability, expected consistency expr, expected durability expr
  ['invisible', 'none', 'append_client_journal', ''],
  ['invisible', 'local', 'append_client_journal', 'local_persist'],
  ['invisible', 'global', 'append_client_journal', 'global_persist'],
  ['weak', 'none', 'append_client_journal+volatile_apply', ''],
  ['weak', 'local', 'append_client_journal+volatile_apply', 'local_persist'],
  ['weak', 'global', 'append_client_journal+volatile_apply', 'global_persist'],
  ['strong', 'none', 'rpcs', ''],
  ['strong', 'local', 'rpcs', 'local_persist'],
  ['strong', 'global', 'rpcs', 'stream']
]

test('every cell of Table I is reachable by name', () => {
  for (const [c, d, ce, de] of TABLE_I) {
    const { policy } = parsePolicy(`consistency: ${c}\ndurability: ${d}\n`)
    assert.equal(policy.consistency, c)
    assert.equal(policy.durability, d)
    assert.equal(policy.consistencyExpr, ce, `${c}/${d}`)
    assert.equal(policy.durabilityExpr, de, `${c}/${d}`)
  }
})

test('every cell is reachable by explicit composition too', () => {
  for (const [c, d, ce, de] of TABLE_I) {
    const text = `consistency: ${ce}\n` + (de ? `durability: ${de}\n` : 'durability: none\n')
    const { policy } = parsePolicy(text)
    assert.equal(policy.consistency, c, text)
    assert.equal(policy.durability, d, text)
  }
})

test('an empty file gives the paper defaults (CephFS)', () => {
  assert.deepEqual(parsePolicy('').policy, DEFAULT_POLICY)
  assert.deepEqual(parsePolicy('# nothing but a comment\n').policy, DEFAULT_POLICY)
})

test('compositions: sequence and parallel, the paper spellings', () => {
  assert.equal(formatComposition(parseComposition('append_client_journal + local_persist || global_persist')), 'append_client_journal+local_persist||global_persist')
  assert.equal(formatComposition(parseComposition('(append_client_journal+volatile_apply)||stream')), '(append_client_journal+volatile_apply)||stream')
  assert.equal(formatComposition(parseComposition('RPCs')), 'rpcs')
  assert.equal(formatComposition(parseComposition('(a_c_j)'.replace('a_c_j', 'append_client_journal'))), 'append_client_journal')
  assert.throws(() => parseComposition('rpcs+'), /mechanism is missing/)
  assert.throws(() => parseComposition('rpcs++stream'), /EINVAL/)
  assert.throws(() => parseComposition('teleport'), /unknown mechanism "teleport"/)
  assert.throws(() => parseComposition('(rpcs'), /"\)" expected/)
})

function refused (text: string, field: string, line: number, reason: RegExp): void {
  try {
    parsePolicy(text, 'dir/policies.yml')
  } catch (err) {
    assert.ok(err instanceof PolicyError, String(err))
    assert.equal(err.field, field, err.message)
    assert.equal(err.line, line, err.message)
    assert.match(err.reason, reason)
    assert.match(err.message, new RegExp(`^EINVAL: dir/policies.yml:${line}: `))
    assert.equal(err.code, 'EINVAL')
    return
  }
  assert.fail(`accepted: ${text}`)
}

test('compositions that make no sense are refused with the reason', () => {
  refused('consistency: append_client_journal+rpcs\n', 'consistency', 1, /do the same thing/)
  refused('consistency: rpcs\ndurability: stream+local_persist\n', 'durability', 2, /stronger than local/)
  refused('consistency: volatile_apply\n', 'consistency', 1, /need a path/)
  refused('consistency: volatile_apply+append_client_journal\n', 'consistency', 1, /must come after append_client_journal/)
  refused('consistency: append_client_journal+volatile_apply||nonvolatile_apply\n', 'consistency', 1, /choose one/)
  refused('consistency: rpcs\ndurability: global_persist\n', 'durability', 2, /use stream/)
  refused('consistency: invisible\ndurability: stream\n', 'durability', 2, /never reach it/)
  refused('consistency: append_client_journal+stream\n', 'consistency', 1, /never reach it/)
  refused('consistency: append_client_journal+local_persist\ndurability: global\n', 'consistency', 1, /durability is set too/)
  refused('consistency: invisible\nsync_interval: 5s\n', 'sync_interval', 2, /use consistency: weak/)
  refused('consistency: rpcs\ndurability: rpcs\n', 'durability', 2, /consistency mechanism/)
  refused('consistency: rpcs\nsync_interval: 5s\n', 'sync_interval', 2, /only decoupled/)
})

test('Table I as the paper spells it: one composition per cell, consistency and durability mechanisms together', () => {
  const cells: Array<[string, string, string]> = [
    ['append client journal + local persist', 'invisible', 'local'],
    ['append client journal + global persist', 'invisible', 'global'],
    ['Append Client Journal + Local Persist + Volatile Apply', 'weak', 'local'],
    ['append-client-journal + global-persist + volatile-apply', 'weak', 'global'],
    ['RPCs + local persist', 'strong', 'local'],
    ['RPCs + stream', 'strong', 'global']
  ]
  for (const [expr, c, d] of cells) {
    const { policy } = parsePolicy(`consistency: ${expr}\n`)
    assert.equal(`${policy.consistency}/${policy.durability}`, `${c}/${d}`, expr)
  }
  // The cells of durability none name no durability mechanism: they say so with durability: none (the default is global).
  assert.equal(parsePolicy('consistency: Append Client Journal + Volatile Apply\ndurability: none\n').policy.durability, 'none')
  // Mechanisms run side by side: the client journal kept locally and pushed to the store at once.
  const both = parsePolicy('consistency: append_client_journal + (local_persist || global_persist) + volatile_apply\n').policy
  assert.equal(both.consistencyExpr, 'append_client_journal+volatile_apply')
  assert.equal(both.durabilityExpr, 'local_persist||global_persist')
  assert.equal(both.durability, 'global')
  assert.ok(both.mechanisms.includes('local_persist') && both.mechanisms.includes('global_persist'))
  assert.match(policyMeaning(both), /local file and pushed into the object store/)
  assert.equal(parsePolicy('consistency: weak\ndurability: local_persist||global_persist\n').policy.durabilityExpr, 'local_persist||global_persist')
})

test('malformed input names file, line and field', () => {
  refused('consistency: weak\ncolour: blue\n', 'colour', 2, /unknown field/)
  refused('consistency: sideways\n', 'consistency', 1, /unknown mechanism/)
  refused('consistency: weak\nallocated_inodes: -5\n', 'allocated_inodes', 2, /whole number/)
  refused('consistency: weak\nallocated_inodes: lots\n', 'allocated_inodes', 2, /whole number/)
  refused('interfere: maybe\n', 'interfere', 1, /allow or block/)
  refused('consistency: weak\nsync_interval: soon\n', 'sync_interval', 2, /duration/)
  refused('consistency: [weak, strong]\n', 'consistency', 1, /single value/)
  refused('consistency: weak\ndurability: "local\n', '', 2, /YAML: Missing closing/)
  refused('consistency: weak\n\tdurability: local\n', '', 2, /YAML: Tabs/)
  refused('- just\n- a list\n', '', 1, /mapping/)
  refused('consistency: weak\nconsistency: strong\n', '', 2, /YAML/)
})

test('durations and numbers', () => {
  assert.equal(parsePolicy('consistency: weak\nsync_interval: 250ms\n').policy.syncIntervalMs, 250)
  assert.equal(parsePolicy('consistency: weak\nsync_interval: 10s\n').policy.syncIntervalMs, 10_000)
  assert.equal(parsePolicy('consistency: weak\nsync_interval: 2\n').policy.syncIntervalMs, 2000)
  assert.equal(parsePolicy('consistency: weak\nsync_interval: off\n').policy.syncIntervalMs, 0)
  assert.equal(parsePolicy('consistency: weak\nallocated_inodes: 5000\n').policy.allocatedInodes, 5000)
})

test('the ready-made policies in policies/ all parse, each with a comment', () => {
  const dir = path.join(__dirname, '..', '..', '..', 'policies')
  const files = fs.readdirSync(dir).filter(f => f.endsWith('.yml'))
  assert.ok(files.length >= 6)
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8')
    assert.match(text, /^# /, `${f} starts with a comment saying what it trades`)
    parsePolicy(text, f)
  }
  const batch = parsePolicy(fs.readFileSync(path.join(dir, 'batchfs.yml'), 'utf8')).policy
  assert.equal(batch.consistency, 'weak')
  assert.equal(batch.durability, 'local')
  const delta = parsePolicy(fs.readFileSync(path.join(dir, 'deltafs.yml'), 'utf8')).policy
  assert.equal(delta.consistency, 'invisible')
})
