// The cudele command line.

import yargs from 'yargs'
import { BENCH_DESCRIPTION, benchBuilder, benchCommand, type BenchArgs } from './bench'
import { DEFAULT_ADDRESS } from '../rpc'
import { classCall, classInstall, classList } from './classes'
import { fsck, FSCK_FAILED } from './fsck'
import { journalApply, journalExport, journalImport, journalInspect } from './journal'
import { policyCheck, policySet, policyShow, syncOrMerge } from './policy'
import { serveCommand } from './serve'
import { logCommand, statusCommand } from './status'
import { mountCommand } from './mount'
import { umountCommand } from './umount'

function fail (err: unknown): number {
  // Store errors carry their errno name in errno, Node's in code.
  const e = err as { message?: string, code?: string, errno?: unknown }
  console.error(`cudele: ${e?.message ?? String(err)}`)
  return (e?.code ?? e?.errno) === 'EBUSY' ? 16 : 1
}

export async function main (argv: string[]): Promise<void> {
  let exitCode = 0
  const run = (p: Promise<number>): Promise<void> => p.then(c => { exitCode = c }, err => { exitCode = fail(err) })
  await yargs(argv)
    .scriptName('cudele')
    .strict()
    .demandCommand(1, 'give a command; see --help')
    .command('mount <mountpoint>', 'mount a cudele filesystem (embedded: the store lives in this process)', y => y
      .positional('mountpoint', { type: 'string', demandOption: true, describe: 'directory to mount on' })
      .option('store', { type: 'string', default: './cudele-data', describe: 'store directory (created if missing)' })
      .option('background', { alias: 'b', type: 'boolean', default: false, describe: 'return once the mount is ready; the server runs on' })
      .option('log', { type: 'string', describe: 'log file of a background server (default STORE/mount.log)' })
      .option('cache-inodes', { type: 'number', describe: 'inodes the MDS keeps in memory' })
      .option('cache-dentries', { type: 'number', describe: 'dentries the MDS keeps in memory' })
      .option('entry-timeout', { type: 'number', describe: 'seconds the kernel may cache names' })
      .option('attr-timeout', { type: 'number', describe: 'seconds the kernel may cache attributes' })
      .option('allow-other', { type: 'boolean', describe: 'let other users use the mount (default: yes when root)' })
      .option('o', { type: 'array', string: true, describe: 'extra FUSE mount options' })
      .option('connect', { type: 'string', describe: 'mount as a client of the cudele server at this address (unix:PATH or tcp:HOST:PORT) instead of embedded' }),
    a => run(mountCommand({
      mountpoint: a.mountpoint as string,
      store: a.store,
      background: a.background,
      logFile: a.log,
      cacheInodes: a['cache-inodes'],
      cacheDentries: a['cache-dentries'],
      entryTimeout: a['entry-timeout'],
      attrTimeout: a['attr-timeout'],
      allowOther: a['allow-other'],
      fuseOptions: a.o as string[] | undefined,
      connect: a.connect
    }, argv)))
    .command('serve', 'serve a store to clients (mount --connect, the library, status)', y => y
      .option('store', { type: 'string', default: './cudele-data', describe: 'store directory (created if missing)' })
      .option('listen', { type: 'string', default: DEFAULT_ADDRESS, describe: 'unix:PATH or tcp:HOST:PORT (loopback only unless --allow-remote)' })
      .option('allow-remote', { type: 'boolean', default: false, describe: 'allow listening on a non-loopback TCP address' })
      .option('session-timeout', { type: 'number', describe: 'evict a client silent this many ms (default 30000)' })
      .option('heartbeat', { type: 'number', describe: 'how often clients send heartbeats, ms (default 1000)' })
      .option('proposal-interval', { type: 'number', describe: 'monitor proposal batching interval, ms (default 1)' })
      .option('cache-inodes', { type: 'number', describe: 'inodes the MDS keeps in memory' })
      .option('cache-dentries', { type: 'number', describe: 'dentries the MDS keeps in memory' })
      .option('trim-interval', { type: 'number', describe: 'how often the MDS writes its dirty metadata to the store, ms (default 1000); strong subtrees without stream (durability none/local) lose what a crash finds untrimmed' }),
    a => run(serveCommand({
      store: a.store,
      listen: a.listen,
      allowRemote: a['allow-remote'],
      sessions: {
        ...(a['session-timeout'] !== undefined ? { timeoutMs: a['session-timeout'] } : {}),
        ...(a.heartbeat !== undefined ? { heartbeatMs: a.heartbeat } : {})
      },
      proposalIntervalMs: a['proposal-interval'],
      cacheInodes: a['cache-inodes'],
      cacheDentries: a['cache-dentries'],
      trimIntervalMs: a['trim-interval']
    })))
    .command('status', 'ranks, sessions, map epochs and the recent cluster log of a server', y => y
      .option('connect', { type: 'string', default: DEFAULT_ADDRESS, describe: 'server address' })
      .option('json', { type: 'boolean', default: false }),
    a => run(statusCommand(a.connect, a.json)))
    .command('log', 'the cluster log of a server', y => y
      .option('connect', { type: 'string', default: DEFAULT_ADDRESS, describe: 'server address' })
      .option('limit', { alias: 'n', type: 'number', default: 100 })
      .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'keep printing new entries' }),
    a => run(logCommand(a.connect, a.limit, a.follow)))
    .command('umount <mountpoint>', 'unmount, and wait until the server has flushed and exited', y => y
      .positional('mountpoint', { type: 'string', demandOption: true })
      .option('lazy', { alias: 'l', type: 'boolean', default: false, describe: 'detach now even if files are open' }),
    a => run(umountCommand(a.mountpoint as string, a.lazy)))
    .command('policy <action> <path> [file]', 'check a policies.yml, or show or set the policy of a directory in a mounted cudele filesystem', y => y
      .positional('action', { choices: ['check', 'show', 'set'] as const, demandOption: true, describe: 'check FILE | show DIR | set DIR FILE' })
      .positional('path', { type: 'string', demandOption: true, describe: 'a policies.yml (check) or a directory (show, set)' })
      .positional('file', { type: 'string', describe: 'the policies.yml to set (set)' })
      .option('json', { type: 'boolean', default: false }),
    a => run((async () => {
      if (a.action === 'check') return policyCheck(a.path as string)
      if (a.action === 'show') return policyShow(a.path as string, a.json)
      if (!a.file) throw new Error('policy set needs DIR and FILE')
      return policySet(a.path as string, a.file)
    })()))
    .command('sync <dir>', 'merge the decoupled subtree holding DIR into the global namespace now (weak consistency)', y => y
      .positional('dir', { type: 'string', demandOption: true }),
    a => run(Promise.resolve().then(() => syncOrMerge(a.dir as string, false))))
    .command('merge <dir>', 'merge the decoupled subtree holding DIR, also with invisible consistency', y => y
      .positional('dir', { type: 'string', demandOption: true }),
    a => run(Promise.resolve().then(() => syncOrMerge(a.dir as string, true))))
    .command('class <action> [args..]', 'object classes (Lua methods that run in the store): install NAME FILE | list | call POOL OBJECT CLASS.METHOD [INPUT]', y => y
      .positional('action', { choices: ['install', 'list', 'call'] as const, demandOption: true })
      .positional('args', { type: 'string', array: true, default: [] })
      .option('connect', { type: 'string', default: DEFAULT_ADDRESS, describe: 'server address' })
      .option('json', { type: 'boolean', default: false }),
    a => run((async () => {
      const rest = (a.args ?? []) as string[]
      if (a.action === 'list') return await classList(a.connect, a.json)
      if (a.action === 'install') {
        if (rest.length !== 2) throw new Error('class install needs NAME FILE')
        return await classInstall(a.connect, rest[0], rest[1])
      }
      if (rest.length < 3 || rest.length > 4) throw new Error('class call needs POOL OBJECT CLASS.METHOD [INPUT]')
      return await classCall(a.connect, rest[0], rest[1], rest[2], rest[3] ?? '')
    })()))
    .command('journal <action> [args..]', 'the event journal: inspect SRC | export SRC OUT | import FILE --store DIR | apply FILE (--store DIR | --connect ADDR); SRC is a client journal file or --store DIR', y => y
      .positional('action', { choices: ['inspect', 'export', 'import', 'apply'] as const, demandOption: true })
      .positional('args', { type: 'string', array: true, default: [] })
      .option('store', { type: 'string', describe: 'a store directory (its MDS journal; the store must not be in use)' })
      .option('connect', { type: 'string', describe: 'a running server (apply)' })
      .option('events', { type: 'boolean', default: false, describe: 'inspect: list every event' })
      .option('json', { type: 'boolean', default: false, describe: 'export: JSON lines instead of a journal file' }),
    a => run((async () => {
      const rest = (a.args ?? []) as string[]
      if (a.action === 'inspect') return await journalInspect({ file: rest[0], store: rest[0] ? undefined : a.store }, a.events)
      if (a.action === 'export') {
        const out = rest[rest.length - 1]
        if (!out) throw new Error('journal export needs an output file')
        return await journalExport({ file: rest.length > 1 ? rest[0] : undefined, store: rest.length > 1 ? undefined : a.store }, out, a.json)
      }
      if (!rest[0]) throw new Error(`journal ${a.action} needs a client journal file`)
      if (a.action === 'import') {
        if (!a.store) throw new Error('journal import needs --store DIR (a store not in use)')
        return await journalImport(rest[0], a.store)
      }
      return await journalApply(rest[0], { store: a.store, connect: a.connect })
    })()))
    .command('fsck', 'check a store (read-only unless --repair); exit 0 clean, 1 repaired, 4 problems left, 8 could not check', y => y
      .option('store', { type: 'string', demandOption: true, describe: 'store directory' })
      .option('repair', { type: 'boolean', default: false, describe: 'fix what can be fixed' }),
    a => run(fsck(a.store, a.repair, line => console.log(line)).then(r => {
      const rep = r.report
      console.error(`cudele fsck: ${rep.directories} directories, ${rep.files} files, ${rep.inodes} inodes, ${rep.dataObjects} data objects, ` +
        `${rep.pendingRemoval} pending removal, ${rep.journalEvents} journal events replayed; ` +
        `${rep.problems.length} problem(s)${r.repaired > 0 ? `, ${r.repaired} repaired` : ''}`)
      return r.code
    }, err => { fail(err); return FSCK_FAILED })))
    .command('bench <case>', BENCH_DESCRIPTION, benchBuilder,
      a => run(benchCommand(a as unknown as BenchArgs, argv)))
    .help()
    .parseAsync()
  process.exitCode = exitCode
}

// `node dist/src/cli/main.js ...` (npm run bench) runs the command line too.
if (require.main === module) void main(process.argv.slice(2))
