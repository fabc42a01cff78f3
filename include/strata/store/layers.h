// SPDX-License-Identifier: Apache-2.0
// Layers: one unpacked copy of each distinct layer, at ROOT/layers/<diff_id hex>/{diff/,meta.json},
// shared by every image that has it.
//
// Lifecycle (members of Store, see store.h):
//   begin_layer(diff_id)      -> LayerTemp: a fresh ROOT/layers/.tmp-<hex>-<pid>-<n>/ with an empty
//   diff/
//                                to unpack into (diff_fd()); invisible to readers.
//   begin_layer()             -> the same, named .tmp-new-<pid>-<n>, for a layer whose diff_id is
//                                known only after it is written: commit_layer takes meta.diff_id.
//   commit_layer(tmp, meta)   -> writes meta.json, syncs the filesystem (or, after
//                                set_contents_synced(), fsyncs only meta.json, diff/ and the
//                                temporary), renames the temporary to
//                                layers/<hex> (never replacing: if a concurrent pull got there
//                                first, the temporary is discarded and the commit succeeds), fsyncs
//                                layers/.
//   has_layer / layer_diff_fd / layer_diff_path / layer_meta / list_layers: lock-free reads.
//   remove_layer(lock, diff_id): renames the layer to a temporary (atomic disappearance), then
//   deletes it.
// Invariant: a directory layers/<hex> is complete (its meta.json exists and names diff_id
// sha256:<hex>). A LayerTemp destroyed without commit removes its directory; after a crash,
// cleanup_stale() removes temporaries whose owner pid is gone. Thread-safety: LayerTemp is owned by
// one thread; Store's layer functions are safe concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"
#include "strata/store/digest.h"

namespace strata::store {

namespace detail {
struct Dirs;
}

// ROOT/layers/<hex>/meta.json.
struct LayerMeta {
  Digest diff_id;                     // sha256 of the uncompressed layer tar
  uint64_t size = 0;                  // bytes of the uncompressed layer tar
  std::string created;                // RFC 3339; commit_layer fills in the current time when empty
  std::optional<Digest> blob_digest;  // the (compressed) blob it was unpacked from, when known
};

class LayerTemp {
 public:
  LayerTemp() = default;
  LayerTemp(LayerTemp&&) noexcept = default;
  LayerTemp& operator=(LayerTemp&&) noexcept;
  LayerTemp(const LayerTemp&) = delete;
  LayerTemp& operator=(const LayerTemp&) = delete;
  // Removes the temporary directory unless committed.
  ~LayerTemp();

  const Digest& diff_id() const { return diff_id_; }
  // Name of the temporary inside ROOT/layers.
  const std::string& name() const { return name_; }
  // O_RDONLY|O_DIRECTORY fd of the temporary's diff/ directory: unpack here.
  int diff_fd() const { return diff_.get(); }
  // Absolute path of diff/ (for tools that need a path).
  std::string diff_path() const;
  // The writer has made everything below diff/ durable itself (an fsync of each file and directory
  // it made there, as strata commit does for a change of a few files): commit_layer then skips the
  // syncfs, which would also write out every other dirty file of the filesystem (the container's
  // just-written upper among them) and can cost more than the whole layer.
  void set_contents_synced() { contents_synced_ = true; }

 private:
  friend class Store;
  void discard();
  std::shared_ptr<const detail::Dirs> dirs_;
  Digest diff_id_;
  std::string name_;
  UniqueFd dir_;
  UniqueFd diff_;
  bool contents_synced_ = false;
};

}  // namespace strata::store
