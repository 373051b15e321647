#!/usr/bin/env python3
# The differential random test's program (test/fs/model.test.ts): the same
# seeded sequence of operations against a directory on cudele and one on
# tmpfs. The sequence depends on the seed only, never on results, so the two
# runs issue identical calls and their logs must match line for line.
# (Python rather than Node: it has setxattr, nanosecond utime and link.)
#
#   model.py run SEED COUNT DIR   apply COUNT operations in DIR; one line each:
#                                 "<index> <op> <args> -> <result>", where the
#                                 result is ok, an errno name, or what was read
#   model.py walk DIR             the final tree: path, type, mode, size, links,
#                                 hard-link group, sha256 or target, user.* xattrs

import errno
import hashlib
import os
import random
import stat
import sys

MiB = 1024 * 1024
NAMES = ['a', 'b', 'c', 'd']
MODES = [0o644, 0o600, 0o755, 0o700, 0o4755, 0o2755, 0o1777, 0o444, 0o000, 0o6711]
XATTRS = ['user.a', 'user.b', 'user.long.' + 'x' * 100]


def gen_path(r):
    return '/'.join(r.choice(NAMES) for _ in range(r.choice([1, 1, 2, 2, 2, 3])))


def gen_offset(r):
    k = r.random()
    if k < 0.3:
        return 0
    if k < 0.6:
        return r.randrange(64 * 1024)
    if k < 0.85:
        return 4 * MiB + r.randrange(-70000, 70000)
    return r.randrange(9 * MiB)


def gen_len(r):
    k = r.random()
    if k < 0.1:
        return 0
    if k < 0.6:
        return r.randrange(1, 5000)
    if k < 0.95:
        return r.randrange(5000, 200 * 1024)
    return r.randrange(MiB, 5 * MiB)


def gen_data(r, n):
    return random.Random(r.getrandbits(32)).randbytes(n)


def digest(b):
    return '%d:%s' % (len(b), hashlib.sha256(b).hexdigest()[:16])


def gen_op(r):
    """One operation: (name, args), drawn from the seed only."""
    ops = [('mkdir', 8), ('create', 14), ('write', 12), ('truncate', 6), ('rename', 10), ('link', 5),
           ('symlink', 5), ('unlink', 8), ('rmdir', 6), ('chmod', 4), ('utime', 4), ('setxattr', 4),
           ('removexattr', 2), ('getxattr', 2), ('read', 6), ('stat', 6), ('listdir', 4),
           ('open', 12), ('fwrite', 8), ('fread', 5), ('ftruncate', 3), ('fstat', 3), ('fsync', 1), ('close', 2)]
    total = sum(w for _, w in ops)
    k = r.randrange(total)
    for name, w in ops:
        if k < w:
            break
        k -= w
    p = gen_path(r)
    if name == 'mkdir':
        return name, (p, r.choice(MODES[:4] + [0o2755, 0o1777]))
    if name == 'create':
        flags = r.choice([0, os.O_EXCL, os.O_TRUNC, os.O_APPEND, os.O_TRUNC | os.O_APPEND])
        n = gen_len(r)
        return name, (p, flags, r.choice([0o644, 0o600, 0o755]), n, gen_data(r, n))
    if name == 'write':
        off, n = gen_offset(r), gen_len(r)
        return name, (p, off, n, gen_data(r, n))
    if name == 'truncate':
        return name, (p, r.choice([0, r.randrange(10000), r.randrange(200000), 4 * MiB + r.randrange(-5, 5), r.randrange(10 * MiB)]))
    if name in ('rename', 'link'):
        return name, (p, gen_path(r))
    if name == 'symlink':
        return name, (r.choice([gen_path(r), '../' + gen_path(r), 'nowhere', gen_path(r) + '/x']), p)
    if name == 'chmod':
        return name, (p, r.choice(MODES))
    if name == 'utime':
        a = r.randrange(10 ** 9, 2 * 10 ** 9) * 10 ** 9 + r.randrange(10 ** 9)
        m = r.randrange(10 ** 9, 2 * 10 ** 9) * 10 ** 9 + r.randrange(10 ** 9)
        return name, (p, a, m)
    if name == 'setxattr':
        n = r.choice([0, 1, 10, 300])
        return name, (p, r.choice(XATTRS), gen_data(r, n), r.choice([0, os.XATTR_CREATE, os.XATTR_REPLACE]))
    if name in ('removexattr', 'getxattr'):
        return name, (p, r.choice(XATTRS))
    if name == 'read':
        return name, (p, gen_offset(r), r.choice([1, 100, 70000, 5 * MiB]))
    # Operations on open files: a few slots, each holding a descriptor or nothing.
    slot = r.randrange(SLOTS)
    if name == 'open':
        flags = r.choice([os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_RDWR | os.O_CREAT, os.O_WRONLY | os.O_APPEND,
                          os.O_RDWR | os.O_TRUNC, os.O_RDONLY | os.O_DIRECTORY])
        return name, (slot, p, flags)
    if name == 'fwrite':
        off, n = gen_offset(r), gen_len(r)
        return name, (slot, off, n, gen_data(r, n))
    if name == 'fread':
        return name, (slot, gen_offset(r), r.choice([1, 100, 70000, 5 * MiB]))
    if name == 'ftruncate':
        return name, (slot, r.choice([0, r.randrange(10000), 4 * MiB + r.randrange(-5, 5), r.randrange(10 * MiB)]))
    if name in ('fstat', 'fsync', 'close'):
        return name, (slot,)
    return name, (p,)


SLOTS = 3


def fd_of(fds, slot):
    fd = fds[slot]
    if fd is None:
        raise OSError(errno.EBADF, 'slot is empty')
    return fd


def apply(root, fds, name, args):
    j = lambda p: os.path.join(root, p)
    if name == 'open':
        slot, p, flags = args
        fd = os.open(j(p), flags, 0o644)
        if fds[slot] is not None:
            os.close(fds[slot])
        fds[slot] = fd
    elif name == 'fwrite':
        # With O_APPEND, pwrite appends (Linux): the same on both sides.
        os.pwrite(fd_of(fds, args[0]), args[3], args[1])
    elif name == 'fread':
        return digest(os.pread(fd_of(fds, args[0]), args[2], args[1]))
    elif name == 'ftruncate':
        os.ftruncate(fd_of(fds, args[0]), args[1])
    elif name == 'fstat':
        return describe_stat(os.fstat(fd_of(fds, args[0])))
    elif name == 'fsync':
        os.fsync(fd_of(fds, args[0]))
    elif name == 'close':
        fd = fd_of(fds, args[0])
        fds[args[0]] = None
        os.close(fd)
    elif name == 'mkdir':
        os.mkdir(j(args[0]), args[1])
    elif name == 'create':
        p, flags, mode, _, data = args
        fd = os.open(j(p), os.O_CREAT | os.O_WRONLY | flags, mode)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    elif name == 'write':
        p, off, _, data = args
        fd = os.open(j(p), os.O_WRONLY)
        try:
            os.pwrite(fd, data, off)
        finally:
            os.close(fd)
    elif name == 'truncate':
        os.truncate(j(args[0]), args[1])
    elif name == 'rename':
        os.rename(j(args[0]), j(args[1]))
    elif name == 'link':
        os.link(j(args[0]), j(args[1]), follow_symlinks=False)
    elif name == 'symlink':
        os.symlink(args[0], j(args[1]))
    elif name == 'unlink':
        os.unlink(j(args[0]))
    elif name == 'rmdir':
        os.rmdir(j(args[0]))
    elif name == 'chmod':
        os.chmod(j(args[0]), args[1])
    elif name == 'utime':
        os.utime(j(args[0]), ns=(args[1], args[2]))
        st = os.stat(j(args[0]))
        return 'mtime=%d' % st.st_mtime_ns
    elif name == 'setxattr':
        os.setxattr(j(args[0]), args[1], args[2], args[3])
    elif name == 'removexattr':
        os.removexattr(j(args[0]), args[1])
    elif name == 'getxattr':
        return digest(os.getxattr(j(args[0]), args[1]))
    elif name == 'read':
        fd = os.open(j(args[0]), os.O_RDONLY)
        try:
            return digest(os.pread(fd, args[2], args[1]))
        finally:
            os.close(fd)
    elif name == 'stat':
        st = os.lstat(j(args[0]))
        return describe_stat(st)
    elif name == 'listdir':
        return ','.join(sorted(os.listdir(j(args[0]))))
    return 'ok'


def describe_stat(st):
    kind = {stat.S_IFREG: 'file', stat.S_IFDIR: 'dir', stat.S_IFLNK: 'symlink'}.get(stat.S_IFMT(st.st_mode), 'other')
    size = '' if kind == 'dir' else ' size=%d' % st.st_size
    return '%s %04o nlink=%d%s' % (kind, stat.S_IMODE(st.st_mode), st.st_nlink, size)


def show(name, args):
    out = []
    for a in args:
        if isinstance(a, bytes):
            out.append(digest(a))
        elif isinstance(a, int) and name in ('mkdir', 'chmod', 'create') and a in MODES + [0o644]:
            out.append('%o' % a)
        else:
            out.append(str(a))
    return ' '.join(out)


def run(seed, count, root):
    r = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    fds = [None] * SLOTS
    for i in range(count):
        name, args = gen_op(r)
        try:
            result = apply(root, fds, name, args)
        except OSError as e:
            result = errno.errorcode.get(e.errno, str(e.errno))
        print('%d %s %s -> %s' % (i, name, show(name, args), result))
    for fd in fds:
        if fd is not None:
            os.close(fd)


def walk(root):
    root = os.path.abspath(root)
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            entries.append(os.path.relpath(os.path.join(dirpath, n), root))
    groups = {}
    for rel in entries:
        st = os.lstat(os.path.join(root, rel))
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            groups.setdefault(st.st_ino, []).append(rel)
    for rel in sorted(entries):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        line = rel + ' ' + describe_stat(st)
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            # Reading needs permission; the tests run as root.
            with open(p, 'rb') as f:
                for chunk in iter(lambda: f.read(MiB), b''):
                    h.update(chunk)
            line += ' sha256=' + h.hexdigest()[:16]
            if st.st_nlink > 1:
                line += ' group=' + min(groups.get(st.st_ino, [rel]))
        elif stat.S_ISLNK(st.st_mode):
            line += ' target=' + os.readlink(p)
        if not stat.S_ISLNK(st.st_mode):
            for n in sorted(x for x in os.listxattr(p) if x.startswith('user.')):
                line += ' %s=%s' % (n, digest(os.getxattr(p, n)))
        print(line)


if __name__ == '__main__':
    if len(sys.argv) == 5 and sys.argv[1] == 'run':
        run(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 3 and sys.argv[1] == 'walk':
        walk(sys.argv[2])
    else:
        sys.exit('usage: model.py run SEED COUNT DIR | model.py walk DIR')
