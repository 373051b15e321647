// What a client needs from the cluster: the MDS operations plus the data path.
// Embedded mode implements it with the in-process MDS and object store; server
// mode (over RPC) implements the same interface.

import { CAP_BUFFER, CAP_CACHE } from '../common/caps'
import type { MetadataServer } from '../mds'
import type { LocalStore, ObjectWrite } from '../store/types'
import { DATA_POOL } from '../common/layout'
import type { Attr, Ino, MdsApi, SetAttr } from '../common/types'

/** What opening a file gives: its attributes and the capabilities granted with it. */
export interface OpenResult {
  attr: Attr
  /** CAP_CACHE / CAP_BUFFER bits (src/mds/caps.ts). */
  caps: number
  /** The grant runs out after this many ms unless renewed (0: no lease). */
  leaseMs: number
}

/** How the backend tells the client about capabilities taken away. */
export interface CapListener {
  /** Give back `bits` of ino: flush what they covered; the promise resolves when done. */
  revoke (ino: Ino, bits: number): Promise<void>
  /** The server restarted (capabilities were reclaimed where possible). */
  serverRestarted? (): void
}

/** How a backend asks the kernel to drop what it caches (the mount's notify; nothing without a mount). */
export interface KernelInvalidator {
  /** The name in parent changed behind the kernel's back. */
  entry (parent: Ino, name: string): void
  /** The inode's attributes and data changed behind the kernel's back. */
  inode (ino: Ino): void
}

export interface ClientBackend extends MdsApi {
  /** Open a file for the given open(2) flags, with the capabilities that allows. */
  openFile (ino: Ino, flags: number): Promise<OpenResult>
  /** Ask (again) for capabilities on an open file, e.g. to renew a lease. */
  acquireCaps (ino: Ino, bits: number): Promise<{ caps: number, leaseMs: number }>
  setCapListener (l: CapListener): void
  /** Be given a way to drop kernel cache entries (optional: for changes the backend makes itself). */
  setInvalidator? (inv: KernelInvalidator): void
  /**
   * A file written through a handle was closed (optional). An error fails the
   * close (how a malformed policies.yml is refused with EINVAL); `rewrite`
   * replaces the file's whole contents through that handle first (a refused
   * policies.yml gets its previous contents back).
   */
  closedAfterWrite? (ino: Ino, content: () => Promise<Buffer>, rewrite: (data: Buffer) => Promise<void>, refused: boolean): Promise<void>
  /**
   * Does this file's content get checked as it is written (optional)? Then
   * every write to it is shown to vetWrite first, with the whole content the
   * write would leave: a write it refuses fails (so that a shell's
   * `printf ... > policies.yml` reports the refusal; it ignores close errors).
   */
  vetsWrites? (ino: Ino): boolean
  vetWrite? (ino: Ino, content: Buffer): void
  /**
   * local_persist for strong subtrees (optional: a client of a server has
   * it): the changes fn sends are also kept in the client's local request
   * log until they are safe, so they can be replayed after a crash.
   */
  keepLocally? <T> (fn: () => Promise<T>): Promise<T>
  /** Like lookup, but null for "no such entry" (negative answers are common and must be cheap). */
  lookupOrNull (parent: Ino, name: string): Attr | null | Promise<Attr | null>
  /**
   * Does only this client change ino's metadata (optional)? True in a
   * decoupled subtree it owns: the kernel may then keep names and attributes
   * there even when the mount otherwise asks the server every time.
   */
  changedOnlyHere? (ino: Ino): boolean
  /**
   * Commit data object writes together with the attribute change they imply,
   * atomically. `attr` is the new state (at once); `committed` resolves when the
   * batch is in the store.
   */
  commitData (ino: Ino, writes: ObjectWrite[], change: SetAttr, durable: boolean): { attr: Attr | Promise<Attr>, committed: Promise<unknown> }
  readData (object: string, offset: number, length: number): Promise<Uint8Array | null>
  /** Names of a file's data objects (prefix `<ino hex>.`), in order. */
  listData (prefix: string, after: string | undefined, limit: number): Promise<string[]>
}

export class EmbeddedBackend implements ClientBackend {
  constructor (private readonly mds: MetadataServer, private readonly store: LocalStore) {}

  lookup (parent: Ino, name: string) { return this.mds.lookup(parent, name) }
  lookupOrNull (parent: Ino, name: string) { return this.mds.lookupOrNull(parent, name) }
  getattr (ino: Ino) { return this.mds.getattr(ino) }
  setattr (ino: Ino, change: SetAttr) { return this.mds.setattr(ino, change) }
  mknod (...a: Parameters<MetadataServer['mknod']>) { return this.mds.mknod(...a) }
  mkdir (...a: Parameters<MetadataServer['mkdir']>) { return this.mds.mkdir(...a) }
  symlink (...a: Parameters<MetadataServer['symlink']>) { return this.mds.symlink(...a) }
  link (...a: Parameters<MetadataServer['link']>) { return this.mds.link(...a) }
  unlink (...a: Parameters<MetadataServer['unlink']>) { return this.mds.unlink(...a) }
  rmdir (...a: Parameters<MetadataServer['rmdir']>) { return this.mds.rmdir(...a) }
  rename (...a: Parameters<MetadataServer['rename']>) { return this.mds.rename(...a) }
  readlink (ino: Ino) { return this.mds.readlink(ino) }
  readdir (...a: Parameters<MetadataServer['readdir']>) { return this.mds.readdir(...a) }
  setxattr (...a: Parameters<MetadataServer['setxattr']>) { return this.mds.setxattr(...a) }
  getxattr (...a: Parameters<MetadataServer['getxattr']>) { return this.mds.getxattr(...a) }
  listxattr (ino: Ino) { return this.mds.listxattr(ino) }
  removexattr (...a: Parameters<MetadataServer['removexattr']>) { return this.mds.removexattr(...a) }
  open (ino: Ino) { return this.mds.open(ino) }
  // One client, one MDS: it may cache and buffer everything, and nobody revokes.
  async openFile (ino: Ino): Promise<OpenResult> { return { attr: this.mds.open(ino), caps: CAP_CACHE | CAP_BUFFER, leaseMs: 0 } }
  async acquireCaps (): Promise<{ caps: number, leaseMs: number }> { return { caps: CAP_CACHE | CAP_BUFFER, leaseMs: 0 } }
  setCapListener (): void {}
  release (ino: Ino) { return this.mds.release(ino) }
  sync (durable: boolean) { return this.mds.sync(durable) }
  statfs () { return this.mds.statfs() }
  commitData (ino: Ino, writes: ObjectWrite[], change: SetAttr, durable: boolean) {
    return this.mds.commitData(ino, writes, change, durable)
  }

  readData (object: string, offset: number, length: number): Promise<Uint8Array | null> {
    return Promise.resolve(this.store.readSync(DATA_POOL, object, offset, length))
  }

  listData (prefix: string, after: string | undefined, limit: number): Promise<string[]> {
    return Promise.resolve(this.store.listSync(DATA_POOL, { prefix, after, limit }))
  }
}
