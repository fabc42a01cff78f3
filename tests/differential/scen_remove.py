"""Scenarios: unlink, rmdir, whiteout creation, removing then re-creating files and dirs."""
from layers import Registry, dir, file, hardlink, opaque, symlink, whiteout

S = Registry()
add = S.add

add("unlink-lower-file",
    "unlinking a lower file leaves a whiteout; the name is gone from the merged view",
    [[file("f", "x"), file("g")], [file("f", "y")]],
    [("unlink", "f"), ("lstat", "f"), ("listdir", "."), ("unlink", "f"), ("read_file", "g")])

add("unlink-upper-only",
    "unlinking a file that exists only in upper leaves no trace",
    [[file("other")]],
    [("create", "n", "new"), ("listdir", "."), ("unlink", "n"), ("listdir", "."),
     ("lstat", "n")])

add("unlink-copied-up",
    "unlinking a copied-up lower file removes the upper copy and whites out the lower",
    [[file("f", "lower")]],
    [("append", "f", "+"), ("unlink", "f"), ("lstat", "f"), ("listdir", ".")])

add("unlink-symlink-and-special",
    "unlinking lower symlinks (dangling too); unlink of a dir and rmdir of a file fail",
    [[file("t"), symlink("l", "t"), symlink("dl", "nowhere")], [dir("d")]],
    [("unlink", "l"), ("unlink", "dl"), ("read_file", "t"), ("listdir", "."),
     ("unlink", "d"), ("rmdir", "t")])

add("rmdir-lower-empty",
    "rmdir of an empty lower directory",
    [[dir("e"), dir("keep")]],
    [("rmdir", "e"), ("lstat", "e"), ("listdir", "."), ("rmdir", "e")])

add("rmdir-lower-nonempty",
    "rmdir of a lower dir that has children in some layer fails with ENOTEMPTY",
    [[dir("d"), file("d/a")], [dir("d")], [dir("d")]],
    [("rmdir", "d"), ("listdir", "d"), ("rmdir", "."), ("rmdir", "d/a")])

add("rmdir-after-removing-children",
    "after unlinking every child (from all layers) the merged dir is empty and removable",
    [[dir("d"), file("d/a"), dir("d/s")], [dir("d"), file("d/b")], [dir("d"), file("d/c")]],
    [("unlink", "d/a"), ("rmdir", "d/s"), ("unlink", "d/b"), ("rmdir", "d"),
     ("unlink", "d/c"), ("listdir", "d"), ("rmdir", "d"), ("lstat", "d"), ("listdir", ".")])

add("rmdir-with-whited-out-lower-children",
    "a dir whose lower children are all whited out in a middle layer is empty",
    [[dir("d"), file("d/a"), file("d/b")], [dir("d"), whiteout("d/a"), whiteout("d/b")]],
    [("listdir", "d"), ("rmdir", "d"), ("lstat", "d")])

add("recreate-file",
    "a removed lower file can be re-created; the new one has new content and mode",
    [[file("f", "old", 0o755, uid=5, gid=5)]],
    [("unlink", "f"), ("create", "f", "new", 0o600), ("read_file", "f"), ("stat", "f"),
     ("listdir", ".")])

add("recreate-dir-hides-lower",
    "a removed and re-created lower dir is opaque: lower children stay hidden",
    [[dir("d", 0o700), file("d/a")], [dir("d"), file("d/b")]],
    [("unlink", "d/a"), ("unlink", "d/b"), ("rmdir", "d"), ("mkdir", "d", 0o750),
     ("listdir", "d"), ("lstat", "d/a"), ("stat", "d"), ("create", "d/n"), ("listdir", "d"),
     ("remount",), ("listdir", "d"), ("lstat", "d/b")])

add("recreate-dir-over-file",
    "mkdir where a lower file was unlinked",
    [[file("x", "file")], [dir("y"), file("y/c")]],
    [("unlink", "x"), ("mkdir", "x"), ("lstat", "x"), ("listdir", "x"), ("create", "x/in"),
     ("listdir", "x")])

add("recreate-file-over-dir",
    "create a file where a lower dir was removed, and a dir where a file was",
    [[dir("d")], [file("f", "f")]],
    [("rmdir", "d"), ("create", "d", "now a file"), ("lstat", "d"), ("unlink", "f"),
     ("mkdir", "f"), ("lstat", "f"), ("listdir", ".")])

add("recreate-dir-twice",
    "rmdir/mkdir of a re-created opaque dir, with and without children",
    [[dir("d"), file("d/low")]],
    [("unlink", "d/low"), ("rmdir", "d"), ("mkdir", "d"), ("create", "d/x"), ("rmdir", "d"),
     ("unlink", "d/x"), ("rmdir", "d"), ("mkdir", "d"), ("listdir", "d"), ("lstat", "d/low")])

add("recreate-symlink",
    "replace a lower file with a symlink and a lower symlink with a file",
    [[file("f", "file"), symlink("s", "f")]],
    [("unlink", "f"), ("symlink", "s", "f"), ("unlink", "s"), ("create", "s", "sfile"),
     ("readlink", "f"), ("read_file", "f"), ("lstat", "s")])

add("unlink-through-opaque",
    "unlinking a file in an opaque dir whose name also exists below the opaque layer",
    [[dir("d"), file("d/a", "bottom")], [opaque("d"), file("d/a", "mid")]],
    [("unlink", "d/a"), ("listdir", "d"), ("lstat", "d/a"), ("rmdir", "d"), ("listdir", ".")])

add("unlink-hardlink-alias",
    "index=on: unlinking one alias of a lower hard link leaves the other readable",
    [[file("a", "hl"), hardlink("b", "a"), hardlink("c", "a")]],
    [("stat", "b"), ("unlink", "a"), ("read_file", "b"), ("stat", "b"), ("listdir", "."),
     ("remount",), ("stat", "c")],
    kernel_opts="index=on", compare_upper=False)

add("whiteout-lower-mixed-dir",
    "remove a whole lower tree bottom-up and check the view at each step",
    [[dir("t/a/b"), file("t/a/b/f"), file("t/a/g")], [dir("t/c"), file("t/c/h")]],
    [("rmdir", "t"), ("unlink", "t/a/b/f"), ("rmdir", "t/a/b"), ("tree", "t"),
     ("unlink", "t/a/g"), ("rmdir", "t/a"), ("unlink", "t/c/h"), ("rmdir", "t/c"),
     ("listdir", "t"), ("rmdir", "t"), ("listdir", ".")])
