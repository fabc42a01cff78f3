// SPDX-License-Identifier: Apache-2.0
// Store: the content store at ROOT — content-addressed blobs in an OCI image layout, unpacked
// layers, refs, the writers' lock and gc. Layout and on-disk invariants: layout.h. Per concern:
// ingest.h (blobs), layers.h, refs.h, lock.h, gc.h.
//
// open(root, create) makes (create) or opens ROOT with the layout, writing oci/oci-layout and an
// empty oci/index.json atomically when missing, and keeps directory fds: after open every access is
// fd-relative, so renaming or replacing ROOT's path later does not redirect a running Store. The
// root path is kept only to hand to external tools (stratafs lowerdirs, skopeo).
//
// Invariants: a blob at oci/blobs/sha256/<hex> is complete and its sha256 is <hex> (it only gets
// there through Ingest::commit). A layers/<hex> directory is complete. index.json is always a valid
// OCI index. Works unprivileged: nothing here needs a capability; ROOT is created 0700, the rest
// 0755/0644.
//
// Errors: Result/Status with errno and operation; nothing throws across this API (nlohmann-json
// exceptions are caught inside), nothing logs except lock_exclusive's one "waiting" line.
// Thread-safety: a Store is cheap to copy (the fds are shared, immutable) and every member is safe
// to call from several threads at once; writers that need mutual exclusion take the StoreLock.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"
#include "strata/store/digest.h"
#include "strata/store/gc.h"
#include "strata/store/layers.h"
#include "strata/store/lock.h"
#include "strata/store/refs.h"

namespace strata::store {

namespace detail {
struct Dirs;
}

// $STRATA_ROOT, else /var/lib/strata for euid 0, else $XDG_DATA_HOME/strata, else
// ~/.local/share/strata (home from $HOME, else the password database). ENOENT when none can be
// determined.
Result<std::string> default_root();

class Store {
 public:
  // Largest blob read_blob() returns by default: manifests and configs are far smaller.
  static constexpr size_t kMaxJsonBlob = 16u << 20;

  // create=false: ROOT must already be a store (ENOENT otherwise); nothing is written.
  static Result<Store> open(const std::string& root_path, bool create = true);

  const std::string& root_path() const;
  int root_fd() const;  // O_PATH, borrowed

  // ---- blobs (ingest.cc; writing a large blob: Ingest in ingest.h) ----
  // Whether the complete blob is present. An error other than ENOENT also answers false: the caller
  // then fetches or writes it and meets the real error there.
  bool has_blob(const Digest& digest) const;
  Result<UniqueFd> open_blob(const Digest& digest) const;  // O_RDONLY
  Result<uint64_t> blob_size(const Digest& digest) const;
  // The whole blob (manifests, configs); EFBIG beyond max_size.
  Result<std::string> read_blob(const Digest& digest, size_t max_size = kMaxJsonBlob) const;
  // Store `bytes` as a blob through the verified ingest path; returns its digest. Present already:
  // no-op. A blob of unknown digest, streamed: BlobWriter in blob_writer.h.
  Result<Digest> write_blob(std::string_view bytes) const;
  // Absolute path of the blob file (for external tools).
  std::string blob_path(const Digest& digest) const;

  // ---- layers (layers.cc; lifecycle in layers.h) ----
  bool has_layer(const Digest& diff_id) const;
  Result<LayerTemp> begin_layer(const Digest& diff_id) const;
  // A layer whose diff_id is known only once it is written (strata commit): commit_layer takes it
  // from meta.diff_id.
  Result<LayerTemp> begin_layer() const;
  Status commit_layer(LayerTemp&& tmp, const LayerMeta& meta) const;
  Result<UniqueFd> layer_diff_fd(
      const Digest& diff_id) const;  // O_PATH|O_DIRECTORY on layers/<hex>/diff
  std::string layer_diff_path(const Digest& diff_id) const;
  Result<LayerMeta> layer_meta(const Digest& diff_id) const;
  Result<std::vector<Digest>> list_layers() const;
  Status remove_layer(const StoreLock& lock, const Digest& diff_id) const;

  // ---- refs (refs.cc; rules in refs.h) ----
  Status set_ref(const StoreLock& lock, std::string_view name, const Descriptor& descriptor) const;
  Result<Descriptor> resolve(std::string_view name) const;
  Result<std::vector<Ref>> list() const;
  Status remove_ref(const StoreLock& lock, std::string_view name) const;
  // Add an index.json entry without a name (an untagged image, as `strata commit` without a name
  // makes): gc keeps what it references. An unnamed entry with the same digest already there:
  // no-op.
  Status add_unnamed(const StoreLock& lock, const Descriptor& descriptor) const;

  // ---- lock (lock.cc; rules in lock.h) ----
  // Blocks until the lock is free, logging "waiting for the store lock held by another strata" once
  // if it is not free at once; with a timeout, ETIMEDOUT when it stays held that long.
  Result<StoreLock> lock_exclusive(
      std::optional<std::chrono::milliseconds> timeout = std::nullopt) const;
  // A shared pin (lock.h): hold it from before a pull's first blob until its ref is set. Waits while
  // a gc runs (logging "waiting for a running strata gc" once).
  Result<StorePin> pin() const;
  // For gc: waits until no pin is held (logging once), then takes the StoreLock. New pins wait
  // until it is released.
  Result<StoreLock> lock_for_gc() const;

  // ---- maintenance (gc.cc) ----
  // Remove temporaries (layers/, oci/, ingest/ ".tmp-*") whose owner pid no longer exists, and
  // ingest state of blobs that are already complete and not being written. Returns the removed
  // names
  // ("layers/.tmp-...").
  Result<std::vector<std::string>> cleanup_stale() const;
  Result<Reachable> referenced() const;
  // in_use_blobs: blobs kept although no ref reaches them (a container's image config).
  Result<GcReport> gc(const StoreLock& lock, bool dry_run, const std::set<Digest>& in_use_layers,
                      const std::set<Digest>& in_use_blobs = {}) const;

  // Internal: the directory fds, for Ingest and LayerTemp.
  const std::shared_ptr<const detail::Dirs>& dirs() const { return dirs_; }

 private:
  explicit Store(std::shared_ptr<const detail::Dirs> dirs) : dirs_(std::move(dirs)) {}
  Status check_lock(const StoreLock& lock, const char* op) const;
  Result<LayerTemp> begin_layer_in(LayerTemp t, std::string name) const;
  std::shared_ptr<const detail::Dirs> dirs_;
};

}  // namespace strata::store
