// SPDX-License-Identifier: Apache-2.0
// Attributes, extended attributes and opening files: anything that changes an object copies it up first.
#include <fcntl.h>

#include <cstring>

#include "strata/merge/overlay.h"
#include "strata/sys/fs.h"
#include "strata/whiteout/whiteout.h"

namespace strata::merge {

namespace wo = strata::whiteout;

namespace {

// fuse-overlayfs's override_stat xattrs are the union's record of owner and mode (xattr_permissions), never
// user data: hidden like the overlay's own names, whether this mount uses them or not.
bool is_override_xattr(std::string_view name) { return name == kOverrideStatUser || name == kOverrideStatPrivileged; }

std::optional<std::string> layer_name(const std::string& name, bool userxattr) {
  if (is_override_xattr(name)) return std::nullopt;
  return wo::escape_xattr(name, userxattr);
}

}  // namespace

Result<struct stat> Overlay::setattr(Node* n, const SetAttr& a) {
  if (!has_upper_) return make_error(EROFS, "setattr");
  // Truncating to 0 needs none of the old data: copy up the metadata only.
  bool with_data = !((a.valid & SetAttr::kSize) && a.size == 0);
  STRATA_TRY(ensure_upper(n, with_data));
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  int dfd = loc->dir->get();
  const char* nm = loc->name.c_str();
  if (a.valid & (SetAttr::kUid | SetAttr::kGid | SetAttr::kMode)) {
    if ((a.valid & SetAttr::kMode) && n->type == S_IFLNK) return make_error(EOPNOTSUPP, "chmod", "symlink");
    auto real = sys::stat_at(dfd, nm);
    if (!real) return real.take_error();
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::optional<mode_t> mode;
    if (a.valid & SetAttr::kUid) uid = ids_.uid_to_disk(a.uid);
    if (a.valid & SetAttr::kGid) gid = ids_.gid_to_disk(a.gid);
    if (a.valid & SetAttr::kMode) mode = a.mode;
    STRATA_TRY(write_owner(dfd, nm, *real, uid, gid, mode, false));
  }
  if (a.valid & SetAttr::kSize) {
    if (n->type != S_IFREG) return make_error(n->is_dir() ? EISDIR : EINVAL, "truncate");
    // A handle opened for writing is on the upper copy; a read-only one may still be on the lower file.
    if (a.file && (a.file->flags() & O_ACCMODE) != O_RDONLY) {
      STRATA_TRY(sys::truncate_fd(a.file->fd(), a.size));
    } else {
      auto fd = sys::open_at(dfd, nm, O_WRONLY);
      if (!fd) return fd.take_error();
      STRATA_TRY(sys::truncate_fd(fd->get(), a.size));
    }
  }
  if (a.valid & (SetAttr::kAtime | SetAttr::kMtime)) {
    struct timespec ts[2];
    ts[0] = (a.valid & SetAttr::kAtime) ? a.atime : timespec{0, UTIME_OMIT};
    ts[1] = (a.valid & SetAttr::kMtime) ? a.mtime : timespec{0, UTIME_OMIT};
    STRATA_TRY(sys::utimens_at(dfd, nm, ts));
  }
  auto st = sys::stat_at(dfd, nm);
  if (!st) return st.take_error();
  return fix_stat(n, *st);
}

Result<std::unique_ptr<File>> Overlay::open(Node* n, int flags) {
  if (n->is_dir()) return make_error(EISDIR, "open");
  bool write = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
  if (write) {
    if (!has_upper_) return make_error(EROFS, "open");
    STRATA_TRY(ensure_upper(n, !(flags & O_TRUNC)));
  }
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  int oflags = flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
  Result<UniqueFd> fd = loc->name.empty() ? sys::reopen(loc->dir->get(), oflags)
                                          : sys::open_at(loc->dir->get(), loc->name.c_str(), oflags);
  if (!fd) return fd.take_error();
  return std::make_unique<File>(this, table_.ref(n), std::move(*fd), loc->layer == 0 && has_upper_, flags);
}

Status Overlay::fsyncdir(Node* n, bool datasync) {
  if (!has_upper_ || n->top() != 0) return {};
  auto fd = dir_fd_layer(n, 0);
  if (!fd) return fd.take_error();
  auto rd = sys::reopen((*fd)->get(), O_RDONLY | O_DIRECTORY);
  if (!rd) return rd.take_error();
  return sys::fsync_fd(rd->get(), datasync);
}

bool Overlay::userxattr() const { return userxattr_; }

Result<size_t> Overlay::getxattr(Node* n, const std::string& name, char* buf, size_t size) {
  auto real = layer_name(name, userxattr());
  if (!real) return make_error(ENODATA, "getxattr", name);
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  return sys::get_xattr_raw(loc->dir->get(), loc->name.c_str(), real->c_str(), buf, size);
}

Result<size_t> Overlay::listxattr(Node* n, char* buf, size_t size) {
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  auto names = sys::list_xattr(loc->dir->get(), loc->name.c_str());
  if (!names) return names.take_error();
  std::string out;
  for (const auto& x : *names) {
    auto shown = wo::unescape_xattr(x, userxattr());
    if (!shown || is_override_xattr(x)) continue;
    out += *shown;
    out.push_back('\0');
  }
  if (size == 0) return out.size();
  if (out.size() > size) return make_error(ERANGE, "listxattr");
  std::memcpy(buf, out.data(), out.size());
  return out.size();
}

Status Overlay::setxattr(Node* n, const std::string& name, std::string_view value, int flags) {
  auto real = layer_name(name, userxattr());
  if (!real) return make_error(EPERM, "setxattr", name);
  if (!has_upper_) return make_error(EROFS, "setxattr");
  STRATA_TRY(ensure_upper(n));
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  return sys::set_xattr(loc->dir->get(), loc->name.c_str(), real->c_str(), value, flags);
}

Status Overlay::removexattr(Node* n, const std::string& name) {
  auto real = layer_name(name, userxattr());
  if (!real) return make_error(EPERM, "removexattr", name);
  if (!has_upper_) return make_error(EROFS, "removexattr");
  if (n->top() != 0) {
    // Nothing to remove: answer without copying up (overlayfs does the same).
    auto loc = locate(n);
    if (!loc) return loc.take_error();
    auto has = sys::get_xattr_raw(loc->dir->get(), loc->name.c_str(), real->c_str(), nullptr, 0);
    if (!has) return has.take_error();
  }
  STRATA_TRY(ensure_upper(n));
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  return sys::remove_xattr(loc->dir->get(), loc->name.c_str(), real->c_str());
}

}  // namespace strata::merge
