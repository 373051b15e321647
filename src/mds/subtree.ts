// A subtree exported whole: every dentry and inode under a directory, for
// the client that decouples it (Cudele), with the first inode number of its
// claim that is still unused.

import { fsError } from '../common/errors'
import { type DirEntry, type Ino, isDir } from '../common/types'
import type { SubtreeSnapshot } from './index'
import { encodeInode } from './inode'
import type { Namespace } from './namespace'

/** Entries read per listing while exporting a subtree. */
const SNAPSHOT_PAGE = 1024

export function exportSubtree (ns: Namespace, list: (dir: Ino, after: string | null, limit: number) => DirEntry[], root: Ino, maxEntries: number): { snapshot: SubtreeSnapshot, nextIno: Ino } {
  const dentries: SubtreeSnapshot['dentries'] = []
  const inodes: SubtreeSnapshot['inodes'] = []
  const rootInode = ns.cache.getInode(root)
  if (!rootInode) throw fsError('ENOENT', `inode ${root} does not exist`)
  inodes.push([root, encodeInode(rootInode)])
  const queue = [root]
  const seen = new Set<Ino>([root])
  while (queue.length > 0) {
    const dir = queue.shift() as Ino
    let after: string | null = null
    for (;;) {
      const page = list(dir, after, SNAPSHOT_PAGE)
      for (const e of page) {
        dentries.push([dir, e.name, e.ino, e.type])
        if (dentries.length > maxEntries) throw fsError('EFBIG', `the subtree has more than ${maxEntries} entries: too large to decouple`)
        if (seen.has(e.ino)) continue
        seen.add(e.ino)
        const inode = ns.cache.getInode(e.ino)
        if (!inode) continue
        inodes.push([e.ino, encodeInode(inode)])
        if (isDir(inode.mode)) queue.push(e.ino)
      }
      if (page.length < SNAPSHOT_PAGE) break
      after = page[page.length - 1].name
    }
  }
  let nextIno = 0
  const c = ns.claims.byRoot.get(root)
  if (c) {
    const end = c.inoStart + c.count
    nextIno = Math.max(c.inoStart, c.used)
    // Claims stored before the used mark was kept: what the subtree and the strays hold.
    for (const [ino] of inodes) if (ino >= nextIno && ino < end) nextIno = ino + 1
    for (const ino of ns.strays.members) if (ino >= nextIno && ino < end) nextIno = ino + 1
  }
  return { snapshot: { dentries, inodes }, nextIno }
}
