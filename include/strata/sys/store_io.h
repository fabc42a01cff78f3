// SPDX-License-Identifier: Apache-2.0
// sys (continued): the raw calls the content store needs beyond fs.h — positioned reads, appends,
// advisory locks, filesystem sync and process identity. Same rules as fs.h: every fd is borrowed,
// errors are Result/Status carrying errno and the operation, nothing is thrown or logged, EINTR is
// retried where the call is restartable.
// Thread-safety: all functions are reentrant.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "strata/base/result.h"

namespace strata::sys {

// pread(2) retried on EINTR: bytes read at `offset`, 0 at end of file.
Result<size_t> pread_some(int fd, void* buf, size_t size, off_t offset);
// False when reading the byte at `offset` would wait for I/O (preadv2 RWF_NOWAIT says EAGAIN: not in the page
// cache); true otherwise (cached, at or past the end, or the probe cannot tell).
bool byte_cached(int fd, off_t offset);
// write(2) at the current file position (O_APPEND fds) until all `size` bytes are written.
Status write_all(int fd, const void* buf, size_t size);
// flock(2); op is LOCK_SH, LOCK_EX or LOCK_UN, optionally | LOCK_NB (then EWOULDBLOCK when held).
Status flock_fd(int fd, int op);
// syncfs(2): make everything written to the filesystem holding fd durable.
Status sync_filesystem(int fd);
// Direct I/O (O_DIRECT): written data goes from the caller's buffer to the disk without a
// page-cache copy. For big outputs this process does not read back (commit's blob and layers/
// copy): no page-cache pages are allocated and filled for them (on a VM each fresh page can cost a
// host fault: about 2 ms per MB measured here, ten times the copy), the cache keeps what it held,
// and the final fsync finds the data on disk already. Buffer address, file offset and size must be
// multiples of kDirectIoAlign (the largest logical block size in use; not every libc has
// STATX_DIOALIGN).
inline constexpr size_t kDirectIoAlign = 4096;
// fcntl(F_SETFL) O_DIRECT on or off. EINVAL: the filesystem does not do direct I/O (tmpfs, ...).
Status set_direct_io(int fd, bool on);
// pwrite_all of one piece of a file written front to back, direct where it can be: `*direct` says
// whether fd has O_DIRECT now (start with the result of set_direct_io(fd, true)). An aligned piece
// goes direct; an unaligned one (the tail) turns O_DIRECT off first; a direct write the filesystem
// refuses (EINVAL) turns it off and is written through the page cache. Durability still needs an
// fsync (metadata, the disk's cache).
Status pwrite_maybe_direct(int fd, const void* buf, size_t size, off_t offset, bool* direct);
// Whether a process with this pid exists in our pid namespace (kill(pid, 0); EPERM counts as
// alive).
bool process_exists(pid_t pid);
pid_t current_pid();
uid_t effective_uid();

}  // namespace strata::sys
