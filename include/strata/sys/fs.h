// SPDX-License-Identifier: Apache-2.0
// sys: the only place raw file-system syscalls are made.
//
// Every call is fd-relative: (dirfd, name) where `name` is ONE path component (no '/'), or "" meaning dirfd
// itself (AT_EMPTY_PATH). Final components are never followed (O_NOFOLLOW / AT_SYMLINK_NOFOLLOW) unless a
// function says so. Every fd is opened O_CLOEXEC. Paths of several components (from untrusted data) go
// through open_beneath(), which never leaves the root it is given.
// Errors: Result/Status carrying errno and the operation name; no function throws or logs.
// Thread-safety: all functions are reentrant.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"

namespace strata::sys {

// openat(dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW, mode).
Result<UniqueFd> open_at(int dirfd, const char* name, int flags, mode_t mode = 0);
// Like open_at but follows a final symlink (only for start-up paths given by the user).
Result<UniqueFd> open_path(const char* path, int flags);
// Open a relative multi-component path strictly beneath rootfd: openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
// RESOLVE_NO_MAGICLINKS|RESOLVE_NO_XDEV), falling back to an O_NOFOLLOW walk where openat2 is refused.
Result<UniqueFd> open_beneath(int rootfd, std::string_view relpath, int flags, mode_t mode = 0);
// Reopen an fd (typically O_PATH) with other flags through /proc/self/fd.
Result<UniqueFd> reopen(int fd, int flags);
// Start writeback of fd's dirty pages without waiting (sync_file_range WRITE): a hint; fsync still decides.
void start_writeback(int fd);

Result<struct stat> stat_at(int dirfd, const char* name);  // never follows; "" = dirfd itself
Status mkdir_at(int dirfd, const char* name, mode_t mode);
Status mknod_at(int dirfd, const char* name, mode_t mode, dev_t dev);
Status symlink_at(const char* target, int dirfd, const char* name);
Status link_at(int olddirfd, const char* oldname, int newdirfd, const char* newname);
Status unlink_at(int dirfd, const char* name, int flags);  // flags: 0 or AT_REMOVEDIR
// renameat2; flags: 0, RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT.
Status rename_at(int olddirfd, const char* oldname, int newdirfd, const char* newname, unsigned flags);
Result<std::string> readlink_at(int dirfd, const char* name);

Status chmod_at(int dirfd, const char* name, mode_t mode);  // name must not be a symlink
Status chown_at(int dirfd, const char* name, uid_t uid, gid_t gid);
Status utimens_at(int dirfd, const char* name, const struct timespec ts[2]);
Status truncate_fd(int fd, off_t size);
Status fsync_fd(int fd, bool datasync);
Result<struct statfs> statfs_fd(int fd);

// Extended attributes of (dirfd, name), never following a final symlink; works on O_PATH fds.
// get_xattr: ENODATA when absent. list_xattr: the names.
Result<std::string> get_xattr(int dirfd, const char* name, const char* attr);
Result<std::vector<std::string>> list_xattr(int dirfd, const char* name);
Status set_xattr(int dirfd, const char* name, const char* attr, std::string_view value, int flags);
Status remove_xattr(int dirfd, const char* name, const char* attr);
// Raw forms for FUSE getxattr/listxattr that must honour a caller's buffer size (size 0 = query length).
Result<size_t> get_xattr_raw(int dirfd, const char* name, const char* attr, char* buf, size_t size);
Result<size_t> list_xattr_raw(int dirfd, const char* name, char* buf, size_t size);

// One directory entry as getdents reports it.
struct Dirent {
  std::string name;
  ino_t ino;
  unsigned char type;  // DT_*
};
// All entries of the directory dirfd (any fd on it, O_PATH allowed), without "." and "..".
Result<std::vector<Dirent>> read_dir(int dirfd);

// Copy `size` bytes of data from in to out (both at offset 0): FICLONE, else copy_file_range preserving holes
// (SEEK_DATA/SEEK_HOLE), else read/write. out must be empty.
// `will_fsync`: the caller fsyncs out next. Large copies then hand each finished chunk to writeback from a
// helper thread, so the disk writes overlap the copy instead of all waiting for the fsync.
Status copy_data(int in, int out, off_t size, bool will_fsync = false);

}  // namespace strata::sys

namespace strata::sys {
// Data-path helpers on open fds.
Status fallocate_fd(int fd, int mode, off_t offset, off_t length);
Result<size_t> copy_range(int in, off_t in_off, int out, off_t out_off, size_t len, unsigned flags);
Result<off_t> seek(int fd, off_t offset, int whence);
Result<struct stat> stat_fd(int fd);
}  // namespace strata::sys
