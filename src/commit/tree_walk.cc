// SPDX-License-Identifier: Apache-2.0
#include "strata/commit/tree_walk.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <string_view>
#include <utility>

#include "strata/archive/entry_path.h"
#include "strata/sys/fs.h"
#include "strata/whiteout/override_stat.h"
#include "strata/whiteout/whiteout.h"

namespace strata::commit {
namespace {

// aufs bookkeeping (`.wh..wh.plnk`, ...): no file of the image.
constexpr std::string_view kAufsMetaPrefix = ".wh..wh.";
constexpr size_t kMaxWarnings = 100;

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// "*.strata.*": strata's own state in any namespace.
bool is_strata_xattr(std::string_view n) {
  size_t dot = n.find('.');
  return dot != std::string_view::npos && starts_with(n.substr(dot + 1), "strata.");
}

// The name an xattr found in the tree has in the image; nullopt when it is not the image's.
std::optional<std::string> image_xattr_name(std::string_view n, WalkMode mode) {
  if (is_strata_xattr(n)) return std::nullopt;
  if (mode == WalkMode::kTree) return std::string(n);
  if (starts_with(n, "user.fuseoverlayfs.")) return std::nullopt;
  // Private overlay names are dropped; the escaped form of a user's overlay.* name is restored.
  if (starts_with(n, "trusted.overlay.")) return whiteout::unescape_xattr(n, false);
  if (starts_with(n, "user.overlay.")) return whiteout::unescape_xattr(n, true);
  return std::string(n);
}

// Which owner record wins when a file has several: stratafs's and rootless fuse-overlayfs's, then
// privileged fuse-overlayfs's, then containers/storage's. Lower is better.
int record_rank(std::string_view n) {
  if (n == whiteout::kOverrideStatUser) return 0;
  if (n == whiteout::kOverrideStatPrivileged) return 1;
  if (n == whiteout::kOverrideStatContainers) return 2;
  return 3;
}

struct Opacity {
  bool opaque = false;
  bool xwhiteouts = false;  // opaque="x": may hold xattr whiteouts
};

struct Child {
  std::string entry_name;  // path in the tar
  std::string real_name;   // name in its directory
  bool whiteout = false;
  struct stat st {};
};

class Walker {
 public:
  Walker(const WalkOptions& o, EntrySink* sink) : opt_(o), sink_(sink) {}

  Status run(int root_fd) {
    STRATA_ASSIGN_OR_RETURN(st, sys::stat_at(root_fd, ""));
    STRATA_ASSIGN_OR_RETURN(dfd, sys::open_at(root_fd, ".", O_RDONLY | O_DIRECTORY));
    STRATA_ASSIGN_OR_RETURN(op, opacity(dfd.get(), ""));
    if (op.opaque) STRATA_TRY(opaque_marker("", st));
    return children(dfd.get(), "", op.xwhiteouts, st);
  }

  WalkStats stats;

 private:
  Error fail(const std::string& path, const Error& cause) {
    std::string why = cause.op;
    if (!cause.detail.empty()) why += " " + cause.detail;
    return make_error(cause.err, "commit walk",
                      archive::quote_name(path.empty() ? "." : path) + ": " + why);
  }

  void warn(const std::string& path, const std::string& what) {
    if (stats.warnings.size() < kMaxWarnings)
      stats.warnings.push_back(archive::quote_name(path) + ": " + what);
  }

  int64_t mtime_of(const struct stat& st) const {
    int64_t t = st.st_mtim.tv_sec;
    if (opt_.clamp_mtime && t > *opt_.clamp_mtime) t = *opt_.clamp_mtime;
    return t;
  }

  // The directory's opaque state (kUpper): its xattrs, or a `.wh..wh..opq` entry inside.
  Result<Opacity> opacity(int dfd, const std::string& path) {
    Opacity o;
    if (opt_.mode != WalkMode::kUpper) return o;
    for (const char* attr :
         {whiteout::kTrustedOpaque, whiteout::kUserOpaque, whiteout::kFuseOverlayfsOpaque}) {
      auto v = sys::get_xattr(dfd, "", attr);
      if (!v) {
        int e = v.error().err;
        if (e == ENODATA || e == ENOTSUP || e == EOPNOTSUPP || e == EPERM) continue;
        return fail(path, v.error());
      }
      auto p = whiteout::parse_opaque(*v);
      if (p == whiteout::OpaqueValue::kOpaque) o.opaque = true;
      if (p == whiteout::OpaqueValue::kHasXattrWhiteouts) o.xwhiteouts = true;
    }
    if (!o.opaque) {
      auto m = sys::stat_at(dfd, std::string(whiteout::kOpaqueMarker).c_str());
      if (m)
        o.opaque = true;
      else if (m.error().err != ENOENT)
        return fail(path, m.error());
    }
    return o;
  }

  archive::Entry marker_entry(std::string name, const struct stat& dir_st) {
    archive::Entry e;
    e.name = std::move(name);
    e.type = archive::EntryType::kFile;
    e.meta.perm = 0;
    e.meta.has_mtime = true;
    e.meta.mtime = {static_cast<time_t>(mtime_of(dir_st)), 0};
    return e;
  }

  Status opaque_marker(const std::string& prefix, const struct stat& dir_st) {
    stats.opaques++;
    stats.entries++;
    return sink_->entry(marker_entry(prefix + std::string(whiteout::kOpaqueMarker), dir_st), -1);
  }

  Result<archive::EntryMeta> meta_of(int dfd, const Child& c, const std::string& path) {
    archive::EntryMeta m;
    m.perm = c.st.st_mode & 07777;
    m.uid = c.st.st_uid;
    m.gid = c.st.st_gid;
    m.has_mtime = true;
    m.mtime = {static_cast<time_t>(mtime_of(c.st)), 0};
    const char* name = c.real_name.c_str();
    auto names = sys::list_xattr(dfd, name);
    if (!names) {
      int e = names.error().err;
      if (e == ENOTSUP || e == EOPNOTSUPP) return m;
      return fail(path, names.error());
    }
    std::sort(names->begin(), names->end());
    std::string record_name;
    std::string record;
    for (const auto& n : *names) {
      if (whiteout::is_override_stat_xattr(n)) {
        if (!record_name.empty() && record_rank(n) >= record_rank(record_name)) continue;
        auto v = sys::get_xattr(dfd, name, n.c_str());
        if (!v) {
          if (v.error().err == ENODATA) continue;
          return fail(path, v.error());
        }
        record_name = n;
        record = std::move(*v);
        continue;
      }
      auto shown = image_xattr_name(n, opt_.mode);
      if (!shown) continue;
      auto v = sys::get_xattr(dfd, name, n.c_str());
      if (!v) {
        if (v.error().err == ENODATA) continue;  // removed meanwhile
        return fail(path, v.error());
      }
      m.xattrs.emplace_back(std::move(*shown), std::move(*v));
    }
    // Restored names may sort differently from the stored ones.
    std::sort(m.xattrs.begin(), m.xattrs.end());
    if (!record_name.empty()) {
      // The owner and mode that could not be applied (an unprivileged pull, stratafs's
      // xattr_permissions).
      auto o = whiteout::parse_stat_override(record);
      if (o)
        whiteout::apply_stat_override(*o, &m.uid, &m.gid, &m.perm);
      else
        warn(path, "malformed " + record_name + " ignored");
    }
    return m;
  }

  Result<bool> is_xattr_whiteout(int dfd, const char* name) {
    for (const char* attr : {whiteout::kTrustedWhiteout, whiteout::kUserWhiteout}) {
      auto v = sys::get_xattr(dfd, name, attr);
      if (v) return true;
      int e = v.error().err;
      if (e != ENODATA && e != ENOTSUP && e != EOPNOTSUPP && e != EPERM) return v.take_error();
    }
    return false;
  }

  Status children(int dfd, const std::string& prefix, bool xwhiteouts, const struct stat& dir_st) {
    auto ents = sys::read_dir(dfd);
    if (!ents) return fail(prefix, ents.error());
    std::vector<Child> kids;
    kids.reserve(ents->size());
    const bool upper = opt_.mode == WalkMode::kUpper;
    for (auto& d : *ents) {
      const std::string& name = d.name;
      if (upper && name == whiteout::kOpaqueMarker) continue;  // the directory's marker, done
      if (upper && starts_with(name, kAufsMetaPrefix)) {
        stats.skipped++;
        warn(prefix + name, "aufs metadata skipped");
        continue;
      }
      Child c;
      c.real_name = name;
      auto st = sys::stat_at(dfd, name.c_str());
      if (!st) {
        if (st.error().err == ENOENT) continue;  // removed while we walk (no --pause)
        return fail(prefix + name, st.error());
      }
      c.st = *st;
      if (upper) {
        if (whiteout::is_whiteout_name(name)) {
          if (S_ISDIR(c.st.st_mode)) {
            stats.skipped++;
            warn(prefix + name, "a directory with a whiteout name; skipped");
            continue;
          }
          c.whiteout = true;
          c.entry_name = prefix + name;
        } else if (whiteout::is_whiteout_device(c.st)) {
          c.whiteout = true;
          c.entry_name = prefix + whiteout::whiteout_name(name);
        } else if (xwhiteouts && S_ISREG(c.st.st_mode) && c.st.st_size == 0) {
          auto x = is_xattr_whiteout(dfd, name.c_str());
          if (!x) return fail(prefix + name, x.error());
          if (*x) {
            c.whiteout = true;
            c.entry_name = prefix + whiteout::whiteout_name(name);
          }
        }
      }
      if (!c.whiteout) {
        if (S_ISSOCK(c.st.st_mode)) {
          stats.skipped++;
          warn(prefix + name, "socket skipped");
          continue;
        }
        c.entry_name = prefix + name;
      }
      kids.push_back(std::move(c));
    }
    std::sort(kids.begin(), kids.end(),
              [](const Child& a, const Child& b) { return a.entry_name < b.entry_name; });
    for (size_t i = 0; i < kids.size(); ++i) {
      const Child& c = kids[i];
      // `.wh.X` next to a 0/0 X: one whiteout.
      if (i > 0 && kids[i - 1].entry_name == c.entry_name) continue;
      if (c.whiteout) {
        stats.whiteouts++;
        stats.entries++;
        STRATA_TRY(sink_->entry(marker_entry(c.entry_name, dir_st), -1));
        continue;
      }
      STRATA_TRY(real(dfd, c));
    }
    return {};
  }

  Status real(int dfd, const Child& c) {
    const std::string& path = c.entry_name;
    archive::Entry e;
    e.name = path;
    STRATA_ASSIGN_OR_RETURN(meta, meta_of(dfd, c, path));
    e.meta = std::move(meta);
    const mode_t type = c.st.st_mode & S_IFMT;
    if (type != S_IFDIR && c.st.st_nlink > 1) {
      auto key = std::make_pair(c.st.st_dev, c.st.st_ino);
      auto it = links_.find(key);
      if (it != links_.end()) {
        e.type = archive::EntryType::kHardlink;
        e.link = it->second;
        stats.hardlinks++;
        stats.entries++;
        return sink_->entry(e, -1);
      }
      links_.emplace(key, path);
    }
    stats.entries++;
    switch (type) {
      case S_IFDIR: {
        e.type = archive::EntryType::kDirectory;
        STRATA_TRY(sink_->entry(e, -1));
        auto sub = sys::open_at(dfd, c.real_name.c_str(), O_RDONLY | O_DIRECTORY);
        if (!sub) return fail(path, sub.error());
        STRATA_ASSIGN_OR_RETURN(op, opacity(sub->get(), path));
        if (op.opaque) STRATA_TRY(opaque_marker(path + "/", c.st));
        return children(sub->get(), path + "/", op.xwhiteouts, c.st);
      }
      case S_IFREG: {
        e.type = archive::EntryType::kFile;
        e.size = c.st.st_size;
        auto fd = sys::open_at(dfd, c.real_name.c_str(), O_RDONLY);
        if (!fd) return fail(path, fd.error());
        stats.file_bytes += static_cast<uint64_t>(c.st.st_size);
        return sink_->entry(e, fd->get());
      }
      case S_IFLNK: {
        e.type = archive::EntryType::kSymlink;
        auto t = sys::readlink_at(dfd, c.real_name.c_str());
        if (!t) return fail(path, t.error());
        e.link = std::move(*t);
        return sink_->entry(e, -1);
      }
      case S_IFIFO:
        e.type = archive::EntryType::kFifo;
        return sink_->entry(e, -1);
      case S_IFCHR:
      case S_IFBLK:
        e.type =
            type == S_IFCHR ? archive::EntryType::kCharDevice : archive::EntryType::kBlockDevice;
        e.rdev = c.st.st_rdev;
        return sink_->entry(e, -1);
      default:
        stats.entries--;
        stats.skipped++;
        warn(path, "unknown file type skipped");
        return {};
    }
  }

  const WalkOptions& opt_;
  EntrySink* sink_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
};

}  // namespace

Result<WalkStats> walk_tree(int root_fd, const WalkOptions& options, EntrySink* sink) {
  Walker w(options, sink);
  STRATA_TRY(w.run(root_fd));
  return std::move(w.stats);
}

}  // namespace strata::commit
