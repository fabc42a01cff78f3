// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/process.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

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

int last_cpu_of(pid_t tid) {
  if (tid <= 0) return -1;
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(tid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // Field 2, the command name, may hold spaces and parentheses: count fields after its last ')'.
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  for (int field = 2; field < 39; ++field) {  // p is at the space before field+1
    p = std::strchr(p + 1, ' ');
    if (!p) return -1;
  }
  char* end = nullptr;
  long cpu = std::strtol(p + 1, &end, 10);
  if (end == p + 1 || cpu < 0 || cpu >= CPU_SETSIZE) return -1;
  return static_cast<int>(cpu);
}

std::string boot_id() {
  int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return {};
  std::string id(buf, static_cast<size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id.find('/') == std::string::npos ? id : std::string();
}

}  // namespace strata::sys
