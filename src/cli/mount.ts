// `cudele mount <mountpoint> [--store DIR] [--background]`
//
// Foreground: serves the mount until it is unmounted or the process gets
// SIGINT/SIGTERM, then flushes everything and releases the store. One line on
// stdout says when the mount is ready. --background starts the same command as
// a detached child and returns once the child reports ready (or failed).

import { spawn } from 'child_process'
import * as fs from 'fs'
import * as os from 'os'
import * as path from 'path'
import { DB_FILE, openStore } from '../store'
import { startConnected } from '../app/connected'
import { startEmbedded, type EmbeddedOptions } from '../app/embedded'
import { registerMount, unregisterMount } from './registry'

export interface MountArgs extends EmbeddedOptions {
  background: boolean
  logFile?: string
  /** Mount as a client of a cudele server instead of embedded. */
  connect?: string
}

const READY_MESSAGE = 'ready'

export async function mountCommand (args: MountArgs, argv: string[]): Promise<number> {
  if (args.background) return startBackground(args, argv)
  return serveForeground(args)
}

async function serveForeground (args: MountArgs): Promise<number> {
  const mountpoint = path.resolve(args.mountpoint)
  const source = args.connect ?? path.resolve(args.store)
  const fs0 = args.connect
    ? await startConnected({ connect: args.connect, mountpoint, allowOther: args.allowOther, fuseOptions: args.fuseOptions })
    : await startEmbedded({ ...args, mountpoint })
  registerMount({ pid: process.pid, mountpoint, source, since: new Date().toISOString() })
  console.log(`cudele: mounted ${source} at ${mountpoint} (${args.connect ? 'client' : 'embedded'}, pid ${process.pid})`)
  if (process.send) process.send({ [READY_MESSAGE]: true })

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      console.error(`cudele: ${signal} again: exiting without waiting`)
      process.exit(130)
    }
    stopping = true
    console.error(`cudele: ${signal}: unmounting ${mountpoint}`)
    fs0.mount.unmount()
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGHUP', () => stop('SIGHUP'))

  await fs0.mount.exited
  await fs0.shutdown()
  unregisterMount(mountpoint)
  console.error(args.connect
    ? `cudele: unmounted ${mountpoint}; its data is flushed to ${args.connect}`
    : `cudele: unmounted ${mountpoint}; store ${path.resolve(args.store)} is flushed and closed`)
  return 0
}

/** Start `cudele mount ...` detached and wait until it is serving. */
async function startBackground (args: MountArgs, argv: string[]): Promise<number> {
  const defaultLog = args.connect
    ? path.join(os.tmpdir(), `cudele-mount-${Buffer.from(path.resolve(args.mountpoint)).toString('base64url')}.log`)
    : path.join(args.store, 'mount.log')
  const logFile = path.resolve(args.logFile ?? defaultLog)
  // A new store must start from an empty directory, and the log goes into it
  // by default: make the store first.
  if (!args.connect && !fs.existsSync(path.join(args.store, DB_FILE))) await (await openStore(path.resolve(args.store), { create: true })).close()
  fs.mkdirSync(path.dirname(logFile), { recursive: true })
  const log = fs.openSync(logFile, 'a')
  const childArgs = argv.filter(a => a !== '--background' && a !== '-b' && a !== '--background=true')
  const child = spawn(process.execPath, [...process.execArgv, path.join(__dirname, '..', '..', '..', 'bin', 'cudele.js'), ...childArgs], {
    detached: true,
    stdio: ['ignore', log, log, 'ipc']
  })
  fs.closeSync(log)
  return await new Promise<number>(resolve => {
    const fail = (why: string): void => {
      console.error(`cudele: mount failed: ${why} (log: ${logFile})`)
      resolve(1)
    }
    child.once('message', (msg: Record<string, unknown>) => {
      if (msg[READY_MESSAGE]) {
        console.log(`cudele: mounted ${args.connect ?? path.resolve(args.store)} at ${path.resolve(args.mountpoint)} (background, pid ${child.pid}, log ${logFile})`)
        child.disconnect()
        child.unref()
        resolve(0)
      }
    })
    child.once('exit', code => fail(`the mount process exited with code ${code}${tail(logFile)}`))
    child.once('error', err => fail(err.message))
  })
}

function tail (file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n')
    return lines.length > 0 ? `: ${lines.slice(-3).join(' | ')}` : ''
  } catch {
    return ''
  }
}
