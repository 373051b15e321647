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
// Beside the routing: what the client has seen of names (names.ts), the
// policies.yml life cycle (policyfile.ts), the request log of strong subtrees
// with durability local (keeping.ts), and the control interface, as virtual
// extended attributes of a directory (reports.ts):
//   user.cudele.policy   (get) the policy in force, where it comes from, its version
//   user.cudele.sync     (set) merge the subtree now (weak)
//   user.cudele.merge    (set) merge the subtree now (invisible too)
//   user.cudele.journal  (get) the client journal's state

import { type FsError, fsError } from '../common/errors'
import { CAP_BUFFER, CAP_CACHE } from '../common/caps'
import type { Attr, Caller, DirEntry, FsStats, Ino, SetAttr } from '../common/types'
import type { MetadataServer } from '../mds'
import type { ObjectWrite } from '../store/types'
import type { CapListener, ClientBackend, KernelInvalidator, OpenResult } from '../client/backend'
import * as fs from 'fs'
import * as path from 'path'
import { DecoupledSubtree, type DecoupledOptions } from './decoupled'
import { JournalFile } from './journalfile'
import { LocalKeeping } from './keeping'
import { POLICY_FILE, SeenNames } from './names'
import { isDecoupled, isStreamed } from './policy'
import { PolicyFiles } from './policyfile'
import type { PolicyEntry } from './registry'
import { journalReport, policyReport } from './reports'
import { VXATTR, type PolicyCounts, type PolicyInfo, type SubtreeService } from './service'

export { POLICY_FILE } from './names'

const O_ACCMODE = 3
const O_RDONLY = 0
/** Directories whose policy is remembered (for one policymap epoch) before the cache starts over. */
const POLICY_CACHE_MAX = 100_000
/** A subtree says it ran out of inode numbers at most this often (ms). */
const ENOSPC_SAY_MS = 10_000

export class CudeleBackend implements ClientBackend {
  private readonly trees = new Map<Ino, DecoupledSubtree>()
  /** dir → the policy info answered for it, valid for one policymap epoch. */
  private readonly policyCache = new Map<Ino, PolicyInfo>()
  private epoch = -1
  private decoupledPolicies = 0
  private readonly opening = new Map<Ino, Promise<DecoupledSubtree | null>>()
  /** Subtrees whose owner is someone else and that allow interference: work through the MDS. */
  private readonly interfering = new Set<Ino>()
  private readonly names = new SeenNames()
  private readonly keeping: LocalKeeping
  private readonly policyFiles: PolicyFiles
  /** When each subtree last said it ran out of inode numbers. */
  private readonly enospcSaid = new WeakMap<DecoupledSubtree, number>()

  constructor (
    readonly base: ClientBackend,
    readonly service: SubtreeService,
    /** This client's name as an owner of subtrees (stable across restarts for local durability). */
    readonly owner: string,
    private readonly opts: DecoupledOptions
  ) {
    this.keeping = new LocalKeeping(base, dir => this.policyOf(dir), this.names)
    this.policyFiles = new PolicyFiles(base, this.names, async (dir, text, p) => {
      // Our own decoupled subtree merges first: a policy change must not lose updates.
      const t = this.trees.get(dir)
      if (t) await t.merge()
      await this.setPolicy(dir, text, p)
    })
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
    this.counted(e)
    if (this.opts.journalDir === null) return
    let files: string[] = []
    try { files = fs.readdirSync(this.opts.journalDir).filter(f => f.startsWith(this.owner + '.') && f.endsWith('.cj')) } catch {}
    for (const f of files) {
      const file = path.join(this.opts.journalDir, f)
      try {
        const { header, segments } = JournalFile.read(file)
        if (header.source !== this.opts.source || header.owner !== this.owner) continue
        const tree = await this.claim(header.root)
        if (tree) console.error(`cudele: picked up ${segments.length} journal segments of decoupled subtree ${this.names.pathOf(header.root)} from ${file}`)
      } catch (err) {
        console.error(`cudele: cannot pick up the client journal ${file}: ${(err as Error).message}`)
      }
    }
  }

  /** How many policies need this client to look (decoupled ones; strong ones with durability local). */
  private counted (e: PolicyCounts): void {
    this.decoupledPolicies = e.decoupled
    this.keeping.policies = e.localStrong ?? 0
  }

  private policyChanged (epoch: number): void {
    if (epoch <= this.epoch) return
    this.epoch = epoch
    this.policyCache.clear()
    this.interfering.clear()
    this.service.policyEpoch().then(e => this.counted(e), (err: Error) => {
      // The counts stay as they were until the next change; say why.
      console.error(`cudele: policy counts of epoch ${epoch}: ${err.message}`)
    })
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
    if (this.policyCache.size > POLICY_CACHE_MAX) this.policyCache.clear()
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

  /** Both ends of a rename/link must be on the same side of a decoupled subtree's edge. */
  private sameSide (a: DecoupledSubtree | null, b: DecoupledSubtree | null): void {
    if (a !== b) throw fsError('EXDEV', 'cannot move or link across the edge of a decoupled subtree (its updates are journaled apart)')
  }

  /**
   * A link from a subtree the MDS journals into one it does not (strong with
   * durability none or local), or back: EXDEV, as for renames (the MDS checks
   * those itself; a link does not tell it where the file is).
   */
  private async sameStreamSide (ino: Ino, newParent: Ino): Promise<void> {
    const from = this.names.parentOfFile(ino)
    if (from === undefined || from === newParent) return
    const localIsStore = this.base.keepLocally === undefined
    const [a, b] = await Promise.all([this.policyOf(from), this.policyOf(newParent)])
    if (isStreamed(a.policy, localIsStore) !== isStreamed(b.policy, localIsStore)) {
      throw fsError('EXDEV', 'one directory is in a subtree whose changes are journaled (stream), the other not: nothing is linked across that edge')
    }
  }

  /** A directory's path as far as this client knows it. */
  pathOf (dir: Ino): string {
    return this.names.pathOf(dir)
  }

  closedAfterWrite (ino: Ino, content: () => Promise<Buffer>, rewrite: (data: Buffer) => Promise<void>, refused: boolean): Promise<void> {
    return this.policyFiles.closedAfterWrite(ino, content, rewrite, refused)
  }

  vetsWrites (ino: Ino): boolean {
    return this.policyFiles.isPolicyFile(ino)
  }

  vetWrite (ino: Ino, content: Buffer): void {
    this.policyFiles.vet(ino, content)
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
      this.counted(e)
    }
    return entry
  }

  // ---- the route ----

  /** An operation on one inode: in the private copy when it is in this client's subtree, else at the MDS. */
  private async onInode<T> (ino: Ino, inTree: (copy: MetadataServer) => T | Promise<T>, atMds: () => T | Promise<T>): Promise<T> {
    const t = this.treeOf(ino)
    return t ? await inTree(t.mds) : await atMds()
  }

  /** A change of one inode's metadata: the private copy, or the MDS (kept locally where the policy says). */
  private async changeInode<T> (ino: Ino, inTree: (copy: MetadataServer) => T, atMds: () => T | Promise<T>): Promise<T> {
    const t = this.treeOf(ino)
    if (t) return inTree(t.mds)
    return await this.keeping.run(await this.keeping.keptInode(ino), atMds)
  }

  /**
   * A change of a directory's entries: the private copy when dir is in a
   * decoupled subtree (claiming it first if needed), or the MDS (kept
   * locally where the policy says, and noting what it made).
   */
  private async changeDir (dir: Ino, name: string, inTree: (copy: MetadataServer) => Attr, atMds: () => Attr | Promise<Attr>): Promise<Attr>
  private async changeDir (dir: Ino, name: string, inTree: (copy: MetadataServer) => void, atMds: () => void | Promise<void>): Promise<void>
  private async changeDir (dir: Ino, name: string, inTree: (copy: MetadataServer) => Attr | void, atMds: () => Attr | void | Promise<Attr | void>): Promise<Attr | void> {
    const t = await this.treeForChange(dir)
    if (t) return this.names.seen(dir, name, this.inTree(t, () => inTree(t.mds)) ?? null) ?? undefined
    const keep = await this.keeping.keptIn(dir)
    const a = await this.keeping.run(keep, atMds)
    if (a) this.keeping.note(keep, a)
    return this.names.seen(dir, name, a ?? null) ?? undefined
  }

  /** A change in this client's subtree. Running out of its inode numbers is also said in the mount's output: ENOSPC alone says little. */
  private inTree<T> (t: DecoupledSubtree, fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      const now = performance.now()
      if ((err as FsError).code === 'ENOSPC' && now - (this.enospcSaid.get(t) ?? -Infinity) > ENOSPC_SAY_MS) {
        this.enospcSaid.set(t, now)
        console.error(`cudele: ${this.names.pathOf(t.root)}: ${(err as Error).message.replace(/^ENOSPC: /, '')}`)
      }
      throw err
    }
  }

  // ---- reads ----

  async lookup (parent: Ino, name: string): Promise<Attr> {
    const t = this.treeOf(parent)
    if (t) return this.names.seen(parent, name, t.mds.lookup(parent, name)) as Attr
    const a = await this.base.lookup(parent, name)
    this.keeping.note(await this.keeping.keptIn(parent), a)
    return this.names.seen(parent, name, a) as Attr
  }

  async lookupOrNull (parent: Ino, name: string): Promise<Attr | null> {
    const t = this.treeOf(parent)
    if (t) return this.names.seen(parent, name, t.mds.lookupOrNull(parent, name))
    const a = await this.base.lookupOrNull(parent, name)
    this.keeping.note(await this.keeping.keptIn(parent), a)
    return this.names.seen(parent, name, a)
  }

  getattr (ino: Ino): Promise<Attr> { return this.onInode(ino, copy => copy.getattr(ino), () => this.base.getattr(ino)) }
  readlink (ino: Ino): Promise<string> { return this.onInode(ino, copy => copy.readlink(ino), () => this.base.readlink(ino)) }
  readdir (ino: Ino, after: string | null, limit: number): Promise<DirEntry[]> { return this.onInode(ino, copy => copy.readdir(ino, after, limit), () => this.base.readdir(ino, after, limit)) }
  listxattr (ino: Ino): Promise<string[]> { return this.onInode(ino, copy => copy.listxattr(ino), () => this.base.listxattr(ino)) }

  async getxattr (ino: Ino, name: string): Promise<Buffer> {
    if (name === VXATTR.policy) return Buffer.from(JSON.stringify(await this.policyReport(ino), null, 2) + '\n')
    if (name === VXATTR.journal) return Buffer.from(JSON.stringify(journalReport(this.treeOf(ino)), null, 2) + '\n')
    return await this.onInode(ino, copy => copy.getxattr(ino, name), () => this.base.getxattr(ino, name))
  }

  async statfs (): Promise<FsStats> { return await this.base.statfs() }

  /** What `cudele policy show` prints. */
  async policyReport (dir: Ino): Promise<Record<string, unknown>> {
    const info = await this.service.policyOf(dir)
    return policyReport(dir, info, info.root !== null ? this.trees.get(info.root) : undefined, this.base.keepLocally === undefined)
  }

  // ---- changes ----

  async mknod (parent: Ino, name: string, mode: number, rdev: number, caller: Caller): Promise<Attr> {
    // policies.yml itself always goes to the MDS: the policy must be readable by everyone.
    if (name === POLICY_FILE) {
      if (this.treeOf(parent)) throw fsError('EXDEV', 'policies.yml of a decoupled subtree is changed through a client that does not own it, or with cudele policy set')
      const keep = await this.keeping.keptIn(parent)
      const a = this.names.seen(parent, name, await this.keeping.run(keep, () => this.base.mknod(parent, name, mode, rdev, caller))) as Attr
      this.keeping.note(keep, a)
      this.policyFiles.created(a.ino)
      return a
    }
    return await this.changeDir(parent, name, copy => copy.mknod(parent, name, mode, rdev, caller), () => this.base.mknod(parent, name, mode, rdev, caller))
  }

  mkdir (parent: Ino, name: string, mode: number, caller: Caller): Promise<Attr> {
    return this.changeDir(parent, name, copy => copy.mkdir(parent, name, mode, caller), () => this.base.mkdir(parent, name, mode, caller))
  }

  symlink (parent: Ino, name: string, target: string, caller: Caller): Promise<Attr> {
    return this.changeDir(parent, name, copy => copy.symlink(parent, name, target, caller), () => this.base.symlink(parent, name, target, caller))
  }

  async link (ino: Ino, newParent: Ino, newName: string): Promise<Attr> {
    const t = await this.treeForChange(newParent)
    this.sameSide(this.treeOf(ino), t)
    if (t) return t.mds.link(ino, newParent, newName)
    await this.sameStreamSide(ino, newParent)
    return await this.keeping.run(await this.keeping.keptIn(newParent) || await this.keeping.keptInode(ino), () => this.base.link(ino, newParent, newName))
  }

  unlink (parent: Ino, name: string): Promise<void> {
    return this.changeDir(parent, name, copy => copy.unlink(parent, name), () => this.base.unlink(parent, name))
  }

  rmdir (parent: Ino, name: string): Promise<void> {
    return this.changeDir(parent, name, copy => copy.rmdir(parent, name), () => this.base.rmdir(parent, name))
  }

  /**
   * Create many empty files at once. In a decoupled subtree this is the plain
   * append_client_journal mechanism (no per-name checks: see
   * DecoupledSubtree.appendCreates); elsewhere, one request per file.
   */
  async createMany (parent: Ino, names: string[], mode: number, caller: Caller): Promise<number> {
    const t = await this.treeForChange(parent)
    if (t) return this.inTree(t, () => t.appendCreates(parent, names, mode, caller))
    const keep = await this.keeping.keptIn(parent)
    for (const name of names) this.keeping.note(keep, await this.keeping.run(keep, () => this.base.mknod(parent, name, (mode & 0o7777) | 0o100000, 0, caller)))
    return names.length
  }

  async rename (parent: Ino, name: string, newParent: Ino, newName: string, flags: number): Promise<void> {
    const a = await this.treeForChange(parent)
    const b = await this.treeForChange(newParent)
    this.sameSide(a, b)
    if (a) a.mds.rename(parent, name, newParent, newName, flags)
    else await this.keeping.run(await this.keeping.keptIn(parent) || await this.keeping.keptIn(newParent), () => this.base.rename(parent, name, newParent, newName, flags))
  }

  setattr (ino: Ino, change: SetAttr): Promise<Attr> {
    return this.changeInode(ino, copy => copy.setattr(ino, change), () => this.base.setattr(ino, change))
  }

  async setxattr (ino: Ino, name: string, value: Buffer, flags: number): Promise<void> {
    if (name === VXATTR.sync || name === VXATTR.merge) return await this.mergeAt(ino, name === VXATTR.merge)
    await this.changeInode(ino, copy => copy.setxattr(ino, name, value, flags), () => this.base.setxattr(ino, name, value, flags))
  }

  removexattr (ino: Ino, name: string): Promise<void> {
    return this.changeInode(ino, copy => copy.removexattr(ino, name), () => this.base.removexattr(ino, name))
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
    if (t) return { attr: t.mds.open(ino), caps: CAP_CACHE | CAP_BUFFER, leaseMs: 0 }
    const r = await this.base.openFile(ino, flags)
    if ((flags & O_ACCMODE) !== O_RDONLY) {
      try {
        await this.policyFiles.openedForWrite(ino)
      } catch (err) {
        // The open fails as a whole: the MDS forgets it (a failure there changes nothing for the caller).
        await Promise.resolve(this.base.release(ino)).catch(() => {})
        throw err
      }
    }
    return r
  }

  async acquireCaps (ino: Ino, bits: number): Promise<{ caps: number, leaseMs: number }> {
    if (this.treeOf(ino)) return { caps: CAP_CACHE | CAP_BUFFER, leaseMs: 0 }
    return await this.base.acquireCaps(ino, bits)
  }

  setCapListener (l: CapListener): void { this.base.setCapListener(l) }

  setInvalidator (inv: KernelInvalidator): void {
    this.policyFiles.kernel = inv
    this.base.setInvalidator?.(inv)
  }

  async open (ino: Ino): Promise<Attr> { return (await this.openFile(ino, 0)).attr }

  async release (ino: Ino): Promise<void> {
    const t = this.treeOf(ino)
    if (t) return t.mds.release(ino)
    this.policyFiles.released(ino)
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
