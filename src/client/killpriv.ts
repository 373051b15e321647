// Clearing the setgid bit when someone outside the file's group writes it.
//
// Linux drops S_ISGID on write, truncate and chown by a caller without
// CAP_FSETID when the file is group-executable, or when the caller is not in
// the file's group (setattr_should_drop_sgid). The FUSE kernel module does the
// first case itself but, unless the filesystem takes over all of it
// (handle_killpriv_v2), not the second: a setgid file without group execute
// keeps its bit. So the client does that case. Whether the caller is in the
// group and holds CAP_FSETID is read from /proc/<pid>/status, once per such
// write: only a setgid, not group-executable file written by someone whose
// own group differs gets that far.

import { promises as fsp } from 'node:fs'
import { S_ISGID, type Caller } from '../common/types'

const S_IXGRP = 0o010
const CAP_FSETID = 4

/** Cheap first test: might this caller's change drop the setgid bit of a file with this mode and group? */
export function mayDropSgid (mode: number, gid: number, caller: Caller | undefined): caller is Caller {
  return caller !== undefined && (mode & (S_ISGID | S_IXGRP)) === S_ISGID && caller.gid !== gid && caller.uid !== 0
}

/** The caller's supplementary groups and whether it holds CAP_FSETID; null when /proc cannot tell. */
async function credentials (pid: number): Promise<{ groups: number[], fsetid: boolean } | null> {
  if (!Number.isInteger(pid) || pid <= 0) return null
  try {
    const text = await fsp.readFile(`/proc/${pid}/status`, 'latin1')
    const groups = /^Groups:\s*(.*)$/m.exec(text)?.[1].trim().split(/\s+/).filter(Boolean).map(Number) ?? []
    const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(text)?.[1]
    const fsetid = capEff !== undefined && (BigInt('0x' + capEff) & (1n << BigInt(CAP_FSETID))) !== 0n
    return { groups, fsetid }
  } catch {
    return null
  }
}

/**
 * The mode the file should have after this caller writes, truncates or
 * chowns it: without S_ISGID when Linux would drop it and the kernel did not.
 * Call only when mayDropSgid said so.
 */
export async function modeAfterChange (mode: number, gid: number, caller: Caller): Promise<number> {
  const cred = await credentials(caller.pid)
  // Unknown (the process is gone, or not local): only the caller's own group counts.
  if (cred && (cred.fsetid || cred.groups.includes(gid))) return mode
  return mode & ~S_ISGID
}
