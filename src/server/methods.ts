// The RPC methods a server answers: sessions, namespace operations, data,
// capabilities (src/protocol/namespace.ts lists them). Monitor, status and
// class methods are in admin.ts and classes.ts, Cudele's in cudele.ts.
//
// Mutating requests carry a header (tid, firstUnsafe, replay; see
// src/protocol/method.ts). A replay of a request the MDS already carried out
// (its Request marker is in the journal, or this server remembers it) is
// answered without doing it again.

import { fsError } from '../common/errors'
import { CAP_BUFFER, CAP_CACHE, CAP_POLICY_XATTR, type CapPolicy, DEFAULT_CAP_POLICY, parseCapPolicy } from '../common/caps'
import type { Ino } from '../common/types'
import { DATA_POOL } from '../common/layout'
import { type RequestContext, requestContext } from '../mds'
import { type ArgsOf, type MutationName, onNotify, type ProtocolServer, type QueryName, type ReplyOf } from '../protocol'
import type { RpcConnection } from '../rpc'
import type { CudeleServer } from './server'
import type { Session } from './sessions'

const O_ACCMODE = 3
const O_RDONLY = 0
/** Most entries (or data object names) one readdir (data.list) answers, and how many when the client asks for 0. */
const LIST_MAX = 4096
const LIST_DEFAULT = 512
/** Most bytes one data.read answers. */
const READ_MAX_BYTES = 64 * 1024 * 1024

export function sessionOf (conn: RpcConnection): Session {
  const s = conn.data as Session | undefined
  if (!s) throw fsError('ENOTCONN', 'open a session first (session.open)')
  if (s.conn !== conn) throw fsError('ESTALE', `session ${s.id} (${s.name}) has ended or moved to another connection`)
  return s
}

export function capPolicyOf (srv: CudeleServer, ino: Ino): CapPolicy {
  const text = srv.mds.xattrOrNull(ino, CAP_POLICY_XATTR)
  if (!text) return DEFAULT_CAP_POLICY
  try {
    return parseCapPolicy(text.toString())
  } catch {
    return DEFAULT_CAP_POLICY
  }
}

/** Before another session looks at an inode, whoever buffers writes to it must flush them. */
async function flushOthers (srv: CudeleServer, s: Session, ino: Ino): Promise<void> {
  const buffered = srv.caps.holders(ino).some(([sid, g]) => sid !== s.id && (g.bits & CAP_BUFFER) !== 0)
  if (!buffered) return
  await srv.caps.acquire(ino, s.id, CAP_CACHE, capPolicyOf(srv, ino))
  srv.caps.release(ino, s.id, CAP_CACHE)
}

type Answer<R> = R | Promise<R>

/** The directories and inodes a change touches, for interference checks (Cudele's interfere: block). */
interface Touches { dirs: Ino[], inodes: Ino[] }
const NOTHING: Touches = { dirs: [], inodes: [] }

/** How the server carries out one mutating method. */
interface Change<M extends MutationName> {
  touches?: (args: ArgsOf<M>) => Touches
  /** The answer to a replay the MDS already carried out (its first reply was lost). */
  replayed: (s: Session, args: ArgsOf<M>) => ReplyOf<M>
  /** The directory an inode entered and the inode (for the registry's claimed subtrees); run only while it tracks some. */
  entered?: (args: ArgsOf<M>, result: ReplyOf<M>) => [dir: Ino, ino: Ino | undefined]
  run: (s: Session, args: ArgsOf<M>, req: RequestContext) => Answer<ReplyOf<M>>
}

function grantOf (srv: CudeleServer, ino: Ino, caps: number): { caps: number, leaseMs: number } {
  const policy = capPolicyOf(srv, ino)
  return { caps, leaseMs: policy.kind === 'lease' ? policy.ms : 0 }
}

export function registerMethods (ps: ProtocolServer, srv: CudeleServer): void {
  const mds = srv.mds

  ps.handle('session.open', ([name, reclaim, owner], conn) => {
    if (name.length === 0) throw fsError('EINVAL', 'session.open needs a client name (1..128 characters)')
    if (owner !== undefined && owner !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(owner)) throw fsError('EINVAL', 'an owner name is 1..64 letters, digits, - or _')
    const { session, resumed } = srv.sessions.open(name, conn)
    session.owner = owner ?? name
    conn.data = session
    session.peer = conn.remoteVersion ? `${conn.remoteVersion.name} pid ${conn.remoteVersion.pid}` : ''
    if (!resumed && reclaim) srv.reclaim(session, reclaim)
    srv.log('info', `session ${session.id} (${name}) ${resumed ? 'reconnected' : 'opened'} from ${session.peer || 'a client'}`)
    return {
      session: session.id,
      resumed,
      bootId: srv.bootId,
      heartbeatMs: srv.sessions.options.heartbeatMs,
      timeoutMs: srv.sessions.options.timeoutMs
    }
  })

  ps.handle('session.close', (_args, conn) => {
    const s = sessionOf(conn)
    mds.forgetClient(s.name)
    srv.sessions.end(s, 'closed by its client')
    conn.data = undefined
    return null
  })

  onNotify(srv.rpc, 'hb', (_args, conn) => {
    const s = conn.data as Session | undefined
    if (s && s.conn === conn) srv.sessions.touch(s)
  })

  // ---- reads ----

  const read = <M extends QueryName>(method: M, fn: (s: Session, args: ArgsOf<M>) => Answer<ReplyOf<M>>): void => {
    ps.handle(method, (args, conn) => {
      const s = sessionOf(conn)
      srv.sessions.touch(s)
      return fn(s, args)
    })
  }

  read('lookup', async (s, [parent, name]) => {
    const a = mds.lookupOrNull(parent, name)
    if (a) await flushOthers(srv, s, a.ino)
    return a ? mds.getattr(a.ino) : mds.lookup(parent, name)
  })
  read('lookupOrNull', async (s, [parent, name]) => {
    const a = mds.lookupOrNull(parent, name)
    if (!a) return null
    await flushOthers(srv, s, a.ino)
    return mds.getattr(a.ino)
  })
  read('getattr', async (s, [ino]) => {
    await flushOthers(srv, s, ino)
    return mds.getattr(ino)
  })
  read('readlink', (_s, [ino]) => mds.readlink(ino))
  read('readdir', (_s, [ino, after, limit]) => mds.readdir(ino, after, Math.min(limit || LIST_DEFAULT, LIST_MAX)))
  read('getxattr', (_s, [ino, name]) => mds.getxattr(ino, name))
  read('listxattr', (_s, [ino]) => mds.listxattr(ino))
  read('statfs', () => mds.statfs())
  read('sync', async (_s, [durable, unstored]) => { await mds.sync(durable, unstored === true); return null })
  read('data.read', (_s, [object, offset, length]) => srv.store.readSync(DATA_POOL, object, offset, Math.min(length, READ_MAX_BYTES)))
  read('data.list', (_s, [prefix, after, limit]) => srv.store.listSync(DATA_POOL, { prefix, after: after ?? undefined, limit: Math.min(limit || LIST_DEFAULT, LIST_MAX) }))

  // ---- changes ----

  const mutation = <M extends MutationName>(method: M, change: Change<M>): void => {
    ps.handleMutation(method, (args, conn, head) => {
      const s = sessionOf(conn)
      srv.sessions.touch(s)
      const { tid, firstUnsafe, replay } = head
      mds.setCompletedFloor(s.name, firstUnsafe)
      srv.volatileCompleted.setFloor(s.name, firstUnsafe)
      // Below the client's floor: it was told this request is safe (a stale copy in a request log).
      if (replay && (mds.requestCompleted(s.name, tid) || srv.volatileCompleted.has(s.name, tid) || tid < mds.completedFloor(s.name))) {
        srv.afterRequest(s, tid, false, false)
        return change.replayed(s, args)
      }
      const t = change.touches?.(args) ?? NOTHING
      srv.subtrees.checkWrite(s.owner, t.dirs, t.inodes)
      // A replayed create asks for the inode number it had (the client's later requests name it).
      const req = requestContext(s.name, tid, typeof replay === 'number' ? replay : 0)
      const result = change.run(s, args, req)
      if (change.entered && srv.subtrees.tracksClaimedInodes && !(result instanceof Promise)) {
        const [dir, ino] = change.entered(args, result)
        srv.subtrees.noted(dir, ino)
      }
      // A request that journaled nothing (open, release, a no-op) is remembered
      // for this server's lifetime only, so a replay after a reconnect is not done twice.
      if (!req.journaled) srv.volatileCompleted.add(s.name, tid)
      srv.afterRequest(s, tid, req.journaled, req.unstored)
      return result
    })
  }

  const inDir = (a: readonly [Ino, ...unknown[]]): Touches => ({ dirs: [a[0]], inodes: [] })
  const onInode = (a: readonly [Ino, ...unknown[]]): Touches => ({ dirs: [], inodes: [a[0]] })
  const created = (s: Session, [parent, name]: readonly [Ino, string, ...unknown[]]) => mds.lookup(parent, name)
  const createdIn = (a: readonly [Ino, ...unknown[]], attr: { ino: Ino }): [Ino, Ino] => [a[0], attr.ino]
  const none = (): null => null

  // ---- open files and capabilities ----

  mutation('open', {
    replayed: (s, [ino]) => ({ attr: mds.getattr(ino), ...grantOf(srv, ino, srv.caps.held(ino, s.id)) }),
    run: async (s, [ino, flags]) => {
      const write = (flags & O_ACCMODE) !== O_RDONLY
      const grant = await srv.caps.acquire(ino, s.id, write ? CAP_CACHE | CAP_BUFFER : CAP_CACHE, capPolicyOf(srv, ino))
      const attr = mds.open(ino)
      s.opens.set(ino, (s.opens.get(ino) ?? 0) + 1)
      return { attr, ...grantOf(srv, ino, grant.bits) }
    }
  })
  mutation('release', {
    replayed: none,
    run: (s, [ino]) => {
      const n = s.opens.get(ino) ?? 0
      if (n === 0) throw fsError('EBADF', `inode ${ino} is not open in session ${s.id}`)
      if (n === 1) s.opens.delete(ino)
      else s.opens.set(ino, n - 1)
      mds.release(ino)
      // The last close gives back what the session held on the file.
      if (n === 1) srv.caps.release(ino, s.id, CAP_CACHE | CAP_BUFFER)
      return null
    }
  })
  read('caps.acquire', async (s, [ino, bits]) => {
    const grant = await srv.caps.acquire(ino, s.id, bits & (CAP_CACHE | CAP_BUFFER), capPolicyOf(srv, ino))
    return grantOf(srv, ino, grant.bits)
  })
  read('caps.release', (s, [ino, bits]) => {
    srv.caps.release(ino, s.id, bits)
    return null
  })

  // ---- the namespace ----

  mutation('mknod', { touches: inDir, replayed: created, entered: createdIn, run: (_s, [parent, name, mode, rdev, caller], req) => mds.mknod(parent, name, mode, rdev, caller, req) })
  mutation('mkdir', { touches: inDir, replayed: created, entered: createdIn, run: (_s, [parent, name, mode, caller], req) => mds.mkdir(parent, name, mode, caller, req) })
  mutation('symlink', { touches: inDir, replayed: created, entered: createdIn, run: (_s, [parent, name, target, caller], req) => mds.symlink(parent, name, target, caller, req) })
  mutation('link', {
    touches: ([ino, newParent]) => ({ dirs: [newParent], inodes: [ino] }),
    replayed: (_s, [, newParent, newName]) => mds.lookup(newParent, newName),
    entered: ([ino, newParent]) => [newParent, ino],
    run: (_s, [ino, newParent, newName], req) => mds.link(ino, newParent, newName, req)
  })
  mutation('unlink', { touches: inDir, replayed: none, run: (_s, [parent, name], req) => { mds.unlink(parent, name, req); return null } })
  mutation('rmdir', { touches: inDir, replayed: none, run: (_s, [parent, name], req) => { mds.rmdir(parent, name, req); return null } })
  mutation('rename', {
    touches: ([parent, , newParent]) => ({ dirs: [parent, newParent], inodes: [] }),
    replayed: none,
    entered: ([, , newParent, newName]) => [newParent, mds.lookupOrNull(newParent, newName)?.ino],
    run: (_s, [parent, name, newParent, newName, flags], req) => { mds.rename(parent, name, newParent, newName, flags, req); return null }
  })
  mutation('setattr', { touches: onInode, replayed: (_s, [ino]) => mds.getattr(ino), run: (_s, [ino, change], req) => mds.setattr(ino, change, req) })
  mutation('setxattr', {
    touches: onInode,
    replayed: none,
    run: (_s, [ino, name, value, flags], req) => { mds.setxattr(ino, name, Buffer.from(value), flags, req); return null }
  })
  mutation('removexattr', { touches: onInode, replayed: none, run: (_s, [ino, name], req) => { mds.removexattr(ino, name, req); return null } })
  mutation('cudele.merge', {
    // Done already: the claim says how far the owner's journal is merged.
    replayed: (_s, [root, , segments]) => ({ applied: 0, skipped: 0, mergedSeq: Math.max(mds.claimOf(root)?.mergedSeq ?? 0, ...segments.map(([seq]) => seq)) }),
    run: (s, [root, owner, segments], req) => {
      if (owner !== s.owner) throw fsError('EPERM', `this session acts for owner ${s.owner}, not ${owner}`)
      return srv.subtrees.merge(root, s.owner, segments, req)
    }
  })

  // ---- data ----

  mutation('data.commit', {
    touches: onInode,
    replayed: (_s, [ino]) => mds.getattr(ino),
    run: (_s, [ino, writes, change, durable], req) => {
      for (const w of writes) {
        if (w.pool !== DATA_POOL) throw fsError('EINVAL', `data.commit writes only to the ${DATA_POOL} pool`)
      }
      const { attr, committed } = mds.commitData(ino, writes, change, durable, req)
      // The reply means "the data is in the store": other clients read it from there.
      return committed.then(() => attr)
    }
  })
}
