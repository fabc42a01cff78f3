// SPDX-License-Identifier: Apache-2.0
// archive: unpack_layer() on tars built in the test (libarchive's writer for well-formed ones, raw
// header bytes for the crafted ones). The contract under test (unpack.h): every entry type and its
// metadata lands in overlay format; whiteouts follow the same-layer rules in any order; nothing is
// ever written outside the destination (a sentinel directory next to it must stay empty, a victim
// file keep its link count); malformed and truncated streams fail with the entry named; the source
// is read to its end. Tests that need mknod of devices, chown or trusted.* xattrs skip when not
// root; two tests fork a child that drops to nobody or enters a user namespace to check the
// unprivileged paths. MatchesUmoci uses `umoci unpack` as an oracle (skipped without umoci).
// This file: paths, entry types and metadata, sparse files, xattrs, hard links.
#include "archive_fixture.h"

namespace {

// --- paths ---

TEST(EntryPathTest, Normalizes) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {{"a", "a"},       {"./a", "a"},       {"././a/", "a"},    {"a//b", "a/b"},
               {"a/./b", "a/b"}, {".", ""},          {"./", ""},         {"", ""},
               {"a/b/", "a/b"},  {".../x", ".../x"}, {"..a/b", "..a/b"}, {"a/..b", "a/..b"},
               // umoci insert names the root "/"
               {"/", ""},        {"//", ""},         {"/./", ""}};
  for (const auto& c : cases) {
    auto p = parse_entry_path(c.in);
    ASSERT_TRUE(p) << c.in << ": " << p.error().message();
    EXPECT_EQ(p->joined, c.out) << c.in;
  }
}

TEST(EntryPathTest, RefusesEscapes) {
  for (const char* in :
       {"/abs", "//abs", "/..", "/./..", "..", "../x", "a/../../x", "a/..", "./../x", "a/b/../c"}) {
    auto p = parse_entry_path(in);
    ASSERT_FALSE(p) << in << " accepted as " << p->joined;
    EXPECT_EQ(p.error().err, EINVAL) << in;
    EXPECT_NE(p.error().message().find(std::string("'") + in + "'"), std::string::npos)
        << p.error().message();
  }
}

// --- types and metadata ---

TEST_F(ArchiveTest, EveryType) {
  STRATA_REQUIRE_ROOT();
  std::string tar = TarBuilder()
                        .dir("d", 0750)
                        .file("d/f", "hello", 0640)
                        .file("exe", "#!", 04755)
                        .symlink("d/l", "../exe")
                        .hardlink("d/h", "d/f")
                        .add("fifo", AE_IFIFO, 0620)
                        .device("null", AE_IFCHR, 1, 3)
                        .device("loop", AE_IFBLK, 7, 9)
                        .file("empty", "", 0400)
                        .done();
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(dump(dest),
            ". dir mode=0755 uid=0 gid=0\n"
            "d dir mode=0750 uid=0 gid=0\n"
            "d/f file mode=0640 uid=0 gid=0 size=5 content=hello\n"
            "d/h file mode=0640 uid=0 gid=0 size=5 content=hello\n"
            "d/l symlink mode=0777 uid=0 gid=0 target=../exe\n"
            "empty file mode=0400 uid=0 gid=0 size=0 content=\n"
            "exe file mode=4755 uid=0 gid=0 size=2 content=#!\n"
            "fifo fifo mode=0620 uid=0 gid=0\n"
            "loop blk mode=0600 uid=0 gid=0 rdev=7:9\n"
            "null chr mode=0600 uid=0 gid=0 rdev=1:3\n");
  EXPECT_EQ(lstat_or_throw(path("d/f")).st_ino, lstat_or_throw(path("d/h")).st_ino);
  EXPECT_EQ(lstat_or_throw(path("d/f")).st_nlink, 2u);
  EXPECT_EQ(r->entries, 9u);
  EXPECT_EQ(r->bytes, 7u);
  EXPECT_EQ(r->skipped, 0u);
  EXPECT_TRUE(r->warnings.empty()) << r->warnings[0];
}

TEST_F(ArchiveTest, FdSourceAndPipe) {
  std::string tar =
      TarBuilder(Format::kPax, Compression::kGzip).dir("a").file("a/b", "data").done();
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]);
  std::thread writer([&, w = p[1]] {
    for (size_t off = 0; off < tar.size();) {
      ssize_t n = ::write(w, tar.data() + off, std::min<size_t>(tar.size() - off, 1000));
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(w);
  });
  UniqueFd d(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto r = unpack_layer(rd.get(), d.get(), {});
  writer.join();
  ASSERT_UNPACKS(r);
  EXPECT_EQ(read_file(path("a/b")), "data");
  char c;
  EXPECT_EQ(::read(rd.get(), &c, 1), 0) << "the pipe was not read to its end";
}

TEST_F(ArchiveTest, CompressionsGiveTheSameTree) {
  std::string expected;
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    TempDir t;
    dest = t.sub("dest");
    std::string big(300000, 'x');
    for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
    std::string tar = TarBuilder(Format::kPax, c)
                          .dir("etc", 0755)
                          .file("etc/big", big)
                          .symlink("etc/l", "big")
                          .whiteout("etc/.wh.gone")
                          .done();
    auto r = unpack(tar);
    ASSERT_UNPACKS(r);
    std::string d = dump(dest, DumpOptions{false, false});
    if (expected.empty()) expected = d;
    EXPECT_EQ(d, expected) << "compression " << static_cast<int>(c);
    EXPECT_EQ(r->bytes, big.size());
  }
  EXPECT_NE(expected.find("etc/big file mode=0644 size=300000"), std::string::npos) << expected;
}

TEST_F(ArchiveTest, ModeFieldWithFileTypeBits) {
  std::string tar = raw_entry(Raw("bin/").type('5').mode("0040711")) +
                    raw_entry(Raw("bin/tool").type('0').mode("0100755").data("x")) +
                    raw_entry(Raw("weird").type('0').mode("0060644").data("y")) + kEnd;
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(dump(dest, DumpOptions{false, false}),
            ". dir mode=0755\n"
            "bin dir mode=0711\n"
            "bin/tool file mode=0755 size=1 content=x\n"
            "weird file mode=0644 size=1 content=y\n");
}

TEST_F(ArchiveTest, OwnersIncludingPaxBigIds) {
  STRATA_REQUIRE_ROOT();
  std::string tar = TarBuilder()
                        .file("small", "a", 0644,
                              [](struct archive_entry* e) {
                                archive_entry_set_uid(e, 1000);
                                archive_entry_set_gid(e, 100);
                              })
                        .file("big", "b", 0644,
                              [](struct archive_entry* e) {
                                archive_entry_set_uid(e, 3000000);
                                archive_entry_set_gid(e, 4000000000LL);
                              })
                        .dir("d", 0755,
                             [](struct archive_entry* e) {
                               archive_entry_set_uid(e, 5);
                               archive_entry_set_gid(e, 6);
                             })
                        .symlink("l", "small")
                        .done();
  // The PAX writer must have needed extended headers for the big ids: the test covers them only if
  // so.
  ASSERT_NE(tar.find("uid=3000000"), std::string::npos);
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(lstat_or_throw(path("small")).st_uid, 1000u);
  EXPECT_EQ(lstat_or_throw(path("small")).st_gid, 100u);
  EXPECT_EQ(lstat_or_throw(path("big")).st_uid, 3000000u);
  EXPECT_EQ(lstat_or_throw(path("big")).st_gid, 4000000000u);
  EXPECT_EQ(lstat_or_throw(path("d")).st_uid, 5u);
  EXPECT_EQ(xattr_of(path("big"), "user.fuseoverlayfs.override_stat"), "<absent>");
  EXPECT_EQ(xattr_of(dest, "user.fuseoverlayfs.override_stat"), "<absent>");

  // GNU format has no PAX records: ids that do not fit in octal are base-256 numbers.
  TempDir t;
  dest = t.sub("dest");
  std::string gnu = TarBuilder(Format::kGnu)
                        .file("b256", "c", 0644,
                              [](struct archive_entry* e) {
                                archive_entry_set_uid(e, 3000001);
                                archive_entry_set_gid(e, 3000002);
                              })
                        .done();
  ASSERT_EQ(static_cast<unsigned char>(gnu[108]) & 0x80, 0x80) << "uid not written in base-256";
  ASSERT_UNPACKS(unpack(gnu));
  EXPECT_EQ(lstat_or_throw(path("b256")).st_uid, 3000001u);
  EXPECT_EQ(lstat_or_throw(path("b256")).st_gid, 3000002u);
}

TEST_F(ArchiveTest, UidOutOfRangeIsRefused) {
  std::string tar = pax({{"uid", "4294967295"}}) + raw_entry(Raw("f")) + kEnd;
  expect_fail(tar, EBADMSG, {"'f'", "uid"});
}

TEST_F(ArchiveTest, TimesWithNanosecondsAndNegative) {
  std::string tar = pax({{"mtime", "1234567890.123456789"}, {"atime", "1000000000.5"}}) +
                    raw_entry(Raw("f").data("x")) + pax({{"mtime", "-100.25"}}) +
                    raw_entry(Raw("old").data("y")) + raw_entry(Raw("int").data("z").mtime(86400)) +
                    pax({{"mtime", "42.000000001"}}) + raw_entry(Raw("l").type('2').link("f")) +
                    kEnd;
  ASSERT_UNPACKS(unpack(tar));
  struct stat st = lstat_or_throw(path("f"));
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_atim.tv_nsec, 500000000);
  st = lstat_or_throw(path("old"));
  EXPECT_EQ(st.st_mtim.tv_sec, -101) << "-100.25 s is 101 s minus 0.75 s before the epoch";
  EXPECT_EQ(st.st_mtim.tv_nsec, 750000000);
  st = lstat_or_throw(path("int"));
  EXPECT_EQ(st.st_mtim.tv_sec, 86400);
  EXPECT_EQ(st.st_atim.tv_sec, 86400) << "atime defaults to mtime";
  st = lstat_or_throw(path("l"));
  EXPECT_EQ(st.st_mtim.tv_sec, 42) << "symlink times are its own";
  EXPECT_EQ(st.st_mtim.tv_nsec, 1);
}

TEST_F(ArchiveTest, DirectoryTimesAndModesSurviveTheirChildren) {
  auto t = [](time_t s, long ns) {
    return [=](struct archive_entry* e) {
      archive_entry_set_mtime(e, s, ns);
      archive_entry_set_atime(e, s - 10, 0);
    };
  };
  std::string tar = TarBuilder()
                        .dir(".", 0750, t(1000, 1))
                        .dir("ro", 0555, t(2000, 2))
                        .file("ro/a", "1")
                        .dir("ro/sub", 0500, t(3000, 3))
                        .file("ro/sub/b", "2")
                        .whiteout("ro/sub/.wh.c")
                        .file("ro/z", "3")
                        .dir("late/child", 0700, t(4000, 4))
                        .file("late/child/f", "4")
                        .dir("late", 0705, t(5000, 5))
                        .done();
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  for (auto [p, s, ns, mode] :
       std::vector<std::tuple<std::string, time_t, long, mode_t>>{{"", 1000, 1, 0750},
                                                                  {"ro", 2000, 2, 0555},
                                                                  {"ro/sub", 3000, 3, 0500},
                                                                  {"late/child", 4000, 4, 0700},
                                                                  {"late", 5000, 5, 0705}}) {
    struct stat st = lstat_or_throw(p.empty() ? dest : path(p));
    EXPECT_EQ(st.st_mtim.tv_sec, s) << p;
    EXPECT_EQ(st.st_mtim.tv_nsec, ns) << p;
    EXPECT_EQ(st.st_atim.tv_sec, s - 10) << p;
    EXPECT_EQ(st.st_mode & 07777, mode) << p;
  }
}

TEST_F(ArchiveTest, RootEntryAsUmociWritesIt) {
  // umoci: a "." entry first, whiteouts with mode 0, and (insert) no end-of-archive blocks.
  std::string tar = raw_entry(Raw("./").type('5').mode("0000711").mtime(77)) +
                    raw_entry(Raw("./a").data("x")) + raw_entry(Raw("./.wh.b").mode("0000000"));
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  struct stat st = lstat_or_throw(dest);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_EQ(st.st_mtim.tv_sec, 77);
  EXPECT_EQ(read_file(path("a")), "x");
  EXPECT_TRUE(is_whiteout(path("b")));
  EXPECT_EQ(r->entries, 3u);
}

TEST_F(ArchiveTest, RootEntryMustBeADirectory) {
  // ("./" with a regular file's type flag is a directory to libarchive: old tars mark directories
  // so.)
  expect_fail(raw_entry(Raw(".").data("x")) + kEnd, EINVAL, {"'.'", "root"});
}

TEST_F(ArchiveTest, ChildBeforeParent) {
  std::string tar =
      TarBuilder()
          .file("a/b/c", "deep")
          .dir("a/b", 0700, [](struct archive_entry* e) { archive_entry_set_mtime(e, 99, 0); })
          .dir("a", 0711)
          .done();
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(dump(dest, DumpOptions{false, false}),
            ". dir mode=0755\n"
            "a dir mode=0711\n"
            "a/b dir mode=0700\n"
            "a/b/c file mode=0644 size=4 content=deep\n");
  EXPECT_EQ(lstat_or_throw(path("a/b")).st_mtim.tv_sec, 99);
  EXPECT_TRUE(r->warnings.empty()) << "a parent created early is no duplicate: " << r->warnings[0];
}

// Paths longer than PATH_MAX: every step must work one component (or a few) at a time.
TEST_F(ArchiveTest, PathsLongerThanPathMax) {
  std::string deep;
  for (int i = 0; i < 25; ++i)
    deep += (i ? "/" : "") + std::string(200, static_cast<char>('a' + i));
  ASSERT_GT(deep.size(), 4096u);
  std::string tar =
      TarBuilder()
          .file(deep + "/f", "deep")
          .hardlink(deep + "/h", deep + "/f")
          .dir(deep, 0701, [](struct archive_entry* e) { archive_entry_set_mtime(e, 321, 0); })
          .done();
  auto r = unpack(tar);
  // Read back and clean up through fds: absolute paths this long are refused by the kernel (and by
  // nftw).
  UniqueFd top(::open(tmp.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  UniqueFd cur(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  for (size_t pos = 0; cur && pos < deep.size();) {
    size_t slash = deep.find('/', pos);
    if (slash == std::string::npos) slash = deep.size();
    cur = UniqueFd(::openat(cur.get(), deep.substr(pos, slash - pos).c_str(),
                            O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    pos = slash + 1;
  }
  struct stat dir_st {
  }, f_st{}, h_st{};
  bool found = cur && ::fstat(cur.get(), &dir_st) == 0 &&
               ::fstatat(cur.get(), "f", &f_st, AT_SYMLINK_NOFOLLOW) == 0 &&
               ::fstatat(cur.get(), "h", &h_st, AT_SYMLINK_NOFOLLOW) == 0;
  cur.reset();
  EXPECT_OK(strata::sys::remove_tree_at(top.get(), "dest"));
  ASSERT_EQ(::mkdir(dest.c_str(), 0755), 0);
  ASSERT_UNPACKS(r);
  ASSERT_TRUE(found);
  EXPECT_EQ(dir_st.st_mode & 07777, 0701u);
  EXPECT_EQ(dir_st.st_mtim.tv_sec, 321);
  EXPECT_EQ(f_st.st_ino, h_st.st_ino);
  EXPECT_EQ(f_st.st_size, 4);
}

// --- sparse files ---

// Data regions of the file at p, as (offset, length) from SEEK_DATA/SEEK_HOLE.
std::vector<std::pair<off_t, off_t>> data_regions(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + p);
  std::vector<std::pair<off_t, off_t>> out;
  off_t end = ::lseek(fd, 0, SEEK_END);
  for (off_t off = 0; off < end;) {
    off_t d = ::lseek(fd, off, SEEK_DATA);
    if (d < 0) break;
    off_t h = ::lseek(fd, d, SEEK_HOLE);
    out.emplace_back(d, h - d);
    off = h;
  }
  ::close(fd);
  return out;
}

std::string sparse_content() {
  std::string s(8 << 20, '\0');
  memset(&s[1 << 20], 'a', 4096);
  memset(&s[5 << 20], 'b', 8192);
  memset(&s[(8 << 20) - 4096], 'c', 4096);
  return s;
}

TEST_F(ArchiveTest, SparseFromLibarchivePax) {
  std::string content = sparse_content();
  content.resize(content.size() + (1 << 20));  // ends in a hole
  std::string tar = TarBuilder()
                        .file("sparse", content, 0644,
                              [](struct archive_entry* e) {
                                archive_entry_sparse_add_entry(e, 1 << 20, 4096);
                                archive_entry_sparse_add_entry(e, 5 << 20, 8192);
                                archive_entry_sparse_add_entry(e, (8 << 20) - 4096, 4096);
                              })
                        .done();
  ASSERT_LT(tar.size(), 1u << 20) << "the writer did not write a sparse entry";
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(read_file(path("sparse")), content);
  EXPECT_EQ(r->bytes, 16384u);
  auto regions = data_regions(path("sparse"));
  off_t total = 0;
  for (auto [o, l] : regions) total += l;
  EXPECT_LT(total, 1 << 20) << "holes were written as data";
  EXPECT_EQ(lstat_or_throw(path("sparse")).st_size, (9 << 20));
}

// GNU tar writes the sparse forms libarchive's writer does not: old GNU 'S' headers and PAX 0.1
// / 1.0.
TEST_F(ArchiveTest, SparseFromGnuTar) {
  if (::access("/usr/bin/tar", X_OK) != 0 && ::access("/bin/tar", X_OK) != 0)
    GTEST_SKIP() << "no GNU tar";
  std::string src = tmp.sub("sparsesrc");
  std::string content = sparse_content();
  {
    int fd = ::open((src + "/f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(content.size())), 0);
    for (auto [o, l] : std::vector<std::pair<off_t, size_t>>{
             {1 << 20, 4096}, {5 << 20, 8192}, {(8 << 20) - 4096, 4096}})
      ASSERT_EQ(::pwrite(fd, content.data() + o, l, o), static_cast<ssize_t>(l));
    ::close(fd);
  }
  for (std::string flags : {"--format=gnu", "--format=posix --sparse-version=0.1",
                            "--format=posix --sparse-version=1.0"}) {
    TempDir t;
    dest = t.sub("dest");
    std::string tarfile = t.path() + "/s.tar";
    std::string cmd = "tar -C " + src + " --sparse " + flags + " -cf " + tarfile + " f";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::string tar = read_file(tarfile);
    ASSERT_LT(tar.size(), 1u << 20) << flags;
    auto r = unpack(tar);
    ASSERT_UNPACKS(r) << flags;
    EXPECT_EQ(read_file(path("f")), content) << flags;
    off_t total = 0;
    for (auto [o, l] : data_regions(path("f"))) total += l;
    EXPECT_LT(total, 1 << 20) << flags << ": holes were written as data";
  }
}

TEST_F(ArchiveTest, SparseMapBeyondTheSizeIsRefused) {
  // PAX 0.1 map "offset,size" pairs: a block at 1 MiB in a file declared 10 bytes long.
  std::string tar = pax({{"GNU.sparse.size", "10"},
                         {"GNU.sparse.numblocks", "1"},
                         {"GNU.sparse.map", "1048576,4"}}) +
                    raw_entry(Raw("s").data("abcd")) + kEnd;
  auto r = unpack(tar);
  if (r) {
    // libarchive may clamp the map itself; then the file must still be what the header declared.
    EXPECT_LE(lstat_or_throw(path("s")).st_size, 10);
  } else {
    EXPECT_NE(r.error().message().find("'s'"), std::string::npos) << r.error().message();
  }
}

// --- xattrs ---

TEST_F(ArchiveTest, XattrsIncludingCapabilitiesAfterChown) {
  STRATA_REQUIRE_ROOT();
  std::string cap = cap_net_bind_service();
  std::string tar =
      TarBuilder()
          .file("ping", "elf", 0755,
                [&](struct archive_entry* e) {
                  archive_entry_set_uid(e, 1000);
                  archive_entry_xattr_add_entry(e, "security.capability", cap.data(), cap.size());
                  archive_entry_xattr_add_entry(e, "user.note", "hi", 2);
                  archive_entry_xattr_add_entry(e, "trusted.t", "\0\1", 2);
                })
          .dir("d", 0755,
               [](struct archive_entry* e) {
                 archive_entry_xattr_add_entry(e, "user.dir", "v", 1);
                 // Overlay's own name: data of the layer, stored escaped, not obeyed.
                 archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
               })
          .symlink("l", "ping")
          .done();
  // Go's archive/tar writes only SCHILY.xattr records: cover those too.
  std::string go = pax({{"SCHILY.xattr.user.go", "from go"}, {"SCHILY.xattr.user.empty", ""}}) +
                   raw_entry(Raw("go").data("g")) + kEnd;
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(xattr_of(path("ping"), "security.capability"), cap)
      << "chown after the xattr dropped it";
  EXPECT_EQ(lstat_or_throw(path("ping")).st_uid, 1000u);
  EXPECT_EQ(xattr_of(path("ping"), "user.note"), "hi");
  EXPECT_EQ(xattr_of(path("ping"), "trusted.t"), std::string("\0\1", 2));
  EXPECT_EQ(xattr_of(path("d"), "user.dir"), "v");
  EXPECT_EQ(xattr_of(path("d"), "trusted.overlay.opaque"), "<absent>");
  EXPECT_EQ(xattr_of(path("d"), "trusted.overlay.overlay.opaque"), "y");

  TempDir t;
  dest = t.sub("dest");
  ASSERT_UNPACKS(unpack(go));
  EXPECT_EQ(xattr_of(path("go"), "user.go"), "from go");
  EXPECT_EQ(xattr_of(path("go"), "user.empty"), "");
}

TEST_F(ArchiveTest, PrivateAndRefusedXattrsAreWarnings) {
  // strata's own state is not the layer's to set; a user.* xattr on a symlink is refused by the
  // kernel (EPERM): both entries stay, with a warning each.
  std::string tar =
      pax({{"SCHILY.xattr.user.strata.owner", "0:0"}, {"SCHILY.xattr.user.ok", "1"}}) +
      raw_entry(Raw("f").data("x")) + pax({{"SCHILY.xattr.user.onlink", "v"}}) +
      raw_entry(Raw("l2").type('2').link("f")) + kEnd;
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(xattr_of(path("f"), "user.ok"), "1");
  EXPECT_EQ(xattr_of(path("f"), "user.strata.owner"), "<absent>")
      << "a layer may not set strata's state";
  EXPECT_TRUE(S_ISLNK(lstat_or_throw(path("l2")).st_mode));
  std::string all;
  for (const auto& w : r->warnings) all += w + "\n";
  EXPECT_NE(all.find("user.strata.owner"), std::string::npos) << all;
  EXPECT_NE(all.find("user.onlink"), std::string::npos) << all;
}

// --- hard links ---

TEST_F(ArchiveTest, HardLinkToASymlinkLinksTheSymlink) {
  std::string tar = TarBuilder()
                        .symlink("s", victim_ + "/secret")
                        .hardlink("h", "s")
                        .symlink("rel", "../victim/secret")
                        .hardlink("d/h2", "./rel")
                        .done();
  ASSERT_UNPACKS(unpack(tar));
  struct stat st = lstat_or_throw(path("h"));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(st.st_ino, lstat_or_throw(path("s")).st_ino);
  EXPECT_TRUE(S_ISLNK(lstat_or_throw(path("d/h2")).st_mode));
}

TEST_F(ArchiveTest, HardLinkTargetMustBeInThisLayer) {
  std::string tar =
      TarBuilder().file("a", "x").hardlink("b", "usr/lib/missing").file("c", "y").done();
  expect_fail(tar, ENOENT, {"'b'", "'usr/lib/missing'", "not in this layer"});

  TempDir t;
  dest = t.sub("dest");
  UnpackOptions o;
  o.allow_external_hardlinks = true;
  auto r = unpack(tar, o);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(ls(dest), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(r->skipped, 1u);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("usr/lib/missing"), std::string::npos) << r->warnings[0];
}

TEST_F(ArchiveTest, HardLinkBeforeItsTargetFails) {
  expect_fail(TarBuilder().hardlink("b", "a").file("a", "x").done(), ENOENT, {"'b'", "'a'"});
}

TEST_F(ArchiveTest, HardLinkToWhiteoutOrDirectoryFails) {
  expect_fail(TarBuilder().whiteout(".wh.a").hardlink("b", "a").done(), ENOENT, {"'b'"});
  TempDir t;
  dest = t.sub("dest");
  expect_fail(TarBuilder().dir("d").hardlink("b", "d").done(), EPERM, {"'b'", "directory"});
  TempDir t2;
  dest = t2.sub("dest");
  expect_fail(TarBuilder().whiteout(".wh.a").hardlink("b", ".wh.a").done(), ENOENT, {"'b'"});
}

TEST_F(ArchiveTest, HardLinkDataIsIgnoredAndSelfLinkIsHarmless) {
  // PAX interchange allows a hard link to carry data (libarchive then obeys the size); we ignore
  // it.
  std::string tar = raw_entry(Raw("a").data("orig")) + pax({{"linkpath", "a"}}) +
                    raw_entry(Raw("b").type('1').data("ignored").link("a")) +
                    raw_entry(Raw("a").type('1').link("a")) + kEnd;
  ASSERT_UNPACKS(unpack(tar));
  EXPECT_EQ(read_file(path("b")), "orig");
  EXPECT_EQ(read_file(path("a")), "orig");
  EXPECT_EQ(lstat_or_throw(path("a")).st_nlink, 2u);
}

}  // namespace
