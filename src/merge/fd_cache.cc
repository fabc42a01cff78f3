// SPDX-License-Identifier: Apache-2.0
#include "strata/merge/fd_cache.h"

#include <vector>

namespace strata::merge {

FdCache::~FdCache() {
  for (Node* n : ring_) table_->unref(n);
}

void FdCache::add(Node* n, size_t count) {
  std::vector<Node*> victims;
  {
    std::lock_guard lk(mu_);
    fds_ += count;
    n->cache_referenced.store(true, std::memory_order_relaxed);
    if (n->in_fd_cache) {
      n->cached_fds += count;
      return;
    }
    n->in_fd_cache = true;
    n->cached_fds = count;
    n->refs.fetch_add(1, std::memory_order_relaxed);
    ring_.push_back(n);
    // CLOCK sweep: bounded to two passes so a ring of recently used nodes still yields a victim.
    size_t budget = 2 * ring_.size();
    while (fds_ > capacity_ && ring_.size() > 1 && budget-- > 0) {
      Node* v = ring_.front();
      ring_.pop_front();
      if (v->cache_referenced.exchange(false, std::memory_order_relaxed) && budget > ring_.size()) {
        ring_.push_back(v);
        continue;
      }
      v->in_fd_cache = false;
      fds_ -= v->cached_fds;
      v->cached_fds = 0;
      victims.push_back(v);
    }
  }
  for (Node* v : victims) {
    {
      std::lock_guard lk(v->mu);
      for (auto& fd : v->fds) fd.reset();
    }
    table_->unref(v);
  }
}

size_t FdCache::size() {
  std::lock_guard lk(mu_);
  return ring_.size();
}

size_t FdCache::fd_count() {
  std::lock_guard lk(mu_);
  return fds_;
}

}  // namespace strata::merge
