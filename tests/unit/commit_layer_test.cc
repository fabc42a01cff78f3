// SPDX-License-Identifier: Apache-2.0
// commit: the layer made from an upper directory. The contract under test (tree_walk.h, layer.h):
// every whiteout form becomes DIR/.wh.NAME, every opaque form DIR/.wh..wh..opq right after DIR;
// hard links within the tree are tar hard links, the kernel's shared whiteout inode is not;
// private xattrs are dropped and escaped ones restored; a recorded owner is the tar owner;
// entries are sorted; SOURCE_DATE_EPOCH clamps times; the same tree gives the same digests;
// layers/<diff_id> equals what unpacking the blob gives; an empty upper is no layer.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "strata/archive/unpack.h"
#include "strata/commit/layer.h"
#include "strata/store/store.h"
#include "strata/sys/fs.h"
#include "tree.h"

namespace {

using strata::UniqueFd;
using strata::commit::build_layer;
using strata::commit::BuiltLayer;
using strata::commit::Compression;
using strata::commit::LayerOptions;
using strata::commit::publish_layer;
using strata::commit::WalkMode;
using strata::store::Store;
using strata::testing::dump;
using strata::testing::ls;
using strata::testing::TempDir;
using strata::testing::Tree;

// "NAME TYPE mode uid:gid [size=N data=..] [-> link] [xattr k=v]" per entry, in tar order.
std::vector<std::string> list_tar(const std::string& path) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_empty(a);
  std::vector<std::string> out;
  if (archive_read_open_filename(a, path.c_str(), 65536) != ARCHIVE_OK) {
    out.push_back(std::string("open failed: ") + archive_error_string(a));
    archive_read_free(a);
    return out;
  }
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string l = archive_entry_pathname(e);
    const char* hl = archive_entry_hardlink(e);
    mode_t t = archive_entry_filetype(e);
    l += hl              ? " hardlink"
         : t == AE_IFDIR ? " dir"
         : t == AE_IFREG ? " file"
         : t == AE_IFLNK ? " symlink"
         : t == AE_IFIFO ? " fifo"
         : t == AE_IFCHR ? " chr"
                         : " other";
    char m[32];
    snprintf(m, sizeof m, " %04o %d:%d", archive_entry_perm(e),
             static_cast<int>(archive_entry_uid(e)), static_cast<int>(archive_entry_gid(e)));
    l += m;
    if (hl) l += std::string(" -> ") + hl;
    if (t == AE_IFLNK) l += std::string(" -> ") + archive_entry_symlink(e);
    if (t == AE_IFCHR)
      l += " rdev=" + std::to_string(archive_entry_rdevmajor(e)) + ":" +
           std::to_string(archive_entry_rdevminor(e));
    if (t == AE_IFREG && !hl) {
      std::string data(static_cast<size_t>(archive_entry_size(e)), '\0');
      if (!data.empty()) archive_read_data(a, data.data(), data.size());
      l += " data=" + data;
    }
    const char* un = archive_entry_uname(e);
    const char* gn = archive_entry_gname(e);
    if ((un && *un) || (gn && *gn)) l += " HAS-OWNER-NAMES";
    archive_entry_xattr_reset(e);
    const char* xn;
    const void* xv;
    size_t xs;
    while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK)
      l += std::string(" xattr ") + xn + "=" + std::string(static_cast<const char*>(xv), xs);
    out.push_back(l);
  }
  archive_read_free(a);
  return out;
}

int64_t tar_mtime_max(const std::string& path) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  int64_t mx = 0;
  if (archive_read_open_filename(a, path.c_str(), 65536) == ARCHIVE_OK) {
    struct archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK)
      mx = std::max<int64_t>(mx, archive_entry_mtime(e));
  }
  archive_read_free(a);
  return mx;
}

class CommitLayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(tmp.path() + "/store");
    ASSERT_OK(s);
    store.emplace(std::move(*s));
  }
  BuiltLayer build(const std::string& dir, LayerOptions o = {}) {
    auto fd = strata::sys::open_path(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (!fd) throw std::runtime_error(fd.error().message());
    auto l = build_layer(*store, fd->get(), o);
    if (!l) throw std::runtime_error(l.error().message());
    return std::move(*l);
  }
  // Build and publish; returns the blob's path.
  std::string commit(const std::string& dir, BuiltLayer* out = nullptr, LayerOptions o = {}) {
    BuiltLayer l = build(dir, o);
    auto lock = store->lock_exclusive();
    if (!lock) throw std::runtime_error(lock.error().message());
    auto p = publish_layer(*store, *lock, &l);
    if (!p) throw std::runtime_error(p.error().message());
    std::string path = store->blob_path(l.blob_digest);
    if (out) *out = std::move(l);
    return path;
  }
  TempDir tmp;
  std::optional<Store> store;
};

TEST_F(CommitLayerTest, EmptyUpperIsNoLayer) {
  std::string up = tmp.sub("upper");
  BuiltLayer l = build(up);
  EXPECT_TRUE(l.empty);
  EXPECT_FALSE(l.blob.has_value());
  EXPECT_TRUE(ls(tmp.path() + "/store/ingest").empty());
}

TEST_F(CommitLayerTest, FilesDirsSymlinksSortedBytewise) {
  Tree t(tmp.sub("upper"));
  t.file("b", "B")
      .file("a/z", "Z", 0600)
      .file("a/B", "b", 0755)
      .symlink("a/l", "../b")
      .file("A", "x");
  t.chmod("a", 0750);
  std::string blob = commit(t.root());
  std::vector<std::string> want = {"A file 0644 0:0 data=x",   "a/ dir 0750 0:0",
                                   "a/B file 0755 0:0 data=b", "a/l symlink 0777 0:0 -> ../b",
                                   "a/z file 0600 0:0 data=Z", "b file 0644 0:0 data=B"};
  EXPECT_EQ(list_tar(blob), want);
}

TEST_F(CommitLayerTest, EveryWhiteoutForm) {
  STRATA_REQUIRE_ROOT();
  Tree t(tmp.sub("upper"));
  t.whiteout("dev0");                               // kernel / stratafs: char 0/0
  t.file("d/.wh.gone", "");                         // fuse-overlayfs, rootless stratafs
  t.opaque_dir("x", "trusted.overlay.opaque", "x")  // kernel: xattr whiteouts live here
      .file("x/xw", "")
      .xattr("x/xw", "trusted.overlay.whiteout", "")
      .file("x/plain", "")  // empty file, no xattr: a file
      .file("x/kept", "k");
  t.file("y/notwh", "").xattr("y/notwh", "trusted.overlay.whiteout", "");  // not in an "x" dir
  t.whiteout("both").file(".wh.both", "");  // two forms of one whiteout: one entry
  std::string blob = commit(t.root());
  std::vector<std::string> want = {".wh.both file 0000 0:0 data=",
                                   ".wh.dev0 file 0000 0:0 data=",
                                   "d/ dir 0755 0:0",
                                   "d/.wh.gone file 0000 0:0 data=",
                                   "x/ dir 0755 0:0",
                                   "x/.wh.xw file 0000 0:0 data=",
                                   "x/kept file 0644 0:0 data=k",
                                   "x/plain file 0644 0:0 data=",
                                   "y/ dir 0755 0:0",
                                   "y/notwh file 0644 0:0 data="};
  EXPECT_EQ(list_tar(blob), want);
}

TEST_F(CommitLayerTest, EveryOpaqueFormFirstInItsDirectory) {
  STRATA_REQUIRE_ROOT();
  Tree t(tmp.sub("upper"));
  t.opaque_dir("k").file("k/.a", "1");                                    // kernel, as root
  t.opaque_dir("u", "user.overlay.opaque").file("u/a", "2");              // rootless
  t.opaque_dir("f", "user.fuseoverlayfs.opaque").file("f/a", "3");        // fuse-overlayfs
  t.dir("m").file("m/.wh..wh..opq", "").file("m/-", "4");                 // the marker file
  t.dir("n").xattr("n", "trusted.overlay.opaque", "n").file("n/a", "5");  // not opaque
  std::string blob = commit(t.root());
  std::vector<std::string> want = {"f/ dir 0755 0:0",
                                   "f/.wh..wh..opq file 0000 0:0 data=",
                                   "f/a file 0644 0:0 data=3",
                                   "k/ dir 0755 0:0",
                                   "k/.wh..wh..opq file 0000 0:0 data=",
                                   "k/.a file 0644 0:0 data=1",
                                   "m/ dir 0755 0:0",
                                   "m/.wh..wh..opq file 0000 0:0 data=",
                                   "m/- file 0644 0:0 data=4",
                                   "n/ dir 0755 0:0",
                                   "n/a file 0644 0:0 data=5",
                                   "u/ dir 0755 0:0",
                                   "u/.wh..wh..opq file 0000 0:0 data=",
                                   "u/a file 0644 0:0 data=2"};
  EXPECT_EQ(list_tar(blob), want);
}

TEST_F(CommitLayerTest, HardLinksInsideTheTreeOnly) {
  STRATA_REQUIRE_ROOT();
  Tree t(tmp.sub("upper"));
  t.file("d/one", "data").file("z", "solo").whiteout("w1");
  Tree out(tmp.sub("outside"));
  // Links to a file outside the tree (like stratafs's index links in workdir): nlink 2, not a tar
  // link.
  ASSERT_EQ(::link((t.root() + "/z").c_str(), (out.root() + "/idx").c_str()), 0);
  ASSERT_EQ(::link((t.root() + "/d/one").c_str(), (t.root() + "/a-two").c_str()), 0);
  ASSERT_EQ(::link((t.root() + "/d/one").c_str(), (t.root() + "/d/three").c_str()), 0);
  // The kernel's whiteouts: hard links of one 0/0 inode.
  ASSERT_EQ(::link((t.root() + "/w1").c_str(), (t.root() + "/d/w2").c_str()), 0);
  std::string blob = commit(t.root());
  std::vector<std::string> want = {".wh.w1 file 0000 0:0 data=",
                                   "a-two file 0644 0:0 data=data",
                                   "d/ dir 0755 0:0",
                                   "d/.wh.w2 file 0000 0:0 data=",
                                   "d/one hardlink 0644 0:0 -> a-two",
                                   "d/three hardlink 0644 0:0 -> a-two",
                                   "z file 0644 0:0 data=solo"};
  EXPECT_EQ(list_tar(blob), want);
}

TEST_F(CommitLayerTest, XattrsPrivateDroppedEscapedRestoredOwnerRecordApplied) {
  STRATA_REQUIRE_ROOT();
  Tree t(tmp.sub("upper"));
  t.file("f", "x")
      .xattr("f", "user.keep", "1")
      .xattr("f", "trusted.overlay.origin", "private")
      .xattr("f", "trusted.overlay.overlay.opaque", "mine")  // a user's overlay.* name, escaped
      .xattr("f", "user.overlay.impure", "private")
      .xattr("f", "trusted.strata.ino", "private")
      .xattr("f", "user.strata.owner", "9:9")  // no longer an owner record: dropped as strata's
      .xattr("f", "user.fuseoverlayfs.override_stat", "1234:5678:4711")
      .xattr("f", "security.fuseoverlayfs.override_stat", "1:1:700")  // the user.* record wins
      .xattr("f", "security.capability",
             std::string(
                 "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
                 20));
  t.file("g", "y").chown("g", 42, 43);
  t.file("h", "z").xattr("h", "user.containers.override_stat", "7:-1:100600");  // -1: the real gid
  auto lines = list_tar(commit(t.root()));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].substr(0, 26), "f file 4711 1234:5678 data");
  EXPECT_EQ(lines[0].find("override"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" xattr security.capability="), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" xattr trusted.overlay.opaque=mine"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(" xattr user.keep=1"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("private"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("strata"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1], "g file 0644 42:43 data=y");
  EXPECT_EQ(lines[2], "h file 0600 7:0 data=z");
}

TEST_F(CommitLayerTest, DevicesAndFifos) {
  STRATA_REQUIRE_ROOT();
  Tree t(tmp.sub("upper"));
  ASSERT_EQ(::mknod((t.root() + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  t.chmod("null", 0666);
  ASSERT_EQ(::mkfifo((t.root() + "/p").c_str(), 0640), 0);
  auto lines = list_tar(commit(t.root()));
  EXPECT_EQ(lines, (std::vector<std::string>{"null chr 0666 0:0 rdev=1:3", "p fifo 0640 0:0"}));
}

TEST_F(CommitLayerTest, DeterministicAndClamped) {
  Tree t(tmp.sub("upper"));
  t.file("a", std::string(300000, 'q'))
      .file("d/b", "b")
      .symlink("d/l", "a")
      .mtime("a", 2000000000, 123);
  LayerOptions o;
  o.walk.clamp_mtime = 1000000000;
  BuiltLayer l1, l2;
  std::string p1 = commit(t.root(), &l1, o);
  EXPECT_LE(tar_mtime_max(p1), 1000000000);
  // Another store, same tree: same bytes.
  auto s2 = Store::open(tmp.path() + "/store2");
  ASSERT_OK(s2);
  store.emplace(std::move(*s2));
  commit(t.root(), &l2, o);
  EXPECT_EQ(l1.diff_id, l2.diff_id);
  EXPECT_EQ(l1.blob_digest, l2.blob_digest);
  EXPECT_EQ(l1.size, l2.size);
  // A change in the tree changes the digests.
  t.file("d/c", "c");
  BuiltLayer l3;
  commit(t.root(), &l3, o);
  EXPECT_NE(l3.diff_id, l1.diff_id);
}

TEST_F(CommitLayerTest, CompressionForms) {
  Tree t(tmp.sub("upper"));
  t.file("a", std::string(100000, 'a'));
  BuiltLayer g, z, n;
  LayerOptions o;
  commit(t.root(), &g, o);
  o.compression = Compression::kZstd;
  commit(t.root(), &z, o);
  o.compression = Compression::kNone;
  std::string np = commit(t.root(), &n, o);
  EXPECT_EQ(g.diff_id, z.diff_id);
  EXPECT_EQ(g.diff_id, n.diff_id);
  EXPECT_EQ(n.blob_digest, n.diff_id);  // uncompressed: the blob is the tar
  EXPECT_NE(g.blob_digest, z.blob_digest);
  EXPECT_LT(g.blob_size, 5000u);
  EXPECT_LT(z.blob_size, 5000u);
  EXPECT_EQ(n.blob_size, n.size);
  EXPECT_EQ(list_tar(np), list_tar(store->blob_path(g.blob_digest)));
  EXPECT_EQ(list_tar(np), list_tar(store->blob_path(z.blob_digest)));
}

TEST_F(CommitLayerTest, LayersCopyEqualsUnpackingTheBlob) {
  Tree t(tmp.sub("upper"));
  t.file("a", "A", 0640)
      .file("d/e/f", std::string(70000, 'f'))
      .symlink("s", "a")
      .dir("empty", 0700);
  t.file("d/.wh.old", "");
  if (::geteuid() == 0) {
    t.whiteout("gone").opaque_dir("o").file("o/x", "x").chown("a", 7, 8).xattr("a", "user.k", "v");
    ASSERT_EQ(::link((t.root() + "/a").c_str(), (t.root() + "/d/hl").c_str()), 0);
  }
  BuiltLayer l;
  std::string blob = commit(t.root(), &l);
  ASSERT_TRUE(store->has_layer(l.diff_id));
  auto meta = store->layer_meta(l.diff_id);
  ASSERT_OK(meta);
  EXPECT_EQ(meta->size, l.size);
  ASSERT_TRUE(meta->blob_digest.has_value());
  EXPECT_EQ(*meta->blob_digest, l.blob_digest);
  std::string un = tmp.sub("unpacked");
  auto src = strata::sys::open_path(blob.c_str(), O_RDONLY);
  auto dst = strata::sys::open_path(un.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_OK(src);
  ASSERT_OK(dst);
  ASSERT_OK(strata::archive::unpack_layer(src->get(), dst->get(), {}));
  EXPECT_EQ(dump(store->layer_diff_path(l.diff_id)), dump(un));
  EXPECT_TRUE(ls(tmp.path() + "/store/ingest").empty());
  // Only the published layer: no temporary left.
  EXPECT_EQ(ls(tmp.path() + "/store/layers"), std::vector<std::string>{l.diff_id.hex});
}

TEST_F(CommitLayerTest, BigFilesAndManyFilesCopyExactly) {
  // The layers/ copy of big files goes through the copy thread with direct I/O (aligned pieces, an
  // unaligned tail through the page cache); a layer of few entries is fsynced entry by entry, one
  // of many by syncfs. Either way the copy equals unpacking the blob, and the tar has the bytes.
  for (int many : {0, 1}) {
    Tree t(tmp.sub(many ? "upper-many" : "upper-big"));
    std::string big((3u << 20) + 777, '\0');
    uint32_t x = 99;
    for (auto& c : big) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
    t.file("big/odd", big).file("big/mib", big.substr(0, 1u << 20));
    t.file("big/just-over", big.substr(5, (256u << 10) + 1))
        .file("big/text", std::string(2u << 20, 't'));
    if (many)
      for (int i = 0; i < 300; ++i)
        t.file("many/d" + std::to_string(i % 7) + "/f" + std::to_string(i), "x");
    BuiltLayer l;
    std::string blob = commit(t.root(), &l);
    std::string un = tmp.sub(many ? "unpacked-many" : "unpacked-big");
    auto src = strata::sys::open_path(blob.c_str(), O_RDONLY);
    auto dst = strata::sys::open_path(un.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_OK(src);
    ASSERT_OK(dst);
    ASSERT_OK(strata::archive::unpack_layer(src->get(), dst->get(), {}));
    EXPECT_EQ(dump(store->layer_diff_path(l.diff_id)), dump(un));
    EXPECT_EQ(strata::testing::read_file(un + "/big/odd"), big);
    EXPECT_EQ(strata::testing::read_file(store->layer_diff_path(l.diff_id) + "/big/odd"), big);
  }
  EXPECT_TRUE(ls(tmp.path() + "/store/ingest").empty());
}

TEST_F(CommitLayerTest, TreeModeTakesEverythingLiterally) {
  Tree t(tmp.sub("merged"));
  t.file(".wh.not-special-here", "1").file("a", "2").xattr("a", "user.overlay.x", "kept");
  LayerOptions o;
  o.walk.mode = WalkMode::kTree;
  auto lines = list_tar(commit(t.root(), nullptr, o));
  EXPECT_EQ(lines, (std::vector<std::string>{".wh.not-special-here file 0644 0:0 data=1",
                                             "a file 0644 0:0 data=2 xattr user.overlay.x=kept"}));
}

TEST_F(CommitLayerTest, FullDiskLeavesNoTemporary) {
  // RLIMIT_FSIZE stands in for a full disk (the blob or the layers/ copy cannot grow), in a child
  // so that the limit does not touch the test runner.
  Tree t(tmp.sub("upper"));
  t.file("small", "x").file("big", std::string(3u << 20, 'b'));
  std::string root = t.root();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {1u << 20, 1u << 20};
    setrlimit(RLIMIT_FSIZE, &rl);
    auto fd = strata::sys::open_path(root.c_str(), O_RDONLY | O_DIRECTORY);
    if (!fd) _exit(10);
    LayerOptions o;
    o.compression = Compression::kNone;
    auto l = build_layer(*store, fd->get(), o);
    if (l.has_value()) _exit(11);
    if (l.error().err != EFBIG) _exit(12);
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_TRUE(ls(tmp.path() + "/store/ingest").empty());
  EXPECT_TRUE(ls(tmp.path() + "/store/layers").empty());
  EXPECT_TRUE(ls(tmp.path() + "/store/oci/blobs/sha256").empty());
}

TEST_F(CommitLayerTest, BlobFailingOnTheWriterThreadLeavesNoTemporary) {
  // gzip writes the blob from its emitter thread: a blob that cannot grow (RLIMIT_FSIZE standing in
  // for a full disk) fails there, mid-stream, while each layers/ file still fits. The build fails
  // with that error and removes every temporary.
  Tree t(tmp.sub("upper"));
  std::string rnd(900u << 10, '\0');
  uint32_t x = 12345;
  for (auto& c : rnd) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
  for (int i = 0; i < 4; ++i) t.file("r" + std::to_string(i), rnd.substr(i) + rnd.substr(0, i));
  std::string root = t.root();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {1u << 20, 1u << 20};
    setrlimit(RLIMIT_FSIZE, &rl);
    auto fd = strata::sys::open_path(root.c_str(), O_RDONLY | O_DIRECTORY);
    if (!fd) _exit(10);
    auto l = build_layer(*store, fd->get(), LayerOptions{});
    if (l.has_value()) _exit(11);
    if (l.error().err != EFBIG) _exit(12);
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_TRUE(ls(tmp.path() + "/store/ingest").empty());
  EXPECT_TRUE(ls(tmp.path() + "/store/layers").empty());
  EXPECT_TRUE(ls(tmp.path() + "/store/oci/blobs/sha256").empty());
}

}  // namespace
