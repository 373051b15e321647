// Who may change a map. A map's writers are a list of proposer names (null:
// anyone). mon and mon.* are always allowed: the monitor's own administrative
// changes (and an operator's way back in after locking a map down).

import { FsError, fsError } from '../common/errors'
import { MAX_WRITER_NAME_CHARS, MAX_WRITERS } from './options'

export function isAdministrative (name: string): boolean {
  return name === 'mon' || name.startsWith('mon.')
}

/** null when `by` may change the map; otherwise the EACCES to reject with, naming the map and its writers. */
export function accessDenied (map: string, writers: readonly string[] | null, by: string): FsError | null {
  if (writers === null || isAdministrative(by) || writers.includes(by)) return null
  const names = writers.length === 0 ? 'none' : writers.join(', ')
  return fsError('EACCES', `${by} may not change map ${map}: its writers are ${names} (and mon, mon.*)`)
}

/** The checked, de-duplicated writers list, or EINVAL. */
export function checkWriters (map: string, writers: string[] | null): readonly string[] | null {
  if (writers === null) return null
  if (!Array.isArray(writers)) throw fsError('EINVAL', `map ${map}: writers must be a list of names or null`)
  const unique = [...new Set(writers)]
  if (unique.length > MAX_WRITERS) throw fsError('EINVAL', `map ${map}: ${unique.length} writers, above the limit of ${MAX_WRITERS}`)
  for (const w of unique) {
    if (typeof w !== 'string' || w.length === 0 || w.length > MAX_WRITER_NAME_CHARS) {
      throw fsError('EINVAL', `map ${map}: writer ${JSON.stringify(w)} must be a name of 1 to ${MAX_WRITER_NAME_CHARS} characters`)
    }
  }
  return unique
}
