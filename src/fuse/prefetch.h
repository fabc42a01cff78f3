// SPDX-License-Identifier: Apache-2.0
// ListingPrefetcher: takes the merged listings of subdirectories a READDIRPLUS reply just named, on a thread of
// its own, so that a walk finds them built when it enters them.
//
// A walk (find, du, tar, rm -rf) enters a directory right after listing its parent, and every directory costs
// it a READDIRPLUS whose daemon time is mostly reading each layer's copy of the directory and merging them.
// That time sits between the caller's request and its reply; here it overlaps the caller's own work on the
// parent's reply instead. Pending directories form a stack, each reply's subdirectories pushed so that its
// first is on top: a depth-first walk in listing order wants them in that order.
//
// The thread keeps off the CPU of the caller whose listing pushed the directories (read from /proc every
// kSteerEvery directories, so a caller that moves is followed): that CPU is where the workers serving the walk
// run (walk_affinity.h), and prefetching there would only delay the walk. Measured on 2 vCPUs, find over the
// bench tree (medians of 15 hand runs; kernel overlayfs 23-27 ms): 72-77 ms without prefetch, 57-67 ms with
// the thread placed by the scheduler, 39-40 ms with it kept off the walker's CPU, 35 ms with the workers
// pinned as well.
//
// Wasted work is bounded: the stack holds kMaxPending directories (the oldest dropped), and prefetching pauses
// while too few prefetched listings are used (a caller that lists directories without entering them).
// Only performance depends on this: a listing not prefetched is taken when the kernel asks for it.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "strata/merge/node_table.h"
#include "strata/merge/overlay.h"

namespace strata::fuse {

class ListingPrefetcher {
 public:
  static constexpr size_t kMaxPending = 256;  // directories queued (the oldest dropped)
  static constexpr size_t kMaxKept = 512;     // prefetched listings kept cached until a reader uses them
  static constexpr unsigned kSteerEvery = 16;

  explicit ListingPrefetcher(merge::Overlay* ov);
  ~ListingPrefetcher();  // stops and joins the thread; pending directories are dropped
  ListingPrefetcher(const ListingPrefetcher&) = delete;
  ListingPrefetcher& operator=(const ListingPrefetcher&) = delete;

  // Called once per listing read from its start: worth collecting its subdirectories? False while prefetched
  // listings go unused. Credit: each listing read earns one, each prefetched listing used two, each taken
  // costs one; none is taken without credit. A walk so stays ahead; a caller that lists directories without
  // entering them costs at most one listing taken for nothing per listing it reads.
  bool wanted();
  // Queue these directories (in listing order) for prefetching, ahead of those queued before. `caller`: the
  // thread that read the listing naming them (the request's pid), 0 if unknown.
  void push(std::vector<merge::NodeRef> dirs, pid_t caller = 0);

 private:
  void run();
  void refill_locked();
  static void steer_clear_of(pid_t caller, const cpu_set_t& allowed, int* avoided);

  merge::Overlay* ov_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<merge::NodeRef> pending_;  // back = next to take
  std::deque<merge::NodeRef> kept_;     // prefetched, oldest first (their listings may still be unused)
  int64_t credit_ = kMaxPending;
  pid_t caller_ = 0;  // the thread whose listing pushed the last directories
  uint64_t used_seen_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace strata::fuse
