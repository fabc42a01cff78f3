// SPDX-License-Identifier: Apache-2.0
// archive: unpack_layer() on tars built in the test (libarchive's writer for well-formed ones, raw header bytes
// for the crafted ones). The contract under test (unpack.h): every entry type and its metadata lands in overlay
// format; whiteouts follow the same-layer rules in any order; nothing is ever written outside the destination
// (a sentinel directory next to it must stay empty, a victim file keep its link count); malformed and
// truncated streams fail with the entry named; the source is read to its end.
// Tests that need mknod of devices, chown or trusted.* xattrs skip when not root; two tests fork a child that
// drops to nobody or enters a user namespace to check the unprivileged paths.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "strata/archive/entry_path.h"
#include "strata/archive/unpack.h"
#include "tree.h"

namespace {

using strata::Result;
using strata::UniqueFd;
using strata::archive::DevicePolicy;
using strata::archive::parse_entry_path;
using strata::archive::Privilege;
using strata::archive::ReadFn;
using strata::archive::unpack_layer;
using strata::archive::UnpackOptions;
using strata::archive::UnpackStats;
using strata::testing::DumpOptions;
using strata::testing::dump;
using strata::testing::exists;
using strata::testing::is_whiteout;
using strata::testing::ls;
using strata::testing::lstat_or_throw;
using strata::testing::read_file;
using strata::testing::TempDir;
using strata::testing::xattr_of;

constexpr time_t kTime = 1700000000;

// ---------------------------------------------------------------------------------------------------------
// Well-formed tars: libarchive's writer.

enum class Format { kPax, kGnu, kUstar };
enum class Compression { kNone, kGzip, kZstd };

class TarBuilder {
 public:
  using Edit = std::function<void(struct archive_entry*)>;

  explicit TarBuilder(Format format = Format::kPax, Compression comp = Compression::kNone) {
    a_ = archive_write_new();
    if (!a_) throw std::runtime_error("archive_write_new");
    check(format == Format::kPax   ? archive_write_set_format_pax(a_)
          : format == Format::kGnu ? archive_write_set_format_gnutar(a_)
                                   : archive_write_set_format_ustar(a_),
          "format");
    check(comp == Compression::kGzip   ? archive_write_add_filter_gzip(a_)
          : comp == Compression::kZstd ? archive_write_add_filter_zstd(a_)
                                       : archive_write_add_filter_none(a_),
          "filter");
    check(archive_write_open(a_, &out_, nullptr, write_cb, nullptr), "open");
  }
  ~TarBuilder() {
    if (a_) archive_write_free(a_);
  }
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

  TarBuilder& add(const std::string& name, mode_t type, mode_t perm, const std::string& data = "",
                  const Edit& edit = nullptr) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, type == AE_IFREG ? static_cast<la_int64_t>(data.size()) : 0);
    archive_entry_set_mtime(e, kTime, 0);
    if (edit) edit(e);
    int r = archive_write_header(a_, e);
    archive_entry_free(e);
    check(r, "header " + name);
    if (!data.empty()) {
      la_ssize_t n = archive_write_data(a_, data.data(), data.size());
      if (n < 0) check(static_cast<int>(n), "data " + name);
    }
    return *this;
  }
  TarBuilder& file(const std::string& name, const std::string& data = "", mode_t perm = 0644,
                   const Edit& edit = nullptr) {
    return add(name, AE_IFREG, perm, data, edit);
  }
  TarBuilder& dir(const std::string& name, mode_t perm = 0755, const Edit& edit = nullptr) {
    return add(name, AE_IFDIR, perm, "", edit);
  }
  TarBuilder& symlink(const std::string& name, const std::string& target) {
    return add(name, AE_IFLNK, 0777, "",
               [&](struct archive_entry* e) { archive_entry_set_symlink(e, target.c_str()); });
  }
  TarBuilder& hardlink(const std::string& name, const std::string& target) {
    return add(name, AE_IFREG, 0644, "",
               [&](struct archive_entry* e) { archive_entry_set_hardlink(e, target.c_str()); });
  }
  // As umoci writes them: an empty regular file with mode 0.
  TarBuilder& whiteout(const std::string& name) { return file(name, "", 0); }
  TarBuilder& device(const std::string& name, mode_t type, unsigned maj, unsigned min) {
    return add(name, type, 0600, "", [=](struct archive_entry* e) {
      archive_entry_set_rdevmajor(e, maj);
      archive_entry_set_rdevminor(e, min);
    });
  }

  std::string done() {
    check(archive_write_close(a_), "close");
    return out_;
  }

 private:
  static la_ssize_t write_cb(struct archive*, void* data, const void* buf, size_t n) {
    static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  void check(int r, const std::string& what) {
    if (r < ARCHIVE_WARN) {
      const char* m = archive_error_string(a_);
      throw std::runtime_error("tar writer " + what + ": " + (m ? m : "?"));
    }
  }

  struct archive* a_ = nullptr;
  std::string out_;
};

// ---------------------------------------------------------------------------------------------------------
// Crafted tars: header bytes written by hand, so that anything a hostile writer could put there can be.

struct Raw {
  std::string name;
  char type = '0';
  std::string mode = "0000644";  // the octal text of the mode field, type bits and all
  std::string data;
  std::string link;
  uint64_t uid = 0;
  uint64_t gid = 0;
  int64_t mtime = kTime;
  int64_t size = -1;  // -1: data.size()
};

void put_octal(char* field, size_t len, uint64_t v) {
  snprintf(field, len, "%0*llo", static_cast<int>(len - 1), static_cast<unsigned long long>(v));
}

std::string raw_header(const Raw& r) {
  char h[512] = {};
  memcpy(h, r.name.data(), std::min<size_t>(r.name.size(), 100));
  memcpy(h + 100, r.mode.data(), std::min<size_t>(r.mode.size(), 7));
  put_octal(h + 108, 8, r.uid);
  put_octal(h + 116, 8, r.gid);
  put_octal(h + 124, 12, static_cast<uint64_t>(r.size >= 0 ? r.size : static_cast<int64_t>(r.data.size())));
  put_octal(h + 136, 12, static_cast<uint64_t>(r.mtime));
  h[156] = r.type;
  memcpy(h + 157, r.link.data(), std::min<size_t>(r.link.size(), 100));
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  snprintf(h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return std::string(h, 512);
}

std::string pad512(std::string s) {
  s.append((512 - s.size() % 512) % 512, '\0');
  return s;
}

std::string raw_entry(const Raw& r) { return raw_header(r) + pad512(r.data); }

// A PAX extended header ('x') holding `records`, to be followed by the entry it describes.
std::string pax(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string body;
  for (const auto& [k, v] : records) {
    std::string rest = " " + k + "=" + v + "\n";
    size_t n = rest.size() + 1;
    while (std::to_string(n).size() + rest.size() != n) ++n;
    body += std::to_string(n) + rest;
  }
  Raw h;
  h.name = "PaxHeaders/x";
  h.type = 'x';
  h.data = body;
  return raw_entry(h);
}

const std::string kEnd(1024, '\0');

// ---------------------------------------------------------------------------------------------------------

struct Unpacked {
  Result<UnpackStats> result;
  size_t consumed;
};

std::string errmsg(const Result<UnpackStats>& r) { return r ? std::string("(succeeded)") : r.error().message(); }

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A victim file outside the destination: no hard link may ever reach it.
    victim_ = tmp.sub("victim");
    std::string p = victim_ + "/secret";
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "s", 1), 1);
    ::close(fd);
  }
  void TearDown() override {
    // Whatever a test did, nothing may have escaped.
    EXPECT_TRUE(ls(outside).empty()) << "something was written outside the destination";
    EXPECT_EQ(ls(victim_), std::vector<std::string>{"secret"});
    struct stat st = lstat_or_throw(victim_ + "/secret");
    EXPECT_EQ(st.st_nlink, 1u) << "the victim file was hard-linked";
    EXPECT_EQ(read_file(victim_ + "/secret"), "s");
  }

  Result<UnpackStats> unpack(const std::string& tar, const UnpackOptions& o = {}) {
    UniqueFd d(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!d) throw std::runtime_error("open dest");
    size_t pos = 0;
    ReadFn read = [&](void* buf, size_t n) -> ssize_t {
      size_t k = std::min(n, tar.size() - pos);
      memcpy(buf, tar.data() + pos, k);
      pos += k;
      return static_cast<ssize_t>(k);
    };
    auto r = unpack_layer(read, d.get(), o);
    if (r) EXPECT_EQ(pos, tar.size()) << "the source was not read to its end";
    return r;
  }

  // Expect failure with errno `err` and a message containing each of `parts`.
  void expect_fail(const std::string& tar, int err, const std::vector<std::string>& parts,
                   const UnpackOptions& o = {}) {
    auto r = unpack(tar, o);
    ASSERT_FALSE(r) << "unpack succeeded; tree:\n" << dump(dest);
    EXPECT_EQ(r.error().err, err) << r.error().message();
    for (const auto& p : parts)
      EXPECT_NE(r.error().message().find(p), std::string::npos) << "'" << p << "' not in: " << r.error().message();
  }

  std::string path(const std::string& rel) const { return dest + "/" + rel; }

  TempDir tmp;
  std::string dest = tmp.sub("dest");
  std::string outside = tmp.sub("outside");
  std::string victim_;
};

#define ASSERT_UNPACKS(r) ASSERT_TRUE(r) << errmsg(r)

// --- paths ------------------------------------------------------------------------------------------------

TEST(EntryPathTest, Normalizes) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {{"a", "a"},       {"./a", "a"},         {"././a/", "a"}, {"a//b", "a/b"},  {"a/./b", "a/b"},
               {".", ""},        {"./", ""},           {"", ""},        {"a/b/", "a/b"},  {".../x", ".../x"},
               {"..a/b", "..a/b"}, {"a/..b", "a/..b"}};
  for (const auto& c : cases) {
    auto p = parse_entry_path(c.in);
    ASSERT_TRUE(p) << c.in << ": " << p.error().message();
    EXPECT_EQ(p->joined, c.out) << c.in;
  }
}

TEST(EntryPathTest, RefusesEscapes) {
  for (const char* in : {"/", "/abs", "//abs", "..", "../x", "a/../../x", "a/..", "./../x", "a/b/../c"}) {
    auto p = parse_entry_path(in);
    ASSERT_FALSE(p) << in << " accepted as " << p->joined;
    EXPECT_EQ(p.error().err, EINVAL) << in;
    EXPECT_NE(p.error().message().find(std::string("'") + in + "'"), std::string::npos) << p.error().message();
  }
}

// --- types and metadata -----------------------------------------------------------------------------------

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
  std::string tar = TarBuilder(Format::kPax, Compression::kGzip).dir("a").file("a/b", "data").done();
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
  std::string tar = raw_entry({.name = "bin/", .type = '5', .mode = "0040711"}) +
                    raw_entry({.name = "bin/tool", .type = '0', .mode = "0100755", .data = "x"}) +
                    raw_entry({.name = "weird", .type = '0', .mode = "0060644", .data = "y"}) + kEnd;
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
  // The PAX writer must have needed extended headers for the big ids: the test covers them only if so.
  ASSERT_NE(tar.find("uid=3000000"), std::string::npos);
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(lstat_or_throw(path("small")).st_uid, 1000u);
  EXPECT_EQ(lstat_or_throw(path("small")).st_gid, 100u);
  EXPECT_EQ(lstat_or_throw(path("big")).st_uid, 3000000u);
  EXPECT_EQ(lstat_or_throw(path("big")).st_gid, 4000000000u);
  EXPECT_EQ(lstat_or_throw(path("d")).st_uid, 5u);
  EXPECT_EQ(xattr_of(path("big"), "user.strata.owner"), "<absent>");
}

TEST_F(ArchiveTest, UnprivilegedRecordsOwners) {
  std::string tar = TarBuilder()
                        .file("f", "a", 0644,
                              [](struct archive_entry* e) {
                                archive_entry_set_uid(e, 3000000);
                                archive_entry_set_gid(e, 7);
                              })
                        .dir("d", 0755, [](struct archive_entry* e) { archive_entry_set_uid(e, 33); })
                        .symlink("l", "f")
                        .done();
  UnpackOptions o;
  o.privilege = Privilege::kUnprivileged;
  o.record_owner = true;
  auto r = unpack(tar, o);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(lstat_or_throw(path("f")).st_uid, ::geteuid());
  EXPECT_EQ(xattr_of(path("f"), "user.strata.owner"), "3000000:7");
  EXPECT_EQ(xattr_of(path("d"), "user.strata.owner"), "33:0");
  // Without the option nothing is recorded.
  TempDir t;
  dest = t.sub("dest");
  o.record_owner = false;
  ASSERT_UNPACKS(unpack(tar, o));
  EXPECT_EQ(xattr_of(path("f"), "user.strata.owner"), "<absent>");
}

TEST_F(ArchiveTest, UidOutOfRangeIsRefused) {
  std::string tar = pax({{"uid", "4294967295"}}) + raw_entry({.name = "f"}) + kEnd;
  expect_fail(tar, EBADMSG, {"'f'", "uid"});
}

TEST_F(ArchiveTest, TimesWithNanosecondsAndNegative) {
  std::string tar = pax({{"mtime", "1234567890.123456789"}, {"atime", "1000000000.5"}}) +
                    raw_entry({.name = "f", .data = "x"}) + pax({{"mtime", "-100.25"}}) +
                    raw_entry({.name = "old", .data = "y"}) +
                    raw_entry({.name = "int", .data = "z", .mtime = 86400}) +
                    pax({{"mtime", "42.000000001"}}) + raw_entry({.name = "l", .type = '2', .link = "f"}) +
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
  for (auto [p, s, ns, mode] : std::vector<std::tuple<std::string, time_t, long, mode_t>>{
           {"", 1000, 1, 0750},
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
  std::string tar = raw_entry({.name = "./", .type = '5', .mode = "0000711", .mtime = 77}) +
                    raw_entry({.name = "./a", .data = "x"}) + raw_entry({.name = "./.wh.b", .mode = "0000000"});
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
  expect_fail(raw_entry({.name = "./", .data = "x"}) + kEnd, EINVAL, {"'./'", "root"});
}

TEST_F(ArchiveTest, ChildBeforeParent) {
  std::string tar = TarBuilder()
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

// --- sparse files -----------------------------------------------------------------------------------------

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

// GNU tar writes the sparse forms libarchive's writer does not: old GNU 'S' headers and PAX 0.1 / 1.0.
TEST_F(ArchiveTest, SparseFromGnuTar) {
  if (::access("/usr/bin/tar", X_OK) != 0 && ::access("/bin/tar", X_OK) != 0) GTEST_SKIP() << "no GNU tar";
  std::string src = tmp.sub("sparsesrc");
  std::string content = sparse_content();
  {
    int fd = ::open((src + "/f").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(content.size())), 0);
    for (auto [o, l] : std::vector<std::pair<off_t, size_t>>{{1 << 20, 4096}, {5 << 20, 8192},
                                                              {(8 << 20) - 4096, 4096}})
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
                    raw_entry({.name = "s", .data = "abcd"}) + kEnd;
  auto r = unpack(tar);
  if (r) {
    // libarchive may clamp the map itself; then the file must still be what the header declared.
    EXPECT_LE(lstat_or_throw(path("s")).st_size, 10);
  } else {
    EXPECT_NE(r.error().message().find("'s'"), std::string::npos) << r.error().message();
  }
}

// --- xattrs ------------------------------------------------------------------------------------------------

std::string cap_net_bind_service() {
  // struct vfs_cap_data, revision 2, effective: permitted = CAP_NET_BIND_SERVICE (10).
  const uint32_t v[5] = {0x02000001u, 1u << 10, 0, 0, 0};
  return std::string(reinterpret_cast<const char*>(v), sizeof v);
}

TEST_F(ArchiveTest, XattrsIncludingCapabilitiesAfterChown) {
  STRATA_REQUIRE_ROOT();
  std::string cap = cap_net_bind_service();
  std::string tar = TarBuilder()
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
  tar = tar.substr(0, tar.size() - 1024 * 0);
  std::string go = pax({{"SCHILY.xattr.user.go", "from go"}, {"SCHILY.xattr.user.empty", ""}}) +
                   raw_entry({.name = "go", .data = "g"}) + kEnd;
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(xattr_of(path("ping"), "security.capability"), cap) << "chown after the xattr dropped it";
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
  std::string tar = TarBuilder()
                        .file("f", "x", 0644,
                              [](struct archive_entry* e) {
                                archive_entry_xattr_add_entry(e, "user.strata.owner", "0:0", 3);
                                archive_entry_xattr_add_entry(e, "user.ok", "1", 1);
                              })
                        .symlink("l", "f")
                        .done();
  // A user.* xattr on a symlink: the kernel refuses it (EPERM); the entry stays, with a warning.
  std::string sym = pax({{"SCHILY.xattr.user.onlink", "v"}}) + raw_entry({.name = "l2", .type = '2', .link = "f"});
  tar = tar.substr(0, tar.size() - (tar.size() % 10240 == 0 ? 0 : 0));
  auto r = unpack(TarBuilder().file("f", "x", 0644, [](struct archive_entry* e) {
                    archive_entry_xattr_add_entry(e, "user.strata.owner", "0:0", 3);
                    archive_entry_xattr_add_entry(e, "user.ok", "1", 1);
                  }).done().substr(0, 1024) +
                  sym + kEnd);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(xattr_of(path("f"), "user.ok"), "1");
  EXPECT_EQ(xattr_of(path("f"), "user.strata.owner"), "<absent>") << "a layer may not set strata's state";
  EXPECT_TRUE(S_ISLNK(lstat_or_throw(path("l2")).st_mode));
  std::string all;
  for (const auto& w : r->warnings) all += w + "\n";
  EXPECT_NE(all.find("user.strata.owner"), std::string::npos) << all;
  EXPECT_NE(all.find("user.onlink"), std::string::npos) << all;
}

// --- hard links -------------------------------------------------------------------------------------------

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
  std::string tar = TarBuilder().file("a", "x").hardlink("b", "usr/lib/missing").file("c", "y").done();
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
  std::string tar = raw_entry({.name = "a", .data = "orig"}) +
                    raw_entry({.name = "b", .type = '1', .data = "ignored", .link = "a"}) +
                    raw_entry({.name = "a", .type = '1', .link = "a"}) + kEnd;
  ASSERT_UNPACKS(unpack(tar));
  EXPECT_EQ(read_file(path("b")), "orig");
  EXPECT_EQ(read_file(path("a")), "orig");
  EXPECT_EQ(lstat_or_throw(path("a")).st_nlink, 2u);
}

// --- whiteouts ---------------------------------------------------------------------------------------------

TEST_F(ArchiveTest, WhiteoutsAndOpaqueDirectories) {
  STRATA_REQUIRE_ROOT();
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
  EXPECT_EQ(dump(dest, DumpOptions{false, true}),
            ". dir mode=0755\n"
            "etc dir mode=0711 xattr trusted.overlay.opaque=y\n"
            "etc/passwd file mode=0644 size=4 content=root\n"
            "etc/shadow whiteout\n"
            "gone whiteout\n"
            "new dir mode=0755\n"
            "new/deep dir mode=0755\n"
            "new/deep/x whiteout\n"
            "var dir mode=0755 xattr trusted.overlay.opaque=y\n");
  EXPECT_EQ(r->whiteouts, 4u);
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

// `.wh.X` and X in one layer: X stays, whatever the order; a directory X hides the lower one's contents.
TEST_F(ArchiveTest, WhiteoutAndEntryOfTheSameName) {
  STRATA_REQUIRE_ROOT();
  for (bool files : {false, true}) {
    TempDir t;
    dest = t.sub("dest");
    std::string tar = TarBuilder()
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
              "d1 dir mode=0755 xattr trusted.overlay.opaque=y\n"
              "d1/x file mode=0644 size=1 content=1\n"
              "d2 dir mode=0755 xattr trusted.overlay.opaque=y\n"
              "d2/y file mode=0644 size=1 content=2\n"
              "d3 dir mode=0755 xattr trusted.overlay.opaque=y\n"
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
  expect_fail(raw_entry({.name = "d/.wh.."}) + kEnd, EINVAL, {"'d/.wh..'"});
  TempDir t;
  dest = t.sub("dest");
  expect_fail(raw_entry({.name = ".wh..."}) + kEnd, EINVAL, {"'.wh...'"});
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

// --- duplicates ----------------------------------------------------------------------------------------------

TEST_F(ArchiveTest, DuplicatesLastWins) {
  std::string tar = TarBuilder()
                        .file("f", "first")
                        .file("f", "second", 0600)
                        .dir("d", 0700)
                        .file("d/inner", "i")
                        .dir("d", 0750)  // metadata only
                        .dir("gone", 0700,
                             [](struct archive_entry* e) { archive_entry_set_mtime(e, 5, 0); })
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

// --- GNU long names, non-UTF-8 names --------------------------------------------------------------------------

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
  ASSERT_NE(tar.find("././@LongLink"), std::string::npos) << "no GNU long name records were written";
  ASSERT_UNPACKS(unpack(tar));
  EXPECT_EQ(read_file(path(name)), "long");
  char buf[512];
  ssize_t n = ::readlink(path(dir + "/l").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))), target);
  EXPECT_EQ(lstat_or_throw(path(dir + "/h")).st_ino, lstat_or_throw(path(name)).st_ino);
}

TEST_F(ArchiveTest, NamesAreKeptByteForByte) {
  std::string tar = pax({{"path", "caf\xc3\xa9"}}) + raw_entry({.name = "placeholder", .data = "1"}) +
                    pax({{"path", "lat\xe9"}}) + raw_entry({.name = "placeholder2", .data = "2"}) +
                    raw_entry({.name = "raw\xff", .data = "3"}) + kEnd;
  auto r = unpack(tar);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(read_file(path("caf\xc3\xa9")), "1");
  EXPECT_EQ(read_file(path("lat\xe9")), "2");
  EXPECT_EQ(read_file(path("raw\xff")), "3");
  // Valid UTF-8 costs no warning; the Latin-1 PAX name does (libarchive could not convert it).
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("lat\\xe9"), std::string::npos) << r->warnings[0];
}

// --- streams ---------------------------------------------------------------------------------------------------

TEST_F(ArchiveTest, EndBlocksAreOptionalAndEmptyLayersWork) {
  std::string body = raw_entry({.name = "a", .data = "x"});
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
  std::string tar = raw_entry({.name = "a", .data = "x"}) + kEnd + std::string(300000, 'J');
  ASSERT_UNPACKS(unpack(tar));  // unpack() checks the source was read to its end
}

TEST_F(ArchiveTest, TruncatedArchives) {
  std::string data(5000, 'q');
  std::string full = raw_entry({.name = "first", .data = "1"}) + raw_entry({.name = "big", .data = data}) + kEnd;
  // In the middle of the data of 'big'.
  expect_fail(full.substr(0, 1024 + 512 + 1000), EBADMSG, {"'big'", "runcated"});
  // In the middle of the header after 'first'.
  TempDir t;
  dest = t.sub("dest");
  expect_fail(full.substr(0, 1024 + 200), EBADMSG, {"'first'", "runcated"});
  // Compressed and cut.
  std::string gz = TarBuilder(Format::kPax, Compression::kGzip).file("f", data).file("g", data).done();
  TempDir t2;
  dest = t2.sub("dest");
  auto r = unpack(gz.substr(0, gz.size() / 2));
  ASSERT_FALSE(r) << "a gzip stream cut in half unpacked";
  EXPECT_NE(r.error().message().find("'"), std::string::npos) << r.error().message();
}

TEST_F(ArchiveTest, GarbageIsRefused) {
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 7919 + 13) % 251 + 1);
  expect_fail(garbage, EBADMSG, {"nrecognized"});
  // A header with a bad checksum after a good entry.
  std::string bad = raw_header({.name = "b"});
  bad[0] = 'c';
  TempDir t;
  dest = t.sub("dest");
  expect_fail(raw_entry({.name = "a"}) + bad + kEnd, EBADMSG, {"'a'"});
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
  auto thrown = unpack_layer([](void*, size_t) -> ssize_t { throw std::runtime_error("boom"); }, d2.get(), {});
  ASSERT_FALSE(thrown);
  EXPECT_EQ(thrown.error().err, EIO);
}

TEST_F(ArchiveTest, DestinationMustBeEmpty) {
  ASSERT_EQ(::mkdir(path("x").c_str(), 0755), 0);
  expect_fail(TarBuilder().file("f", "1").done(), ENOTEMPTY, {"not empty"});
  ASSERT_EQ(::rmdir(path("x").c_str()), 0);
}

// --- devices without privileges --------------------------------------------------------------------------------

TEST_F(ArchiveTest, DevicesUnprivileged) {
  std::string tar = TarBuilder().file("a", "1").device("null", AE_IFCHR, 1, 3).add("p", AE_IFIFO, 0600).done();
  UnpackOptions o;
  o.privilege = Privilege::kUnprivileged;
  expect_fail(tar, EPERM, {"'null'", "devices=skip"}, o);
  TempDir t;
  dest = t.sub("dest");
  o.devices = DevicePolicy::kSkip;
  auto r = unpack(tar, o);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(ls(dest), (std::vector<std::string>{"a", "p"}));
  EXPECT_EQ(r->skipped, 1u);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("'null'"), std::string::npos);
}

// --- hostile archives: rejected or contained, never escaping ---------------------------------------------------

struct Hostile {
  const char* what;
  std::function<std::string(const std::string& outside, const std::string& victim)> tar;
  int err;  // 0: must succeed (contained)
  std::string in_message;
};

TEST_F(ArchiveTest, HostileArchivesNeverEscape) {
  std::vector<Hostile> cases = {
      {"dot-dot", [](auto&, auto&) { return raw_entry({.name = "../x", .data = "evil"}) + kEnd; }, EINVAL,
       "'../x'"},
      {"dot-dot inside",
       [](auto&, auto&) { return raw_entry({.name = "a/../../outside/x", .data = "evil"}) + kEnd; }, EINVAL,
       "'a/../../outside/x'"},
      {"absolute", [](auto& o, auto&) { return raw_entry({.name = o + "/x", .data = "evil"}) + kEnd; }, EINVAL,
       "absolute"},
      {"absolute root", [](auto&, auto&) { return raw_entry({.name = "/", .type = '5'}) + kEnd; }, EINVAL,
       "absolute"},
      {"pax path", [](auto&, auto&) { return pax({{"path", "../../x"}}) + raw_entry({.name = "ok"}) + kEnd; },
       EINVAL, "'../../x'"},
      {"gnu long name",
       [](auto&, auto&) {
         std::string n = "../" + std::string(120, 'x');
         return raw_entry({.name = "././@LongLink", .type = 'L', .data = n + '\0'}) +
                raw_entry({.name = "short", .data = "evil"}) + kEnd;
       },
       EINVAL, "'../xxx"},
      {"symlink absolute then write through",
       [](auto& o, auto&) {
         return raw_entry({.name = "a", .type = '2', .link = o}) + raw_entry({.name = "a/passwd", .data = "e"}) +
                kEnd;
       },
       ENOTDIR, "'a/passwd'"},
      {"symlink relative then write through",
       [](auto&, auto&) {
         return raw_entry({.name = "a", .type = '2', .link = "../outside"}) +
                raw_entry({.name = "a/x", .data = "e"}) + kEnd;
       },
       ENOTDIR, "symlink"},
      {"symlink then directory through it",
       [](auto& o, auto&) {
         return raw_entry({.name = "a", .type = '2', .link = o}) + raw_entry({.name = "a/sub/", .type = '5'}) +
                kEnd;
       },
       ENOTDIR, "'a/sub/'"},
      {"symlink deep then write through",
       [](auto&, auto&) {
         return raw_entry({.name = "d/", .type = '5'}) +
                raw_entry({.name = "d/up", .type = '2', .link = "../../outside"}) +
                raw_entry({.name = "d/up/x", .data = "e"}) + kEnd;
       },
       ENOTDIR, "'d/up/x'"},
      {"directory replaced by symlink, then written into",
       [](auto& o, auto&) {
         return raw_entry({.name = "d/", .type = '5'}) + raw_entry({.name = "d/f", .data = "1"}) +
                raw_entry({.name = "d", .type = '2', .link = o}) + raw_entry({.name = "d/g", .data = "e"}) + kEnd;
       },
       ENOTDIR, "'d/g'"},
      {"symlink then hard link through it",
       [](auto&, auto& v) {
         return raw_entry({.name = "v", .type = '2', .link = v}) +
                raw_entry({.name = "h", .type = '1', .link = "v/secret"}) + kEnd;
       },
       ENOENT, "'v/secret'"},
      {"hard link dot-dot",
       [](auto&, auto&) { return raw_entry({.name = "h", .type = '1', .link = "../victim/secret"}) + kEnd; },
       EINVAL, "'../victim/secret'"},
      {"hard link absolute",
       [](auto&, auto& v) { return raw_entry({.name = "h", .type = '1', .link = v + "/secret"}) + kEnd; }, EINVAL,
       "absolute"},
      {"pax linkpath",
       [](auto&, auto&) {
         return pax({{"linkpath", "../../../../../../etc/passwd"}}) +
                raw_entry({.name = "h", .type = '1', .link = "x"}) + kEnd;
       },
       EINVAL, "'h'"},
      {"whiteout dot-dot", [](auto&, auto&) { return raw_entry({.name = "../.wh.outside"}) + kEnd; }, EINVAL,
       "'../.wh.outside'"},
      {"opaque through symlink (skipped, contained)",
       [](auto& o, auto&) {
         return raw_entry({.name = "a", .type = '2', .link = o}) + raw_entry({.name = "a/.wh..wh..opq"}) +
                raw_entry({.name = "a/.wh.x"}) + kEnd;
       },
       0, ""},
      {"symlink replaced by directory (contained)",
       [](auto& o, auto&) {
         return raw_entry({.name = "a", .type = '2', .link = o}) + raw_entry({.name = "a/", .type = '5'}) +
                raw_entry({.name = "a/x", .data = "inside"}) + kEnd;
       },
       0, ""},
      {"hard link to a symlink pointing out (contained)",
       [](auto&, auto& v) {
         return raw_entry({.name = "s", .type = '2', .link = v + "/secret"}) +
                raw_entry({.name = "h", .type = '1', .link = "s"}) + kEnd;
       },
       0, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir t;
    dest = t.sub("dest");
    std::string tar = c.tar(outside, victim_);
    if (c.err == 0) {
      auto r = unpack(tar);
      EXPECT_TRUE(r) << errmsg(r);
    } else {
      expect_fail(tar, c.err, {c.in_message});
    }
    EXPECT_TRUE(ls(outside).empty()) << c.what << " wrote outside";
    EXPECT_EQ(lstat_or_throw(victim_ + "/secret").st_nlink, 1u) << c.what;
  }
  // The contained cases, checked once more by hand.
  TempDir t;
  dest = t.sub("dest");
  ASSERT_UNPACKS(unpack(raw_entry({.name = "a", .type = '2', .link = outside}) +
                        raw_entry({.name = "a/", .type = '5'}) + raw_entry({.name = "a/x", .data = "inside"})));
  EXPECT_EQ(read_file(path("a/x")), "inside");
}

// --- without privileges, for real --------------------------------------------------------------------------------

// Run `body` in a forked child; returns its exit status (0 = body returned true).
int in_child(const std::function<bool()>& body) {
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    bool ok = false;
    try {
      ok = body();
    } catch (...) {
    }
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string unprivileged_tar() {
  return TarBuilder()
      .dir("ro", 0555)
      .file("ro/f", "data", 0644, [](struct archive_entry* e) { archive_entry_set_uid(e, 1234); })
      .whiteout("ro/.wh.gone")
      .whiteout("ro/.wh..wh..opq")
      .device("null", AE_IFCHR, 1, 3)
      .add("fifo", AE_IFIFO, 0640)
      .file("cap", "x", 0755,
            [](struct archive_entry* e) {
              std::string cap = cap_net_bind_service();
              archive_entry_xattr_add_entry(e, "security.capability", cap.data(), cap.size());
            })
      .done();
}

bool unpack_in_child(const std::string& dest, const std::string& tar, const char* report) {
  UniqueFd d(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  UnpackOptions o;
  o.devices = DevicePolicy::kSkip;
  o.record_owner = true;
  size_t pos = 0;
  auto r = unpack_layer(
      [&](void* buf, size_t n) -> ssize_t {
        size_t k = std::min(n, tar.size() - pos);
        memcpy(buf, tar.data() + pos, k);
        pos += k;
        return static_cast<ssize_t>(k);
      },
      d.get(), o);
  if (!r) fprintf(stderr, "%s: %s\n", report, r.error().message().c_str());
  return r.has_value();
}

TEST_F(ArchiveTest, AsAnUnprivilegedUser) {
  STRATA_REQUIRE_ROOT();
  std::string tar = unprivileged_tar();
  ASSERT_EQ(::chown(dest.c_str(), 65534, 65534), 0);
  int rc = in_child([&] {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0)
      return false;
    // Changing uid made us undumpable, which hides /proc/self/fd from ourselves; a real user is dumpable.
    ::prctl(PR_SET_DUMPABLE, 1);
    return unpack_in_child(dest, tar, "as nobody");
  });
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(dump(dest, DumpOptions{true, true}),
            ". dir mode=0755 uid=65534 gid=65534\n"
            "cap file mode=0755 uid=65534 gid=65534 size=1 content=x xattr user.strata.owner=0:0\n"
            "fifo fifo mode=0640 uid=65534 gid=65534\n"
            "ro dir mode=0555 uid=65534 gid=65534 xattr user.overlay.opaque=y user.strata.owner=0:0\n"
            "ro/f file mode=0644 uid=65534 gid=65534 size=4 content=data xattr user.strata.owner=1234:0\n"
            "ro/gone whiteout\n");
}

TEST_F(ArchiveTest, AsRootOfAUserNamespace) {
  STRATA_REQUIRE_ROOT();
  std::string tar = unprivileged_tar();
  int rc = in_child([&] {
    if (::unshare(CLONE_NEWUSER) != 0) return false;
    auto put = [](const char* file, const char* text) {
      int fd = ::open(file, O_WRONLY | O_CLOEXEC);
      if (fd < 0) return false;
      bool ok = ::write(fd, text, strlen(text)) == static_cast<ssize_t>(strlen(text));
      ::close(fd);
      return ok;
    };
    if (!put("/proc/self/setgroups", "deny") || !put("/proc/self/uid_map", "0 0 1") ||
        !put("/proc/self/gid_map", "0 0 1"))
      return false;
    return unpack_in_child(dest, tar, "in a user namespace");
  });
  if (rc != 0 && ::access("/proc/sys/user/max_user_namespaces", F_OK) != 0)
    GTEST_SKIP() << "no user namespaces";
  ASSERT_EQ(rc, 0);
  // uid 0 is mapped, so chown works for it; 1234 is not (EINVAL): recorded. trusted.* is refused: user.*.
  // security.capability needs CAP_SETFCAP over the initial namespace: a warning.
  EXPECT_EQ(dump(dest, DumpOptions{true, true}),
            ". dir mode=0755 uid=0 gid=0\n"
            "cap file mode=0755 uid=0 gid=0 size=1 content=x\n"
            "fifo fifo mode=0640 uid=0 gid=0\n"
            "ro dir mode=0555 uid=0 gid=0 xattr user.overlay.opaque=y\n"
            "ro/f file mode=0644 uid=0 gid=0 size=4 content=data xattr user.strata.owner=1234:0\n"
            "ro/gone whiteout\n");
}

}  // namespace
