// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/tool_io.h"

#include <dirent.h>
#include <limits.h>
#include <spawn.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

extern char** environ;

namespace strata::sys {

Result<int> run_program(const std::vector<std::string>& argv) {
  if (argv.empty()) return make_error(EINVAL, "spawn");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ);
  if (rc != 0) return make_error(rc, "spawn", argv[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return errno_error("waitpid", argv[0]);
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

Result<std::string> real_path(const std::string& path) {
  char buf[PATH_MAX];
  if (!::realpath(path.c_str(), buf)) return errno_error("realpath", path);
  return std::string(buf);
}

// Mountinfo escapes space, tab, newline and backslash as \ooo.
static std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out.push_back(static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool is_mount_point(const std::string& path) {
  auto rp = real_path(path);
  if (!rp) return false;
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string a, b, c, d, mnt;
    ss >> a >> b >> c >> d >> mnt;
    if (unescape(mnt) == *rp) return true;
  }
  return false;
}

pid_t find_process(const std::string& exe_suffix, const std::string& arg) {
  DIR* d = opendir("/proc");
  if (!d) return -1;
  pid_t found = -1;
  while (dirent* e = readdir(d)) {
    char* end;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    std::string cur;
    for (char c : all) {
      if (c == '\0') { args.push_back(cur); cur.clear(); } else { cur.push_back(c); }
    }
    if (args.empty() || args[0].size() < exe_suffix.size() ||
        args[0].compare(args[0].size() - exe_suffix.size(), exe_suffix.size(), exe_suffix) != 0) {
      continue;
    }
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == arg) { found = static_cast<pid_t>(pid); break; }
    }
    if (found > 0) break;
  }
  closedir(d);
  return found;
}

Result<std::string> self_exe() { return real_path("/proc/self/exe"); }

bool is_executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

Result<std::string> random_hex(size_t n) {
  std::string bytes(n, '\0');
  if (getrandom(bytes.data(), n, 0) != static_cast<ssize_t>(n)) return errno_error("getrandom");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace strata::sys
