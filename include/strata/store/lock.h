// SPDX-License-Identifier: Apache-2.0
// StoreLock: the writers' lock of a store — an exclusive flock(2) on ROOT/lock, held for as long as
// the StoreLock lives (RAII; move-only). Obtained from Store::lock_exclusive().
//
// Who must hold it: everything that reads-modifies-writes shared state or deletes content —
// set_ref, remove_ref, remove_layer, gc (their signatures take a `const StoreLock&` as proof; gc's
// must come from lock_for_gc, which also excludes StorePins, below). Blob
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
  // Taken by Store::lock_for_gc: no StorePin exists while it is held.
  bool excludes_pins() const { return pins_.valid(); }
  // Identifies the store state it was taken on (checked by the functions that require the lock).
  const void* owner() const { return owner_; }

 private:
  friend class Store;  // lock_for_gc adds the pins
  UniqueFd fd_;
  UniqueFd pins_;  // ROOT/pins, LOCK_EX (lock_for_gc only)
  const void* owner_ = nullptr;
};

// StorePin: a shared flock(2) on ROOT/pins, held by a writer that publishes content before a ref
// names it — pull commits its blobs and layers (and relies on layers it found present) long before
// set_ref, outside the StoreLock. gc takes ROOT/pins exclusively (Store::lock_for_gc) before the
// StoreLock, so it never collects what a running pull has published or is counting on. Pins never
// block each other; a new pin waits while a gc runs. Lock order: pins before the StoreLock (a pin
// holder may take the StoreLock; gc takes pins EX first, then the StoreLock). RAII, move-only.
class StorePin {
 public:
  StorePin() = default;
  explicit StorePin(UniqueFd fd) : fd_(std::move(fd)) {}
  bool held() const { return fd_.valid(); }

 private:
  UniqueFd fd_;
};

}  // namespace strata::store
