// Subtree policies on the server side: which directory has which policy (the
// monitor's policymap), which client has decoupled which subtree (claims, in
// the MDS), and what other clients may do there (interfere).
//
// A policy is committed through the monitor before it takes effect; every
// client and rank gets it from there. A subtree without a policy inherits its
// parent's. A decoupled subtree (append_client_journal) is owned by the first
// client that writes in it: that client gets a snapshot of the subtree and a
// range of inode numbers, works on its own journal, and merges it back.

import { fsError } from '../common/errors'
import { decodeEvents, type MetadataServer, type RequestContext, type SubtreeSnapshot } from '../mds'
import { DATA_POOL, METADATA_POOL, parseDataObject, STRIPE_BYTES } from '../common/layout'
import { type MergeResult, segmentObject } from './service'
import { type Ino, isDir, isReg, ROOT_INO } from '../common/types'
import type { LocalStore, ObjectWrite } from '../store/types'
import type { JsonValue, MonitorApi } from '../mon/types'
import { DEFAULT_POLICY, isDecoupled, isStreamed, keepsRequestsLocally, parsePolicy, type Policy, policyMeaning } from './policy'

export const POLICYMAP = 'policymap'
/** Deepest directory nesting searched for a policy. */
const ANCESTRY_MAX = 4096
/** Largest subtree handed out as a snapshot (entries). */
export const SNAPSHOT_MAX_ENTRIES = 2_000_000

export interface PolicyEntry {
  /** The directory the policy is set on. */
  root: Ino
  /** Its path when the policy was set (for messages; the inode is what counts). */
  path: string
  /** The policies.yml text. */
  yaml: string
  policy: Policy
  /** 1 for the first policy set on this directory, then +1 per change. */
  version: number
  setBy: string
  setAtMs: number
}

export interface Effective {
  /** The directory whose policy applies (null: none anywhere above: the defaults). */
  root: Ino | null
  entry: PolicyEntry | null
  policy: Policy
}

export interface ClaimGrant {
  root: Ino
  owner: string
  inoStart: Ino
  count: number
  /**
   * The first number of the range not used yet: a claim taken back (after a
   * merge) goes on from there, never handing out a number a file of the
   * namespace still has, or had before its purge.
   */
  nextIno: Ino
  policy: Policy
  policyVersion: number
  /** The last client journal segment of this owner already merged (0: none). */
  mergedSeq: number
  snapshot: SubtreeSnapshot
}

export interface RegistryOptions {
  /**
   * The clients' local disk is the store's (an embedded mount): local_persist
   * of a strong subtree is the MDS's journal there, so such subtrees stream.
   */
  localIsStore: boolean
}

export class SubtreeRegistry {
  private readonly entries = new Map<Ino, PolicyEntry>()
  /** Inodes of each claimed subtree as handed out (for interference checks on inode-only operations). */
  private readonly claimedInodes = new Map<Ino, Set<Ino>>()
  /** Claimed subtrees other clients changed (interfere: allow) since the owner's last merge. */
  private readonly interfered = new Set<Ino>()
  private unsubscribe: () => void = () => {}
  epoch = 0

  constructor (
    private readonly mds: MetadataServer,
    /** The store under the MDS: client journals staged for nonvolatile apply, data a discarded journal leaves behind. */
    private readonly store: LocalStore,
    private readonly mon: MonitorApi,
    private readonly options: RegistryOptions = { localIsStore: false }
  ) {
    this.unsubscribe = mon.subscribe(POLICYMAP, 0, state => {
      this.epoch = state.epoch
      this.entries.clear()
      const v = state.value
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
        for (const e of Object.values(v)) {
          const pe = e as unknown as PolicyEntry
          if (pe && typeof pe.root === 'number' && pe.policy) this.entries.set(pe.root, pe)
        }
      }
      // The MDS asks for every change whether to journal it only while some subtree does not stream.
      this.mds.setStreamPolicy([...this.entries.values()].some(e => !this.streams(e.policy)) ? dir => this.streams(this.effective(dir).policy) : null)
    })
  }

  /** Does the MDS journal (stream) changes under this policy? Strong subtrees with durability none or local do not. */
  streams (p: Policy): boolean {
    return isStreamed(p, this.options.localIsStore)
  }

  close (): void {
    this.unsubscribe()
  }

  /** Are there any policies at all? (If not, every check is skipped.) */
  get empty (): boolean {
    return this.entries.size === 0
  }

  get decoupledCount (): number {
    let n = 0
    for (const e of this.entries.values()) if (isDecoupled(e.policy)) n++
    return n
  }

  /** Strong subtrees with durability local (their clients keep request logs). */
  get localStrongCount (): number {
    let n = 0
    for (const e of this.entries.values()) if (keepsRequestsLocally(e.policy)) n++
    return n
  }

  entry (dir: Ino): PolicyEntry | null {
    return this.entries.get(dir) ?? null
  }

  all (): PolicyEntry[] {
    return [...this.entries.values()]
  }

  /** The policy in force for a directory: its own, or the nearest ancestor's. */
  effective (dir: Ino): Effective {
    if (this.entries.size === 0) return { root: null, entry: null, policy: DEFAULT_POLICY }
    let cur = dir
    for (let depth = 0; depth < ANCESTRY_MAX; depth++) {
      const e = this.entries.get(cur)
      if (e) return { root: cur, entry: e, policy: e.policy }
      if (cur === ROOT_INO) break
      const parent = this.mds.parentOrNull(cur)
      if (parent === null || parent === cur) break
      cur = parent
    }
    return { root: null, entry: null, policy: DEFAULT_POLICY }
  }

  /** Set (or replace) the policy of a directory: checked, then committed through the monitor. */
  async setPolicy (dir: Ino, yaml: string, path: string, by: string): Promise<PolicyEntry> {
    const inode = this.mds.statOrNull(dir)
    if (!inode || !isDir(inode.mode)) throw fsError('ENOTDIR', `inode ${dir} is not a directory`)
    const { policy } = parsePolicy(yaml, `${path.replace(/\/$/, '')}/policies.yml`)
    const claim = this.mds.claimOf(dir)
    if (claim && claim.owner !== by) {
      throw fsError('EBUSY', `${path} is decoupled by client ${claim.owner} with updates not merged yet; that client must merge (cudele sync) before the policy can change`)
    }
    const prev = this.entries.get(dir)
    const entry: PolicyEntry = { root: dir, path, yaml, policy, version: (prev?.version ?? 0) + 1, setBy: by, setAtMs: Date.now() }
    await this.mon.propose(POLICYMAP, current => {
      const base = current !== null && typeof current === 'object' && !Array.isArray(current) ? { ...current } : {}
      base[String(dir)] = entry as unknown as JsonValue
      return base
    }, { name: 'mds.0' })
    this.mon.log('info', 'mds.0', `policy of ${path} (inode ${dir}) is now version ${entry.version}, set by ${by}: ${policy.consistency}/${policy.durability}: ${policyMeaning(policy, this.options.localIsStore)}`)
    return entry
  }

  async removePolicy (dir: Ino, by: string): Promise<void> {
    const claim = this.mds.claimOf(dir)
    if (claim && claim.owner !== by) throw fsError('EBUSY', `inode ${dir} is decoupled by client ${claim.owner}; it must merge first`)
    await this.mon.propose(POLICYMAP, current => {
      const base = current !== null && typeof current === 'object' && !Array.isArray(current) ? { ...current } : {}
      delete base[String(dir)]
      return base
    }, { name: 'mds.0' })
  }

  // ---- claims ----

  /** Who owns the subtree that holds dir (null: nobody). */
  ownerOf (dir: Ino): { root: Ino, owner: string, policy: Policy } | null {
    const eff = this.effective(dir)
    if (eff.root === null) return null
    const c = this.mds.claimOf(eff.root)
    return c ? { root: eff.root, owner: c.owner, policy: eff.policy } : null
  }

  /**
   * Decouple the subtree that holds dir for owner: a new claim (with a fresh
   * inode range), or the owner's existing one (it reconnected). Another
   * owner's claim: EBUSY with interfere block, else EAGAIN ("work through the
   * MDS": its updates will lose at merge).
   */
  async claim (dir: Ino, owner: string): Promise<ClaimGrant> {
    // The client journal will be merged, and journaled, on top of the subtree as the store has it.
    await this.mds.storeUnjournaled()
    const eff = this.effective(dir)
    if (eff.root === null || !eff.entry || !isDecoupled(eff.policy)) {
      throw fsError('EINVAL', `inode ${dir} is not in a decoupled subtree (its policy is ${eff.policy.consistency})`)
    }
    const root = eff.root
    let c = this.mds.claimOf(root)
    if (c && c.owner !== owner) {
      if (eff.policy.interfere === 'block') throw fsError('EBUSY', `${eff.entry.path} is decoupled by client ${c.owner} (interfere: block)`)
      throw fsError('EAGAIN', `${eff.entry.path} is decoupled by client ${c.owner}; other clients' updates go through the MDS and lose at merge (interfere: allow)`)
    }
    if (!c) {
      c = this.mds.claim(root, owner, eff.policy.allocatedInodes)
      this.mon.log('info', 'mds.0', `client ${owner} decoupled ${eff.entry.path} (inodes ${c.inoStart}..${c.inoStart + c.count - 1})`)
    }
    const { snapshot, nextIno } = this.mds.exportSubtree(root, SNAPSHOT_MAX_ENTRIES)
    this.claimedInodes.set(root, new Set(snapshot.inodes.map(([ino]) => ino)))
    return {
      root,
      owner,
      inoStart: c.inoStart,
      count: c.count,
      nextIno,
      policy: eff.policy,
      policyVersion: eff.entry.version,
      mergedSeq: c.mergedSeq,
      snapshot
    }
  }

  /** Everything under root, as it is now. */
  snapshot (root: Ino): SubtreeSnapshot {
    return this.mds.exportSubtree(root, SNAPSHOT_MAX_ENTRIES).snapshot
  }

  /**
   * Merge a client journal into the global namespace (the decoupled client's
   * updates win). Streamed into the MDS journal when the policy's durability
   * streams; otherwise applied in memory (volatile apply) and written by a
   * trim right away.
   */
  async merge (root: Ino, owner: string, segments: Array<[number, Uint8Array]>, req?: RequestContext): Promise<MergeResult> {
    const c = this.mds.claimOf(root)
    if (!c || c.owner !== owner) throw fsError('ESTALE', `client ${owner} does not own subtree ${root} (any more)`)
    const already = c.mergedSeq
    const fresh = segments.filter(([seq]) => seq > already).sort((a, b) => a[0] - b[0])
    const eff = this.effective(root)
    const mergedSeq = fresh.length > 0 ? fresh[fresh.length - 1][0] : already
    // The owner's copy misses what others did meanwhile: it takes a fresh one after this merge.
    const refresh = this.interfered.delete(root)
    if (eff.policy.mechanisms.includes('nonvolatile_apply')) return { ...await this.mergeThroughStore(root, owner, fresh, mergedSeq), refresh }
    const r = this.mds.mergeSegments(fresh.map(([, bytes]) => bytes), { root, seq: mergedSeq }, req)
    await r.committed
    return { applied: r.applied, skipped: r.skipped, mergedSeq, refresh }
  }

  /**
   * nonvolatile_apply: the client journal is written to the object store,
   * and the MDS replays it from there, journaling what it applies; the staged
   * objects go once that is safe.
   */
  private async mergeThroughStore (root: Ino, owner: string, segments: Array<[number, Uint8Array]>, mergedSeq: number): Promise<{ applied: number, skipped: number, mergedSeq: number }> {
    const store = this.store
    const staged = segments.map(([seq]) => `staged.${segmentObject(owner, root, seq)}`)
    await store.submit(segments.map(([, bytes], i) => ({ pool: METADATA_POOL, name: staged[i], ops: [{ op: 'writeFull', data: bytes }] })), { durable: true })
    const events = staged.flatMap(name => {
      const st = store.statSync(METADATA_POOL, name)
      return decodeEvents(store.readSync(METADATA_POOL, name, 0, st?.size ?? 0) ?? new Uint8Array(0))
    })
    const r = this.mds.applyClientEvents(events, true, { root, seq: mergedSeq })
    await this.mds.sync(true)
    await store.submit(staged.map(name => ({ pool: METADATA_POOL, name, ops: [{ op: 'remove' }] })), { durable: false })
    return { ...r, mergedSeq }
  }

  /** Subtrees a client owns. */
  claimsOf (owner: string): Array<{ root: Ino, policy: Policy, count: number }> {
    const out: Array<{ root: Ino, policy: Policy, count: number }> = []
    for (const c of this.mds.claims()) {
      if (c.owner === owner) out.push({ root: c.root, policy: this.effective(c.root).policy, count: c.count })
    }
    return out
  }

  /**
   * An owner's last session ended (evicted, or closed without letting go).
   * What happens to its subtrees is what their durability promised:
   *   none     its unmerged updates are gone: the claim goes, with the data
   *            its unmerged files left in the store;
   *   global   its journal is in the object store: merged from there, then released;
   *   local    its journal is on its own disk: the claim stays until it comes back;
   * an ownership of a strong subtree (interfere: block) just ends.
   */
  async ownerGone (owner: string, readSegments: (owner: string, root: Ino) => Array<[number, Uint8Array]> = () => []): Promise<void> {
    for (const c of this.mds.claims()) {
      if (c.owner !== owner) continue
      const policy = this.effective(c.root).policy
      if (c.count === 0 || !isDecoupled(policy)) {
        this.release(c.root, owner)
      } else if (policy.durability === 'global') {
        const segments = readSegments(owner, c.root)
        if (segments.length > 0) await this.merge(c.root, owner, segments)
        this.release(c.root, owner)
        this.mon.log('info', 'mds.0', `merged the stored journal of client ${owner} for subtree ${c.root} after its session ended`)
      } else if (policy.durability === 'none') {
        const removed = await this.dropUnmergedData(c.root, c.inoStart, c.inoStart + c.count)
        this.release(c.root, owner)
        this.mon.log('warn', 'mds.0', `client ${owner} is gone with unmerged updates in subtree ${c.root} (durability none): discarded, with ${removed} data objects`)
      } else {
        this.mon.log('info', 'mds.0', `client ${owner} is gone; its subtree ${c.root} (durability local) waits for it to come back`)
      }
    }
  }

  /**
   * Remove data objects of inodes in [start, end) that the namespace does not
   * know (never merged), and cut back data the owner wrote past the size of
   * files that were in the subtree already (appends whose new size is lost).
   */
  private async dropUnmergedData (root: Ino, start: Ino, end: Ino): Promise<number> {
    const store = this.store
    const inSubtree = this.claimedInodes.get(root) ?? new Set(this.snapshot(root).inodes.map(([ino]) => ino))
    const removes: ObjectWrite[] = []
    let after: string | undefined
    for (;;) {
      const names = store.listSync(DATA_POOL, { after, limit: 1024 })
      for (const name of names) {
        const p = parseDataObject(name)
        const inRange = p !== null && p.ino >= start && p.ino < end
        if (!p || (!inRange && !inSubtree.has(p.ino))) continue
        const inode = this.mds.statOrNull(p.ino)
        if (!inode) {
          if (inRange) removes.push({ pool: DATA_POOL, name, ops: [{ op: 'remove' }] })
          continue
        }
        if (!isReg(inode.mode) || !inSubtree.has(p.ino)) continue
        const keep = inode.size - p.stripe * STRIPE_BYTES
        const size = store.statSync(DATA_POOL, name)?.size ?? 0
        if (keep <= 0) removes.push({ pool: DATA_POOL, name, ops: [{ op: 'remove' }] })
        else if (size > keep) removes.push({ pool: DATA_POOL, name, ops: [{ op: 'truncate', size: keep }] })
      }
      if (names.length < 1024) break
      after = names[names.length - 1]
    }
    for (let i = 0; i < removes.length; i += 512) await store.submit(removes.slice(i, i + 512), { durable: false })
    return removes.length
  }

  /**
   * The owner lets go of its subtree (unmount, policy change). Invisible
   * consistency with no durability merges nothing at unmount: what it
   * discards goes, with the data it wrote.
   */
  async letGo (root: Ino, owner: string): Promise<void> {
    const c = this.mds.claimOf(root)
    if (!c) return
    if (c.owner !== owner) throw fsError('EPERM', `client ${owner} does not own subtree ${root}`)
    const policy = this.effective(root).policy
    if (c.count > 0 && policy.consistency === 'invisible' && policy.durability === 'none') await this.dropUnmergedData(root, c.inoStart, c.inoStart + c.count)
    this.release(root, owner)
  }

  /** The owner lets go of its subtree (after a final merge, or discarding what it had). */
  release (root: Ino, owner: string): void {
    const c = this.mds.claimOf(root)
    if (!c) return
    if (c.owner !== owner) throw fsError('EPERM', `client ${owner} does not own subtree ${root}`)
    this.mds.unclaim(root)
    this.claimedInodes.delete(root)
    this.interfered.delete(root)
    this.mon.log('info', 'mds.0', `client ${owner} released subtree ${root}`)
  }

  /**
   * May `client` change things in these directories (or these inodes)? EBUSY
   * when another client owns the subtree and blocks interference.
   */
  checkWrite (client: string, dirs: Ino[], inodes: Ino[] = []): void {
    if (this.entries.size === 0) return
    for (const dir of dirs) {
      const eff = this.effective(dir)
      if (eff.root === null) continue
      if (eff.policy.interfere !== 'block') {
        const c = this.mds.claimOf(eff.root)
        if (c && c.owner !== client) this.interfered.add(eff.root)
        continue
      }
      const c = this.mds.claimOf(eff.root)
      if (c && c.owner !== client) throw fsError('EBUSY', `${eff.entry?.path ?? dir} is owned by client ${c.owner} (interfere: block)`)
      // A blocking strong subtree belongs to the first client that changes it (no inode range needed).
      if (!c && !isDecoupled(eff.policy)) {
        this.mds.claim(eff.root, client, 0)
        this.mon.log('info', 'mds.0', `client ${client} now owns ${eff.entry?.path ?? eff.root} (interfere: block)`)
      }
    }
    if (inodes.length === 0) return
    for (const c of this.mds.claims()) {
      if (c.owner === client) continue
      const eff = this.effective(c.root)
      const block = eff.policy.interfere === 'block'
      // Interference that is allowed only needs noting: with the inodes handed out with the claim, not a walk of the subtree.
      const set = block ? this.inodesOf(c.root) : this.claimedInodes.get(c.root)
      for (const ino of inodes) {
        if (!set?.has(ino) && !(ino >= c.inoStart && ino < c.inoStart + c.count)) continue
        if (!block) {
          this.interfered.add(c.root)
          break
        }
        throw fsError('EBUSY', `inode ${ino} is in ${eff.entry?.path ?? c.root}, owned by client ${c.owner} (interfere: block)`)
      }
    }
  }

  /**
   * The inodes of a claimed subtree (files have no parent pointer to walk up):
   * as handed out with the claim, or as the subtree is now (a strong subtree's
   * claim, or any claim after a restart), kept up to date by noted().
   */
  private inodesOf (root: Ino): Set<Ino> {
    let set = this.claimedInodes.get(root)
    if (!set) {
      set = new Set(this.snapshot(root).inodes.map(([ino]) => ino))
      this.claimedInodes.set(root, set)
    }
    return set
  }

  /** Does noted() have anything to keep up to date? (If not, callers may skip working out what to tell it.) */
  get tracksClaimedInodes (): boolean {
    return this.claimedInodes.size > 0
  }

  /** A change went through the MDS and put inode ino into directory dir: in a claimed subtree, it belongs to it from now on. */
  noted (dir: Ino, ino: Ino | undefined): void {
    if (ino === undefined) return
    for (const set of this.claimedInodes.values()) if (set.has(dir)) set.add(ino)
  }
}

export { parsePolicy }
