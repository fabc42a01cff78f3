// SPDX-License-Identifier: Apache-2.0
#include "strata/merge/node_table.h"

#include <vector>

namespace strata::merge {

NodeRef& NodeRef::operator=(NodeRef&& o) noexcept {
  if (this != &o) {
    reset();
    t_ = o.t_;
    n_ = std::exchange(o.n_, nullptr);
  }
  return *this;
}

void NodeRef::reset() {
  if (n_) t_->unref(std::exchange(n_, nullptr));
}

NodeTable::NodeTable(std::unique_ptr<Node> root) : root_(root.release()) {
  root_->parent = nullptr;
  root_->refs = 1;  // the table's own: the root lives as long as the table
  root_->nlookup = 1;
}

NodeTable::~NodeTable() {
  // At teardown the kernel is gone: free whatever it never forgot, children before parents.
  std::vector<Node*> all{root_};
  for (size_t i = 0; i < all.size(); ++i)
    for (auto& [name, c] : all[i]->children) all.push_back(c);
  for (auto it = all.rbegin(); it != all.rend(); ++it) delete *it;
}

NodeRef NodeTable::ref(Node* n) {
  n->refs.fetch_add(1, std::memory_order_relaxed);
  return NodeRef(this, n);
}

void NodeTable::unref(Node* n) {
  int r = n->refs.load(std::memory_order_relaxed);
  while (r > 1) {
    if (n->refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel)) return;
  }
  unref_slow(n);
}

void NodeTable::unlink_locked(Node* n) {
  if (n->parent && !n->unlinked) {
    auto it = n->parent->children.find(n->name);
    if (it != n->parent->children.end() && it->second == n) n->parent->children.erase(it);
  }
  n->unlinked = true;
}

void NodeTable::unref_slow(Node* n) {
  // Freeing a node drops its ref on the parent, which may free the parent: iterate, don't recurse.
  while (n) {
    Node* parent = nullptr;
    {
      std::lock_guard lk(mu_);
      if (n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      unlink_locked(n);
      parent = n->parent;
      --count_;
    }
    delete n;
    n = nullptr;
    if (parent) {
      int r = parent->refs.load(std::memory_order_relaxed);
      bool done = false;
      while (r > 1 && !done) done = parent->refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel);
      if (!done) n = parent;
    }
  }
}

NodeRef NodeTable::find_child(Node* parent, const std::string& name) {
  std::lock_guard lk(mu_);
  auto it = parent->children.find(name);
  if (it == parent->children.end()) return {};
  it->second->refs.fetch_add(1, std::memory_order_relaxed);
  return NodeRef(this, it->second);
}

NodeRef NodeTable::insert_child(std::unique_ptr<Node> child) {
  std::lock_guard lk(mu_);
  Node* parent = child->parent;
  auto [it, inserted] = parent->children.try_emplace(child->name, child.get());
  if (!inserted) {
    it->second->refs.fetch_add(1, std::memory_order_relaxed);
    return NodeRef(this, it->second);
  }
  parent->refs.fetch_add(1, std::memory_order_relaxed);  // the child's parent pointer
  Node* n = child.release();
  n->refs.store(1, std::memory_order_relaxed);
  ++count_;
  return NodeRef(this, n);
}

void NodeTable::add_lookup(Node* n) {
  std::lock_guard lk(mu_);
  if (n->nlookup++ == 0) n->refs.fetch_add(1, std::memory_order_relaxed);
}

void NodeTable::forget(Node* n, uint64_t count) {
  bool drop = false;
  {
    std::lock_guard lk(mu_);
    if (n == root_) return;
    uint64_t c = count < n->nlookup ? count : n->nlookup;
    n->nlookup -= c;
    drop = c > 0 && n->nlookup == 0;
  }
  if (drop) unref(n);
}

NodeRef NodeTable::detach_child(Node* parent, const std::string& name) {
  std::lock_guard lk(mu_);
  auto it = parent->children.find(name);
  if (it == parent->children.end()) return {};
  Node* n = it->second;
  parent->children.erase(it);
  n->unlinked = true;
  n->refs.fetch_add(1, std::memory_order_relaxed);
  return NodeRef(this, n);
}

NodeRef NodeTable::move_child(Node* oldp, const std::string& oldn, Node* newp, const std::string& newn) {
  NodeRef replaced;
  Node* old_parent_to_drop = nullptr;
  {
    std::lock_guard lk(mu_);
    auto dst = newp->children.find(newn);
    if (dst != newp->children.end()) {
      Node* t = dst->second;
      newp->children.erase(dst);
      t->unlinked = true;
      t->refs.fetch_add(1, std::memory_order_relaxed);
      replaced = NodeRef(this, t);
    }
    auto src = oldp->children.find(oldn);
    if (src != oldp->children.end()) {
      Node* n = src->second;
      oldp->children.erase(src);
      n->name = newn;
      if (oldp != newp) {
        newp->refs.fetch_add(1, std::memory_order_relaxed);
        n->parent = newp;
        old_parent_to_drop = oldp;
      }
      newp->children[newn] = n;
    }
  }
  if (old_parent_to_drop) unref(old_parent_to_drop);
  return replaced;
}

void NodeTable::exchange_children(Node* p1, const std::string& n1, Node* p2, const std::string& n2) {
  std::lock_guard lk(mu_);
  auto a = p1->children.find(n1);
  auto b = p2->children.find(n2);
  Node* na = a == p1->children.end() ? nullptr : a->second;
  Node* nb = b == p2->children.end() ? nullptr : b->second;
  if (na) p1->children.erase(n1);
  if (nb) p2->children.erase(n2);
  // Parent refs move with the nodes; when both cross directories they balance out, otherwise adjust.
  auto reparent = [&](Node* n, Node* from, Node* to, const std::string& nm) {
    n->name = nm;
    if (from != to) {
      to->refs.fetch_add(1, std::memory_order_relaxed);
      n->parent = to;
      // `from` keeps a child (the other node) or is an ancestor held by the kernel: refs > 1 here.
      from->refs.fetch_sub(1, std::memory_order_relaxed);
    }
    to->children[nm] = n;
  };
  if (na) reparent(na, p1, p2, n2);
  if (nb) reparent(nb, p2, p1, n1);
}

NodeTable::Place NodeTable::place(Node* n) {
  std::lock_guard lk(mu_);
  Place p;
  if (n->parent && !n->unlinked) {
    n->parent->refs.fetch_add(1, std::memory_order_relaxed);
    p.parent = NodeRef(this, n->parent);
    p.name = n->name;
  }
  return p;
}

size_t NodeTable::size() const {
  std::lock_guard lk(mu_);
  return count_;
}

}  // namespace strata::merge
