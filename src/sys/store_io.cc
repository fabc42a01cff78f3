// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/store_io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "strata/sys/fs_extra.h"

namespace strata::sys {

Result<size_t> pread_some(int fd, void* buf, size_t size, off_t offset) {
  while (true) {
    ssize_t n = ::pread(fd, buf, size, offset);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return errno_error("pread");
  }
}

bool byte_cached(int fd, off_t offset) {
  char probe;
  iovec v{&probe, 1};
  return !(::preadv2(fd, &v, 1, offset, RWF_NOWAIT) < 0 && errno == EAGAIN);
}

Status write_all(int fd, const void* buf, size_t size) {
  const char* p = static_cast<const char*>(buf);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("write");
    }
    // Zero for a non-zero request only happens at the file size limit; EFBIG says so.
    if (n == 0) return make_error(EFBIG, "write");
    p += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

Status flock_fd(int fd, int op) {
  while (::flock(fd, op) < 0) {
    if (errno != EINTR) return errno_error("flock");
  }
  return {};
}

Status sync_filesystem(int fd) {
  if (::syncfs(fd) < 0) return errno_error("syncfs");
  return {};
}

Status set_direct_io(int fd, bool on) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return errno_error("fcntl F_GETFL");
  int want = on ? (fl | O_DIRECT) : (fl & ~O_DIRECT);
  if (want != fl && ::fcntl(fd, F_SETFL, want) < 0) return errno_error("fcntl O_DIRECT");
  return {};
}

Status pwrite_maybe_direct(int fd, const void* buf, size_t size, off_t offset, bool* direct) {
  constexpr uintptr_t kMask = kDirectIoAlign - 1;
  bool aligned = (reinterpret_cast<uintptr_t>(buf) & kMask) == 0 && (size & kMask) == 0 &&
                 (static_cast<uintptr_t>(offset) & kMask) == 0;
  if (*direct && aligned) {
    const char* p = static_cast<const char*>(buf);
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd, p + done, size - done, offset + static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EINVAL) return errno_error("pwrite");
      if (n < 0 || (static_cast<size_t>(n) & kMask) != 0) {
        // Refused (an alignment this device wants beyond ours), or a short write that leaves the
        // rest unaligned: the page cache takes the rest.
        if (n > 0) done += static_cast<size_t>(n);
        break;
      }
      if (n == 0) return make_error(EFBIG, "pwrite");
      done += static_cast<size_t>(n);
    }
    if (done == size) return {};
    buf = p + done;
    size -= done;
    offset += static_cast<off_t>(done);
  }
  if (*direct) {
    STRATA_TRY(set_direct_io(fd, false));
    *direct = false;
  }
  return pwrite_all(fd, buf, size, offset);
}

bool process_exists(pid_t pid) {
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

pid_t current_pid() {
  return ::getpid();
}

uid_t effective_uid() {
  return ::geteuid();
}

}  // namespace strata::sys
