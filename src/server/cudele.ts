// RPC methods for Cudele's subtree policies (src/protocol/cudele.ts lists
// them): the server side of src/cudele/remote.ts.

import { policyCounts, policyInfo, checkDataWrites, readStoredSegments, dropStoredSegments } from '../cudele/local'
import { segmentObject } from '../cudele/service'
import { fsError } from '../common/errors'
import { METADATA_POOL } from '../common/layout'
import { decodeEvents, isMarkerEvent } from '../mds'
import type { ArgsOf, ProtocolServer, QueryName, ReplyOf } from '../protocol'
import { sessionOf } from './methods'
import type { CudeleServer } from './server'

const SEGMENT_MAX_BYTES = 64 * 1024 * 1024

export function registerCudele (ps: ProtocolServer, srv: CudeleServer): void {
  const reg = srv.subtrees
  const withSession = <M extends QueryName>(method: M, fn: (args: ArgsOf<M>, owner: string) => ReplyOf<M> | Promise<ReplyOf<M>>): void => {
    ps.handle(method, (args, conn) => {
      const s = sessionOf(conn)
      srv.sessions.touch(s)
      return fn(args, s.owner)
    })
  }
  const ownerMatches = (owner: string, sessionOwner: string): string => {
    if (owner !== sessionOwner) throw fsError('EPERM', `this session acts for owner ${sessionOwner}, not ${owner}`)
    return sessionOwner
  }

  withSession('cudele.policyOf', ([dir]) => policyInfo(reg, dir))
  withSession('cudele.policyEpoch', () => policyCounts(reg))
  withSession('cudele.setPolicy', async ([dir, yaml, path, by], owner) => {
    try {
      return await reg.setPolicy(dir, yaml, path, ownerMatches(by, owner))
    } catch (err) {
      srv.log('warn', `policy for ${path} refused: ${(err as Error).message}`)
      throw err
    }
  })
  withSession('cudele.claim', ([dir, owner], sessionOwner) => reg.claim(dir, ownerMatches(owner, sessionOwner)))
  withSession('cudele.release', async ([root, owner], sessionOwner) => { await reg.letGo(root, ownerMatches(owner, sessionOwner)); return null })
  withSession('cudele.putSegment', async ([root, owner, seq, bytes], sessionOwner) => {
    ownerMatches(owner, sessionOwner)
    if (bytes.length > SEGMENT_MAX_BYTES) throw fsError('EINVAL', 'a journal segment is bytes, at most 64 MiB')
    await srv.store.submit([{ pool: METADATA_POOL, name: segmentObject(owner, root, seq), ops: [{ op: 'writeFull', data: bytes }] }], { durable: true })
    return null
  })
  withSession('cudele.dropSegments', async ([root, owner, upTo], sessionOwner) => {
    await dropStoredSegments(srv.store, ownerMatches(owner, sessionOwner), root, upTo)
    return null
  })
  withSession('cudele.storedSegments', ([root, owner], sessionOwner) => readStoredSegments(srv.store, ownerMatches(owner, sessionOwner), root))
  // `cudele journal apply --connect`: events of a client journal file, applied blindly (an administrator's merge).
  ps.handle('journal.apply', async ([segments]) => {
    const events = segments.flatMap(b => decodeEvents(b)).filter(ev => !isMarkerEvent(ev))
    const r = srv.mds.applyClientEvents(events, true)
    await srv.mds.sync(true)
    srv.log('info', `journal apply: ${r.applied} events applied, ${r.skipped} skipped`)
    return { applied: r.applied, skipped: r.skipped }
  })
  withSession('data.write', async ([writes, durable]) => {
    checkDataWrites(writes)
    await srv.store.submit(writes, { durable })
    return null
  })
}
