// SPDX-License-Identifier: Apache-2.0
// Ownership in the view: fuse-overlayfs's uidmapping/gidmapping/squash_* and xattr_permissions (id_map.h).
// Attributes leave the engine through fix_stat -> view_owner; owners and modes reach a layer only through
// write_owner (setattr, the owner of a new object) and copy-up's override value (ensure_upper.cc).
#include <fcntl.h>

#include "strata/base/log.h"
#include "strata/merge/overlay.h"
#include "strata/sys/fs.h"

namespace strata::merge {

void Overlay::view_owner(Node* n, struct stat* st) {
  if (override_xattr_ && !S_ISLNK(st->st_mode)) {
    auto loc = locate(n);
    if (loc) {
      auto eff = effective_owner(loc->dir->get(), loc->name.c_str(), *st);
      // An unreadable override leaves the real attributes: a stat must not fail because of it.
      if (eff) apply_stat_override(*eff, &st->st_uid, &st->st_gid, &st->st_mode);
    }
  }
  if (!ids_.identity()) {
    st->st_uid = ids_.uid_to_view(st->st_uid);
    st->st_gid = ids_.gid_to_view(st->st_gid);
  }
}

Result<StatOverride> Overlay::effective_owner(int dirfd, const char* name, const struct stat& real) {
  StatOverride o;
  o.uid = real.st_uid;
  o.gid = real.st_gid;
  o.mode = real.st_mode & 07777;
  // Symlinks cannot carry user.* xattrs: their real owner is the answer (as in fuse-overlayfs).
  if (!override_xattr_ || S_ISLNK(real.st_mode)) return o;
  auto v = sys::get_xattr(dirfd, name, override_xattr_);
  if (!v) {
    int e = v.error().err;
    if (e == ENODATA || e == ENOTSUP || e == EOPNOTSUPP) return o;
    return v.take_error();
  }
  auto p = parse_stat_override(*v);
  if (!p) {
    log::debug("%s: unreadable %s value ignored", name, override_xattr_);
    return o;
  }
  if (p->uid) o.uid = p->uid;
  if (p->gid) o.gid = p->gid;
  o.mode = p->mode;
  return o;
}

Status Overlay::write_owner(int dirfd, const char* name, const struct stat& real, std::optional<uid_t> uid,
                            std::optional<gid_t> gid, std::optional<mode_t> mode, bool creating) {
  if (override_xattr_ && !S_ISLNK(real.st_mode)) {
    // fuse-overlayfs's xattr_permissions: the xattr is the owner and mode; the real ones stay the daemon's.
    auto cur = effective_owner(dirfd, name, real);
    if (!cur) return cur.take_error();
    uid_t u = uid.value_or(*cur->uid);
    gid_t g = gid.value_or(*cur->gid);
    mode_t m = mode ? (*mode & 07777) : cur->mode;
    STRATA_TRY(sys::set_xattr(dirfd, name, override_xattr_, format_stat_override(u, g, m), 0));
    // The daemon keeps access to what it created, whatever mode the view shows.
    mode_t need = S_ISDIR(real.st_mode) ? 0700 : 0600;
    if (creating && (real.st_mode & need) != need) STRATA_TRY(sys::chmod_at(dirfd, name, (real.st_mode & 07777) | need));
    return {};
  }
  if (uid || gid) {
    auto r = sys::chown_at(dirfd, name, uid.value_or(static_cast<uid_t>(-1)), gid.value_or(static_cast<gid_t>(-1)));
    if (!r) {
      int e = r.error().err;
      // Squashed ids are not what the view shows anyway (fuse-overlayfs ignores these failures too). A new object
      // of another user that an unprivileged daemon cannot give away (EPERM), or whose id its user namespace does
      // not map (EINVAL), stays the daemon's, as with fuse-overlayfs.
      if (!ids_.squashing() && !(creating && (e == EPERM || e == EINVAL))) return r;
      log::debug("%s: owner %d:%d not applied: %s", name, uid ? static_cast<int>(*uid) : -1,
                 gid ? static_cast<int>(*gid) : -1, r.error().message().c_str());
    }
  }
  if (mode) STRATA_TRY(sys::chmod_at(dirfd, name, *mode & 07777));
  return {};
}

Status Overlay::set_override_marker() {
  // fuse-overlayfs reads override xattrs only in layers whose root carries one: mark the upper so that it honours
  // what this mount writes there. The value is the root's real owner and mode, so nothing changes in the view.
  int fd = layers_[0].root_shared->get();
  auto has = sys::get_xattr(fd, "", override_xattr_);
  if (has) return {};
  if (has.error().err != ENODATA) return make_error(has.error().err, "read", std::string(override_xattr_) + " of upperdir");
  auto st = sys::stat_at(fd, "");
  if (!st) return st.take_error();
  auto r = sys::set_xattr(fd, "", override_xattr_, format_stat_override(st->st_uid, st->st_gid, st->st_mode), 0);
  if (!r) return make_error(r.error().err, "write", std::string(override_xattr_) + " on upperdir");
  return {};
}

}  // namespace strata::merge
