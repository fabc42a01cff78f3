// SPDX-License-Identifier: Apache-2.0
// PlusPolicy: which READDIRPLUS entries carry attributes (a LOOKUP's worth: the kernel makes a dentry and inode).
//
// Attributes for every entry spare a caller that stats each name (ls -l, du, nftw) one LOOKUP round trip per
// entry; a caller that only walks names (find -type f) then pays a stat and a node in the daemon and an inode in
// the kernel per entry for nothing (`find` over the bench tree: 30,000 of them, most of its time). The
// kernel's READDIRPLUS_AUTO adapts only within one directory larger than a reply, and always asks for plus at
// offset 0, so the daemon decides: a reply is *lean* (attributes for subdirectories only, which a walk descends
// into anyway; other entries with nodeid 0, which the kernel lists without instantiating) until a LOOKUP asks for
// a non-directory of a directory listed lean. Each such miss makes the next kFullReplies replies full; when they
// are used up, the next reply is lean again and probes whether the caller still stats.
// Only performance depends on this: the kernel looks up whatever a lean reply left out.
// Thread-safety: lock-free; concurrent replies may see a slightly stale decision, which costs nothing but time.
#pragma once

#include <atomic>

namespace strata::fuse {

class PlusPolicy {
 public:
  // Full replies granted by one miss: a stat-walk then pays lookups for one directory in kFullReplies; a name
  // walk after a stat-walk on the same mount pays full replies that long.
  static constexpr int kFullReplies = 1024;

  // Decide one READDIRPLUS reply: true = attributes for every entry.
  bool full_reply() {
    int v = full_left_.load(std::memory_order_relaxed);
    while (v > 0 && !full_left_.compare_exchange_weak(v, v - 1, std::memory_order_relaxed)) {
    }
    return v > 0;
  }
  // A LOOKUP found a non-directory that a lean reply had listed without attributes.
  void missed() { full_left_.store(kFullReplies, std::memory_order_relaxed); }

 private:
  std::atomic<int> full_left_{0};
};

}  // namespace strata::fuse
