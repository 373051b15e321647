// The classes a runtime serves: it follows the monitor's classmap, loads
// each current version's script from pool `classes`, and installs new
// versions (Malacology §4.1: service metadata travels through the monitor,
// never through local files).
//
// Install writes classes/<name>.<version> (create exclusive, so a version
// number means one source forever), then proposes the classmap change. The
// monitor pushes the new epoch to every subscriber before the proposal
// resolves, and onClassmap switches synchronously (the script is read with
// a synchronous local read), so every call that starts after install()
// resolved finds the new version here.

import { createHash } from 'crypto'
import { FsError } from '../../common/errors'
import { LuaError, LuaPool, LuaScript } from '../../lua'
import type { JsonValue, MapState, MonitorApi, Proposer } from '../../mon/types'
import { LocalReads, ObjectStore, StoreError } from '../types'
import {
  badClassName, CLASS_POOL, ClassEntry, classObjectName, CLASSMAP, isMethodName, MAX_CLASS_SOURCE_BYTES, parseClassmap
} from './classmap'

/**
 * The store a runtime needs: the interface and synchronous reads (a new
 * class version is read the moment the classmap changes); dir, when the
 * store has one, names it, so runtimes on one store share their workers' readers.
 */
export type ClassStore = ObjectStore & LocalReads & { readonly dir?: string }

export interface ClassInfo {
  name: string
  version: number
  object: string
  sha256: string
  methods: string[]
  /** Set when this runtime cannot use the installed version (its script object is missing or does not match). */
  error?: string
}

/** A class version as calls use it. */
export interface LoadedClass {
  name: string
  entry: ClassEntry
  /** null when the script could not be loaded (see error). */
  script: LuaScript | null
  methods: Set<string>
  error: string | null
}

export class ClassCatalog {
  private readonly classes = new Map<string, LoadedClass>()
  private readonly unsubscribe: () => void
  private classmapEpoch = 0
  private installs: Promise<unknown> = Promise.resolve()

  constructor (private readonly store: ClassStore, private readonly monitor: MonitorApi, private readonly lua: LuaPool, private readonly hostId: string) {
    this.unsubscribe = monitor.subscribe(CLASSMAP, 0, state => this.onClassmap(state))
  }

  /** The current version of a class. */
  get (name: string): LoadedClass | undefined {
    return this.classes.get(name)
  }

  /**
   * Install a new version of a class: check it (it must compile, its top
   * level must run within budget, and it must return a table of methods),
   * store it as classes/<name>.<version>, then commit the classmap change.
   * Resolves with the version once every subscriber has it.
   */
  async install (name: string, source: string, by: Proposer): Promise<number> {
    const bad = badClassName(name)
    if (bad !== null) throw new FsError('EINVAL', bad)
    if (typeof source !== 'string') throw new FsError('EINVAL', `class ${name}: the source must be a string`)
    const data = Buffer.from(source, 'utf8')
    if (data.length > MAX_CLASS_SOURCE_BYTES) throw new FsError('EFBIG', `class ${name}: the script is ${data.length} bytes, more than ${MAX_CLASS_SOURCE_BYTES}`)
    const chunkname = `${name}.lua`
    let exports
    try {
      exports = await this.lua.inspect({ name: chunkname, version: 'install', source }, this.hostId)
    } catch (err) {
      if (err instanceof LuaError && (err.kind === 'syntax' || err.kind === 'runtime' || err.kind === 'missing')) {
        throw new LuaError('syntax', err.reason, { errno: 'EINVAL', script: chunkname })
      }
      throw err
    }
    if (!exports.returnedTable) {
      throw new LuaError('syntax', `${chunkname}: a class script must return a table of its methods (return { incr = incr, ... })`, { errno: 'EINVAL' })
    }
    const methods = exports.functions.filter(isMethodName)
    if (methods.length === 0) throw new LuaError('syntax', `${chunkname}: the returned table holds no methods (functions with names like incr or get_all)`, { errno: 'EINVAL' })
    const sha256 = createHash('sha256').update(data).digest('hex')
    const run = this.installs.then(async () => await this.commitInstall(name, data, sha256, methods, by))
    this.installs = run.catch(() => {})
    return await run
  }

  private async commitInstall (name: string, data: Buffer, sha256: string, methods: string[], by: Proposer): Promise<number> {
    await this.store.createPool(CLASS_POOL)
    for (let attempt = 1; ; attempt++) {
      const current = parseClassmap(this.monitor.get(CLASSMAP).value).classes.get(name)?.version ?? 0
      let version = current + 1
      // An object past the current version is left over from an install that
      // never reached the map (or one racing us): never overwrite, take the next number.
      for (;;) {
        try {
          await this.store.submit([{
            pool: CLASS_POOL,
            name: classObjectName(name, version),
            ops: [{ op: 'create', exclusive: true }, { op: 'writeFull', data: Buffer.from(data) }, { op: 'setXattr', name: 'sha256', value: Buffer.from(sha256) }]
          }], { durable: true })
          break
        } catch (err) {
          if ((err as StoreError).errno !== 'EEXIST' || version > current + 1000) throw err
          version++
        }
      }
      const entry: ClassEntry = { version, object: classObjectName(name, version), sha256, methods }
      try {
        const state = await this.monitor.propose(CLASSMAP, cur => {
          const value = (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) ? cur : {}
          const have = parseClassmap(value).classes.get(name)?.version ?? 0
          if (have >= version) throw new FsError('EAGAIN', `class ${name}: version ${have} was installed meanwhile`)
          value[name] = entry as unknown as JsonValue
          return value
        }, by)
        // Subscribers heard of the epoch before propose resolved; this covers a monitor that tells them later.
        if (state.epoch > this.classmapEpoch) this.onClassmap(state)
        return version
      } catch (err) {
        if ((err as FsError).code === 'EAGAIN' && attempt < 5) continue
        throw err
      }
    }
  }

  /** The classes this runtime serves, by name. */
  list (): ClassInfo[] {
    return [...this.classes.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map(c => ({ name: c.name, ...c.entry, methods: [...c.entry.methods], ...(c.error !== null ? { error: c.error } : {}) }))
  }

  private onClassmap (state: MapState): void {
    if (state.epoch <= this.classmapEpoch) return
    this.classmapEpoch = state.epoch
    const { classes, bad } = parseClassmap(state.value)
    for (const name of bad) this.monitor.log('warn', 'cls', `classmap epoch ${state.epoch}: entry ${name} is malformed and ignored`)
    for (const name of [...this.classes.keys()]) if (!classes.has(name)) this.classes.delete(name)
    for (const [name, entry] of classes) {
      const have = this.classes.get(name)
      if (have !== undefined && have.entry.version === entry.version && have.entry.sha256 === entry.sha256) continue
      this.classes.set(name, this.loadClass(name, entry))
    }
  }

  /** Read a class's script from the classes pool (synchronously: a subscriber switches before the proposal resolves). */
  private loadClass (name: string, entry: ClassEntry): LoadedClass {
    const cls: LoadedClass = { name, entry, script: null, methods: new Set(entry.methods), error: null }
    try {
      const bytes = this.store.readSync(CLASS_POOL, entry.object, 0, MAX_CLASS_SOURCE_BYTES + 1)
      if (bytes === null) {
        cls.error = `its script object ${CLASS_POOL}/${entry.object} is missing`
      } else if (createHash('sha256').update(bytes).digest('hex') !== entry.sha256) {
        cls.error = `its script object ${CLASS_POOL}/${entry.object} does not match the classmap's sha256`
      } else {
        cls.script = { name: `${name}.lua`, version: entry.version, source: Buffer.from(bytes).toString('utf8') }
      }
    } catch (err) {
      cls.error = `its script object ${CLASS_POOL}/${entry.object} cannot be read: ${(err as Error).message}`
    }
    if (cls.error !== null) this.monitor.log('error', 'cls', `class ${name} v${entry.version} cannot be used: ${cls.error}`)
    return cls
  }

  /** Stop following the classmap, after any install under way. */
  async close (): Promise<void> {
    this.unsubscribe()
    await this.installs
  }
}
