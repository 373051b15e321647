// The RPC methods a server answers: sessions, namespace operations, data,
// capabilities. (Monitor, class and status methods are in admin.ts.)
//
// Mutating requests carry [tid, firstUnsafe, replay, ...args]: the client's
// transaction id, the oldest transaction it still keeps for replay, and
// whether this is a replay after a reconnect. A replay of a request the MDS
// already carried out (its Request marker is in the journal) is answered
// without doing it again.

import { fsError } from '../common/errors'
import { CAP_BUFFER, CAP_CACHE, CAP_POLICY_XATTR, type CapPolicy, DEFAULT_CAP_POLICY, parseCapPolicy } from '../common/caps'
import type { Ino, SetAttr } from '../common/types'
import { DATA_POOL } from '../common/layout'
import { type RequestContext, requestContext } from '../mds'
import type { RpcConnection, RpcServer } from '../rpc'
import type { ObjectWrite } from '../store/types'
import type { CudeleServer } from './server'
import type { Session } from './sessions'

const O_ACCMODE = 3
const O_RDONLY = 0

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

type Mutation = (s: Session, args: any[], req: RequestContext) => unknown

/** What a replayed request that was already carried out answers (its original reply was lost). */
function replayAnswer (srv: CudeleServer, s: Session, method: string, args: any[]): unknown {
  const mds = srv.mds
  switch (method) {
    case 'open': {
      const policy = capPolicyOf(srv, args[0] as Ino)
      return { attr: mds.getattr(args[0] as Ino), caps: srv.caps.held(args[0] as Ino, s.id), leaseMs: policy.kind === 'lease' ? policy.ms : 0 }
    }
    case 'mknod': case 'mkdir': case 'symlink': return mds.lookup(args[0] as Ino, args[1] as string)
    case 'link': return mds.lookup(args[1] as Ino, args[2] as string)
    case 'setattr': return mds.getattr(args[0] as Ino)
    case 'data.commit': return mds.getattr(args[0] as Ino)
    default: return null
  }
}

export function registerMethods (rpc: RpcServer, srv: CudeleServer): void {
  const mds = srv.mds

  rpc.handle('session.open', (args, conn) => {
    const [name, reclaim, owner] = args as [string, { opens?: Array<[Ino, number]>, caps?: Array<[Ino, number]> } | undefined, string | undefined]
    if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw fsError('EINVAL', 'session.open needs a client name (1..128 characters)')
    if (owner !== undefined && owner !== null && (typeof owner !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(owner))) throw fsError('EINVAL', 'an owner name is 1..64 letters, digits, - or _')
    const { session, resumed } = srv.sessions.open(name, conn)
    session.owner = owner ?? name
    conn.data = session
    session.peer = conn.remoteVersion ? `${conn.remoteVersion.name} pid ${conn.remoteVersion.pid}` : ''
    if (!resumed) srv.reclaim(session, reclaim)
    srv.log('info', `session ${session.id} (${name}) ${resumed ? 'reconnected' : 'opened'} from ${session.peer || 'a client'}`)
    return {
      session: session.id,
      resumed,
      bootId: srv.bootId,
      heartbeatMs: srv.sessions.options.heartbeatMs,
      timeoutMs: srv.sessions.options.timeoutMs
    }
  })

  rpc.handle('session.close', (_args, conn) => {
    const s = sessionOf(conn)
    mds.forgetClient(s.name)
    srv.sessions.end(s, 'closed by its client')
    conn.data = undefined
    return null
  })

  rpc.onNotify('hb', (_args, conn) => {
    const s = conn.data as Session | undefined
    if (s && s.conn === conn) srv.sessions.touch(s)
  })

  // ---- reads ----

  const read = (name: string, fn: (s: Session, args: any[]) => unknown): void => {
    rpc.handle(name, (args, conn) => {
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
  read('readdir', (_s, [ino, after, limit]) => mds.readdir(ino, after, Math.min(Number(limit) || 512, 4096)))
  read('getxattr', (_s, [ino, name]) => mds.getxattr(ino, name))
  read('listxattr', (_s, [ino]) => mds.listxattr(ino))
  read('statfs', () => mds.statfs())
  read('sync', (_s, [durable, unstreamed]) => mds.sync(durable === true, unstreamed === true))
  read('data.read', async (s, [object, offset, length]) => {
    return srv.store.readSync(DATA_POOL, String(object), Number(offset), Math.min(Number(length), 64 * 1024 * 1024))
  })
  read('data.list', (_s, [prefix, after, limit]) => srv.store.listSync(DATA_POOL, { prefix: String(prefix), after: after ?? undefined, limit: Math.min(Number(limit) || 512, 4096) }))

  /** The directories and inodes a change touches, for interference checks (Cudele's interfere: block). */
  const touches = (name: string, a: any[]): { dirs: Ino[], inodes: Ino[] } => {
    switch (name) {
      case 'mknod': case 'mkdir': case 'symlink': case 'unlink': case 'rmdir': return { dirs: [a[0]], inodes: [] }
      case 'link': return { dirs: [a[1]], inodes: [a[0]] }
      case 'rename': return { dirs: [a[0], a[2]], inodes: [] }
      case 'setattr': case 'setxattr': case 'removexattr': case 'data.commit': return { dirs: [], inodes: [a[0]] }
      default: return { dirs: [], inodes: [] }
    }
  }

  const mutation = (name: string, fn: Mutation): void => {
    rpc.handle(name, (args, conn) => {
      const s = sessionOf(conn)
      srv.sessions.touch(s)
      const [tid, firstUnsafe, replay, ...rest] = args as [number, number, boolean | number, ...any[]]
      if (!Number.isSafeInteger(tid) || tid <= 0) throw fsError('EINVAL', `${name}: bad transaction id`)
      mds.setCompletedFloor(s.name, Number(firstUnsafe) || 0)
      srv.volatileCompleted.setFloor(s.name, Number(firstUnsafe) || 0)
      // Below the client's floor: it was told this request is safe (a stale copy in a request log).
      if (replay && (mds.requestCompleted(s.name, tid) || srv.volatileCompleted.has(s.name, tid) || tid < mds.completedFloor(s.name))) {
        srv.afterRequest(s, tid, false, false)
        return replayAnswer(srv, s, name, rest)
      }
      const t = touches(name, rest)
      srv.subtrees.checkWrite(s.owner, t.dirs, t.inodes)
      // A replayed create asks for the inode number it had (the client's later requests name it).
      const req = requestContext(s.name, tid, typeof replay === 'number' ? replay : 0)
      const result = fn(s, rest, req)
      if (t.dirs.length > 0) srv.subtrees.noted(name, rest, result)
      // A request that journaled nothing (open, release, a no-op) is remembered
      // for this server's lifetime only, so a replay after a reconnect is not done twice.
      if (!req.journaled) srv.volatileCompleted.add(s.name, tid)
      srv.afterRequest(s, tid, req.journaled, req.unstored)
      return result
    })
  }

  // ---- open files and capabilities ----

  mutation('open', async (s, [ino, flags]) => {
    const write = (Number(flags) & O_ACCMODE) !== O_RDONLY
    const policy = capPolicyOf(srv, ino)
    const grant = await srv.caps.acquire(ino, s.id, write ? CAP_CACHE | CAP_BUFFER : CAP_CACHE, policy)
    const attr = mds.open(ino)
    s.opens.set(ino, (s.opens.get(ino) ?? 0) + 1)
    return { attr, caps: grant.bits, leaseMs: policy.kind === 'lease' ? policy.ms : 0 }
  })
  mutation('release', (s, [ino]) => {
    const n = s.opens.get(ino) ?? 0
    if (n === 0) throw fsError('EBADF', `inode ${ino} is not open in session ${s.id}`)
    if (n === 1) s.opens.delete(ino)
    else s.opens.set(ino, n - 1)
    mds.release(ino)
    // The last close gives back what the session held on the file.
    if (n === 1) srv.caps.release(ino, s.id, CAP_CACHE | CAP_BUFFER)
    return null
  })
  read('caps.acquire', async (s, [ino, bits]) => {
    const policy = capPolicyOf(srv, ino)
    const grant = await srv.caps.acquire(ino, s.id, Number(bits) & (CAP_CACHE | CAP_BUFFER), policy)
    return { caps: grant.bits, leaseMs: policy.kind === 'lease' ? policy.ms : 0 }
  })
  read('caps.release', (s, [ino, bits]) => {
    srv.caps.release(ino, s.id, Number(bits))
    return null
  })

  // ---- mutations ----

  mutation('mknod', (_s, [parent, name, mode, rdev, caller], req) => mds.mknod(parent, name, mode, rdev, caller, req))
  mutation('mkdir', (_s, [parent, name, mode, caller], req) => mds.mkdir(parent, name, mode, caller, req))
  mutation('symlink', (_s, [parent, name, target, caller], req) => mds.symlink(parent, name, target, caller, req))
  mutation('link', (_s, [ino, newParent, newName], req) => mds.link(ino, newParent, newName, req))
  mutation('unlink', (_s, [parent, name], req) => mds.unlink(parent, name, req))
  mutation('rmdir', (_s, [parent, name], req) => mds.rmdir(parent, name, req))
  mutation('rename', (_s, [parent, name, newParent, newName, flags], req) => mds.rename(parent, name, newParent, newName, flags, req))
  mutation('setattr', (_s, [ino, change], req) => mds.setattr(ino, change as SetAttr, req))
  mutation('setxattr', (_s, [ino, name, value, flags], req) => mds.setxattr(ino, name, Buffer.from(value as Uint8Array), flags, req))
  mutation('removexattr', (_s, [ino, name], req) => mds.removexattr(ino, name, req))
  mutation('cudele.merge', (s, [root, owner, segments], req) => {
    if (owner !== s.owner) throw fsError('EPERM', `this session acts for owner ${s.owner}, not ${String(owner)}`)
    return srv.subtrees.merge(Number(root), s.owner, segments as Array<[number, Uint8Array]>, req)
  })
  mutation('data.commit', (_s, [ino, writes, change, durable], req) => {
    for (const w of writes as ObjectWrite[]) {
      if (w.pool !== DATA_POOL) throw fsError('EINVAL', `data.commit writes only to the ${DATA_POOL} pool`)
    }
    const { attr, committed } = mds.commitData(ino, writes as ObjectWrite[], change as SetAttr, durable === true, req)
    // The reply means "the data is in the store": other clients read it from there.
    return committed.then(() => attr)
  })
}
