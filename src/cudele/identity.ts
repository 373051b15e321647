// Where a mount keeps its client journals (local_persist) and who it is as
// the owner of decoupled subtrees. Both stay the same for the same source and
// mountpoint, so a client that crashed finds its journal again and the
// server recognises it as the owner when it mounts again.

import { createHash, randomBytes } from 'crypto'
import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'

export interface ClientIdentity {
  journalDir: string
  owner: string
}

export function defaultJournalRoot (): string {
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state')
  return path.join(base, 'cudele')
}

/** The identity of a mount of `source` at `mountpoint` (made on first use). */
export function clientIdentity (source: string, mountpoint: string, journalDir?: string): ClientIdentity {
  const dir = journalDir ?? path.join(defaultJournalRoot(), createHash('sha256').update(`${source}\0${path.resolve(mountpoint)}`).digest('hex').slice(0, 16))
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = path.join(dir, 'owner')
  let owner = ''
  try { owner = fs.readFileSync(file, 'utf8').trim() } catch {}
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(owner)) {
    owner = `${os.hostname().replace(/[^A-Za-z0-9_-]/g, '').slice(0, 20) || 'client'}-${randomBytes(6).toString('hex')}`
    fs.writeFileSync(file, owner + '\n', { mode: 0o600 })
  }
  return { journalDir: dir, owner }
}
