// SPDX-License-Identifier: Apache-2.0
// StoreLock: the writers' lock of a store — an exclusive flock(2) on ROOT/lock, held for as long as
// the StoreLock lives (RAII; move-only). Obtained from Store::lock_exclusive().
//
// Who must hold it: everything that reads-modifies-writes shared state or deletes content —
// set_ref, remove_ref, remove_layer, gc (their signatures take a `const StoreLock&` as proof). Blob
// ingest and layer commit need no lock: they publish by an atomic rename and tolerate a concurrent
// identical publisher. A pull that commits blobs and then tags them should hold the lock across
// both, or a concurrent gc may collect the blobs in between. Readers never lock: every file they
// read is replaced only by rename, so they see the old or the new version, never a torn one.
//
// The lock is per open file description, so it excludes other threads of this process as well as
// other processes; taking it twice in one thread deadlocks until the timeout (do not). While it is
// held the lock file holds the holder's pid, for the "waiting" message. Thread-safety: a StoreLock
// is a value owned by one thread.
#pragma once

#include "strata/base/unique_fd.h"

namespace strata::store {

class StoreLock {
 public:
  StoreLock() = default;
  explicit StoreLock(UniqueFd fd, const void* owner) : fd_(std::move(fd)), owner_(owner) {}
  StoreLock(StoreLock&&) noexcept = default;
  StoreLock& operator=(StoreLock&&) noexcept = default;
  // Closing the fd releases the flock.
  ~StoreLock() = default;

  bool held() const { return fd_.valid(); }
  // Identifies the store state it was taken on (checked by the functions that require the lock).
  const void* owner() const { return owner_; }

 private:
  UniqueFd fd_;
  const void* owner_ = nullptr;
};

}  // namespace strata::store
