// SPDX-License-Identifier: Apache-2.0
// CopyUpQueue: makes copy-ups durable in the background.
//
// A copy-up is durable once its data is on disk: the fsync kernel overlayfs does before the rename. That fsync
// is the disk's write of the whole file, often longer than the copy itself. The engine renames the finished
// copy into place at once, with a crash record (copyup/unsynced.h), and queues the fsync and the record's
// removal here. Operations that need the copy durable wait for its job (Overlay::settle).
//
// One thread runs the jobs in order. It takes every queued job at once. A batch of at least `sync_batch` jobs
// is made durable by one `sync_all` (syncfs of the upper: one writeback and one journal commit for all), and
// each job's `finish` is told so. A smaller one runs each job's `start` (which hands its data to writeback),
// then each `finish` (which fsyncs), so that their writes overlap. Per-file fsyncs of many small copies would
// each force a journal commit, which also stalls the operations making new copies (chmod -R of a lower tree
// ran 2x slower so). To let batches form, the thread starts on fewer than `sync_batch` jobs only `gather`
// after the first was queued, or at once when someone waits. At most `max_pending` jobs wait; push() blocks
// past that.
//
// Thread-safety: every method may be called from any thread but the queue's own. The destructor runs what is
// queued before it returns.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace strata::merge {

class CopyUpQueue {
 public:
  struct Job {
    std::function<void()> start;   // optional: begin the slow part (may be empty)
    std::function<void(bool synced)> finish;  // required: complete the job (synced: by sync_all); must not throw
  };

  explicit CopyUpQueue(size_t max_pending = 1024) : max_pending_(max_pending) {}
  // Make batches of at least `min_batch` jobs durable with one call of `sync_all` (true: it worked). Set before
  // the first push.
  void set_batch_sync(size_t min_batch, std::function<bool()> sync_all,
                      std::chrono::milliseconds gather = std::chrono::milliseconds(20)) {
    sync_batch_ = min_batch;
    sync_all_ = std::move(sync_all);
    gather_ = gather;
  }
  ~CopyUpQueue();
  CopyUpQueue(const CopyUpQueue&) = delete;
  CopyUpQueue& operator=(const CopyUpQueue&) = delete;

  // Queue a job; returns its sequence number (1, 2, ...). Blocks while max_pending jobs wait. When no thread
  // can be started the job runs here, before push returns.
  uint64_t push(Job job);
  // Wait until every job numbered up to `seq` has finished.
  void wait(uint64_t seq);
  // Wait for every job queued so far.
  void drain() { wait(pushed()); }
  uint64_t pushed() const { return pushed_.load(std::memory_order_acquire); }
  uint64_t finished() const { return finished_.load(std::memory_order_acquire); }
  // Calls of push and wait that had to wait (stats).
  uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }

 private:
  void loop();

  const size_t max_pending_;
  size_t sync_batch_ = 0;
  std::function<bool()> sync_all_;
  std::chrono::milliseconds gather_{0};
  size_t waiters_ = 0;  // threads in wait(): the batch goes now
  std::mutex m_;
  std::condition_variable work_cv_;  // the thread: jobs queued, or stop
  std::condition_variable done_cv_;  // waiters and pushers: a job finished
  std::deque<Job> jobs_;
  size_t running_ = 0;  // jobs taken by the thread and not yet finished
  bool stop_ = false;
  bool no_thread_ = false;
  std::atomic<uint64_t> pushed_{0}, finished_{0}, waits_{0};
  std::thread th_;  // started by the first push
};

}  // namespace strata::merge
