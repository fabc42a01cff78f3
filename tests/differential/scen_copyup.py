"""Scenarios: copy-up of files, directories, symlinks, special files and hard links."""
from layers import (T1, T2, Registry, device, dir, fifo, file, hardlink, sparse, symlink)

S = Registry()
add = S.add
BIG = bytes(range(256)) * 12288  # 3 MiB

add("copyup-write-middle",
    "writing into the middle of a lower file copies it up with its full content",
    [[file("f", "0123456789abcdef", 0o640, uid=7, gid=8)]],
    [("open", "h", "f", "O_WRONLY"), ("pwrite", "h", b"XY", 4), ("close", "h"),
     ("read_file", "f"), ("stat", "f"), ("mtime", "f")])

add("copyup-o-trunc",
    "open(O_TRUNC) of a lower file from the middle layer",
    [[file("f", "bottom")], [file("f", "middle content", 0o600)], []],
    [("write_file", "f", "new"), ("read_file", "f"), ("stat", "f")])

add("copyup-o-append",
    "O_APPEND writes to a lower file land after its lower content",
    [[file("f", "base\n")]],
    [("append", "f", "one\n"), ("append", "f", "two\n"), ("read_file", "f"),
     ("open", "h", "f", "O_WRONLY|O_APPEND"), ("pwrite", "h", b"Z", 0), ("close", "h"),
     ("read_file", "f")])

add("copyup-parent-chain",
    "copy-up of a deep lower file copies its parents with their modes and owners",
    [[dir("a", 0o711, uid=10, gid=20), dir("a/b", 0o750, uid=11, gid=21),
      dir("a/b/c", 0o700, uid=12, gid=22, xattrs={"user.dir": b"c"}), file("a/b/c/f", "deep")],
     [dir("a", 0o751, uid=40, gid=41), dir("a/b", 0o755, uid=30, gid=31),
      file("a/b/other")]],
    [("append", "a/b/c/f", "+"), ("stat", "a"), ("stat", "a/b"), ("stat", "a/b/c"),
     ("llistxattr", "a/b/c"), ("listdir", "a/b")])

add("copyup-preserves-metadata",
    "copy-up keeps mode, owner, xattrs and the nanosecond mtime of the lower file",
    [[file("f", "data", 0o2751, uid=1000, gid=100, mtime=T1,
           xattrs={"user.a": b"1", "user.b": b"\x00\xff"})]],
    [("lsetxattr", "f", "user.c", "3"), ("stat", "f"), ("mtime", "f"), ("llistxattr", "f"),
     ("lgetxattr", "f", "user.b")])

add("copyup-chmod-only",
    "chmod of a lower file copies it up; data and mtime are unchanged",
    [[file("f", "keep me", 0o644)]],
    [("chmod", "f", 0o600), ("stat", "f"), ("read_file", "f"), ("mtime", "f")])

add("copyup-symlink-lchown",
    "lchown of a lower symlink copies up the link itself, not its target",
    [[file("t", "target"), symlink("l", "t")]],
    [("lchown", "l", 1234, 4321), ("lstat", "l"), ("stat", "l"), ("readlink", "l"),
     ("mtime", "l")])

add("copyup-dir-chmod",
    "chmod of a lower directory copies up the directory only, not its children",
    [[dir("d", 0o755), file("d/a", "a"), dir("d/s"), file("d/s/b")]],
    [("chmod", "d", 0o700), ("stat", "d"), ("listdir", "d"), ("read_file", "d/a")])

add("copyup-dir-chown-keeps-merge",
    "chown of a merged directory keeps the children of every layer visible",
    [[dir("d"), file("d/a")], [dir("d"), file("d/b")]],
    [("chown", "d", 5, 6), ("stat", "d"), ("listdir", "d"), ("create", "d/c"),
     ("listdir", "d"), ("remount",), ("listdir", "d"), ("stat", "d")])

add("no-copyup-on-read",
    "opening and reading a lower file read-only does not copy it up",
    [[file("f", "ro"), dir("d"), file("d/g", "g")]],
    [("open", "h", "f", "O_RDONLY"), ("read", "h", 100), ("close", "h"), ("read_file", "d/g"),
     ("listdir", "d"), ("stat", "f"), ("lgetxattr", "f", "user.none"), ("llistxattr", "f")])

add("copyup-open-wronly-no-write",
    "opening a lower file for writing and closing it without a write",
    [[file("f", "unchanged")]],
    [("open", "h", "f", "O_WRONLY"), ("close", "h"), ("read_file", "f"), ("mtime", "f")])

add("copyup-large-file",
    "a 3 MiB lower file copied up by a one-byte write keeps all other bytes",
    [[file("big", BIG)]],
    [("open", "h", "big", "O_RDWR"), ("pwrite", "h", b"!", 1500000), ("fsync", "h"),
     ("close", "h"), ("read_file", "big"), ("stat", "big")])

add("copyup-sparse",
    "a sparse lower file copied up keeps size and content (holes read as zeros)",
    [[sparse("sp", 8 << 20, {0: b"head", 4 << 20: b"middle", (8 << 20) - 4: b"tail"})]],
    [("append", "sp", "+"), ("stat", "sp"), ("read_file", "sp"),
     ("open", "h", "sp", "O_RDONLY"), ("pread", "h", 8, 4 << 20), ("close", "h")])

add("copyup-sparse-holes",
    "after copy-up a sparse file still has holes (SEEK_HOLE/SEEK_DATA)",
    [[sparse("sp", 8 << 20, {0: b"head", 4 << 20: b"middle"})]],
    # The kernel copies in 1 MiB chunks (the hole starts at 1 MiB there, at 4 KiB in stratafs, which copies
    # extents exactly): ask about offsets both keep as holes and data.
    [("chmod", "sp", 0o600), ("open", "h", "sp", "O_RDONLY"), ("lseek", "h", 2 << 20, "SEEK_HOLE"),
     ("lseek", "h", 1 << 20, "SEEK_DATA"), ("lseek", "h", 6 << 20, "SEEK_HOLE"), ("close", "h")])

add("copyup-ro-fd-sees-new-data",
    "a read-only fd opened before copy-up reads the data written after copy-up",
    [[file("f", "old data")]],
    [("open", "r", "f", "O_RDONLY"), ("read", "r", 3), ("write_file", "f", "NEW DATA!"),
     ("pread", "r", 100, 0), ("fstat", "r"), ("close", "r")])

add("copyup-fchmod-on-ro-fd",
    "fchmod through a read-only fd on a lower file copies it up",
    [[file("f", "x", 0o644)]],
    [("open", "h", "f", "O_RDONLY"), ("fchmod", "h", 0o640), ("fstat", "h"), ("close", "h"),
     ("stat", "f")])

add("copyup-xattrs",
    "setxattr on a lower file keeps its existing xattrs (copied up) and adds the new one",
    [[file("f", "x", xattrs={"user.keep": b"kept", "user.over": b"old"})],
     [dir("d", xattrs={"user.d": b"dv"})]],
    [("lsetxattr", "f", "user.new", "n"), ("lsetxattr", "f", "user.over", "new"),
     ("llistxattr", "f"), ("lgetxattr", "f", "user.over"), ("lsetxattr", "d", "user.e", "e"),
     ("llistxattr", "d"), ("mtime", "f")])

add("copyup-fifo",
    "chmod of a lower fifo copies the fifo up",
    [[fifo("p", 0o644)]],
    [("chmod", "p", 0o600), ("lstat", "p"), ("listdir", ".")])

add("copyup-devices",
    "chown of lower character and block devices copies them up with their rdev",
    [[device("c", "c", 1, 3, 0o666), device("b", "b", 7, 0, 0o660)]],
    [("chown", "c", 100, 100), ("chmod", "b", 0o600), ("lstat", "c"), ("lstat", "b")])

add("copyup-on-link",
    "link() of a lower file copies it up; the new name is a hard link to it",
    [[file("f", "linked", 0o600)]],
    [("link", "f", "g"), ("same_ino", "f", "g"), ("stat", "f"), ("stat", "g"),
     ("append", "g", "+"), ("read_file", "f"), ("listdir", ".")])

add("copyup-setuid-chown",
    "chown of a lower setuid file clears the setuid/setgid bits (even for root)",
    [[file("s", "x", 0o6755, uid=1000, gid=1000)]],
    [("chown", "s", 0, 0), ("stat", "s")])

add("copyup-capability-xattr",
    "security.capability of a lower file survives chmod copy-up; a write drops it",
    [[file("cap", "bin", 0o755,
           xattrs={"security.capability": bytes.fromhex(
               "0000000200100000000000000000000000000000")}),
      file("cap2", "bin2", 0o755,
           xattrs={"security.capability": bytes.fromhex(
               "0000000200100000000000000000000000000000")})]],
    [("chmod", "cap", 0o750), ("llistxattr", "cap"), ("append", "cap2", "+"),
     ("llistxattr", "cap2")])

add("copyup-mtime-explicit",
    "utime on a lower file: copy-up then explicit times are exact to the nanosecond",
    [[file("f", "t"), dir("d"), symlink("l", "f")]],
    [("utime", "f", T1, T2), ("mtime", "f"), ("utime", "d", T2, T1), ("mtime", "d"),
     ("utime", "l", T1, T1), ("mtime", "l"), ("mtime", "f"), ("remount",), ("mtime", "f"),
     ("mtime", "d")])

HL = [[file("a", "shared data", 0o644, uid=3, gid=3), hardlink("b", "a"), dir("d"),
       hardlink("d/c", "a"), file("solo", "s")]]

add("hardlink-copyup-write",
    "index=on: writing one alias of a lower hard link is seen through all aliases",
    HL,
    [("same_ino", "a", "b"), ("write_file", "a", "changed"), ("read_file", "b"),
     ("read_file", "d/c"), ("same_ino", "a", "b"), ("same_ino", "a", "d/c"), ("stat", "b")],
    kernel_opts="index=on", compare_upper=False)

add("hardlink-copyup-chmod",
    "index=on: chmod of one alias of a lower hard link changes every alias",
    HL,
    [("chmod", "b", 0o600), ("stat", "a"), ("stat", "d/c"), ("same_ino", "a", "b")],
    kernel_opts="index=on", compare_upper=False)

add("hardlink-copyup-unlink",
    "index=on: unlinking aliases of a lower hard link; the others keep the data",
    HL,
    [("append", "a", "+1"), ("unlink", "a"), ("read_file", "b"), ("unlink", "d/c"),
     ("read_file", "b"), ("listdir", "."), ("listdir", "d")],
    kernel_opts="index=on", compare_upper=False)

add("hardlink-copyup-remount",
    "index=on: after copy-up and remount, all aliases still share data and inode",
    HL,
    [("append", "d/c", "+x"), ("remount",), ("read_file", "a"), ("read_file", "b"),
     ("same_ino", "a", "d/c"), ("append", "b", "+y"), ("read_file", "d/c")],
    kernel_opts="index=on", compare_upper=False)

add("hardlink-copyup-link-more",
    "index=on: adding a new link to a lower hard-linked file",
    HL,
    [("link", "a", "e"), ("same_ino", "e", "b"), ("append", "e", "!"), ("read_file", "d/c"),
     ("listdir", ".")],
    kernel_opts="index=on", compare_upper=False)
