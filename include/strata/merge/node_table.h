// SPDX-License-Identifier: Apache-2.0
// NodeTable: the merged tree of nodes the kernel knows, and their reference counts.
//
// Every structural change (a child added, removed, renamed, exchanged) goes through here under one short
// mutex that is never held across a syscall; data-path operations (read, write, getattr of a known node) do not
// take it. See node.h for the lifetime and lock-order rules.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "strata/merge/node.h"

namespace strata::merge {

class NodeTable;

// A counted reference to a node; releasing it may free the node (and, in turn, its ancestors).
class NodeRef {
 public:
  NodeRef() = default;
  NodeRef(NodeTable* t, Node* n) : t_(t), n_(n) {}  // adopts one ref already taken
  NodeRef(NodeRef&& o) noexcept : t_(o.t_), n_(std::exchange(o.n_, nullptr)) {}
  NodeRef& operator=(NodeRef&& o) noexcept;
  NodeRef(const NodeRef&) = delete;
  NodeRef& operator=(const NodeRef&) = delete;
  ~NodeRef() { reset(); }
  Node* get() const { return n_; }
  Node* operator->() const { return n_; }
  explicit operator bool() const { return n_ != nullptr; }
  void reset();
  Node* release() { return std::exchange(n_, nullptr); }

 private:
  NodeTable* t_ = nullptr;
  Node* n_ = nullptr;
};

class NodeTable {
 public:
  explicit NodeTable(std::unique_ptr<Node> root);
  ~NodeTable();
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;

  Node* root() const { return root_; }

  // A new ref on a node the caller already keeps alive (by a ref or the kernel's lookup count).
  NodeRef ref(Node* n);
  void unref(Node* n);

  // The child called `name`, or an empty ref.
  NodeRef find_child(Node* parent, const std::string& name);
  // Adds `child` (whose parent/name are set) unless a child of that name exists; returns the one in the table.
  // With a key, a node already known under that key (another name of the same inode) gains this name instead.
  NodeRef insert_child(std::unique_ptr<Node> child, const LinkKey* key = nullptr);
  // `n` has one more name (link(2)); fails (false) if the name is taken.
  bool add_alias(Node* n, Node* parent, const std::string& name);
  // Remember that `key` identifies `n` (e.g. its upper inode after a copy-up or link).
  void add_key(Node* n, const LinkKey& key);
  // The kernel got one more reference (a successful lookup/create reply).
  void add_lookup(Node* n);
  // The kernel dropped `count` references.
  void forget(Node* n, uint64_t count);
  // Remove the child `name` from its parent (unlink, rmdir). A node with other names keeps them; one without
  // keeps living, unnamed (`unlinked`), while referenced.
  NodeRef detach_child(Node* parent, const std::string& name);
  // rename: the node at (oldp, oldn) moves to (newp, newn); a node there before is detached and returned.
  NodeRef move_child(Node* oldp, const std::string& oldn, Node* newp, const std::string& newn);
  // RENAME_EXCHANGE of two names.
  void exchange_children(Node* p1, const std::string& n1, Node* p2, const std::string& n2);

  // Where a node is now: its parent (ref'd) and name; parent empty for the root or a detached node.
  struct Place {
    NodeRef parent;
    std::string name;
  };
  Place place(Node* n);
  // For each entry of `dir`'s listing that has a node, report the node's inode number.
  template <typename Entries>
  void fix_inos(Node* dir, Entries& entries) {
    std::lock_guard lk(mu_);
    if (dir->children.empty()) return;
    for (auto& e : entries) {
      auto it = dir->children.find(e.name);
      if (it != dir->children.end()) e.ino = it->second->ino;
    }
  }
  // Number of live nodes (for stats and tests).
  size_t size() const;

 private:
  struct KeyHash {
    size_t operator()(const LinkKey& k) const {
      return std::hash<uint64_t>()(k.ino * 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(k.dev) << 8) ^
                                   static_cast<uint64_t>(k.layer));
    }
  };
  void unref_slow(Node* n);
  // Drop every name and key of a node being freed; returns the parents whose refs it held.
  std::vector<Node*> forget_names_locked(Node* n);
  // Remove the name (parent, name) from n; returns the parent whose ref is now to be dropped, or nullptr.
  Node* remove_name_locked(Node* n, Node* parent, const std::string& name);
  void set_name_locked(Node* n, Node* oldp, const std::string& oldn, Node* newp, const std::string& newn,
                       std::vector<Node*>* drop);

  mutable std::mutex mu_;
  Node* root_;
  size_t count_ = 1;
  std::unordered_map<LinkKey, Node*, KeyHash> links_;
};

}  // namespace strata::merge
