"""Scenarios: file descriptor I/O: read/write/seek, open flags, unlinked open files, fsync,
fallocate, copy_file_range, SEEK_DATA/SEEK_HOLE, shared mmap."""
from layers import Registry, dir, file, sparse

S = Registry()
add = S.add

add("fd-read-write-seek",
    "write, lseek, read, pread, pwrite and fstat through one fd on a new file",
    [[dir("d")]],
    [("open", "h", "d/f", "O_RDWR|O_CREAT|O_EXCL", 0o640), ("write", "h", b"hello world"),
     ("lseek", "h", 0, "SEEK_CUR"), ("lseek", "h", 6, "SEEK_SET"), ("read", "h", 100),
     ("pwrite", "h", b"W", 0), ("pread", "h", 5, 0), ("lseek", "h", -2, "SEEK_END"),
     ("read", "h", 10), ("fstat", "h"), ("close", "h"), ("read_file", "d/f")])

add("open-flags-errors",
    "O_EXCL on lower/whited-out names, O_DIRECTORY on a file, writing a dir, O_NOFOLLOW",
    [[file("f", "F"), dir("d"), file("gone"), file("t"), ]],
    [("open", "a", "f", "O_WRONLY|O_CREAT|O_EXCL"), ("unlink", "gone"),
     ("open", "b", "gone", "O_WRONLY|O_CREAT|O_EXCL"), ("write", "b", b"back"), ("close", "b"),
     ("open", "c", "f", "O_RDONLY|O_DIRECTORY"), ("open", "e", "d", "O_WRONLY"),
     ("symlink", "t", "l"), ("open", "g", "l", "O_RDONLY|O_NOFOLLOW"),
     ("open", "i", "nodir/x", "O_WRONLY|O_CREAT"), ("open", "j", "f/x", "O_RDONLY"),
     ("read_file", "gone"), ("listdir", ".")])

add("open-unlink-lower",
    "open a lower file read-write, unlink it, keep using the fd",
    [[file("f", "lower data")]],
    [("open", "h", "f", "O_RDWR"), ("unlink", "f"), ("lstat", "f"), ("pread", "h", 100, 0),
     ("pwrite", "h", b"LOWER", 0), ("pread", "h", 100, 0), ("fstat", "h"), ("listdir", "."),
     ("create", "f", "new f"), ("pread", "h", 100, 0), ("read_file", "f"), ("close", "h")])

add("open-unlink-upper",
    "open a new file, unlink it, write and read through the fd, ftruncate it",
    [[]],
    [("open", "h", "tmp", "O_RDWR|O_CREAT"), ("write", "h", b"scratch data"), ("unlink", "tmp"),
     ("fstat", "h"), ("ftruncate", "h", 7), ("pread", "h", 100, 0), ("fsync", "h"),
     ("close", "h"), ("listdir", ".")])

add("open-rename-over",
    "an open lower file replaced by rename keeps serving its old content through the fd",
    [[file("f", "original"), file("g", "replacement")]],
    [("open", "h", "f", "O_RDONLY"), ("rename", "g", "f"), ("pread", "h", 100, 0),
     ("read_file", "f"), ("close", "h")])

add("two-fds-coherent",
    "writes through one fd are visible through another fd of the same (copied-up) file",
    [[file("f", "aaaaaaaaaa")]],
    [("open", "w", "f", "O_WRONLY"), ("open", "r", "f", "O_RDONLY"), ("pwrite", "w", b"BB", 3),
     ("pread", "r", 20, 0), ("ftruncate", "w", 4), ("pread", "r", 20, 0), ("fstat", "r"),
     ("close", "w"), ("close", "r")])

add("fsync-fdatasync",
    "fsync and fdatasync on lower (read-only and copied-up) and upper files and on a dir",
    [[file("f", "x"), dir("d")]],
    [("open", "r", "f", "O_RDONLY"), ("fsync", "r"), ("fdatasync", "r"), ("close", "r"),
     ("open", "w", "f", "O_WRONLY|O_APPEND"), ("write", "w", b"y"), ("fsync", "w"),
     ("fdatasync", "w"), ("close", "w"), ("opendir", "dh", "d"), ("fsync", "dh"),
     ("close", "dh"), ("read_file", "f")])

add("fallocate",
    "fallocate: allocate (extend), KEEP_SIZE, PUNCH_HOLE on lower and upper files",
    [[file("f", "x" * 10000)]],
    [("open", "h", "f", "O_RDWR"), ("fallocate", "h", "", 0, 20000), ("fstat", "h"),
     ("fallocate", "h", "KEEP_SIZE", 0, 100000), ("fstat", "h"),
     ("fallocate", "h", "KEEP_SIZE|PUNCH_HOLE", 4096, 4096), ("pread", "h", 8, 4096),
     ("pread", "h", 8, 8192), ("fstat", "h"), ("close", "h"),
     ("open", "n", "new", "O_RDWR|O_CREAT"), ("fallocate", "n", "", 0, 8192), ("fstat", "n"),
     ("fallocate", "n", "PUNCH_HOLE", 0, 4096), ("close", "n"), ("read_file", "f")])

add("copy-file-range",
    "copy_file_range from a lower file (read-only) into new and copied-up files",
    [[file("src", bytes(range(256)) * 64), file("dst", "0123456789")]],
    [("open", "s", "src", "O_RDONLY"), ("open", "n", "new", "O_WRONLY|O_CREAT"),
     ("copy_file_range", "s", "n", 10000, 100, 0), ("fstat", "n"), ("open", "d", "dst", "O_RDWR"),
     ("copy_file_range", "s", "d", 5, 0, 2), ("close", "s"), ("close", "n"), ("close", "d"),
     ("read_file", "new"), ("read_file", "dst"), ("read_file", "src")])

add("seek-data-hole-lower",
    "SEEK_DATA/SEEK_HOLE on a sparse lower file opened read-only",
    [[sparse("sp", 4 << 20, {0: b"A" * 4096, 2 << 20: b"B" * 4096})]],
    [("open", "h", "sp", "O_RDONLY"), ("lseek", "h", 0, "SEEK_DATA"),
     ("lseek", "h", 0, "SEEK_HOLE"), ("lseek", "h", 8192, "SEEK_DATA"),
     ("lseek", "h", (2 << 20) + 1, "SEEK_HOLE"), ("lseek", "h", (3 << 20), "SEEK_DATA"),
     ("close", "h")])

add("seek-data-hole-upper",
    "SEEK_DATA/SEEK_HOLE on a sparse file created in upper",
    [[]],
    [("open", "h", "sp", "O_RDWR|O_CREAT"), ("pwrite", "h", b"D" * 4096, 1 << 20),
     ("fsync", "h"), ("lseek", "h", 0, "SEEK_DATA"), ("lseek", "h", 0, "SEEK_HOLE"),
     ("lseek", "h", (1 << 20) + 4096, "SEEK_HOLE"), ("fstat", "h"), ("close", "h")])

add("mmap-shared-lower",
    "shared writable mmap of a lower file (copied up on open), msync, read back by read(2)",
    [[file("f", "0123456789" * 1000)]],
    [("open", "h", "f", "O_RDWR"), ("mmap_write", "h", 5, b"MMAP"), ("pread", "h", 16, 0),
     ("mmap_read", "h", 9990, 10), ("close", "h"), ("read_file", "f"), ("stat", "f")])

add("mmap-shared-upper",
    "shared mmap of a new upper file after ftruncate; the data reaches the upper file",
    [[]],
    [("open", "h", "f", "O_RDWR|O_CREAT"), ("ftruncate", "h", 8192),
     ("mmap_write", "h", 4000, b"across-page"), ("fsync", "h"), ("close", "h"),
     ("open", "r", "f", "O_RDONLY"), ("pread", "r", 20, 3995), ("mmap_read", "r", 4000, 11),
     ("close", "r"), ("stat", "f")])

add("append-mode-fd",
    "O_APPEND fd on a lower file: writes go to the end even after lseek",
    [[file("f", "start")]],
    [("open", "h", "f", "O_WRONLY|O_APPEND"), ("lseek", "h", 0, "SEEK_SET"),
     ("write", "h", b"+end"), ("lseek", "h", 0, "SEEK_CUR"), ("close", "h"), ("read_file", "f")])

add("ftruncate-lower-fd",
    "ftruncate through an fd of a lower file opened O_RDWR",
    [[file("f", "0123456789")]],
    [("open", "h", "f", "O_RDWR"), ("ftruncate", "h", 3), ("fstat", "h"),
     ("ftruncate", "h", 6), ("pread", "h", 10, 0), ("close", "h"), ("read_file", "f")])

add("write-read-large",
    "a 2 MiB write and read through the mount, then overwrite at an unaligned offset",
    [[]],
    [("write_file", "big", bytes(range(251)) * 8355), ("open", "h", "big", "O_RDWR"),
     ("pwrite", "h", b"x" * 70000, 123457), ("close", "h"), ("read_file", "big"),
     ("stat", "big")])

add("read-dir-errors",
    "read(2) on a directory fd is EISDIR; write on an O_RDONLY fd is EBADF",
    [[dir("d"), file("f", "F")]],
    [("opendir", "d", "d"), ("read", "d", 10), ("close", "d"), ("open", "r", "f", "O_RDONLY"),
     ("write", "r", b"x"), ("close", "r"), ("read_file", "f")])
