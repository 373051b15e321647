// The client's backend with Cudele in it: each operation goes either to the
// MDS (rpcs: the base backend) or, inside a subtree this client has
// decoupled, to its private copy and client journal.
//
// The first change a client makes in a decoupled subtree claims it. Another
// client's claim means EBUSY (interfere: block) or working through the MDS
// (interfere: allow: those updates lose at merge). Moving or linking across
// the edge of a decoupled subtree is refused with EXDEV (like crossing
// filesystems: `mv` copies instead), so a client journal never refers to
// anything outside its subtree.
//
// Control through the mount, as virtual extended attributes of a directory:
//   user.cudele.policy   (get) the policy in force, where it comes from, its version
//   user.cudele.sync     (set) merge the subtree now (weak)
//   user.cudele.merge    (set) merge the subtree now (invisible too)
//   user.cudele.journal  (get) the client journal's state

import { type FsError, fsError } from '../common/errors'
import { CAP_BUFFER, CAP_CACHE } from '../common/caps'
import { dataObject } from '../common/layout'
import type { Attr, Caller, DirEntry, FsStats, Ino, SetAttr } from '../common/types'
import type { ObjectWrite } from '../store/types'
import type { CapListener, ClientBackend, OpenResult } from '../client/backend'
import * as fs from 'fs'
import * as path from 'path'
import { DecoupledSubtree, type DecoupledOptions } from './decoupled'
import { JournalFile } from './journalfile'
import { describePolicy, isDecoupled, isStreamed, keepsRequestsLocally, POLICY_FILE_MAX_BYTES, policyMeaning } from './policy'
import type { PolicyEntry } from './registry'
import { VXATTR, type PolicyInfo, type SubtreeService } from './service'

export const POLICY_FILE = 'policies.yml'
const O_ACCMODE = 3
const O_RDONLY = 0

export class CudeleBackend implements ClientBackend {
  private readonly trees = new Map<Ino, DecoupledSubtree>()
  /** dir → the policy info answered for it, valid for one policymap epoch. */
  private readonly policyCache = new Map<Ino, PolicyInfo>()
  private epoch = -1
  private decoupledPolicies = 0
  /** Strong subtrees with durability local: this client keeps its changes there in its request log until safe. */
  private localStrongPolicies = 0
  /** Inodes seen in such subtrees (their inode-only changes are kept too); bounded, it only widens what is kept. */
  private readonly keptInodes = new Set<Ino>()
  private readonly opening = new Map<Ino, Promise<DecoupledSubtree | null>>()
  /** Subtrees whose owner is someone else and that allow interference: work through the MDS. */
  private readonly interfering = new Set<Ino>()

  /** Directories and policies.yml files seen, by inode: parent and name (for paths in messages). */
  private readonly names = new Map<Ino, { parent: Ino, name: string }>()
  /**
   * The directory each file was last seen in (bounded): a link names only the
   * inode, and the kernel looks the file up just before (client mounts cache no
   * entries outside this client's own decoupled subtrees, where links do not get here).
   */
  private readonly fileParents = new Map<Ino, Ino>()
  private readonly policyFiles = new Map<Ino, Ino>()
  /**
   * policies.yml files open for writing here: their contents before (null:
   * created here), put back when the policy written is refused.
   */
  private readonly policyWrites = new Map<Ino, { before: Buffer | null, opens: number }>()
  /** policies.yml files this client created and has not opened yet. */
  private readonly createdHere = new Set<Ino>()
  /** When each subtree last said it ran out of inode numbers. */
  private readonly enospcSaid = new WeakMap<DecoupledSubtree, number>()

  constructor (
    readonly base: ClientBackend,
    readonly service: SubtreeService,
    /** This client's name as an owner of subtrees (stable across restarts for local durability). */
    readonly owner: string,
    private readonly opts: DecoupledOptions
  ) {
    service.onPolicyChange(epoch => this.policyChanged(epoch))
  }

  /**
   * Pick up decoupled subtrees this client still owns from a previous run
   * (local_persist journals in its journal directory): they come back as the
   * client left them, and merge later as their policy says.
   */
  async start (): Promise<void> {
    const e = await this.service.policyEpoch()
    this.epoch = e.epoch
    this.decoupledPolicies = e.decoupled
    this.localStrongPolicies = e.localStrong ?? 0
    if (this.opts.journalDir === null) return
    let files: string[] = []
    try { files = fs.readdirSync(this.opts.journalDir).filter(f => f.startsWith(this.owner + '.') && f.endsWith('.cj')) } catch {}
    for (const f of files) {
      const file = path.join(this.opts.journalDir, f)
      try {
        const { header, segments } = JournalFile.read(file)
        if (header.source !== this.opts.source || header.owner !== this.owner) continue
        const tree = await this.claim(header.root)
        if (tree) console.error(`cudele: picked up ${segments.length} journal segments of decoupled subtree ${this.pathOf(header.root)} from ${file}`)
      } catch (err) {
        console.error(`cudele: cannot pick up the client journal ${file}: ${(err as Error).message}`)
      }
    }
  }

  private policyChanged (epoch: number): void {
    if (epoch <= this.epoch) return
    this.epoch = epoch
    this.policyCache.clear()
    this.interfering.clear()
    this.service.policyEpoch().then(e => {
      this.decoupledPolicies = e.decoupled
      this.localStrongPolicies = e.localStrong ?? 0
    }).catch(() => {})
    // A subtree whose policy changed under us: merge what we have and let go.
    for (const [root, tree] of this.trees) {
      this.service.policyOf(root).then(info => {
        if (info.root === root && info.version === tree.policyVersion && isDecoupled(info.policy)) return
        this.trees.delete(root)
        return tree.close('policy-change')
      }).catch(err => console.error(`cudele: subtree ${root}: ${(err as Error).message}`))
    }
  }

  private async policyOf (dir: Ino): Promise<PolicyInfo> {
    const hit = this.policyCache.get(dir)
    if (hit && hit.epoch >= this.epoch) return hit
    const info = await this.service.policyOf(dir)
    if (info.epoch > this.epoch) this.policyChanged(info.epoch)
    this.policyCache.set(dir, info)
    if (this.policyCache.size > 100_000) this.policyCache.clear()
    return info
  }

  /** The decoupled subtree (of this client) holding ino, if any. */
  treeOf (ino: Ino): DecoupledSubtree | null {
    for (const t of this.trees.values()) if (t.has(ino)) return t
    return null
  }

  changedOnlyHere (ino: Ino): boolean {
    return this.treeOf(ino) !== null
  }

  /** Where a change in dir goes: this client's subtree (claiming it if needed), or null for the MDS. */
  private async treeForChange (dir: Ino): Promise<DecoupledSubtree | null> {
    const t = this.treeOf(dir)
    if (t) return t
    if (this.decoupledPolicies === 0) return null
    const info = await this.policyOf(dir)
    if (info.root === null || !isDecoupled(info.policy) || this.interfering.has(info.root)) return null
    const root = info.root
    let opening = this.opening.get(root)
    if (!opening) {
      opening = this.claim(dir).finally(() => this.opening.delete(root))
      this.opening.set(root, opening)
    }
    return await opening
  }

  private async claim (dir: Ino): Promise<DecoupledSubtree | null> {
    try {
      const grant = await this.service.claim(dir, this.owner)
      const existing = this.trees.get(grant.root)
      if (existing) return existing
      const tree = await DecoupledSubtree.open(grant, this.service, this.opts)
      this.trees.set(grant.root, tree)
      return tree
    } catch (err) {
      if ((err as FsError).code === 'EAGAIN') {
        const info = await this.policyOf(dir)
        if (info.root !== null) this.interfering.add(info.root)
        return null
      }
      throw err
    }
  }

  /** Is dir in a strong subtree with durability local (changes there are kept in the request log)? */
  private async keptIn (dir: Ino): Promise<boolean> {
    if (this.localStrongPolicies === 0 || this.base.keepLocally === undefined) return false
    return keepsRequestsLocally((await this.policyOf(dir)).policy)
  }

  /** Are inode-only changes to ino kept (it was seen in such a subtree)? */
  private async keptInode (ino: Ino): Promise<boolean> {
    if (this.localStrongPolicies === 0) return false
    return this.keptInodes.has(ino) || (this.names.has(ino) && await this.keptIn(ino))
  }

  /** Run a change through the MDS, kept in the local request log when keep says so. */
  private async kept<T> (keep: boolean, fn: () => T | Promise<T>): Promise<T> {
    if (!keep || this.base.keepLocally === undefined) return await fn()
    return await this.base.keepLocally(async () => await fn())
  }

  private noteKept (keep: boolean, a: Attr | null): void {
    if (!keep || !a) return
    if (this.keptInodes.size > 1_000_000) this.keptInodes.clear()
    this.keptInodes.add(a.ino)
  }

  /** Both ends of a rename/link must be on the same side of a decoupled subtree's edge. */
  private sameSide (a: DecoupledSubtree | null, b: DecoupledSubtree | null): void {
    if (a !== b) throw fsError('EXDEV', 'cannot move or link across the edge of a decoupled subtree (its updates are journaled apart)')
  }

  /** Remember where directories and policy files are (bounded: it only serves messages). */
  private seen (parent: Ino, name: string, a: Attr | null): Attr | null {
    if (!a) return a
    if ((a.mode & 0o170000) === 0o040000) {
      if (this.names.size > 100_000) this.names.clear()
      this.names.set(a.ino, { parent, name })
    } else {
      if (this.fileParents.size > 100_000) this.fileParents.clear()
      this.fileParents.set(a.ino, parent)
      if (name === POLICY_FILE) {
        if (this.policyFiles.size > 10_000) this.policyFiles.clear()
        this.policyFiles.set(a.ino, parent)
      }
    }
    return a
  }

  /**
   * A link from a subtree the MDS journals into one it does not (strong with
   * durability none or local), or back: EXDEV, as for renames (the MDS checks
   * those itself; a link does not tell it where the file is).
   */
  private async sameStreamSide (ino: Ino, newParent: Ino): Promise<void> {
    const from = this.fileParents.get(ino)
    if (from === undefined || from === newParent) return
    const localIsStore = this.base.keepLocally === undefined
    const [a, b] = await Promise.all([this.policyOf(from), this.policyOf(newParent)])
    if (isStreamed(a.policy, localIsStore) !== isStreamed(b.policy, localIsStore)) {
      throw fsError('EXDEV', 'one directory is in a subtree whose changes are journaled (stream), the other not: nothing is linked across that edge')
    }
  }

  /** A directory's path as far as this client knows it. */
  pathOf (dir: Ino): string {
    const parts: string[] = []
    let cur = dir
    for (let i = 0; i < 256 && cur !== 1; i++) {
      const n = this.names.get(cur)
      if (!n) return parts.length === 0 ? `inode ${dir}` : `(inode ${cur})/${parts.reverse().join('/')}`
      parts.push(Buffer.from(n.name, 'latin1').toString())
      cur = n.parent
    }
    return '/' + parts.reverse().join('/')
  }

  /**
   * A policies.yml was written and closed: check it and set it (through the
   * monitor). A refused one gets its previous contents back (or goes, if it
   * was created for this), so the file keeps saying what is in force.
   */
  async closedAfterWrite (ino: Ino, content: () => Promise<Buffer>, rewrite: (data: Buffer) => Promise<void>): Promise<void> {
    const dir = this.policyFiles.get(ino)
    if (dir === undefined) return
    const bytes = await content()
    const text = bytes.toString('utf8')
    const path = this.pathOf(dir)
    try {
      // Our own decoupled subtree merges first: a policy change must not lose updates.
      const t = this.trees.get(dir)
      if (t) await t.merge()
      await this.setPolicy(dir, text, path)
    } catch (err) {
      const msg = (err as Error).message.replace(/^EINVAL: /, '')
      console.error(`cudele: ${path}/${POLICY_FILE} refused: ${msg}`)
      await this.putBack(dir, ino, rewrite).catch(e => console.error(`cudele: ${path}/${POLICY_FILE}: the previous contents could not be put back: ${(e as Error).message}`))
      throw err
    }
    const w = this.policyWrites.get(ino)
    if (w) w.before = bytes
  }

  /**
   * Set a policy and see it at once: without waiting for the monitor's push,
   * this client's next change in the subtree would still go through the MDS,
   * and another client could decouple the subtree first.
   */
  async setPolicy (dir: Ino, yaml: string, path: string): Promise<PolicyEntry> {
    const entry = await this.service.setPolicy(dir, yaml, path, this.owner)
    // The policy is in force either way; if this fails, the push catches up.
    const e = await this.service.policyEpoch().catch(() => null)
    if (e) {
      this.policyChanged(e.epoch)
      this.decoupledPolicies = e.decoupled
      this.localStrongPolicies = e.localStrong ?? 0
    }
    return entry
  }

  /** A refused policies.yml: back to what it held before it was opened for writing here. */
  private async putBack (dir: Ino, ino: Ino, rewrite: (data: Buffer) => Promise<void>): Promise<void> {
    const w = this.policyWrites.get(ino)
    if (!w) return
    if (w.before !== null) return await rewrite(w.before)
    // Created for the refused policy: it goes (if the name still means this file).
    const now = await this.base.lookupOrNull(dir, POLICY_FILE)
    if (now?.ino === ino) await this.base.unlink(dir, POLICY_FILE)
  }

  /** A policies.yml opened for writing: remember what it holds now (before O_TRUNC cuts it). */
  private async notePolicyWrite (ino: Ino, created: boolean): Promise<void> {
    const w = this.policyWrites.get(ino)
    if (w) {
      w.opens++
      return
    }
    let before: Buffer | null = null
    if (!created) {
      const size = (await this.base.getattr(ino)).size
      // Larger than any policy: a file that never held one, not worth keeping a copy of.
      if (size > POLICY_FILE_MAX_BYTES) return
      const got = size === 0 ? null : await this.base.readData(dataObject(ino, 0), 0, size)
      before = Buffer.alloc(size)
      if (got) before.set(got.subarray(0, size), 0)
    }
    if (this.policyWrites.size > 1000) this.policyWrites.clear()
    this.policyWrites.set(ino, { before, opens: 1 })
  }

  // ---- reads ----

  async lookup (parent: Ino, name: string): Promise<Attr> {
    const t = this.treeOf(parent)
    if (t) return this.seen(parent, name, t.mds.lookup(parent, name)) as Attr
    const a = await this.base.lookup(parent, name)
    this.noteKept(await this.keptIn(parent), a)
    return this.seen(parent, name, a) as Attr
  }

  async lookupOrNull (parent: Ino, name: string): Promise<Attr | null> {
    const t = this.treeOf(parent)
    if (t) return this.seen(parent, name, t.mds.lookupOrNull(parent, name))
    const a = await this.base.lookupOrNull(parent, name)
    this.noteKept(await this.keptIn(parent), a)
    return this.seen(parent, name, a)
  }

  async getattr (ino: Ino): Promise<Attr> {
    const t = this.treeOf(ino)
    return t ? t.mds.getattr(ino) : await this.base.getattr(ino)
  }

  async readlink (ino: Ino): Promise<string> {
    const t = this.treeOf(ino)
    return t ? t.mds.readlink(ino) : await this.base.readlink(ino)
  }

  async readdir (ino: Ino, after: string | null, limit: number): Promise<DirEntry[]> {
    const t = this.treeOf(ino)
    return t ? await t.mds.readdir(ino, after, limit) : await this.base.readdir(ino, after, limit)
  }

  async getxattr (ino: Ino, name: string): Promise<Buffer> {
    if (name === VXATTR.policy) return Buffer.from(JSON.stringify(await this.policyReport(ino), null, 2) + '\n')
    if (name === VXATTR.journal) return Buffer.from(JSON.stringify(this.journalReport(ino), null, 2) + '\n')
    const t = this.treeOf(ino)
    return t ? t.mds.getxattr(ino, name) : await this.base.getxattr(ino, name)
  }

  async listxattr (ino: Ino): Promise<string[]> {
    const t = this.treeOf(ino)
    return t ? t.mds.listxattr(ino) : await this.base.listxattr(ino)
  }

  async statfs (): Promise<FsStats> { return await this.base.statfs() }

  /** What `cudele policy show` prints. */
  async policyReport (dir: Ino): Promise<Record<string, unknown>> {
    const info = await this.service.policyOf(dir)
    const tree = info.root !== null ? this.trees.get(info.root) : undefined
    return {
      directory: dir,
      source: info.root === null ? 'default (no policies.yml in this directory or above it)' : `${info.path} (inode ${info.root})`,
      version: info.version,
      epoch: info.epoch,
      consistency: info.policy.consistency,
      durability: info.policy.durability,
      consistency_mechanisms: info.policy.consistencyExpr,
      durability_mechanisms: info.policy.durabilityExpr || 'none',
      allocated_inodes: info.policy.allocatedInodes,
      interfere: info.policy.interfere,
      sync_interval_ms: info.policy.syncIntervalMs,
      summary: describePolicy(info.policy),
      means: policyMeaning(info.policy, this.base.keepLocally === undefined),
      owner: info.owner,
      owned_here: tree !== undefined,
      unmerged_segments: tree?.unmergedSegments ?? 0
    }
  }

  journalReport (ino: Ino): Record<string, unknown> {
    const t = this.treeOf(ino)
    if (!t) return { decoupled: false }
    return {
      decoupled: true,
      root: t.root,
      owner: t.owner,
      inodes: `${t.inoStart}..${t.inoEnd - 1}`,
      unmerged_segments: t.unmergedSegments,
      journal_events: t.journalEvents,
      journal_bytes: t.stats.journalBytes,
      merges: t.stats.merges,
      merged_events: t.stats.mergedEvents
    }
  }

  // ---- changes ----

  /** A change in this client's subtree. Running out of its inode numbers is also said in the mount's output: ENOSPC alone says little. */
  private inTree<T> (t: DecoupledSubtree, fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      const now = performance.now()
      if ((err as FsError).code === 'ENOSPC' && now - (this.enospcSaid.get(t) ?? -Infinity) > 10_000) {
        this.enospcSaid.set(t, now)
        console.error(`cudele: ${this.pathOf(t.root)}: ${(err as Error).message.replace(/^ENOSPC: /, '')}`)
      }
      throw err
    }
  }

  async mknod (parent: Ino, name: string, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    // policies.yml itself always goes to the MDS: the policy must be readable by everyone.
    const t = name === POLICY_FILE ? null : await this.treeForChange(parent)
    if (name === POLICY_FILE && this.treeOf(parent)) throw fsError('EXDEV', 'policies.yml of a decoupled subtree is changed through a client that does not own it, or with cudele policy set')
    let a: Attr
    if (t) {
      a = this.seen(parent, name, this.inTree(t, () => t.mds.mknod(parent, name, mode, rdev, caller))) as Attr
    } else {
      const keep = await this.keptIn(parent)
      a = this.seen(parent, name, await this.kept(keep, () => this.base.mknod(parent, name, mode, rdev, caller))) as Attr
      this.noteKept(keep, a)
    }
    if (name === POLICY_FILE) {
      if (this.createdHere.size > 1000) this.createdHere.clear()
      this.createdHere.add(a.ino)
    }
    return a
  }

  async mkdir (parent: Ino, name: string, mode: number, caller: Caller): Promise<Attr> {
    const t = await this.treeForChange(parent)
    if (t) return this.seen(parent, name, this.inTree(t, () => t.mds.mkdir(parent, name, mode, caller))) as Attr
    const keep = await this.keptIn(parent)
    const a = await this.kept(keep, () => this.base.mkdir(parent, name, mode, caller))
    this.noteKept(keep, a)
    return this.seen(parent, name, a) as Attr
  }

  async symlink (parent: Ino, name: string, target: string, caller: Caller): Promise<Attr> {
    const t = await this.treeForChange(parent)
    if (t) return this.inTree(t, () => t.mds.symlink(parent, name, target, caller))
    const keep = await this.keptIn(parent)
    const a = await this.kept(keep, () => this.base.symlink(parent, name, target, caller))
    this.noteKept(keep, a)
    return a
  }

  async link (ino: Ino, newParent: Ino, newName: string): Promise<Attr> {
    const t = await this.treeForChange(newParent)
    this.sameSide(this.treeOf(ino), t)
    if (t) return t.mds.link(ino, newParent, newName)
    await this.sameStreamSide(ino, newParent)
    return await this.kept(await this.keptIn(newParent) || await this.keptInode(ino), () => this.base.link(ino, newParent, newName))
  }

  async unlink (parent: Ino, name: string): Promise<void> {
    const t = await this.treeForChange(parent)
    if (t) t.mds.unlink(parent, name)
    else await this.kept(await this.keptIn(parent), () => this.base.unlink(parent, name))
  }

  /**
   * Create many empty files at once. In a decoupled subtree this is the plain
   * append_client_journal mechanism (no per-name checks: see
   * DecoupledSubtree.appendCreates); elsewhere, one request per file.
   */
  async createMany (parent: Ino, names: string[], mode: number, caller: Caller): Promise<number> {
    const t = await this.treeForChange(parent)
    if (t) return this.inTree(t, () => t.appendCreates(parent, names, mode, caller))
    const keep = await this.keptIn(parent)
    for (const name of names) this.noteKept(keep, await this.kept(keep, () => this.base.mknod(parent, name, (mode & 0o7777) | 0o100000, 0, caller)))
    return names.length
  }

  async rmdir (parent: Ino, name: string): Promise<void> {
    const t = await this.treeForChange(parent)
    if (t) t.mds.rmdir(parent, name)
    else await this.kept(await this.keptIn(parent), () => this.base.rmdir(parent, name))
  }

  async rename (parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    const a = await this.treeForChange(parent)
    const b = await this.treeForChange(newParent)
    this.sameSide(a, b)
    if (a) a.mds.rename(parent, name, newParent, newName, flags)
    else await this.kept(await this.keptIn(parent) || await this.keptIn(newParent), () => this.base.rename(parent, name, newParent, newName, flags))
  }

  async setattr (ino: Ino, change: SetAttr): Promise<Attr> {
    const t = this.treeOf(ino)
    return t ? t.mds.setattr(ino, change) : await this.kept(await this.keptInode(ino), () => this.base.setattr(ino, change))
  }

  async setxattr (ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    if (name === VXATTR.sync || name === VXATTR.merge) return await this.mergeAt(ino, name === VXATTR.merge)
    const t = this.treeOf(ino)
    if (t) t.mds.setxattr(ino, name, value, flags)
    else await this.kept(await this.keptInode(ino), () => this.base.setxattr(ino, name, value, flags))
  }

  async removexattr (ino: Ino, name: string): Promise<void> {
    const t = this.treeOf(ino)
    if (t) t.mds.removexattr(ino, name)
    else await this.kept(await this.keptInode(ino), () => this.base.removexattr(ino, name))
  }

  /** `cudele sync` / `cudele merge`: merge the subtree holding dir (sync: only weak subtrees). */
  async mergeAt (dir: Ino, anyConsistency: boolean): Promise<void> {
    const t = this.treeOf(dir)
    if (!t) {
      const info = await this.service.policyOf(dir)
      if (!isDecoupled(info.policy)) return // strong: everything is merged already
      if (info.owner !== null && info.owner !== this.owner) throw fsError('EBUSY', `the subtree is decoupled by client ${info.owner}; only it can merge`)
      return
    }
    if (!anyConsistency && t.policy.consistency === 'invisible') {
      throw fsError('EINVAL', 'this subtree has invisible consistency: it merges only on `cudele merge`')
    }
    await t.merge()
  }

  // ---- files ----

  async openFile (ino: Ino, flags: number): Promise<OpenResult> {
    const t = this.treeOf(ino)
    if (!t) {
      const r = await this.base.openFile(ino, flags)
      if ((flags & O_ACCMODE) !== O_RDONLY && this.policyFiles.has(ino)) {
        try {
          await this.notePolicyWrite(ino, this.createdHere.delete(ino))
        } catch (err) {
          await Promise.resolve(this.base.release(ino)).catch(() => {})
          throw err
        }
      }
      return r
    }
    return { attr: t.mds.open(ino), caps: CAP_CACHE | CAP_BUFFER, leaseMs: 0 }
  }

  async acquireCaps (ino: Ino, bits: number): Promise<{ caps: number, leaseMs: number }> {
    if (this.treeOf(ino)) return { caps: CAP_CACHE | CAP_BUFFER, leaseMs: 0 }
    return await this.base.acquireCaps(ino, bits)
  }

  setCapListener (l: CapListener): void { this.base.setCapListener(l) }

  async open (ino: Ino): Promise<Attr> { return (await this.openFile(ino, 0)).attr }

  async release (ino: Ino): Promise<void> {
    const t = this.treeOf(ino)
    if (t) return t.mds.release(ino)
    const w = this.policyWrites.get(ino)
    if (w && --w.opens === 0) this.policyWrites.delete(ino)
    await this.base.release(ino)
  }

  commitData (ino: Ino, writes: ObjectWrite[], change: SetAttr, durable: boolean): { attr: Attr | Promise<Attr>, committed: Promise<unknown> } {
    const t = this.treeOf(ino)
    if (!t) return this.base.commitData(ino, writes, change, durable)
    // The data goes to the store; the size and times it implies go to the client journal.
    const committed = this.service.writeData(writes, durable)
    return { attr: t.mds.setattr(ino, change), committed }
  }

  readData (object: string, offset: number, length: number): Promise<Uint8Array | null> { return this.base.readData(object, offset, length) }
  listData (prefix: string, after: string | undefined, limit: number): Promise<string[]> { return this.base.listData(prefix, after, limit) }

  async sync (durable: boolean): Promise<void> {
    await Promise.all([this.base.sync(durable), ...[...this.trees.values()].map(t => t.persist())])
  }

  /** Persist (fsync) in a subtree: its client journal as far as the policy goes. */
  async syncAt (ino: Ino): Promise<void> {
    const t = this.treeOf(ino)
    if (t) await t.persist()
  }

  /** Unmount: each subtree merges (weak) or keeps its journal (invisible), as its policy says. */
  async close (): Promise<void> {
    for (const t of this.trees.values()) {
      await t.close('unmount').catch(err => console.error(`cudele: subtree ${t.root}: ${(err as Error).message}`))
    }
    this.trees.clear()
  }
}
