"""Scenarios: lookup, layer override, whiteouts, opaque directories, readdir, stat, inodes."""
from layers import (Registry, dir, file, hardlink, opaque, symlink, whiteout)

S = Registry()
add = S.add

add("override-3-layers",
    "topmost layer wins for a file present in all 3 layers; unique files of each layer visible",
    [[file("f", "bottom\n", 0o600), file("b", "only bottom")],
     [file("f", "middle\n", 0o640), file("m", "only middle")],
     [file("f", "top\n", 0o644, uid=1000, gid=1000), file("t", "only top")]],
    [("read_file", "f"), ("stat", "f"), ("read_file", "b"), ("read_file", "m"),
     ("read_file", "t"), ("listdir", "."), ("scandir", ".")])

add("file-hides-dir",
    "a file in a higher layer hides a directory (and its children) below it",
    [[dir("x"), file("x/child", "c"), dir("x/sub")], [], [file("x", "now a file")]],
    [("lstat", "x"), ("read_file", "x"), ("listdir", "x"), ("lstat", "x/child"),
     ("listdir", ".")])

add("dir-hides-file",
    "a directory in a higher layer hides a file below it; its children are visible",
    [[file("x", "file below")], [dir("x", 0o750), file("x/c", "child")]],
    [("lstat", "x"), ("read_file", "x"), ("listdir", "x"), ("read_file", "x/c")])

add("merged-dir-3-layers",
    "a directory present in 3 layers merges children; attributes come from the top one",
    [[dir("d", 0o700, uid=1, gid=1), file("d/a", "a0"), file("d/b", "b0")],
     [dir("d", 0o750, uid=2, gid=2), file("d/b", "b1"), file("d/c", "c1")],
     [dir("d", 0o755, uid=3, gid=3), file("d/c", "c2"), file("d/e", "e2")]],
    [("stat", "d"), ("listdir", "d"), ("read_file", "d/a"), ("read_file", "d/b"),
     ("read_file", "d/c"), ("read_file", "d/e"), ("scandir", "d")])

add("whiteout-hides-file",
    "a whiteout in the middle layer hides the bottom file",
    [[file("f", "hidden"), file("g", "kept")], [whiteout("f")], []],
    [("lstat", "f"), ("read_file", "f"), ("listdir", "."), ("exists", "f"),
     ("open", "h", "f", "O_RDONLY"), ("unlink", "f"), ("rmdir", "f")])

add("whiteout-hides-dir",
    "a whiteout hides a whole directory tree of lower layers",
    [[dir("d"), file("d/a"), dir("d/s"), file("d/s/b")], [whiteout("d")]],
    [("lstat", "d"), ("listdir", "d"), ("lstat", "d/s/b"), ("listdir", ".")])

add("whiteout-then-new-file-above",
    "bottom file, whiteout in the middle, new file of another type above it",
    [[file("f", "bottom"), dir("d"), file("d/x")], [whiteout("f"), whiteout("d")],
     [dir("f"), file("f/inside", "i"), file("d", "d is a file now")]],
    [("lstat", "f"), ("listdir", "f"), ("lstat", "d"), ("read_file", "d"),
     ("listdir", ".")])

add("opaque-middle",
    "an opaque directory in the middle layer hides the bottom children, top adds its own",
    [[dir("d"), file("d/low1"), file("d/low2"), dir("d/ld"), file("d/ld/x")],
     [opaque("d"), file("d/mid")],
     [dir("d"), file("d/top")]],
    [("listdir", "d"), ("lstat", "d/low1"), ("lstat", "d/ld"), ("read_file", "d/mid"),
     ("llistxattr", "d"), ("lgetxattr", "d", "trusted.overlay.opaque")])

add("opaque-top",
    "an opaque directory in the top layer: lower children invisible, creating works",
    [[dir("d"), file("d/a", "a"), file("d/b")], [dir("d"), file("d/c")], [opaque("d")]],
    [("listdir", "d"), ("create", "d/a", "new a"), ("read_file", "d/a"), ("listdir", "d"),
     ("unlink", "d/a"), ("listdir", "d"), ("rmdir", "d"), ("listdir", ".")])

add("opaque-nested",
    "opaque only applies to its own directory: a subdirectory below is merged normally",
    [[dir("d/s"), file("d/s/low"), file("d/low")], [opaque("d"), dir("d/s"), file("d/s/mid")],
     [dir("d/s"), file("d/s/top")]],
    [("listdir", "d"), ("listdir", "d/s"), ("tree", ".")])

add("readdir-dedup-types",
    "the same names in 3 layers with different types are listed once, with the top type",
    [[file("a"), dir("b"), symlink("c", "a"), file("d"), dir("e")],
     [dir("a"), file("b"), file("c"), symlink("d", "b")],
     [symlink("a", "b"), dir("c"), file("e")]],
    [("listdir", "."), ("scandir", "."), ("lstat", "a"), ("lstat", "b"), ("lstat", "c"),
     ("lstat", "d"), ("lstat", "e")])

add("lower-symlinks",
    "symlinks in lower layers: readlink, following into other layers, dangling, loops",
    [[file("target", "T"), dir("tdir"), file("tdir/in", "I")],
     [symlink("ln", "target"), symlink("dang", "nowhere"), symlink("loop", "loop")],
     [symlink("dl", "tdir"), symlink("chain", "ln")]],
    [("readlink", "ln"), ("stat", "ln"), ("lstat", "ln"), ("read_file", "chain"),
     ("stat", "dang"), ("lstat", "dang"), ("stat", "loop"), ("listdir", "dl"),
     ("read_file", "dl/in"), ("readlink", "target")])

add("symlink-dir-traversal-write",
    "writing through a lower symlink to a lower directory copies up the real target only",
    [[dir("real"), file("real/f", "old")], [symlink("via", "real")]],
    [("append", "via/f", "+new"), ("read_file", "real/f"), ("lstat", "via"),
     ("create", "via/g", "g"), ("listdir", "real")])

add("empty-layers",
    "empty lower layers do not disturb the union; creating files in the root works",
    [[], [], []],
    [("listdir", "."), ("create", "a", "x"), ("mkdir", "d"), ("create", "d/b", "y"),
     ("tree", ".")])

DEEP = "/".join("d%02d" % i for i in range(30))
add("deep-paths",
    "a 30-level path split across layers; reading, copy-up of the whole chain, creating",
    [[dir(DEEP[:-4]), file(DEEP[:-4] + "/bottom", "b")],
     [dir(DEEP), file(DEEP + "/mid", "m")], [dir(DEEP[:19])]],
    [("read_file", DEEP + "/mid"), ("read_file", DEEP[:-4] + "/bottom"),
     ("append", DEEP + "/mid", "+"), ("create", DEEP + "/new", "n"), ("listdir", DEEP),
     ("mkdir", DEEP + "/x"), ("tree", "d00/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12")])

add("readdir-open-handle",
    "an open directory handle, rewound, reflects creations and removals made meanwhile",
    [[dir("d"), file("d/a"), file("d/b")], [dir("d"), file("d/c")]],
    [("opendir", "h", "d"), ("fdlistdir", "h"), ("create", "d/new"), ("fdlistdir", "h"),
     ("unlink", "d/a"), ("fdlistdir", "h"), ("rename", "d/c", "d/c2"), ("fdlistdir", "h"),
     ("close", "h")])

add("upper-existing-whiteout-opaque",
    "an existing upper (kernel format: 0/0 whiteout, opaque xattr) is honoured at mount",
    [[file("gone", "g"), dir("op"), file("op/hidden"), file("keep", "k"), dir("m"),
      file("m/low")]],
    [("listdir", "."), ("listdir", "op"), ("listdir", "m"), ("create", "gone", "back"),
     ("read_file", "gone"), ("create", "op/hidden", "h2"), ("listdir", "op")],
    upper=[whiteout("gone"), opaque("op"), file("op/up", "u"), dir("m"), file("m/up")])

add("upper-existing-override",
    "an existing upper file overrides lower, its dir merges with the lower dir",
    [[file("f", "lower"), dir("d"), file("d/a", "la")]],
    [("read_file", "f"), ("read_file", "d/a"), ("listdir", "d"), ("stat", "f")],
    upper=[file("f", "upper", 0o600), dir("d"), file("d/b", "ub")])

add("inode-identity",
    "st_ino: hard links in a lower share one inode; different files differ; stable over time",
    [[file("a", "A"), hardlink("a2", "a"), file("b", "B"), dir("d")],
     [file("c", "C"), hardlink("c2", "c")]],
    [("same_ino", "a", "a2"), ("same_ino", "a", "b"), ("same_ino", "c", "c2"),
     ("same_ino", "a", "c"), ("stat", "a2"), ("ino_save", "a", "a"), ("ino_save", "d", "d"),
     ("ino_save", "b", "b"), ("listdir", "."), ("ino_check", "a", "a"),
     ("ino_check", "d", "d"), ("ino_check", "b", "b"), ("chmod", "b", 0o600),
     ("ino_check", "b", "b")])

add("inode-stable-remount",
    "inode numbers of lower files and dirs are the same after a remount",
    [[file("a", "A"), dir("d"), file("d/x")], [file("b")]],
    [("ino_save", "a", "a"), ("ino_save", "d", "d"), ("ino_save", "x", "d/x"),
     ("ino_save", "b", "b"), ("remount",), ("ino_check", "a", "a"), ("ino_check", "d", "d"),
     ("ino_check", "x", "d/x"), ("ino_check", "b", "b")])

add("statfs-sanity",
    "statfs of the mount root and of a lower subdirectory: sane block counts, name length",
    [[dir("d"), file("d/f")]],
    [("statfs", "."), ("statfs", "d"), ("statfs", "d/f")])

add("access-modes",
    "access(2) as root on lower entries of various modes (X_OK needs some x bit)",
    [[file("r", mode=0o444), file("n", mode=0o000), file("x", mode=0o100), dir("d", 0o000)]],
    [("access", "r", 2), ("access", "n", 4), ("access", "n", 1), ("access", "x", 1),
     ("access", "d", 1), ("listdir", "d"), ("access", "missing", 0)])

add("dotdot-and-dot",
    "paths with . and .. components resolve inside the merged view",
    [[dir("a/b"), file("a/f", "F")], [dir("c")]],
    [("read_file", "a/b/../f"), ("listdir", "a/./b/.."), ("stat", "c/../a"),
     ("create", "a/b/../new", "n"), ("listdir", "a")])
