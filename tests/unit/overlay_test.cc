// SPDX-License-Identifier: Apache-2.0
// merge::Overlay driven directly (no FUSE): engine results and the upper directory they leave on
// disk. Layout of every test: lowers l1 (top) and l2, upper `up`, workdir `wk`; the daemon's
// umask(0) is mimicked.
#include "strata/merge/overlay.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tree.h"

namespace {

using namespace strata::merge;  // NOLINT: the engine under test
using strata::testing::dump;
using strata::testing::exists;
using strata::testing::is_whiteout;
using strata::testing::ls;
using strata::testing::lstat_or_throw;
using strata::testing::read_file;
using strata::testing::TempDir;
using strata::testing::Tree;
using strata::testing::xattr_of;
using Names = std::vector<std::string>;

const Caller kRoot{0, 0};

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    STRATA_REQUIRE_ROOT();
    old_umask_ = umask(0);
  }
  void TearDown() override {
    if (old_umask_ != kUnset) umask(old_umask_);
  }

  void mount(bool with_upper = true) {
    OverlayOptions o;
    o.lowerdirs = {l1.root(), l2.root()};
    if (with_upper) {
      o.upperdir = up.root();
      o.workdir = wk.root();
    }
    o.fsync = false;
    auto r = Overlay::open(o);
    if (!r) throw std::runtime_error("Overlay::open: " + r.error().message());
    ov = std::move(*r);
  }
  Node* root() { return ov->root(); }
  // Looks up a '/'-separated path from the root; throws (failing the test) when it does not
  // resolve.
  Node* node(const std::string& path) {
    Node* cur = root();
    for (size_t pos = 0; pos <= path.size();) {
      size_t s = std::min(path.find('/', pos), path.size());
      auto e = ov->lookup(cur, path.substr(pos, s - pos));
      if (!e) throw std::runtime_error("lookup " + path + ": " + e.error().message());
      cur = e->node.get();
      keep.push_back(std::move(e->node));
      pos = s + 1;
    }
    return cur;
  }
  int lookup_err(Node* dir, const std::string& name) {
    auto e = ov->lookup(dir, name);
    return e ? 0 : e.error().err;
  }
  Names list(Node* dir) {
    auto d = ov->listing(dir);
    if (!d) throw std::runtime_error("readdir: " + d.error().message());
    Names out;
    for (auto& e : (*d)->entries) out.push_back(e.name);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string content(Node* n) {
    auto f = ov->open(n, O_RDONLY);
    if (!f) throw std::runtime_error("open: " + f.error().message());
    std::string out(1 << 16, '\0');
    ssize_t r = pread((*f)->fd(), out.data(), out.size(), 0);
    out.resize(r < 0 ? 0 : static_cast<size_t>(r));
    return out;
  }
  // The work dir's temporaries: none should be left. ("whiteout" is the shared whiteout inode, which new
  // whiteouts are links of, as in kernel overlayfs; it must be a 0/0 device.)
  Names work_entries() {
    Names out;
    for (auto& n : ls(wk.path("work"))) {
      if (n == "whiteout") {
        struct stat st;
        EXPECT_EQ(lstat(wk.path("work/whiteout").c_str(), &st), 0);
        EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == 0) << "work/whiteout is not a whiteout";
        continue;
      }
      out.push_back(n);
    }
    return out;
  }
  // The merged view's xattr names of n, sorted; and one value ("<errno N>" when getxattr fails).
  Names xattrs(Node* n) {
    char buf[1024];
    auto len = ov->listxattr(n, buf, sizeof buf);
    Names out;
    for (size_t i = 0; len && i < *len; i += out.back().size() + 1) out.emplace_back(buf + i);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string xattr(Node* n, const std::string& name) {
    char buf[1024];
    auto len = ov->getxattr(n, name, buf, sizeof buf);
    return len ? std::string(buf, *len) : "<errno " + std::to_string(len.error().err) + ">";
  }
  static SetAttr chmod_to(mode_t mode) { return SetAttr{.valid = SetAttr::kMode, .mode = mode}; }

  TempDir tmp;
  Tree l1{tmp.sub("l1")}, l2{tmp.sub("l2")}, up{tmp.sub("up")}, wk{tmp.sub("wk")};
  std::unique_ptr<Overlay> ov;
  std::vector<NodeRef> keep;  // declared after ov: released before it
  static constexpr mode_t kUnset = ~mode_t{0};
  mode_t old_umask_ = kUnset;  // set once SetUp got past the root check
};

TEST_F(OverlayTest, OpenValidatesOptions) {
  OverlayOptions o;
  EXPECT_ERRNO(Overlay::open(o), EINVAL);  // no lowerdir
  o.lowerdirs = {l1.root()};
  o.upperdir = up.root();
  EXPECT_ERRNO(Overlay::open(o), EINVAL);  // upper without work
  o.workdir = wk.root();
  o.lowerdirs = {tmp.path() + "/missing"};
  EXPECT_ERRNO(Overlay::open(o), ENOENT);
  struct stat shm;
  if (::stat("/dev/shm", &shm) == 0 && shm.st_dev != lstat_or_throw(up.root()).st_dev) {
    o.lowerdirs = {l1.root()};
    o.workdir = "/dev/shm";
    EXPECT_ERRNO(Overlay::open(o), EXDEV);
  }
}

TEST_F(OverlayTest, OpenCleansWorkdirLeftovers) {
  Tree w(wk.path("work"));
  w.file("#strata.1.0", "half a copy-up")
      .file("olddir/sub/deep", "x")
      .whiteout("olddir/wh")
      .dir("olddir/e");
  w.symlink("olddir/sub/l", "/etc").file("olddir/sub/ro", "", 0).dir("emptydir");
  mount();
  EXPECT_EQ(work_entries(), Names{});
  EXPECT_TRUE(exists("/etc/passwd")) << "a symlink in the work dir is removed, never followed";
}

TEST_F(OverlayTest, LookupAndReaddirMergeLayers) {
  l1.file("a", "l1a").file("d/x", "x").file("t", "file wins").dir("u/keep");
  l2.file("a", "l2a").file("b", "b", 0640).file("d/y", "y").file("t/z").file("u", "dir wins");
  up.file("a", "upper").chown("a", 0, 0);
  mount();
  EXPECT_EQ(content(node("a")), "upper");
  EXPECT_EQ(content(node("b")), "b");
  EXPECT_EQ(list(root()), (Names{"a", "b", "d", "t", "u"}));
  EXPECT_EQ(list(node("d")), (Names{"x", "y"}));
  EXPECT_EQ(list(node("u")), (Names{"keep"}));
  EXPECT_FALSE(node("t")->is_dir());
  auto st = ov->getattr(node("b"));
  ASSERT_OK(st);
  EXPECT_EQ(st->st_mode, S_IFREG | 0640u);
  EXPECT_EQ(st->st_ino, lstat_or_throw(l2.path("b")).st_ino)
      << "one filesystem: the real inode number";
  EXPECT_EQ(lookup_err(root(), "missing"), ENOENT);
  EXPECT_EQ(lookup_err(node("a"), "x"), ENOTDIR);
  EXPECT_EQ(lookup_err(root(), std::string(256, 'n')), ENAMETOOLONG);
  EXPECT_ERRNO(ov->listing(node("a")), ENOTDIR);
  EXPECT_TRUE(ov->has_upper());
  EXPECT_EQ(ov->layer_count(), 3u);
}

// Readdir offsets are name cookies: ordered, above "." and "..", the same for a name in every listing, so a
// reader continuing after a change neither skips nor repeats the names it had not seen.
TEST_F(OverlayTest, ListingCookiesAreStableAcrossChanges) {
  l1.file("a").file("b").file("c");
  l2.file("d");
  mount();
  auto before = ov->listing(root());
  ASSERT_OK(before);
  ASSERT_OK(ov->mkdir(root(), "e", 0755, kRoot));
  auto after = ov->listing(root());
  ASSERT_OK(after);
  ASSERT_EQ((*after)->entries.size(), 5u) << "a change takes a new listing";
  std::map<std::string, uint64_t> was;
  for (auto& e : (*before)->entries) was[e.name] = e.cookie;
  uint64_t prev = 2;
  for (auto& e : (*after)->entries) {
    EXPECT_GT(e.cookie, prev) << e.name;
    prev = e.cookie;
    if (e.name != "e") {
      EXPECT_EQ(e.cookie, was.at(e.name)) << e.name;
    }
  }
}

TEST_F(OverlayTest, LowerWhiteoutsAndOpaqueDirsAreHonoured) {
  l1.whiteout("wd").file(".wh.wf").opaque_dir("od").file("od/keep");
  l1.dir("md").file("md/.wh..wh..opq").file("md/keep");
  l1.opaque_dir("uo", "user.overlay.opaque").file("uo/keep");
  l1.opaque_dir("fo", "user.fuseoverlayfs.opaque").file("fo/keep");
  l1.opaque_dir("xd", "trusted.overlay.opaque", "x")
      .file("xd/gone")
      .xattr("xd/gone", "trusted.overlay.whiteout", "");
  l1.dir("nx").file("nx/f").xattr("nx/f", "trusted.overlay.whiteout",
                                  "");  // dir not marked "x": a file
  for (auto d : {"od", "md", "uo", "fo"}) l2.file(std::string(d) + "/hidden");
  l2.file("wd", "hidden")
      .file("wf", "hidden")
      .file("xd/gone", "hidden")
      .file("xd/stay")
      .file("nx/f", "hidden");
  l2.whiteout("bw").file("uw").file("uf").file("ud/hidden");
  up.whiteout("uw").file(".wh.uf").opaque_dir("ud");  // the same three formats in the upper
  mount();
  EXPECT_EQ(list(root()), (Names{"fo", "md", "nx", "od", "ud", "uo", "xd"}));
  for (auto n : {"wd", "wf", "bw", ".wh.wf", "uw", "uf"})
    EXPECT_EQ(lookup_err(root(), n), ENOENT) << n;
  for (auto d : {"od", "md", "uo", "fo"}) {
    EXPECT_EQ(list(node(d)), Names{"keep"}) << d;
    EXPECT_EQ(lookup_err(node(d), "hidden"), ENOENT) << d;
  }
  EXPECT_EQ(lookup_err(node("md"), ".wh..wh..opq"), ENOENT);
  EXPECT_EQ(list(node("xd")), Names{"stay"});
  EXPECT_EQ(lookup_err(node("xd"), "gone"), ENOENT);
  EXPECT_EQ(list(node("nx")), Names{"f"});
  EXPECT_EQ(content(node("nx/f")), "");
  EXPECT_EQ(list(node("ud")), Names{});
}

// Kernel overlayfs honours xattr whiteouts in a layer's root when the root is marked opaque=x
// (checked against Linux 6.18: `r` below is hidden in the kernel's merged view).
TEST_F(OverlayTest, XattrWhiteoutInLayerRoot) {
  l1.xattr("", "trusted.overlay.opaque", "x").file("r").xattr("r", "trusted.overlay.whiteout", "");
  l2.file("r", "hidden").file("s");
  mount();
  EXPECT_EQ(lookup_err(root(), "r"), ENOENT);
  EXPECT_EQ(list(root()), Names{"s"});
}

TEST_F(OverlayTest, CreateInLowerDirCopiesUpTheParent) {
  l2.dir("d", 0750).chown("d", 11, 12).file("d/y", "y");
  mount();
  auto c = ov->create(node("d"), "new", S_IFREG | 0640, O_WRONLY, Caller{1234, 5678});
  ASSERT_OK(c);
  EXPECT_EQ(c->first.st.st_mode, S_IFREG | 0640u);
  EXPECT_EQ(c->first.st.st_uid, 1234u);
  ASSERT_EQ(pwrite(c->second->fd(), "data", 4, 0), 4);
  EXPECT_EQ(dump(up.root()),
            ". dir mode=0755 uid=0 gid=0\nd dir mode=0750 uid=11 gid=12\n"
            "d/new file mode=0640 uid=1234 gid=5678 size=4 content=data\n");
  EXPECT_EQ(list(node("d")), (Names{"new", "y"}));
  EXPECT_EQ(xattr_of(up.path("d"), "trusted.overlay.opaque"), "<absent>")
      << "a copied-up dir stays merged";
  EXPECT_EQ(work_entries(), Names{});
}

TEST_F(OverlayTest, CreateFamily) {
  l2.file("b").dir("d");
  mount();
  ASSERT_OK(ov->mkdir(root(), "nd", 0710, kRoot));
  ASSERT_OK(ov->symlink(root(), "sl", "../target", kRoot));
  ASSERT_OK(ov->mknod(root(), "fifo", S_IFIFO | 0600, 0, kRoot));
  ASSERT_OK(ov->mknod(root(), "reg", S_IFREG | 0604, 0, kRoot));
  EXPECT_EQ(ov->readlink(node("sl")).value_or("<error>"), "../target");
  EXPECT_ERRNO(ov->mknod(root(), "wh", S_IFCHR | 0600, makedev(0, 0), kRoot), EPERM);
  EXPECT_ERRNO(ov->create(root(), "b", 0644, O_WRONLY, kRoot), EEXIST);  // exists in a lower
  EXPECT_ERRNO(ov->mkdir(root(), "d", 0755, kRoot), EEXIST);
  EXPECT_ERRNO(ov->mkdir(root(), "nd", 0755, kRoot), EEXIST);
  EXPECT_ERRNO(ov->mkdir(root(), std::string(256, 'n'), 0755, kRoot), ENAMETOOLONG);
  EXPECT_EQ(dump(up.root()),
            ". dir mode=0755 uid=0 gid=0\nfifo fifo mode=0600 uid=0 gid=0\n"
            "nd dir mode=0710 uid=0 gid=0\nreg file mode=0604 uid=0 gid=0 size=0 content=\n"
            "sl symlink mode=0777 uid=0 gid=0 target=../target\n");
  EXPECT_EQ(list(root()), (Names{"b", "d", "fifo", "nd", "reg", "sl"}));
}

TEST_F(OverlayTest, ReservedNamesAreRejectedAndInvisible) {
  l2.file("b");
  mount();
  EXPECT_ERRNO(ov->create(root(), ".wh.x", 0644, O_WRONLY, kRoot), EINVAL);
  EXPECT_ERRNO(ov->mkdir(root(), ".wh.d", 0755, kRoot), EINVAL);
  EXPECT_ERRNO(ov->mkdir(root(), ".wh..wh..opq", 0755, kRoot), EINVAL);
  EXPECT_ERRNO(ov->symlink(root(), ".wh.l", "b", kRoot), EINVAL);
  EXPECT_ERRNO(ov->mknod(root(), ".wh.f", S_IFIFO | 0644, 0, kRoot), EINVAL);
  EXPECT_ERRNO(ov->link(node("b"), root(), ".wh.b2"), EINVAL);
  EXPECT_ERRNO(ov->rename(root(), "b", root(), ".wh.b", 0), EINVAL);
  EXPECT_EQ(ls(up.root()), Names{}) << "nothing may reach the upper";
  up.file(".wh.stray").file(".wh..wh..opq");  // written by another tool: still never shown
  EXPECT_EQ(list(root()), Names{"b"});
}

TEST_F(OverlayTest, UnlinkLeavesWhiteoutsOnlyWhereNeeded) {
  l2.file("b", "b").file("d/y").file("d/z").file("a", "lower a");
  mount();
  ASSERT_OK(ov->create(root(), "n", 0644, O_WRONLY, kRoot));
  ASSERT_OK(ov->open(node("a"), O_WRONLY));  // copy-up of a: now in the upper too
  EXPECT_OK(ov->unlink(root(), "b"));
  EXPECT_OK(ov->unlink(node("d"), "y"));
  EXPECT_OK(ov->unlink(root(), "n"));
  EXPECT_OK(ov->unlink(root(), "a"));
  EXPECT_EQ(dump(up.root()),
            ". dir mode=0755 uid=0 gid=0\na whiteout\nb whiteout\nd dir mode=0755 uid=0 gid=0\nd/y "
            "whiteout\n");
  EXPECT_EQ(list(root()), Names{"d"});
  EXPECT_EQ(list(node("d")), Names{"z"});
  EXPECT_EQ(lookup_err(root(), "b"), ENOENT);
  EXPECT_EQ(read_file(l2.path("b")), "b") << "lowers are never modified";
  EXPECT_ERRNO(ov->unlink(root(), "d"), EISDIR);
  EXPECT_ERRNO(ov->unlink(root(), "b"), ENOENT);
  EXPECT_EQ(work_entries(), Names{});
  auto c = ov->create(root(), "tmpf", 0600, O_RDWR,
                      kRoot);  // removed while in use: getattr still answers
  ASSERT_OK(c);
  ASSERT_EQ(pwrite(c->second->fd(), "abc", 3, 0), 3);
  ASSERT_OK(ov->unlink(root(), "tmpf"));
  auto st = ov->getattr(c->first.node.get());
  ASSERT_OK(st);
  EXPECT_EQ(st->st_size, 3);
  EXPECT_FALSE(exists(up.path("tmpf")));
}

TEST_F(OverlayTest, RmdirAndMkdirAgainMakesAnOpaqueDir) {
  l2.file("d/x").file("d/y").dir("e").file("f");
  mount();
  EXPECT_ERRNO(ov->rmdir(root(), "d"), ENOTEMPTY);
  EXPECT_ERRNO(ov->rmdir(root(), "f"), ENOTDIR);
  ASSERT_OK(ov->unlink(node("d"), "x"));
  ASSERT_OK(ov->unlink(node("d"), "y"));
  ASSERT_OK(ov->rmdir(root(), "d"));  // merged dir with only whiteouts in its upper part
  ASSERT_OK(ov->rmdir(root(), "e"));  // lower-only
  EXPECT_EQ(dump(up.root()), ". dir mode=0755 uid=0 gid=0\nd whiteout\ne whiteout\n");
  EXPECT_EQ(work_entries(), Names{});
  ASSERT_OK(ov->mkdir(root(), "d", 0700, kRoot));
  EXPECT_EQ(dump(up.root()),
            ". dir mode=0755 uid=0 gid=0\n"
            "d dir mode=0700 uid=0 gid=0 xattr trusted.overlay.opaque=y\ne whiteout\n");
  EXPECT_EQ(list(node("d")), Names{});
  EXPECT_EQ(lookup_err(node("d"), "x"), ENOENT);
  EXPECT_EQ(work_entries(), Names{});
  EXPECT_EQ(xattrs(node("d")), Names{}) << "the opaque marker is private";
  ASSERT_OK(ov->mkdir(root(), "nd", 0755, kRoot));  // upper-only: leaves nothing behind
  ASSERT_OK(ov->rmdir(root(), "nd"));
  EXPECT_FALSE(exists(up.path("nd")));
  EXPECT_EQ(lookup_err(root(), "nd"), ENOENT);
}

TEST_F(OverlayTest, RenameDirectories) {
  l2.file("d/x");
  mount();
  EXPECT_ERRNO(ov->rename(root(), "d", root(), "d2", 0), EXDEV);  // lower dir, redirect_dir=off
  ASSERT_OK(ov->create(node("d"), "new", 0644, O_WRONLY, kRoot));
  EXPECT_ERRNO(ov->rename(root(), "d", root(), "d2", 0), EXDEV);  // merged dir
  ASSERT_OK(ov->mkdir(root(), "nd", 0755, kRoot));
  Node* nd = node("nd");
  ASSERT_OK(ov->create(nd, "f", 0644, O_WRONLY, kRoot));
  ASSERT_OK(ov->rename(root(), "nd", root(), "moved", 0));
  auto p = ov->table().place(nd);
  EXPECT_EQ(p.parent.get(), root());
  EXPECT_EQ(p.name, "moved");
  EXPECT_EQ(node("moved"), nd);
  EXPECT_EQ(list(root()), (Names{"d", "moved"}));
  EXPECT_EQ(list(nd), Names{"f"});
  EXPECT_FALSE(exists(up.path("nd")));
  EXPECT_TRUE(exists(up.path("moved/f")));
  // As overlayfs: a pure-upper dir moved into a merged dir becomes opaque.
  EXPECT_EQ(xattr_of(up.path("moved"), "trusted.overlay.opaque"), "y");
}

TEST_F(OverlayTest, RenameFiles) {
  l2.file("b", "bee").file("c", "sea").file("e/x").dir("empty");
  mount();
  ASSERT_OK(ov->rename(root(), "b", root(), "b2", 0));
  EXPECT_TRUE(is_whiteout(up.path("b"))) << "the lower b must stay hidden";
  EXPECT_EQ(content(node("b2")), "bee");
  EXPECT_EQ(lookup_err(root(), "b"), ENOENT);
  ASSERT_OK(ov->rename(root(), "b2", root(), "c", 0));  // over a lower file
  EXPECT_EQ(content(node("c")), "bee");
  EXPECT_FALSE(exists(up.path("b2")));
  ASSERT_OK(ov->rename(root(), "c", root(), "b", 0));  // back over the whiteout
  EXPECT_EQ(content(node("b")), "bee");
  EXPECT_TRUE(is_whiteout(up.path("c")));
  EXPECT_EQ(list(root()), (Names{"b", "e", "empty"}));
  EXPECT_EQ(read_file(l2.path("b")), "bee");
  EXPECT_EQ(read_file(l2.path("c")), "sea");
  EXPECT_ERRNO(ov->rename(root(), "b", root(), "e", 0), EISDIR);
  EXPECT_ERRNO(ov->rename(root(), "empty", root(), "b", 0),
               EXDEV);  // a lower dir may not move at all
  ASSERT_OK(ov->mkdir(root(), "nd", 0755, kRoot));
  EXPECT_ERRNO(ov->rename(root(), "nd", root(), "b", 0), ENOTDIR);
  EXPECT_ERRNO(ov->rename(root(), "nd", root(), "e", 0), ENOTEMPTY);
  EXPECT_ERRNO(ov->rename(root(), "missing", root(), "x", 0), ENOENT);
  EXPECT_EQ(work_entries(), Names{});
}

TEST_F(OverlayTest, RenameFlags) {
  mount();
  auto a = ov->create(root(), "a", 0644, O_WRONLY, kRoot);
  ASSERT_OK(a);
  ASSERT_EQ(pwrite(a->second->fd(), "A", 1, 0), 1);
  up.file("b", "B");
  EXPECT_ERRNO(ov->rename(root(), "a", root(), "b", RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(ov->rename(root(), "a", root(), "zz", RENAME_EXCHANGE), ENOENT);
  EXPECT_ERRNO(ov->rename(root(), "a", root(), "b", RENAME_WHITEOUT), EINVAL);
  ASSERT_OK(ov->rename(root(), "a", root(), "b", RENAME_EXCHANGE));
  EXPECT_EQ(read_file(up.path("a")), "B");
  EXPECT_EQ(content(node("a")), "B");
  EXPECT_EQ(content(node("b")), "A");
  EXPECT_EQ(ov->table().place(a->first.node.get()).name, "b");
  ASSERT_OK(ov->rename(root(), "a", root(), "c", RENAME_NOREPLACE));
  EXPECT_EQ(list(root()), (Names{"b", "c"}));
}

TEST_F(OverlayTest, CopyUpPreservesMetadata) {
  const std::string data(100000, 'm');
  l2.file("dir/meta", data).chown("dir/meta", 1001, 1002).chmod("dir/meta", 04751);
  l2.xattr("dir/meta", "user.k", "v").xattr("dir/meta", "trusted.foo", "bar");
  l2.xattr("dir/meta", "trusted.overlay.origin", "junk")
      .xattr("dir/meta", "trusted.overlay.overlay.esc", "e");
  l2.mtime("dir/meta", 1000000000, 123456789);
  l2.dir("dir", 0751).chown("dir", 7, 8).xattr("dir", "user.dk", "dv").file("dir/other");
  mount();
  ASSERT_OK(ov->setxattr(node("dir/meta"), "user.new", "1", 0));
  // Parent first, with its own metadata and not opaque; set-id bits survive the chown of the copy;
  // the overlay's own xattrs describe the lower and stay behind, escaped ones are user data and
  // travel.
  EXPECT_EQ(dump(up.path("dir")),
            ". dir mode=0751 uid=7 gid=8 xattr user.dk=dv\n"
            "meta file mode=4751 uid=1001 gid=1002 size=100000 fnv=" +
                strata::testing::fnv1a(data) +
                " xattr trusted.foo=bar trusted.overlay.overlay.esc=e user.k=v user.new=1\n");
  struct stat cp = lstat_or_throw(up.path("dir/meta"));
  EXPECT_EQ(cp.st_mtim.tv_sec, 1000000000);
  EXPECT_EQ(cp.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(list(node("dir")), (Names{"meta", "other"}))
      << "a dir copy-up copies no children, merges them";
  ASSERT_NE(cp.st_ino, lstat_or_throw(l2.path("dir/meta")).st_ino);
  EXPECT_EQ(ov->getattr(node("dir/meta"))->st_ino, lstat_or_throw(l2.path("dir/meta")).st_ino)
      << "st_ino survives the copy-up";
  auto d = ov->listing(node("dir"));  // and readdir's d_ino agrees with st_ino
  ASSERT_OK(d);
  for (auto& e : (*d)->entries)
    EXPECT_EQ(e.ino, ov->getattr(node("dir/" + e.name))->st_ino) << e.name;
  EXPECT_EQ(work_entries(), Names{});
}

// A directory's times survive its own copy-up and the copy-up of a child into it: kernel overlayfs
// restores the parent's times after a child's copy-up (checked on Linux 6.18: `chmod m/d/f` leaves
// m/d's mtime alone).
TEST_F(OverlayTest, CopyUpKeepsDirectoryTimes) {
  l2.dir("d", 0750).file("d/x").file("d/y").mtime("d", 1500000000, 42);
  mount();
  ASSERT_OK(ov->setxattr(node("d"), "user.n", "1", 0));
  struct stat ud = lstat_or_throw(up.path("d"));
  EXPECT_EQ(ud.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(ud.st_mtim.tv_nsec, 42);
  ASSERT_OK(ov->setattr(node("d/x"), chmod_to(0600)));
  auto st = ov->getattr(node("d"));
  ASSERT_OK(st);
  EXPECT_EQ(st->st_mtim.tv_sec, 1500000000) << "copy-up of d/x changed d's mtime";
  EXPECT_EQ(st->st_mtim.tv_nsec, 42);
}

TEST_F(OverlayTest, SetattrCopiesUp) {
  l2.file("b", "hello", 0644).file("t", "hello").file("m", "x").symlink("sl", "b").dir("d");
  mount();
  SetAttr chmod = chmod_to(0600);
  auto st = ov->setattr(node("b"), chmod);
  ASSERT_OK(st);
  EXPECT_EQ(st->st_mode, S_IFREG | 0600u);
  EXPECT_EQ(lstat_or_throw(up.path("b")).st_mode & 07777, 0600u);
  EXPECT_EQ(lstat_or_throw(l2.path("b")).st_mode & 07777, 0644u);
  EXPECT_EQ(read_file(up.path("b")), "hello");
  SetAttr trunc{.valid = SetAttr::kSize, .size = 2};
  ASSERT_OK(ov->setattr(node("t"), trunc));
  EXPECT_EQ(read_file(up.path("t")), "he");
  trunc.size = 0;
  ASSERT_OK(ov->setattr(node("b"), trunc));
  EXPECT_EQ(read_file(up.path("b")), "");
  EXPECT_ERRNO(ov->setattr(node("d"), trunc), EISDIR);
  SetAttr own{.valid = SetAttr::kUid | SetAttr::kGid | SetAttr::kMtime,
              .uid = 4321,
              .gid = 8765,
              .mtime = {1234567, 0}};
  ASSERT_OK(ov->setattr(node("m"), own));
  struct stat m = lstat_or_throw(up.path("m"));
  EXPECT_EQ(m.st_uid, 4321u);
  EXPECT_EQ(m.st_gid, 8765u);
  EXPECT_EQ(m.st_mtim.tv_sec, 1234567);
  EXPECT_EQ(read_file(up.path("m")), "x");
  ASSERT_OK(ov->setattr(node("sl"), own));  // copies the link itself, never its target
  EXPECT_TRUE(S_ISLNK(lstat_or_throw(up.path("sl")).st_mode));
  EXPECT_EQ(lstat_or_throw(up.path("sl")).st_uid, 4321u);
  EXPECT_ERRNO(ov->setattr(node("sl"), chmod), EOPNOTSUPP);
}

TEST_F(OverlayTest, ReadOnlyHandleFollowsTheCopyUp) {
  l2.file("b", "old");
  mount();
  auto r = ov->open(node("b"), O_RDONLY);
  ASSERT_OK(r);
  EXPECT_FALSE(exists(up.path("b"))) << "reading copies nothing up";
  auto w = ov->open(node("b"), O_RDWR);
  ASSERT_OK(w);
  ASSERT_EQ(pwrite((*w)->fd(), "NEW", 3, 0), 3);
  char buf[8] = {};
  ASSERT_EQ(pread((*r)->fd(), buf, sizeof buf, 0), 3);
  EXPECT_EQ(std::string(buf), "NEW");
  EXPECT_EQ(read_file(l2.path("b")), "old");
  EXPECT_OK(ov->open(node("b"), O_WRONLY | O_TRUNC));
}

TEST_F(OverlayTest, Xattrs) {
  l2.file("b").xattr("b", "user.a", "1").xattr("b", "trusted.overlay.secret", "s");
  l2.xattr("b", "trusted.overlay.overlay.nested", "n").file("c").dir("d");
  mount();
  EXPECT_EQ(xattrs(node("b")),
            (Names{"trusted.overlay.nested", "user.a"}));  // escaped in the layer
  EXPECT_EQ(*ov->listxattr(node("b"), nullptr, 0),
            sizeof "trusted.overlay.nested" + sizeof "user.a");
  char small[3];
  EXPECT_ERRNO(ov->listxattr(node("b"), small, sizeof small), ERANGE);
  EXPECT_EQ(xattr(node("b"), "user.a"), "1");
  EXPECT_EQ(xattr(node("b"), "trusted.overlay.nested"), "n");
  EXPECT_EQ(xattr(node("b"), "trusted.overlay.secret"), "<errno 61>");  // ENODATA
  EXPECT_ERRNO(ov->setxattr(node("b"), "trusted.strata.x", "1", 0), EPERM);
  EXPECT_ERRNO(ov->setxattr(node("b"), "user.strata.x", "1", 0), EPERM);
  EXPECT_ERRNO(ov->removexattr(node("c"), "user.none"), ENODATA);
  EXPECT_FALSE(exists(up.path("c"))) << "removing nothing copies nothing up";
  ASSERT_OK(ov->removexattr(node("b"), "user.a"));
  EXPECT_EQ(xattr_of(up.path("b"), "user.a"), "<absent>");
  EXPECT_EQ(xattr_of(l2.path("b"), "user.a"), "1");
  // Setting an overlay xattr through the mount stores it escaped: d does not become opaque.
  ASSERT_OK(ov->setxattr(node("d"), "trusted.overlay.opaque", "y", 0));
  EXPECT_EQ(xattr_of(up.path("d"), "trusted.overlay.opaque"), "<absent>");
  EXPECT_EQ(xattr_of(up.path("d"), "trusted.overlay.overlay.opaque"), "y");
  EXPECT_EQ(xattr(node("d"), "trusted.overlay.opaque"), "y");
}

// What the merged view shows must not change because of a copy-up. On a privileged overlay
// user.overlay.* is ordinary user data (kernel overlayfs lists it and copies it up: checked on
// Linux 6.18).
TEST_F(OverlayTest, CopyUpKeepsEveryXattrTheMergedViewShows) {
  l2.file("f", "x").xattr("f", "user.k", "v").xattr("f", "user.overlay.foo", "bar");
  mount();
  Names before = xattrs(node("f"));
  EXPECT_EQ(before, (Names{"user.k", "user.overlay.foo"}));
  ASSERT_OK(ov->setattr(node("f"), chmod_to(0600)));
  EXPECT_EQ(xattrs(node("f")), before);
  EXPECT_EQ(xattr_of(up.path("f"), "user.overlay.foo"), "bar");
}

TEST_F(OverlayTest, LinkCopiesUpAndSharesTheInode) {
  l2.file("b", "bee").dir("d");
  l1.whiteout("w");
  l2.file("w");
  mount();
  Node* b = node("b");
  auto e = ov->link(b, node("d"), "b2");
  ASSERT_OK(e);
  EXPECT_EQ(e->st.st_ino, b->ino);
  EXPECT_EQ(e->st.st_nlink, 2u);
  EXPECT_EQ(lstat_or_throw(up.path("b")).st_ino, lstat_or_throw(up.path("d/b2")).st_ino);
  EXPECT_EQ(content(node("d/b2")), "bee");
  ASSERT_OK(ov->link(b, root(), "w"));  // a name hidden by a lower whiteout is free
  EXPECT_EQ(content(node("w")), "bee");
  EXPECT_ERRNO(ov->link(b, node("d"), "b2"), EEXIST);
  EXPECT_ERRNO(ov->link(node("d"), root(), "d2"), EPERM);
  EXPECT_EQ(work_entries(), Names{});
}

TEST_F(OverlayTest, ReadOnlyOverlayRefusesWrites) {
  l2.file("b", "bee").dir("d").symlink("sl", "b");
  mount(/*with_upper=*/false);
  EXPECT_FALSE(ov->has_upper());
  EXPECT_EQ(content(node("b")), "bee");
  EXPECT_EQ(list(root()), (Names{"b", "d", "sl"}));
  EXPECT_ERRNO(ov->create(root(), "n", 0644, O_WRONLY, kRoot), EROFS);
  EXPECT_ERRNO(ov->mkdir(root(), "n", 0755, kRoot), EROFS);
  EXPECT_ERRNO(ov->mknod(root(), "n", S_IFIFO | 0644, 0, kRoot), EROFS);
  EXPECT_ERRNO(ov->symlink(root(), "n", "b", kRoot), EROFS);
  EXPECT_ERRNO(ov->link(node("b"), root(), "n"), EROFS);
  EXPECT_ERRNO(ov->unlink(root(), "b"), EROFS);
  EXPECT_ERRNO(ov->rmdir(root(), "d"), EROFS);
  EXPECT_ERRNO(ov->rename(root(), "b", root(), "c", 0), EROFS);
  EXPECT_ERRNO(ov->setattr(node("b"), chmod_to(0600)), EROFS);
  EXPECT_ERRNO(ov->setxattr(node("b"), "user.x", "1", 0), EROFS);
  EXPECT_ERRNO(ov->removexattr(node("b"), "user.x"), EROFS);
  EXPECT_ERRNO(ov->open(node("b"), O_WRONLY), EROFS);
  EXPECT_ERRNO(ov->open(node("b"), O_RDONLY | O_TRUNC), EROFS);
  EXPECT_ERRNO(ov->ensure_upper(node("b")), EROFS);
  EXPECT_OK(ov->statfs());
  EXPECT_EQ(ls(wk.root()), Names{}) << "a read-only overlay never touches the workdir";
}

}  // namespace
