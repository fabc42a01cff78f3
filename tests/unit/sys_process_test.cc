// SPDX-License-Identifier: Apache-2.0
// sys/process.h: the descriptor table is grown once, to the size asked (capped by RLIMIT_NOFILE), and nothing
// is left open. Runs as its own process: the table of a fresh process is small, so the growth shows. And a
// thread's last CPU is read from /proc whatever its name.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "strata/sys/process.h"

namespace {

namespace sys = strata::sys;

// The kernel's table size (/proc/self/status "FDSize:"): slots allocated, not fds open.
size_t fd_table_size() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("FDSize:", 0) == 0) return std::stoul(line.substr(7));
  return 0;
}

size_t open_fds() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  while (readdir(d)) ++n;
  closedir(d);
  return n;
}

size_t soft_limit() {
  struct rlimit rl;
  EXPECT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  return rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<size_t>(rl.rlim_cur);
}

TEST(SysProcess, RaiseNofileReachesTheHardLimit) {
  size_t now = sys::raise_nofile();
  struct rlimit rl;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  EXPECT_EQ(rl.rlim_cur, rl.rlim_max);
  EXPECT_EQ(now, soft_limit());
}

TEST(SysProcess, ReserveGrowsTheTableAndLeavesNothingOpen) {
  sys::raise_nofile();
  const size_t want = 3000;
  const size_t expect = std::min(want, soft_limit());
  size_t before = fd_table_size();
  ASSERT_GT(before, 0u) << "no FDSize in /proc/self/status";
  ASSERT_LT(before, expect) << "the table is already this large: the test shows nothing";
  size_t fds = open_fds();
  EXPECT_EQ(sys::reserve_fd_table(want), expect);
  EXPECT_GE(fd_table_size(), expect);
  EXPECT_EQ(open_fds(), fds);
  // Asking for less than there is changes nothing.
  size_t grown = fd_table_size();
  EXPECT_EQ(sys::reserve_fd_table(16), 16u);
  EXPECT_EQ(fd_table_size(), grown);
}

TEST(SysProcess, ReserveIsCappedByTheSoftLimit) {
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit low = old;
  low.rlim_cur = 512;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  EXPECT_EQ(sys::reserve_fd_table(1 << 20), 512u);
  EXPECT_EQ(sys::reserve_fd_table(0), 0u);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
}

// A thread pinned to each allowed CPU in turn reports that CPU; its name has the characters that could
// confuse a parser of /proc/TID/stat (spaces and parentheses).
TEST(SysProcess, LastCpuOfAThread) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int checked = 0;
  std::thread t([&] {
    pthread_setname_np(pthread_self(), "a) b (c) 1 2 3");
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) continue;
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      if (sched_setaffinity(0, sizeof one, &one) != 0) continue;
      EXPECT_EQ(sys::last_cpu_of(gettid()), cpu);
      ++checked;
    }
  });
  t.join();
  EXPECT_GE(checked, 1);
}

TEST(SysProcess, LastCpuOfNoThread) {
  EXPECT_EQ(sys::last_cpu_of(0), -1);
  EXPECT_EQ(sys::last_cpu_of(-5), -1);
  EXPECT_EQ(sys::last_cpu_of(0x7ffffff0), -1);  // above pid_max
}

}  // namespace
