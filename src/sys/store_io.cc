// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/store_io.h"

#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace strata::sys {

Result<size_t> pread_some(int fd, void* buf, size_t size, off_t offset) {
  while (true) {
    ssize_t n = ::pread(fd, buf, size, offset);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return errno_error("pread");
  }
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
