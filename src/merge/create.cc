// SPDX-License-Identifier: Apache-2.0
// Creating names in the merged view: mknod, mkdir, symlink, link, create. New objects always go to the upper;
// a whiteout in the way is replaced atomically (a directory replacing one becomes opaque, hiding what the
// whiteout hid).
#include <unistd.h>

#include "strata/merge/overlay.h"
#include "strata/sys/fs.h"
#include "strata/whiteout/whiteout.h"

namespace strata::merge {

namespace wo = strata::whiteout;

Status Overlay::link_whiteout(int dirfd, const char* name) {
  auto r = sys::link_at(work_.get(), kSharedWhiteout, dirfd, name);
  if (r) return r;
  int e = r.error().err;
  if (e == EMLINK || e == ENOENT) {
    // Full (or gone): start a new shared whiteout, then link again.
    std::lock_guard lk(whiteout_mu_);
    std::string tmp = tmp_name();
    if (sys::mknod_at(work_.get(), tmp.c_str(), S_IFCHR | 0, 0) &&
        !sys::rename_at(work_.get(), tmp.c_str(), work_.get(), kSharedWhiteout, 0)) {
      (void)sys::unlink_at(work_.get(), tmp.c_str(), 0);  // cleaned at next mount otherwise
    }
    r = sys::link_at(work_.get(), kSharedWhiteout, dirfd, name);
    if (r) return r;
  }
  return sys::mknod_at(dirfd, name, S_IFCHR | 0, 0);
}

Status Overlay::make_whiteout(int dirfd, const std::string& name) {
  if (can_mknod_whiteout_) {
    auto r = link_whiteout(dirfd, name.c_str());
    if (r || r.error().err != EPERM) return r;
  }
  // Rootless: fuse-overlayfs's `.wh.NAME` files, which strata and fuse-overlayfs read (the kernel does not).
  auto fd = sys::open_at(dirfd, wo::whiteout_name(name).c_str(), O_WRONLY | O_CREAT | O_EXCL, 0);
  if (!fd) return fd.take_error();
  return {};
}

Status Overlay::set_owner(int dirfd, const std::string& name, const Caller& c, int upperfd, mode_t mode) {
  uid_t uid = ids_.uid_to_disk(c.uid);
  gid_t gid = ids_.gid_to_disk(c.gid);
  // Created with the daemon's ids, which are the caller's: nothing to change (a setgid parent's group was
  // applied by the kernel already).
  if (uid == euid_ && gid == egid_ && !override_xattr_) return {};
  auto pst = sys::stat_at(upperfd, "");
  if (!pst) return pst.take_error();
  auto parent = effective_owner(upperfd, "", *pst);
  if (!parent) return parent.take_error();
  if (parent->mode & S_ISGID) gid = *parent->gid;  // BSD group semantics of a setgid directory
  if (uid == euid_ && gid == egid_ && !override_xattr_) return {};
  auto st = sys::stat_at(dirfd, name.c_str());
  if (!st) return st.take_error();
  STRATA_TRY(write_owner(dirfd, name.c_str(), *st, uid, gid, std::nullopt, true));
  if (override_xattr_) return {};
  // chown clears set-id bits on non-directories; put back what the caller asked for.
  if ((mode & (S_ISUID | S_ISGID)) && !S_ISDIR(mode) && !S_ISLNK(mode))
    STRATA_TRY(sys::chmod_at(dirfd, name.c_str(), mode & 07777));
  return {};
}

template <typename Make>
Result<Entry> Overlay::create_object(Node* parent, const std::string& name, mode_t type, const Caller& c,
                                     Make make) {
  if (name.size() > 255) return make_error(ENAMETOOLONG, "create", name);
  if (wo::is_reserved_name(name)) return make_error(EINVAL, "create", name + ": reserved for whiteouts");
  if (!has_upper_) return make_error(EROFS, "create", name);
  STRATA_TRY(ensure_upper(parent));
  auto ufd_r = upper_dir_fd(parent);
  if (!ufd_r) return ufd_r.take_error();
  int ufd = (*ufd_r)->get();
  auto us = upper_state(ufd, name);
  if (!us) return us.take_error();
  bool is_dir = type == S_IFDIR;
  bool opaque = false;
  switch (us->kind) {
    case UpperState::kEntry:
      return make_error(EEXIST, "create", name);
    case UpperState::kNone: {
      auto lower = lower_has(parent, name);
      if (!lower) return lower.take_error();
      if (*lower) return make_error(EEXIST, "create", name);
      STRATA_TRY(make(ufd, name));
      auto own = set_owner(ufd, name, c, ufd, type);
      if (!own) {
        (void)sys::unlink_at(ufd, name.c_str(), is_dir ? AT_REMOVEDIR : 0);  // undo: the create failed
        return own.take_error();
      }
      break;
    }
    case UpperState::kWhiteout: {
      // Build it in the work dir, then swap it with the whiteout in one rename.
      std::string tmp = tmp_name();
      int wfd = work_.get();
      STRATA_TRY(make(wfd, tmp));
      Status r = set_owner(wfd, tmp, c, ufd, type);
      if (r && is_dir) r = sys::set_xattr(wfd, tmp.c_str(), opaque_xattr_, "y", 0);
      if (r) r = sys::rename_at(wfd, tmp.c_str(), ufd, name.c_str(), is_dir ? RENAME_EXCHANGE : 0);
      if (!r) {
        (void)sys::unlink_at(wfd, tmp.c_str(), is_dir ? AT_REMOVEDIR : 0);  // leftovers go at next mount
        return r.take_error();
      }
      if (is_dir) (void)sys::unlink_at(wfd, tmp.c_str(), 0);  // the old whiteout; removed at next mount if not
      opaque = is_dir;
      break;
    }
    case UpperState::kWhiteoutFile: {
      STRATA_TRY(make(ufd, name));
      Status r = set_owner(ufd, name, c, ufd, type);
      if (r && is_dir) r = sys::set_xattr(ufd, name.c_str(), wo::kUserOpaque, "y", 0);
      if (r) r = sys::unlink_at(ufd, wo::whiteout_name(name).c_str(), 0);
      if (!r) return r.take_error();
      opaque = is_dir;
      break;
    }
  }
  auto st = sys::stat_at(ufd, name.c_str());
  if (!st) return st.take_error();
  Probe p;
  p.found = true;
  p.layer = 0;
  p.st = *st;
  if (is_dir) {
    p.layers = {0};
    p.flags = {0};
    p.fds = {SharedFd()};
    p.opaque_top = opaque;
  }
  // A node left from an earlier object of this name (removed behind the kernel's back) must not be reused.
  table_.detach_child(parent, name).reset();
  parent->dir_gen.fetch_add(1, std::memory_order_release);
  return make_entry(parent, name, std::move(p));
}

Result<Entry> Overlay::mknod(Node* parent, const std::string& name, mode_t mode, dev_t rdev, const Caller& c) {
  // A 0/0 character device is the whiteout format: overlayfs refuses to create one through the mount.
  if (S_ISCHR(mode) && rdev == 0) return make_error(EPERM, "mknod", name);
  return create_object(parent, name, mode & S_IFMT, c, [&](int dfd, const std::string& nm) {
    if (S_ISREG(mode)) {
      auto fd = sys::open_at(dfd, nm.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode & 07777);
      return fd ? Status{} : Status{fd.take_error()};
    }
    return sys::mknod_at(dfd, nm.c_str(), mode, rdev);
  });
}

Result<Entry> Overlay::mkdir(Node* parent, const std::string& name, mode_t mode, const Caller& c) {
  return create_object(parent, name, S_IFDIR, c, [&](int dfd, const std::string& nm) {
    return sys::mkdir_at(dfd, nm.c_str(), mode & 07777);
  });
}

Result<Entry> Overlay::symlink(Node* parent, const std::string& name, const std::string& target,
                               const Caller& c) {
  return create_object(parent, name, S_IFLNK, c, [&](int dfd, const std::string& nm) {
    return sys::symlink_at(target.c_str(), dfd, nm.c_str());
  });
}

Result<std::pair<Entry, std::unique_ptr<File>>> Overlay::create(Node* parent, const std::string& name,
                                                                mode_t mode, int flags, const Caller& c) {
  UniqueFd fd;
  int oflags = (flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOFOLLOW | O_CLOEXEC)) | O_CREAT | O_EXCL;
  auto e = create_object(parent, name, S_IFREG, c, [&](int dfd, const std::string& nm) {
    auto r = sys::open_at(dfd, nm.c_str(), oflags, mode & 07777);
    if (!r) return Status{r.take_error()};
    fd = std::move(*r);
    return Status{};
  });
  if (!e) return e.take_error();
  auto file = std::make_unique<File>(this, table_.ref(e->node.get()), std::move(fd), true, flags);
  return std::make_pair(std::move(*e), std::move(file));
}

Result<Entry> Overlay::link(Node* n, Node* newparent, const std::string& newname) {
  if (n->is_dir()) return make_error(EPERM, "link", newname);
  if (newname.size() > 255) return make_error(ENAMETOOLONG, "link", newname);
  if (wo::is_reserved_name(newname)) return make_error(EINVAL, "link", newname + ": reserved for whiteouts");
  STRATA_TRY(ensure_upper(n));
  STRATA_TRY(ensure_upper(newparent));
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  auto ufd_r = upper_dir_fd(newparent);
  if (!ufd_r) return ufd_r.take_error();
  int ufd = (*ufd_r)->get();
  auto us = upper_state(ufd, newname);
  if (!us) return us.take_error();
  int src = loc->dir->get();
  const char* sname = loc->name.c_str();
  switch (us->kind) {
    case UpperState::kEntry:
      return make_error(EEXIST, "link", newname);
    case UpperState::kNone: {
      auto lower = lower_has(newparent, newname);
      if (!lower) return lower.take_error();
      if (*lower) return make_error(EEXIST, "link", newname);
      STRATA_TRY(sys::link_at(src, sname, ufd, newname.c_str()));
      break;
    }
    case UpperState::kWhiteout: {
      std::string tmp = tmp_name();
      STRATA_TRY(sys::link_at(src, sname, work_.get(), tmp.c_str()));
      auto r = sys::rename_at(work_.get(), tmp.c_str(), ufd, newname.c_str(), 0);
      if (!r) {
        (void)sys::unlink_at(work_.get(), tmp.c_str(), 0);  // cleaned at next mount otherwise
        return r.take_error();
      }
      break;
    }
    case UpperState::kWhiteoutFile:
      STRATA_TRY(sys::link_at(src, sname, ufd, newname.c_str()));
      STRATA_TRY(sys::unlink_at(ufd, wo::whiteout_name(newname).c_str(), 0));
      break;
  }
  auto st = sys::stat_at(ufd, newname.c_str());
  if (!st) return st.take_error();
  // One inode, one node: the new name joins the node (the kernel expects link to answer the same inode).
  table_.detach_child(newparent, newname).reset();
  newparent->dir_gen.fetch_add(1, std::memory_order_release);
  if (!table_.add_alias(n, newparent, newname)) return make_error(EEXIST, "link", newname);
  table_.add_key(n, LinkKey{0, st->st_dev, st->st_ino});
  auto cur = getattr(n);
  if (!cur) return cur.take_error();
  return Entry{table_.ref(n), *cur};
}

}  // namespace strata::merge
