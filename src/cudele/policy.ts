// Subtree policies: what a `policies.yml` says, checked and resolved.
//
//   consistency: weak                  # invisible | weak | strong, or a composition
//   durability: local                  # none | local | global, or a composition
//   allocated_inodes: 100000           # inode numbers handed to the decoupled client up front
//   interfere: block                   # allow | block: what other clients may do meanwhile
//   sync_interval: 10s                 # merge this often (weak); 0 or off: on `cudele sync` and unmount
//
// The cells of the paper's Table I are names for compositions of mechanisms:
//
//              invisible                 weak                                      strong
//   none       append_client_journal     append_client_journal+volatile_apply     rpcs
//   local      ...+local_persist         ...+local_persist+volatile_apply          rpcs+local_persist
//   global     ...+global_persist        ...+global_persist+volatile_apply         rpcs+stream
//
// Compositions that make no sense are refused with the reason (the paper
// names some: append_client_journal+rpcs do the same thing twice;
// stream+local_persist is weaker than stream alone at a higher cost).

import { LineCounter, parseDocument, isMap, isScalar, type Node as YamlNode } from 'yaml'
import { FsError } from '../common/errors'
import {
  type Composition, CONSISTENCY_MECHANISMS, DURABILITY_MECHANISMS, formatComposition, type Mechanism, mechanismsOf,
  parseComposition, projectComposition, runsBefore
} from './mechanisms'

export type ConsistencyCell = 'invisible' | 'weak' | 'strong'
export type DurabilityCell = 'none' | 'local' | 'global'
export type Interfere = 'allow' | 'block'

export interface Policy {
  consistency: ConsistencyCell
  durability: DurabilityCell
  /** Consistency mechanisms, as composed (canonical text and tree). */
  consistencyExpr: string
  durabilityExpr: string
  /** Everything the policy runs, consistency and durability together. */
  mechanisms: Mechanism[]
  allocatedInodes: number
  interfere: Interfere
  /** Merge period in ms (0: only on `cudele sync`, unmount and when the inode range runs out). */
  syncIntervalMs: number
}

/** The paper's defaults: CephFS semantics with 100 inodes set aside. */
export const DEFAULT_POLICY: Policy = {
  consistency: 'strong',
  durability: 'global',
  consistencyExpr: 'rpcs',
  durabilityExpr: 'stream',
  mechanisms: ['rpcs', 'stream'],
  allocatedInodes: 100,
  interfere: 'allow',
  syncIntervalMs: 0
}

export const ALLOCATED_INODES_MAX = 10_000_000
export const SYNC_INTERVAL_MAX_MS = 86_400_000
/** Largest policies.yml accepted. */
export const POLICY_FILE_MAX_BYTES = 64 * 1024

const FIELDS = ['consistency', 'durability', 'allocated_inodes', 'interfere', 'sync_interval'] as const

/** A policy problem: where it is and what is wrong. */
export class PolicyError extends FsError {
  constructor (readonly file: string, readonly line: number, readonly field: string, readonly reason: string) {
    super('EINVAL', `${file}:${line}: ${field ? field + ': ' : ''}${reason}`)
    this.name = 'PolicyError'
  }
}

const CONSISTENCY_CELLS: Record<ConsistencyCell, string> = {
  strong: 'rpcs',
  weak: 'append_client_journal+volatile_apply',
  invisible: 'append_client_journal'
}

function durabilityFor (cell: DurabilityCell, decoupled: boolean): string {
  if (cell === 'none') return ''
  if (cell === 'local') return 'local_persist'
  return decoupled ? 'global_persist' : 'stream'
}

/** Check a consistency composition; returns why it makes no sense, or null. */
function consistencyProblem (c: Composition): string | null {
  const ms = mechanismsOf(c)
  for (const m of ms) {
    if (!CONSISTENCY_MECHANISMS.has(m)) return `${m} is a durability mechanism; put it under durability`
  }
  if (new Set(ms).size !== ms.length) return 'a mechanism appears twice'
  const rpcs = ms.includes('rpcs')
  const journal = ms.includes('append_client_journal')
  if (rpcs && journal) return 'append_client_journal and rpcs do the same thing (record each update): choose one'
  if (!rpcs && !journal) return 'updates need a path: rpcs or append_client_journal'
  const volatile = ms.includes('volatile_apply')
  const nonvolatile = ms.includes('nonvolatile_apply')
  if (volatile && nonvolatile) return 'volatile_apply and nonvolatile_apply both merge the same journal: choose one'
  for (const apply of ['volatile_apply', 'nonvolatile_apply'] as const) {
    if (!ms.includes(apply)) continue
    if (rpcs) return `${apply} merges a client journal, but with rpcs there is none`
    if (!runsBefore(c, 'append_client_journal', apply)) return `${apply} must come after append_client_journal (use +): it applies what was appended`
  }
  return null
}

/** Check durability against the consistency it goes with; returns why it makes no sense, or null. */
function durabilityProblem (d: Composition | null, consistency: Composition): string | null {
  if (d === null) return null
  const ms = mechanismsOf(d)
  for (const m of ms) {
    if (!DURABILITY_MECHANISMS.has(m)) return `${m} is a consistency mechanism; put it under consistency`
  }
  if (new Set(ms).size !== ms.length) return 'a mechanism appears twice'
  const cs = mechanismsOf(consistency)
  const rpcs = cs.includes('rpcs')
  const applies = cs.includes('volatile_apply') || cs.includes('nonvolatile_apply')
  if (ms.includes('stream') && ms.includes('local_persist')) return 'stream and local_persist: stream (global) is already stronger than local, at more cost'
  if (ms.includes('stream') && ms.includes('global_persist')) return 'stream and global_persist both make updates global: choose one'
  if (ms.includes('stream') && !rpcs && !applies) return 'stream journals updates at the MDS, but with this consistency they never reach it (add an apply, or use global_persist)'
  if (ms.includes('global_persist') && rpcs) return 'global_persist pushes a client journal, but with rpcs there is none: use stream'
  if (ms.includes('local_persist') && !rpcs && !cs.includes('append_client_journal')) return 'local_persist needs updates on the client'
  return null
}

export interface ParsedPolicy {
  policy: Policy
  /** Fields the file set explicitly. */
  set: string[]
}

/**
 * Parse and check a policies.yml. Errors name the file, line and field.
 * An empty file gives the defaults (CephFS semantics).
 */
export function parsePolicy (text: string, file = 'policies.yml'): ParsedPolicy {
  if (Buffer.byteLength(text) > POLICY_FILE_MAX_BYTES) throw new PolicyError(file, 1, '', `the file is larger than ${POLICY_FILE_MAX_BYTES} bytes`)
  const lc = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true })
  const lineOf = (node: YamlNode | null | undefined): number => node?.range ? lc.linePos(node.range[0]).line : 1
  if (doc.errors.length > 0) {
    const e = doc.errors[0]
    // An error found at the end of the input (an unclosed quote) belongs to the last line with text.
    const lastLine = text.replace(/\s+$/, '').split('\n').length
    const line = Math.min(lc.linePos(e.pos[0]).line, lastLine)
    throw new PolicyError(file, line, '', `YAML: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`)
  }
  const root = doc.contents
  const raw: Record<string, { value: unknown, line: number }> = {}
  if (root !== null && root !== undefined) {
    if (!isMap(root)) throw new PolicyError(file, lineOf(root), '', 'expected a mapping of fields (consistency, durability, allocated_inodes, interfere, sync_interval)')
    for (const pair of root.items) {
      const keyNode = pair.key as YamlNode
      const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode)
      const line = lineOf(keyNode)
      if (!(FIELDS as readonly string[]).includes(key)) {
        throw new PolicyError(file, line, key, `unknown field (known: ${FIELDS.join(', ')})`)
      }
      const valueNode = pair.value as YamlNode | null
      if (valueNode && !isScalar(valueNode)) throw new PolicyError(file, lineOf(valueNode), key, 'expected a single value')
      raw[key] = { value: valueNode && isScalar(valueNode) ? valueNode.value : null, line: valueNode ? lineOf(valueNode) : line }
    }
  }
  const fail = (field: string, reason: string): never => { throw new PolicyError(file, raw[field]?.line ?? 1, field, reason) }

  // consistency
  let consistency: Composition = parseComposition('rpcs')
  /** Durability mechanisms written into consistency: a whole cell, as Table I spells it. */
  let cellDurability: Composition | null = null
  if (raw.consistency) {
    const v = raw.consistency.value
    if (typeof v !== 'string' || v.trim() === '') fail('consistency', 'expected invisible, weak, strong or a composition of mechanisms')
    const text = (v as string).trim()
    const cell = CONSISTENCY_CELLS[text.toLowerCase() as ConsistencyCell]
    try {
      consistency = parseComposition(cell ?? text)
    } catch (err) {
      fail('consistency', (err as FsError).message.replace(/^EINVAL: /, ''))
    }
    // `append_client_journal+local_persist+volatile_apply` names a whole cell of
    // Table I: its durability mechanisms are the durability.
    cellDurability = projectComposition(consistency, DURABILITY_MECHANISMS)
    if (cellDurability !== null) {
      if (raw.durability) fail('consistency', `${mechanismsOf(cellDurability).join(', ')} ${mechanismsOf(cellDurability).length > 1 ? 'are durability mechanisms' : 'is a durability mechanism'}, and durability is set too: name them in one place`)
      consistency = projectComposition(consistency, CONSISTENCY_MECHANISMS) ?? fail('consistency', 'updates need a path: rpcs or append_client_journal')
    }
    const problem = consistencyProblem(consistency)
    if (problem) fail('consistency', problem)
  }
  const cMechs = mechanismsOf(consistency)
  const decoupled = cMechs.includes('append_client_journal')

  // durability
  let durability: Composition | null = cellDurability ?? parseComposition(decoupled ? 'global_persist' : 'stream')
  if (raw.durability) {
    const v = raw.durability.value
    if (typeof v !== 'string' || v.trim() === '') fail('durability', 'expected none, local, global or a composition of mechanisms')
    const text = (v as string).trim()
    const lower = text.toLowerCase()
    try {
      if (lower === 'none' || lower === 'local' || lower === 'global') {
        const expr = durabilityFor(lower, decoupled)
        durability = expr === '' ? null : parseComposition(expr)
      } else {
        durability = parseComposition(text)
      }
    } catch (err) {
      fail('durability', (err as FsError).message.replace(/^EINVAL: /, ''))
    }
  }
  const dProblem = durabilityProblem(durability, consistency)
  if (dProblem) fail(cellDurability !== null ? 'consistency' : 'durability', dProblem)
  const dMechs = durability ? mechanismsOf(durability) : []

  // allocated_inodes
  let allocatedInodes = DEFAULT_POLICY.allocatedInodes
  if (raw.allocated_inodes) {
    const v = raw.allocated_inodes.value
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > ALLOCATED_INODES_MAX) {
      fail('allocated_inodes', `expected a whole number from 1 to ${ALLOCATED_INODES_MAX}`)
    }
    allocatedInodes = v as number
  }

  // interfere
  let interfere: Interfere = DEFAULT_POLICY.interfere
  if (raw.interfere) {
    const v = String(raw.interfere.value).toLowerCase()
    if (v !== 'allow' && v !== 'block') fail('interfere', 'expected allow or block')
    interfere = v as Interfere
  }

  // sync_interval
  let syncIntervalMs = 0
  if (raw.sync_interval) syncIntervalMs = parseDuration(raw.sync_interval.value, (why) => fail('sync_interval', why))
  if (syncIntervalMs > 0 && !decoupled) fail('sync_interval', 'only decoupled subtrees (append_client_journal) merge; with rpcs every update is already visible')
  if (syncIntervalMs > 0 && !cMechs.includes('volatile_apply') && !cMechs.includes('nonvolatile_apply')) {
    fail('sync_interval', 'an invisible subtree merges only when asked (cudele merge); merging it every interval is weak consistency: use consistency: weak')
  }

  const consistencyCell: ConsistencyCell = !decoupled ? 'strong' : (cMechs.includes('volatile_apply') || cMechs.includes('nonvolatile_apply')) ? 'weak' : 'invisible'
  const durabilityCell: DurabilityCell = dMechs.includes('stream') || dMechs.includes('global_persist') ? 'global' : dMechs.includes('local_persist') ? 'local' : 'none'
  return {
    policy: {
      consistency: consistencyCell,
      durability: durabilityCell,
      consistencyExpr: formatComposition(consistency),
      durabilityExpr: durability ? formatComposition(durability) : '',
      mechanisms: [...cMechs, ...dMechs],
      allocatedInodes,
      interfere,
      syncIntervalMs
    },
    set: Object.keys(raw)
  }
}

function parseDuration (v: unknown, fail: (why: string) => never): number {
  const why = `expected a duration like 500ms, 10s, 2m, or 0/off (at most ${SYNC_INTERVAL_MAX_MS / 3_600_000} h)`
  if (v === null || v === false) return 0
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) fail(why)
    // A bare number is seconds, as in the paper's figures.
    const ms = Math.round(v * 1000)
    if (ms > SYNC_INTERVAL_MAX_MS) fail(why)
    return ms
  }
  if (typeof v !== 'string') return fail(why)
  const t = v.trim().toLowerCase()
  if (t === 'off' || t === '0') return 0
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(t)
  if (!m) return fail(why)
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms']
  if (n > SYNC_INTERVAL_MAX_MS) fail(why)
  return Math.round(n)
}

/** Does this policy keep updates on the client (decoupled) rather than sending each to the MDS? */
export function isDecoupled (p: Policy): boolean {
  return p.mechanisms.includes('append_client_journal')
}

/** A strong subtree with durability local: the MDS does not journal it, each client keeps its own changes in a local request log. */
export function keepsRequestsLocally (p: Policy): boolean {
  return !isDecoupled(p) && p.mechanisms.includes('local_persist')
}

/**
 * Does the MDS journal (stream) changes under this policy? Strong subtrees
 * with durability none or local do not; localIsStore: the client's local disk
 * is the store's (an embedded mount), where local_persist is the MDS's journal.
 */
export function isStreamed (p: Policy, localIsStore: boolean): boolean {
  if (isDecoupled(p) || p.mechanisms.includes('stream')) return true
  return localIsStore && p.mechanisms.includes('local_persist')
}

export function describePolicy (p: Policy): string {
  return `consistency ${p.consistency} (${p.consistencyExpr}), durability ${p.durability} (${p.durabilityExpr || 'nothing'}), ` +
    `allocated_inodes ${p.allocatedInodes}, interfere ${p.interfere}, sync_interval ${p.syncIntervalMs === 0 ? 'off' : p.syncIntervalMs + ' ms'}`
}


/**
 * What a policy's cell promises, in words (`cudele policy show`, the cluster
 * log). localIsStore: the client's local disk is the store's (an embedded mount).
 */
export function policyMeaning (p: Policy, localIsStore = false): string {
  if (!isDecoupled(p)) {
    const seen = 'every change is an RPC to the MDS and all clients see it at once'
    if (p.durability === 'global' || (p.durability === 'local' && localIsStore)) {
      return `${seen}; the MDS streams it to its journal in the object store, so it survives any crash once safe (fsync waits for that)`
    }
    const unstreamed = 'the MDS does not journal this subtree: changes wait in its memory until its next trim writes them to the object store (within about a second), and moves across the edge to a journaled subtree get EXDEV'
    if (p.durability === 'local') {
      return `${seen}; ${unstreamed}; the client also keeps each change in a local file until then (on its disk once the application fsyncs), so a crash of the server, of the client or of both loses nothing it fsync'd once that client mounts again (it replays them), but a client that never comes back loses them`
    }
    return `${seen}; ${unstreamed}; a crash of the server loses what was not trimmed yet, unless the client that made it is still connected (it replays what it was not told is safe)`
  }
  const merged = p.consistency === 'weak'
    ? `changes go to the client's own journal (no round trip) and are merged into the global namespace ${p.syncIntervalMs > 0 ? `every ${p.syncIntervalMs % 1000 === 0 ? `${p.syncIntervalMs / 1000} s` : `${p.syncIntervalMs} ms`}, ` : ''}on cudele sync and on unmount; other clients see them after the merge`
    : 'changes go to the client\'s own journal (no round trip) and are merged only on cudele merge; other clients never see them before'
  const both = p.mechanisms.includes('local_persist') && p.mechanisms.includes('global_persist')
  const kept = both
    ? 'the journal is kept in a local file and pushed into the object store: what the client fsync\'d comes back when it mounts again, and if it never comes back, the server merges it'
    : p.durability === 'global'
      ? 'the journal is pushed into the object store: if the client never comes back, the server merges it'
      : p.durability === 'local'
        ? 'the journal is kept in a local file: what the client fsync\'d comes back when it mounts again'
        : 'the journal is kept nowhere: a crash of the client loses what it has not merged'
  return `${merged}; ${kept}`
}
