// SPDX-License-Identifier: Apache-2.0
#include "strata/copyup/copy_up.h"

#include <fcntl.h>

#include "strata/sys/fs.h"
#include "strata/whiteout/whiteout.h"

namespace strata::copyup {
namespace {

bool skip_xattr(const std::string& name, bool userxattr) {
  if (!whiteout::unescape_xattr(name, userxattr)) return true;  // private in the namespace in use
  for (const char* marker : {whiteout::kTrustedOpaque, whiteout::kUserOpaque, whiteout::kFuseOverlayfsOpaque,
                             whiteout::kTrustedWhiteout, whiteout::kUserWhiteout})
    if (name == marker) return true;
  return name.rfind("user.fuseoverlayfs.", 0) == 0 || name.rfind("security.fuseoverlayfs.", 0) == 0;
}

Status finish_meta(int src_dir, const std::string& name, const struct stat& st, int dst_dir, const char* dst,
                   bool symlink, const Options& opts) {
  // Owner first: chown drops security.capability, which the xattr copy then restores. With an override value
  // the copy stays the daemon's (as with fuse-overlayfs's xattr_permissions): the xattr says who owns it.
  if (opts.override_xattr.empty() || symlink) {
    auto own = sys::chown_at(dst_dir, dst, st.st_uid, st.st_gid);
    // Unprivileged, files of other owners cannot be given away: the copy stays the daemon's, as with
    // fuse-overlayfs (xattr_permissions keeps the owner in the view).
    if (!own && own.error().err != EPERM && own.error().err != EINVAL) return own;
  }
  STRATA_TRY(copy_xattrs(src_dir, name.c_str(), dst_dir, dst, opts.userxattr));
  if (!symlink) STRATA_TRY(sys::chmod_at(dst_dir, dst, st.st_mode & 07777));
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  return sys::utimens_at(dst_dir, dst, ts);
}

}  // namespace

Status copy_xattrs(int src_dir, const char* src_name, int dst_dir, const char* dst_name, bool userxattr) {
  auto names = sys::list_xattr(src_dir, src_name);
  if (!names) {
    int e = names.error().err;
    return (e == ENOTSUP || e == EOPNOTSUPP) ? Status{} : Status{names.take_error()};
  }
  for (const auto& n : *names) {
    if (skip_xattr(n, userxattr)) continue;
    auto v = sys::get_xattr(src_dir, src_name, n.c_str());
    if (!v) {
      if (v.error().err == ENODATA) continue;
      return v.take_error();
    }
    auto r = sys::set_xattr(dst_dir, dst_name, n.c_str(), *v, 0);
    // trusted.* and security.* may be refused to an unprivileged daemon; the data matters more.
    if (!r && r.error().err != EPERM && r.error().err != ENOTSUP && r.error().err != EOPNOTSUPP) return r;
  }
  return {};
}

Result<UniqueFd> build_copy(int src_dir, const std::string& name, const struct stat& st, int work_dir,
                            const std::string& tmp_name, const Options& opts) {
  const char* tmp = tmp_name.c_str();
  UniqueFd data;
  auto build = [&]() -> Status {
    switch (st.st_mode & S_IFMT) {
      case S_IFREG: {
        auto in = sys::open_at(src_dir, name.c_str(), O_RDONLY);
        if (!in) return in.take_error();
        auto out = sys::open_at(work_dir, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (!out) return out.take_error();
        data = std::move(*out);
        if (opts.with_data) STRATA_TRY(sys::copy_data(in->get(), data.get(), st.st_size, opts.fsync));
        return finish_meta(src_dir, name, st, work_dir, tmp, false, opts);
      }
      case S_IFDIR:
        STRATA_TRY(sys::mkdir_at(work_dir, tmp, 0700));
        return finish_meta(src_dir, name, st, work_dir, tmp, false, opts);
      case S_IFLNK: {
        auto target = sys::readlink_at(src_dir, name.c_str());
        if (!target) return target.take_error();
        STRATA_TRY(sys::symlink_at(target->c_str(), work_dir, tmp));
        return finish_meta(src_dir, name, st, work_dir, tmp, true, opts);
      }
      default:
        STRATA_TRY(sys::mknod_at(work_dir, tmp, st.st_mode, st.st_rdev));
        return finish_meta(src_dir, name, st, work_dir, tmp, false, opts);
    }
  };
  Status r = build();
  if (r && !opts.override_xattr.empty() && !S_ISLNK(st.st_mode))
    r = sys::set_xattr(work_dir, tmp, opts.override_xattr.c_str(), opts.override_value, 0);
  if (!r) {
    // Best effort: a temporary left behind is removed at the next mount.
    (void)sys::unlink_at(work_dir, tmp, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
    return make_error(r.error().err, "copy-up", name + ": " + r.error().message());
  }
  return data;
}

Status publish_copy(UniqueFd data, bool is_dir, int work_dir, const std::string& tmp_name, int dst_dir,
                    const std::string& dst_name, const Options& opts) {
  const char* tmp = tmp_name.c_str();
  Status r;
  if (opts.fsync && data.valid()) r = sys::fsync_fd(data.get(), false);
  data.reset();
  bool indexed = false;
  if (r && opts.index_dir >= 0) {
    if (!opts.nlink_xattr.empty()) r = sys::set_xattr(work_dir, tmp, opts.nlink_xattr.c_str(), opts.nlink_value, 0);
    if (r) r = sys::link_at(work_dir, tmp, opts.index_dir, opts.index_name.c_str());
    indexed = r.has_value();
  }
  // Linking the copy into its directory is not a change the user made there: keep the directory's times.
  auto parent = sys::stat_at(dst_dir, "");
  if (r) r = sys::rename_at(work_dir, tmp, dst_dir, dst_name.c_str(), RENAME_NOREPLACE);
  if (r && parent) {
    struct timespec ts[2] = {parent->st_atim, parent->st_mtim};
    (void)sys::utimens_at(dst_dir, "", ts);  // cosmetic if it fails: the copy-up itself succeeded
  }
  if (!r && indexed) (void)sys::unlink_at(opts.index_dir, opts.index_name.c_str(), 0);  // undo: no copy-up
  if (!r) {
    (void)sys::unlink_at(work_dir, tmp, is_dir ? AT_REMOVEDIR : 0);  // else removed at the next mount
    return make_error(r.error().err, "copy-up", dst_name + ": " + r.error().message());
  }
  return {};
}

Status copy_up(int src_dir, const std::string& name, const struct stat& st, int dst_dir,
               const std::string& dst_name, int work_dir, const std::string& tmp_name, const Options& opts) {
  auto data = build_copy(src_dir, name, st, work_dir, tmp_name, opts);
  if (!data) return data.take_error();
  return publish_copy(std::move(*data), S_ISDIR(st.st_mode), work_dir, tmp_name, dst_dir, dst_name, opts);
}

}  // namespace strata::copyup
