// SPDX-License-Identifier: Apache-2.0
// sys: the process's descriptor limits and table, where a thread runs, the boot it runs in. Best effort: nothing thrown or
// logged.
// Thread-safety: reentrant; reserve_fd_table is meant for start-up, before the process's threads exist.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace strata::sys {

// Raise the soft RLIMIT_NOFILE to the hard limit. Returns the soft limit in force afterwards.
size_t raise_nofile();

// Grow the kernel's descriptor table now to hold `count` fds (capped by RLIMIT_NOFILE). Growing it later,
// once the process has threads, waits for an RCU grace period (expand_fdtable: ~10 ms on these VMs) each
// time the table doubles, in the middle of whatever request opened the fd. Returns the size reserved.
size_t reserve_fd_table(size_t count);

// The CPU thread `tid` (in this process's pid namespace) last ran on, from /proc/TID/stat; -1 if unknown.
int last_cpu_of(pid_t tid);

// This boot's id (/proc/sys/kernel/random/boot_id, 36 characters); empty if unreadable.
std::string boot_id();

}  // namespace strata::sys
