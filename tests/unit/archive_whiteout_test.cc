// SPDX-License-Identifier: Apache-2.0
// archive: whiteouts and opaque directories, duplicates, names, stream ends and errors.
#include "archive_fixture.h"

namespace {

// --- whiteouts ---

// The opaque xattr the default options write: trusted.* as root, user.* otherwise.
std::string opaque_xattr() {
  return ::geteuid() == 0 ? "trusted.overlay.opaque" : "user.overlay.opaque";
}

TEST_F(ArchiveTest, WhiteoutsAndOpaqueDirectories) {
  std::string tar = TarBuilder()
                        .whiteout(".wh.gone")
                        .whiteout("etc/.wh..wh..opq")  // before its directory
                        .dir("etc", 0711)
                        .file("etc/passwd", "root")
                        .whiteout("etc/.wh.shadow")
                        .dir("var")
                        .whiteout("var/.wh..wh..opq")  // after it
                        .whiteout("new/deep/.wh.x")    // parents only implied
                        .done();
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  // (Whiteout devices need no privilege since Linux 5.8.)
  const std::string opq = opaque_xattr();
  EXPECT_EQ(dump(dest, DumpOptions{false, true}),
            ". dir mode=0755\n"
            "etc dir mode=0711 xattr " +
                opq +
                "=y\n"
                "etc/passwd file mode=0644 size=4 content=root\n"
                "etc/shadow whiteout\n"
                "gone whiteout\n"
                "new dir mode=0755\n"
                "new/deep dir mode=0755\n"
                "new/deep/x whiteout\n"
                "var dir mode=0755 xattr " +
                opq + "=y\n");
  EXPECT_EQ(r->whiteouts, 3u);
  EXPECT_EQ(r->opaques, 2u);
}

TEST_F(ArchiveTest, WhiteoutFilesAndUserXattrForms) {
  std::string tar = TarBuilder()
                        .whiteout(".wh.gone")
                        .whiteout("etc/.wh..wh..opq")
                        .dir("etc")
                        .whiteout("etc/.wh.shadow")
                        .done();
  UnpackOptions o;
  o.whiteout_files = true;
  o.userxattr = true;
  ASSERT_UNPACKS(unpack(tar, o));
  EXPECT_EQ(dump(dest, DumpOptions{false, true}),
            ". dir mode=0755\n"
            ".wh.gone file mode=0600 size=0 content=\n"
            "etc dir mode=0755 xattr user.overlay.opaque=y\n"
            "etc/.wh.shadow file mode=0600 size=0 content=\n");

  TempDir t;
  dest = t.sub("dest");
  UnpackOptions u;
  u.privilege = Privilege::kUnprivileged;
  ASSERT_UNPACKS(unpack(tar, u));
  EXPECT_EQ(xattr_of(path("etc"), "user.overlay.opaque"), "y");
  EXPECT_EQ(xattr_of(path("etc"), "trusted.overlay.opaque"), "<absent>");
}

// `.wh.X` and X in one layer: X stays, whatever the order; a directory X hides the lower one's
// contents.
TEST_F(ArchiveTest, WhiteoutAndEntryOfTheSameName) {
  const std::string opq = opaque_xattr();
  for (bool files : {false, true}) {
    TempDir t;
    dest = t.sub("dest");
    std::string tar =
        TarBuilder()
            .whiteout(".wh.f1")
            .file("f1", "after")
            .file("f2", "before")
            .whiteout(".wh.f2")
            .whiteout(".wh.d1")
            .dir("d1")
            .file("d1/x", "1")
            .dir("d2")
            .file("d2/y", "2")
            .whiteout(".wh.d2")
            .whiteout(".wh.d3")
            .file("d3/z", "3")  // the whited-out d3 exists after all, through its child
            .done();
    UnpackOptions o;
    o.whiteout_files = files;
    auto r = unpack(tar, o);
    ASSERT_UNPACKS(r);
    EXPECT_EQ(dump(dest, DumpOptions{false, true}),
              ". dir mode=0755\n"
              "d1 dir mode=0755 xattr " +
                  opq +
                  "=y\n"
                  "d1/x file mode=0644 size=1 content=1\n"
                  "d2 dir mode=0755 xattr " +
                  opq +
                  "=y\n"
                  "d2/y file mode=0644 size=1 content=2\n"
                  "d3 dir mode=0755 xattr " +
                  opq +
                  "=y\n"
                  "d3/z file mode=0644 size=1 content=3\n"
                  "f1 file mode=0644 size=5 content=after\n"
                  "f2 file mode=0644 size=6 content=before\n")
        << (files ? "whiteout files" : "whiteout devices");
    EXPECT_TRUE(r->warnings.empty()) << r->warnings[0];
  }
}

TEST_F(ArchiveTest, WhiteoutBelowANonDirectoryIsSkipped) {
  std::string tar = TarBuilder()
                        .file("x", "file")
                        .whiteout("x/.wh.child")
                        .whiteout("x/.wh..wh..opq")
                        .symlink("l", outside)
                        .whiteout("l/.wh.y")
                        .whiteout("l/.wh..wh..opq")
                        .whiteout(".wh.w")
                        .whiteout("w/.wh.below")
                        .done();
  UnpackOptions o;
  o.whiteout_files = true;  // the `.wh.w` file form must block `w/` as well as a device would
  auto r = unpack(tar, o);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(ls(dest), (std::vector<std::string>{".wh.w", "l", "x"}));
  EXPECT_EQ(read_file(path("x")), "file");
  EXPECT_EQ(r->skipped, 5u);
  EXPECT_TRUE(r->warnings.empty()) << r->warnings[0];
}

TEST_F(ArchiveTest, WhiteoutOfAnInvalidNameIsRefused) {
  expect_fail(raw_entry(Raw("d/.wh..")) + kEnd, EINVAL, {"'d/.wh..'"});
  TempDir t;
  dest = t.sub("dest");
  expect_fail(raw_entry(Raw(".wh...")) + kEnd, EINVAL, {"'.wh...'"});
}

TEST_F(ArchiveTest, WhiteoutNamesAsDirectoriesAndAufsMetadata) {
  expect_fail(TarBuilder().file(".wh.x/y", "1").done(), EINVAL, {"'.wh.x/y'", "whiteout name"});
  TempDir t;
  dest = t.sub("dest");
  auto r = unpack(TarBuilder()
                      .dir(".wh..wh.plnk")
                      .file(".wh..wh.plnk/12.34", "aufs")
                      .file(".wh..wh.aufs", "")
                      .file("keep", "k")
                      .done());
  ASSERT_UNPACKS(r);
  EXPECT_EQ(ls(dest), std::vector<std::string>{"keep"});
  EXPECT_EQ(r->skipped, 3u);
}

// --- duplicates ---

TEST_F(ArchiveTest, DuplicatesLastWins) {
  std::string tar =
      TarBuilder()
          .file("f", "first")
          .file("f", "second", 0600)
          .dir("d", 0700)
          .file("d/inner", "i")
          .dir("d", 0750)  // metadata only
          .dir("gone", 0700, [](struct archive_entry* e) { archive_entry_set_mtime(e, 5, 0); })
          .dir("gone/sub", 0700)
          .file("gone/sub/x", "x")
          .file("gone", "now a file")  // the directory and its pending metadata go
          .file("tofile", "")
          .dir("tofile", 0711)
          .symlink("sl", "f")
          .file("sl", "real")
          .done();
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(dump(dest, DumpOptions{false, false}),
            ". dir mode=0755\n"
            "d dir mode=0750\n"
            "d/inner file mode=0644 size=1 content=i\n"
            "f file mode=0600 size=6 content=second\n"
            "gone file mode=0644 size=10 content=now\\x20a\\x20file\n"
            "sl file mode=0644 size=4 content=real\n"
            "tofile dir mode=0711\n");
  EXPECT_EQ(r->warnings.size(), 5u);
}

// --- GNU long names, non-UTF-8 names ---

TEST_F(ArchiveTest, GnuLongNamesAndTargets) {
  std::string dir(120, 'd');
  std::string name = dir + "/" + std::string(150, 'n');
  std::string target = std::string(180, 't');
  std::string tar = TarBuilder(Format::kGnu)
                        .dir(dir)
                        .file(name, "long")
                        .symlink(dir + "/l", target)
                        .hardlink(dir + "/h", name)
                        .done();
  ASSERT_NE(tar.find("././@LongLink"), std::string::npos)
      << "no GNU long name records were written";
  ASSERT_UNPACKS(unpack(tar));
  EXPECT_EQ(read_file(path(name)), "long");
  char buf[512];
  ssize_t n = ::readlink(path(dir + "/l").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))), target);
  EXPECT_EQ(lstat_or_throw(path(dir + "/h")).st_ino, lstat_or_throw(path(name)).st_ino);
}

TEST_F(ArchiveTest, NamesAreKeptByteForByte) {
  std::string tar = pax({{"path", "caf\xc3\xa9"}}) + raw_entry(Raw("placeholder").data("1")) +
                    pax({{"path", "lat\xe9"}}) + raw_entry(Raw("placeholder2").data("2")) +
                    raw_entry(Raw("raw\xff").data("3")) + kEnd;
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(read_file(path("caf\xc3\xa9")), "1");
  EXPECT_EQ(read_file(path("lat\xe9")), "2");
  EXPECT_EQ(read_file(path("raw\xff")), "3");
  // Valid UTF-8 costs no warning; the Latin-1 PAX name does (libarchive could not convert it).
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("lat\\xe9"), std::string::npos) << r->warnings[0];
}

// --- streams ---

TEST_F(ArchiveTest, EndBlocksAreOptionalAndEmptyLayersWork) {
  std::string body = raw_entry(Raw("a").data("x"));
  ASSERT_UNPACKS(unpack(body));
  EXPECT_EQ(read_file(path("a")), "x");
  for (const std::string& tar : {std::string(), kEnd, std::string(10240, '\0'), TarBuilder().done(),
                                 TarBuilder(Format::kPax, Compression::kGzip).done(),
                                 TarBuilder(Format::kPax, Compression::kZstd).done()}) {
    TempDir t;
    dest = t.sub("dest");
    auto r = unpack(tar);
    ASSERT_UNPACKS(r) << tar.size() << " bytes";
    EXPECT_EQ(r->entries, 0u);
    EXPECT_TRUE(ls(dest).empty());
  }
}

TEST_F(ArchiveTest, TrailingBytesAfterTheArchiveAreRead) {
  std::string tar = raw_entry(Raw("a").data("x")) + kEnd + std::string(300000, 'J');
  ASSERT_UNPACKS(unpack(tar));  // unpack() checks the source was read to its end
}

TEST_F(ArchiveTest, TruncatedArchives) {
  std::string data(5000, 'q');
  std::string full = raw_entry(Raw("first").data("1")) + raw_entry(Raw("big").data(data)) + kEnd;
  // In the middle of the data of 'big'.
  expect_fail(full.substr(0, 1024 + 512 + 1000), EBADMSG, {"'big'", "runcated"});
  // In the middle of the header after 'first'.
  TempDir t;
  dest = t.sub("dest");
  expect_fail(full.substr(0, 1024 + 200), EBADMSG, {"'first'", "runcated"});
  // Compressed and cut (incompressible data, so that the cut lands inside an entry's data).
  std::string noise(200000, '\0');
  uint32_t x = 12345;
  for (char& c : noise) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  std::string gz =
      TarBuilder(Format::kPax, Compression::kGzip).file("f", noise).file("g", noise).done();
  TempDir t2;
  dest = t2.sub("dest");
  auto r = unpack(gz.substr(0, gz.size() * 3 / 4));
  ASSERT_FALSE(r) << "a gzip stream cut short unpacked";
  EXPECT_NE(r.error().message().find("'g'"), std::string::npos) << r.error().message();
}

TEST_F(ArchiveTest, GarbageIsRefused) {
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i)
    garbage[i] = static_cast<char>((i * 7919 + 13) % 251 + 1);
  expect_fail(garbage, EBADMSG, {"nrecognized"});
  // A header with a bad checksum after a good entry.
  std::string bad = raw_header(Raw("b"));
  bad[0] = 'c';
  TempDir t;
  dest = t.sub("dest");
  expect_fail(raw_entry(Raw("a")) + bad + kEnd, EBADMSG, {"'a'"});
  // gzip magic, then nonsense.
  TempDir t2;
  dest = t2.sub("dest");
  auto r = unpack(std::string("\x1f\x8b\x08\x00", 4) + garbage);
  EXPECT_FALSE(r) << "corrupt gzip unpacked";
}

TEST_F(ArchiveTest, SourceErrorsAreReported) {
  UniqueFd d(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  std::string tar = TarBuilder().file("f", std::string(100000, 'a')).done();
  size_t pos = 0;
  auto r = unpack_layer(
      [&](void* buf, size_t n) -> ssize_t {
        if (pos > 20000) {
          errno = ECONNRESET;
          return -1;
        }
        size_t k = std::min(n, std::min<size_t>(4096, tar.size() - pos));
        memcpy(buf, tar.data() + pos, k);
        pos += k;
        return static_cast<ssize_t>(k);
      },
      d.get(), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, ECONNRESET) << r.error().message();
  EXPECT_NE(r.error().message().find("'f'"), std::string::npos) << r.error().message();
  TempDir t;
  dest = t.sub("dest");
  UniqueFd d2(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  auto thrown = unpack_layer([](void*, size_t) -> ssize_t { throw std::runtime_error("boom"); },
                             d2.get(), {});
  ASSERT_FALSE(thrown);
  EXPECT_EQ(thrown.error().err, EIO);
}

TEST_F(ArchiveTest, DestinationMustBeEmpty) {
  ASSERT_EQ(::mkdir(path("x").c_str(), 0755), 0);
  expect_fail(TarBuilder().file("f", "1").done(), ENOTEMPTY, {"not empty"});
  ASSERT_EQ(::rmdir(path("x").c_str()), 0);
}

}  // namespace
