// SPDX-License-Identifier: Apache-2.0
#include "options.h"

#include <cstdlib>
#include <optional>
#include <set>

#include "strata/control/client.h"

namespace strata::tools {

const char kUsage[] =
    "usage: stratafs [-f] [-d] -o lowerdir=TOP:...:BOTTOM[,upperdir=U,workdir=W][,OPTIONS] MOUNTPOINT\n"
    "\n"
    "Merge read-only lower directories and an optional writable upper directory into one tree at\n"
    "MOUNTPOINT, with the semantics and on-disk format of Linux overlayfs. Without upperdir the\n"
    "mount is read-only. Unmount with `fusermount3 -u MOUNTPOINT` (or `umount` as root).\n"
    "\n"
    "  -f                    stay in the foreground\n"
    "  -d                    debug: log every request (implies -f)\n"
    "  -h, --help            this text\n"
    "  -V, --version         print the version\n"
    "\n"
    "Options (-o, comma-separated; `\\,` escapes a comma, `\\:` a colon in lowerdir):\n"
    "  lowerdir=A:B:...      read-only layers, topmost first (required)\n"
    "  upperdir=DIR          writable layer\n"
    "  workdir=DIR           scratch dir on the filesystem of upperdir (required with upperdir)\n"
    "  volatile, fsync=0     do not fsync copy-ups (faster; a crash may lose recent copy-ups)\n"
    "  timeout=SECONDS       kernel cache time for names and attributes (default 86400)\n"
    "  threads=N             worker threads at most (default 16)\n"
    "  readers=N             workers waiting on /dev/fuse at once (default: one per CPU, at most 4)\n"
    "  idle_threads=N        idle workers kept beyond those (default 8)\n"
    "  prefetch=0|1          speed up walks: a daemon thread takes the listings of the\n"
    "                        subdirectories a listing names ahead of the walk, and workers\n"
    "                        serving a walk run on its CPU (default 1)\n"
    "  writeback             enable the kernel writeback cache (experimental)\n"
    "  io_uring[=0|1]        FUSE over io_uring: per-CPU request queues (Linux 6.14+ with the fuse\n"
    "                        module parameter enable_uring=Y; otherwise /dev/fuse, with a warning)\n"
    "  io_uring_threads=N    ring threads per CPU with io_uring (default 2)\n"
    "  control=PATH|none     control socket (pause/resume/sync/stats, see stratafs(1));\n"
    "                        default WORKDIR/strata-control.sock, none without upperdir\n"
    "  context=...           accepted and ignored (SELinux labels, as passed by podman)\n"
    "  allow_other, allow_root, default_permissions, ro, rw, suid, nosuid, dev, nodev, exec,\n"
    "  noexec, atime, noatime, nodiratime, relatime, strictatime, sync, async, dirsync,\n"
    "  auto_unmount, fsname=NAME, max_read=N: passed to FUSE. As root, allow_other,\n"
    "  default_permissions, suid and dev are added, as fuse-overlayfs does; otherwise\n"
    "  default_permissions.\n"
    "Ownership (fuse-overlayfs's options):\n"
    "  uidmapping=D:V:N[:D:V:N...]  uids D..D+N-1 in the layers show as V..V+N-1 (and back for\n"
    "                        chown and new files); unmapped ones show as the overflow id (65534)\n"
    "  gidmapping=D:V:N[:...] the same for gids\n"
    "  squash_to_root        every object shows as owned by 0:0\n"
    "  squash_to_uid=U, squash_to_gid=G   every object shows as owned by U / G\n"
    "  xattr_permissions=1|2 owner and mode live in the xattr security.fuseoverlayfs.override_stat\n"
    "                        (1) or user.fuseoverlayfs.override_stat (2), \"UID:GID:MODE\"; chown,\n"
    "                        chmod and new objects write it instead of the real owner and mode\n";

std::vector<std::string> split_options(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      cur += s[i];
      cur += s[++i];
    } else if (s[i] == ',') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += s[i];
    }
  }
  out.push_back(std::move(cur));
  return out;
}

std::string unescape(const std::string& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

std::vector<std::string> split_lowerdir(const std::string& v) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      cur += v[++i];
    } else if (v[i] == ':') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += v[i];
    }
  }
  out.push_back(std::move(cur));
  return out;
}

namespace {

const std::set<std::string> kFuseFlags = {
    "allow_other", "allow_root", "default_permissions", "ro",      "rw",         "suid",
    "nosuid",      "dev",        "nodev",               "exec",    "noexec",     "atime",
    "noatime",     "nodiratime", "relatime",            "sync",    "async",      "dirsync",
    "auto_unmount", "strictatime", "norelatime", "nostrictatime"};
const std::set<std::string> kFuseValued = {"fsname", "max_read", "subtype"};
const std::set<std::string> kIgnoredValued = {"context", "fscontext", "defcontext", "rootcontext"};
const std::set<std::string> kIgnoredFlags = {"lazytime", "nolazytime", "user", "nouser", "noauto", "auto",
                                             "_netdev", "nofail"};

bool parse_id(const std::string& v, uint32_t* out) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 10) return false;
  unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
  if (n > 0xffffffffULL) return false;
  *out = static_cast<uint32_t>(n);
  return true;
}

bool parse_bool(const std::string& v, bool* out) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") return *out = true, true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return *out = false, true;
  return false;
}

}  // namespace

Result<Config> parse_args(const std::vector<std::string>& args, bool privileged) {
  Config c;
  std::vector<std::string> positional;
  std::vector<std::string> opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      c.help = true;
    } else if (a == "-V" || a == "--version") {
      c.version = true;
    } else if (a == "-f") {
      c.session.foreground = true;
    } else if (a == "-d" || a == "--debug") {
      c.session.debug = c.session.foreground = true;
    } else if (a == "-o") {
      if (i + 1 >= args.size()) return make_error(EINVAL, "option -o", "needs a value");
      for (auto& o : split_options(args[++i])) opts.push_back(o);
    } else if (a.rfind("-o", 0) == 0) {
      for (auto& o : split_options(a.substr(2))) opts.push_back(o);
    } else if (!a.empty() && a[0] == '-') {
      return make_error(EINVAL, "unknown argument", a);
    } else {
      positional.push_back(a);
    }
  }
  if (c.help || c.version) return c;
  if (positional.empty()) return make_error(EINVAL, "missing", "MOUNTPOINT");
  if (positional.size() > 2) return make_error(EINVAL, "too many arguments", positional.back());
  c.session.mountpoint = positional.back();

  std::vector<std::string> fuse_opts;
  std::optional<std::string> control_opt;  // control= as given
  if (privileged) fuse_opts = {"allow_other", "default_permissions", "suid", "dev"};
  // Unprivileged, fuse-overlayfs adds default_permissions: the kernel checks the modes the mount shows (without
  // it a user could write through the mount what the view says is read-only).
  else fuse_opts = {"default_permissions"};
  std::optional<uint32_t> squash_uid, squash_gid;
  bool squash_root = false;
  for (const auto& raw : opts) {
    if (raw.empty()) continue;
    size_t eq = raw.find('=');
    std::string key = raw.substr(0, eq);
    std::string val = eq == std::string::npos ? "" : raw.substr(eq + 1);
    bool has_val = eq != std::string::npos;
    if (key == "lowerdir") {
      for (auto& l : split_lowerdir(val)) {
        if (l.empty()) return make_error(EINVAL, "lowerdir", "has an empty element: " + val);
        c.overlay.lowerdirs.push_back(l);
      }
    } else if (key == "upperdir") {
      c.overlay.upperdir = unescape(val);
    } else if (key == "workdir") {
      c.overlay.workdir = unescape(val);
    } else if (key == "volatile") {
      c.overlay.fsync = false;
    } else if (key == "fsync") {
      if (!parse_bool(val, &c.overlay.fsync)) return make_error(EINVAL, "fsync", "wants 0 or 1: " + val);
    } else if (key == "timeout") {
      char* end = nullptr;
      double t = std::strtod(val.c_str(), &end);
      if (val.empty() || *end || t < 0) return make_error(EINVAL, "timeout", "wants seconds: " + val);
      c.session.timeout = t;
    } else if (key == "threads" || key == "threaded" || key == "max_threads" || key == "idle_threads" ||
               key == "readers") {
      char* end = nullptr;
      long n = std::strtol(val.c_str(), &end, 10);
      if (has_val && (val.empty() || *end || n < 1 || n > 1024))
        return make_error(EINVAL, key, "wants a thread count 1..1024: " + val);
      if (has_val && key == "idle_threads") c.session.idle_threads = static_cast<unsigned>(n);
      else if (has_val && key == "readers") c.session.readers = static_cast<unsigned>(n);
      else if (has_val && key != "threaded") c.session.max_threads = static_cast<unsigned>(n);
    } else if (key == "prefetch") {
      if (!has_val || !parse_bool(val, &c.session.prefetch))
        return make_error(EINVAL, "prefetch", "wants 0 or 1: " + val);
    } else if (key == "writeback") {
      bool b = true;
      if (has_val && !parse_bool(val, &b)) return make_error(EINVAL, "writeback", "wants 0 or 1: " + val);
      c.session.writeback = b;
    } else if (key == "io_uring") {
      bool b = true;
      if (has_val && !parse_bool(val, &b)) return make_error(EINVAL, "io_uring", "wants 0 or 1: " + val);
      c.session.io_uring = b;
    } else if (key == "io_uring_threads") {
      char* end = nullptr;
      long n = std::strtol(val.c_str(), &end, 10);
      if (!has_val || val.empty() || *end || n < 1 || n > 64)
        return make_error(EINVAL, key, "wants a thread count 1..64: " + val);
      c.session.io_uring_threads = static_cast<unsigned>(n);
    } else if (key == "control") {
      if (!has_val || val.empty()) return make_error(EINVAL, "control", "wants a socket path or 'none'");
      control_opt = unescape(val);
    } else if (key == "debug") {
      c.session.debug = c.session.foreground = true;
    } else if (key == "uidmapping" || key == "gidmapping") {
      auto r = merge::IdMap::parse_ranges(key, val);
      if (!r) return r.take_error();
      (key == "uidmapping" ? c.overlay.ids.uids : c.overlay.ids.gids) = std::move(*r);
    } else if (key == "squash_to_root") {
      if (has_val) return make_error(EINVAL, "squash_to_root", "takes no value: " + raw);
      squash_root = true;
    } else if (key == "squash_to_uid" || key == "squash_to_gid") {
      uint32_t id = 0;
      if (!parse_id(val, &id)) return make_error(EINVAL, key, "wants a numeric id: " + val);
      (key == "squash_to_uid" ? squash_uid : squash_gid) = id;
    } else if (key == "xattr_permissions") {
      if (val != "0" && val != "1" && val != "2") return make_error(EINVAL, key, "wants 0, 1 or 2: " + val);
      c.overlay.xattr_permissions = val[0] - '0';
    } else if (kFuseFlags.count(key) && !has_val) {
      fuse_opts.push_back(key);
    } else if (kFuseValued.count(key) && has_val) {
      if (key == "fsname") c.session.fsname = val;
      else if (key != "subtype") fuse_opts.push_back(raw);
    } else if (kIgnoredValued.count(key) || kIgnoredFlags.count(key)) {
      // Accepted for compatibility; nothing to do.
    } else {
      c.warnings.push_back("unknown option '" + raw + "' ignored");
    }
  }
  if (c.overlay.lowerdirs.empty()) return make_error(EINVAL, "missing option", "lowerdir=");
  // squash_to_uid/gid take precedence over squash_to_root, each for its own id (as in fuse-overlayfs).
  c.overlay.ids.squash_uid = squash_uid ? squash_uid : (squash_root ? std::optional<uint32_t>(0) : std::nullopt);
  c.overlay.ids.squash_gid = squash_gid ? squash_gid : (squash_root ? std::optional<uint32_t>(0) : std::nullopt);
  if (!c.overlay.upperdir.empty() && c.overlay.workdir.empty())
    return make_error(EINVAL, "missing option", "workdir= (needed with upperdir=)");
  if (c.overlay.upperdir.empty() && !c.overlay.workdir.empty())
    c.warnings.push_back("workdir without upperdir is ignored: the mount is read-only");
  // The control socket lives in the workdir by default; a read-only mount has none unless control= names one.
  if (control_opt) c.session.control_socket = *control_opt == "none" ? "" : *control_opt;
  else if (!c.overlay.upperdir.empty()) c.session.control_socket = control::default_socket_path(c.overlay.workdir);
  c.session.mount_options = std::move(fuse_opts);
  return c;
}

}  // namespace strata::tools
