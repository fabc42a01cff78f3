// SPDX-License-Identifier: Apache-2.0
// FdCache: bounds how many per-layer O_PATH directory fds the daemon keeps open.
//
// Pinning one fd per inode exhausts descriptors on a large tree (libfuse#1131). Directory nodes cache their
// fds (Node::fds) and register each one here; past `capacity` fds, the least recently useful nodes (CLOCK: a
// node touched since the last sweep gets a second chance) have their fds closed. An fd in use by an operation stays
// valid: it is a shared_ptr, closed when the last user lets go. The cache holds a ref on each member node.
// Thread-safety: all methods are safe to call concurrently; the internal mutex is never held while taking a
// Node::mu (victims are cleared after it is released).
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>

#include "strata/merge/node_table.h"

namespace strata::merge {

class FdCache {
 public:
  FdCache(NodeTable* table, size_t capacity) : table_(table), capacity_(capacity) {}
  ~FdCache();
  // `n` now holds `count` more fds: account for them. Must not hold n->mu.
  void add(Node* n, size_t count = 1);
  // Mark `n` recently used (lock-free).
  static void touch(Node* n) { n->cache_referenced.store(true, std::memory_order_relaxed); }
  size_t size();      // member nodes
  size_t fd_count();  // fds accounted for
  size_t capacity() const { return capacity_; }

 private:
  NodeTable* table_;
  size_t capacity_;
  std::mutex mu_;
  std::deque<Node*> ring_;
  size_t fds_ = 0;
};

}  // namespace strata::merge
