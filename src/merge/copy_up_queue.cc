// SPDX-License-Identifier: Apache-2.0
#include "strata/merge/copy_up_queue.h"

#include <pthread.h>

#include <exception>
#include <system_error>
#include <utility>
#include <vector>

#include "strata/base/log.h"

namespace strata::merge {
namespace {

void run(const CopyUpQueue::Job& job, bool synced) {
  try {
    if (job.start && !synced) job.start();
    job.finish(synced);
  } catch (const std::exception& e) {
    log::error("copy-up queue: a job failed: %s", e.what());
  } catch (...) {
    log::error("copy-up queue: a job failed");
  }
}

}  // namespace

CopyUpQueue::~CopyUpQueue() {
  {
    std::lock_guard lk(m_);
    stop_ = true;
  }
  work_cv_.notify_one();
  if (th_.joinable()) th_.join();  // the thread empties the queue before it stops
}

uint64_t CopyUpQueue::push(Job job) {
  std::unique_lock lk(m_);
  if (!th_.joinable() && !no_thread_) {
    try {
      th_ = std::thread([this] { loop(); });
      pthread_setname_np(th_.native_handle(), "stratafs-cpup");
    } catch (const std::system_error&) {
      no_thread_ = true;
    }
  }
  if (no_thread_) {
    uint64_t seq = pushed_.fetch_add(1, std::memory_order_acq_rel) + 1;
    lk.unlock();
    run(job, false);
    lk.lock();
    finished_.fetch_add(1, std::memory_order_acq_rel);
    done_cv_.notify_all();
    return seq;
  }
  if (jobs_.size() + running_ >= max_pending_) {
    waits_.fetch_add(1, std::memory_order_relaxed);
    done_cv_.wait(lk, [&] { return jobs_.size() + running_ < max_pending_; });
  }
  jobs_.push_back(std::move(job));
  uint64_t seq = pushed_.fetch_add(1, std::memory_order_acq_rel) + 1;
  lk.unlock();
  work_cv_.notify_one();
  return seq;
}

void CopyUpQueue::wait(uint64_t seq) {
  if (finished() >= seq) return;
  waits_.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock lk(m_);
  ++waiters_;
  work_cv_.notify_one();  // no more gathering: someone needs the jobs done
  done_cv_.wait(lk, [&] { return finished() >= seq; });
  --waiters_;
}

void CopyUpQueue::loop() {
  std::unique_lock lk(m_);
  for (;;) {
    work_cv_.wait(lk, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left
    if (gather_.count() > 0)
      work_cv_.wait_for(lk, gather_, [&] { return stop_ || waiters_ > 0 || jobs_.size() >= sync_batch_; });
    std::vector<Job> batch;
    while (!jobs_.empty()) {
      batch.push_back(std::move(jobs_.front()));
      jobs_.pop_front();
    }
    running_ = batch.size();
    lk.unlock();
    bool synced = false;
    if (sync_all_ && sync_batch_ && batch.size() >= sync_batch_) {
      try {
        synced = sync_all_();
      } catch (...) {  // each job's own fsync then
      }
    }
    if (!synced) {
      for (auto& j : batch) {
        try {
          if (j.start) j.start();
        } catch (...) {  // only a hint was lost: finish does the work
        }
      }
    }
    for (auto& j : batch) {
      run(Job{nullptr, std::move(j.finish)}, synced);
      j = Job{};  // release what it holds before anyone is told it finished
      lk.lock();
      --running_;
      finished_.fetch_add(1, std::memory_order_acq_rel);
      lk.unlock();
      done_cv_.notify_all();
    }
    lk.lock();
  }
}

}  // namespace strata::merge
