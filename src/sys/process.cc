// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/process.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

namespace strata::sys {

size_t raise_nofile() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  return rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<size_t>(rl.rlim_cur);
}

size_t reserve_fd_table(size_t count) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || count == 0) return 0;
  if (rl.rlim_cur != RLIM_INFINITY) count = std::min<size_t>(count, static_cast<size_t>(rl.rlim_cur));
  // Occupying the highest slot makes the kernel size the table for it; the table never shrinks.
  int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, static_cast<int>(count - 1));
  if (fd < 0) {
    int probe = open("/", O_PATH | O_CLOEXEC);
    if (probe < 0) return 0;
    fd = fcntl(probe, F_DUPFD_CLOEXEC, static_cast<int>(count - 1));
    close(probe);
    if (fd < 0) return 0;
  }
  close(fd);
  return count;
}

}  // namespace strata::sys
