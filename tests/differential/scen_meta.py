"""Scenarios: metadata changes (chmod, chown, utimes, truncate) and extended attributes."""
from layers import T1, T2, Registry, dir, file, opaque, symlink

S = Registry()
add = S.add

add("chmod-lower-entries",
    "chmod of lower files and dirs of each layer, including special bits",
    [[file("a", mode=0o644), dir("d", 0o755)], [file("b", mode=0o600)], [file("c", mode=0o755)]],
    [("chmod", "a", 0o4711), ("chmod", "b", 0o2640), ("chmod", "c", 0o1777),
     ("chmod", "d", 0o3750), ("stat", "a"), ("stat", "b"), ("stat", "c"), ("stat", "d"),
     ("chmod", "missing", 0o644)])

add("chmod-via-symlink",
    "chmod through a lower symlink changes the target (copy-up of the target)",
    [[file("t", mode=0o644)], [symlink("l", "t")]],
    [("chmod", "l", 0o600), ("stat", "t"), ("lstat", "l")])

add("chown-lower-entries",
    "chown/lchown of lower files, dirs and symlinks",
    [[file("f"), dir("d"), symlink("s", "f"), file("g", uid=1000, gid=1000)]],
    [("chown", "f", 1234, 4321), ("chown", "d", 99, 98), ("lchown", "s", 7, 7),
     ("chown", "g", -1, 0), ("chown", "g", 0, -1), ("stat", "f"), ("stat", "d"),
     ("lstat", "s"), ("stat", "s"), ("stat", "g")])

add("utimes-lower",
    "explicit atime/mtime on lower files, dirs and symlinks (nanoseconds kept)",
    [[file("f"), dir("d"), symlink("l", "f")], [file("g")]],
    [("utime", "f", T1, T2), ("utime", "d", T2, T1), ("utime", "l", T1, T1),
     ("utime", "g", T2, T2, True), ("mtime", "f"), ("mtime", "d"), ("mtime", "l"),
     ("mtime", "g"), ("utime", "missing", T1, T1)])

add("utimes-after-write",
    "explicit mtime set after a write is kept, then another write makes it current",
    [[file("f", "x")]],
    [("append", "f", "y"), ("utime", "f", T1, T2), ("mtime", "f"), ("read_file", "f"),
     ("mtime", "f")])

add("truncate-lower",
    "truncate of lower files: shrink, extend, zero; truncate of a dir fails",
    [[file("s", "0123456789"), file("e", "abc"), file("z", "zzz"), dir("d")]],
    [("truncate", "s", 4), ("truncate", "e", 10000), ("truncate", "z", 0), ("truncate", "d", 0),
     ("read_file", "s"), ("read_file", "e"), ("stat", "e"), ("stat", "z"),
     ("truncate", "missing", 0)])

add("truncate-same-size",
    "truncate of a lower file to its own size",
    [[file("f", "same size")]],
    [("truncate", "f", 9), ("read_file", "f"), ("stat", "f")])

add("xattr-basic",
    "user.* xattrs: set/get/list/remove on lower files and dirs and on new files",
    [[file("f"), dir("d")]],
    [("setxattr", "f", "user.one", "1"), ("setxattr", "d", "user.two", "2"), ("create", "n"),
     ("setxattr", "n", "user.three", "3"), ("listxattr", "f"), ("getxattr", "f", "user.one"),
     ("getxattr", "d", "user.two"), ("listxattr", "n"), ("removexattr", "f", "user.one"),
     ("listxattr", "f"), ("getxattr", "f", "user.one"), ("removexattr", "f", "user.one")])

add("xattr-flags",
    "XATTR_CREATE on an existing (lower) xattr fails EEXIST; XATTR_REPLACE of a missing one fails",
    [[file("f", xattrs={"user.have": b"h"})]],
    [("setxattr", "f", "user.have", "x", "CREATE"), ("setxattr", "f", "user.nope", "x", "REPLACE"),
     ("setxattr", "f", "user.have", "r", "REPLACE"), ("setxattr", "f", "user.new", "n", "CREATE"),
     ("listxattr", "f"), ("getxattr", "f", "user.have")])

add("xattr-remove-lower",
    "removing an xattr that comes from the lower layer (copy-up then remove)",
    [[file("f", xattrs={"user.a": b"A", "user.b": b"B"}), dir("d", xattrs={"user.x": b"X"})]],
    [("removexattr", "f", "user.a"), ("listxattr", "f"), ("removexattr", "d", "user.x"),
     ("listxattr", "d"), ("removexattr", "f", "user.zzz")])

add("xattr-values",
    "xattr values: empty, binary with NULs, 2000 bytes, many names",
    [[file("f")]],
    [("setxattr", "f", "user.empty", b""), ("setxattr", "f", "user.bin", b"\x00\x01\xff\x00"),
     ("setxattr", "f", "user.big", b"v" * 2000)] +
    [("setxattr", "f", "user.n%02d" % i, str(i)) for i in range(30)] +
    [("getxattr", "f", "user.empty"), ("getxattr", "f", "user.bin"),
     ("getxattr", "f", "user.big"), ("listxattr", "f")])

add("xattr-symlink",
    "user.* xattrs on a symlink itself are refused; through the link they reach the target",
    [[file("t"), symlink("l", "t")]],
    [("lsetxattr", "l", "user.x", "1"), ("setxattr", "l", "user.y", "2"), ("listxattr", "t"),
     ("llistxattr", "l"), ("lstat", "l")])

add("xattr-private-hidden",
    "overlay private xattrs are not visible (or settable) through the merged view",
    [[dir("o"), file("o/x")], [opaque("o"), file("o/y")]],
    [("listxattr", "o"), ("getxattr", "o", "trusted.overlay.opaque"),
     ("setxattr", "o", "trusted.overlay.opaque", "n"), ("listdir", "o"),
     ("getxattr", "o", "user.overlay.opaque")])

add("xattr-trusted-user-data",
    "non-overlay trusted.* xattrs of lower files are visible to root and copied up",
    [[file("f", xattrs={"trusted.app": b"t"})]],
    [("listxattr", "f"), ("getxattr", "f", "trusted.app"), ("setxattr", "f", "trusted.more", "m"),
     ("listxattr", "f")])

add("setgid-dir-inheritance",
    "a file/dir created in a lower setgid dir owned by group 100 inherits the group",
    [[dir("g", 0o2775, uid=1000, gid=100)]],
    [("create", "g/f"), ("mkdir", "g/s"), ("stat", "g/f"), ("stat", "g/s"), ("stat", "g")])

add("create-modes-umask",
    "modes of created files/dirs apply umask 022; explicit chmod afterwards is exact",
    [[dir("d")]],
    [("create", "d/f", "", 0o777), ("mkdir", "d/s", 0o777), ("stat", "d/f"), ("stat", "d/s"),
     ("chmod", "d/f", 0o777), ("stat", "d/f"), ("mknod", "d/p", "fifo", 0o666),
     ("lstat", "d/p")])

add("ownership-in-foreign-dir",
    "files created by root in a lower dir owned by another user belong to root",
    [[dir("u", 0o777, uid=1000, gid=1000)]],
    [("create", "u/f"), ("mkdir", "u/d"), ("symlink", "f", "u/l"), ("stat", "u/f"),
     ("stat", "u/d"), ("lstat", "u/l"), ("stat", "u")])
