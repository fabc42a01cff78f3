// SPDX-License-Identifier: Apache-2.0
#include "strata/store/lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <string>
#include <thread>

#include "strata/base/log.h"
#include "strata/store/layout.h"
#include "strata/store/store.h"
#include "strata/sys/fs.h"
#include "strata/sys/store_io.h"

namespace strata::store {

namespace {

std::string holder_of(int fd) {
  char buf[32];
  auto n = sys::pread_some(fd, buf, sizeof buf - 1, 0);
  if (!n || *n == 0) return "?";
  std::string s(buf, *n);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "?" : s;
}

}  // namespace

Result<StoreLock> Store::lock_exclusive(std::optional<std::chrono::milliseconds> timeout) const {
  auto fd = sys::open_at(dirs_->root.get(), detail::kLockFile, O_RDWR | O_CREAT, 0644);
  if (!fd) return make_error(fd.error().err, "open store lock", dirs_->root_path + "/lock");
  auto r = sys::flock_fd(fd->get(), LOCK_EX | LOCK_NB);
  if (!r) {
    if (r.error().err != EWOULDBLOCK) return r.take_error();
    log::info("waiting for the store lock held by another strata (pid %s, %s/lock)",
              holder_of(fd->get()).c_str(), dirs_->root_path.c_str());
    if (!timeout) {
      STRATA_TRY(sys::flock_fd(fd->get(), LOCK_EX));
    } else {
      auto deadline = std::chrono::steady_clock::now() + *timeout;
      while (true) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        r = sys::flock_fd(fd->get(), LOCK_EX | LOCK_NB);
        if (r) break;
        if (r.error().err != EWOULDBLOCK) return r.take_error();
        if (std::chrono::steady_clock::now() >= deadline)
          return make_error(ETIMEDOUT, "store lock",
                            dirs_->root_path + "/lock: still held by another strata (pid " +
                                holder_of(fd->get()) + ")");
      }
    }
  }
  // Only for the message above; a failure here changes nothing about the lock itself.
  std::string pid = std::to_string(sys::current_pid()) + "\n";
  if (sys::truncate_fd(fd->get(), 0)) (void)sys::write_all(fd->get(), pid.data(), pid.size());
  return StoreLock(std::move(*fd), dirs_.get());
}

namespace {

// flock `fd` with `op` (LOCK_SH or LOCK_EX), logging `waiting` once if it is not free at once.
Status flock_waiting(int fd, int op, const char* waiting) {
  auto r = sys::flock_fd(fd, op | LOCK_NB);
  if (r) return {};
  if (r.error().err != EWOULDBLOCK) return r.take_error();
  log::info("%s", waiting);
  return sys::flock_fd(fd, op);
}

}  // namespace

Result<StorePin> Store::pin() const {
  auto fd = sys::open_at(dirs_->root.get(), detail::kPinsFile, O_RDONLY | O_CREAT, 0644);
  if (!fd) return make_error(fd.error().err, "open store pins", dirs_->root_path + "/pins");
  STRATA_TRY(flock_waiting(fd->get(), LOCK_SH, "waiting for a running strata gc to finish"));
  return StorePin(std::move(*fd));
}

Result<StoreLock> Store::lock_for_gc() const {
  auto fd = sys::open_at(dirs_->root.get(), detail::kPinsFile, O_RDONLY | O_CREAT, 0644);
  if (!fd) return make_error(fd.error().err, "open store pins", dirs_->root_path + "/pins");
  STRATA_TRY(flock_waiting(fd->get(), LOCK_EX, "waiting for running pulls to finish"));
  STRATA_ASSIGN_OR_RETURN(lock, lock_exclusive());
  lock.pins_ = std::move(*fd);
  return lock;
}

}  // namespace strata::store
