// SPDX-License-Identifier: Apache-2.0
// NodeTable: the merged tree the kernel knows and its reference counts. A node is freed when its
// last ref goes; tests observe that through size() (the number of live nodes) and find_child().
#include "strata/merge/node_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using strata::merge::Node;
using strata::merge::NodeRef;
using strata::merge::NodeTable;

std::unique_ptr<Node> make_root() {
  return std::make_unique<Node>(nullptr, "", S_IFDIR, 1, 0);
}

class NodeTableTest : public ::testing::Test {
 protected:
  NodeTable t{make_root()};
  ino_t next_ino = 100;

  NodeRef add(Node* parent, const std::string& name, mode_t type = S_IFREG) {
    return t.insert_child(std::make_unique<Node>(parent, name, type, next_ino++, 1));
  }
  NodeRef add_dir(Node* parent, const std::string& name) { return add(parent, name, S_IFDIR); }
  // The node now called `name` in `parent`, or nullptr (the ref is dropped again).
  Node* at(Node* parent, const std::string& name) { return t.find_child(parent, name).get(); }
};

TEST_F(NodeTableTest, FreshTableHasOnlyTheRoot) {
  EXPECT_EQ(t.size(), 1u);
  ASSERT_NE(t.root(), nullptr);
  EXPECT_TRUE(t.root()->is_dir());
  EXPECT_EQ(t.root()->parent, nullptr);
  auto p = t.place(t.root());
  EXPECT_FALSE(p.parent);
  EXPECT_EQ(p.name, "");
  EXPECT_FALSE(t.find_child(t.root(), "nothing"));
}

TEST_F(NodeTableTest, InsertThenFind) {
  NodeRef a = add(t.root(), "a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, "a");
  EXPECT_EQ(a->parent, t.root());
  EXPECT_EQ(t.size(), 2u);
  NodeRef f = t.find_child(t.root(), "a");
  EXPECT_EQ(f.get(), a.get());
  EXPECT_FALSE(t.find_child(t.root(), "b"));
}

TEST_F(NodeTableTest, InsertDuplicateReturnsExisting) {
  NodeRef a = add(t.root(), "a");
  ino_t first_ino = a->ino;
  NodeRef b = add(t.root(), "a");  // loses the race: its node is discarded
  EXPECT_EQ(b.get(), a.get());
  EXPECT_EQ(b->ino, first_ino);
  EXPECT_EQ(t.size(), 2u);
  a.reset();
  EXPECT_EQ(at(t.root(), "a"), b.get()) << "the second ref must keep the node alive";
  b.reset();
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, LastRefFreesTheNode) {
  NodeRef a = add(t.root(), "a");
  NodeRef again = t.ref(a.get());
  a.reset();
  EXPECT_EQ(t.size(), 2u);
  EXPECT_TRUE(t.find_child(t.root(), "a"));
  again.reset();
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.find_child(t.root(), "a"));
}

TEST_F(NodeTableTest, NodeRefMoveAndRelease) {
  NodeRef a = add(t.root(), "a");
  NodeRef b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_EQ(t.size(), 2u);
  NodeRef c;
  c = std::move(b);
  EXPECT_EQ(t.size(), 2u);
  Node* raw = c.release();
  EXPECT_FALSE(c);
  EXPECT_EQ(t.size(), 2u);
  t.unref(raw);  // the released ref, given back by hand
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, LookupCountKeepsNodeAliveUntilForgotten) {
  Node* raw = nullptr;
  {
    NodeRef a = add(t.root(), "a");
    raw = a.get();
    t.add_lookup(raw);
    t.add_lookup(raw);
    t.add_lookup(raw);
  }
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(raw->nlookup, 3u);
  t.forget(raw, 2);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(at(t.root(), "a"), raw);
  t.forget(raw, 1);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.find_child(t.root(), "a"));
}

TEST_F(NodeTableTest, ForgetMoreThanLookedUpIsClamped) {
  {
    NodeRef a = add(t.root(), "a");
    t.add_lookup(a.get());
    t.forget(a.get(), 1000);
  }
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, ForgetWhileStillReferencedDefersTheFree) {
  NodeRef a = add(t.root(), "a");
  t.add_lookup(a.get());
  t.forget(a.get(), 1);
  EXPECT_EQ(t.size(), 2u) << "an open handle (our ref) keeps it";
  a.reset();
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, ForgetOfRootIsIgnored) {
  t.forget(t.root(), 10);
  EXPECT_EQ(t.size(), 1u);
  NodeRef a = add(t.root(), "a");  // the root is still usable
  EXPECT_EQ(t.size(), 2u);
}

TEST_F(NodeTableTest, FreeingCascadesToParents) {
  Node* c = nullptr;
  {
    NodeRef a = add_dir(t.root(), "a");
    NodeRef b = add_dir(a.get(), "b");
    NodeRef cr = add(b.get(), "c");
    c = cr.get();
    t.add_lookup(c);  // only the kernel's lookup of the leaf remains after this block
  }
  EXPECT_EQ(t.size(), 4u) << "ancestors live through their child's parent pointer";
  NodeRef a = t.find_child(t.root(), "a");
  ASSERT_TRUE(a);
  NodeRef b = t.find_child(a.get(), "b");
  ASSERT_TRUE(b);
  EXPECT_EQ(t.find_child(b.get(), "c").get(), c);
  a.reset();
  b.reset();
  t.forget(c, 1);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.find_child(t.root(), "a"));
}

TEST_F(NodeTableTest, CascadeStopsAtAReferencedAncestor) {
  NodeRef a = add_dir(t.root(), "a");
  {
    NodeRef b = add_dir(a.get(), "b");
    NodeRef c = add(b.get(), "c");
  }
  EXPECT_EQ(t.size(), 2u) << "b and c had no refs left";
  EXPECT_EQ(at(t.root(), "a"), a.get());
}

TEST_F(NodeTableTest, DetachChild) {
  NodeRef a = add(t.root(), "a");
  NodeRef d = t.detach_child(t.root(), "a");
  ASSERT_EQ(d.get(), a.get());
  EXPECT_TRUE(a->unlinked);
  EXPECT_FALSE(t.find_child(t.root(), "a"));
  auto p = t.place(a.get());
  EXPECT_FALSE(p.parent) << "a detached node has no place";
  EXPECT_EQ(t.size(), 2u) << "still alive while referenced";
  EXPECT_FALSE(t.detach_child(t.root(), "a")) << "nothing left to detach";
  d.reset();
  a.reset();
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, FreeingADetachedNodeLeavesItsSuccessorInPlace) {
  NodeRef old_a = add(t.root(), "a");
  t.detach_child(t.root(), "a").reset();
  NodeRef new_a = add(t.root(), "a");
  ASSERT_NE(new_a.get(), old_a.get());
  old_a.reset();  // frees the old node: it must not take the new one's name with it
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(at(t.root(), "a"), new_a.get());
}

TEST_F(NodeTableTest, DetachedChildKeepsItsParentAlive) {
  NodeRef c;
  {
    NodeRef d = add_dir(t.root(), "d");
    c = add(d.get(), "c");
    t.detach_child(d.get(), "c").reset();
    t.detach_child(t.root(), "d").reset();
  }
  EXPECT_EQ(t.size(), 3u);
  c.reset();
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, MoveChildWithinADirectory) {
  NodeRef a = add(t.root(), "a");
  NodeRef replaced = t.move_child(t.root(), "a", t.root(), "b");
  EXPECT_FALSE(replaced);
  EXPECT_FALSE(t.find_child(t.root(), "a"));
  EXPECT_EQ(at(t.root(), "b"), a.get());
  auto p = t.place(a.get());
  EXPECT_EQ(p.parent.get(), t.root());
  EXPECT_EQ(p.name, "b");
  EXPECT_EQ(t.size(), 2u);
}

TEST_F(NodeTableTest, MoveChildAcrossDirectoriesMovesTheParentRef) {
  NodeRef d2 = add_dir(t.root(), "d2");
  NodeRef x;
  {
    NodeRef d1 = add_dir(t.root(), "d1");
    x = add(d1.get(), "x");
  }
  EXPECT_EQ(t.size(), 4u);  // root, d1 (kept by x), d2, x
  t.move_child(at(t.root(), "d1"), "x", d2.get(), "y").reset();
  EXPECT_EQ(t.size(), 3u) << "d1 lost its only ref, x's parent pointer";
  EXPECT_FALSE(t.find_child(t.root(), "d1"));
  EXPECT_EQ(x->parent, d2.get());
  auto p = t.place(x.get());
  EXPECT_EQ(p.parent.get(), d2.get());
  EXPECT_EQ(p.name, "y");
  p.parent.reset();
  d2.reset();
  EXPECT_NE(at(t.root(), "d2"), nullptr) << "x now keeps d2 alive";
  x.reset();
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, MoveChildOverAnotherReturnsTheReplaced) {
  NodeRef a = add(t.root(), "a");
  NodeRef b = add(t.root(), "b");
  Node* old_b = b.get();
  t.add_lookup(old_b);  // the kernel still knows the old b
  b.reset();
  NodeRef replaced = t.move_child(t.root(), "a", t.root(), "b");
  ASSERT_EQ(replaced.get(), old_b);
  EXPECT_TRUE(replaced->unlinked);
  EXPECT_FALSE(t.place(old_b).parent);
  EXPECT_EQ(at(t.root(), "b"), a.get());
  EXPECT_FALSE(t.find_child(t.root(), "a"));
  EXPECT_EQ(t.size(), 3u);
  replaced.reset();
  EXPECT_EQ(t.size(), 3u) << "the lookup count keeps the replaced node";
  t.forget(old_b, 1);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(at(t.root(), "b"), a.get())
      << "freeing the replaced node must not unlink the moved one";
}

TEST_F(NodeTableTest, ExchangeChildrenInOneDirectory) {
  NodeRef a = add(t.root(), "a");
  NodeRef b = add(t.root(), "b");
  t.exchange_children(t.root(), "a", t.root(), "b");
  EXPECT_EQ(at(t.root(), "a"), b.get());
  EXPECT_EQ(at(t.root(), "b"), a.get());
  EXPECT_EQ(t.place(a.get()).name, "b");
  EXPECT_EQ(t.place(b.get()).name, "a");
  a.reset();
  b.reset();
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, ExchangeChildrenAcrossDirectories) {
  NodeRef d1 = add_dir(t.root(), "d1");
  NodeRef d2 = add_dir(t.root(), "d2");
  NodeRef a = add(d1.get(), "a");
  NodeRef b = add(d2.get(), "b");
  t.exchange_children(d1.get(), "a", d2.get(), "b");
  EXPECT_EQ(a->parent, d2.get());
  EXPECT_EQ(b->parent, d1.get());
  EXPECT_EQ(at(d2.get(), "b"), a.get());
  EXPECT_EQ(at(d1.get(), "a"), b.get());
  auto pa = t.place(a.get());
  EXPECT_EQ(pa.parent.get(), d2.get());
  EXPECT_EQ(pa.name, "b");
  pa.parent.reset();
  // Refs must balance: once everything is dropped, nothing is left (and nothing was freed early).
  d1.reset();
  d2.reset();
  EXPECT_EQ(t.size(), 5u);
  a.reset();
  EXPECT_EQ(t.size(), 3u) << "a, then d2 (kept only by a) are freed";
  EXPECT_FALSE(t.find_child(t.root(), "d2"));
  EXPECT_EQ(at(t.root(), "d1"), b->parent);
  b.reset();
  EXPECT_EQ(t.size(), 1u);
}

TEST_F(NodeTableTest, ExchangeWithAnUnknownNameMovesOneNode) {
  NodeRef d1 = add_dir(t.root(), "d1");
  NodeRef d2 = add_dir(t.root(), "d2");
  NodeRef a = add(d1.get(), "a");
  t.exchange_children(d1.get(), "a", d2.get(), "other");  // the table has no node for d2/other
  EXPECT_FALSE(t.find_child(d1.get(), "a"));
  EXPECT_EQ(at(d2.get(), "other"), a.get());
  EXPECT_EQ(a->parent, d2.get());
  d1.reset();
  EXPECT_EQ(t.size(), 3u) << "d1 has no child left and no ref: freed";
  d2.reset();
  EXPECT_EQ(t.size(), 3u) << "a keeps d2";
  a.reset();
  EXPECT_EQ(t.size(), 1u);
}

struct Ent {
  std::string name;
  ino_t ino;
};

TEST_F(NodeTableTest, FixInosReportsKnownNodes) {
  NodeRef a = add(t.root(), "a");
  std::vector<Ent> ents{{"a", 5}, {"b", 6}};
  t.fix_inos(t.root(), ents);
  EXPECT_EQ(ents[0].ino, a->ino);
  EXPECT_EQ(ents[1].ino, 6u);
}

// Threads play the kernel and the engine at once on a small namespace: lookups (find or insert,
// then add_lookup), forgets, renames, exchanges and unlinks. Every lookup a thread takes it forgets
// later, so once all threads are done and the fixed directories are released, only the root may be
// left.
TEST(NodeTableStress, ConcurrentOpsBalanceOut) {
  NodeTable t(make_root());
  constexpr int kDirs = 3, kNames = 6, kThreads = 4, kIters = 100000;
  std::vector<NodeRef> dirs;
  for (int i = 0; i < kDirs; ++i)
    dirs.push_back(t.insert_child(
        std::make_unique<Node>(t.root(), "d" + std::to_string(i), S_IFDIR, 10 + i, 0)));
  std::atomic<ino_t> ino{1000};
  std::atomic<int> problems{0};

  auto worker = [&](unsigned seed) {
    std::mt19937 rng(seed);
    auto pick_dir = [&] { return dirs[rng() % kDirs].get(); };
    auto pick_name = [&] { return "n" + std::to_string(rng() % kNames); };
    std::vector<Node*> held;  // one kernel lookup each
    for (int i = 0; i < kIters; ++i) {
      unsigned op = rng() % 100;
      if (op < 40 || held.empty()) {
        Node* d = pick_dir();
        std::string nm = pick_name();
        NodeRef r = t.find_child(d, nm);
        if (!r) r = t.insert_child(std::make_unique<Node>(d, nm, S_IFREG, ino++, 1));
        if (!r || r->is_dir()) ++problems;
        t.add_lookup(r.get());
        held.push_back(r.get());
      } else if (op < 65) {
        size_t k = rng() % held.size();
        t.forget(held[k], 1);
        held[k] = held.back();
        held.pop_back();
      } else if (op < 80) {
        Node* d1 = pick_dir();
        Node* d2 = pick_dir();
        std::string a = pick_name(), b = pick_name();
        if (d1 != d2 || a != b) t.move_child(d1, a, d2, b).reset();
      } else if (op < 88) {
        t.exchange_children(pick_dir(), pick_name(), pick_dir(), pick_name());
      } else if (op < 94) {
        t.detach_child(pick_dir(), pick_name()).reset();
      } else {
        Node* n = held[rng() % held.size()];
        auto p = t.place(n);
        if (p.parent && (p.name.empty() || !p.parent->is_dir())) ++problems;
        NodeRef extra = t.ref(n);
        if (extra->is_dir()) ++problems;
      }
    }
    for (Node* n : held) t.forget(n, 1);
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, 1234u + static_cast<unsigned>(i));
  for (auto& th : threads) th.join();
  EXPECT_EQ(problems.load(), 0);
  EXPECT_EQ(t.size(), 1u + kDirs)
      << "every file node was forgotten: only the root and the dirs remain";
  dirs.clear();
  EXPECT_EQ(t.size(), 1u);
}

}  // namespace
