#!/usr/bin/env node
'use strict'
/*
 * memfs-fuse-native: the same in-memory filesystem as memfs-lowlevel.js, on
 * the npm package fuse-native@2.2.6 (libfuse 2, path-based high-level API).
 *
 * It exists to compare against: benchmarks run the same workload on both to
 * see what our own binding (native/) gains over the off-the-shelf one. It is
 * kept as thin as fuse-native allows: a path -> node map, data in one Buffer
 * per file, every callback answered at once.
 *
 * Needs libfuse.so.2 (Debian: libfuse2, installed by npm install's set-up):
 *
 *   node scripts/ref/memfs-fuse-native.js MOUNTPOINT [--big-writes] [--auto-unmount] [--debug]
 *
 *   --big-writes     mount with big_writes,max_write=131072 (libfuse 2 defaults to 4 KiB writes)
 *   --auto-unmount   unmount when this process dies
 *
 * It prints "ready" once mounted, and unmounts on SIGINT or SIGTERM.
 */
const path = require('path')
const Fuse = require('fuse-native')

const args = process.argv.slice(2)
let mountpoint = null
let bigWrites = false
let autoUnmount = false
let debug = false
for (const a of args) {
  if (a === '--big-writes') bigWrites = true
  else if (a === '--auto-unmount') autoUnmount = true
  else if (a === '--debug') debug = true
  else if (!a.startsWith('-') && mountpoint === null) mountpoint = a
  else usage(`unknown argument ${a}`)
}
if (mountpoint === null) usage('missing MOUNTPOINT')

function usage (why) {
  console.error(`memfs-fuse-native: ${why}`)
  console.error('usage: node scripts/ref/memfs-fuse-native.js MOUNTPOINT [--big-writes] [--auto-unmount] [--debug]')
  process.exit(2)
}

// fuse-native has no option for big writes; add them to the -o list it builds.
class BigWriteFuse extends Fuse {
  _fuseOptions () {
    const opts = super._fuseOptions()
    const extra = 'big_writes,max_write=131072'
    return opts ? `${opts},${extra}` : `-o${extra}`
  }
}

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const NAME_MAX = 255

const uid = process.getuid()
const gid = process.getgid()
const nodes = new Map()
let nextIno = 1

function newNode (mode) {
  const t = new Date()
  const dir = (mode & S_IFMT) === S_IFDIR
  return { ino: nextIno++, mode, uid, gid, nlink: dir ? 2 : 1, size: 0, data: null, target: null, children: dir ? new Set() : null, atime: t, mtime: t, ctime: t }
}

nodes.set('/', newNode(S_IFDIR | 0o755))

function stat (n) {
  return { mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, nlink: n.nlink, ino: n.ino, atime: n.atime, mtime: n.mtime, ctime: n.ctime, blocks: Math.ceil(n.size / 512), blksize: 4096 }
}

function parentOf (p) {
  return path.dirname(p)
}

function tooLong (p) {
  return path.basename(p).length > NAME_MAX
}

function add (p, node, cb) {
  if (tooLong(p)) return cb(Fuse.ENAMETOOLONG)
  if (nodes.has(p)) return cb(Fuse.EEXIST)
  const dir = nodes.get(parentOf(p))
  if (dir === undefined) return cb(Fuse.ENOENT)
  nodes.set(p, node)
  dir.children.add(path.basename(p))
  if (node.children !== null) dir.nlink++
  dir.mtime = dir.ctime = new Date()
  cb(0)
}

function resize (n, size) {
  if (n.data === null) n.data = Buffer.alloc(0)
  if (size > n.data.length) {
    const grown = Buffer.alloc(Math.max(size, Math.min(n.data.length * 2, size + 64 * 1024 * 1024)))
    n.data.copy(grown, 0, 0, n.size)
    n.data = grown
  } else if (size < n.size) {
    n.data.fill(0, size, n.size)
  }
  n.size = size
}

let nextFd = 1

const ops = {
  init (cb) { cb(0) },
  getattr (p, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(tooLong(p) ? Fuse.ENAMETOOLONG : Fuse.ENOENT)
    cb(0, stat(n))
  },
  fgetattr (p, fd, cb) { ops.getattr(p, cb) },
  access (p, mode, cb) { cb(0) },
  readdir (p, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(Fuse.ENOENT)
    if (n.children === null) return cb(Fuse.ENOTDIR)
    cb(0, [...n.children])
  },
  opendir (p, flags, cb) { cb(0, nextFd++) },
  releasedir (p, fd, cb) { cb(0) },
  mkdir (p, mode, cb) {
    const n = newNode(S_IFDIR | (mode & 0o7777))
    add(p, n, cb)
  },
  rmdir (p, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(Fuse.ENOENT)
    if (n.children === null) return cb(Fuse.ENOTDIR)
    if (n.children.size > 0) return cb(Fuse.ENOTEMPTY)
    nodes.delete(p)
    const dir = nodes.get(parentOf(p))
    dir.children.delete(path.basename(p))
    dir.nlink--
    cb(0)
  },
  create (p, mode, cb) {
    const n = newNode(S_IFREG | (mode & 0o7777))
    add(p, n, err => cb(err, err ? undefined : nextFd++))
  },
  open (p, flags, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(Fuse.ENOENT)
    cb(0, nextFd++)
  },
  release (p, fd, cb) { cb(0) },
  flush (p, fd, cb) { cb(0) },
  fsync (p, fd, datasync, cb) { cb(0) },
  truncate (p, size, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(Fuse.ENOENT)
    resize(n, size)
    n.mtime = n.ctime = new Date()
    cb(0)
  },
  ftruncate (p, fd, size, cb) { ops.truncate(p, size, cb) },
  read (p, fd, buf, len, pos, cb) {
    const n = nodes.get(p)
    if (n === undefined || n.data === null || pos >= n.size) return cb(0)
    const end = Math.min(n.size, pos + len)
    n.data.copy(buf, 0, pos, end)
    cb(end - pos)
  },
  write (p, fd, buf, len, pos, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(Fuse.ENOENT)
    if (pos + len > n.size) resize(n, pos + len)
    // buf points into libfuse's buffer, reused after the callback: copy.
    buf.copy(n.data, pos, 0, len)
    n.mtime = n.ctime = new Date()
    cb(len)
  },
  unlink (p, cb) {
    if (!nodes.delete(p)) return cb(Fuse.ENOENT)
    nodes.get(parentOf(p)).children.delete(path.basename(p))
    cb(0)
  },
  rename (src, dest, cb) {
    const n = nodes.get(src)
    if (n === undefined) return cb(Fuse.ENOENT)
    if (tooLong(dest)) return cb(Fuse.ENAMETOOLONG)
    const to = nodes.get(parentOf(dest))
    if (to === undefined) return cb(Fuse.ENOENT)
    const old = nodes.get(dest)
    if (old !== undefined && old.children !== null && old.children.size > 0) return cb(Fuse.ENOTEMPTY)
    const moved = [[src, n]]
    if (n.children !== null) {
      // Descendants are keyed by path too: move them along.
      const prefix = src + '/'
      for (const [p, c] of nodes) if (p.startsWith(prefix)) moved.push([p, c])
    }
    for (const [p] of moved) nodes.delete(p)
    for (const [p, c] of moved) nodes.set(dest + p.slice(src.length), c)
    nodes.get(parentOf(src)).children.delete(path.basename(src))
    to.children.add(path.basename(dest))
    cb(0)
  },
  symlink (target, p, cb) {
    const n = newNode(S_IFLNK | 0o777)
    n.target = target
    n.size = Buffer.byteLength(target)
    add(p, n, cb)
  },
  readlink (p, cb) {
    const n = nodes.get(p)
    if (n === undefined || n.target === null) return cb(Fuse.EINVAL)
    cb(0, n.target)
  },
  chmod (p, mode, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(Fuse.ENOENT)
    n.mode = (n.mode & S_IFMT) | (mode & 0o7777)
    n.ctime = new Date()
    cb(0)
  },
  chown (p, u, g, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(Fuse.ENOENT)
    if (u !== 0xffffffff && u !== -1) n.uid = u
    if (g !== 0xffffffff && g !== -1) n.gid = g
    cb(0)
  },
  utimens (p, atime, mtime, cb) {
    const n = nodes.get(p)
    if (n === undefined) return cb(Fuse.ENOENT)
    n.atime = new Date(atime)
    n.mtime = new Date(mtime)
    cb(0)
  },
  statfs (p, cb) {
    cb(0, { bsize: 4096, frsize: 4096, blocks: 1 << 28, bfree: 1 << 27, bavail: 1 << 27, files: 1 << 24, ffree: 1 << 23, favail: 1 << 23, fsid: 0, flag: 0, namemax: NAME_MAX })
  }
}

const Impl = bigWrites ? BigWriteFuse : Fuse
const fuse = new Impl(mountpoint, ops, { timeout: false, autoUnmount, debug, fsname: 'memfs-fuse-native', defaultPermissions: true })

fuse.mount(err => {
  if (err) {
    console.error(`memfs-fuse-native: cannot mount on ${mountpoint}: ${err.message}`)
    process.exit(1)
  }
  process.stdout.write('ready\n')
})

let stopping = false
function stop () {
  if (stopping) return
  stopping = true
  fuse.unmount(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
