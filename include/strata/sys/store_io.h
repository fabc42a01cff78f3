// SPDX-License-Identifier: Apache-2.0
// sys (continued): the raw calls the content store needs beyond fs.h — positioned reads, appends,
// advisory locks, filesystem sync and process identity. Same rules as fs.h: every fd is borrowed,
// errors are Result/Status carrying errno and the operation, nothing is thrown or logged, EINTR is
// retried where the call is restartable.
// Thread-safety: all functions are reentrant.
#pragma once

#include <sys/types.h>

#include <cstddef>

#include "strata/base/result.h"

namespace strata::sys {

// pread(2) retried on EINTR: bytes read at `offset`, 0 at end of file.
Result<size_t> pread_some(int fd, void* buf, size_t size, off_t offset);
// write(2) at the current file position (O_APPEND fds) until all `size` bytes are written.
Status write_all(int fd, const void* buf, size_t size);
// flock(2); op is LOCK_SH, LOCK_EX or LOCK_UN, optionally | LOCK_NB (then EWOULDBLOCK when held).
Status flock_fd(int fd, int op);
// syncfs(2): make everything written to the filesystem holding fd durable.
Status sync_filesystem(int fd);
// Whether a process with this pid exists in our pid namespace (kill(pid, 0); EPERM counts as
// alive).
bool process_exists(pid_t pid);
pid_t current_pid();
uid_t effective_uid();

}  // namespace strata::sys
