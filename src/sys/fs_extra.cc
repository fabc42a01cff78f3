// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/fs_extra.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "strata/sys/fs.h"

namespace strata::sys {

Result<size_t> read_some(int fd, void* buf, size_t size) {
  while (true) {
    ssize_t n = ::read(fd, buf, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return errno_error("read");
  }
}

Status pwrite_all(int fd, const void* buf, size_t size, off_t offset) {
  const char* p = static_cast<const char*>(buf);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("pwrite");
    }
    // A zero-byte write for a non-zero request would loop forever; the kernel only does it at the
    // file size limit, which EFBIG reports on the next call anyway.
    if (n == 0) return make_error(EFBIG, "pwrite");
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return {};
}

Status utimens_fd(int fd, const struct timespec ts[2]) {
  if (::futimens(fd, ts) < 0) return errno_error("futimens");
  return {};
}

Status remove_tree_at(int dirfd, const char* name) {
  auto st = stat_at(dirfd, name);
  if (!st) return st.take_error();
  if (!S_ISDIR(st->st_mode)) return unlink_at(dirfd, name, 0);
  // Iterative depth-first walk: a hostile tree can be deeper than any stack we would want to
  // recurse on.
  struct Level {
    UniqueFd fd;
    std::vector<Dirent> entries;
    size_t next = 0;
    std::string name;  // this directory's name in its parent
  };
  std::vector<Level> stack;
  auto open_level = [&](int parent, const std::string& nm) -> Status {
    auto fd = open_at(parent, nm.c_str(), O_RDONLY | O_DIRECTORY);
    if (!fd) return fd.take_error();
    // Removing entries as we go would shift a getdents offset; read the whole listing first.
    auto ents = read_dir(fd->get());
    if (!ents) return ents.take_error();
    stack.push_back(Level{std::move(*fd), std::move(*ents), 0, nm});
    return {};
  };
  STRATA_TRY(open_level(dirfd, name));
  while (!stack.empty()) {
    Level& top = stack.back();
    if (top.next == top.entries.size()) {
      std::string nm = top.name;
      stack.pop_back();
      int parent = stack.empty() ? dirfd : stack.back().fd.get();
      STRATA_TRY(unlink_at(parent, nm.c_str(), AT_REMOVEDIR));
      continue;
    }
    const Dirent& d = top.entries[top.next++];
    unsigned char type = d.type;
    if (type == DT_UNKNOWN) {
      auto cst = stat_at(top.fd.get(), d.name.c_str());
      if (!cst) return cst.take_error();
      type = S_ISDIR(cst->st_mode) ? DT_DIR : DT_REG;
    }
    if (type == DT_DIR) {
      std::string child = d.name;
      STRATA_TRY(open_level(top.fd.get(), child));  // invalidates `top`
    } else {
      STRATA_TRY(unlink_at(top.fd.get(), d.name.c_str(), 0));
    }
  }
  return {};
}

bool orders_metadata(int fd) {
  struct statfs fs;
  if (::fstatfs(fd, &fs) < 0) return false;
  switch (static_cast<unsigned long>(fs.f_type)) {
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
      return true;
    case EXT4_SUPER_MAGIC:
      break;
    default:
      return false;
  }
  // ext4 (and ext2/3, same magic): journaled when jbd2 runs for its device, /proc/fs/jbd2/NAME-8.
  struct stat st;
  if (::fstat(fd, &st) < 0) return false;
  char link[64], target[PATH_MAX];
  std::snprintf(link, sizeof link, "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
  ssize_t n = ::readlink(link, target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  const char* name = std::strrchr(target, '/');
  name = name ? name + 1 : target;
  std::string jbd = std::string("/proc/fs/jbd2/") + name + "-8";
  return ::access(jbd.c_str(), F_OK) == 0;
}

}  // namespace strata::sys
