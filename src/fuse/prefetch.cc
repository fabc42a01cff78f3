// SPDX-License-Identifier: Apache-2.0
#include "prefetch.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>

#include "strata/sys/process.h"

namespace strata::fuse {

ListingPrefetcher::ListingPrefetcher(merge::Overlay* ov) : ov_(ov) {
  // The thread takes no signals: the session's thread handles them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

ListingPrefetcher::~ListingPrefetcher() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  for (auto& n : kept_) ov_->drop_prefetched(n.get());
}

void ListingPrefetcher::refill_locked() {
  uint64_t used = ov_->listings_prefetch_used();
  credit_ = std::min<int64_t>(credit_ + 2 * static_cast<int64_t>(used - used_seen_), kMaxPending);
  used_seen_ = used;
}

bool ListingPrefetcher::wanted() {
  std::lock_guard lk(mu_);
  refill_locked();
  credit_ = std::min<int64_t>(credit_ + 1, kMaxPending);  // every listing read earns one
  return credit_ > 0;
}

void ListingPrefetcher::push(std::vector<merge::NodeRef> dirs, pid_t caller) {
  if (dirs.empty()) return;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    caller_ = caller;
    // The first of `dirs` ends up at the back (taken next).
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) pending_.push_back(std::move(*it));
    while (pending_.size() > kMaxPending) pending_.pop_front();  // the oldest wish goes
  }
  cv_.notify_one();
}

void ListingPrefetcher::steer_clear_of(pid_t caller, const cpu_set_t& allowed, int* avoided) {
  int cpu = sys::last_cpu_of(caller);
  if (cpu < 0 || cpu == *avoided || !CPU_ISSET(cpu, &allowed)) return;
  cpu_set_t others = allowed;
  CPU_CLR(cpu, &others);
  if (sched_setaffinity(0, sizeof others, &others) == 0) *avoided = cpu;
}

void ListingPrefetcher::run() {
  pthread_setname_np(pthread_self(), "stratafs-pref");
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  const bool steer = sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 1;
  int avoided = -1;    // the CPU this thread keeps off
  unsigned taken = 0;  // directories taken off the stack
  std::unique_lock lk(mu_);
  while (true) {
    cv_.wait(lk, [&] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    if (steer && caller_ > 0 && taken++ % kSteerEvery == 0) {
      pid_t caller = caller_;
      lk.unlock();
      steer_clear_of(caller, allowed, &avoided);
      lk.lock();
      if (stopping_) return;
      if (pending_.empty()) continue;
    }
    merge::NodeRef dir = std::move(pending_.back());
    pending_.pop_back();
    refill_locked();
    if (credit_ <= 0) {
      pending_.clear();  // not used lately: let the reader take its listings
      continue;
    }
    lk.unlock();
    bool took = false;
    try {
      took = ov_->prefetch_listing(dir.get());
    } catch (...) {  // only a hint: the reader takes the listing itself
    }
    lk.lock();
    if (!took) continue;
    --credit_;
    // Unused prefetched listings must not stay cached for good: past kMaxKept, the oldest is dropped.
    kept_.push_back(std::move(dir));
    if (kept_.size() > kMaxKept) {
      merge::NodeRef old = std::move(kept_.front());
      kept_.pop_front();
      lk.unlock();
      ov_->drop_prefetched(old.get());
      old.reset();
      lk.lock();
    }
  }
}

}  // namespace strata::fuse
