// SPDX-License-Identifier: Apache-2.0
// sys: fd-relative syscalls. The contract under test: open_beneath never leaves its root, nothing
// follows a final symlink, "" means the fd itself (O_PATH included), errors carry their errno,
// copies keep holes.
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <string>
#include <vector>

#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"
#include "strata/sys/store_io.h"
#include "tree.h"

namespace {

namespace sys = strata::sys;
using strata::UniqueFd;
using strata::testing::exists;
using strata::testing::lstat_or_throw;
using strata::testing::read_file;
using strata::testing::TempDir;
using strata::testing::Tree;
using strata::testing::xattr_of;

std::string read_fd(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

class SysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fd = sys::open_path(root.root().c_str(), O_PATH | O_DIRECTORY);
    ASSERT_TRUE(fd) << fd.error().message();
    rootfd = std::move(*fd);
  }
  TempDir tmp;
  Tree outside{tmp.sub("outside")};
  Tree root{tmp.sub("root")};
  UniqueFd rootfd;
};

// A byte just written is in the page cache; past the end nothing waits either. (Uncached data cannot be
// produced reliably in a test: tmpfs keeps everything in memory.)
TEST_F(SysTest, ByteCachedAfterAWrite) {
  std::string path = tmp.path() + "/cached";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "abcd", 4, 8192), 4);
  EXPECT_TRUE(sys::byte_cached(fd, 8195));
  EXPECT_TRUE(sys::byte_cached(fd, 1 << 20));
  ::close(fd);
}

TEST_F(SysTest, OpenBeneathNestedPath) {
  root.file("a/b/c.txt", "deep");
  auto fd = sys::open_beneath(rootfd.get(), "a/b/c.txt", O_RDONLY);
  ASSERT_TRUE(fd) << fd.error().message();
  EXPECT_EQ(read_fd(fd->get()), "deep");
  EXPECT_TRUE(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
  auto dir = sys::open_beneath(rootfd.get(), "a/b", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(dir) << dir.error().message();
  EXPECT_TRUE(sys::stat_at(dir->get(), "c.txt"));
}

TEST_F(SysTest, OpenBeneathCreates) {
  root.dir("a");
  auto fd = sys::open_beneath(rootfd.get(), "a/new", O_WRONLY | O_CREAT | O_EXCL, 0640);
  ASSERT_TRUE(fd) << fd.error().message();
  struct stat st = lstat_or_throw(root.path("a/new"));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777 & ~0640, 0u);
}

TEST_F(SysTest, OpenBeneathRefusesDotDotEscapes) {
  outside.file("secret", "s");
  for (const char* p :
       {"../outside/secret", "a/../../outside/secret", "..", "a/b/../../../outside"}) {
    root.dir("a/b");
    auto fd = sys::open_beneath(rootfd.get(), p, O_RDONLY);
    EXPECT_FALSE(fd) << p << " escaped the root";
    if (!fd) {
      EXPECT_NE(fd.error().err, 0) << p;
    }
  }
}

TEST_F(SysTest, OpenBeneathRefusesAbsolutePaths) {
  outside.file("secret", "s");
  auto fd = sys::open_beneath(rootfd.get(), outside.path("secret"), O_RDONLY);
  EXPECT_FALSE(fd);
}

TEST_F(SysTest, OpenBeneathRefusesSymlinksOut) {
  outside.file("secret", "s");
  root.symlink("abs", outside.root());               // absolute, to a directory outside
  root.symlink("rel", "../outside");                 // relative, climbing out
  root.symlink("abs_file", outside.path("secret"));  // final component, absolute
  root.symlink("rel_file", "../outside/secret");     // final component, relative
  root.symlink("proc", "/proc/self/root");           // a magic link behind a symlink
  for (const char* p : {"abs/secret", "rel/secret", "abs_file", "rel_file", "proc/etc/hostname"}) {
    auto fd = sys::open_beneath(rootfd.get(), p, O_RDONLY);
    EXPECT_FALSE(fd) << p << " followed a symlink out of the root";
  }
}

TEST_F(SysTest, OpenBeneathRefusesEvenInnerSymlinks) {
  root.file("d/f", "x").symlink("inner", "d");
  EXPECT_FALSE(sys::open_beneath(rootfd.get(), "inner/f", O_RDONLY));
  EXPECT_TRUE(sys::open_beneath(rootfd.get(), "d/f", O_RDONLY));
}

TEST_F(SysTest, OpenAtNeverFollowsTheFinalSymlink) {
  root.file("target", "t").symlink("link", "target");
  auto fd = sys::open_at(rootfd.get(), "link", O_RDONLY);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().err, ELOOP);
  auto p = sys::open_at(rootfd.get(), "link", O_PATH);  // O_PATH|O_NOFOLLOW: the link itself
  ASSERT_TRUE(p) << p.error().message();
  auto st = sys::stat_at(p->get(), "");
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISLNK(st->st_mode));
}

TEST_F(SysTest, StatAtEmptyNameIsTheFdItself) {
  root.file("f", "12345");
  auto st = sys::stat_at(rootfd.get(), "");
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->st_ino, lstat_or_throw(root.root()).st_ino);
  EXPECT_TRUE(S_ISDIR(st->st_mode));
  auto f = sys::open_at(rootfd.get(), "f", O_PATH);
  ASSERT_TRUE(f);
  auto fst = sys::stat_at(f->get(), "");
  ASSERT_TRUE(fst);
  EXPECT_EQ(fst->st_size, 5);
}

TEST_F(SysTest, StatAtDoesNotFollowAndReportsErrno) {
  root.symlink("dangling", "nowhere");
  auto st = sys::stat_at(rootfd.get(), "dangling");
  ASSERT_TRUE(st);
  EXPECT_TRUE(S_ISLNK(st->st_mode));
  auto missing = sys::stat_at(rootfd.get(), "missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().err, ENOENT);
  EXPECT_EQ(missing.error().detail, "missing");
  EXPECT_NE(missing.error().message().find("missing"), std::string::npos);
}

TEST_F(SysTest, XattrsByName) {
  root.file("f");
  int d = rootfd.get();
  ASSERT_TRUE(sys::set_xattr(d, "f", "user.k", "v1", 0));
  auto v = sys::get_xattr(d, "f", "user.k");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(*v, "v1");
  EXPECT_EQ(xattr_of(root.path("f"), "user.k"), "v1");
  auto created = sys::set_xattr(d, "f", "user.k", "v2", XATTR_CREATE);
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().err, EEXIST);
  auto replaced = sys::set_xattr(d, "f", "user.none", "v", XATTR_REPLACE);
  ASSERT_FALSE(replaced);
  EXPECT_EQ(replaced.error().err, ENODATA);
  ASSERT_TRUE(sys::set_xattr(d, "f", "user.empty", "", 0));
  auto e = sys::get_xattr(d, "f", "user.empty");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, "");
  auto names = sys::list_xattr(d, "f");
  ASSERT_TRUE(names);
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"user.empty", "user.k"}));
  ASSERT_TRUE(sys::remove_xattr(d, "f", "user.k"));
  auto gone = sys::get_xattr(d, "f", "user.k");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().err, ENODATA);
  auto again = sys::remove_xattr(d, "f", "user.k");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().err, ENODATA);
}

TEST_F(SysTest, XattrsOnOPathFdsWithEmptyName) {
  root.file("f").dir("d");
  for (const char* nm : {"f", "d"}) {
    auto fd = sys::open_at(rootfd.get(), nm, O_PATH);
    ASSERT_TRUE(fd);
    int f = fd->get();
    ASSERT_TRUE(sys::set_xattr(f, "", "user.p", "val", 0)) << nm;
    EXPECT_EQ(xattr_of(root.path(nm), "user.p"), "val") << nm;
    auto v = sys::get_xattr(f, "", "user.p");
    ASSERT_TRUE(v) << nm << ": " << v.error().message();
    EXPECT_EQ(*v, "val");
    auto names = sys::list_xattr(f, "");
    ASSERT_TRUE(names) << names.error().message();
    EXPECT_NE(std::find(names->begin(), names->end(), "user.p"), names->end());
    ASSERT_TRUE(sys::remove_xattr(f, "", "user.p")) << nm;
    EXPECT_EQ(xattr_of(root.path(nm), "user.p"), "<absent>");
  }
}

TEST_F(SysTest, XattrsNeverFollowASymlink) {
  root.file("target").symlink("link", "target");
  // user.* xattrs are not allowed on symlinks: the call must fail rather than land on the target.
  EXPECT_FALSE(sys::set_xattr(rootfd.get(), "link", "user.x", "v", 0));
  EXPECT_EQ(xattr_of(root.path("target"), "user.x"), "<absent>");
  ASSERT_EQ(lsetxattr(root.path("target").c_str(), "user.t", "tv", 2, 0), 0);
  auto v = sys::get_xattr(rootfd.get(), "link", "user.t");
  EXPECT_FALSE(v) << "read the target's xattr through the link";
  auto names = sys::list_xattr(rootfd.get(), "link");
  ASSERT_TRUE(names);
  EXPECT_EQ(std::find(names->begin(), names->end(), "user.t"), names->end());
}

TEST_F(SysTest, XattrsLargerThanTheFirstBuffer) {
  root.file("f").file("g");
  std::string big(2000, 'v');
  big[17] = '\0';  // values are bytes, not strings
  ASSERT_TRUE(sys::set_xattr(rootfd.get(), "f", "user.big", big, 0));
  auto v = sys::get_xattr(rootfd.get(), "f", "user.big");
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(*v, big);
  std::vector<std::string> want;  // a name list longer than list_xattr's first buffer
  for (int i = 0; i < 30; ++i) {
    std::string n = "user.a_fairly_long_attribute_name_number_" + std::to_string(i);
    ASSERT_TRUE(sys::set_xattr(rootfd.get(), "g", n.c_str(), "x", 0)) << n;
    want.push_back(n);
  }
  auto names = sys::list_xattr(rootfd.get(), "g");
  ASSERT_TRUE(names) << names.error().message();
  std::sort(names->begin(), names->end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*names, want);
}

TEST_F(SysTest, RawXattrSizes) {
  root.file("f");
  ASSERT_TRUE(sys::set_xattr(rootfd.get(), "f", "user.k", "12345", 0));
  auto len = sys::get_xattr_raw(rootfd.get(), "f", "user.k", nullptr, 0);
  ASSERT_TRUE(len);
  EXPECT_EQ(*len, 5u);
  char small[2];
  auto r = sys::get_xattr_raw(rootfd.get(), "f", "user.k", small, sizeof small);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, ERANGE);
  auto llen = sys::list_xattr_raw(rootfd.get(), "f", nullptr, 0);
  ASSERT_TRUE(llen);
  EXPECT_EQ(*llen, sizeof "user.k");
}

TEST_F(SysTest, ReadDir) {
  root.file("d/a").dir("d/sub").symlink("d/l", "a");
  auto d = sys::open_at(rootfd.get(), "d", O_PATH | O_DIRECTORY);  // O_PATH is enough
  ASSERT_TRUE(d);
  auto ents = sys::read_dir(d->get());
  ASSERT_TRUE(ents) << ents.error().message();
  std::vector<std::string> got;
  for (auto& e : *ents) {
    got.push_back(e.name + ":" + std::to_string(e.type));
    EXPECT_EQ(e.ino, lstat_or_throw(root.path("d/" + e.name)).st_ino);
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got,
            (std::vector<std::string>{"a:" + std::to_string(DT_REG), "l:" + std::to_string(DT_LNK),
                                      "sub:" + std::to_string(DT_DIR)}));
}

TEST_F(SysTest, ReadDirEmptyAndLarge) {
  root.dir("empty");
  auto e = sys::open_at(rootfd.get(), "empty", O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(e);
  auto none = sys::read_dir(e->get());
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  for (int i = 0; i < 1200; ++i)
    root.file("big/file_with_a_rather_long_name_to_fill_buffers_" + std::to_string(i));
  auto b = sys::open_at(rootfd.get(), "big", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(b);
  auto ents = sys::read_dir(b->get());  // more than one getdents64 buffer
  ASSERT_TRUE(ents);
  EXPECT_EQ(ents->size(), 1200u);
}

class CopyDataTest : public SysTest {
 protected:
  // Copies root/src to root/dst with copy_data(size) and returns dst's stat.
  struct stat copy(off_t size, bool will_fsync = false) {
    auto in = sys::open_at(rootfd.get(), "src", O_RDONLY);
    EXPECT_TRUE(in);
    auto out = sys::open_at(rootfd.get(), "dst", O_WRONLY | O_CREAT | O_EXCL, 0600);
    EXPECT_TRUE(out);
    auto r = sys::copy_data(in->get(), out->get(), size, will_fsync);
    EXPECT_TRUE(r) << r.error().message();
    return lstat_or_throw(root.path("dst"));
  }
};

TEST_F(CopyDataTest, SmallAndEmpty) {
  root.file("src", "hello world");
  struct stat st = copy(11);
  EXPECT_EQ(st.st_size, 11);
  EXPECT_EQ(read_file(root.path("dst")), "hello world");
  ASSERT_EQ(unlink(root.path("dst").c_str()), 0);
  root.file("src", "");
  EXPECT_EQ(copy(0).st_size, 0);
}

TEST_F(CopyDataTest, OnlyTheRequestedSize) {
  root.file("src", "hello world");
  copy(5);
  EXPECT_EQ(read_file(root.path("dst")), "hello");
}

TEST_F(CopyDataTest, LargeContent) {
  std::string data(3 * 1024 * 1024 + 123, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 2654435761u) >> 13);
  root.file("src", data);
  copy(static_cast<off_t>(data.size()));
  EXPECT_TRUE(read_file(root.path("dst")) == data);
}

TEST_F(CopyDataTest, LargeWithWritebackThread) {
  // Past the size where finished chunks go to writeback from a helper thread; with a hole in the middle so
  // that the chunks pushed are not one run.
  constexpr size_t kPart = 40u << 20;
  std::string a(kPart, '\0'), b(kPart + 77, '\0');
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>((i * 2654435761u) >> 11);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>((i * 40503u) >> 7);
  root.file("src", a);
  {
    int fd = ::open(root.path("src").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, b.data(), b.size(), static_cast<off_t>(kPart + (8u << 20))),
              static_cast<ssize_t>(b.size()));
    ::close(fd);
  }
  struct stat sst = lstat_or_throw(root.path("src"));
  struct stat st = copy(sst.st_size, true);
  EXPECT_EQ(st.st_size, sst.st_size);
  EXPECT_TRUE(read_file(root.path("dst")) == read_file(root.path("src")));
}

TEST_F(CopyDataTest, KeepsHoles) {
  constexpr off_t kHole = 16 << 20;
  {
    root.file("src");
    int fd = ::open(root.path("src").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    std::string head(4096, 'h'), tail(4096, 't');
    ASSERT_EQ(pwrite(fd, head.data(), head.size(), 0), 4096);
    ASSERT_EQ(pwrite(fd, tail.data(), tail.size(), 4096 + kHole), 4096);
    ::close(fd);
  }
  struct stat sst = lstat_or_throw(root.path("src"));
  if (sst.st_blocks * 512 >= kHole) GTEST_SKIP() << "this filesystem does not make sparse files";
  struct stat st = copy(sst.st_size);
  EXPECT_EQ(st.st_size, sst.st_size);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "the hole was filled in";
  EXPECT_TRUE(read_file(root.path("dst")) == read_file(root.path("src")));
}

TEST_F(CopyDataTest, TrailingHoleKeepsTheSize) {
  root.file("src", "data");
  ASSERT_EQ(truncate(root.path("src").c_str(), 10 << 20), 0);
  struct stat st = copy(10 << 20);
  EXPECT_EQ(st.st_size, 10 << 20);
  EXPECT_LT(st.st_blocks * 512, 1 << 20);
  std::string d = read_file(root.path("dst"));
  EXPECT_EQ(d.substr(0, 4), "data");
  EXPECT_EQ(d.find_first_not_of('\0', 4), std::string::npos);
}

TEST_F(CopyDataTest, AcrossFilesystems) {
  // /dev/shm is tmpfs: copy_file_range to ext4/xfs is refused there and read/write takes over.
  struct stat shm;
  if (::stat("/dev/shm", &shm) < 0 || shm.st_dev == lstat_or_throw(root.root()).st_dev)
    GTEST_SKIP() << "no second filesystem";
  std::string src = "/dev/shm/strata-sys-test-" + std::to_string(getpid());
  { Tree("/dev/shm").file(src.substr(9), std::string(200000, 'z') + "end"); }
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  ::unlink(src.c_str());
  ASSERT_GE(in, 0);
  auto out = sys::open_at(rootfd.get(), "dst", O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_TRUE(out);
  auto r = sys::copy_data(in, out->get(), 200003);
  ::close(in);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(read_file(root.path("dst")) == std::string(200000, 'z') + "end");
}

TEST_F(SysTest, RenameAtFlags) {
  root.file("a", "A").file("b", "B");
  int d = rootfd.get();
  auto nr = sys::rename_at(d, "a", d, "b", RENAME_NOREPLACE);
  ASSERT_FALSE(nr);
  EXPECT_EQ(nr.error().err, EEXIST);
  EXPECT_EQ(read_file(root.path("a")), "A");
  ASSERT_TRUE(sys::rename_at(d, "a", d, "b", RENAME_EXCHANGE));
  EXPECT_EQ(read_file(root.path("a")), "B");
  EXPECT_EQ(read_file(root.path("b")), "A");
  auto ex = sys::rename_at(d, "a", d, "missing", RENAME_EXCHANGE);
  ASSERT_FALSE(ex);
  EXPECT_EQ(ex.error().err, ENOENT);
  ASSERT_TRUE(sys::rename_at(d, "a", d, "b", 0));
  EXPECT_FALSE(exists(root.path("a")));
  EXPECT_EQ(read_file(root.path("b")), "B");
  ASSERT_TRUE(sys::rename_at(d, "b", d, "c", RENAME_NOREPLACE));
  EXPECT_EQ(read_file(root.path("c")), "B");
}

TEST_F(SysTest, RenameWhiteoutLeavesADevice) {
  STRATA_REQUIRE_ROOT();
  root.file("a", "A");
  ASSERT_TRUE(sys::rename_at(rootfd.get(), "a", rootfd.get(), "b", RENAME_WHITEOUT));
  struct stat st = lstat_or_throw(root.path("a"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(read_file(root.path("b")), "A");
}

TEST_F(SysTest, NamespaceCalls) {
  int d = rootfd.get();
  ASSERT_TRUE(sys::mkdir_at(d, "dir", 0750));
  EXPECT_EQ(sys::mkdir_at(d, "dir", 0750).error().err, EEXIST);
  ASSERT_TRUE(sys::mknod_at(d, "fifo", S_IFIFO | 0600, 0));
  EXPECT_TRUE(S_ISFIFO(lstat_or_throw(root.path("fifo")).st_mode));
  std::string long_target(1500, 'x');  // longer than readlink_at's first buffer
  ASSERT_TRUE(sys::symlink_at(long_target.c_str(), d, "long"));
  auto t = sys::readlink_at(d, "long");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, long_target);
  root.file("f", "data");
  ASSERT_TRUE(sys::link_at(d, "f", d, "f2"));
  EXPECT_EQ(lstat_or_throw(root.path("f")).st_nlink, 2u);
  ASSERT_TRUE(sys::unlink_at(d, "f2", 0));
  ASSERT_TRUE(sys::unlink_at(d, "dir", AT_REMOVEDIR));
  EXPECT_FALSE(exists(root.path("dir")));
  EXPECT_EQ(sys::unlink_at(d, "dir", AT_REMOVEDIR).error().err, ENOENT);
}

TEST_F(SysTest, LinkAtEmptyNameLinksTheFd) {
  STRATA_REQUIRE_ROOT();  // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH
  root.file("f", "data");
  auto fd = sys::open_at(rootfd.get(), "f", O_PATH);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(sys::link_at(fd->get(), "", rootfd.get(), "g"));
  EXPECT_EQ(read_file(root.path("g")), "data");
}

TEST_F(SysTest, MetadataThroughOPathFds) {
  root.file("f", "0123456789", 0644);
  auto fd = sys::open_at(rootfd.get(), "f", O_PATH);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(sys::chmod_at(fd->get(), "", 0600));
  EXPECT_EQ(lstat_or_throw(root.path("f")).st_mode & 07777, 0600u);
  struct timespec ts[2] = {{1000, 5}, {2000, 7}};
  ASSERT_TRUE(sys::utimens_at(fd->get(), "", ts));
  struct stat st = lstat_or_throw(root.path("f"));
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 7);
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  ASSERT_TRUE(sys::chown_at(fd->get(), "", getuid(), getgid()));
  auto rd = sys::reopen(fd->get(), O_RDWR);
  ASSERT_TRUE(rd) << rd.error().message();
  ASSERT_TRUE(sys::truncate_fd(rd->get(), 4));
  EXPECT_EQ(read_fd(rd->get()), "0123");
  EXPECT_TRUE(fcntl(rd->get(), F_GETFD) & FD_CLOEXEC);
  auto sf = sys::statfs_fd(rootfd.get());
  ASSERT_TRUE(sf);
  EXPECT_GT(sf->f_bsize, 0);
}

TEST_F(SysTest, UtimensAtNamedSymlinkTouchesTheLink) {
  root.file("target").symlink("link", "target");
  struct timespec ts[2] = {{100, 0}, {200, 0}};
  ASSERT_TRUE(sys::utimens_at(rootfd.get(), "link", ts));
  EXPECT_EQ(lstat_or_throw(root.path("link")).st_mtim.tv_sec, 200);
  EXPECT_NE(lstat_or_throw(root.path("target")).st_mtim.tv_sec, 200);
}

TEST(SysOrdersMetadata, KnownAndUnknownFilesystems) {
  // procfs keeps no metadata on a disk at all: not a filesystem a crash record can be trusted to.
  int proc = ::open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(proc, 0);
  EXPECT_FALSE(strata::sys::orders_metadata(proc));
  ::close(proc);
  struct statfs fs;
  int shm = ::open("/dev/shm", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (shm >= 0 && ::fstatfs(shm, &fs) == 0 && fs.f_type == TMPFS_MAGIC) {
    EXPECT_TRUE(strata::sys::orders_metadata(shm));
  }
  if (shm >= 0) ::close(shm);
  // ext4 with and without a journal: tests/integration/durability_test.py, on images of its own.
}

}  // namespace
