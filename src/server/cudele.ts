// RPC methods for Cudele's subtree policies: the server side of
// src/cudele/remote.ts.

import { policyCounts, policyInfo, checkDataWrites, readStoredSegments, dropStoredSegments } from '../cudele/local'
import { segmentObject } from '../cudele/service'
import { fsError } from '../common/errors'
import { METADATA_POOL } from '../common/layout'
import { decodeEvents, isMarkerEvent } from '../mds'
import type { RpcServer } from '../rpc'
import type { ObjectWrite } from '../store/types'
import { sessionOf } from './methods'
import type { CudeleServer } from './server'

const SEGMENT_MAX_BYTES = 64 * 1024 * 1024

export function registerCudele (rpc: RpcServer, srv: CudeleServer): void {
  const reg = srv.subtrees
  const withSession = (name: string, fn: (args: any[], owner: string) => unknown): void => {
    rpc.handle(name, (args, conn) => {
      const s = sessionOf(conn)
      srv.sessions.touch(s)
      return fn(args, s.owner)
    })
  }
  const ownerMatches = (owner: unknown, sessionOwner: string): string => {
    if (owner !== sessionOwner) throw fsError('EPERM', `this session acts for owner ${sessionOwner}, not ${String(owner)}`)
    return sessionOwner
  }

  withSession('cudele.policyOf', ([dir]) => policyInfo(reg, Number(dir)))
  withSession('cudele.policyEpoch', () => policyCounts(reg))
  withSession('cudele.setPolicy', async ([dir, yaml, path, by], owner) => {
    try {
      return await reg.setPolicy(Number(dir), String(yaml), String(path), ownerMatches(by, owner))
    } catch (err) {
      srv.log('warn', `policy for ${String(path)} refused: ${(err as Error).message}`)
      throw err
    }
  })
  withSession('cudele.claim', ([dir, owner], sessionOwner) => reg.claim(Number(dir), ownerMatches(owner, sessionOwner)))
  withSession('cudele.release', async ([root, owner], sessionOwner) => { await reg.letGo(Number(root), ownerMatches(owner, sessionOwner)); return null })
  withSession('cudele.putSegment', async ([root, owner, seq, bytes], sessionOwner) => {
    ownerMatches(owner, sessionOwner)
    if (!(bytes instanceof Uint8Array) || bytes.length > SEGMENT_MAX_BYTES) throw fsError('EINVAL', 'a journal segment is bytes, at most 64 MiB')
    await srv.store.submit([{ pool: METADATA_POOL, name: segmentObject(owner as string, Number(root), Number(seq)), ops: [{ op: 'writeFull', data: bytes }] }], { durable: true })
    return null
  })
  withSession('cudele.dropSegments', async ([root, owner, upTo], sessionOwner) => {
    await dropStoredSegments(srv.store, ownerMatches(owner, sessionOwner), Number(root), Number(upTo))
    return null
  })
  withSession('cudele.storedSegments', ([root, owner], sessionOwner) => readStoredSegments(srv.store, ownerMatches(owner, sessionOwner), Number(root)))
  // `cudele journal apply --connect`: events of a client journal file, applied blindly (an administrator's merge).
  rpc.handle('journal.apply', async ([segments]) => {
    if (!Array.isArray(segments)) throw fsError('EINVAL', 'journal.apply needs a list of segments')
    const events = (segments as Uint8Array[]).flatMap(b => decodeEvents(b)).filter(ev => !isMarkerEvent(ev))
    const r = srv.mds.applyClientEvents(events, true)
    await srv.mds.sync(true)
    srv.log('info', `journal apply: ${r.applied} events applied, ${r.skipped} skipped`)
    return r
  })
  withSession('data.write', async ([writes, durable]) => {
    checkDataWrites(writes as ObjectWrite[])
    await srv.store.submit(writes as ObjectWrite[], { durable: durable === true })
    return null
  })
}
