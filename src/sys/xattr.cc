// SPDX-License-Identifier: Apache-2.0
// Extended attributes on (dirfd, name) without following symlinks. Linux 6.13 added the *xattrat syscalls,
// which take a dirfd (O_PATH allowed); older kernels get the same effect through /proc/self/fd/N/name.
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "strata/sys/fs.h"

namespace strata::sys {
namespace {

#if defined(__x86_64__) || defined(__aarch64__)
constexpr long kSysSetxattrat = 463;
constexpr long kSysGetxattrat = 464;
constexpr long kSysListxattrat = 465;
constexpr long kSysRemovexattrat = 466;
#define STRATA_HAVE_XATTRAT 1
#endif

struct XattrArgs {
  uint64_t value;
  uint32_t size;
  uint32_t flags;
};

std::atomic<bool> g_xattrat{true};

unsigned at_flags(const char* name) { return AT_SYMLINK_NOFOLLOW | (name[0] ? 0 : AT_EMPTY_PATH); }

// /proc/self/fd/N[/name]; when name is empty the magic link itself must be followed.
struct ProcPath {
  char buf[4200];
  bool follow;
  ProcPath(int dirfd, const char* name) {
    follow = name[0] == '\0';
    if (follow)
      snprintf(buf, sizeof buf, "/proc/self/fd/%d", dirfd);
    else
      snprintf(buf, sizeof buf, "/proc/self/fd/%d/%s", dirfd, name);
  }
};

bool use_xattrat() {
#ifdef STRATA_HAVE_XATTRAT
  return g_xattrat.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

// True if procfs must answer instead: the syscall is missing (switch for the rest of the process), or the fd is
// O_PATH with an empty name, which the *xattrat calls refuse with EBADF.
bool missing(long r, const char* name) {
  if (r >= 0) return false;
  if (errno == ENOSYS) {
    g_xattrat = false;
    return true;
  }
  return errno == EBADF && name[0] == '\0';
}

}  // namespace

Result<size_t> get_xattr_raw(int dirfd, const char* name, const char* attr, char* buf, size_t size) {
#ifdef STRATA_HAVE_XATTRAT
  if (use_xattrat()) {
    XattrArgs a{reinterpret_cast<uint64_t>(buf), static_cast<uint32_t>(size), 0};
    long r = ::syscall(kSysGetxattrat, dirfd, name, at_flags(name), attr, &a, sizeof a);
    if (r >= 0) return static_cast<size_t>(r);
    if (!missing(r, name)) return errno_error("getxattr", attr);
  }
#endif
  ProcPath p(dirfd, name);
  ssize_t r = p.follow ? ::getxattr(p.buf, attr, buf, size) : ::lgetxattr(p.buf, attr, buf, size);
  if (r < 0) return errno_error("getxattr", attr);
  return static_cast<size_t>(r);
}

Result<size_t> list_xattr_raw(int dirfd, const char* name, char* buf, size_t size) {
#ifdef STRATA_HAVE_XATTRAT
  if (use_xattrat()) {
    long r = ::syscall(kSysListxattrat, dirfd, name, at_flags(name), buf, size);
    if (r >= 0) return static_cast<size_t>(r);
    if (!missing(r, name)) return errno_error("listxattr", name);
  }
#endif
  ProcPath p(dirfd, name);
  ssize_t r = p.follow ? ::listxattr(p.buf, buf, size) : ::llistxattr(p.buf, buf, size);
  if (r < 0) return errno_error("listxattr", name);
  return static_cast<size_t>(r);
}

Result<std::string> get_xattr(int dirfd, const char* name, const char* attr) {
  std::string v(256, '\0');
  while (true) {
    auto r = get_xattr_raw(dirfd, name, attr, v.data(), v.size());
    if (r) {
      v.resize(*r);
      return v;
    }
    if (r.error().err != ERANGE) return r.take_error();
    auto len = get_xattr_raw(dirfd, name, attr, nullptr, 0);
    if (!len) return len.take_error();
    v.resize(*len + 1);
  }
}

Result<std::vector<std::string>> list_xattr(int dirfd, const char* name) {
  std::string buf(1024, '\0');
  while (true) {
    auto r = list_xattr_raw(dirfd, name, buf.data(), buf.size());
    if (r) {
      buf.resize(*r);
      break;
    }
    if (r.error().err != ERANGE) return r.take_error();
    auto len = list_xattr_raw(dirfd, name, nullptr, 0);
    if (!len) return len.take_error();
    buf.resize(*len + 1);
  }
  std::vector<std::string> out;
  for (size_t pos = 0; pos < buf.size();) {
    size_t end = buf.find('\0', pos);
    if (end == std::string::npos) end = buf.size();
    if (end > pos) out.emplace_back(buf.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

Status set_xattr(int dirfd, const char* name, const char* attr, std::string_view value, int flags) {
#ifdef STRATA_HAVE_XATTRAT
  if (use_xattrat()) {
    XattrArgs a{reinterpret_cast<uint64_t>(value.data()), static_cast<uint32_t>(value.size()),
                static_cast<uint32_t>(flags)};
    long r = ::syscall(kSysSetxattrat, dirfd, name, at_flags(name), attr, &a, sizeof a);
    if (r >= 0) return {};
    if (!missing(r, name)) return errno_error("setxattr", attr);
  }
#endif
  ProcPath p(dirfd, name);
  int r = p.follow ? ::setxattr(p.buf, attr, value.data(), value.size(), flags)
                   : ::lsetxattr(p.buf, attr, value.data(), value.size(), flags);
  if (r < 0) return errno_error("setxattr", attr);
  return {};
}

Status remove_xattr(int dirfd, const char* name, const char* attr) {
#ifdef STRATA_HAVE_XATTRAT
  if (use_xattrat()) {
    long r = ::syscall(kSysRemovexattrat, dirfd, name, at_flags(name), attr);
    if (r >= 0) return {};
    if (!missing(r, name)) return errno_error("removexattr", attr);
  }
#endif
  ProcPath p(dirfd, name);
  int r = p.follow ? ::removexattr(p.buf, attr) : ::lremovexattr(p.buf, attr);
  if (r < 0) return errno_error("removexattr", attr);
  return {};
}

}  // namespace strata::sys
