#!/usr/bin/env python3
# Source trees for the round-trip tests, and a walker that describes a tree
# exactly (Python: it has nanosecond times, xattrs, chown and byte names).
#
#   tree.py build DIR   make a tree with every kind of thing tar and cp -a keep
#   tree.py walk DIR    one line per entry, sorted: path, type, mode, owner,
#                       size, mtime (ns), link count, hard-link group, sha256
#                       or symlink target, user.* xattrs

import hashlib
import os
import random
import stat
import sys

MiB = 1024 * 1024


def data(n, seed):
    return random.Random(seed).randbytes(n)


def build(root):
    root = os.fsencode(root)
    j = lambda *p: os.path.join(root, *p)
    times = []  # (path, ns): applied last, deepest first, so nothing disturbs them afterwards

    def stamp(p, k):
        times.append((p, 1_500_000_000_123_456_789 + k * 1_000_000_007 + k * 37))

    for d in [b'a', b'a/b', b'a/b/c', b'dir with spaces', b'empty', b'caf\xe9', b'deep/1/2/3/4/5/6/7/8/9/10']:
        os.makedirs(j(d), exist_ok=True)
    k = 0
    sizes = [0, 1, 100, 4095, 4096, 4097, 65535, 65536, 131073, MiB + 7, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1, 9 * MiB + 123]
    for i, n in enumerate(sizes):
        p = j(b'a' if i % 2 else b'a/b', b'f%d' % n)
        with open(p, 'wb') as f:
            f.write(data(n, n))
        stamp(p, k); k += 1
    for name in [b'name with spaces', b'\xff\xfe not utf-8', b'caf\xe9/\xe9t\xe9', b'x' * 255, b'-starts-with-dash', b'deep/1/2/3/4/5/6/7/8/9/10/leaf']:
        with open(j(name), 'wb') as f:
            f.write(data(1000 + len(name), len(name)))
        stamp(j(name), k); k += 1
    # A sparse file whose data crosses stripe boundaries (4 MiB) and leaves holes between.
    with open(j(b'sparse'), 'wb') as f:
        for off in [0, 5 * MiB, 8 * MiB - 10, 17 * MiB]:
            f.seek(off)
            f.write(data(20000, off))
        f.truncate(23 * MiB + 5)
    stamp(j(b'sparse'), k); k += 1

    # Owners, then modes (chown clears set-id bits), then times.
    modes = {b'm600': 0o600, b'm755': 0o755, b'm4755': 0o4755, b'm2755': 0o2755, b'm444': 0o444, b'm000': 0o000, b'm6711': 0o6711}
    for i, (name, mode) in enumerate(modes.items()):
        p = j(b'a/b/c', name)
        with open(p, 'wb') as f:
            f.write(data(300 + i, i))
        os.chown(p, 1000 + i, 2000 + i)
        os.chmod(p, mode)
        stamp(p, k); k += 1
    for name, mode in [(b'sticky', 0o1777), (b'setgid', 0o2755), (b'private', 0o700)]:
        os.mkdir(j(name))
        os.chown(j(name), 4321, 1234)
        os.chmod(j(name), mode)
    with open(j(b'setgid/inside'), 'wb') as f:
        f.write(b'in a setgid directory\n')
    stamp(j(b'setgid/inside'), k); k += 1
    os.chown(j(b'a/f1'), 65534, 65534)
    os.chown(j(b'dir with spaces'), 7, 8)

    # Symbolic links: relative, absolute, dangling; owned by someone else.
    os.symlink(b'../a/b/f100', j(b'dir with spaces/rel link'))
    os.symlink(b'/etc/hostname', j(b'abs-link'))
    os.symlink(b'does/not/exist', j(b'dangling'))
    os.symlink(b'caf\xe9/\xe9t\xe9', j(b'link-to-latin1'))
    os.chown(j(b'dangling'), 1500, 1600, follow_symlinks=False)
    for i, p in enumerate([b'dir with spaces/rel link', b'abs-link', b'dangling', b'link-to-latin1']):
        stamp(j(p), k + i)
    k += 4

    # Hard links: a pair and a triple, across directories.
    with open(j(b'a/pair'), 'wb') as f:
        f.write(data(5000, 77))
    os.link(j(b'a/pair'), j(b'a/b/pair-2'))
    with open(j(b'triple'), 'wb') as f:
        f.write(data(70000, 78))
    os.link(j(b'triple'), j(b'a/triple-2'))
    os.link(j(b'triple'), j(b'dir with spaces/triple 3'))
    stamp(j(b'a/pair'), k); stamp(j(b'triple'), k + 1); k += 2

    os.mkfifo(j(b'fifo'), 0o640)
    stamp(j(b'fifo'), k); k += 1

    # Extended attributes (user.*) on files and directories, text and binary.
    os.setxattr(j(b'a/b/f100'), 'user.comment', b'a file with an xattr')
    os.setxattr(j(b'a/b/f100'), 'user.bin', bytes(range(256)))
    os.setxattr(j(b'a/b'), 'user.dir', b'on a directory')
    os.setxattr(j(b'triple'), 'user.links', b'three names, one inode')
    os.setxattr(j(b'sparse'), 'user.empty', b'')

    for dirpath, dirnames, _ in os.walk(root, topdown=False):
        if dirpath != root:
            stamp(dirpath, k); k += 1
    stamp(root, k)
    for p, ns in times:
        os.utime(p, ns=(ns - 999_999_999, ns), follow_symlinks=False)


def q(b):
    """A path as printable text, bytes that are not printable ASCII as \\xNN."""
    return ''.join(chr(c) if 32 < c < 127 and c != 0x5c else '\\x%02x' % c for c in b)


def walk(root):
    root = os.fsencode(root)
    entries = [b'.']
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            entries.append(os.path.relpath(os.path.join(dirpath, name), root))
    inodes = {}
    for rel in entries:
        st = os.lstat(os.path.join(root, rel))
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            inodes.setdefault(st.st_ino, []).append(rel)
    out = []
    for rel in sorted(entries):
        p = os.path.join(root, rel)
        st = os.lstat(p)
        kind = {stat.S_IFREG: 'file', stat.S_IFDIR: 'dir', stat.S_IFLNK: 'symlink', stat.S_IFIFO: 'fifo'}.get(stat.S_IFMT(st.st_mode), 'other')
        fields = [q(rel), kind, '%04o' % stat.S_IMODE(st.st_mode), 'uid=%d' % st.st_uid, 'gid=%d' % st.st_gid,
                  'mtime=%d' % st.st_mtime_ns, 'nlink=%d' % st.st_nlink]
        if kind == 'file':
            h = hashlib.sha256()
            with open(p, 'rb') as f:
                for chunk in iter(lambda: f.read(MiB), b''):
                    h.update(chunk)
            fields += ['size=%d' % st.st_size, 'sha256=' + h.hexdigest()]
            if st.st_nlink > 1:
                fields.append('group=' + q(min(inodes.get(st.st_ino, [rel]))))
        elif kind == 'symlink':
            fields += ['size=%d' % st.st_size, 'target=' + q(os.readlink(p))]
        if kind != 'symlink':
            names = sorted(n for n in os.listxattr(p) if n.startswith('user.'))
            fields += ['xattr:%s=%s' % (n, os.getxattr(p, n).hex()) for n in names]
        out.append(' '.join(fields))
    sys.stdout.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'build':
        build(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == 'walk':
        walk(sys.argv[2])
    else:
        sys.exit('usage: tree.py build|walk DIR')
