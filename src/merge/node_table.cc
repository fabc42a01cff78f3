// SPDX-License-Identifier: Apache-2.0
#include "strata/merge/node_table.h"

#include <algorithm>
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
  // At teardown the kernel is gone: free whatever it never forgot, children before parents. A hard-linked
  // node appears under several parents: collect each once.
  std::vector<Node*> all{root_};
  std::unordered_map<Node*, bool> seen{{root_, true}};
  for (size_t i = 0; i < all.size(); ++i)
    for (auto& [name, c] : all[i]->children)
      if (seen.emplace(c, true).second) all.push_back(c);
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

Node* NodeTable::remove_name_locked(Node* n, Node* parent, const std::string& name) {
  auto it = parent->children.find(name);
  if (it != parent->children.end() && it->second == n) parent->children.erase(it);
  if (!n->unlinked && n->parent == parent && n->name == name) {
    // Promote another name; nameless aliases only hold a ref (see add_alias) and cannot be promoted.
    for (size_t i = n->aliases.size(); i-- > 0;) {
      if (n->aliases[i].name.empty()) continue;
      n->parent = n->aliases[i].parent;
      n->name = std::move(n->aliases[i].name);
      n->aliases.erase(n->aliases.begin() + static_cast<long>(i));
      return parent;
    }
    n->unlinked = true;  // keeps its parent pointer and ref until freed
    return nullptr;
  }
  for (size_t i = 0; i < n->aliases.size(); ++i) {
    if (n->aliases[i].parent == parent && n->aliases[i].name == name) {
      n->aliases.erase(n->aliases.begin() + static_cast<long>(i));
      return parent;
    }
  }
  return nullptr;
}

std::vector<Node*> NodeTable::forget_names_locked(Node* n) {
  std::vector<Node*> parents;
  for (auto& a : n->aliases) {
    auto it = a.parent->children.find(a.name);
    if (it != a.parent->children.end() && it->second == n) a.parent->children.erase(it);
    parents.push_back(a.parent);
  }
  n->aliases.clear();
  if (n->parent) {
    if (!n->unlinked) {
      auto it = n->parent->children.find(n->name);
      if (it != n->parent->children.end() && it->second == n) n->parent->children.erase(it);
    }
    parents.push_back(n->parent);
  }
  n->unlinked = true;
  for (const auto& k : n->keys) {
    auto it = links_.find(k);
    if (it != links_.end() && it->second == n) links_.erase(it);
  }
  n->keys.clear();
  return parents;
}

void NodeTable::unref_slow(Node* first) {
  // Freeing a node drops its refs on its parents, which may free them in turn: a worklist, not recursion.
  std::vector<Node*> work{first};
  while (!work.empty()) {
    Node* n = work.back();
    work.pop_back();
    std::vector<Node*> parents;
    {
      std::lock_guard lk(mu_);
      if (n->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) continue;
      parents = forget_names_locked(n);
      --count_;
    }
    delete n;
    for (Node* p : parents) {
      int r = p->refs.load(std::memory_order_relaxed);
      bool done = false;
      while (r > 1 && !done) done = p->refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel);
      if (!done) work.push_back(p);
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

NodeRef NodeTable::insert_child(std::unique_ptr<Node> child, const LinkKey* key) {
  std::lock_guard lk(mu_);
  Node* parent = child->parent;
  auto it = parent->children.find(child->name);
  if (it != parent->children.end()) {
    it->second->refs.fetch_add(1, std::memory_order_relaxed);
    return NodeRef(this, it->second);
  }
  if (key) {
    auto l = links_.find(*key);
    if (l != links_.end() && l->second->type == child->type) {
      Node* n = l->second;
      parent->children.emplace(child->name, n);
      parent->refs.fetch_add(1, std::memory_order_relaxed);
      if (n->unlinked) {
        // Every earlier name was removed but the inode lives on (e.g. through another layer's name).
        Node* old = n->parent;
        n->parent = parent;
        n->name = child->name;
        n->unlinked = false;
        if (old) n->aliases.push_back(Alias{old, ""});  // a nameless alias keeps the old parent's ref
      } else {
        n->aliases.push_back(Alias{parent, child->name});
      }
      n->refs.fetch_add(1, std::memory_order_relaxed);
      return NodeRef(this, n);
    }
  }
  parent->children.emplace(child->name, child.get());
  parent->refs.fetch_add(1, std::memory_order_relaxed);  // the child's parent pointer
  Node* n = child.release();
  n->refs.store(1, std::memory_order_relaxed);
  if (key) {
    links_[*key] = n;
    n->keys.push_back(*key);
  }
  ++count_;
  return NodeRef(this, n);
}

bool NodeTable::add_alias(Node* n, Node* parent, const std::string& name) {
  std::lock_guard lk(mu_);
  auto [it, inserted] = parent->children.emplace(name, n);
  if (!inserted) return it->second == n;
  parent->refs.fetch_add(1, std::memory_order_relaxed);
  if (n->unlinked) {
    // Relinking a node that had lost all its names (link from an open, unlinked file): the new name becomes
    // primary; the old parent's ref is kept as a nameless alias until the node is freed.
    n->aliases.push_back(Alias{n->parent, ""});
    n->parent = parent;
    n->name = name;
    n->unlinked = false;
  } else {
    n->aliases.push_back(Alias{parent, name});
  }
  return true;
}

void NodeTable::add_key(Node* n, const LinkKey& key) {
  std::lock_guard lk(mu_);
  auto [it, inserted] = links_.emplace(key, n);
  if (!inserted) {
    if (it->second == n) return;
    it->second = n;  // the inode number was reused by a new object: the old owner's key is stale
  }
  n->keys.push_back(key);
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
  Node* drop = nullptr;
  NodeRef out;
  {
    std::lock_guard lk(mu_);
    auto it = parent->children.find(name);
    if (it == parent->children.end()) return {};
    Node* n = it->second;
    n->refs.fetch_add(1, std::memory_order_relaxed);
    out = NodeRef(this, n);
    drop = remove_name_locked(n, parent, name);
    parent->children.erase(name);
  }
  if (drop) unref(drop);
  return out;
}

void NodeTable::set_name_locked(Node* n, Node* oldp, const std::string& oldn, Node* newp, const std::string& newn,
                                std::vector<Node*>* drop) {
  auto rename_to = [&](Node*& p, std::string& nm) {
    nm = newn;
    if (p != newp) {
      newp->refs.fetch_add(1, std::memory_order_relaxed);
      drop->push_back(p);
      p = newp;
    }
  };
  if (!n->unlinked && n->parent == oldp && n->name == oldn) {
    rename_to(n->parent, n->name);
  } else {
    for (auto& a : n->aliases)
      if (a.parent == oldp && a.name == oldn) {
        rename_to(a.parent, a.name);
        break;
      }
  }
  newp->children[newn] = n;
}

NodeRef NodeTable::move_child(Node* oldp, const std::string& oldn, Node* newp, const std::string& newn) {
  NodeRef replaced;
  std::vector<Node*> drop;
  {
    std::lock_guard lk(mu_);
    auto dst = newp->children.find(newn);
    if (dst != newp->children.end()) {
      Node* t = dst->second;
      t->refs.fetch_add(1, std::memory_order_relaxed);
      replaced = NodeRef(this, t);
      if (Node* p = remove_name_locked(t, newp, newn)) drop.push_back(p);
      newp->children.erase(newn);
    }
    auto src = oldp->children.find(oldn);
    if (src != oldp->children.end()) {
      Node* n = src->second;
      oldp->children.erase(src);
      set_name_locked(n, oldp, oldn, newp, newn, &drop);
    }
  }
  for (Node* p : drop) unref(p);
  return replaced;
}

void NodeTable::exchange_children(Node* p1, const std::string& n1, Node* p2, const std::string& n2) {
  std::vector<Node*> drop;
  {
    std::lock_guard lk(mu_);
    auto a = p1->children.find(n1);
    auto b = p2->children.find(n2);
    Node* na = a == p1->children.end() ? nullptr : a->second;
    Node* nb = b == p2->children.end() ? nullptr : b->second;
    if (na) p1->children.erase(n1);
    if (nb) p2->children.erase(n2);
    if (na) set_name_locked(na, p1, n1, p2, n2, &drop);
    if (nb) set_name_locked(nb, p2, n2, p1, n1, &drop);
  }
  for (Node* p : drop) unref(p);
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
