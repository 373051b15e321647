// `cudele bench cudele`: one measurement prints one JSON object with the
// fields the issue names; compositions and Table I cells become policies;
// the SVG charts are well formed. Nothing here is timed.

import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { test } from 'node:test'
import { phasesOf, policyFor } from '../../src/bench/creates'
import { barChart, lineChart } from '../../src/bench/svg'

const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js')
const root = process.getuid?.() === 0

test('one measurement: clients, creates, seconds, creates_per_s as one JSON object', { skip: !root && 'benchmarks run as root' }, () => {
  const r = spawnSync(process.execPath, [CLI, 'bench', 'cudele', '--clients', '2', '--creates', '1000', '--mechanism', 'append_client_journal', '--json'], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(r.status, 0, r.stderr)
  const lines = r.stdout.trim().split('\n')
  assert.equal(lines.length, 1, r.stdout)
  const m = JSON.parse(lines[0])
  assert.equal(m.clients, 2)
  assert.equal(m.creates, 1000)
  assert.ok(m.seconds > 0)
  assert.ok(m.creates_per_s > 0)
  assert.equal(m.creates_per_s, m.clients * m.creates / m.seconds)
  assert.deepEqual(Object.keys(m.phases), ['create'])
  // Each client's 1,000 creates (and the one that claimed its directory) are journal events.
  assert.ok(m.journal.events >= 2000, JSON.stringify(m.journal))
  assert.ok(m.journal.bytesPerEvent > 0 && m.journal.bytesPerEvent <= 100)
})

test('a composition that makes no sense is refused with the reason', { skip: !root && 'benchmarks run as root' }, () => {
  const r = spawnSync(process.execPath, [CLI, 'bench', 'cudele', '--mechanism', 'append_client_journal+rpcs', '--json'], { encoding: 'utf8', timeout: 60_000 })
  assert.notEqual(r.status, 0)
  assert.match(r.stderr, /do the same thing/)
})

test('compositions and Table I cells become policies, and the phases they need', () => {
  const weak = policyFor('append_client_journal+local_persist+volatile_apply', { allocatedInodes: 10 })
  assert.equal(weak.policy.consistency, 'weak')
  assert.equal(weak.policy.durability, 'local')
  assert.deepEqual(phasesOf(weak.policy), ['create', 'persist', 'apply'])
  assert.match(weak.yaml, /^consistency: append_client_journal\+volatile_apply$/m)
  assert.match(weak.yaml, /^durability: local_persist$/m)

  const cell = policyFor('strong/global', { allocatedInodes: 10, interfere: 'block' })
  assert.deepEqual(cell.policy.mechanisms, ['rpcs', 'stream'])
  assert.equal(cell.policy.interfere, 'block')
  assert.deepEqual(phasesOf(cell.policy), ['create', 'persist'])

  const plain = policyFor('append_client_journal', { allocatedInodes: 10 })
  assert.equal(plain.policy.durability, 'none')
  assert.deepEqual(phasesOf(plain.policy), ['create'])

  assert.equal(policyFor('weak/local', { allocatedInodes: 10, syncInterval: '1s' }).policy.syncIntervalMs, 1000)
  assert.throws(() => policyFor('local_persist', { allocatedInodes: 10 }), /updates need a path/)
})

test('charts are well-formed SVG with every value drawn', () => {
  const line = lineChart({
    title: 'a & b',
    xLabel: 'clients',
    yLabel: 'speedup',
    logY: true,
    series: [{ name: 'x', points: [[1, 1], [20, 150]] }, { name: 'y', points: [[1, 0.5], [20, 12]] }]
  })
  const bars = barChart({
    title: 't',
    yLabel: 'seconds',
    reference: 1,
    panels: [{ title: 'p', bars: [{ label: 'a', value: 2 }, { label: 'b', value: -0.5 }] }, { title: 'q', bars: [{ label: 'c', value: NaN }] }]
  })
  for (const svg of [line, bars]) {
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    assert.match(svg, /<\/svg>\n$/)
    assert.doesNotMatch(svg, /NaN|undefined|Infinity/)
  }
  assert.match(line, /a &amp; b/)
  assert.equal((line.match(/<circle /g) ?? []).length, 4)
  assert.equal((bars.match(/<rect x=/g) ?? []).length, 3)
  assert.match(bars, />n\/a</)
})
