// SPDX-License-Identifier: Apache-2.0
// store: blobs of unknown digest (BlobWriter) and layers whose diff_id is known only at the end
// (begin_layer()). The contract under test: nothing is visible in blobs/ or layers/ before
// publish/commit; the published blob is named by its own SHA-256; an existing blob is never
// replaced; an abandoned or failed writer leaves no temporary; cleanup_stale removes a dead
// writer's temporary; a write that fails (file size limit standing in for a full disk) leaves
// nothing behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "strata/store/blob_writer.h"
#include "strata/store/digest.h"
#include "strata/store/store.h"
#include "strata/sys/fs.h"
#include "tree.h"

namespace {

using strata::store::BlobWriter;
using strata::store::Digest;
using strata::store::LayerMeta;
using strata::store::Sha256;
using strata::store::Store;
using strata::testing::exists;
using strata::testing::ls;
using strata::testing::read_file;
using strata::testing::TempDir;
using strata::testing::Tree;

class BlobWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(root);
    ASSERT_OK(s);
    store.emplace(std::move(*s));
  }
  std::vector<std::string> blobs() const { return ls(root + "/oci/blobs/sha256"); }
  std::vector<std::string> ingest() const { return ls(root + "/ingest"); }
  TempDir tmp;
  std::string root = tmp.path() + "/store";
  std::optional<Store> store;
};

TEST_F(BlobWriterTest, PublishesUnderItsOwnDigest) {
  auto w = BlobWriter::begin(*store);
  ASSERT_OK(w);
  EXPECT_OK(w->write("hello ", 6));
  EXPECT_OK(w->write("world", 5));
  EXPECT_EQ(w->size(), 11u);
  EXPECT_EQ(ingest().size(), 1u);
  auto d = w->finish();
  ASSERT_OK(d);
  EXPECT_EQ(*d, *Sha256::of("hello world"));
  EXPECT_TRUE(blobs().empty()) << "visible before publish";
  EXPECT_ERRNO(w->write("x", 1), EINVAL);
  ASSERT_OK(w->publish());
  EXPECT_EQ(blobs(), std::vector<std::string>{d->hex});
  EXPECT_EQ(read_file(root + "/oci/blobs/sha256/" + d->hex), "hello world");
  EXPECT_TRUE(ingest().empty());
  EXPECT_TRUE(store->has_blob(*d));
}

TEST_F(BlobWriterTest, BigBlobInOddPiecesIsExact) {
  // Over the 4 MiB gathering buffer, pieces of odd sizes, an unaligned tail: the direct writes and
  // the buffered tail make exactly the bytes written.
  std::string data;
  for (size_t i = 0; data.size() < (9u << 20) + 1234; ++i)
    data += std::to_string(i * 2654435761u) + (i % 7 ? " " : "\n");
  auto w = BlobWriter::begin(*store);
  ASSERT_OK(w);
  for (size_t at = 0, step = 1; at < data.size(); at += step, step = step * 3 % 1000003 + 1)
    ASSERT_OK(w->write(data.data() + at, std::min(step, data.size() - at)));
  EXPECT_EQ(w->size(), data.size());
  auto d = w->finish();
  ASSERT_OK(d);
  EXPECT_EQ(*d, *Sha256::of(data));
  ASSERT_OK(w->publish());
  EXPECT_EQ(read_file(root + "/oci/blobs/sha256/" + d->hex), data);
}

TEST_F(BlobWriterTest, NeverReplacesAnExistingBlob) {
  auto first = store->write_blob("same");
  ASSERT_OK(first);
  std::string path = root + "/oci/blobs/sha256/" + first->hex;
  struct stat before = strata::testing::lstat_or_throw(path);
  auto w = BlobWriter::begin(*store);
  ASSERT_OK(w);
  ASSERT_OK(w->write("same", 4));
  ASSERT_OK(w->finish());
  ASSERT_OK(w->publish());
  struct stat after = strata::testing::lstat_or_throw(path);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_TRUE(ingest().empty());
}

TEST_F(BlobWriterTest, AbandonedWriterLeavesNothing) {
  {
    auto w = BlobWriter::begin(*store);
    ASSERT_OK(w);
    ASSERT_OK(w->write("partial", 7));
  }
  {
    auto w = BlobWriter::begin(*store);
    ASSERT_OK(w);
    ASSERT_OK(w->write("finished", 8));
    ASSERT_OK(w->finish());
  }
  EXPECT_TRUE(ingest().empty());
  EXPECT_TRUE(blobs().empty());
}

TEST_F(BlobWriterTest, MovedWriterOwnsTheTemporary) {
  auto w = BlobWriter::begin(*store);
  ASSERT_OK(w);
  BlobWriter moved = std::move(*w);
  ASSERT_OK(moved.write("abc", 3));
  ASSERT_OK(moved.finish());
  ASSERT_OK(moved.publish());
  EXPECT_EQ(blobs().size(), 1u);
  EXPECT_TRUE(ingest().empty());
}

TEST_F(BlobWriterTest, FailedWriteLeavesNothing) {
  // RLIMIT_FSIZE stands in for a full disk: the write fails (EFBIG) part way through. In a child,
  // so that the limit and SIGXFSZ do not touch the test runner.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_FSIZE, &rl);
    auto w = BlobWriter::begin(*store);
    if (!w) _exit(10);
    std::string chunk(40000, 'x');
    if (!w->write(chunk.data(), chunk.size())) _exit(11);
    // Writes are gathered (blob_writer.h): the failure shows at this write or at finish().
    auto r = w->write(chunk.data(), chunk.size());
    if (r) {
      auto f = w->finish();
      if (f || f.error().err != EFBIG) _exit(12);
    } else if (r.error().err != EFBIG) {
      _exit(12);
    }
    if (w->finish()) _exit(13);  // unusable after a failed write
    _exit(0);                    // the destructor does not run on _exit: discard explicitly below
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  // The child died without cleaning up, like a crash: cleanup_stale removes its temporary.
  EXPECT_EQ(ingest().size(), 1u);
  auto removed = store->cleanup_stale();
  ASSERT_OK(removed);
  EXPECT_EQ(removed->size(), 1u);
  EXPECT_TRUE(ingest().empty());
  EXPECT_TRUE(blobs().empty());
}

TEST_F(BlobWriterTest, FailedWriteInProcessRemovesTemporaryOnDestruction) {
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto prev = signal(SIGXFSZ, SIG_IGN);
  {
    auto w = BlobWriter::begin(*store);
    ASSERT_OK(w);
    struct rlimit rl = {4096, old.rlim_max};
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
    std::string chunk(10000, 'y');
    auto r = w->write(chunk.data(), chunk.size());
    bool failed = !r.has_value();
    if (!failed) failed = !w->finish().has_value();  // gathered: the failure shows at finish()
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
    EXPECT_TRUE(failed);
  }
  signal(SIGXFSZ, prev);
  EXPECT_TRUE(ingest().empty());
  EXPECT_TRUE(blobs().empty());
}

TEST_F(BlobWriterTest, LayerOfUnknownDiffIdTakesItAtCommit) {
  auto t = store->begin_layer();
  ASSERT_OK(t);
  EXPECT_FALSE(t->diff_id().valid());
  Tree(t->diff_path()).file("a", "1");
  Digest id = *Sha256::of("the tar");
  EXPECT_FALSE(store->has_layer(id));
  LayerMeta meta;
  meta.diff_id = id;
  meta.size = 7;
  ASSERT_OK(store->commit_layer(std::move(*t), meta));
  EXPECT_TRUE(store->has_layer(id));
  EXPECT_EQ(read_file(store->layer_diff_path(id) + "/a"), "1");
  // A second one with the same diff_id loses the race quietly and leaves no temporary.
  auto t2 = store->begin_layer();
  ASSERT_OK(t2);
  Tree(t2->diff_path()).file("a", "2");
  ASSERT_OK(store->commit_layer(std::move(*t2), meta));
  EXPECT_EQ(read_file(store->layer_diff_path(id) + "/a"), "1");
  EXPECT_EQ(ls(root + "/layers"), std::vector<std::string>{id.hex});
}

TEST_F(BlobWriterTest, LayerOfUnknownDiffIdRejectsBadMeta) {
  auto t = store->begin_layer();
  ASSERT_OK(t);
  LayerMeta meta;  // no diff_id
  EXPECT_ERRNO(store->commit_layer(std::move(*t), meta), EINVAL);
}

}  // namespace
