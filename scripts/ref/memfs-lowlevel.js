#!/usr/bin/env node
'use strict'
/*
 * memfs-lowlevel: an in-memory filesystem on cudele's own FUSE binding.
 *
 * The thinnest filesystem we can put on native/ (cudele_fuse.node): inodes
 * live in a Map, file data in 1 MiB chunks, and every request is answered on
 * the spot. Benchmarks use it as the ceiling of our binding; the binding's
 * tests use it as the filesystem under test.
 *
 * Build the binding first (npm install, or node-gyp rebuild -C native), then:
 *
 *   node scripts/ref/memfs-lowlevel.js MOUNTPOINT [options]
 *
 *   -o OPT[,OPT...]     libfuse mount options (default: fsname=memfs,default_permissions)
 *   --readdirplus       ask the kernel for readdirplus
 *   --writeback-cache   enable the kernel's writeback cache
 *   --max-write=N       largest write request in bytes (default 1 MiB)
 *   --timeout=S         entry and attribute timeout in seconds (default 1)
 *
 * It prints "ready" once the kernel has finished INIT, and unmounts on SIGINT
 * or SIGTERM (or exits when unmounted from outside). The virtual extended
 * attribute "user.memfs.stats" on any inode returns JSON with request counts
 * and the largest write seen, e.g.
 *
 *   getfattr --only-values -n user.memfs.stats MOUNTPOINT
 */
const path = require('path')

const binding = require(path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'cudele_fuse.node'))

// ---- command line ---------------------------------------------------------

const args = process.argv.slice(2)
let mountpoint = null
const options = ['fsname=memfs', 'default_permissions']
const mountOpts = { options, readdirplus: false, writebackCache: false, maxWrite: 1024 * 1024 }
let timeout = 1
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '-o') options.push(...args[++i].split(','))
  else if (a.startsWith('-o')) options.push(...a.slice(2).split(','))
  else if (a === '--readdirplus') mountOpts.readdirplus = true
  else if (a === '--writeback-cache') mountOpts.writebackCache = true
  else if (a.startsWith('--max-write=')) mountOpts.maxWrite = Number(a.slice(12))
  else if (a.startsWith('--timeout=')) timeout = Number(a.slice(10))
  else if (!a.startsWith('-') && mountpoint === null) mountpoint = a
  else usage(`unknown argument ${a}`)
}
if (mountpoint === null) usage('missing MOUNTPOINT')

function usage (why) {
  console.error(`memfs-lowlevel: ${why}`)
  console.error('usage: node scripts/ref/memfs-lowlevel.js MOUNTPOINT [-o opts] [--readdirplus] [--writeback-cache] [--max-write=N] [--timeout=S]')
  process.exit(2)
}

// ---- constants -------------------------------------------------------------

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const E = { ENOENT: 2, EIO: 5, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ERANGE: 34, ENAMETOOLONG: 36, ENOTEMPTY: 39, ENODATA: 61, EOPNOTSUPP: 95 }
const O_TRUNC = 0o1000
const SET = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 16, MTIME: 32, ATIME_NOW: 128, MTIME_NOW: 256 }
const RENAME_NOREPLACE = 1
const RENAME_EXCHANGE = 2
const NAME_MAX = 255
const CHUNK = 1024 * 1024
const ZEROS = Buffer.alloc(CHUNK)
const STATS_XATTR = 'user.memfs.stats'

// ---- inodes ----------------------------------------------------------------

const attr = new Float64Array(16)
const nodes = new Map()
let nextIno = 2
let nextFh = 1
const dirHandles = new Map()
const stats = { requests: {}, writes: 0, maxWrite: 0, forgets: 0, init: null }

function now () {
  const ms = Date.now()
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6]
}

function newNode (mode, uid, gid) {
  const t = now()
  const node = {
    ino: nextIno++, mode, nlink: 1, uid, gid, rdev: 0, size: 0,
    atime: t, mtime: t, ctime: t,
    nlookup: 0, opens: 0,
    children: null, chunks: null, target: null, xattrs: null
  }
  if ((mode & S_IFMT) === S_IFDIR) {
    node.children = new Map()
    node.nlink = 2
  } else if ((mode & S_IFMT) === S_IFREG) {
    node.chunks = []
  }
  nodes.set(node.ino, node)
  return node
}

const root = newNode(S_IFDIR | 0o755, process.getuid(), process.getgid())
nodes.delete(root.ino)
root.ino = 1
nextIno = 2
nodes.set(1, root)
root.parent = 1

function fill (node, a = attr, at = 0) {
  a[at] = node.ino
  a[at + 1] = node.mode
  a[at + 2] = node.nlink
  a[at + 3] = node.uid
  a[at + 4] = node.gid
  a[at + 5] = node.rdev
  a[at + 6] = node.size
  a[at + 7] = Math.ceil(node.size / 512)
  a[at + 8] = node.atime[0]
  a[at + 9] = node.atime[1]
  a[at + 10] = node.mtime[0]
  a[at + 11] = node.mtime[1]
  a[at + 12] = node.ctime[0]
  a[at + 13] = node.ctime[1]
  a[at + 14] = 4096
  a[at + 15] = 0
}

// An inode goes away when no name, no kernel reference and no open file is left.
function maybeDrop (node) {
  if (node.nlink === 0 && node.nlookup <= 0 && node.opens === 0 && node.ino !== 1) nodes.delete(node.ino)
}

function count (op) {
  stats.requests[op] = (stats.requests[op] || 0) + 1
}

// ---- file data -------------------------------------------------------------

function truncate (node, size) {
  if (size < node.size) {
    const last = Math.floor(size / CHUNK)
    node.chunks.length = Math.min(node.chunks.length, last + 1)
    const c = node.chunks[last]
    // Zero what lies past the new end so that growing again reads zeros.
    if (c !== undefined && size % CHUNK < c.length) c.fill(0, size % CHUNK)
  }
  node.size = size
}

function write (node, data, offset) {
  let pos = 0
  while (pos < data.length) {
    const at = offset + pos
    const ci = Math.floor(at / CHUNK)
    const within = at % CHUNK
    const n = Math.min(CHUNK - within, data.length - pos)
    if (within === 0 && n === CHUNK) {
      // A whole chunk: keep the write's own buffer, no copy.
      node.chunks[ci] = data.subarray(pos, pos + n)
    } else {
      let c = node.chunks[ci]
      if (c === undefined || c.length < within + n) {
        const grown = Buffer.alloc(Math.min(CHUNK, Math.max(within + n, c ? c.length * 2 : 4096)))
        if (c !== undefined) c.copy(grown)
        c = node.chunks[ci] = grown
      }
      data.copy(c, within, pos, pos + n)
    }
    pos += n
  }
  if (offset + data.length > node.size) node.size = offset + data.length
}

function read (node, size, offset) {
  const end = Math.min(node.size, offset + size)
  const parts = []
  for (let at = offset; at < end;) {
    const ci = Math.floor(at / CHUNK)
    const within = at % CHUNK
    const n = Math.min(CHUNK - within, end - at)
    const c = node.chunks[ci]
    let got = 0
    if (c !== undefined && within < c.length) {
      got = Math.min(n, c.length - within)
      parts.push(c.subarray(within, within + got))
    }
    if (got < n) parts.push(ZEROS.subarray(0, n - got))
    at += n
  }
  return parts
}

// ---- handlers --------------------------------------------------------------

let session = null

function dirOf (ino) {
  const d = nodes.get(ino)
  if (d === undefined) return [E.ENOENT, null]
  if (d.children === null) return [E.ENOTDIR, null]
  return [0, d]
}

function badName (name) {
  return name.length > NAME_MAX ? E.ENAMETOOLONG : 0
}

function entry (req, node) {
  node.nlookup++
  fill(node)
  session.replyEntry(req, timeout, timeout)
}

function makeNode (req, parent, name, mode, caller, setup) {
  const [err, dir] = dirOf(parent)
  if (err) return session.replyErr(req, err)
  if (badName(name)) return session.replyErr(req, E.ENAMETOOLONG)
  if (dir.children.has(name)) return session.replyErr(req, E.EEXIST)
  const node = newNode(mode, caller.uid, caller.gid)
  node.parent = dir.ino
  if (setup) setup(node)
  dir.children.set(name, node.ino)
  if (node.children !== null) dir.nlink++
  dir.mtime = dir.ctime = now()
  return node
}

const handlers = {
  init (info) {
    stats.init = info
    process.stdout.write('ready\n')
  },

  exit () {
    process.exit(0)
  },

  lookup (req, parent, name) {
    count('lookup')
    const [err, dir] = dirOf(parent)
    if (err) return session.replyErr(req, err)
    if (badName(name)) return session.replyErr(req, E.ENAMETOOLONG)
    const ino = dir.children.get(name)
    if (ino === undefined) {
      attr[0] = 0 // negative entry, cached for the timeout
      return session.replyEntry(req, timeout, timeout)
    }
    entry(req, nodes.get(ino))
  },

  forget (pairs) {
    stats.forgets += pairs.length / 2
    for (let i = 0; i < pairs.length; i += 2) {
      const node = nodes.get(pairs[i])
      if (node === undefined) continue
      node.nlookup -= pairs[i + 1]
      maybeDrop(node)
    }
  },

  getattr (req, ino, fh) {
    count('getattr')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    fill(node)
    session.replyAttr(req, timeout)
  },

  setattr (req, ino, toSet, mode, uid, gid, size, atimeSec, atimeNsec, mtimeSec, mtimeNsec, fh, caller) {
    count('setattr')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    if (toSet & SET.MODE) node.mode = (node.mode & S_IFMT) | (mode & 0o7777)
    if (toSet & SET.UID) node.uid = uid
    if (toSet & SET.GID) node.gid = gid
    if (toSet & SET.SIZE) {
      if (node.chunks === null) return session.replyErr(req, node.children ? E.EISDIR : E.EINVAL)
      truncate(node, size)
      node.mtime = now()
    }
    if (toSet & SET.ATIME_NOW) node.atime = now()
    else if (toSet & SET.ATIME) node.atime = [atimeSec, atimeNsec]
    if (toSet & SET.MTIME_NOW) node.mtime = now()
    else if (toSet & SET.MTIME) node.mtime = [mtimeSec, mtimeNsec]
    node.ctime = now()
    fill(node)
    session.replyAttr(req, timeout)
  },

  readlink (req, ino) {
    count('readlink')
    const node = nodes.get(ino)
    if (node === undefined || node.target === null) return session.replyErr(req, E.EINVAL)
    session.replyReadlink(req, node.target)
  },

  mknod (req, parent, name, mode, rdev, caller) {
    count('mknod')
    const node = makeNode(req, parent, name, mode, caller, n => { n.rdev = rdev })
    if (node) entry(req, node)
  },

  mkdir (req, parent, name, mode, caller) {
    count('mkdir')
    const node = makeNode(req, parent, name, S_IFDIR | (mode & 0o7777), caller)
    if (node) entry(req, node)
  },

  unlink (req, parent, name) {
    count('unlink')
    const [err, dir] = dirOf(parent)
    if (err) return session.replyErr(req, err)
    const ino = dir.children.get(name)
    if (ino === undefined) return session.replyErr(req, E.ENOENT)
    const node = nodes.get(ino)
    if (node.children !== null) return session.replyErr(req, E.EISDIR)
    dir.children.delete(name)
    dir.mtime = dir.ctime = node.ctime = now()
    node.nlink--
    maybeDrop(node)
    session.replyErr(req, 0)
  },

  rmdir (req, parent, name) {
    count('rmdir')
    const [err, dir] = dirOf(parent)
    if (err) return session.replyErr(req, err)
    const ino = dir.children.get(name)
    if (ino === undefined) return session.replyErr(req, E.ENOENT)
    const node = nodes.get(ino)
    if (node.children === null) return session.replyErr(req, E.ENOTDIR)
    if (node.children.size > 0) return session.replyErr(req, E.ENOTEMPTY)
    dir.children.delete(name)
    dir.nlink--
    dir.mtime = dir.ctime = now()
    node.nlink = 0
    maybeDrop(node)
    session.replyErr(req, 0)
  },

  symlink (req, target, parent, name, caller) {
    count('symlink')
    const node = makeNode(req, parent, name, S_IFLNK | 0o777, caller, n => {
      n.target = target
      n.size = target.length
    })
    if (node) entry(req, node)
  },

  rename (req, parent, name, newParent, newName, flags) {
    count('rename')
    const [err1, from] = dirOf(parent)
    if (err1) return session.replyErr(req, err1)
    const [err2, to] = dirOf(newParent)
    if (err2) return session.replyErr(req, err2)
    if (badName(newName)) return session.replyErr(req, E.ENAMETOOLONG)
    const ino = from.children.get(name)
    if (ino === undefined) return session.replyErr(req, E.ENOENT)
    const node = nodes.get(ino)
    const oldIno = to.children.get(newName)
    const old = oldIno === undefined ? undefined : nodes.get(oldIno)
    if (flags & RENAME_EXCHANGE) {
      if (old === undefined) return session.replyErr(req, E.ENOENT)
      from.children.set(name, old.ino)
      to.children.set(newName, node.ino)
      old.parent = from.ino
      node.parent = to.ino
    } else {
      if (old !== undefined) {
        if (flags & RENAME_NOREPLACE) return session.replyErr(req, E.EEXIST)
        if (old === node) return session.replyErr(req, 0)
        if (old.children !== null) {
          if (node.children === null) return session.replyErr(req, E.EISDIR)
          if (old.children.size > 0) return session.replyErr(req, E.ENOTEMPTY)
          to.nlink--
          old.nlink = 0
        } else {
          if (node.children !== null) return session.replyErr(req, E.ENOTDIR)
          old.nlink--
        }
        maybeDrop(old)
      }
      from.children.delete(name)
      to.children.set(newName, node.ino)
      if (node.children !== null && from !== to) {
        from.nlink--
        to.nlink++
      }
      node.parent = to.ino
    }
    from.mtime = from.ctime = to.mtime = to.ctime = node.ctime = now()
    session.replyErr(req, 0)
  },

  link (req, ino, newParent, newName) {
    count('link')
    const node = nodes.get(ino)
    const [err, dir] = dirOf(newParent)
    if (err) return session.replyErr(req, err)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    if (badName(newName)) return session.replyErr(req, E.ENAMETOOLONG)
    if (dir.children.has(newName)) return session.replyErr(req, E.EEXIST)
    dir.children.set(newName, node.ino)
    node.nlink++
    node.ctime = dir.mtime = dir.ctime = now()
    entry(req, node)
  },

  open (req, ino, flags, caller) {
    count('open')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    // The kernel hands O_TRUNC to open (atomic_o_trunc) instead of a setattr.
    if ((flags & O_TRUNC) && node.chunks !== null) {
      truncate(node, 0)
      node.mtime = node.ctime = now()
    }
    node.opens++
    session.replyOpen(req, nextFh++, 0)
  },

  read (req, ino, size, offset, fh) {
    count('read')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    if (node.chunks === null) return session.replyErr(req, E.EISDIR)
    session.replyBuf(req, read(node, size, offset))
  },

  write (req, ino, data, offset, fh, flags) {
    count('write')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    if (node.chunks === null) return session.replyErr(req, E.EISDIR)
    stats.writes++
    if (data.length > stats.maxWrite) stats.maxWrite = data.length
    write(node, data, offset)
    node.mtime = node.ctime = now()
    session.replyWrite(req, data.length)
  },

  flush (req, ino, fh) {
    count('flush')
    session.replyErr(req, 0)
  },

  release (req, ino, fh, flags) {
    count('release')
    const node = nodes.get(ino)
    if (node !== undefined) {
      node.opens--
      maybeDrop(node)
    }
    session.replyErr(req, 0)
  },

  fsync (req, ino, datasync, fh) {
    count('fsync')
    session.replyErr(req, 0)
  },

  opendir (req, ino, flags) {
    count('opendir')
    const [err, dir] = dirOf(ino)
    if (err) return session.replyErr(req, err)
    // A snapshot: offsets stay valid however the directory changes meanwhile.
    const list = [{ name: '.', ino: dir.ino, type: S_IFDIR, off: 1 }, { name: '..', ino: dir.parent, type: S_IFDIR, off: 2 }]
    for (const [name, childIno] of dir.children) {
      const child = nodes.get(childIno)
      list.push({ name, ino: childIno, type: child.mode & S_IFMT, off: list.length + 1 })
    }
    const fh = nextFh++
    dirHandles.set(fh, list)
    session.replyOpen(req, fh, 0)
  },

  readdir (req, ino, size, offset, fh) {
    count('readdir')
    const list = dirHandles.get(fh)
    if (list === undefined) return session.replyErr(req, E.EINVAL)
    // Entries take at least 32 bytes, so more than size/32 never fit.
    session.replyReaddir(req, size, list.slice(offset, offset + Math.ceil(size / 32)))
  },

  readdirplus (req, ino, size, offset, fh) {
    count('readdirplus')
    const list = dirHandles.get(fh)
    if (list === undefined) return session.replyErr(req, E.EINVAL)
    const part = list.slice(offset, offset + Math.ceil(size / 152))
    const attrs = new Float64Array(part.length * 16)
    for (let i = 0; i < part.length; i++) {
      const node = nodes.get(part[i].ino)
      if (node !== undefined && part[i].name !== '.' && part[i].name !== '..') fill(node, attrs, i * 16)
    }
    const sent = session.replyReaddirPlus(req, size, part, attrs, timeout, timeout)
    // Every entry that went out with attributes is a lookup the kernel will forget.
    for (let i = 0; i < sent; i++) {
      if (attrs[i * 16] !== 0) nodes.get(part[i].ino).nlookup++
    }
  },

  releasedir (req, ino, fh) {
    count('releasedir')
    dirHandles.delete(fh)
    session.replyErr(req, 0)
  },

  fsyncdir (req, ino, datasync, fh) {
    count('fsyncdir')
    session.replyErr(req, 0)
  },

  statfs (req, ino) {
    count('statfs')
    session.replyStatfs(req, 4096, 4096, 1 << 28, 1 << 27, 1 << 27, 1 << 24, (1 << 24) - nodes.size, (1 << 24) - nodes.size, 0, NAME_MAX)
  },

  setxattr (req, ino, name, value, flags) {
    count('setxattr')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    if (node.xattrs === null) node.xattrs = new Map()
    const exists = node.xattrs.has(name)
    if ((flags & 1) && exists) return session.replyErr(req, E.EEXIST)
    if ((flags & 2) && !exists) return session.replyErr(req, E.ENODATA)
    node.xattrs.set(name, Buffer.from(value))
    node.ctime = now()
    session.replyErr(req, 0)
  },

  getxattr (req, ino, name, size) {
    count('getxattr')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    let value
    if (name === STATS_XATTR) value = Buffer.from(JSON.stringify(stats))
    else value = node.xattrs === null ? undefined : node.xattrs.get(name)
    if (value === undefined) return session.replyErr(req, E.ENODATA)
    if (size === 0) return session.replyXattrSize(req, value.length)
    if (value.length > size) return session.replyErr(req, E.ERANGE)
    session.replyBuf(req, value)
  },

  listxattr (req, ino, size) {
    count('listxattr')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    const names = node.xattrs === null ? [] : [...node.xattrs.keys()]
    const list = Buffer.from(names.map(n => n + '\0').join(''), 'latin1')
    if (size === 0) return session.replyXattrSize(req, list.length)
    if (list.length > size) return session.replyErr(req, E.ERANGE)
    session.replyBuf(req, list)
  },

  removexattr (req, ino, name) {
    count('removexattr')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    if (node.xattrs === null || !node.xattrs.delete(name)) return session.replyErr(req, E.ENODATA)
    session.replyErr(req, 0)
  },

  create (req, parent, name, mode, flags, caller) {
    count('create')
    const node = makeNode(req, parent, name, S_IFREG | (mode & 0o7777), caller)
    if (!node) return
    node.nlookup++
    node.opens++
    fill(node)
    session.replyCreate(req, timeout, timeout, nextFh++, 0)
  },

  fallocate (req, ino, mode, offset, length, fh) {
    count('fallocate')
    const node = nodes.get(ino)
    if (node === undefined) return session.replyErr(req, E.ENOENT)
    if (mode !== 0) return session.replyErr(req, E.EOPNOTSUPP)
    if (offset + length > node.size) node.size = offset + length
    session.replyErr(req, 0)
  }
}

// ---- mount -----------------------------------------------------------------

try {
  session = binding.mount(mountpoint, mountOpts, handlers, attr)
} catch (err) {
  console.error(`memfs-lowlevel: ${err.message} (${err.code})`)
  process.exit(1)
}

function stop () {
  session.unmount()
  // exit() normally follows at once; do not hang if the mount stays busy.
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
