// SPDX-License-Identifier: Apache-2.0
#include "strata/archive/layer_writer.h"

#include <fcntl.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string_view>

#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"
#include "strata/whiteout/override_stat.h"
#include "strata/whiteout/whiteout.h"

namespace strata::archive {
namespace {

// aufs kept its own bookkeeping under `.wh..wh.` names (.wh..wh.plnk/, .wh..wh.aufs); old Docker
// layers carry them. They describe no file of the image: containerd skips them too.
constexpr std::string_view kAufsMetaPrefix = ".wh..wh.";

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// Errors the kernel gives for "you may not" or "this file system cannot": an xattr we can live
// without.
bool refused(int err) {
  return err == EPERM || err == ENOTSUP || err == EOPNOTSUPP;
}

// A file or directory whose owner is only recorded keeps a real mode its owner (this process) can
// read, search and remove: the record holds the image's mode, and a 0000 /etc/shadow or a 0500
// directory would otherwise lock stratafs and gc out. (stratafs's xattr_permissions does the same
// with what it creates.)
mode_t usable_mode(mode_t perm, bool dir) {
  return perm | (dir ? 0700 : 0600);
}

std::string child_path(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (!p.empty()) p += '/';
  p += name;
  return p;
}

Error fail(const Entry& e, int err, const std::string& why) {
  return make_error(err, "unpack", quote_name(e.name) + ": " + why);
}

Error fail(const Entry& e, const Error& cause) {
  std::string why = cause.op;
  if (!cause.detail.empty()) why += " " + quote_name(cause.detail);
  return make_error(cause.err, "unpack", quote_name(e.name) + ": " + why);
}

// utimensat times for a meta; false when the archive gave none.
bool times_of(const EntryMeta& m, struct timespec ts[2]) {
  if (!m.has_mtime && !m.has_atime) return false;
  const struct timespec omit { 0, UTIME_OMIT };
  ts[1] = m.has_mtime ? m.mtime : omit;
  ts[0] = m.has_atime ? m.atime : ts[1];
  return true;
}

// sys::open_beneath for relative paths of any length: one call takes at most PATH_MAX bytes, so a
// longer path is opened some components at a time, each step beneath the last and never following a
// symlink.
Result<UniqueFd> open_beneath_any(int root, std::string_view path, int flags) {
  constexpr size_t kStep = 2048;
  UniqueFd cur;
  int at = root;
  while (path.size() > kStep) {
    size_t cut = path.rfind('/', kStep);
    if (cut == std::string_view::npos || cut == 0)
      return make_error(ENAMETOOLONG, "open beneath", std::string(path));
    auto d = sys::open_beneath(at, path.substr(0, cut), O_PATH | O_DIRECTORY);
    if (!d) return d.take_error();
    cur = std::move(*d);
    at = cur.get();
    path.remove_prefix(cut + 1);
  }
  return sys::open_beneath(at, path, flags);
}

}  // namespace

LayerWriter::LayerWriter(int root_fd, const UnpackOptions& options, UnpackStats* stats)
    : root_(root_fd), opt_(options), stats_(stats) {
  privileged_ = opt_.privilege == Privilege::kPrivileged ||
                (opt_.privilege == Privilege::kAuto && ::geteuid() == 0);
  userxattr_ = opt_.userxattr || !privileged_;
  trusted_opaque_ = !userxattr_;
  mknod_whiteouts_ = !opt_.whiteout_files;
}

void LayerWriter::warn(std::string text) {
  if (stats_->warnings.size() < UnpackStats::kMaxWarnings)
    stats_->warnings.push_back(std::move(text));
  else
    stats_->warnings_dropped++;
}

Status LayerWriter::skip(const Entry& e, const std::string& why) {
  stats_->skipped++;
  if (!why.empty()) warn(quote_name(e.name) + ": " + why);
  return {};
}

Result<int> LayerWriter::parent_dir(const Entry& e, const EntryPath& p, Walk walk) {
  const size_t n = p.parts.size() - 1;
  size_t keep = 0;
  while (keep < chain_.size() && keep < n && chain_[keep].name == p.parts[keep]) ++keep;
  chain_.erase(chain_.begin() + static_cast<std::ptrdiff_t>(keep), chain_.end());
  for (size_t i = keep; i < n; ++i) {
    const int at = i == 0 ? root_ : chain_[i - 1].fd.get();
    const std::string& name = p.parts[i];
    // O_PATH|O_DIRECTORY|O_NOFOLLOW: a symlink here is ENOTDIR, never a way out.
    auto fd = sys::open_at(at, name.c_str(), O_PATH | O_DIRECTORY);
    if (!fd) {
      const int err = fd.error().err;
      const std::string dir = p.prefix(i);
      const std::string path = p.prefix(i + 1);
      if (err == ENOENT) {
        if (walk == Walk::kCreateMissing &&
            whiteout_files_.count(child_path(dir, whiteout::whiteout_name(name))) > 0)
          return fail(e, ENOTDIR, "parent " + quote_name(path) + " is whited out in this layer");
        STRATA_TRY(make_dir(e, at, dir, name, 0755));
      } else if (err == ENOTDIR || err == ELOOP) {
        auto st = sys::stat_at(at, name.c_str());
        if (!st) return fail(e, st.error());
        if (walk == Walk::kCreate && whiteout::is_whiteout_device(*st)) {
          // `.wh.d` then `d/x`: d exists in this layer after all, and hides the lower d.
          auto u = sys::unlink_at(at, name.c_str(), 0);
          if (!u) return fail(e, u.error());
          STRATA_TRY(make_dir(e, at, dir, name, 0755));
          auto dfd = sys::open_at(at, name.c_str(), O_PATH | O_DIRECTORY);
          if (!dfd) return fail(e, dfd.error());
          STRATA_TRY(set_opaque(e, dfd->get()));
        } else {
          return fail(e, ENOTDIR,
                      "parent " + quote_name(path) + " is not a directory" +
                          (S_ISLNK(st->st_mode) ? " (a symlink: never followed)" : ""));
        }
      } else {
        return fail(e, fd.error());
      }
      fd = sys::open_at(at, name.c_str(), O_PATH | O_DIRECTORY);
      if (!fd) return fail(e, fd.error());
    }
    chain_.push_back(Open{name, std::move(*fd)});
  }
  return n == 0 ? root_ : chain_[n - 1].fd.get();
}

Status LayerWriter::make_dir(const Entry& e, int at, const std::string& dir,
                             const std::string& name, mode_t mode) {
  auto r = sys::mkdir_at(at, name.c_str(), mode);
  if (!r) return fail(e, r.error());
  auto dfd = sys::open_at(at, name.c_str(), O_PATH | O_DIRECTORY);
  if (!dfd) return fail(e, dfd.error());
  // The umask may have taken bits away. (Through the fd: fchmodat would follow a symlink.)
  auto c = sys::chmod_at(dfd->get(), "", mode);
  if (!c) return fail(e, c.error());
  const std::string whf = child_path(dir, whiteout::whiteout_name(name));
  if (whiteout_files_.erase(whf) == 0) return {};
  // The `.wh.NAME` file form of a whiteout of this layer: the directory replaces it and hides the
  // lower one.
  auto u = sys::unlink_at(at, whiteout::whiteout_name(name).c_str(), 0);
  if (!u) return fail(e, u.error());
  return set_opaque(e, dfd->get());
}

void LayerWriter::drop_fixups_below(const std::string& path) {
  fixups_.erase(path);
  // Keys below `path` sort between "path/" and "path0" ('0' follows '/').
  fixups_.erase(fixups_.lower_bound(path + "/"), fixups_.lower_bound(path + "0"));
  const std::string below = path + "/";
  for (auto it = whiteout_files_.begin(); it != whiteout_files_.end();) {
    if (starts_with(*it, below))
      it = whiteout_files_.erase(it);
    else
      ++it;
  }
}

Status LayerWriter::clear_slot(const Entry& e, int at, const std::string& dir,
                               const std::string& name, bool new_is_dir, bool* existing_dir,
                               bool* was_whiteout) {
  *existing_dir = false;
  *was_whiteout = false;
  const std::string path = child_path(dir, name);
  if (whiteout_files_.erase(child_path(dir, whiteout::whiteout_name(name))) > 0) {
    auto u = sys::unlink_at(at, whiteout::whiteout_name(name).c_str(), 0);
    if (!u) return fail(e, u.error());
    *was_whiteout = true;
  }
  auto st = sys::stat_at(at, name.c_str());
  if (!st) return st.error().err == ENOENT ? Status{} : Status{fail(e, st.error())};
  if (whiteout::is_whiteout_device(*st)) {
    *was_whiteout = true;
  } else if (!S_ISDIR(st->st_mode) || !new_is_dir || fixups_.count(path) > 0) {
    // (A directory over a directory created only as a parent is no duplicate.)
    warn(quote_name(e.name) + ": duplicate entry, the last one wins");
  }
  if (S_ISDIR(st->st_mode)) {
    if (new_is_dir) {
      *existing_dir = true;
      return {};
    }
    auto r = sys::remove_tree_at(at, name.c_str());
    if (!r) return fail(e, r.error());
    drop_fixups_below(path);
    return {};
  }
  auto r = sys::unlink_at(at, name.c_str(), 0);
  if (!r) return fail(e, r.error());
  return {};
}

Status LayerWriter::set_opaque(const Entry& e, int dirfd) {
  if (trusted_opaque_) {
    auto r = sys::set_xattr(dirfd, "", whiteout::kTrustedOpaque, "y", 0);
    if (r) return {};
    if (r.error().err != EPERM || opt_.privilege == Privilege::kPrivileged)
      return fail(e, r.error());
    // Root in a user namespace: trusted.* is refused; the rootless form is what a mount there can
    // use.
    trusted_opaque_ = false;
    userxattr_ = true;
    warn(quote_name(e.name) +
         ": trusted.* xattrs refused, opaque directories marked with user.overlay.opaque");
  }
  auto r = sys::set_xattr(dirfd, "", whiteout::kUserOpaque, "y", 0);
  if (r) return {};
  if (!refused(r.error().err)) return fail(e, r.error());
  // No xattrs at all here: the marker file, which every reader of the overlay format understands.
  auto fd =
      sys::open_at(dirfd, std::string(whiteout::kOpaqueMarker).c_str(), O_WRONLY | O_CREAT, 0600);
  if (!fd) return fail(e, fd.error());
  return {};
}

Result<bool> LayerWriter::apply_owner(const Entry& e, int dirfd, const char* name,
                                      bool user_xattrs_allowed) {
  if (privileged_ && chown_) {
    auto r = sys::chown_at(dirfd, name, e.meta.uid, e.meta.gid);
    if (r) return false;
    const int err = r.error().err;
    if (opt_.privilege == Privilege::kPrivileged || (err != EPERM && err != EINVAL))
      return fail(e, r.error());
    // EPERM: no CAP_CHOWN, stop trying. EINVAL: this id has no mapping in our user namespace;
    // others may.
    if (err == EPERM) chown_ = false;
  }
  // The kernel allows user.* xattrs on regular files and directories only.
  if (!opt_.record_owner || !user_xattrs_allowed) return false;
  const std::string v = whiteout::format_stat_override(e.meta.uid, e.meta.gid, e.meta.perm);
  auto r = sys::set_xattr(dirfd, name, whiteout::kOverrideStatUser, v, 0);
  if (!r) return fail(e, r.error());
  recorded_ = true;
  return true;
}

Status LayerWriter::apply_xattrs(const Entry& e, int dirfd, const char* name) {
  for (const auto& [xname, value] : e.meta.xattrs) {
    // Overlay's own names are stored escaped (as Linux 6.7 does), so that a layer cannot plant a
    // redirect, metacopy or whiteout marker the union would obey; strata's private names are not
    // the layer's to set, nor are the owner records of union filesystems (a layer could otherwise
    // give its files any owner and mode, setuid root included, in the view of an unprivileged
    // mount).
    if (whiteout::is_override_stat_xattr(xname)) {
      warn(quote_name(e.name) + ": xattr " + quote_name(xname) +
           " dropped (an owner record, not image data)");
      continue;
    }
    auto stored = whiteout::escape_xattr(xname, userxattr_);
    if (!stored) {
      warn(quote_name(e.name) + ": xattr " + quote_name(xname) + " dropped (private to strata)");
      continue;
    }
    auto r = sys::set_xattr(dirfd, name, stored->c_str(), value, 0);
    if (r) continue;
    if (!refused(r.error().err)) return fail(e, r.error());
    char buf[128];
    warn(quote_name(e.name) + ": xattr " + quote_name(xname) +
         " not set: " + strerror_r(r.error().err, buf, sizeof buf));
  }
  return {};
}

Status LayerWriter::apply_times(const Entry& e, int dirfd, const char* name) {
  struct timespec ts[2];
  if (!times_of(e.meta, ts)) return {};
  auto r = sys::utimens_at(dirfd, name, ts);
  if (!r) return fail(e, r.error());
  return {};
}

Result<UniqueFd> LayerWriter::begin(const Entry& e) {
  auto parsed = parse_entry_path(e.name);
  if (!parsed) return parsed.take_error();
  const EntryPath& p = *parsed;
  if (p.is_root()) {
    STRATA_TRY(add_root(e));
    return UniqueFd();
  }
  for (size_t i = 0; i + 1 < p.parts.size(); ++i) {
    if (starts_with(p.parts[i], kAufsMetaPrefix)) {
      STRATA_TRY(skip(e, "aufs metadata skipped"));
      return UniqueFd();
    }
    if (whiteout::is_reserved_name(p.parts[i]))
      return fail(e, EINVAL, "directory " + quote_name(p.parts[i]) + " has a whiteout name");
  }
  const std::string& last = p.last();
  if (last == whiteout::kOpaqueMarker) {
    STRATA_TRY(add_opaque(e, p));
    return UniqueFd();
  }
  if (starts_with(last, kAufsMetaPrefix)) {
    STRATA_TRY(skip(e, "aufs metadata skipped"));
    return UniqueFd();
  }
  if (whiteout::is_whiteout_name(last)) {
    STRATA_TRY(add_whiteout(e, p, std::string(whiteout::whited_out(last))));
    return UniqueFd();
  }
  if (whiteout::is_reserved_name(last)) {
    STRATA_TRY(skip(e, "a bare '.wh.' name cannot be represented; skipped"));
    return UniqueFd();
  }
  return add_real(e, p);
}

Status LayerWriter::add_root(const Entry& e) {
  if (e.type != EntryType::kDirectory) return fail(e, EINVAL, "the root entry is not a directory");
  STRATA_ASSIGN_OR_RETURN(recorded, apply_owner(e, root_, "", true));
  STRATA_TRY(apply_xattrs(e, root_, ""));
  fixups_[""] = DirFixup{recorded ? usable_mode(e.meta.perm, true) : e.meta.perm, e.meta.has_mtime,
                         e.meta.has_atime, e.meta.mtime, e.meta.atime};
  return {};
}

Status LayerWriter::add_whiteout(const Entry& e, const EntryPath& p, const std::string& hidden) {
  stats_->whiteouts++;
  if (whiteout::is_invalid_component(hidden)) return fail(e, EINVAL, "whiteout of an invalid name");
  auto parent = parent_dir(e, p, Walk::kCreateMissing);
  if (!parent) {
    // Below a non-directory of this layer, which hides everything below it already.
    if (parent.error().err == ENOTDIR) return skip(e, "");
    return parent.take_error();
  }
  const std::string dir = p.prefix(p.parts.size() - 1);
  auto st = sys::stat_at(*parent, hidden.c_str());
  if (st) {
    // This layer has its own `hidden`: it stays. A directory must then hide the lower one's
    // contents.
    if (!S_ISDIR(st->st_mode)) return {};
    auto dfd = sys::open_at(*parent, hidden.c_str(), O_PATH | O_DIRECTORY);
    if (!dfd) return fail(e, dfd.error());
    return set_opaque(e, dfd->get());
  }
  if (st.error().err != ENOENT) return fail(e, st.error());
  const std::string whf = child_path(dir, p.last());
  if (whiteout_files_.count(whf) > 0) return {};
  if (mknod_whiteouts_) {
    auto r = sys::mknod_at(*parent, hidden.c_str(), S_IFCHR | 0, makedev(0, 0));
    if (r) return {};
    if (r.error().err != EPERM) return fail(e, r.error());
    mknod_whiteouts_ = false;
    warn(quote_name(e.name) + ": mknod refused, whiteouts written as .wh.NAME files");
  }
  auto fd = sys::open_at(*parent, p.last().c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (!fd) return fail(e, fd.error());
  whiteout_files_.insert(whf);
  return {};
}

Status LayerWriter::add_opaque(const Entry& e, const EntryPath& p) {
  stats_->opaques++;
  if (p.parts.size() == 1) return set_opaque(e, root_);
  auto dir = parent_dir(e, p, Walk::kCreateMissing);
  if (!dir) {
    if (dir.error().err == ENOTDIR) return skip(e, "");
    return dir.take_error();
  }
  return set_opaque(e, *dir);
}

Result<UniqueFd> LayerWriter::add_real(const Entry& e, const EntryPath& p) {
  const bool device = e.type == EntryType::kCharDevice || e.type == EntryType::kBlockDevice;
  if (e.type == EntryType::kSocket) {
    STRATA_TRY(skip(e, "socket skipped"));
    return UniqueFd();
  }
  if (device && !privileged_) {
    if (opt_.devices == DevicePolicy::kError)
      return fail(e, EPERM, "device entries need privileges (or the option devices=skip)");
    STRATA_TRY(skip(e, "device skipped (unprivileged)"));
    return UniqueFd();
  }
  if (e.type == EntryType::kHardlink) {
    STRATA_TRY(add_hardlink(e, p));
    return UniqueFd();
  }
  auto parent_r = parent_dir(e, p, Walk::kCreate);
  if (!parent_r) return parent_r.take_error();
  const int parent = *parent_r;
  const char* name = p.last().c_str();
  const std::string dir = p.prefix(p.parts.size() - 1);
  bool existing_dir = false;
  bool was_whiteout = false;
  STRATA_TRY(clear_slot(e, parent, dir, p.last(), e.type == EntryType::kDirectory, &existing_dir,
                        &was_whiteout));
  switch (e.type) {
    case EntryType::kDirectory: {
      if (!existing_dir) {
        // 0700 until finish(): children must be writable whatever the archive says.
        auto r = sys::mkdir_at(parent, name, 0700);
        if (!r) return fail(e, r.error());
      }
      if (was_whiteout) {
        auto dfd = sys::open_at(parent, name, O_PATH | O_DIRECTORY);
        if (!dfd) return fail(e, dfd.error());
        STRATA_TRY(set_opaque(e, dfd->get()));
      }
      STRATA_ASSIGN_OR_RETURN(recorded, apply_owner(e, parent, name, true));
      STRATA_TRY(apply_xattrs(e, parent, name));
      fixups_[p.joined] = DirFixup{recorded ? usable_mode(e.meta.perm, true) : e.meta.perm,
                                   e.meta.has_mtime, e.meta.has_atime, e.meta.mtime, e.meta.atime};
      return UniqueFd();
    }
    case EntryType::kFile: {
      auto fd = sys::open_at(parent, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
      if (!fd) return fail(e, fd.error());
      return std::move(*fd);
    }
    case EntryType::kSymlink: {
      auto r = sys::symlink_at(e.link.c_str(), parent, name);
      if (!r) return fail(e, r.error());
      STRATA_TRY(apply_owner(e, parent, name, false));
      STRATA_TRY(apply_xattrs(e, parent, name));
      STRATA_TRY(apply_times(e, parent, name));
      return UniqueFd();
    }
    case EntryType::kFifo:
    case EntryType::kCharDevice:
    case EntryType::kBlockDevice: {
      const mode_t type = e.type == EntryType::kFifo         ? S_IFIFO
                          : e.type == EntryType::kCharDevice ? S_IFCHR
                                                             : S_IFBLK;
      auto r = sys::mknod_at(parent, name, type | 0600, device ? e.rdev : 0);
      if (!r) {
        if (!device || r.error().err != EPERM || opt_.privilege == Privilege::kPrivileged)
          return fail(e, r.error());
        if (opt_.devices == DevicePolicy::kError)
          return fail(e, EPERM, "mknod refused (the option devices=skip skips devices)");
        STRATA_TRY(skip(e, "device skipped (mknod refused)"));
        return UniqueFd();
      }
      STRATA_TRY(apply_owner(e, parent, name, false));
      // chmod through an O_PATH fd: fchmodat() would follow a symlink swapped in under the name.
      auto fd = sys::open_at(parent, name, O_PATH);
      if (!fd) return fail(e, fd.error());
      auto c = sys::chmod_at(fd->get(), "", e.meta.perm);
      if (!c) return fail(e, c.error());
      STRATA_TRY(apply_xattrs(e, parent, name));
      STRATA_TRY(apply_times(e, parent, name));
      return UniqueFd();
    }
    case EntryType::kHardlink:
    case EntryType::kSocket:
      break;  // handled above
  }
  return fail(e, EINVAL, "unsupported entry type");
}

Status LayerWriter::add_hardlink(const Entry& e, const EntryPath& p) {
  auto target_r = parse_entry_path(e.link);
  if (!target_r) return fail(e, EINVAL, "hard link target " + target_r.error().detail);
  const EntryPath& target = *target_r;
  if (target.is_root()) return fail(e, EINVAL, "hard link to the root directory");
  const std::string& tname = target.last();
  // The target's directory, reached without following anything (openat2 RESOLVE_NO_SYMLINKS or an
  // O_NOFOLLOW walk), independently of the parent chain cached for new entries.
  UniqueFd tdir_fd;
  int tdir = root_;
  bool missing = whiteout::is_reserved_name(tname);  // a whiteout or marker is not an entry
  if (!missing && target.parts.size() > 1) {
    auto d = open_beneath_any(root_, target.prefix(target.parts.size() - 1), O_PATH | O_DIRECTORY);
    if (d) {
      tdir_fd = std::move(*d);
      tdir = tdir_fd.get();
    } else if (d.error().err == ENOENT || d.error().err == ENOTDIR || d.error().err == ELOOP) {
      missing = true;
    } else {
      return fail(e, d.error());
    }
  }
  if (!missing) {
    auto st = sys::stat_at(tdir, tname.c_str());
    if (!st) {
      if (st.error().err != ENOENT) return fail(e, st.error());
      missing = true;
    } else if (whiteout::is_whiteout_device(*st)) {
      missing = true;
    } else if (S_ISDIR(st->st_mode)) {
      return fail(e, EPERM, "hard link to the directory " + quote_name(e.link));
    }
  }
  if (missing) {
    if (opt_.allow_external_hardlinks)
      return skip(e, "hard link target " + quote_name(e.link) + " is not in this layer; skipped");
    return fail(e, ENOENT, "hard link target " + quote_name(e.link) + " is not in this layer");
  }
  if (target.joined == p.joined) return {};  // a link to itself: already there
  auto parent_r = parent_dir(e, p, Walk::kCreate);
  if (!parent_r) return parent_r.take_error();
  bool existing_dir = false;
  bool was_whiteout = false;
  STRATA_TRY(clear_slot(e, *parent_r, p.prefix(p.parts.size() - 1), p.last(), false, &existing_dir,
                        &was_whiteout));
  // linkat without AT_SYMLINK_FOLLOW: a symlink target is linked itself.
  auto r = sys::link_at(tdir, tname.c_str(), *parent_r, p.last().c_str());
  if (!r) return fail(e, r.error());
  return {};
}

Status LayerWriter::finish_file(int fd, const Entry& e, off_t data_end) {
  if (data_end < e.size) {
    auto r = sys::truncate_fd(fd, e.size);
    if (!r) return fail(e, r.error());
  }
  // Owner, then mode (chown drops set-id bits), then xattrs (chown drops security.capability), then
  // times.
  STRATA_ASSIGN_OR_RETURN(recorded, apply_owner(e, fd, "", true));
  auto c = sys::chmod_at(fd, "", recorded ? usable_mode(e.meta.perm, false) : e.meta.perm);
  if (!c) return fail(e, c.error());
  STRATA_TRY(apply_xattrs(e, fd, ""));
  struct timespec ts[2];
  if (times_of(e.meta, ts)) {
    auto r = sys::utimens_fd(fd, ts);
    if (!r) return fail(e, r.error());
  }
  return {};
}

Status LayerWriter::finish() {
  chain_.clear();
  // Reverse order visits "a/b" before "a": a directory is finished after everything below it.
  for (auto it = fixups_.rbegin(); it != fixups_.rend(); ++it) {
    const std::string& path = it->first;
    const DirFixup& f = it->second;
    Entry named;
    named.name = path.empty() ? "." : path;
    UniqueFd dir_fd;
    int fd = root_;
    if (!path.empty()) {
      auto d = open_beneath_any(root_, path, O_RDONLY | O_DIRECTORY);
      if (!d) return fail(named, d.error());
      dir_fd = std::move(*d);
      fd = dir_fd.get();
    }
    auto c = sys::chmod_at(fd, "", f.perm);
    if (!c) return fail(named, c.error());
    named.meta.has_mtime = f.has_mtime;
    named.meta.has_atime = f.has_atime;
    named.meta.mtime = f.mtime;
    named.meta.atime = f.atime;
    struct timespec ts[2];
    if (!times_of(named.meta, ts)) continue;
    auto r = path.empty() ? sys::utimens_at(fd, "", ts) : sys::utimens_fd(fd, ts);
    if (!r) return fail(named, r.error());
  }
  fixups_.clear();
  if (recorded_) STRATA_TRY(mark_root());
  return {};
}

Status LayerWriter::mark_root() {
  // fuse-overlayfs honours override records only in a layer whose root carries one; `strata mount`
  // looks there too. A root entry of the layer may have recorded its own owner already; otherwise
  // the record is the real owner and mode, which changes nothing in a view.
  Entry named;
  named.name = ".";
  auto has = sys::get_xattr(root_, "", whiteout::kOverrideStatUser);
  if (has) return {};
  if (has.error().err != ENODATA) return fail(named, has.error());
  auto st = sys::stat_at(root_, "");
  if (!st) return fail(named, st.error());
  auto r = sys::set_xattr(root_, "", whiteout::kOverrideStatUser,
                          whiteout::format_stat_override(st->st_uid, st->st_gid, st->st_mode), 0);
  if (!r) return fail(named, r.error());
  return {};
}

}  // namespace strata::archive
