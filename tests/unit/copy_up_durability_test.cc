// SPDX-License-Identifier: Apache-2.0
// Copy-ups made durable in the background: the queue that fsyncs them (merge/copy_up_queue.h), their crash
// records and the repair at mount (copyup/unsynced.h), and the engine using both (merge::Overlay with fsync).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "strata/copyup/unsynced.h"
#include "strata/merge/copy_up_queue.h"
#include "strata/merge/overlay.h"
#include "strata/sys/fs.h"
#include "strata/sys/process.h"
#include "tree.h"

namespace {

using strata::copyup::clear_unsynced;
using strata::copyup::record_unsynced;
using strata::copyup::recover_unsynced;
using strata::merge::CopyUpQueue;
using strata::testing::exists;
using strata::testing::ls;
using strata::testing::read_file;
using strata::testing::TempDir;
using strata::testing::Tree;

// A latch the test opens: jobs that wait on it stay queued.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock lk(m);
    cv.wait(lk, [&] { return open; });
  }
  void release() {
    {
      std::lock_guard lk(m);
      open = true;
    }
    cv.notify_all();
  }
};

// What jobs did, in order (jobs run on the queue's thread).
struct Notes {
  std::mutex m;
  std::vector<std::string> lines;
  void add(std::string s) {
    std::lock_guard lk(m);
    lines.push_back(std::move(s));
  }
  std::vector<std::string> take() {
    std::lock_guard lk(m);
    return std::exchange(lines, {});
  }
};

TEST(CopyUpQueue, RunsJobsInOrderAndWaitsForThem) {
  CopyUpQueue q;
  Gate gate;
  Notes log;
  auto note = [&](std::string s) { log.add(std::move(s)); };
  uint64_t first = q.push({nullptr, [&](bool) {
                             gate.wait();
                             note("finish 1");
                           }});
  uint64_t second = q.push({[&] { note("start 2"); }, [&](bool) { note("finish 2"); }});
  EXPECT_EQ(first, 1u);
  EXPECT_EQ(second, 2u);
  EXPECT_EQ(q.finished(), 0u);  // held by the gate
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gate.release();
  });
  q.wait(second);
  t.join();
  EXPECT_EQ(q.finished(), 2u);
  auto lines = log.take();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines.back(), "finish 2");
  EXPECT_GE(q.waits(), 1u);
}

TEST(CopyUpQueue, StartsABatchBeforeFinishingIt) {
  CopyUpQueue q;
  Gate gate;
  Notes log;
  auto note = [&](std::string s) { log.add(std::move(s)); };
  q.push({nullptr, [&](bool) { gate.wait(); }});  // holds the thread while the batch queues up
  for (int i = 0; i < 3; ++i)
    q.push({[&, i] { note("start " + std::to_string(i)); }, [&, i](bool) { note("finish " + std::to_string(i)); }});
  gate.release();
  q.drain();
  std::vector<std::string> want = {"start 0", "start 1", "start 2", "finish 0", "finish 1", "finish 2"};
  EXPECT_EQ(log.take(), want);
}

TEST(CopyUpQueue, Backpressure) {
  CopyUpQueue q(1);
  Gate gate;
  std::atomic<bool> done{false};
  uint64_t first = q.push({nullptr, [&](bool) {
                             gate.wait();
                             done = true;
                           }});
  std::atomic<bool> pushed{false};
  std::thread pusher([&] {
    q.push({nullptr, [](bool) {}});  // the queue is full: blocks until the first job finished
    pushed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(pushed.load());
  gate.release();
  q.wait(first);
  EXPECT_TRUE(done.load());
  pusher.join();
  EXPECT_TRUE(pushed.load());
}

TEST(CopyUpQueue, ABigBatchIsSyncedOnce) {
  CopyUpQueue q;
  std::atomic<int> syncs{0};
  q.set_batch_sync(4, [&] {
    ++syncs;
    return true;
  });
  Gate gate;
  Notes log;
  auto note = [&](std::string s) { log.add(std::move(s)); };
  q.push({nullptr, [&](bool) { gate.wait(); }});  // a batch of one: no sync_all
  for (int i = 0; i < 5; ++i)
    q.push({[&] { note("start"); }, [&](bool synced) { note(synced ? "synced" : "fsync"); }});
  gate.release();
  q.drain();
  EXPECT_EQ(syncs.load(), 1);
  EXPECT_EQ(log.take(), std::vector<std::string>(5, "synced"));  // and no start: the sync did the writing
  // A small batch again: each job its own fsync.
  q.push({[&] { note("start"); }, [&](bool synced) { note(synced ? "synced" : "fsync"); }});
  q.drain();
  EXPECT_EQ(syncs.load(), 1);
  EXPECT_EQ(log.take(), (std::vector<std::string>{"start", "fsync"}));
}

TEST(CopyUpQueue, DestructorRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    CopyUpQueue q;
    for (int i = 0; i < 10; ++i) q.push({nullptr, [&](bool) {
                                           std::this_thread::sleep_for(std::chrono::milliseconds(1));
                                           ++ran;
                                         }});
  }
  EXPECT_EQ(ran.load(), 10);
}

TEST(CopyUpQueue, AJobThatThrowsDoesNotStopTheQueue) {
  CopyUpQueue q;
  bool after = false;
  q.push({nullptr, [](bool) { throw std::runtime_error("boom"); }});
  uint64_t s = q.push({nullptr, [&](bool) { after = true; }});
  q.wait(s);
  EXPECT_TRUE(after);
}

// The crash records and their repair, on plain directories.
class Unsynced : public ::testing::Test {
 protected:
  void SetUp() override {
    log_fd = open_dir(log.root());
    upper_fd = open_dir(up.root());
    lower_fd = open_dir(lo.root());
  }
  void TearDown() override {
    for (int fd : {log_fd, upper_fd, lower_fd})
      if (fd >= 0) close(fd);
  }
  static int open_dir(const std::string& p) { return ::open(p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC); }
  ino_t ino_of(const std::string& p) { return strata::testing::lstat_or_throw(p).st_ino; }
  strata::copyup::Recovery recover(const std::string& boot) {
    auto r = recover_unsynced(log_fd, upper_fd, {lower_fd}, boot);
    if (!r) throw std::runtime_error(r.error().message());
    return *r;
  }

  TempDir tmp;
  Tree log{tmp.sub("log")}, up{tmp.sub("up")}, lo{tmp.sub("lo")};
  int log_fd = -1, upper_fd = -1, lower_fd = -1;
};

TEST_F(Unsynced, RecordAndClear) {
  up.file("d/f", "copy");
  ASSERT_TRUE(strata::testing::ok(record_unsynced(log_fd, "r1", "boot-a", ino_of(up.path("d/f")), "d/f")));
  EXPECT_EQ(ls(log.root()), std::vector<std::string>{"r1"});
  ASSERT_TRUE(strata::testing::ok(clear_unsynced(log_fd, "r1")));
  EXPECT_TRUE(ls(log.root()).empty());
  EXPECT_TRUE(strata::testing::ok(clear_unsynced(log_fd, "r1")));  // twice is fine
}

TEST_F(Unsynced, SameBootKeepsTheCopy) {
  lo.file("d/f", "original");
  up.file("d/f", "written after the copy-up");
  ASSERT_TRUE(strata::testing::ok(record_unsynced(log_fd, "r1", "boot-a", ino_of(up.path("d/f")), "d/f")));
  auto rec = recover("boot-a");
  EXPECT_EQ(rec.synced, 1u);
  EXPECT_EQ(rec.restored, 0u);
  EXPECT_EQ(read_file(up.path("d/f")), "written after the copy-up");
  EXPECT_TRUE(ls(log.root()).empty());
}

TEST_F(Unsynced, AnotherBootRestoresTheOriginal) {
  lo.file("d/f", "original").xattr("d/f", "user.k", "v");
  up.file("d/f", std::string(100, '\0'));  // what a crash can leave: the size, not the data
  chmod(up.path("d/f").c_str(), 0600);
  ASSERT_TRUE(strata::testing::ok(record_unsynced(log_fd, "r1", "boot-a", ino_of(up.path("d/f")), "d/f")));
  ino_t before = ino_of(up.path("d/f"));
  auto rec = recover("boot-b");
  EXPECT_EQ(rec.restored, 1u);
  ASSERT_EQ(rec.messages.size(), 1u);
  EXPECT_NE(rec.messages[0].find("/d/f"), std::string::npos) << rec.messages[0];
  EXPECT_EQ(read_file(up.path("d/f")), "original");
  auto st = strata::testing::lstat_or_throw(up.path("d/f"));
  EXPECT_EQ(st.st_ino, before);             // repaired in place: every name of it sees the data
  EXPECT_EQ(st.st_mode & 07777, 0600u);     // and its metadata is the copy's
  EXPECT_TRUE(ls(log.root()).empty());
}

TEST_F(Unsynced, ARecordOfAnotherInodeOrNoneIsOnlyDropped) {
  lo.file("f", "original").file("g", "original g");
  up.file("f", "a newer file at the same path");
  up.file("g", "no lower original").file("h", "x");
  // f: the recorded inode is not the one at the path now (renamed away, something else created there).
  ASSERT_TRUE(strata::testing::ok(record_unsynced(log_fd, "r1", "boot-a", ino_of(up.path("f")) + 1, "f")));
  // a record whose path is gone, and one that is not a record at all
  ASSERT_TRUE(strata::testing::ok(record_unsynced(log_fd, "r2", "boot-a", 12345, "gone/away")));
  ASSERT_EQ(symlink("garbage", log.path("r3").c_str()), 0);
  auto rec = recover("boot-b");
  EXPECT_EQ(rec.restored + rec.synced + rec.lost, 0u);
  EXPECT_EQ(read_file(up.path("f")), "a newer file at the same path");
  EXPECT_TRUE(ls(log.root()).empty());
}

TEST_F(Unsynced, NoOriginIsReportedAsLost) {
  up.file("only-up", "data");
  ASSERT_TRUE(
      strata::testing::ok(record_unsynced(log_fd, "r1", "boot-a", ino_of(up.path("only-up")), "only-up")));
  auto rec = recover("boot-b");
  EXPECT_EQ(rec.lost, 1u);
  EXPECT_EQ(read_file(up.path("only-up")), "data");
  EXPECT_TRUE(ls(log.root()).empty());
}

// The engine: a copy-up is in place at once, recorded until its background fsync, repaired at mount.
class DurableCopyUp : public ::testing::Test {
 protected:
  void SetUp() override { STRATA_REQUIRE_ROOT(); }
  void mount() {
    strata::merge::OverlayOptions o;
    o.lowerdirs = {l1.root()};
    o.upperdir = up.root();
    o.workdir = wk.root();
    o.fsync = true;
    o.background_fsync = true;  // whatever the test's filesystem (sys_test covers the automatic choice)
    auto r = strata::merge::Overlay::open(o);
    if (!r) throw std::runtime_error("Overlay::open: " + r.error().message());
    ov = std::move(*r);
  }
  strata::merge::NodeRef node(const std::string& name) {
    auto e = ov->lookup(ov->root(), name);
    if (!e) throw std::runtime_error("lookup " + name + ": " + e.error().message());
    return std::move(e->node);
  }
  std::vector<std::string> records() { return ls(wk.path(strata::copyup::kUnsyncedDir)); }

  TempDir tmp;
  Tree l1{tmp.sub("l1")}, up{tmp.sub("up")}, wk{tmp.sub("wk")};
  std::unique_ptr<strata::merge::Overlay> ov;
};

TEST_F(DurableCopyUp, InPlaceAtOnceRecordedUntilFsynced) {
  // Big enough that its fsync is still running when the open returns.
  l1.file("big", std::string(32 << 20, 'x'));
  mount();
  auto n = node("big");
  auto f = ov->open(n.get(), O_WRONLY);
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_TRUE(exists(up.path("big")));  // renamed into place: the upper is the view, as with kernel overlayfs
  EXPECT_EQ(strata::testing::lstat_or_throw(up.path("big")).st_size, 32 << 20);
  EXPECT_EQ(ov->copy_ups_deferred(), 1u);
  ov->settle(n.get());  // what fsync(2) on it does first
  EXPECT_TRUE(records().empty());
  EXPECT_EQ(strata::testing::lstat_or_throw(up.path("big")).st_nlink, 1u);
  f->reset();
}

TEST_F(DurableCopyUp, UnlinkAndRenameWaitForTheRecord) {
  l1.file("a", std::string(16 << 20, 'a')).file("b", std::string(16 << 20, 'b'));
  mount();
  auto a = node("a");
  auto b = node("b");
  ASSERT_TRUE(ov->open(a.get(), O_WRONLY));
  ASSERT_TRUE(ov->open(b.get(), O_WRONLY));
  ASSERT_TRUE(strata::testing::ok(ov->rename(ov->root(), "a", ov->root(), "a2", 0)));
  ASSERT_TRUE(strata::testing::ok(ov->unlink(ov->root(), "b")));
  // Both waited for their copy-up's record to go: a record names the path it was made under.
  EXPECT_TRUE(records().empty());
  EXPECT_TRUE(exists(up.path("a2")));
}

TEST_F(DurableCopyUp, TheMountRepairsWhatACrashLeft) {
  l1.file("f", "original");
  mount();
  {
    auto n = node("f");
    ASSERT_TRUE(ov->open(n.get(), O_WRONLY));
  }
  ov.reset();  // unmount: the queue finished
  EXPECT_TRUE(records().empty());
  // Now the state a crash in another boot leaves: the copy in place, its data not, its record there.
  up.file("f", std::string(8, '\0'));
  int logfd = ::open(wk.path(strata::copyup::kUnsyncedDir).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(logfd, 0);
  ASSERT_TRUE(strata::testing::ok(
      record_unsynced(logfd, "#strata.1.1", "another-boot", strata::testing::lstat_or_throw(up.path("f")).st_ino,
                      "f")));
  close(logfd);
  mount();
  EXPECT_EQ(ov->recovery().restored, 1u);
  EXPECT_EQ(read_file(up.path("f")), "original");
  EXPECT_TRUE(records().empty());
}

TEST(BootId, IsThisBootsId) {
  std::string id = strata::sys::boot_id();
  EXPECT_EQ(id.size(), 36u) << id;
  EXPECT_EQ(id, strata::sys::boot_id());
}

}  // namespace
