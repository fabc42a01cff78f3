// SPDX-License-Identifier: Apache-2.0
// sys (continued): fd-relative helpers beyond fs.h (the layer unpacker's, what a filesystem guarantees). Same rules as fs.h:
// (dirfd, name) with `name` ONE component, final components never followed, every fd O_CLOEXEC,
// errors as Result/Status with errno and operation, nothing thrown or logged.
// Thread-safety: all functions are reentrant.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstddef>

#include "strata/base/result.h"

namespace strata::sys {

// read(2) retried on EINTR: bytes read, 0 at end of input.
Result<size_t> read_some(int fd, void* buf, size_t size);
// pwrite(2) until all `size` bytes are written at `offset` (retried on EINTR and short writes).
Status pwrite_all(int fd, const void* buf, size_t size, off_t offset);
// futimens(2): times of the object fd refers to (not O_PATH).
Status utimens_fd(int fd, const struct timespec ts[2]);
// Remove (dirfd, name) and, if it is a directory, everything below it. Symlinks are removed, never
// followed; the walk descends through O_NOFOLLOW|O_DIRECTORY fds only, so it cannot leave the tree
// it was given. ENOENT when (dirfd, name) does not exist.
Status remove_tree_at(int dirfd, const char* name);

// Whether the filesystem holding fd writes metadata changes to disk in the order they were made, so that after
// a crash a later change (a rename) is never there without an earlier one (a record made before it): XFS,
// btrfs and ext4 with a journal (a jbd2 instance for its device). tmpfs keeps nothing across a crash, so
// order is moot there: true as well. Anything else, or unknown: false.
bool orders_metadata(int fd);

}  // namespace strata::sys
