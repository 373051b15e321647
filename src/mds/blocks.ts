// How many blocks a file's data takes: st_blocks, what du adds up.
//
// A file's data is its stripe objects; a sparse file has objects only for the
// stripes written, each as long as its last written byte. The inode keeps the
// sum (objectBlocks per object), so stat costs nothing: each data commit
// changes it by what its writes do to the lengths of the objects they touch.
// An object's length comes from the store, or, while an earlier commit to it
// is still on its way there, from what that commit will leave.

import type { ObjectOp, ObjectWrite, LocalStore } from '../store/types'
import { UNKNOWN_BLOCKS } from './inode'
import { objectBlocks, DATA_POOL, dataObjectPrefix, parseDataObject } from '../common/layout'

/** Objects listed per store read when a file's blocks are counted from scratch. */
const COUNT_LIST_LIMIT = 512

interface PendingLength {
  bytes: number
  /** Commits not yet in the store that wrote this object. */
  commits: number
}

export class BlockCounter {
  private readonly pending = new Map<string, PendingLength>()

  constructor (private readonly store: LocalStore) {}

  /** Bytes an object holds once every commit already counted has reached the store. */
  private length (name: string): number {
    const p = this.pending.get(name)
    if (p) return p.bytes
    return this.store.statSync(DATA_POOL, name)?.size ?? 0
  }

  /** Count a file from its objects (a file not counted before). */
  countStored (ino: number): number {
    let blocks = 0
    let after: string | undefined
    for (;;) {
      const names = this.store.listSync(DATA_POOL, { prefix: dataObjectPrefix(ino), after, limit: COUNT_LIST_LIMIT })
      for (const name of names) if (parseDataObject(name)?.ino === ino) blocks += objectBlocks(this.length(name))
      if (names.length < COUNT_LIST_LIMIT) break
      after = names[names.length - 1]
    }
    return blocks
  }

  /**
   * The block count after `writes` (data objects of inode ino), from the count
   * before. The lengths they leave count for later commits until `settled`
   * is called (when they are in the store, or failed).
   */
  commit (ino: number, before: number, writes: ObjectWrite[]): { blocks: number, settled: () => void } {
    let blocks = before === UNKNOWN_BLOCKS ? this.countStored(ino) : before
    const touched: string[] = []
    for (const w of writes) {
      if (w.pool !== DATA_POOL) continue
      const old = this.length(w.name)
      const bytes = lengthAfter(old, w.ops)
      blocks += objectBlocks(bytes) - objectBlocks(old)
      const p = this.pending.get(w.name)
      if (p) {
        p.bytes = bytes
        p.commits++
      } else {
        this.pending.set(w.name, { bytes, commits: 1 })
      }
      touched.push(w.name)
    }
    const settled = (): void => {
      for (const name of touched) {
        const p = this.pending.get(name)
        if (p && --p.commits === 0) this.pending.delete(name)
      }
    }
    return { blocks: Math.max(0, blocks), settled }
  }
}

/** An object's length after ops, from its length before (ops as the store applies them). */
function lengthAfter (bytes: number, ops: ObjectOp[]): number {
  for (const op of ops) {
    switch (op.op) {
      case 'write': bytes = Math.max(bytes, op.offset + op.data.length); break
      case 'writeFull': bytes = op.data.length; break
      case 'append': bytes += op.data.length; break
      case 'truncate': bytes = op.size; break
      case 'remove': bytes = 0; break
      default: break
    }
  }
  return bytes
}
