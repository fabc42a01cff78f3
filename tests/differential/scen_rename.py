"""Scenarios: rename(2) and renameat2 (NOREPLACE, EXCHANGE) of files and directories."""
from layers import Registry, dir, file, hardlink, opaque, symlink, whiteout

S = Registry()
add = S.add

add("rename-upper-file",
    "rename of a file that exists only in upper",
    [[file("x")]],
    [("create", "a", "A"), ("rename", "a", "b"), ("listdir", "."), ("read_file", "b"),
     ("lstat", "a")])

add("rename-lower-file",
    "rename of a lower file: copied up to the new name, the old name whited out",
    [[file("a", "lower a", 0o640, uid=9, gid=9)]],
    [("rename", "a", "b"), ("lstat", "a"), ("read_file", "b"), ("stat", "b"), ("mtime", "b"),
     ("listdir", ".")])

add("rename-lower-over-lower",
    "rename of a lower file over another lower file from a different layer",
    [[file("a", "A")], [file("b", "B")]],
    [("rename", "a", "b"), ("read_file", "b"), ("listdir", "."), ("lstat", "a")])

add("rename-onto-whiteout",
    "rename onto a name whose lower file was unlinked (whiteout) and back",
    [[file("a", "A"), file("b", "B")]],
    [("unlink", "b"), ("rename", "a", "b"), ("read_file", "b"), ("rename", "b", "a"),
     ("read_file", "a"), ("listdir", ".")])

add("rename-onto-lower-whiteout",
    "rename onto a name whited out in a lower layer",
    [[file("w", "hidden")], [whiteout("w"), file("a", "A")]],
    [("rename", "a", "w"), ("read_file", "w"), ("listdir", ".")])

add("rename-across-dirs",
    "rename a lower file from one lower dir into another lower dir",
    [[dir("d1"), file("d1/f", "F")], [dir("d2"), file("d2/g")]],
    [("rename", "d1/f", "d2/f"), ("listdir", "d1"), ("listdir", "d2"), ("read_file", "d2/f"),
     ("rename", "d2/g", "d1/g"), ("tree", ".")])

add("rename-into-opaque-dir",
    "rename a file into an opaque dir where a lower file of the same name is hidden",
    [[dir("o"), file("o/f", "hidden")], [opaque("o"), file("f", "F")]],
    [("rename", "f", "o/f"), ("read_file", "o/f"), ("listdir", "o")])

add("rename-noreplace",
    "RENAME_NOREPLACE: EEXIST on an existing lower/upper name, OK onto whiteouts and new names",
    [[file("a", "A"), file("b", "B"), file("c", "C")]],
    [("renameat2", "a", "b", "NOREPLACE"), ("unlink", "c"), ("renameat2", "a", "c", "NOREPLACE"),
     ("renameat2", "b", "new", "NOREPLACE"), ("create", "u"), ("renameat2", "u", "new",
                                                                "NOREPLACE"),
     ("listdir", "."), ("read_file", "c")])

add("rename-exchange-files",
    "RENAME_EXCHANGE of a lower file with an upper file, and of two lower files",
    [[file("a", "A"), file("b", "B")], [file("c", "C")]],
    [("create", "u", "U"), ("renameat2", "a", "u", "EXCHANGE"), ("read_file", "a"),
     ("read_file", "u"), ("renameat2", "b", "c", "EXCHANGE"), ("read_file", "b"),
     ("read_file", "c"), ("renameat2", "a", "missing", "EXCHANGE"), ("listdir", ".")])

add("rename-exchange-file-dir",
    "RENAME_EXCHANGE of an upper file with an upper-only directory",
    [[dir("x")]],
    [("create", "f", "F"), ("mkdir", "ud"), ("create", "ud/in"),
     ("renameat2", "f", "ud", "EXCHANGE"), ("lstat", "f"), ("listdir", "f"), ("read_file", "ud"),
     ("renameat2", "f", "x", "EXCHANGE")])

add("rename-upper-dir",
    "rename of a directory that exists only in upper (with contents) works",
    [[dir("p"), file("p/x")]],
    [("mkdir", "u"), ("create", "u/a", "A"), ("mkdir", "u/s"), ("create", "u/s/b"),
     ("rename", "u", "p/moved"), ("tree", "p"), ("rename", "p/moved", "v"), ("listdir", ".")])

add("rename-lower-dir",
    "rename of a directory from a lower layer (EXDEV without redirect_dir)",
    [[dir("d"), file("d/a")], [dir("e")]],
    [("rename", "d", "d2"), ("rename", "e", "e2"), ("listdir", "."), ("listdir", "d"),
     ("renameat2", "d", "n", "NOREPLACE")])

add("rename-merged-dir",
    "rename of a directory merged from several layers, after copy-up of the dir",
    [[dir("m"), file("m/a")], [dir("m"), file("m/b")]],
    [("chmod", "m", 0o700), ("rename", "m", "m2"), ("listdir", "m"), ("lstat", "m2")])

add("rename-upper-dir-over-lower-empty-dir",
    "rename an upper-only dir over an empty lower dir: the lower contents must not show",
    [[dir("e"), dir("full"), file("full/x")], [dir("e")]],
    [("mkdir", "u"), ("create", "u/a"), ("rename", "u", "e"), ("listdir", "e"),
     ("rename", "e", "full"), ("listdir", "."), ("remount",), ("listdir", "e")])

add("rename-upper-dir-over-emptied-lower-dir",
    "rename an upper dir over a lower dir emptied by unlinking: its lower files stay hidden",
    [[dir("t"), file("t/old1"), file("t/old2")]],
    [("unlink", "t/old1"), ("unlink", "t/old2"), ("mkdir", "u"), ("create", "u/new"),
     ("rename", "u", "t"), ("listdir", "t"), ("lstat", "t/old1"), ("remount",),
     ("listdir", "t")])

add("rename-recreated-dir",
    "rename of a removed-and-re-created (opaque) dir, and into the old lower name",
    [[dir("d"), file("d/low")], [dir("k"), file("k/x")]],
    [("unlink", "d/low"), ("rmdir", "d"), ("mkdir", "d"), ("create", "d/new"),
     ("rename", "d", "e"), ("listdir", "e"), ("lstat", "d"), ("mkdir", "d"),
     ("listdir", "d"), ("rename", "e", "d"), ("listdir", "d")])

add("rename-errors",
    "rename error cases: dir into own subdir, file over dir, dir over file, over non-empty dir",
    [[dir("a/b"), file("f"), dir("full"), file("full/x")]],
    [("mkdir", "u"), ("mkdir", "u/sub"), ("rename", "u", "u/sub/x"), ("rename", "f", "a"),
     ("rename", "u", "f"), ("rename", "u", "full"), ("rename", "missing", "z"),
     ("rename", "f", "nodir/f"), ("rename", ".", "x"), ("create", "g"), ("rename", "g", "f/x")])

add("rename-same-inode",
    "index=on: rename between two names of the same hard link (lower or upper) is a no-op",
    [[file("a", "A"), hardlink("b", "a")]],
    [("rename", "a", "b"), ("listdir", "."), ("read_file", "a"), ("create", "u"),
     ("link", "u", "v"), ("rename", "u", "v"), ("listdir", ".")],
    kernel_opts="index=on", compare_upper=False)

add("rename-symlinks",
    "rename of a lower symlink and over a lower symlink (the link is moved, not its target)",
    [[file("t", "T"), symlink("l", "t"), symlink("l2", "t")]],
    [("rename", "l", "m"), ("readlink", "m"), ("read_file", "m"), ("create", "n", "N"),
     ("rename", "n", "l2"), ("lstat", "l2"), ("read_file", "t")])

add("rename-onto-whited-out-dir-name",
    "rename a file onto the name of a removed lower directory",
    [[dir("d"), file("d/c"), file("f", "F")]],
    [("unlink", "d/c"), ("rmdir", "d"), ("rename", "f", "d"), ("lstat", "d"),
     ("read_file", "d"), ("listdir", ".")])

add("rename-file-chain",
    "a chain of renames a->b->c->a through lower, upper and whiteout names",
    [[file("a", "A"), file("c", "C")]],
    [("rename", "a", "b"), ("rename", "b", "c"), ("rename", "c", "a"), ("listdir", "."),
     ("read_file", "a"), ("lstat", "b"), ("lstat", "c")])

add("rename-copied-up-file-keeps-inode",
    "a renamed lower file keeps its inode number (overlayfs reports the origin inode)",
    [[file("a", "A"), dir("d")]],
    [("ino_save", "a", "a"), ("rename", "a", "d/b"), ("ino_check", "a", "d/b"),
     ("ino_save", "d", "d"), ("create", "d/x"), ("ino_check", "d", "d")])
