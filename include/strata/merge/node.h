// SPDX-License-Identifier: Apache-2.0
// Node: one object of the merged tree as the kernel knows it. Its address is the FUSE nodeid.
//
// A node is a name in a directory (parent, name), the layers its object is found in, and the inode number
// reported for it. No absolute paths are kept: a node's real objects are reached as *at(dirfd, name) from its
// parent's directory fd in the same layer. Directory nodes cache those fds (O_PATH) per layer; the FdCache bounds
// how many are open at once process-wide.
//
// Lifetime: `refs` counts everything that keeps the node alive: the kernel (one ref while nlookup > 0), each
// child (its parent pointer), each open handle, the FdCache, and NodeRef temporaries. The 1 -> 0 transition and
// any 0 -> 1 revival happen only under NodeTable::mu_, so a node found in a children map under that lock is
// alive.
//
// Locks, in the order they may be taken:
//   Node::copy_mu   serializes the copy-up of this node; held while parents' fds are looked up (their `mu`).
//   Node::mu        guards layers, layer_flags, fds, pinned, listing; held only for in-memory work, never two at once.
//   FdCache::mu_    membership of the fd cache.
//   NodeTable::mu_  a leaf: guards parent, name, children, nlookup, unlinked, the 1 <-> 0 transitions of refs.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "strata/base/unique_fd.h"

namespace strata::merge {

using SharedFd = std::shared_ptr<const UniqueFd>;

class Node;
struct Listing;  // overlay.h

// One more name of a non-directory (hard links): the primary name is Node::parent/name.
struct Alias {
  Node* parent;
  std::string name;
};

// Identity of a real inode: hard-link aliases found in one layer share one node.
struct LinkKey {
  int layer;
  dev_t dev;
  ino_t ino;
  bool operator==(const LinkKey&) const = default;
};

// Per-layer facts about a directory node.
enum LayerFlag : uint8_t {
  kXattrWhiteouts = 1,  // opaque xattr "x": zero-size files may be xattr whiteouts
};

class Node {
 public:
  Node(Node* parent, std::string name, mode_t type, ino_t ino, int top)
      : type(type), ino(ino), parent(parent), name(std::move(name)), top_(top) {}
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const mode_t type;  // S_IFMT bits: a node never changes type
  const ino_t ino;    // st_ino reported for the life of the node

  bool is_dir() const { return type == S_IFDIR; }
  // Top layer index (0 = upper when the overlay has one). Readable without the lock.
  int top() const { return top_.load(std::memory_order_acquire); }
  void set_top(int t) { top_.store(t, std::memory_order_release); }

  // --- guarded by NodeTable::mu_ ---
  Node* parent;  // the primary name; each name (primary or alias) holds a ref on its parent
  std::string name;
  std::vector<Alias> aliases;   // further names of a hard-linked non-directory
  std::vector<LinkKey> keys;    // entries of NodeTable's link map that point here
  std::unordered_map<std::string, Node*> children;
  uint64_t nlookup = 0;
  bool unlinked = false;
  std::atomic<int> refs{0};
  std::atomic<int> open_files{0};
  // Directories: bumped after every change of the names in it (listings taken before are then stale).
  std::atomic<uint64_t> dir_gen{0};
  // Directories: dir_gen + 1 when a reader last read the listing from its start (0: never). Prefetching skips
  // a directory read at its current generation (the kernel keeps what it read).
  std::atomic<uint64_t> read_gen{0};
  std::atomic<bool> cache_referenced{false};
  // Directories: the last READDIRPLUS reply on it listed entries without attributes (fuse/plus_policy.h).
  std::atomic<bool> lean_listed{false};

  // --- guarded by FdCache's mutex ---
  bool in_fd_cache = false;
  size_t cached_fds = 0;

  // Serializes copy-up of this node; taken before `mu` (of this node or any other).
  std::mutex copy_mu;

  // --- guarded by mu ---
  std::mutex mu;
  std::vector<int> layers;            // directories: every layer merged, top-down (first == top)
  std::vector<uint8_t> layer_flags;   // parallel to layers
  std::vector<SharedFd> fds;          // directories: cached O_PATH fd per entry of `layers`
  SharedFd pinned;                    // O_PATH fd kept once the node lost its name (unlinked while in use)
  bool opaque_upper = false;          // the upper directory is opaque
  std::string index_name;             // copied-up lower hard link: its entry in the index directory
  std::shared_ptr<const Listing> listing;  // directories: the last merged listing (Overlay::listing)

  // A copy-up put in place before its data was durable (copyup/unsynced.h): the CopyUpQueue job that fsyncs
  // it (0: none). Overlay::settle waits for it.
  std::atomic<uint64_t> unsynced_job{0};

  // Names in the merged view minus links of the real inode, for a copied-up lower hard link (whose lower-only
  // names are not links of the upper inode). Persisted in the index entry's xattr.
  std::atomic<int> nlink_delta{0};

 private:
  std::atomic<int> top_;
};

}  // namespace strata::merge
