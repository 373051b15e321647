// fsck: check a store's namespace and data for consistency.
//
// The namespace is checked as the MDS sees it: the metadata store with the
// journal replayed on top (through the MDS's own replay path), so a store that
// crashed with an untrimmed journal is judged by what it will look like when
// mounted. Checks:
//   - every dentry points at a live inode of the dentry's type;
//   - every directory is reached once, its parent pointer, link count
//     (2 + subdirectories) and entry count are right;
//   - every file's link count equals the dentries that point at it;
//   - inodes no dentry reaches have no links left and wait in the stray set
//     (pending removal); any other is an orphan;
//   - data objects belong to live regular files (or strays) and lie within
//     the file's size; metadata objects are ones cudele knows;
//   - a file's block count (st_blocks) is what its data objects hold;
//   - the journal decodes and replays cleanly.
// Repair works on a trimmed store (the journal folded in first) and writes
// fixes directly: dangling dentries removed, counts corrected, orphan inodes
// linked into /lost+found, stray data and bytes past EOF dropped.

import { keyToU64, nameToBytes, u64Key } from '../common/codec'
import type { ObjectWrite, LocalStore } from '../store/types'
import { encodeDentry } from './dentry'
import { encodeInode, type Inode } from './inode'
import { objectBlocks, DATA_POOL, METADATA_POOL, parseDataObject, STRIPE_BYTES } from '../common/layout'
import { dirObject, FORMAT_OBJECT, INODES_PER_SHARD, inodeShardObject, INOTABLE_OBJECT, JOURNAL_HEADER, parseJournalObject, SESSIONS_OBJECT, STRAY_OBJECT, CLAIMS_OBJECT } from './layout'
import type { Mds } from './mds'
import { type Ino, isDir, isReg, ROOT_INO, S_IFMT } from '../common/types'

export interface FsckProblem {
  kind: 'dangling-dentry' | 'type-mismatch' | 'dir-multiply-linked' | 'dir-parent' | 'dir-nlink' | 'dir-nentries' |
  'nlink' | 'orphan-inode' | 'stray-with-links' | 'orphan-data' | 'data-beyond-size' | 'blocks' | 'orphan-object' | 'journal' | 'missing-root'
  message: string
  /** The store writes that fix it (repair). */
  fix: ObjectWrite[]
}

export interface FsckReport {
  problems: FsckProblem[]
  directories: number
  files: number
  inodes: number
  dataObjects: number
  pendingRemoval: number
  /** Data objects of files in decoupled subtrees, not merged yet. */
  pendingMerge: number
  journalEvents: number
}

const PAGE = 1024

export interface FsckOptions {
  /** Directory where repair links unreachable inodes (as `#<ino>`). */
  lostFound?: Ino
}

export function checkNamespace (mds: Mds, store: LocalStore, opts: FsckOptions = {}): FsckReport {
  const cache = mds.ns.cache
  const problems: FsckProblem[] = []
  const report: FsckReport = { problems, directories: 0, files: 0, inodes: 0, dataObjects: 0, pendingRemoval: 0, pendingMerge: 0, journalEvents: mds.journal.stats.replayed }
  for (const p of mds.replayProblems()) problems.push({ kind: 'journal', message: p, fix: [] })

  const root = cache.getInode(ROOT_INO)
  if (!root || !isDir(root.mode)) {
    problems.push({ kind: 'missing-root', message: 'the root directory (inode 1) is missing', fix: [] })
    return report
  }

  // Walk the namespace from the root, counting links.
  const links = new Map<Ino, number>()
  const seenDirs = new Set<Ino>([ROOT_INO])
  const queue: Ino[] = [ROOT_INO]
  while (queue.length > 0) {
    const dirIno = queue.shift() as Ino
    const dir = cache.getInode(dirIno) as Inode
    report.directories++
    let subdirs = 0
    let entries = 0
    let after: string | null = null
    for (;;) {
      const page = mds.listDir(dirIno, after, PAGE)
      for (const e of page) {
        entries++
        const where = `${dirIno}/${JSON.stringify(e.name)}`
        const inode = cache.getInode(e.ino)
        if (!inode) {
          problems.push({
            kind: 'dangling-dentry',
            message: `dentry ${where} points at inode ${e.ino}, which does not exist`,
            fix: [{ pool: METADATA_POOL, name: dirObject(dirIno), ops: [{ op: 'omapRemove', keys: [nameToBytes(e.name)] }] }]
          })
          continue
        }
        if ((inode.mode & S_IFMT) !== e.type) {
          problems.push({
            kind: 'type-mismatch',
            message: `dentry ${where} says type ${e.type.toString(8)}, inode ${e.ino} has ${(inode.mode & S_IFMT).toString(8)}`,
            fix: [{ pool: METADATA_POOL, name: dirObject(dirIno), ops: [{ op: 'omapSet', entries: [[nameToBytes(e.name), encodeDentry(e.ino, inode.mode & S_IFMT)]] }] }]
          })
        }
        links.set(e.ino, (links.get(e.ino) ?? 0) + 1)
        if (isDir(inode.mode)) {
          subdirs++
          if (seenDirs.has(e.ino)) {
            problems.push({ kind: 'dir-multiply-linked', message: `directory inode ${e.ino} is reached again at ${where}`, fix: [] })
            continue
          }
          seenDirs.add(e.ino)
          if (inode.parent !== dirIno) {
            problems.push({
              kind: 'dir-parent',
              message: `directory inode ${e.ino} at ${where} records parent ${inode.parent}`,
              fix: [inodeFix({ ...inode, parent: dirIno })]
            })
          }
          queue.push(e.ino)
        } else {
          report.files++
        }
      }
      if (page.length < PAGE) break
      after = page[page.length - 1].name
    }
    if (dir.nlink !== 2 + subdirs) {
      problems.push({ kind: 'dir-nlink', message: `directory inode ${dirIno} has nlink ${dir.nlink}, expected ${2 + subdirs}`, fix: [inodeFix({ ...dir, nlink: 2 + subdirs })] })
    }
    if (dir.nentries !== entries) {
      problems.push({ kind: 'dir-nentries', message: `directory inode ${dirIno} counts ${dir.nentries} entries, has ${entries}`, fix: [inodeFix({ ...dir, nentries: entries })] })
    }
  }

  // Every inode in the table (and in the replayed journal).
  const strays = mds.ns.strays.members
  /** Files that count blocks (not 0, not unknown), and what their data objects hold. */
  const countedBlocks = new Map<Ino, Inode>()
  const storedBlocks = new Map<Ino, number>()
  const checkInode = (ino: Ino, inode: Inode): void => {
    report.inodes++
    const n = links.get(ino) ?? 0
    if (n === 0 && ino !== ROOT_INO) {
      if (inode.nlink === 0 && strays.has(ino)) {
        report.pendingRemoval++
      } else if (inode.nlink === 0) {
        problems.push({ kind: 'orphan-inode', message: `inode ${ino} has no links and is not waiting for removal`, fix: [strayFix(ino)] })
      } else {
        const fix: ObjectWrite[] = opts.lostFound === undefined ? [] : [{
          pool: METADATA_POOL,
          name: dirObject(opts.lostFound),
          ops: [{ op: 'omapSet', entries: [[nameToBytes(`#${ino}`), encodeDentry(ino, inode.mode & S_IFMT)]] }]
        }]
        problems.push({ kind: 'orphan-inode', message: `inode ${ino} (nlink ${inode.nlink}) is not reachable from the root`, fix })
      }
      return
    }
    if (!isDir(inode.mode) && inode.nlink !== n) {
      problems.push({ kind: 'nlink', message: `inode ${ino} has nlink ${inode.nlink}, ${n} dentries point at it`, fix: [inodeFix({ ...inode, nlink: n })] })
    }
    if (inode.blocks > 0) countedBlocks.set(ino, inode)
  }
  const seenInodes = new Set<Ino>()
  for (const [ino, inode] of cache.unstoredInodes()) {
    seenInodes.add(ino)
    if (inode) checkInode(ino, inode)
  }
  forEachStoredInode(store, ino => {
    if (seenInodes.has(ino)) return
    const inode = cache.getInode(ino)
    if (inode) checkInode(ino, inode)
  })
  for (const ino of strays) {
    const inode = cache.getInode(ino)
    if (inode && inode.nlink > 0) problems.push({ kind: 'stray-with-links', message: `inode ${ino} is in the stray set but has ${inode.nlink} links`, fix: [] })
  }

  // Data objects.
  let after: string | undefined
  for (;;) {
    const names = store.listSync(DATA_POOL, { after, limit: PAGE })
    for (const name of names) {
      report.dataObjects++
      const p = parseDataObject(name)
      const inode = p ? cache.getInode(p.ino) : null
      const remove: ObjectWrite = { pool: DATA_POOL, name, ops: [{ op: 'remove' }] }
      if (p && !inode && mds.ns.claims.rangeOf(p.ino)) {
        // Data of a file a decoupled client created and has not merged yet.
        report.pendingMerge++
        continue
      }
      if (!p || !inode || !isReg(inode.mode)) {
        problems.push({ kind: 'orphan-data', message: `data object ${name} belongs to no regular file`, fix: [remove] })
        continue
      }
      const st = store.statSync(DATA_POOL, name)
      const objEnd = p.stripe * STRIPE_BYTES + (st?.size ?? 0)
      // What the object holds once a repair has cut what lies past the size.
      const kept = Math.max(0, Math.min(st?.size ?? 0, inode.size - p.stripe * STRIPE_BYTES))
      if (inode.blocks >= 0) storedBlocks.set(p.ino, (storedBlocks.get(p.ino) ?? 0) + objectBlocks(kept))
      if (objEnd > inode.size) {
        const keep = inode.size - p.stripe * STRIPE_BYTES
        problems.push({
          kind: 'data-beyond-size',
          message: `data object ${name} reaches byte ${objEnd}, past the size ${inode.size} of inode ${p.ino}`,
          fix: [keep <= 0 ? remove : { pool: DATA_POOL, name, ops: [{ op: 'truncate', size: keep }] }]
        })
      }
    }
    if (names.length < PAGE) break
    after = names[names.length - 1]
  }
  const checkBlocks = (inode: Inode): void => {
    const stored = storedBlocks.get(inode.ino) ?? 0
    if (inode.blocks === stored) return
    problems.push({
      kind: 'blocks',
      message: `inode ${inode.ino} counts ${inode.blocks} blocks, its data objects hold ${stored}`,
      fix: [inodeFix({ ...inode, blocks: stored })]
    })
  }
  for (const inode of countedBlocks.values()) checkBlocks(inode)
  for (const ino of storedBlocks.keys()) {
    const inode = cache.getInode(ino)
    if (inode && inode.blocks === 0 && (links.get(ino) ?? 0) > 0) checkBlocks(inode)
  }

  // Metadata objects cudele does not know.
  const known = new Set([FORMAT_OBJECT, INOTABLE_OBJECT, JOURNAL_HEADER, STRAY_OBJECT, SESSIONS_OBJECT, CLAIMS_OBJECT])
  after = undefined
  for (;;) {
    const names = store.listSync(METADATA_POOL, { after, limit: PAGE })
    for (const name of names) {
      // cj.*: client journals kept in the store (global_persist) until merged; staged.*: a merge in progress.
      if (known.has(name) || name.startsWith('inodes.') || name.startsWith('cj.') || name.startsWith('staged.cj.') || parseJournalObject(name) !== null) continue
      const m = /^([0-9a-f]+)\.00000000$/.exec(name)
      if (m) {
        const ino = parseInt(m[1], 16)
        const inode = cache.getInode(ino)
        if (inode && isDir(inode.mode)) continue
        if (inode === null && strays.has(ino)) continue
        problems.push({ kind: 'orphan-object', message: `directory object ${name} belongs to no directory`, fix: [{ pool: METADATA_POOL, name, ops: [{ op: 'remove' }] }] })
        continue
      }
      problems.push({ kind: 'orphan-object', message: `metadata object ${name} is not part of the filesystem`, fix: [] })
    }
    if (names.length < PAGE) break
    after = names[names.length - 1]
  }
  return report
}

function forEachStoredInode (store: LocalStore, fn: (ino: Ino) => void): void {
  let after: string | undefined
  for (;;) {
    const shards = store.listSync(METADATA_POOL, { prefix: 'inodes.', after, limit: 256 })
    for (const shard of shards) {
      let key: Uint8Array | undefined
      for (;;) {
        const rows = store.omapListSync(METADATA_POOL, shard, { after: key, limit: INODES_PER_SHARD })
        for (const r of rows) fn(keyToU64(r.key))
        if (rows.length < INODES_PER_SHARD) break
        key = rows[rows.length - 1].key
      }
    }
    if (shards.length < 256) break
    after = shards[shards.length - 1]
  }
}

function inodeFix (inode: Inode): ObjectWrite {
  return { pool: METADATA_POOL, name: inodeShardObject(inode.ino), ops: [{ op: 'omapSet', entries: [[u64Key(inode.ino), encodeInode(inode)]] }] }
}

function strayFix (ino: Ino): ObjectWrite {
  return { pool: METADATA_POOL, name: STRAY_OBJECT, ops: [{ op: 'omapSet', entries: [[u64Key(ino), new Uint8Array(0)]] }] }
}

