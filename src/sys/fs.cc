// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/fs.h"

#include <dirent.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

namespace strata::sys {
namespace {

void at_name(const char* name, int* flags) {
  if (name[0] == '\0') *flags |= AT_EMPTY_PATH;
}

}  // namespace

Result<UniqueFd> open_at(int dirfd, const char* name, int flags, mode_t mode) {
  int fd = ::openat(dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return errno_error("openat", name);
  return UniqueFd(fd);
}

Result<UniqueFd> open_path(const char* path, int flags) {
  int fd = ::open(path, flags | O_CLOEXEC);
  if (fd < 0) return errno_error("open", path);
  return UniqueFd(fd);
}

Result<UniqueFd> reopen(int fd, int flags) {
  char p[64];
  snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
  // Following is the point here: /proc/self/fd/N is a magic link to the object fd refers to.
  int nfd = ::open(p, (flags | O_CLOEXEC) & ~O_NOFOLLOW);
  if (nfd < 0) return errno_error("reopen", p);
  return UniqueFd(nfd);
}

void start_writeback(int fd) { (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); }

Result<UniqueFd> open_beneath(int rootfd, std::string_view relpath, int flags, mode_t mode) {
  std::string path(relpath);
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  long fd = ::syscall(SYS_openat2, rootfd, path.c_str(), &how, sizeof how);
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  if (errno != ENOSYS && errno != EPERM) return errno_error("openat2", path);
  // seccomp filters (container runtimes) can refuse openat2: walk one O_NOFOLLOW component at a time.
  UniqueFd cur;
  int at = rootfd;
  size_t pos = 0;
  while (true) {
    size_t slash = path.find('/', pos);
    std::string comp = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    bool last = slash == std::string::npos;
    if (comp == "..") return make_error(EXDEV, "open beneath", path);
    if (!comp.empty() && comp != ".") {
      auto next = open_at(at, comp.c_str(), last ? flags : (O_PATH | O_DIRECTORY), mode);
      if (!next) return next.take_error();
      cur = std::move(*next);
      at = cur.get();
    }
    if (last) break;
    pos = slash + 1;
  }
  if (!cur) return open_at(rootfd, ".", flags);
  return cur;
}

Result<struct stat> stat_at(int dirfd, const char* name) {
  struct stat st;
  int flags = AT_SYMLINK_NOFOLLOW;
  at_name(name, &flags);
  if (::fstatat(dirfd, name, &st, flags) < 0) return errno_error("fstatat", name);
  return st;
}

Status mkdir_at(int dirfd, const char* name, mode_t mode) {
  if (::mkdirat(dirfd, name, mode) < 0) return errno_error("mkdirat", name);
  return {};
}

Status mknod_at(int dirfd, const char* name, mode_t mode, dev_t dev) {
  if (::mknodat(dirfd, name, mode, dev) < 0) return errno_error("mknodat", name);
  return {};
}

Status symlink_at(const char* target, int dirfd, const char* name) {
  if (::symlinkat(target, dirfd, name) < 0) return errno_error("symlinkat", name);
  return {};
}

Status link_at(int olddirfd, const char* oldname, int newdirfd, const char* newname) {
  int flags = 0;
  at_name(oldname, &flags);
  if (::linkat(olddirfd, oldname, newdirfd, newname, flags) < 0)
    return errno_error("linkat", newname);
  return {};
}

Status unlink_at(int dirfd, const char* name, int flags) {
  if (::unlinkat(dirfd, name, flags) < 0) return errno_error("unlinkat", name);
  return {};
}

Status rename_at(int olddirfd, const char* oldname, int newdirfd, const char* newname, unsigned flags) {
  if (::renameat2(olddirfd, oldname, newdirfd, newname, flags) < 0) return errno_error("renameat2", oldname);
  return {};
}

Result<std::string> readlink_at(int dirfd, const char* name) {
  std::string buf(256, '\0');
  while (true) {
    ssize_t n = ::readlinkat(dirfd, name, buf.data(), buf.size());
    if (n < 0) return errno_error("readlinkat", name);
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 4);
  }
}

Status chmod_at(int dirfd, const char* name, mode_t mode) {
  int r = name[0] == '\0' ? ::fchmod(dirfd, mode) : ::fchmodat(dirfd, name, mode, 0);
  if (r < 0 && name[0] == '\0' && errno == EBADF) {
    // O_PATH descriptors refuse fchmod: go through the magic link.
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", dirfd);
    r = ::chmod(p, mode);
  }
  if (r < 0) return errno_error("chmod", name);
  return {};
}

Status chown_at(int dirfd, const char* name, uid_t uid, gid_t gid) {
  int flags = AT_SYMLINK_NOFOLLOW;
  at_name(name, &flags);
  if (::fchownat(dirfd, name, uid, gid, flags) < 0) return errno_error("chown", name);
  return {};
}

Status utimens_at(int dirfd, const char* name, const struct timespec ts[2]) {
  int r;
  if (name[0] == '\0') {
    char p[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", dirfd);
    r = ::utimensat(AT_FDCWD, p, ts, 0);
  } else {
    r = ::utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
  }
  if (r < 0) return errno_error("utimensat", name);
  return {};
}

Status truncate_fd(int fd, off_t size) {
  if (::ftruncate(fd, size) < 0) return errno_error("ftruncate");
  return {};
}

Status fsync_fd(int fd, bool datasync) {
  if ((datasync ? ::fdatasync(fd) : ::fsync(fd)) < 0) return errno_error("fsync");
  return {};
}

Result<struct statfs> statfs_fd(int fd) {
  struct statfs s;
  if (::fstatfs(fd, &s) < 0) return errno_error("fstatfs");
  return s;
}

Result<std::vector<Dirent>> read_dir(int dirfd) {
  auto fd = open_at(dirfd, ".", O_RDONLY | O_DIRECTORY);
  if (!fd) return fd.take_error();
  std::vector<Dirent> out;
  alignas(8) char buf[32768];
  while (true) {
    long n = ::syscall(SYS_getdents64, fd->get(), buf, sizeof buf);
    if (n < 0) return errno_error("getdents64");
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      off += d->d_reclen;
      const char* nm = d->d_name;
      if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0'))) continue;
      out.push_back(Dirent{nm, d->d_ino, d->d_type});
    }
  }
  return out;
}

}  // namespace strata::sys

namespace strata::sys {

Status fallocate_fd(int fd, int mode, off_t offset, off_t length) {
  if (::fallocate(fd, mode, offset, length) < 0) return errno_error("fallocate");
  return {};
}

Result<size_t> copy_range(int in, off_t in_off, int out, off_t out_off, size_t len, unsigned flags) {
  loff_t io = in_off, oo = out_off;
  ssize_t n = ::copy_file_range(in, &io, out, &oo, len, flags);
  if (n < 0) return errno_error("copy_file_range");
  return static_cast<size_t>(n);
}

Result<off_t> seek(int fd, off_t offset, int whence) {
  off_t r = ::lseek(fd, offset, whence);
  if (r < 0) return errno_error("lseek");
  return r;
}

Result<struct stat> stat_fd(int fd) {
  struct stat st;
  if (::fstat(fd, &st) < 0) return errno_error("fstat");
  return st;
}

}  // namespace strata::sys
