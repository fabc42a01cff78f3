// SPDX-License-Identifier: Apache-2.0
// sys (continued): process and mount-table calls the `strata` tool needs — running a helper program
// (stratafs, fusermount3, umount) and waiting for it, finding a daemon by its command line, reading
// the mount table, locating the running executable. Same rules as fs.h: errors are Result/Status
// with errno and operation, nothing is thrown or logged. Thread-safety: reentrant.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "strata/base/result.h"

namespace strata::sys {

// posix_spawn argv[0] (a path, or a name looked up in PATH when it has no '/'), inheriting stdio,
// and wait for it. Returns its exit status (128+N when killed by signal N).
Result<int> run_program(const std::vector<std::string>& argv);
// Whether `path` (made absolute by realpath) is a mount point in /proc/self/mountinfo.
bool is_mount_point(const std::string& path);
// The pid of a process whose argv[0] ends in `exe_suffix` and that has `arg` among its arguments;
// -1 when none.
pid_t find_process(const std::string& exe_suffix, const std::string& arg);
// /proc/self/exe, resolved.
Result<std::string> self_exe();
// realpath(3).
Result<std::string> real_path(const std::string& path);
// Whether `path` names an executable file (access X_OK).
bool is_executable(const std::string& path);
// `n` random bytes as hex (getrandom).
Result<std::string> random_hex(size_t n);

}  // namespace strata::sys
