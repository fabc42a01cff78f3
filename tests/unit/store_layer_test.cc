// SPDX-License-Identifier: Apache-2.0
// store: unpacked layers, the writers' lock, stale temporaries, and unprivileged use. The contract
// under test: a layer appears under layers/<hex> only complete (meta.json written) and atomically;
// losing a commit race succeeds and leaves no temporary; an abandoned LayerTemp cleans up after
// itself; cleanup_stale removes only temporaries whose owner is dead; the lock excludes a second
// writer (with a timeout).
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "strata/store/digest.h"
#include "strata/store/ingest.h"
#include "strata/store/store.h"
#include "strata/sys/fs.h"
#include "tree.h"

namespace {

using strata::store::Digest;
using strata::store::LayerMeta;
using strata::store::Sha256;
using strata::store::Store;
using strata::testing::exists;
using strata::testing::ls;
using strata::testing::read_file;
using strata::testing::TempDir;
using strata::testing::Tree;

Digest digest_of(const std::string& s) {
  return *Sha256::of(s);
}

void put_file(int dirfd, const char* name, const std::string& content) {
  auto fd = strata::sys::open_at(dirfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (!fd) throw std::runtime_error(fd.error().message());
  if (::write(fd->get(), content.data(), content.size()) != static_cast<ssize_t>(content.size()))
    throw std::runtime_error("write");
}

pid_t dead_pid() {
  pid_t p = fork();
  if (p == 0) _exit(0);
  int st;
  waitpid(p, &st, 0);
  return p;
}

class LayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(root);
    ASSERT_OK(s);
    store.emplace(std::move(*s));
  }
  std::string layers() const { return root + "/layers"; }
  TempDir tmp;
  std::string root = tmp.path() + "/store";
  std::optional<Store> store;
  Digest id = digest_of("layer tar bytes");
  Digest blob = digest_of("compressed layer bytes");
};

TEST_F(LayerTest, BeginCommitPublishes) {
  EXPECT_FALSE(store->has_layer(id));
  auto t = store->begin_layer(id);
  ASSERT_OK(t);
  EXPECT_EQ(t->name().rfind(".tmp-" + id.hex + "-" + std::to_string(getpid()) + "-", 0), 0u)
      << t->name();
  put_file(t->diff_fd(), "hello", "world");
  EXPECT_EQ(read_file(t->diff_path() + "/hello"), "world");
  EXPECT_FALSE(store->has_layer(id));  // invisible until committed
  LayerMeta m{id, 12345, "", blob};
  ASSERT_OK(store->commit_layer(std::move(*t), m));
  EXPECT_TRUE(store->has_layer(id));
  EXPECT_EQ(ls(layers()), std::vector<std::string>{id.hex});
  EXPECT_EQ(read_file(store->layer_diff_path(id) + "/hello"), "world");
  auto fd = store->layer_diff_fd(id);
  ASSERT_OK(fd);
  EXPECT_TRUE(strata::sys::stat_at(fd->get(), "hello"));
  auto j = nlohmann::json::parse(read_file(layers() + "/" + id.hex + "/meta.json"));
  EXPECT_EQ(j["diff_id"], id.to_string());
  EXPECT_EQ(j["size"], 12345);
  EXPECT_EQ(j["compressed_digest"], blob.to_string());
  EXPECT_EQ(j["created"].get<std::string>().size(), 20u);  // 2024-01-02T03:04:05Z
  auto meta = store->layer_meta(id);
  ASSERT_OK(meta);
  EXPECT_EQ(meta->diff_id, id);
  EXPECT_EQ(meta->size, 12345u);
  EXPECT_EQ(meta->blob_digest, blob);
  auto all = store->list_layers();
  ASSERT_OK(all);
  EXPECT_EQ(*all, std::vector<Digest>{id});
}

TEST_F(LayerTest, CommitRaceLoserSucceedsAndFirstCopyStays) {
  auto a = store->begin_layer(id);
  auto b = store->begin_layer(id);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_NE(a->name(), b->name());
  put_file(a->diff_fd(), "who", "a");
  put_file(b->diff_fd(), "who", "b");
  ASSERT_OK(store->commit_layer(std::move(*a), LayerMeta{id, 1, "", std::nullopt}));
  ASSERT_OK(store->commit_layer(std::move(*b), LayerMeta{id, 1, "", std::nullopt}));
  EXPECT_EQ(read_file(store->layer_diff_path(id) + "/who"), "a");
  EXPECT_EQ(ls(layers()), std::vector<std::string>{id.hex});
}

TEST_F(LayerTest, ConcurrentCommitsFromThreads) {
  std::vector<std::thread> th;
  std::vector<int> ok(6, 0);
  for (int i = 0; i < 6; ++i) {
    th.emplace_back([&, i] {
      auto t = store->begin_layer(id);
      if (!t) return;
      put_file(t->diff_fd(), "f", std::to_string(i));
      ok[i] = store->commit_layer(std::move(*t), LayerMeta{id, 1, "", std::nullopt}).has_value();
    });
  }
  for (auto& t : th) t.join();
  for (int v : ok) EXPECT_EQ(v, 1);
  EXPECT_EQ(ls(layers()), std::vector<std::string>{id.hex});
  EXPECT_EQ(read_file(store->layer_diff_path(id) + "/f").size(), 1u);
}

TEST_F(LayerTest, AbandonedTempIsRemoved) {
  {
    auto t = store->begin_layer(id);
    ASSERT_OK(t);
    ASSERT_OK(strata::sys::mkdir_at(t->diff_fd(), "sub", 0755));
    EXPECT_EQ(ls(layers()).size(), 1u);
  }
  EXPECT_TRUE(ls(layers()).empty());
  EXPECT_FALSE(store->has_layer(id));
}

TEST_F(LayerTest, CommitRejectsWrongMeta) {
  auto t = store->begin_layer(id);
  ASSERT_OK(t);
  EXPECT_ERRNO(store->commit_layer(std::move(*t), LayerMeta{blob, 1, "", std::nullopt}), EINVAL);
  EXPECT_FALSE(store->has_layer(id));
  EXPECT_FALSE(store->has_layer(blob));
  strata::store::LayerTemp none;
  EXPECT_ERRNO(store->commit_layer(std::move(none), LayerMeta{id, 1, "", std::nullopt}), EINVAL);
  EXPECT_ERRNO(store->begin_layer(Digest{"sha256", "../x"}), EINVAL);
}

TEST_F(LayerTest, RemoveLayerNeedsLock) {
  auto t = store->begin_layer(id);
  ASSERT_OK(t);
  Tree(t->diff_path()).file("a/b/c", "deep").symlink("l", "/etc");
  ASSERT_OK(store->commit_layer(std::move(*t), LayerMeta{id, 1, "", std::nullopt}));
  EXPECT_ERRNO(store->remove_layer(strata::store::StoreLock(), id), EINVAL);
  EXPECT_TRUE(store->has_layer(id));
  auto lock = store->lock_exclusive();
  ASSERT_OK(lock);
  ASSERT_OK(store->remove_layer(*lock, id));
  EXPECT_FALSE(store->has_layer(id));
  EXPECT_TRUE(ls(layers()).empty());
  EXPECT_TRUE(exists("/etc/passwd"));
  EXPECT_ERRNO(store->remove_layer(*lock, id), ENOENT);
}

TEST_F(LayerTest, CleanupStaleRemovesOnlyDeadOwners) {
  pid_t dead = dead_pid();
  std::string dead_layer = ".tmp-" + id.hex + "-" + std::to_string(dead) + "-0";
  std::string live_layer = ".tmp-" + id.hex + "-" + std::to_string(getpid()) + "-999";
  Tree(layers()).file(dead_layer + "/diff/x", "x").dir(live_layer + "/diff").dir("not-a-temp");
  std::string dead_index = ".tmp-index.json-" + std::to_string(dead) + "-3";
  Tree(root + "/oci").file(dead_index, "{");
  // Ingest state for a blob that is already complete is stale; for a missing blob it is resumable.
  auto done = store->write_blob("complete");
  ASSERT_OK(done);
  Digest pending = digest_of("pending");
  Tree(root + "/ingest").file(done->hex + ".partial", "comp").file(done->hex + ".json", "{}");
  Tree(root + "/ingest").file(pending.hex + ".partial", "pen").file(pending.hex + ".json", "{}");
  auto removed = store->cleanup_stale();
  ASSERT_OK(removed);
  std::sort(removed->begin(), removed->end());
  std::vector<std::string> want = {"ingest/" + done->hex + ".json",
                                   "ingest/" + done->hex + ".partial", "layers/" + dead_layer,
                                   "oci/" + dead_index};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*removed, want);
  auto left = ls(layers());
  EXPECT_TRUE(left == (std::vector<std::string>{live_layer, "not-a-temp"}))
      << ::testing::PrintToString(left);
  EXPECT_TRUE(exists(root + "/ingest/" + pending.hex + ".partial"));
  EXPECT_TRUE(exists(root + "/oci/index.json"));
}

TEST_F(LayerTest, LockExcludesSecondWriter) {
  auto first = store->lock_exclusive();
  ASSERT_OK(first);
  EXPECT_EQ(read_file(root + "/lock"), std::to_string(getpid()) + "\n");
  int err = 0;
  std::thread([&] {
    auto second = store->lock_exclusive(std::chrono::milliseconds(200));
    err = second ? 0 : second.error().err;
  }).join();
  EXPECT_EQ(err, ETIMEDOUT);
  // Released while a waiter waits: the waiter gets it.
  bool got = false;
  std::thread waiter([&] { got = store->lock_exclusive(std::chrono::seconds(10)).has_value(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  *first = strata::store::StoreLock();
  waiter.join();
  EXPECT_TRUE(got);
}

TEST(StoreUnprivileged, WorksAsAnOrdinaryUser) {
  if (geteuid() != 0) GTEST_SKIP() << "already unprivileged: the other tests cover it";
  TempDir tmp;
  ASSERT_EQ(chown(tmp.path().c_str(), 65534, 65534), 0);
  pid_t p = fork();
  ASSERT_GE(p, 0);
  if (p == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
        setresuid(65534, 65534, 65534) != 0)
      _exit(10);
    auto s = Store::open(tmp.path() + "/store");
    if (!s) _exit(11);
    auto d = s->write_blob("{}");
    if (!d) _exit(12);
    Digest id = digest_of("tar");
    auto t = s->begin_layer(id);
    if (!t) _exit(13);
    if (!s->commit_layer(std::move(*t), LayerMeta{id, 3, "", std::nullopt})) _exit(14);
    auto lock = s->lock_exclusive();
    if (!lock) _exit(15);
    if (!s->set_ref(*lock, "x", {strata::store::kMediaTypeOciManifest, *d, 2, {}})) _exit(16);
    if (!s->resolve("x")) _exit(17);
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(waitpid(p, &st, 0), p);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  struct stat sb = strata::testing::lstat_or_throw(tmp.path() + "/store/oci/index.json");
  EXPECT_EQ(sb.st_uid, 65534u);
}

}  // namespace
