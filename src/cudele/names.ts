// What a client has seen of the namespace, by inode: where directories and
// policies.yml files are (for paths in messages), and the directory each
// file was last seen in (a link names only the inode, and the kernel looks
// the file up just before: client mounts cache no entries outside this
// client's own decoupled subtrees, where links do not get here). Bounded:
// it only serves messages and edge checks, and forgetting is harmless.

import { type Attr, type Ino, isDir, ROOT_INO } from '../common/types'

export const POLICY_FILE = 'policies.yml'

/** Entries kept per map before it starts over. */
const NAMES_MAX = 100_000
const POLICY_FILES_MAX = 10_000
/** Deepest path built for a message. */
const PATH_DEPTH_MAX = 256

export class SeenNames {
  private readonly dirs = new Map<Ino, { parent: Ino, name: string }>()
  private readonly fileParents = new Map<Ino, Ino>()
  private readonly policyFiles = new Map<Ino, Ino>()

  /** Note what a lookup or create in parent answered; returns it. */
  seen (parent: Ino, name: string, a: Attr | null): Attr | null {
    if (!a) return a
    if (isDir(a.mode)) {
      if (this.dirs.size > NAMES_MAX) this.dirs.clear()
      this.dirs.set(a.ino, { parent, name })
    } else {
      if (this.fileParents.size > NAMES_MAX) this.fileParents.clear()
      this.fileParents.set(a.ino, parent)
      if (name === POLICY_FILE) {
        if (this.policyFiles.size > POLICY_FILES_MAX) this.policyFiles.clear()
        this.policyFiles.set(a.ino, parent)
      }
    }
    return a
  }

  /** Is ino a directory this client has seen? */
  knowsDir (ino: Ino): boolean {
    return this.dirs.has(ino)
  }

  /** The directory a file was last seen in. */
  parentOfFile (ino: Ino): Ino | undefined {
    return this.fileParents.get(ino)
  }

  /** The directory whose policies.yml ino is (undefined: not a policy file). */
  policyFileDir (ino: Ino): Ino | undefined {
    return this.policyFiles.get(ino)
  }

  /** A directory's path as far as this client knows it. */
  pathOf (dir: Ino): string {
    const parts: string[] = []
    let cur = dir
    for (let i = 0; i < PATH_DEPTH_MAX && cur !== ROOT_INO; i++) {
      const n = this.dirs.get(cur)
      if (!n) return parts.length === 0 ? `inode ${dir}` : `(inode ${cur})/${parts.reverse().join('/')}`
      parts.push(Buffer.from(n.name, 'latin1').toString())
      cur = n.parent
    }
    return '/' + parts.reverse().join('/')
  }
}
