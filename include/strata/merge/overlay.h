// SPDX-License-Identifier: Apache-2.0
// Overlay: the union engine. Read-only lower layers + at most one writable upper, merged with the semantics of
// Linux overlayfs (redirect_dir=off, index=off) and its on-disk format (see whiteout.h).
//
// Layers are numbered top-down: 0 is the upper when there is one, then the lowers as given (leftmost first).
// Invariants:
//   - Lower layers are never modified; every change lands in the upper, through copy-up when the object lives
//     in a lower layer (parents first; atomically via the work directory).
//   - A node's `top` only moves up (to 0) and does so under Node::mu; once 0 it stays 0.
//   - A regular file's copy-up may be in place before its data is on disk: it is then recorded in
//     WORKDIR/strata-unsynced until its background fsync, and repaired at the next mount after a crash.
//   - Every method returns an Error whose errno is what the FUSE reply should carry. No method throws (except
//     std::bad_alloc, which the FUSE adapter turns into ENOMEM).
// Threading: all methods may run concurrently. The kernel already serializes namespace changes within one
// directory (it holds the directory's lock for create/unlink/rename); the engine adds per-node locks for
// copy-up and the NodeTable's short structural lock. Nothing is held across a syscall except Node::mu during
// that node's own copy-up.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/base/result.h"
#include "strata/copyup/copy_up.h"
#include "strata/copyup/unsynced.h"
#include "strata/merge/copy_up_queue.h"
#include "strata/merge/fd_cache.h"
#include "strata/merge/id_map.h"
#include "strata/merge/node_table.h"

namespace strata::merge {

struct OverlayOptions {
  std::vector<std::string> lowerdirs;  // top first
  std::string upperdir;                // empty: read-only union
  std::string workdir;                 // required with upperdir, same filesystem
  bool fsync = true;                   // fsync copy-ups before they become visible (false: `volatile`)
  size_t fd_cache_fds = 1024;          // O_PATH directory fds kept open at most (a cache, see fd_cache.h)
  // Ownership as fuse-overlayfs's options give it (id_map.h): attributes are reported through `ids`, and owners
  // given by the kernel are stored through it.
  IdMap ids;
  // xattr_permissions: 0 off; 1 or 2: owner and mode live in the xattr security.fuseoverlayfs.override_stat (1) or
  // user.fuseoverlayfs.override_stat (2), read in every layer, and chown/chmod/create write only that xattr.
  int xattr_permissions = 0;
  // false: whiteouts are always `.wh.NAME` files (fuse-overlayfs's FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT).
  bool device_whiteouts = true;
  // Copy-ups fsynced in the background with crash records (copyup/unsynced.h) rather than before their rename.
  // Unset: where the upper's filesystem keeps metadata changes in order (sys::orders_metadata), else not.
  std::optional<bool> background_fsync;
};

// Who is asking: ownership for new objects (ids as the kernel gives them: the view side of OverlayOptions::ids).
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Entry {
  NodeRef node;
  struct stat st;
};

// setattr: only the fields named in `valid` apply.
struct SetAttr {
  enum : unsigned { kMode = 1, kUid = 2, kGid = 4, kSize = 8, kAtime = 16, kMtime = 32 };
  unsigned valid = 0;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  off_t size = 0;
  struct timespec atime {};  // tv_nsec may be UTIME_NOW
  struct timespec mtime {};
  class File* file = nullptr;  // the open handle the kernel named, if any
};

// An open regular file. Reads follow the object after a copy-up, as overlayfs does since Linux 4.19: a file
// opened read-only from a lower layer sees the data once another open copies it up.
class Overlay;

class File {
 public:
  File(Overlay* ov, NodeRef node, UniqueFd fd, bool upper, int flags);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  Node* node() const { return node_.get(); }
  int flags() const { return flags_; }
  // The fd to use now (switches to the upper copy once the node has one).
  int fd();

 private:
  Overlay* ov_;
  NodeRef node_;
  UniqueFd first_;
  UniqueFd upper_;
  std::mutex mu_;
  std::atomic<int> cur_;
  std::atomic<bool> upper_open_;
  int flags_;
};

struct DirEntry {
  std::string name;
  ino_t ino;
  unsigned char type;  // DT_*
  int layer;           // the top layer holding the name
  uint64_t cookie = 0;  // its readdir offset: a hash of the name (3 .. 2^63-1), the same in every listing
};

// A merged directory listing in cookie order. Readdir offsets are cookies, not positions, so a reader needs no
// handle and no snapshot of its own: after changes, "the entries after offset X" are still the ones it has not
// seen (as with ext4's hash offsets), whichever listing answers. Immutable once built; shared by all readers.
struct Listing {
  Listing() = default;
  Listing(const Listing&) = delete;
  Listing& operator=(const Listing&) = delete;
  ~Listing() {
    if (accounted) accounted->fetch_sub(entries.size(), std::memory_order_relaxed);
  }
  std::vector<DirEntry> entries;  // without "." and "..", sorted by (cookie, name)
  uint64_t gen = 0;               // the directory's dir_gen when taken
  std::atomic<size_t>* accounted = nullptr;  // the cache budget it counts against, if cached
  mutable std::atomic<bool> prefetched{false};  // taken by prefetch_listing and not yet read
};

class Overlay {
 public:
  static Result<std::unique_ptr<Overlay>> open(const OverlayOptions& opts);
  ~Overlay();

  Node* root() const { return table_.root(); }
  NodeTable& table() { return table_; }
  FdCache& fd_cache() { return fd_cache_; }
  bool has_upper() const { return has_upper_; }
  size_t layer_count() const { return layers_.size(); }

  // Namespace. Successful lookups/creations return a ref'd node and its attributes.
  Result<Entry> lookup(Node* parent, const std::string& name);
  Result<struct stat> getattr(Node* n);
  Result<struct stat> setattr(Node* n, const SetAttr& attr);
  Result<std::string> readlink(Node* n);
  Result<Entry> mknod(Node* parent, const std::string& name, mode_t mode, dev_t rdev, const Caller& c);
  Result<Entry> mkdir(Node* parent, const std::string& name, mode_t mode, const Caller& c);
  Result<Entry> symlink(Node* parent, const std::string& name, const std::string& target, const Caller& c);
  Result<Entry> link(Node* n, Node* newparent, const std::string& newname);
  Status unlink(Node* parent, const std::string& name);
  Status rmdir(Node* parent, const std::string& name);
  Status rename(Node* p1, const std::string& n1, Node* p2, const std::string& n2, unsigned flags);

  // Files and directories.
  Result<std::unique_ptr<File>> open(Node* n, int flags);
  Result<std::pair<Entry, std::unique_ptr<File>>> create(Node* parent, const std::string& name, mode_t mode,
                                                         int flags, const Caller& c);
  // The merged listing of `dir`: the cached one while the directory is unchanged (dir_gen), else taken now.
  // Cached listings are bounded (kListingCacheEntries entries in all); past that, listings are not kept.
  Result<std::shared_ptr<const Listing>> listing(Node* dir);
  // Forget `dir`'s cached listing (a reader got to its end; the kernel keeps what it read).
  void drop_listing(Node* dir);
  static constexpr size_t kListingCacheEntries = 1 << 17;
  // Take and cache `dir`'s listing ahead of its reader (fuse/prefetch.h), unless a current one is cached.
  // True if a listing was taken. listings_prefetched/_used count those taken and those a reader then used.
  bool prefetch_listing(Node* dir);
  // Drop `dir`'s cached listing if it is a prefetched one no reader has used.
  void drop_prefetched(Node* dir);
  uint64_t listings_prefetched() const { return prefetched_.load(std::memory_order_relaxed); }
  uint64_t listings_prefetch_used() const { return prefetch_used_.load(std::memory_order_relaxed); }
  // readdirplus: the entry `i` of a listing of `dir`, looked up. When the directory has not changed since the
  // listing was taken, a non-directory is built from the listing (one stat) instead of a lookup across layers.
  Result<Entry> lookup_listed(Node* dir, const Listing& l, size_t i);
  Status fsyncdir(Node* n, bool datasync);

  // Extended attributes (private ones hidden). Sizes follow getxattr(2): size 0 asks for the length.
  Result<size_t> getxattr(Node* n, const std::string& name, char* buf, size_t size);
  Result<size_t> listxattr(Node* n, char* buf, size_t size);
  Status setxattr(Node* n, const std::string& name, std::string_view value, int flags);
  Status removexattr(Node* n, const std::string& name);
  Result<struct statvfs> statfs();
  // The overlay's own xattrs live in user.overlay.* (where trusted.* is refused: unprivileged, user namespace)
  // rather than trusted.overlay.*.
  bool userxattr() const;
  // Attributes as the merged view reports them (inode number, link count, owner and mode: see ownership.cc).
  struct stat fix_stat(Node* n, struct stat st);

  // Copy the node (and its parents) into the upper layer if it is not there yet. A regular file's copy is
  // renamed into place before its data is durable and fsynced in the background (copyup/unsynced.h).
  Status ensure_upper(Node* n, bool with_data = true);
  // Wait until `n`'s copy-up, if one is being fsynced in the background, is durable: before fsync(2) on it,
  // and before it is renamed or removed (its crash record names its path).
  void settle(Node* n) {
    if (uint64_t job = n->unsynced_job.load(std::memory_order_acquire)) copy_up_queue_.wait(job);
  }
  // Wait until every copy-up made so far is durable.
  void settle_all() { copy_up_queue_.drain(); }
  // Copy-ups fsynced in the background and operations that waited for one (stats); what the mount repaired.
  uint64_t copy_ups_deferred() const { return copy_up_queue_.pushed(); }
  uint64_t copy_up_waits() const { return copy_up_queue_.waits(); }
  const copyup::Recovery& recovery() const { return recovery_; }

  // syncfs(2) of the upper layer's filesystem (the control socket's pause and sync), once every copy-up fsynced
  // in the background is durable; nothing without an upper.
  Status sync_upper();
  // Objects copied up since the mount (a relaxed counter, for stats).
  uint64_t copy_ups() const { return copy_ups_.load(std::memory_order_relaxed); }

 private:
  struct Layer {
    UniqueFd root;
    SharedFd root_shared;
    dev_t dev = 0;
    std::string path;
  };
  // Where a node's object is now: a directory fd and a name in it ("" when fd is the object itself).
  struct Location {
    SharedFd dir;
    std::string name;
    int layer = 0;
  };
  // What a name looks like across a directory's layers.
  struct Probe {
    bool found = false;
    int layer = -1;                // top layer holding it
    struct stat st {};
    std::vector<int> layers;       // directories: every layer merged
    std::vector<uint8_t> flags;
    std::vector<SharedFd> fds;     // directories: opened while probing, seeds the node's fd cache
    bool opaque_top = false;
    ino_t ino = 0;                 // the number to report, when not the top layer's
    std::string index_name;        // a lower hard link copied up earlier: its index entry (st is that entry's)
    int nlink_delta = 0;
  };
  struct UpperState {
    enum Kind { kNone, kWhiteout, kWhiteoutFile, kEntry } kind = kNone;
    struct stat st {};
  };

  Overlay(std::unique_ptr<Node> root, size_t fd_cache_fds)
      : table_(std::move(root)), fd_cache_(&table_, fd_cache_fds) {}

  // Directory fd of `dir` in the layer at position `idx` of dir->layers.
  Result<SharedFd> dir_fd_at(Node* dir, size_t idx);
  Result<SharedFd> dir_fd_layer(Node* dir, int layer);
  Result<SharedFd> upper_dir_fd(Node* dir);
  Result<Location> locate(Node* n);
  void snapshot_layers(Node* dir, std::vector<int>* layers, std::vector<uint8_t>* flags);

  Result<Probe> probe(Node* parent, const std::string& name, bool skip_upper, bool open_dirs);
  Result<bool> is_whiteout_at(int dirfd, const std::string& name, const struct stat& st, uint8_t flags);
  Result<int> opaque_of(int dirfd);
  Result<bool> lower_has(Node* parent, const std::string& name);
  Result<UpperState> upper_state(int upperfd, const std::string& name);
  Result<Entry> make_entry(Node* parent, const std::string& name, Probe&& p);
  // Hard links: the index entry name of a lower inode, and the bookkeeping of names vs links.
  std::string index_name_for(const struct stat& lower) const;
  Status check_index(Probe* p);
  void adjust_nlink(Node* n, int by);
  // Give an indexed node's lower-only name a real link in the upper (before renaming it).
  Status materialize(Node* n, int upperfd, const std::string& name);
  Result<Entry> find_or_probe(Node* parent, const std::string& name);
  ino_t map_ino(int layer, const struct stat& st) const;

  Result<std::vector<DirEntry>> merged_entries(Node* dir, bool stop_at_first);
  std::string tmp_name();
  Status make_whiteout(int dirfd, const std::string& name);
  // A whiteout device at (dirfd, name): a new link of the shared one in the work dir (mknod if that fails).
  Status link_whiteout(int dirfd, const char* name);
  static constexpr const char* kSharedWhiteout = "whiteout";
  Status clear_whiteouts(int dirfd);
  Status remove_tree_in_work(const std::string& name);
  Status copy_up_one(Node* n, bool with_data);
  // A regular file's copy-up whose fsync copy_up_queue_ does (copyup/unsynced.h).
  Status copy_up_deferred(Node* n, const std::string& name, const struct stat& st, int src, int dst,
                          const copyup::Options& o);
  // n's path from the root of the union ("a/b/c"), the same in the upper; nullopt if it has no name now.
  std::optional<std::string> union_path(Node* n);
  void pin(Node* n);
  // Create-family common path: run `make(dirfd, name)` in the upper, over a whiteout if there is one.
  template <typename Make>
  Result<Entry> create_object(Node* parent, const std::string& name, mode_t type, const Caller& c, Make make);
  Status set_owner(int dirfd, const std::string& name, const Caller& c, int upperfd, mode_t mode);
  // ownership.cc: the one place owners and modes are translated for the view, and the one place they are written.
  void view_owner(Node* n, struct stat* st);
  Result<StatOverride> effective_owner(int dirfd, const char* name, const struct stat& real);
  Status write_owner(int dirfd, const char* name, const struct stat& real, std::optional<uid_t> uid,
                     std::optional<gid_t> gid, std::optional<mode_t> mode, bool creating);
  Status set_override_marker();

  friend class File;
  std::vector<Layer> layers_;
  bool has_upper_ = false;
  bool fsync_ = true;
  bool single_dev_ = true;
  std::vector<int> dev_index_;  // per layer: index of its st_dev among distinct devs
  UniqueFd work_;               // workdir/work
  SharedFd index_;              // workdir/strata-index: copied-up lower hard links, by lower inode
  const char* nlink_xattr_ = "trusted.strata.nlink";
  std::atomic<uint64_t> tmp_seq_{0};
  std::atomic<uint64_t> copy_ups_{0};
  std::atomic<size_t> listed_{0};  // entries in cached listings (Node::listing)
  std::atomic<uint64_t> prefetched_{0}, prefetch_used_{0};
  Result<std::shared_ptr<const Listing>> take_listing(Node* dir, uint64_t gen, bool prefetch);
  bool can_mknod_whiteout_ = true;
  uid_t euid_ = geteuid();  // the daemon's ids, read once: compared on every create
  gid_t egid_ = getegid();
  std::mutex whiteout_mu_;  // replacing the shared whiteout when it reaches the link limit
  const char* opaque_xattr_ = "trusted.overlay.opaque";  // user.overlay.opaque when unprivileged
  // Set with opaque_xattr_. A flag, not a comparison of the pointer with whiteout::kUserOpaque: each
  // translation unit may fold that constant to its own copy of the literal (ASan builds do not merge them).
  bool userxattr_ = false;
  IdMap ids_;
  const char* override_xattr_ = nullptr;  // xattr_permissions: the override_stat name, else null
  NodeTable table_;
  FdCache fd_cache_;
  SharedFd unsynced_;          // WORKDIR/strata-unsynced: copy-ups not yet durable
  bool background_fsync_ = false;
  static constexpr size_t kSyncfsBatch = 16;  // copy-ups made durable by one syncfs rather than fsyncs
  std::string boot_id_;        // this boot's id, recorded with them
  copyup::Recovery recovery_;  // what the mount repaired
  // Last: destroyed first, it fsyncs what is queued while the rest is still there.
  CopyUpQueue copy_up_queue_;
};

}  // namespace strata::merge
