// The protocol's methods of Cudele's subtree policies: what a client's
// router asks the server's registry (src/cudele/remote.ts → src/server/cudele.ts),
// and the administrator's journal apply. A session acts for one owner: every
// method naming an owner refuses another one with EPERM.

import type { ErrnoName } from '../common/errors'
import type { ClaimGrant, PolicyEntry } from '../cudele/registry'
import type { PolicyCounts, PolicyInfo } from '../cudele/service'
import { arg, mutation, query, reply } from './method'
import { CHANGE_ERRNOS, SESSION_ERRNOS } from './namespace'
import { bool, bytes, listOf, str, uint } from './shape'
import { ino, objectWrites, segments } from './vocabulary'

/** What a merge of client journal segments did. */
export interface MergeResult {
  applied: number
  /** Events whose target was gone (the decoupled client's view was older). */
  skipped: number
  /** The owner's journal is merged up to this segment. */
  mergedSeq: number
}

/** Policies go through the monitor: a proposal may be refused (EACCES), wait (EAGAIN) or not fit (EFBIG, ENOSPC). */
const MONITOR_ERRNOS: readonly ErrnoName[] = ['EACCES', 'EAGAIN', 'EFBIG', 'ENOSPC']
const OWNER_ERRNOS: readonly ErrnoName[] = [...SESSION_ERRNOS, 'EPERM']

export const cudeleMethods = {
  'cudele.policyOf': query({
    doc: 'The policy in force for a directory, where it is set and who owns the subtree',
    args: [arg('dir', ino)],
    reply: reply<PolicyInfo>(),
    errnos: [...SESSION_ERRNOS, 'ENOENT']
  }),
  'cudele.policyEpoch': query({
    doc: 'The policymap epoch and how many decoupled and strong/local policies exist (a cheap "is there anything to do?")',
    args: [],
    reply: reply<PolicyCounts>(),
    errnos: SESSION_ERRNOS
  }),
  'cudele.setPolicy': query({
    doc: "Check and commit a directory's policies.yml (by: the owner the session acts for)",
    args: [arg('dir', ino), arg('yaml', str), arg('path', str), arg('by', str)],
    reply: reply<PolicyEntry>(),
    errnos: [...OWNER_ERRNOS, 'ENOENT', 'ENOTDIR', 'EBUSY', ...MONITOR_ERRNOS]
  }),
  'cudele.claim': query({
    doc: 'Decouple the subtree holding a directory for an owner (or hand an owner its claim back): a snapshot and a range of inode numbers',
    args: [arg('dir', ino), arg('owner', str)],
    reply: reply<ClaimGrant>(),
    errnos: [...OWNER_ERRNOS, 'ENOENT', 'ENOTDIR', 'EBUSY', 'EAGAIN', 'EFBIG', 'ENOSPC', 'EROFS']
  }),
  'cudele.merge': mutation({
    doc: "Merge client journal segments [seq, bytes] into the global namespace (replayed after a reconnect like any change, recognised if done)",
    args: [arg('root', ino), arg('owner', str), arg('segments', segments)],
    reply: reply<MergeResult>(),
    errnos: [...CHANGE_ERRNOS, 'EPERM']
  }),
  'cudele.release': query({
    doc: 'Let go of a decoupled subtree',
    args: [arg('root', ino), arg('owner', str)],
    reply: reply<null>(),
    errnos: [...OWNER_ERRNOS, 'EROFS']
  }),
  'cudele.putSegment': query({
    doc: 'global_persist: keep a client journal segment (at most 64 MiB) in the object store until it is merged',
    args: [arg('root', ino), arg('owner', str), arg('seq', uint), arg('bytes', bytes)],
    reply: reply<null>(),
    errnos: [...OWNER_ERRNOS, 'ENOSPC', 'EROFS']
  }),
  'cudele.dropSegments': query({
    doc: 'Drop the stored segments up to a sequence number (they are merged)',
    args: [arg('root', ino), arg('owner', str), arg('up to', uint)],
    reply: reply<null>(),
    errnos: [...OWNER_ERRNOS, 'EROFS']
  }),
  'cudele.storedSegments': query({
    doc: "The stored segments [seq, bytes] of an owner's subtree (after a crash of the client)",
    args: [arg('root', ino), arg('owner', str)],
    reply: reply<Array<[number, Uint8Array]>>(),
    errnos: OWNER_ERRNOS
  }),
  'data.write': query({
    doc: 'Data of files in a decoupled subtree: straight to the data pool, no MDS event',
    args: [arg('writes', objectWrites), arg('durable', bool)],
    reply: reply<null>(),
    errnos: [...SESSION_ERRNOS, 'ENOSPC', 'EFBIG', 'EROFS']
  }),
  'journal.apply': query({
    doc: "An administrator's merge (`cudele journal apply --connect`): the events of client journal segments applied blindly, no session needed",
    args: [arg('segments', listOf(bytes))],
    reply: reply<{ applied: number, skipped: number }>(),
    errnos: ['EROFS', 'ENOSPC']
  })
} as const
