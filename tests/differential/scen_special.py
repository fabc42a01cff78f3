"""Scenarios: special files, odd and long names, a 10,000-entry directory, deep trees, links."""
from layers import Registry, device, dir, fifo, file, socket, symlink, whiteout

S = Registry()
add = S.add

add("mknod-special",
    "mknod of fifo, socket, char and block devices in upper and in a lower dir",
    [[dir("d")]],
    [("mknod", "p", "fifo", 0o640), ("mknod", "s", "sock", 0o755),
     ("mknod", "d/c", "chr", 0o600, 1, 3), ("mknod", "d/b", "blk", 0o660, 7, 5),
     ("mknod", "r", "reg", 0o644), ("lstat", "p"), ("lstat", "s"), ("lstat", "d/c"),
     ("lstat", "d/b"), ("lstat", "r"), ("mknod", "p", "fifo", 0o644), ("listdir", "d")])

add("mknod-whiteout-refused",
    "mknod of a char device 0/0 through the mount fails with EPERM; the dir stays listable",
    [[dir("d"), file("d/a"), file("b")]],
    [("mknod", "w", "chr", 0o600, 0, 0), ("mknod", "d/w", "chr", 0o000, 0, 0),
     ("mknod", "b", "chr", 0o600, 0, 0), ("listdir", "."), ("listdir", "d"), ("lstat", "w")])

add("mknod-over-whiteout",
    "mknod where a lower file was unlinked",
    [[file("x"), fifo("p")]],
    [("unlink", "x"), ("mknod", "x", "chr", 0o644, 1, 5), ("lstat", "x"), ("unlink", "p"),
     ("mknod", "p", "fifo", 0o600), ("lstat", "p")])

add("lower-special-files",
    "fifos, sockets and devices of lower layers are visible with their types and rdev",
    [[fifo("p", 0o600), socket("s"), device("c", "c", 1, 7, 0o644)],
     [device("b", "b", 8, 1, 0o600), device("c2", "c", 4, 64, 0o620, gid=5)]],
    [("lstat", "p"), ("lstat", "s"), ("lstat", "c"), ("lstat", "b"), ("lstat", "c2"),
     ("scandir", "."), ("unlink", "s"), ("rename", "c", "cc"), ("lstat", "cc")])

L255 = "L" * 250 + ".txt1"
L255b = "\u00e9" * 127 + "x"   # 255 bytes of UTF-8
add("long-names",
    "255-byte names in lower and upper, rename between them; 256 bytes is ENAMETOOLONG",
    [[file(L255, "long"), dir("d" * 255), file("d" * 255 + "/" + L255b, "utf8")]],
    [("read_file", L255), ("create", "N" * 255, "n"), ("create", "N" * 256),
     ("rename", L255, "R" * 255), ("read_file", "R" * 255), ("mkdir", "M" * 256),
     ("read_file", "d" * 255 + "/" + L255b), ("listdir", "."), ("listdir", "d" * 255),
     ("rename", "d" * 255 + "/" + L255b, "x" * 255), ("symlink", "T" * 255, "s" * 255),
     ("readlink", "s" * 255)])

ODD = ["with space", " lead", "trail ", "new\nline", "tab\tx", "-dash", "--opt", "\u00fc\u00f1\u00ee",
       "\u65e5\u672c", "emoji\U0001F600", "back\\slash", "q'uo\"te", "star*?[", "#hash", "%p",
       "\x01ctl"]
add("odd-names",
    "names with spaces, newlines, tabs, leading dashes, UTF-8, quotes and globs",
    [[dir("odd")] + [file("odd/" + n, n) for n in ODD[:8]],
     [dir("odd")] + [file("odd/" + n, n.upper()) for n in ODD[4:]]],
    [("listdir", "odd")] + [("read_file", "odd/" + n) for n in ODD] +
    [("unlink", "odd/" + ODD[0]), ("rename", "odd/" + ODD[3], "odd/renamed\nagain"),
     ("create", "odd/new\nfile \u00e9"), ("mkdir", "odd/-d \u00e8"), ("listdir", "odd"),
     ("chmod", "odd/" + ODD[9], 0o600), ("lstat", "odd/" + ODD[9])])

add("odd-bytes-names",
    "non-UTF-8 byte names in lower layers",
    [[file(b"bad\xff\xfe", "bytes"), dir(b"d\x80"), file(b"d\x80/x\xc3", "x")]],
    [("read_file", b"bad\xff\xfe"), ("listdir", b"."), ("listdir", b"d\x80"),
     ("rename", b"bad\xff\xfe", b"\xe9t\xe9"), ("unlink", b"d\x80/x\xc3"), ("rmdir", b"d\x80"),
     ("listdir", b".")])


def _big_layers():
    """10,000 visible entries: f00300..f09999 minus f04900..f04999, plus g00000..g00399."""
    l0 = [dir("big")] + [file("big/f%05d" % i, "%d" % i) for i in range(0, 5000)]
    l1 = [dir("big")] + [file("big/f%05d" % i, "m%d" % i) for i in range(3000, 7500)] + \
        [whiteout("big/f%05d" % i) for i in range(0, 300)]
    l2 = [dir("big")] + [file("big/f%05d" % i, "t%d" % i) for i in range(7000, 10000)] + \
        [whiteout("big/f%05d" % i) for i in range(4900, 5000)] + \
        [file("big/g%05d" % i, "g") for i in range(400)]
    return [l0, l1, l2]


add("big-dir-10000",
    "a 10,000-entry directory spread over 3 layers with whiteouts: readdir, unlinks, creates",
    _big_layers(),
    [("listdir_count", "big"), ("listdir", "big"), ("read_file", "big/f04000"),
     ("read_file", "big/f07200"), ("lstat", "big/f00100")] +
    [("unlink", "big/f%05d" % i) for i in range(300, 10000, 97)] +
    [("create", "big/n%03d" % i) for i in range(50)] +
    [("listdir_count", "big"), ("listdir", "big"), ("rmdir", "big")])

DEEP = "/".join(["deep"] * 60)
add("deep-tree-create",
    "a 60-level tree created in upper over a 20-level lower chain; rename and remove parts",
    [[dir("/".join(["deep"] * 20)), file("/".join(["deep"] * 20) + "/low")]],
    [("mkdir", "/".join(["deep"] * (i + 1))) for i in range(60)] +
    [("create", DEEP + "/leaf", "leaf"), ("read_file", DEEP + "/leaf"),
     ("rename", "/".join(["deep"] * 30), "/".join(["deep"] * 29) + "/moved"),
     ("read_file", "/".join(["deep"] * 29) + "/moved/" + "/".join(["deep"] * 30) + "/leaf"),
     ("rename", "/".join(["deep"] * 20), "/".join(["deep"] * 19) + "/x"),
     ("listdir", "/".join(["deep"] * 20))])

add("symlink-create",
    "symlink(2): relative, absolute, dangling, long (4000 bytes) targets; over existing names",
    [[file("f"), dir("d")]],
    [("symlink", "f", "rel"), ("symlink", "/abs/target", "abs"), ("symlink", "x" * 4000, "long"),
     ("symlink", "f", "f"), ("symlink", "f", "d"), ("symlink", "../f", "d/up"),
     ("readlink", "rel"), ("readlink", "abs"), ("readlink", "long"), ("readlink", "d/up"),
     ("lstat", "long"), ("read_file", "d/up"), ("lchown", "rel", 5, 5), ("lstat", "rel")])

add("hardlink-create",
    "link(2) of upper and lower files, to dirs (EPERM), onto existing names (EEXIST)",
    [[file("lf", "L"), dir("d"), symlink("sl", "lf")], [file("lg", "G")]],
    [("create", "u", "U"), ("link", "u", "u2"), ("same_ino", "u", "u2"), ("stat", "u"),
     ("link", "lf", "d/lf"), ("stat", "d/lf"), ("link", "d", "d2"), ("link", "u", "lg"),
     ("link", "sl", "sl2"), ("lstat", "sl2"), ("link", "missing", "x"), ("unlink", "u"),
     ("stat", "u2"), ("link", "lg", "d/lg"), ("append", "d/lg", "+"), ("read_file", "lg")])

add("hardlink-upper-remount",
    "hard links made in upper stay one inode across a remount",
    [[file("a", "A")]],
    [("create", "u", "U"), ("link", "u", "v"), ("link", "a", "b"), ("remount",),
     ("same_ino", "u", "v"), ("same_ino", "a", "b"), ("stat", "v"), ("stat", "b"),
     ("append", "v", "+"), ("read_file", "u")])

add("many-layers-many-names",
    "3 layers x 3 dirs of files with overlapping names, whiteouts and types; full tree",
    [[dir("d%d" % j) for j in range(3)] +
     [file("d%d/n%d" % (j, i), "0-%d-%d" % (j, i)) for j in range(3) for i in range(20)],
     [whiteout("d%d/n%d" % (j, i)) for j in range(3) for i in range(0, 20, 3)] +
     [dir("d%d/n%d" % (j, i)) for j in range(3) for i in range(2, 20, 6)],
     [file("d%d/n%d" % (j, i), "2") for j in range(3) for i in range(0, 20, 4)] +
     [symlink("d%d/x%d" % (j, j), "n%d" % j) for j in range(3)]],
    [("tree", "."), ("listdir", "d0"), ("listdir", "d1"), ("listdir", "d2")])
