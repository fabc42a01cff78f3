// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <string>

#include "strata/base/unique_fd.h"

namespace strata::sys {
namespace {

Result<std::string> read_small(const char* path) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return errno_error("open", path);
  std::string out;
  char buf[256];
  while (out.size() < 4096) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<uint32_t> read_id(const char* path) {
  auto s = read_small(path);
  if (!s) return s.take_error();
  uint32_t v = 0;
  const char* b = s->data();
  const char* e = b + s->size();
  while (e > b && (e[-1] == '\n' || e[-1] == ' ')) --e;
  auto [end, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || end != e) return make_error(EINVAL, "parse", path);
  return v;
}

}  // namespace

bool in_initial_userns() {
  // The initial namespace maps every id onto itself: "0 0 4294967295".
  auto s = read_small("/proc/self/uid_map");
  if (!s) return false;
  unsigned long long a = 1, b = 1, c = 0;
  if (std::sscanf(s->c_str(), "%llu %llu %llu", &a, &b, &c) != 3) return false;
  return a == 0 && b == 0 && c == 4294967295ULL && s->find('\n') + 1 == s->size();
}

Result<uint32_t> overflow_uid() { return read_id("/proc/sys/kernel/overflowuid"); }
Result<uint32_t> overflow_gid() { return read_id("/proc/sys/kernel/overflowgid"); }

}  // namespace strata::sys
